import Foundation
import Testing
@testable import SidobotEngine

private let nineDaily = CronSchedule(expression: parsedCron("0 9 * * *"), timeZone: namedZone("UTC"))

@Suite("Catch-up after downtime")
struct CatchUpPolicyTests {
    @Test("catch_up = true runs once for the whole missed period, as the latest missed tick")
    func runOnce() {
        let decision = CatchUpPolicy(catchUp: true).decide(
            schedule: nineDaily, lastFired: utcInstant("2026-01-01T09:00Z"), now: utcInstant("2026-01-04T12:00Z"))
        #expect(decision.runNow == utcInstant("2026-01-04T09:00Z"))
        #expect(decision.missed == MissedTicks(
            first: utcInstant("2026-01-02T09:00Z"), last: utcInstant("2026-01-04T09:00Z"), count: 3, countIsExact: true))
        #expect(decision.next == utcInstant("2026-01-05T09:00Z"))
    }

    @Test("catch_up = false skips to the next future tick, and still reports what was missed")
    func skip() {
        let decision = CatchUpPolicy(catchUp: false).decide(
            schedule: nineDaily, lastFired: utcInstant("2026-01-01T09:00Z"), now: utcInstant("2026-01-04T12:00Z"))
        #expect(decision.runNow == nil)
        #expect(decision.missed?.count == 3)
        #expect(decision.next == utcInstant("2026-01-05T09:00Z"))
    }

    @Test("a tick missed by less than the grace is just late: it runs in both modes")
    func grace() {
        for policy in [CatchUpPolicy.skip, .runOnce] {
            let late = policy.decide(schedule: nineDaily, lastFired: utcInstant("2026-01-01T09:00Z"), now: utcInstant("2026-01-02T09:00:30Z"))
            #expect(late.runNow == utcInstant("2026-01-02T09:00Z"))
            #expect(late.missed?.count == 1)
            #expect(late.next == utcInstant("2026-01-03T09:00Z"))
            let exactlyGrace = policy.decide(schedule: nineDaily, lastFired: utcInstant("2026-01-01T09:00Z"), now: utcInstant("2026-01-02T09:01Z"))
            #expect(exactlyGrace.runNow == utcInstant("2026-01-02T09:00Z"))
        }
        let tooLate = CatchUpPolicy.skip.decide(schedule: nineDaily, lastFired: utcInstant("2026-01-01T09:00Z"), now: utcInstant("2026-01-02T09:01:00.001Z"))
        #expect(tooLate.runNow == nil)
        let noGrace = CatchUpPolicy.skip.decide(
            schedule: nineDaily, lastFired: utcInstant("2026-01-01T09:00Z"), now: utcInstant("2026-01-02T09:00:01Z"), grace: .zero)
        #expect(noGrace.runNow == nil)
    }

    @Test("nothing missed, a new schedule, and a clock that went back")
    func nothingMissed() {
        for policy in [CatchUpPolicy.skip, .runOnce] {
            let upToDate = policy.decide(schedule: nineDaily, lastFired: utcInstant("2026-01-02T09:00Z"), now: utcInstant("2026-01-02T12:00Z"))
            #expect(upToDate == CatchUpDecision(runNow: nil, missed: nil, next: utcInstant("2026-01-03T09:00Z")))

            let new = policy.decide(schedule: nineDaily, lastFired: nil, now: utcInstant("2026-01-02T12:00Z"))
            #expect(new == CatchUpDecision(runNow: nil, missed: nil, next: utcInstant("2026-01-03T09:00Z")))

            // The last run is recorded "in the future": nothing is missed and it does not run again.
            let clockBack = policy.decide(schedule: nineDaily, lastFired: utcInstant("2026-01-05T09:00Z"), now: utcInstant("2026-01-03T10:00Z"))
            #expect(clockBack == CatchUpDecision(runNow: nil, missed: nil, next: utcInstant("2026-01-06T09:00Z")))
        }
    }

    @Test("counting stops at the limit for long outages of frequent schedules")
    func countLimit() {
        let everyMinute = CronSchedule(expression: parsedCron("* * * * *"), timeZone: namedZone("UTC"))
        let decision = CatchUpPolicy.runOnce.decide(
            schedule: everyMinute, lastFired: utcInstant("2026-01-01T00:00Z"), now: utcInstant("2026-02-01T00:00:30Z"), countLimit: 500)
        #expect(decision.runNow == utcInstant("2026-02-01T00:00Z"))
        #expect(decision.missed?.first == utcInstant("2026-01-01T00:01Z"))
        #expect(decision.missed?.count == 500)
        #expect(decision.missed?.countIsExact == false)
        #expect(decision.next == utcInstant("2026-02-01T00:01Z"))
    }

    @Test("works for every() schedules too, in real time")
    func interval() throws {
        let fiveMinutes = try #require(IntervalSchedule(every: .seconds(300)))
        let decision = CatchUpPolicy.runOnce.decide(
            schedule: fiveMinutes, lastFired: utcInstant("2026-01-01T10:00Z"), now: utcInstant("2026-01-01T10:17Z"))
        #expect(decision.runNow == utcInstant("2026-01-01T10:15Z"))
        #expect(decision.missed == MissedTicks(first: utcInstant("2026-01-01T10:05Z"), last: utcInstant("2026-01-01T10:15Z"), count: 3, countIsExact: true))
        #expect(decision.next == utcInstant("2026-01-01T10:20Z"))
    }

    @Test("catch-up across a DST gap counts each wall time once")
    func acrossDST() {
        let berlinHalfPast = CronSchedule(expression: parsedCron("30 * * * *"), timeZone: namedZone("Europe/Berlin"))
        // Down from 00:30 CET to 04:10 CEST on 2026-03-29: 01:30 CET, 03:00 CEST (for 02:30), 03:30 CEST.
        let decision = CatchUpPolicy.runOnce.decide(
            schedule: berlinHalfPast, lastFired: utcInstant("2026-03-28T23:30Z"), now: utcInstant("2026-03-29T02:10Z"))
        #expect(decision.missed == MissedTicks(first: utcInstant("2026-03-29T00:30Z"), last: utcInstant("2026-03-29T01:30Z"), count: 3, countIsExact: true))
        #expect(decision.runNow == utcInstant("2026-03-29T01:30Z"))
        #expect(decision.next == utcInstant("2026-03-29T02:30Z"))
    }
}

