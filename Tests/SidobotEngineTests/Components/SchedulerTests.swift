import Foundation
import Logging
@testable import SidobotEngine
import Testing

/// The scheduler alone: no engine, no Lua, timers from a plain store.
@Suite("Scheduler")
struct SchedulerTests {
    final class Timers: TimerSource {
        var store = TimerStore()
        var nextTimerDue: UnixTime? { store.nextDue }
        func takeDueTimer(now: UnixTime) -> TimerRecord? { store.popDue(now: now) }

        func add(_ id: UInt64, due: UnixTime, late: TimerLatePolicy = .default) throws {
            store.add(try TimerRecord(id: TimerID(id), rule: "r", name: "t\(id)", payload: .null, due: due, createdAt: due, late: late))
        }
    }

    static func scheduler(_ timers: Timers = Timers()) -> Scheduler {
        Scheduler(timers: timers, grace: .seconds(60), logger: Logger(label: "test"))
    }

    static func cron(_ text: String, _ zone: String, catchUp: Bool = false) throws -> ScheduleSpec {
        ScheduleSpec(key: "cron \(text) \(zone)", schedule: try CronSchedule(text, timeZoneIdentifier: zone), catchUp: catchUp)
    }

    /// Takes everything due up to `end`, moving time to each due time as the engine does.
    static func drain(_ scheduler: Scheduler, through end: UnixTime) -> [(String, UnixTime)] {
        var fired: [(String, UnixTime)] = []
        while let next = scheduler.nextDue(), next <= end {
            while let due = scheduler.takeDue(now: next) {
                switch due {
                case .timer(let timer, _): fired.append(("timer \(timer.id)", timer.due))
                case .schedule(let rule, let key, let tick): fired.append(("\(rule) \(key)", tick))
                }
            }
        }
        return fired
    }

    @Test("a daily 02:30 in Berlin fires once on the spring-forward day (03:00 CEST) and once on the fall-back day")
    func dailyJobAcrossDST() throws {
        let scheduler = Self.scheduler()
        let start = utcInstant("2026-03-28T12:00Z")
        #expect(scheduler.register(rule: "d", schedules: [try Self.cron("30 2 * * *", "Europe/Berlin")], lastFired: { _ in nil }, now: start).isEmpty)
        let spring = Self.drain(scheduler, through: utcInstant("2026-03-30T12:00Z")).map(\.1.description)
        #expect(spring == ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"])

        let autumn = Self.scheduler()
        _ = autumn.register(rule: "d", schedules: [try Self.cron("30 2 * * *", "Europe/Berlin")], lastFired: { _ in nil },
                            now: utcInstant("2026-10-24T12:00Z"))
        // 02:30 happens twice on 2026-10-25; the job runs at the first (CEST).
        #expect(Self.drain(autumn, through: utcInstant("2026-10-25T12:00Z")).map(\.1.description) == ["2026-10-25T00:30:00Z"])
    }

    @Test("timers and schedules come out earliest first, a timer before a schedule due at the same time, rules in name order")
    func ordering() throws {
        let timers = Timers()
        let scheduler = Self.scheduler(timers)
        let start = utcInstant("2026-01-01T00:00Z")
        let every = ScheduleSpec(key: "every 1h", schedule: IntervalSchedule(every: .seconds(3600))!, catchUp: false)
        _ = scheduler.register(rule: "b", schedules: [every], lastFired: { _ in nil }, now: start)
        _ = scheduler.register(rule: "a", schedules: [every], lastFired: { _ in nil }, now: start)
        try timers.add(1, due: utcInstant("2026-01-01T01:00Z"))
        try timers.add(2, due: utcInstant("2026-01-01T00:30Z"))
        let fired = Self.drain(scheduler, through: utcInstant("2026-01-01T01:00Z")).map(\.0)
        #expect(fired == ["timer t-2", "timer t-1", "a every 1h", "b every 1h"])
    }

    @Test("a paused rule's schedules do not fire until it is registered again")
    func pause() throws {
        let scheduler = Self.scheduler()
        let start = utcInstant("2026-01-01T00:00Z")
        let every = ScheduleSpec(key: "every 1m", schedule: IntervalSchedule(every: .seconds(60))!, catchUp: false)
        _ = scheduler.register(rule: "q", schedules: [every], lastFired: { _ in nil }, now: start)
        scheduler.pause(rule: "q")
        #expect(scheduler.nextDue() == nil)
        #expect(scheduler.takeDue(now: utcInstant("2026-01-01T00:10Z")) == nil)
        _ = scheduler.register(rule: "q", schedules: [every], lastFired: { _ in nil }, now: utcInstant("2026-01-01T00:10Z"))
        #expect(scheduler.nextDue() == utcInstant("2026-01-01T00:11Z"))
        scheduler.remove(rule: "q")
        #expect(scheduler.nextDue() == nil)
    }

    @Test("ticks missed while the engine was down run once with catch_up, and are skipped without it")
    func catchUp() throws {
        let lastFired = utcInstant("2026-01-05T02:00Z")  // 09:00 in Jakarta
        let now = utcInstant("2026-01-08T05:00Z")  // three 09:00s missed
        let catching = Self.scheduler()
        let due = catching.register(rule: "r", schedules: [try Self.cron("0 9 * * *", "Asia/Jakarta", catchUp: true)],
                                    lastFired: { _ in lastFired }, now: now)
        guard case .schedule(let rule, _, let tick)? = due.first, due.count == 1 else {
            Issue.record("expected one catch-up tick, got \(due)")
            return
        }
        #expect(rule == "r" && tick == utcInstant("2026-01-08T02:00Z"))
        #expect(catching.nextDue() == utcInstant("2026-01-09T02:00Z"))

        let skipping = Self.scheduler()
        #expect(skipping.register(rule: "r", schedules: [try Self.cron("0 9 * * *", "Asia/Jakarta")], lastFired: { _ in lastFired }, now: now).isEmpty)
        #expect(skipping.nextDue() == utcInstant("2026-01-09T02:00Z"))
    }

    @Test("a timer found late comes with its late policy's decision")
    func lateTimers() throws {
        let timers = Timers()
        let scheduler = Self.scheduler(timers)
        try timers.add(1, due: utcInstant("2026-01-01T00:00Z"), late: TimerLatePolicy(mode: .skip))
        try timers.add(2, due: utcInstant("2026-01-01T00:00:01Z"))
        let now = utcInstant("2026-01-01T02:00Z")
        guard case .timer(let first, .skip)? = scheduler.takeDue(now: now), case .timer(let second, .fire)? = scheduler.takeDue(now: now) else {
            Issue.record("expected a skip then a fire")
            return
        }
        #expect(first.id == TimerID(1) && second.id == TimerID(2))
        #expect(scheduler.takeDue(now: now) == nil)
    }
}
