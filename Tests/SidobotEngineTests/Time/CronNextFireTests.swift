import Foundation
import Testing
@testable import SidobotEngine

private let utc = namedZone("UTC")

@Suite("CronExpression fire times in UTC")
struct CronNextFireTests {
    @Test("nextFire table", arguments: [
        ("* * * * *", "2026-01-01T00:00Z", "2026-01-01T00:01:00Z"),
        ("* * * * *", "2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z"),
        ("* * * * *", "2026-01-01T00:00:59.999Z", "2026-01-01T00:01:00Z"),
        ("* * * * *", "2025-12-31T23:59:00.001Z", "2026-01-01T00:00:00Z"),
        ("*/15 * * * *", "2026-01-01T10:07Z", "2026-01-01T10:15:00Z"),
        ("*/15 * * * *", "2026-01-01T10:45Z", "2026-01-01T11:00:00Z"),
        ("*/15 * * * *", "2026-01-01T23:50Z", "2026-01-02T00:00:00Z"),
        ("10-50/10 * * * *", "2026-01-01T10:50Z", "2026-01-01T11:10:00Z"),
        ("1,3,5 * * * *", "2026-01-01T10:03Z", "2026-01-01T10:05:00Z"),
        ("0 9 * * 1-5", "2026-01-02T09:00Z", "2026-01-05T09:00:00Z"),        // Friday → Monday
        ("0 9 * * MON-FRI", "2026-01-03T12:00Z", "2026-01-05T09:00:00Z"),    // Saturday → Monday
        ("30 8 * * 7", "2026-01-01T00:00Z", "2026-01-04T08:30:00Z"),         // 7 = Sunday
        ("0 0 1 * *", "2026-01-31T12:00Z", "2026-02-01T00:00:00Z"),
        ("0 0 31 * *", "2026-01-31T00:00Z", "2026-03-31T00:00:00Z"),         // no 31 February
        ("0 12 * JAN,JUL *", "2026-02-01T00:00Z", "2026-07-01T12:00:00Z"),
        ("0 0 * * *", "2026-12-31T00:00Z", "2027-01-01T00:00:00Z"),
        ("59 23 31 12 *", "2026-12-31T23:59Z", "2027-12-31T23:59:00Z"),
        ("@yearly", "2026-06-01T00:00Z", "2027-01-01T00:00:00Z"),
        ("@monthly", "2026-01-15T00:00Z", "2026-02-01T00:00:00Z"),
        ("@weekly", "2026-01-01T00:00Z", "2026-01-04T00:00:00Z"),           // Thursday → Sunday
        ("@daily", "2026-01-01T00:00Z", "2026-01-02T00:00:00Z"),
        ("@hourly", "2026-01-01T10:00Z", "2026-01-01T11:00:00Z"),
        ("0 0 29 2 *", "2026-01-01T00:00Z", "2028-02-29T00:00:00Z"),
        ("0 0 29 2 *", "2028-02-29T00:00Z", "2032-02-29T00:00:00Z"),
        ("0 0 29 2 *", "2096-03-01T00:00Z", "2104-02-29T00:00:00Z"),        // 2100 is not a leap year
        ("0 0 29 2 */7", "2026-01-01T00:00Z", "2032-02-29T00:00:00Z"),       // Feb 29 on a Sunday
        ("0 0 1 1 *", "1969-12-31T12:00Z", "1970-01-01T00:00:00Z"),
        ("0 0 * * *", "1960-02-28T10:00Z", "1960-02-29T00:00:00Z"),          // before the epoch
    ])
    func nextFire(expression: String, after: String, expected: String) {
        #expect(parsedCron(expression).nextFire(after: utcInstant(after), in: utc)?.description == expected)
    }