@Suite("IntervalSchedule")
struct IntervalScheduleTests {
    @Test("fires at anchor + k * period, strictly after / at or before")
    func firing() throws {
        let schedule = try #require(IntervalSchedule(every: .seconds(300), anchor: utcInstant("2026-01-01T00:01Z")))
        #expect(schedule.nextFire(after: utcInstant("2026-01-01T00:01Z")) == utcInstant("2026-01-01T00:06Z"))
        #expect(schedule.nextFire(after: utcInstant("2026-01-01T00:05:59Z")) == utcInstant("2026-01-01T00:06Z"))
        #expect(schedule.nextFire(after: utcInstant("2025-12-31T23:59Z")) == utcInstant("2026-01-01T00:01Z"))
        #expect(schedule.previousFire(atOrBefore: utcInstant("2026-01-01T00:06Z")) == utcInstant("2026-01-01T00:06Z"))
        #expect(schedule.previousFire(atOrBefore: utcInstant("2026-01-01T00:05:59Z")) == utcInstant("2026-01-01T00:01Z"))
        #expect(schedule.previousFire(atOrBefore: utcInstant("2026-01-01T00:00Z")) == utcInstant("2025-12-31T23:56Z"))
        #expect(schedule.description == "every 5m")
        #expect(IntervalSchedule(every: .zero) == nil)
        #expect(IntervalSchedule(every: .microseconds(999)) == nil)
        #expect(IntervalSchedule(every: .seconds(-5)) == nil)
        let halfSecond = try #require(IntervalSchedule(every: .milliseconds(500)))
        #expect(halfSecond.nextFire(after: UnixTime(milliseconds: 1_250)) == UnixTime(milliseconds: 1_500))
        let far = try #require(IntervalSchedule(every: .seconds(60)))
        #expect(far.nextFire(after: UnixTime(milliseconds: .max - 10)) == nil)
    }
}

