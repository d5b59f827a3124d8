import Foundation
@testable import SidobotEngine

/// `"2026-03-29T01:00Z"`, `"2026-03-29T01:00:30Z"` or `"2026-03-29T01:00:30.250Z"` (UTC only).
func utcInstant(_ text: String) -> UnixTime {
    precondition(text.hasSuffix("Z"), "UTC instants only: \(text)")
    let body = text.dropLast()
    let halves = body.split(separator: "T")
    let date = halves[0].split(separator: "-").map { Int($0)! }
    let timeAndFraction = halves[1].split(separator: ".")
    let time = timeAndFraction[0].split(separator: ":").map { Int($0)! }
    let fraction = timeAndFraction.count > 1 ? String(timeAndFraction[1]) : "0"
    let milliseconds = Int64((fraction + "00").prefix(3))!
    let days = CivilDate(year: Int64(date[0]), month: date[1], day: date[2]).days
    let seconds = days * 86_400 + Int64(time[0] * 3600 + time[1] * 60 + (time.count > 2 ? time[2] : 0))
    return UnixTime(milliseconds: seconds * 1000 + milliseconds)
}

func namedZone(_ identifier: String) -> TimeZone {
    guard let zone = TimeZone(identifier: identifier) else { fatalError("no time zone \(identifier)") }
    return zone
}

func parsedCron(_ text: String) -> CronExpression {
    do {
        return try CronExpression(text)
    } catch {
        fatalError("\(error)")
    }
}

/// A small seeded generator (SplitMix64) so randomized tests replay exactly.
struct TimeTestRandom: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