    @Test("previousFire table", arguments: [
        ("0 9 * * 1-5", "2026-01-05T08:59Z", "2026-01-02T09:00:00Z"),
        ("0 9 * * 1-5", "2026-01-05T09:00Z", "2026-01-05T09:00:00Z"),        // at or before
        ("*/15 * * * *", "2026-01-01T00:07Z", "2026-01-01T00:00:00Z"),
        ("*/15 * * * *", "2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00Z"),
        ("0 0 31 * *", "2026-03-30T00:00Z", "2026-01-31T00:00:00Z"),
        ("0 0 29 2 *", "2027-06-01T00:00Z", "2024-02-29T00:00:00Z"),
        ("0 0 29 2 *", "2104-02-28T00:00Z", "2096-02-29T00:00:00Z"),
        ("@yearly", "2026-06-01T00:00Z", "2026-01-01T00:00:00Z"),
        ("59 23 31 12 *", "2026-12-31T23:58Z", "2025-12-31T23:59:00Z"),
    ])
    func previousFire(expression: String, atOrBefore: String, expected: String) {
        #expect(parsedCron(expression).previousFire(atOrBefore: utcInstant(atOrBefore), in: utc)?.description == expected)
    }

    @Test("day-of-month and day-of-week: either matches when both are restricted (Vixie)")
    func dayRuleOr() {
        // April 2026: the 13th is a Monday; Fridays are the 3rd, 10th, 17th, 24th.
        let fridaysAndThirteenths = parsedCron("0 0 13 * 5")
        let times = fridaysAndThirteenths.fireTimes(after: utcInstant("2026-04-09T00:00Z"), through: utcInstant("2026-04-18T00:00Z"), in: utc)
        #expect(times.map(\.description) == ["2026-04-10T00:00:00Z", "2026-04-13T00:00:00Z", "2026-04-17T00:00:00Z"])

        // The classic surprise: "first Monday of the month" written this way fires on days 1-7 and every Monday.
        let firstWeek = parsedCron("0 0 1-7 * 1")
        let january = firstWeek.fireTimes(after: utcInstant("2025-12-31T00:00Z"), through: utcInstant("2026-01-31T00:00Z"), in: utc)
        #expect(january.map { String($0.description.prefix(10)) } == [
            "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05", "2026-01-06", "2026-01-07",
            "2026-01-12", "2026-01-19", "2026-01-26",
        ])
    }

    @Test("day-of-month and day-of-week: both must match when either starts with *")
    func dayRuleAnd() {
        // Odd days (*/2 counts as *, as in Vixie cron) that are Mondays: January 5th and 19th.
        let oddMondays = parsedCron("0 0 */2 * 1")
        let times = oddMondays.fireTimes(after: utcInstant("2025-12-31T00:00Z"), through: utcInstant("2026-01-31T00:00Z"), in: utc)
        #expect(times.map(\.description) == ["2026-01-05T00:00:00Z", "2026-01-19T00:00:00Z"])
        // Plain * in day-of-week: the day of the month alone decides.
        let thirteenths = parsedCron("0 0 13 * *")
        #expect(thirteenths.nextFire(after: utcInstant("2026-04-01T00:00Z"), in: utc)?.description == "2026-04-13T00:00:00Z")
        // Plain * in day-of-month: the day of the week alone decides.
        let fridays = parsedCron("0 0 * * 5")
        #expect(fridays.nextFire(after: utcInstant("2026-04-11T00:00Z"), in: utc)?.description == "2026-04-17T00:00:00Z")
    }

    @Test("fireTimes honours the bounds and the limit")
    func fireTimesLimits() {
        let quarterHours = parsedCron("*/15 * * * *")
        let start = utcInstant("2026-01-01T10:00Z")
        let end = utcInstant("2026-01-01T11:00Z")
        let all = quarterHours.fireTimes(after: start, through: end, in: utc)
        #expect(all.map(\.description) == ["2026-01-01T10:15:00Z", "2026-01-01T10:30:00Z", "2026-01-01T10:45:00Z", "2026-01-01T11:00:00Z"])
        #expect(quarterHours.fireTimes(after: start, through: end, in: utc, limit: 2).count == 2)
        #expect(quarterHours.fireTimes(after: end, through: start, in: utc).isEmpty)
        let schedule = CronSchedule(expression: quarterHours, timeZone: utc)
        #expect(schedule.fireTimes(after: start, through: end) == all)
    }

    /// The field-by-field search against a minute-by-minute scan, for random expressions and
    /// instants (seeded), in UTC, forwards and backwards.
    @Test("search agrees with a minute-by-minute scan (seeded random expressions)")
    func agreesWithScan() throws {
        var random = TimeTestRandom(seed: 2026)
        func field(_ range: ClosedRange<Int>, names: [String] = []) -> String {
            switch Int.random(in: 0..<7, using: &random) {
            case 0: return "*"
            case 1: return "*/\(Int.random(in: 1...max(1, range.upperBound / 2), using: &random))"
            case 2:
                let a = Int.random(in: range, using: &random)
                let b = Int.random(in: a...range.upperBound, using: &random)
                return "\(a)-\(b)"
            case 3:
                let a = Int.random(in: range, using: &random)
                let b = Int.random(in: a...range.upperBound, using: &random)
                return "\(a)-\(b)/\(Int.random(in: 1...3, using: &random))"
            case 4:
                return (0..<Int.random(in: 1...3, using: &random)).map { _ in String(Int.random(in: range, using: &random)) }.joined(separator: ",")
            case 5 where !names.isEmpty:
                return names[Int.random(in: 0..<names.count, using: &random)]
            default:
                return String(Int.random(in: range, using: &random))
            }
        }
        var checked = 0
        var attempts = 0
        while checked < 150 && attempts < 2000 {
            attempts += 1
            let text = [
                field(0...59), field(0...23), field(1...28), field(1...12, names: ["JAN", "MAR", "OCT"]),
                field(0...7, names: ["MON", "SUN", "FRI"]),
            ].joined(separator: " ")
            let expression = try CronExpression(text)
            let start = UnixTime(seconds: Int64.random(in: 1_700_000_000...1_900_000_000, using: &random) + Int64.random(in: 0...59, using: &random))
            // Scan at most 40 days of minutes each way (days first, then the minutes of matching days).
            let scanNext = expression.scan(from: start.seconds.floorDivided(by: 60) + 1, by: 1, days: 40)
            let scanPrevious = expression.scan(from: start.seconds.floorDivided(by: 60), by: -1, days: 40)
            guard let scanNext, let scanPrevious else { continue }  // too sparse to scan; covered elsewhere
            #expect(expression.nextFire(after: start, in: utc) == scanNext, "\(text) after \(start)")
            #expect(expression.previousFire(atOrBefore: start, in: utc) == scanPrevious, "\(text) at or before \(start)")
            checked += 1
        }
        #expect(checked == 150)
    }
}