@Suite("Timer late policy")
struct TimerLatePolicyTests {
    let due = utcInstant("2026-05-01T10:00Z")

    @Test("late = fire (default): fires whatever the delay, never before due")
    func fire() {
        let policy = TimerLatePolicy.default
        #expect(policy.decide(due: due, now: due - .milliseconds(1)) == .notDue)
        #expect(policy.decide(due: due, now: due) == .fire(lateBy: .zero))
        #expect(policy.decide(due: due, now: due + .seconds(3 * 3600)) == .fire(lateBy: .seconds(3 * 3600)))
        #expect(policy.decide(due: due, now: due + .seconds(90 * 86_400)) == .fire(lateBy: .seconds(90 * 86_400)))
    }

    @Test("max_lateness: later than that is skipped even with late = fire")
    func maxLateness() {
        let policy = TimerLatePolicy(mode: .fire, maxLateness: .seconds(3600))
        #expect(policy.decide(due: due, now: due + .seconds(1800)) == .fire(lateBy: .seconds(1800)))
        #expect(policy.decide(due: due, now: due + .seconds(3600)) == .fire(lateBy: .seconds(3600)))
        #expect(policy.decide(due: due, now: due + .milliseconds(3_600_001)) == .skip(lateBy: .milliseconds(3_600_001)))
        // A tolerance tighter than the default grace is honoured too.
        let strict = TimerLatePolicy(mode: .fire, maxLateness: .seconds(10))
        #expect(strict.decide(due: due, now: due + .seconds(30)) == .skip(lateBy: .seconds(30)))
    }

    @Test("late = skip: fires only on time (within the grace), or within max_lateness when given")
    func skip() {
        let policy = TimerLatePolicy(mode: .skip)
        #expect(policy.decide(due: due, now: due - .seconds(1)) == .notDue)
        #expect(policy.decide(due: due, now: due + .seconds(30)) == .fire(lateBy: .seconds(30)))
        #expect(policy.decide(due: due, now: due + .seconds(60)) == .fire(lateBy: .seconds(60)))
        #expect(policy.decide(due: due, now: due + .seconds(61)) == .skip(lateBy: .seconds(61)))
        #expect(policy.decide(due: due, now: due + .seconds(5), grace: .seconds(1)) == .skip(lateBy: .seconds(5)))
        let widened = TimerLatePolicy(mode: .skip, maxLateness: .seconds(3600))
        #expect(widened.decide(due: due, now: due + .seconds(1800)) == .fire(lateBy: .seconds(1800)))
        #expect(widened.decide(due: due, now: due + .seconds(7200)) == .skip(lateBy: .seconds(7200)))
    }

    @Test("the Lua options: late must be fire or skip")
    func options() throws {
        #expect(try TimerLatePolicy(late: nil) == .default)
        #expect(try TimerLatePolicy(late: "skip").mode == .skip)
        let fire = try TimerLatePolicy(late: "fire", maxLateness: try DurationText.parse("1h"))
        #expect(fire == TimerLatePolicy(mode: .fire, maxLateness: .seconds(3600)))
        #expect(throws: TimerLatePolicyError(late: "later")) { try TimerLatePolicy(late: "later") }
        #expect(TimerLatePolicyError(late: "later").description == "late = \"later\": expected \"fire\" or \"skip\"")
    }
}
