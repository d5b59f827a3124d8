import Foundation
import Testing
@testable import SidobotEngine

private let berlin = namedZone("Europe/Berlin")
private let newYork = namedZone("America/New_York")
private let jakarta = namedZone("Asia/Jakarta")

private func fires(_ expression: String, _ zone: TimeZone, from start: String, through end: String) -> [String] {
    parsedCron(expression).fireTimes(after: utcInstant(start), through: utcInstant(end), in: zone).map(\.description)
}

/// The local dates (YYYY-MM-DD in `zone`) of the given fire times, with how often each occurs.
private func runsPerLocalDay(_ times: [UnixTime], in zone: TimeZone) -> [String: Int] {
    times.reduce(into: [:]) { counts, time in counts[String(time.formatted(in: zone).prefix(10)), default: 0] += 1 }
}

/// 2026 transitions: Berlin springs forward 2026-03-29 01:00 UTC (02:00 CET → 03:00 CEST) and falls
/// back 2026-10-25 01:00 UTC (03:00 CEST → 02:00 CET); New York springs forward 2026-03-08 07:00
/// UTC (02:00 EST → 03:00 EDT) and falls back 2026-11-01 06:00 UTC (02:00 EDT → 01:00 EST).
@Suite("CronExpression across DST transitions")
struct CronDSTTests {
    @Test("the tz data agrees with the 2026 transitions these tests assume")
    func transitions() {
        #expect(berlin.secondsFromGMT(for: utcInstant("2026-03-29T00:59:59Z").date) == 3600)
        #expect(berlin.secondsFromGMT(for: utcInstant("2026-03-29T01:00Z").date) == 7200)
        #expect(berlin.secondsFromGMT(for: utcInstant("2026-10-25T00:59:59Z").date) == 7200)
        #expect(berlin.secondsFromGMT(for: utcInstant("2026-10-25T01:00Z").date) == 3600)
        #expect(newYork.secondsFromGMT(for: utcInstant("2026-03-08T06:59:59Z").date) == -18000)
        #expect(newYork.secondsFromGMT(for: utcInstant("2026-03-08T07:00Z").date) == -14400)
        #expect(newYork.secondsFromGMT(for: utcInstant("2026-11-01T05:59:59Z").date) == -14400)
        #expect(newYork.secondsFromGMT(for: utcInstant("2026-11-01T06:00Z").date) == -18000)
    }

    // MARK: A daily job at 02:30