extension CronExpression {
    /// Whether the wall minute `minute` (minutes since the epoch) matches, straight from the fields.
    func matches(unixMinute minute: Int64) -> Bool {
        let date = CivilDate(days: minute.floorDivided(by: 1440))
        let minuteOfDay = Int(minute.floorModulo(1440))
        return minutes.hasBit(minuteOfDay % 60) && hours.hasBit(minuteOfDay / 60)
            && matchesDay(year: date.year, month: date.month, day: date.day)
    }

    /// The first matching UTC minute from `minute` (minutes since the epoch) going in direction
    /// `step` (+1 or -1), looking at most `days` days away: a plain scan, straight from the fields.
    func scan(from minute: Int64, by step: Int64, days: Int64) -> UnixTime? {
        var current = minute
        let end = minute + step * days * 1440
        while step > 0 ? current <= end : current >= end {
            let day = current.floorDivided(by: 1440)
            let date = CivilDate(days: day)
            if matchesDay(year: date.year, month: date.month, day: date.day) {
                let minuteOfDay = Int(current.floorModulo(1440))
                if minutes.hasBit(minuteOfDay % 60) && hours.hasBit(minuteOfDay / 60) {
                    return UnixTime(seconds: current * 60)
                }
                current += step
            } else {
                // Jump to the first (or last) minute of the next day in the scan direction.
                current = step > 0 ? (day + 1) * 1440 : day * 1440 - 1
            }
        }
        return nil
    }
}
