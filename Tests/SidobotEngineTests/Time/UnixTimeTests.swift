import Foundation
import Testing
@testable import SidobotEngine

@Suite("UnixTime and the civil calendar")
struct UnixTimeTests {
    @Test("ISO 8601 descriptions in UTC and in a zone")
    func descriptions() {
        #expect(UnixTime.epoch.description == "1970-01-01T00:00:00Z")
        #expect(UnixTime(seconds: 1_774_746_000).description == "2026-03-29T01:00:00Z")
        #expect(UnixTime(milliseconds: 1_774_746_000_250).description == "2026-03-29T01:00:00.250Z")
        #expect(UnixTime(milliseconds: -1).description == "1969-12-31T23:59:59.999Z")
        #expect(UnixTime(seconds: 1_774_746_000).formatted(in: namedZone("Europe/Berlin")) == "2026-03-29T03:00:00+02:00")
        #expect(UnixTime(seconds: 1_774_746_000).formatted(in: namedZone("America/New_York")) == "2026-03-28T21:00:00-04:00")
        #expect(UnixTime(seconds: 1_774_746_000).formatted(in: namedZone("Asia/Kolkata")) == "2026-03-29T06:30:00+05:30")
        #expect(UnixTime(seconds: 0).formatted(in: namedZone("UTC")) == "1970-01-01T00:00:00+00:00")
    }

    @Test("seconds round down, Lua numbers round to the millisecond")
    func conversions() {
        #expect(UnixTime(milliseconds: 1500).seconds == 1)
        #expect(UnixTime(milliseconds: -1500).seconds == -2)
        #expect(UnixTime(milliseconds: 1500).secondsValue == 1.5)
        #expect(UnixTime(secondsValue: 1.0005)?.milliseconds == 1001)
        #expect(UnixTime(secondsValue: -0.25)?.milliseconds == -250)
        #expect(UnixTime(secondsValue: .nan) == nil)
        #expect(UnixTime(secondsValue: 1e300) == nil)
        #expect(UnixTime(Date(timeIntervalSince1970: 1_774_746_000.5)).milliseconds == 1_774_746_000_500)
        #expect(UnixTime(seconds: .max).milliseconds == .max)
        #expect(UnixTime(seconds: 1_774_746_000).date == Date(timeIntervalSince1970: 1_774_746_000))
    }

    @Test("arithmetic with Duration saturates instead of trapping")
    func arithmetic() {
        let t = UnixTime(seconds: 100)
        #expect(t + .milliseconds(500) == UnixTime(milliseconds: 100_500))
        #expect(t - .seconds(101) == UnixTime(seconds: -1))
        #expect(t.duration(to: UnixTime(seconds: 160)) == .seconds(60))
        #expect(UnixTime(seconds: 160).duration(to: t) == .seconds(-60))
        #expect(t + .seconds(Int64.max) == UnixTime(milliseconds: .max))
        #expect(UnixTime(milliseconds: .max - 5) + .seconds(1) == UnixTime(milliseconds: .max))
        #expect(UnixTime(milliseconds: .min + 5) - .seconds(1) == UnixTime(milliseconds: .min))
        #expect(UnixTime(milliseconds: .min).description.hasPrefix("-292275055-"))
        #expect(t + .microseconds(-1500) == UnixTime(milliseconds: 99_999))
        #expect(UnixTime(milliseconds: .min).duration(to: UnixTime(milliseconds: .max)) == .milliseconds(Int64.max))
    }

    @Test("day numbers and civil dates agree with Foundation's Gregorian calendar")
    func civilDates() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = namedZone("UTC")
        var random = TimeTestRandom(seed: 99)
        let days = [-719_468, -1, 0, 1, 11_016, 20_512, 47_482, 2_932_896] + (0..<500).map { _ in Int64.random(in: -200_000...400_000, using: &random) }
        for day in days {
            let civil = CivilDate(days: day)
            #expect(civil.days == day)
            let components = calendar.dateComponents([.year, .month, .day, .weekday], from: Date(timeIntervalSince1970: Double(day) * 86_400))
            if day > -141_427 {  // Foundation switches to the Julian calendar before 1582-10-15
                #expect(Int64(components.year!) == civil.year && components.month! == civil.month && components.day! == civil.day, "day \(day)")
            }
            #expect(components.weekday! - 1 == civil.weekday, "day \(day)")
        }
        #expect(CivilDate.daysInMonth(year: 2028, month: 2) == 29)
        #expect(CivilDate.daysInMonth(year: 2100, month: 2) == 28)
        #expect(CivilDate.daysInMonth(year: 2000, month: 2) == 29)
        #expect(CivilDate(year: 2026, month: 3, day: 29).weekday == 0)
    }
}
