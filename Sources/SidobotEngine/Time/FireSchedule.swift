import Foundation

/// A recurring schedule (`cron(...)` or `every(...)`) seen as a sorted set of fire instants.
/// The scheduler and `CatchUpPolicy` work with either kind through this protocol.
public protocol FireSchedule: Sendable {
    /// The first fire time strictly after `instant`; nil if the schedule never fires again.
    func nextFire(after instant: UnixTime) -> UnixTime?
    /// The last fire time at or before `instant`; nil if there is none.
    func previousFire(atOrBefore instant: UnixTime) -> UnixTime?
}

extension FireSchedule {
    /// Fire times in `(start, end]`, oldest first, at most `limit`.
    public func fireTimes(after start: UnixTime, through end: UnixTime, limit: Int = 1000) -> [UnixTime] {
        var times: [UnixTime] = []
        var cursor = start
        while times.count < limit, let next = nextFire(after: cursor), next <= end {
            times.append(next)
            cursor = next
        }
        return times
    }
}

/// `cron("0 9 * * 1-5", fn, { tz = "Asia/Jakarta" })`: an expression and the zone its wall
/// times are read in (UTC when the rule gives no `tz`). DST rules: see `CronExpression`.
public struct CronSchedule: FireSchedule, Hashable, CustomStringConvertible {
    public let expression: CronExpression
    public let timeZone: TimeZone

    public init(expression: CronExpression, timeZone: TimeZone) {
        self.expression = expression
        self.timeZone = timeZone
    }

    /// Parses the expression and resolves `timeZoneIdentifier` (an IANA name such as
    /// `"Europe/Berlin"`, or `"UTC"`); an unknown zone is a `CronParseError` of kind `.unknownTimeZone`.
    public init(_ expression: String, timeZoneIdentifier: String = "UTC") throws(CronParseError) {
        let parsed = try CronExpression(expression)
        guard let zone = TimeZone(identifier: timeZoneIdentifier) else {
            throw CronParseError(expression: parsed.source, kind: .unknownTimeZone(timeZoneIdentifier))
        }
        self.init(expression: parsed, timeZone: zone)
    }

    public func nextFire(after instant: UnixTime) -> UnixTime? {
        expression.nextFire(after: instant, in: timeZone)
    }

    public func previousFire(atOrBefore instant: UnixTime) -> UnixTime? {
        expression.previousFire(atOrBefore: instant, in: timeZone)
    }

    public var description: String { "cron \"\(expression.source)\" in \(timeZone.identifier)" }
}

/// `every("5m", fn)`: fires at `anchor + k * period` for every integer k, in real (UTC) time,
/// untouched by DST: the rule's choice when it wants a strict rhythm rather than wall-clock times.
/// The anchor is the engine's choice (for instance the Unix epoch, so `every("1h")` fires on the
/// hour in UTC and keeps its phase across restarts).
public struct IntervalSchedule: FireSchedule, Hashable, CustomStringConvertible {
    public let period: Duration
    public let anchor: UnixTime
    private let periodMilliseconds: Int64

    /// Nil when `period` is shorter than a millisecond (`every(0)` is a mistake, not a busy loop).
    public init?(every period: Duration, anchor: UnixTime = .epoch) {
        let milliseconds = period.clampedMilliseconds
        guard milliseconds > 0 else { return nil }
        self.period = period
        self.anchor = anchor
        self.periodMilliseconds = milliseconds
    }

    public func nextFire(after instant: UnixTime) -> UnixTime? {
        let (elapsed, overflow) = instant.milliseconds.subtractingReportingOverflow(anchor.milliseconds)
        guard !overflow else { return nil }
        let periods = elapsed.floorDivided(by: periodMilliseconds) + 1
        let (offset, o1) = periods.multipliedReportingOverflow(by: periodMilliseconds)
        let (fire, o2) = anchor.milliseconds.addingReportingOverflow(offset)
        return o1 || o2 ? nil : UnixTime(milliseconds: fire)
    }

    public func previousFire(atOrBefore instant: UnixTime) -> UnixTime? {
        let (elapsed, overflow) = instant.milliseconds.subtractingReportingOverflow(anchor.milliseconds)
        guard !overflow else { return nil }
        let periods = elapsed.floorDivided(by: periodMilliseconds)
        let (offset, o1) = periods.multipliedReportingOverflow(by: periodMilliseconds)
        let (fire, o2) = anchor.milliseconds.addingReportingOverflow(offset)
        return o1 || o2 ? nil : UnixTime(milliseconds: fire)
    }

    public var description: String { "every \(DurationText.format(period))" }
}
