import Foundation
import LuaSandbox

/// `now()`, and wall time in a zone: `time.localtime(unix, tz)` and `time.at(tz, fields)`, with
/// the IANA zones and the daylight-saving rules `cron` uses (``ZoneMapping``), so "09:00 in
/// Europe/Berlin on the due day" needs no offset table in a rule.
///
/// `time.localtime`, not the design's `time.local`: `local` is a Lua keyword, and `time.local(...)`
/// does not parse.
enum TimeModule {
    static func install(in state: LuaState, host: some LuaAPIHost) throws(LuaError) {
        try state.register("now") { _ in [.integer(host.now.seconds)] }

        try state.register("localtime", in: "time") { call in
            let unix = try call.arguments.number(at: 0)
            let zone = try zone(call.arguments, at: 1)
            let instant = Int64(unix.rounded(.down))
            let mapping = ZoneMapping(zone: zone)
            let wall = mapping.wall(at: instant)
            let days = wall.floorDivided(by: 86_400)
            let seconds = wall - days * 86_400
            let date = CivilDate(days: days)
            return [.object([
                "year": .integer(date.year), "month": .integer(Int64(date.month)), "day": .integer(Int64(date.day)),
                "hour": .integer(seconds / 3600), "min": .integer(seconds % 3600 / 60), "sec": .integer(seconds % 60),
                // 1 = Sunday … 7 = Saturday, as os.date("*t") counts.
                "wday": .integer(Int64(date.weekday + 1)),
                "offset": .integer(mapping.offset(at: instant)),
            ])]
        }

        try state.register("at", in: "time") { call in
            let zone = try zone(call.arguments, at: 0)
            let fields = try call.arguments.object(at: 1)
            func field(_ name: String, default fallback: Int64? = nil, _ range: ClosedRange<Int64>) throws(LuaHostError) -> Int64 {
                guard let value = fields[name]?.int64Value ?? fallback else {
                    throw call.arguments.argumentError(at: 1, "\(name) is required (a whole number)")
                }
                guard range.contains(value) else { throw call.arguments.argumentError(at: 1, "\(name) must be \(range.lowerBound)…\(range.upperBound), got \(value)") }
                return value
            }
            let year = try field("year", 1...9999), month = try field("month", 1...12)
            let day = try field("day", 1...31)
            guard day <= Int64(CivilDate.daysInMonth(year: year, month: Int(month))) else {
                throw call.arguments.argumentError(at: 1, "\(year)-\(month) has no day \(day)")
            }
            let hour = try field("hour", default: 0, 0...23), minute = try field("min", default: 0, 0...59)
            let second = try field("sec", default: 0, 0...59)
            let wall = CivilDate(year: year, month: Int(month), day: Int(day)).days * 86_400 + hour * 3600 + minute * 60 + second
            return [.integer(ZoneMapping(zone: zone).fireInstant(forWall: wall))]
        }
    }

    private static func zone(_ arguments: LuaArguments, at index: Int) throws(LuaHostError) -> TimeZone {
        let name = try arguments.string(at: index)
        guard let zone = TimeZone(identifier: name) else {
            throw arguments.argumentError(at: index, "unknown time zone \"\(name)\"; expected an IANA name like \"Asia/Jakarta\" or \"UTC\"")
        }
        return zone
    }
}
