import Foundation

/// An instant on the engine's timeline: whole milliseconds since 1970-01-01T00:00:00Z
/// (the Unix epoch, UTC, without leap seconds).
///
/// Why an `Int64` of milliseconds, rather than `Date` or whole seconds:
/// - rules speak Unix seconds (`now()`, `timer.at(unix_seconds)`, `ev.due`), but durations
///   go down to `"500ms"`: whole seconds would turn `timer.after("500ms")` into 0 or 1 s;
/// - an integer keeps "is it due?" and ordering exact (a `Double`-based `Date` makes
///   equality depend on rounding), costs 8 bytes in the timer heap and spans ±292 million years;
/// - cron fire times are always whole minutes, so they are exact here too.
///
/// Arithmetic with `Duration` saturates at the representable range instead of trapping:
/// a long-running engine must not crash on a rule that asks for a timer in the year 300 000 000.
public struct UnixTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Milliseconds since the Unix epoch; negative before 1970.
    public var milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    /// An instant at whole Unix seconds (saturating outside ±292 million years).
    public init(seconds: Int64) {
        self.milliseconds = Int64.saturatingMultiply(seconds, 1000)
    }

    /// An instant from a Lua number of Unix seconds, rounded to the nearest millisecond.
    /// Nil for NaN, infinities and values outside the representable range.
    public init?(secondsValue seconds: Double) {
        guard seconds.isFinite else { return nil }
        let ms = (seconds * 1000).rounded()
        // Int64(exactly:) would refuse 9.2e18 itself; the bound below is exclusive and safe.
        guard ms > -9.2e18, ms < 9.2e18 else { return nil }
        self.milliseconds = Int64(ms)
    }

    /// The instant of a `Date`, rounded to the millisecond (saturating; NaN becomes the epoch).
    public init(_ date: Date) {
        let seconds = date.timeIntervalSince1970
        if let instant = UnixTime(secondsValue: seconds) {
            self = instant
        } else {
            self.init(milliseconds: seconds.isNaN ? 0 : (seconds < 0 ? .min : .max))
        }
    }

    public static let epoch = UnixTime(milliseconds: 0)

    /// Whole seconds, rounded down (towards the past), as `floor` would.
    public var seconds: Int64 { milliseconds.floorDivided(by: 1000) }

    /// Seconds as a Lua number (fractional when the instant is not on a whole second).
    public var secondsValue: Double { Double(milliseconds) / 1000 }

    public var date: Date { Date(timeIntervalSince1970: secondsValue) }

    public static func < (lhs: UnixTime, rhs: UnixTime) -> Bool { lhs.milliseconds < rhs.milliseconds }

    /// This instant moved by `duration` (saturating).
    public func advanced(by duration: Duration) -> UnixTime {
        UnixTime(milliseconds: Int64.saturatingAdd(milliseconds, duration.clampedMilliseconds))
    }

    /// The duration from this instant to `other` (negative when `other` is earlier; saturating).
    public func duration(to other: UnixTime) -> Duration {
        .milliseconds(Int64.saturatingSubtract(other.milliseconds, milliseconds))
    }

    public static func + (lhs: UnixTime, rhs: Duration) -> UnixTime { lhs.advanced(by: rhs) }
    public static func - (lhs: UnixTime, rhs: Duration) -> UnixTime { lhs.advanced(by: .zero - rhs) }

    /// ISO 8601 in UTC: `2026-03-29T01:00:00Z`, with `.SSS` only when the instant has milliseconds.
    public var description: String { formatted(offsetSeconds: 0, zulu: true) }

    /// The local wall time in `zone` with its UTC offset, e.g. `2026-03-29T03:00:00+02:00`
    /// (for `sidobot check`, traces and logs, which ops people read in their own zone).
    public func formatted(in zone: TimeZone) -> String {
        let offset = zone.offsetSeconds(atUnixSeconds: seconds)
        return formatted(offsetSeconds: offset, zulu: false)
    }

    private func formatted(offsetSeconds: Int64, zulu: Bool) -> String {
        let ms = milliseconds.floorModulo(1000)
        let wall = Int64.saturatingAdd(seconds, offsetSeconds)
        let days = wall.floorDivided(by: 86_400)
        let secondOfDay = wall.floorModulo(86_400)
        let date = CivilDate(days: days)
        var text = "\(date.yearText)-\(pad2(date.month))-\(pad2(date.day))T"
        text += "\(pad2(Int(secondOfDay / 3600))):\(pad2(Int(secondOfDay / 60 % 60))):\(pad2(Int(secondOfDay % 60)))"
        if ms != 0 {
            text += "." + String(String(ms + 1000).dropFirst())
        }
        if zulu && offsetSeconds == 0 {
            text += "Z"
        } else {
            let sign = offsetSeconds < 0 ? "-" : "+"
            let magnitude = offsetSeconds.magnitude
            text += "\(sign)\(pad2(Int(magnitude / 3600))):\(pad2(Int(magnitude / 60 % 60)))"
            if magnitude % 60 != 0 { text += ":\(pad2(Int(magnitude % 60)))" }
        }
        return text
    }
}

private func pad2(_ value: Int) -> String {
    value < 10 ? "0\(value)" : "\(value)"
}

// MARK: - Small integer helpers shared by the time code

extension Int64 {
    /// Division rounding towards negative infinity (Swift's `/` truncates towards zero,
    /// which is wrong for instants before 1970).
    @inlinable func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }

    /// The remainder matching `floorDivided(by:)`: always in `0..<divisor` for a positive divisor.
    @inlinable func floorModulo(_ divisor: Int64) -> Int64 {
        let remainder = self % divisor
        return (remainder != 0 && (remainder < 0) != (divisor < 0)) ? remainder + divisor : remainder
    }

    @inlinable static func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }

    @inlinable static func saturatingSubtract(_ a: Int64, _ b: Int64) -> Int64 {
        let (difference, overflow) = a.subtractingReportingOverflow(b)
        return overflow ? (b < 0 ? .max : .min) : difference
    }

    @inlinable static func saturatingMultiply(_ a: Int64, _ b: Int64) -> Int64 {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? (((a < 0) != (b < 0)) ? .min : .max) : product
    }
}

extension Duration {
    /// The duration in whole milliseconds, truncated towards zero, clamped to `Int64`.
    /// Everything in the time code works in milliseconds (see `UnixTime`).
    var clampedMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let fromSeconds = Int64.saturatingMultiply(seconds, 1000)
        return Int64.saturatingAdd(fromSeconds, attoseconds / 1_000_000_000_000_000)
    }
}

extension TimeZone {
    /// The zone's UTC offset, in seconds, at a Unix instant.
    func offsetSeconds(atUnixSeconds instant: Int64) -> Int64 {
        Int64(secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant))))
    }
}
