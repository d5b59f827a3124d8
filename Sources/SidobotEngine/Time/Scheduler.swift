import Logging

/// Where the scheduler finds pending timers (the store).
protocol TimerSource: AnyObject {
    /// When the earliest pending timer is due.
    var nextTimerDue: UnixTime? { get }
    /// Takes the earliest timer due at or before `now` out of the pending set.
    func takeDueTimer(now: UnixTime) -> TimerRecord?
}

/// A schedule as the scheduler keeps it: its key in its rule, when it fires, and whether ticks
/// missed while the engine was down run once when it comes back.
struct ScheduleSpec {
    var key: String
    var schedule: any FireSchedule
    var catchUp: Bool
}

/// Something the scheduler found due.
enum DueEvent: Equatable {
    /// A timer fell due; `decision` says whether its late policy lets it fire.
    case timer(TimerRecord, TimerLateDecision)
    /// A schedule's tick at `tick`.
    case schedule(rule: String, key: String, tick: UnixTime)
}

/// Timers and schedules: says what falls due when, and hands it out earliest first. It does not
/// dispatch anything: the engine turns each ``DueEvent`` into an event (or a skip) and journals it.
///
/// Schedules (`every`, `cron`) are kept by rule with their next fire time; a quarantined rule's
/// are paused. Timers stay in the store (they are durable), read through ``TimerSource``.
/// Owned by the engine actor.
final class Scheduler {
    private struct Entry {
        let key: String
        let schedule: any FireSchedule
        var next: UnixTime?
    }

    private var schedules: [String: [Entry]] = [:]
    /// Rules in name order: ties between schedules go to the first rule, the same every run.
    private var ruleOrder: [String] = []
    private var paused: Set<String> = []
    private let timers: any TimerSource
    private let grace: Duration
    private let logger: Logger

    init(timers: any TimerSource, grace: Duration, logger: Logger) {
        self.timers = timers
        self.grace = grace
        self.logger = logger
    }

    /// Takes over a rule's schedules (a load or a reload) and releases a pause. Each schedule's
    /// next fire time comes from when it last fired (`lastFired`, by key): a tick missed while the
    /// engine was down is returned to run now when the schedule catches up, and skipped (logged)
    /// when it does not.
    func register(rule: String, schedules registered: [ScheduleSpec], lastFired: (String) -> UnixTime?, now: UnixTime) -> [DueEvent] {
        var entries: [Entry] = []
        var due: [DueEvent] = []
        for schedule in registered {
            guard let last = lastFired(schedule.key) else {
                entries.append(Entry(key: schedule.key, schedule: schedule.schedule, next: schedule.schedule.nextFire(after: now)))
                continue
            }
            let decision = CatchUpPolicy(catchUp: schedule.catchUp).decide(schedule: schedule.schedule, lastFired: last, now: now)
            entries.append(Entry(key: schedule.key, schedule: schedule.schedule, next: decision.next))
            if let runNow = decision.runNow {
                due.append(.schedule(rule: rule, key: schedule.key, tick: runNow))
            } else if let missed = decision.missed {
                logger.info("schedule ticks missed while the engine was down were skipped (catch_up is off)",
                            metadata: ["rule": "\(rule)", "schedule": "\(schedule.key)", "missed": "\(missed.count)"])
            }
        }
        if schedules.updateValue(entries, forKey: rule) == nil { ruleOrder = schedules.keys.sorted() }
        paused.remove(rule)
        return due
    }

    /// Forgets a rule's schedules (its file is gone).
    func remove(rule: String) {
        guard schedules.removeValue(forKey: rule) != nil else { return }
        ruleOrder = schedules.keys.sorted()
        paused.remove(rule)
    }

    /// Stops a rule's schedules until it is registered again (a quarantine, released by a reload).
    func pause(rule: String) { paused.insert(rule) }

    /// When a rule's schedule fires next.
    func nextFire(rule: String, key: String) -> UnixTime? {
        schedules[rule]?.first { $0.key == key }?.next
    }

    /// When the next timer or schedule falls due.
    func nextDue() -> UnixTime? {
        var next = timers.nextTimerDue
        for rule in ruleOrder where !paused.contains(rule) {
            for entry in schedules[rule] ?? [] {
                if let due = entry.next, next.map({ due < $0 }) ?? true { next = due }
            }
        }
        return next
    }

    /// The earliest timer or schedule tick due at or before `now` (a timer first when both are due
    /// at the same time), taken: a timer leaves the pending set, a schedule moves to its next fire
    /// time after both the tick and `now` (ticks missed while the engine was busy run once).
    func takeDue(now: UnixTime) -> DueEvent? {
        let timerDue = timers.nextTimerDue.flatMap { $0 <= now ? $0 : nil }
        var earliest: (rule: String, index: Int, at: UnixTime)?
        for rule in ruleOrder where !paused.contains(rule) {
            for (index, entry) in (schedules[rule] ?? []).enumerated() {
                if let due = entry.next, due <= now, earliest.map({ due < $0.at }) ?? true { earliest = (rule, index, due) }
            }
        }
        if let timerDue, earliest.map({ timerDue <= $0.at }) ?? true {
            guard let timer = timers.takeDueTimer(now: now) else { return nil }
            return .timer(timer, timer.late.decide(due: timer.due, now: now, grace: grace))
        }
        guard let earliest, var entries = schedules[earliest.rule] else { return nil }
        let key = entries[earliest.index].key
        entries[earliest.index].next = entries[earliest.index].schedule.nextFire(after: max(earliest.at, now))
        schedules[earliest.rule] = entries
        return .schedule(rule: earliest.rule, key: key, tick: earliest.at)
    }
}