    @Test("Berlin spring-forward: 02:30 does not exist, runs once at 03:00 CEST")
    func berlinSpringDaily() {
        let times = fires("30 2 * * *", berlin, from: "2026-03-27T12:00Z", through: "2026-03-31T12:00Z")
        #expect(times == ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"])
        #expect(parsedCron("30 2 * * *").nextFire(after: utcInstant("2026-03-28T12:00Z"), in: berlin)?.formatted(in: berlin)
            == "2026-03-29T03:00:00+02:00")
    }

    @Test("Berlin fall-back: 02:30 happens twice, runs once at the first (CEST)")
    func berlinFallDaily() {
        let times = fires("30 2 * * *", berlin, from: "2026-10-23T12:00Z", through: "2026-10-27T12:00Z")
        #expect(times == ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z"])
        // Asked during the second 02:00-02:59 (CET), the next run is the next day's.
        #expect(parsedCron("30 2 * * *").nextFire(after: utcInstant("2026-10-25T01:10Z"), in: berlin)?.description == "2026-10-26T01:30:00Z")
    }

    @Test("New York spring-forward: 02:30 runs once at 03:00 EDT")
    func newYorkSpringDaily() {
        let times = fires("30 2 * * *", newYork, from: "2026-03-06T12:00Z", through: "2026-03-10T12:00Z")
        #expect(times == ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"])
    }

    @Test("New York fall-back: 02:30 is not repeated there; 01:30 is, and runs once (EDT)")
    func newYorkFallDaily() {
        let twoThirty = fires("30 2 * * *", newYork, from: "2026-10-30T12:00Z", through: "2026-11-03T12:00Z")
        #expect(twoThirty == ["2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z", "2026-11-03T07:30:00Z"])
        let oneThirty = fires("30 1 * * *", newYork, from: "2026-10-30T12:00Z", through: "2026-11-03T12:00Z")
        #expect(oneThirty == ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", "2026-11-03T06:30:00Z"])
    }

    @Test("daily jobs run exactly once on every local day around all four transitions",
          arguments: [
              ("Europe/Berlin", "2026-03-25T00:00Z", "2026-04-02T00:00Z", "2026-03-29"),
              ("Europe/Berlin", "2026-10-21T00:00Z", "2026-10-29T00:00Z", "2026-10-25"),
              ("America/New_York", "2026-03-04T12:00Z", "2026-03-12T12:00Z", "2026-03-08"),
              ("America/New_York", "2026-10-28T12:00Z", "2026-11-05T12:00Z", "2026-11-01"),
          ])
    func dailyOncePerDay(identifier: String, start: String, end: String, transitionDay: String) {
        let zone = namedZone(identifier)
        for expression in ["30 2 * * *", "30 1 * * *", "0 2 * * *", "59 1 * * *", "0 3 * * *", "0 0 * * *"] {
            let times = parsedCron(expression).fireTimes(after: utcInstant(start), through: utcInstant(end), in: zone)
            let perDay = runsPerLocalDay(times, in: zone)
            #expect(perDay[transitionDay] == 1, "\(expression) in \(identifier): \(perDay)")
            #expect(perDay.count >= 7, "\(expression) in \(identifier): \(perDay)")
            #expect(perDay.values.allSatisfy { $0 == 1 }, "\(expression) in \(identifier): \(perDay)")
        }
    }

    // MARK: Hourly and sub-hourly jobs

    @Test("Berlin spring-forward: hourly and */15 keep their real-time rhythm")
    func berlinSpringFrequent() {
        #expect(fires("0 * * * *", berlin, from: "2026-03-28T22:30Z", through: "2026-03-29T02:30Z")
            == ["2026-03-28T23:00:00Z", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"])
        #expect(fires("*/15 * * * *", berlin, from: "2026-03-29T00:20Z", through: "2026-03-29T01:30Z")
            == ["2026-03-29T00:30:00Z", "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z", "2026-03-29T01:30:00Z"])
        // 02:30 is skipped; its run comes at 03:00 CEST, then 03:30 CEST as usual.
        #expect(fires("30 * * * *", berlin, from: "2026-03-29T00:00Z", through: "2026-03-29T02:00Z")
            == ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"])
        // A job limited to the missing hour runs once, at the end of the gap.
        #expect(fires("*/10 2 * * *", berlin, from: "2026-03-28T12:00Z", through: "2026-03-29T12:00Z")
            == ["2026-03-29T01:00:00Z"])
    }

    @Test("Berlin fall-back: hourly and */15 do not repeat the wall times of the repeated hour")
    func berlinFallFrequent() {
        // 01:00 CEST, 02:00 CEST, (02:00 CET skipped), 03:00 CET, 04:00 CET.
        #expect(fires("0 * * * *", berlin, from: "2026-10-24T22:30Z", through: "2026-10-25T03:00Z")
            == ["2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"])
        #expect(fires("*/15 * * * *", berlin, from: "2026-10-24T23:50Z", through: "2026-10-25T02:20Z")
            == ["2026-10-25T00:00:00Z", "2026-10-25T00:15:00Z", "2026-10-25T00:30:00Z", "2026-10-25T00:45:00Z",
                "2026-10-25T02:00:00Z", "2026-10-25T02:15:00Z"])
        let quarterHours = parsedCron("*/15 * * * *")
        #expect(quarterHours.nextFire(after: utcInstant("2026-10-25T01:20Z"), in: berlin)?.formatted(in: berlin) == "2026-10-25T03:00:00+01:00")
        #expect(quarterHours.previousFire(atOrBefore: utcInstant("2026-10-25T01:30Z"), in: berlin)?.description == "2026-10-25T00:45:00Z")
        #expect(quarterHours.previousFire(atOrBefore: utcInstant("2026-10-25T02:00Z"), in: berlin)?.description == "2026-10-25T02:00:00Z")
        // A job limited to the repeated hour runs in its first pass only.
        #expect(fires("*/20 2 * * *", berlin, from: "2026-10-24T12:00Z", through: "2026-10-25T12:00Z")
            == ["2026-10-25T00:00:00Z", "2026-10-25T00:20:00Z", "2026-10-25T00:40:00Z"])
    }

    @Test("New York: hourly and */15 across both transitions")
    func newYorkFrequent() {
        #expect(fires("0 * * * *", newYork, from: "2026-03-08T05:30Z", through: "2026-03-08T08:30Z")
            == ["2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"])
        #expect(fires("*/15 * * * *", newYork, from: "2026-03-08T06:40Z", through: "2026-03-08T07:20Z")
            == ["2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:15:00Z"])
        // 00:00 EDT, 01:00 EDT, (01:00 EST skipped), 02:00 EST.
        #expect(fires("0 * * * *", newYork, from: "2026-11-01T03:30Z", through: "2026-11-01T07:30Z")
            == ["2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z"])
        #expect(fires("*/15 * * * *", newYork, from: "2026-11-01T05:40Z", through: "2026-11-01T07:20Z")
            == ["2026-11-01T05:45:00Z", "2026-11-01T07:00:00Z", "2026-11-01T07:15:00Z"])
    }

    @Test("Asia/Jakarta has no DST: weekday 09:00 WIB is 02:00 UTC all year")
    func jakartaHasNoDST() {
        #expect(fires("0 9 * * 1-5", jakarta, from: "2026-03-26T12:00Z", through: "2026-04-01T00:00Z")
            == ["2026-03-27T02:00:00Z", "2026-03-30T02:00:00Z", "2026-03-31T02:00:00Z"])
        #expect(fires("30 2 * * *", jakarta, from: "2026-10-24T00:00Z", through: "2026-10-27T00:00Z")
            == ["2026-10-24T19:30:00Z", "2026-10-25T19:30:00Z", "2026-10-26T19:30:00Z"])
        let schedule = CronSchedule(expression: parsedCron("0 9 * * 1-5"), timeZone: jakarta)
        #expect(schedule.nextFire(after: utcInstant("2026-07-03T02:00Z"))?.formatted(in: jakarta) == "2026-07-06T09:00:00+07:00")
    }

    /// The rule stated without any of the implementation: walk UTC minute by minute, track the
    /// highest local wall time reached so far, and fire at an instant when it reaches new matching
    /// wall times (several at once after a gap). Repeated wall times reach nothing new.
    @Test("fire times equal an independent minute-by-minute model of the rule",
          arguments: [
              ("Europe/Berlin", "2026-03-27T00:00Z", "2026-03-31T00:00Z"),
              ("Europe/Berlin", "2026-10-23T00:00Z", "2026-10-27T00:00Z"),
              ("America/New_York", "2026-03-06T00:00Z", "2026-03-10T00:00Z"),
              ("America/New_York", "2026-10-30T00:00Z", "2026-11-03T00:00Z"),
              ("Asia/Jakarta", "2026-03-27T00:00Z", "2026-03-31T00:00Z"),
              ("Australia/Lord_Howe", "2026-04-03T00:00Z", "2026-04-07T00:00Z"),  // 30-minute shift
          ])
    func agreesWithModel(identifier: String, start: String, end: String) {
        let zone = namedZone(identifier)
        let expressions = ["* * * * *", "*/15 * * * *", "0 * * * *", "30 * * * *", "30 2 * * *", "30 1 * * *",
                           "45 1,2,3 * * *", "0 */2 * * *", "5-25/10 0-3 * * *", "0 0 * * *", "15 2 * * 0"]
        let startMinute = utcInstant(start).seconds / 60
        let endMinute = utcInstant(end).seconds / 60
        for text in expressions {
            let expression = parsedCron(text)
            var modelTimes: [UnixTime] = []
            var highestWall = (startMinute * 60 + Int64(zone.secondsFromGMT(for: UnixTime(seconds: startMinute * 60).date))) / 60
            for minute in (startMinute + 1)...endMinute {
                let wall = (minute * 60 + Int64(zone.secondsFromGMT(for: UnixTime(seconds: minute * 60).date))) / 60
                if wall > highestWall {
                    if ((highestWall + 1)...wall).contains(where: { expression.matches(unixMinute: $0) }) {
                        modelTimes.append(UnixTime(seconds: minute * 60))
                    }
                    highestWall = wall
                }
            }
            let times = expression.fireTimes(after: utcInstant(start), through: utcInstant(end), in: zone, limit: 10_000)
            #expect(times == modelTimes, "\(text) in \(identifier)")
            // And backwards: each fire time's predecessor is the previous one.
            for (earlier, later) in zip(times, times.dropFirst()) {
                #expect(expression.previousFire(atOrBefore: later - .milliseconds(1), in: zone) == earlier, "\(text) before \(later)")
            }
        }
    }
}
