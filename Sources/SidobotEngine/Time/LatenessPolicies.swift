/// What a recurring schedule does about ticks that fell due while the engine was down:
/// `cron(expr, fn, { catch_up = true })` is `.runOnce`, the default (`catch_up = false`) is `.skip`.
///
/// `.runOnce` runs the handler **once** for the whole missed period, not once per missed tick:
/// a `*/5` reminder flow after a six-hour outage must not fire 72 times in a burst (and trip the
/// outbound rate limit or get the number banned). The one run carries the most recent missed
/// tick as its `scheduled_at`; `MissedTicks` says how many were folded into it, for the trace.
///
/// In both modes, a tick that fell due within `grace` before now (a restart that took a few
/// seconds) is not "missed": it is simply late and runs, as a running engine would have run it.
public enum CatchUpPolicy: Sendable, Hashable {
    /// `catch_up = true`: one run now for everything missed, then the normal schedule.
    case runOnce
    /// `catch_up = false` (default): forget missed ticks, wait for the next future one.
    case skip

    public init(catchUp: Bool) {
        self = catchUp ? .runOnce : .skip
    }

    /// Ticks missed by less than this count as merely late (restarts, deploys).
    public static let defaultGrace: Duration = .seconds(60)

    /// Decides, at start-up (or after any pause of the scheduler), what a schedule does now.
    ///
    /// - Parameters:
    ///   - lastFired: the `scheduled_at` of the last tick the engine ran (or skipped) for this
    ///     schedule, from the store; nil for a schedule that never ran (a new rule): nothing is
    ///     missed then, the first tick is the next future one.
    ///   - now: the current instant.
    ///   - countLimit: how many missed ticks to count at most (counting walks them one by one).
    /// If `lastFired` is after `now` (the clock went back), nothing is missed and `next` stays
    /// after `lastFired`, so no tick runs twice.
    public func decide(
        schedule: some FireSchedule,
        lastFired: UnixTime?,
        now: UnixTime,
        grace: Duration = CatchUpPolicy.defaultGrace,
        countLimit: Int = 1000
    ) -> CatchUpDecision {
        guard let lastFired else {
            return CatchUpDecision(runNow: nil, missed: nil, next: schedule.nextFire(after: now))
        }
        let next = schedule.nextFire(after: max(now, lastFired))
        guard let latest = schedule.previousFire(atOrBefore: now), latest > lastFired else {
            return CatchUpDecision(runNow: nil, missed: nil, next: next)
        }
        let limit = max(countLimit, 1)
        let ticks = schedule.fireTimes(after: lastFired, through: now, limit: limit)
        let missed = MissedTicks(
            first: ticks.first ?? latest,
            last: latest,
            count: max(ticks.count, 1),
            countIsExact: ticks.count < limit || ticks.last == latest)
        let withinGrace = latest.duration(to: now) <= grace
        let runNow: UnixTime? = (self == .runOnce || withinGrace) ? latest : nil
        return CatchUpDecision(runNow: runNow, missed: missed, next: next)
    }
}

/// The ticks of a schedule that fell due while nothing ran them.
public struct MissedTicks: Sendable, Hashable {
    /// The oldest and the most recent missed tick.
    public var first: UnixTime
    public var last: UnixTime
    /// How many ticks, up to the count limit given to `decide`.
    public var count: Int
    /// False when counting stopped at the limit (there were at least `count`).
    public var countIsExact: Bool

    public init(first: UnixTime, last: UnixTime, count: Int, countIsExact: Bool) {
        self.first = first
        self.last = last
        self.count = count
        self.countIsExact = countIsExact
    }
}

public struct CatchUpDecision: Sendable, Hashable {
    /// Run the handler once now, with this `scheduled_at`; nil: run nothing now.
    public var runNow: UnixTime?
    /// What was missed (nil: nothing), run or not, for the trace and the log.
    public var missed: MissedTicks?
    /// The next tick strictly after now (and after the last recorded one); nil: never again.
    public var next: UnixTime?

    public init(runNow: UnixTime?, missed: MissedTicks?, next: UnixTime?) {
        self.runNow = runNow
        self.missed = missed
        self.next = next
    }
}

// MARK: - Durable timers fired late

/// `timer.at(t, name, payload, { late = "fire"|"skip", max_lateness = "1h" })`: what a durable
/// timer does when it comes due late (the engine was down, or busy).
///
/// The rule, one comparison: a timer fires if its lateness is at most its tolerance, where the
/// tolerance is `maxLateness` when the rule gave one, otherwise unlimited for `late = "fire"`
/// and `grace` (default 60 s: "on time, give or take a restart") for `late = "skip"`.
/// - `fire` (default): fire now, whatever the delay, with the original `due` in the event.
/// - `skip`: fire only if on time; a timer that came due while the engine was down is dropped.
/// - `max_lateness`: a timer later than this is skipped, even with `fire` (a "your table is
///   ready" message is worse than none two hours later); with `skip` it widens "on time".
/// Lateness is measured from `due` to `now` with millisecond resolution.
public struct TimerLatePolicy: Sendable, Hashable {
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        case fire
        case skip
    }

    public var mode: Mode
    public var maxLateness: Duration?

    public init(mode: Mode = .fire, maxLateness: Duration? = nil) {
        self.mode = mode
        self.maxLateness = maxLateness
    }

    /// From the Lua options: `late` must be nil, `"fire"` or `"skip"`; `maxLateness` is the
    /// already-parsed `max_lateness` (see `DurationText`).
    public init(late: String?, maxLateness: Duration? = nil) throws(TimerLatePolicyError) {
        var mode = Mode.fire
        if let late {
            guard let parsed = Mode(rawValue: late) else { throw TimerLatePolicyError(late: late) }
            mode = parsed
        }
        self.init(mode: mode, maxLateness: maxLateness)
    }

    public static let `default` = TimerLatePolicy()

    /// Lateness within this counts as on time for `late = "skip"` without `max_lateness`.
    public static let defaultGrace: Duration = .seconds(60)

    /// Whether a timer due at `due` fires at `now`.
    public func decide(due: UnixTime, now: UnixTime, grace: Duration = TimerLatePolicy.defaultGrace) -> TimerLateDecision {
        guard now >= due else { return .notDue }
        let lateness = due.duration(to: now)
        let tolerance: Duration? = maxLateness ?? (mode == .fire ? nil : grace)
        if let tolerance, lateness > tolerance {
            return .skip(lateBy: lateness)
        }
        return .fire(lateBy: lateness)
    }
}

public enum TimerLateDecision: Sendable, Hashable {
    /// `now` is before `due`: leave the timer pending.
    case notDue
    /// Fire it; the event keeps its original `due` and `fired_at = now`.
    case fire(lateBy: Duration)
    /// Drop it (journal it as skipped, note it in the trace).
    case skip(lateBy: Duration)
}

/// `late = "later"`: the description says what was expected.
public struct TimerLatePolicyError: Error, Hashable, Sendable, CustomStringConvertible {
    public var late: String

    public init(late: String) {
        self.late = late
    }

    public var description: String {
        "late = \"\(late)\": expected \"fire\" or \"skip\""
    }
}
