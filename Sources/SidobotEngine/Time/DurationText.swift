/// Durations as rules write them: `every("5m", ...)`, `timer.after("10m", ...)`,
/// `max_lateness = "1h"`, or a plain Lua number of seconds.
///
/// Accepted text, whitespace anywhere between the parts:
/// - one or more `<number><unit>` components, units from largest to smallest, each at most once:
///   `"30s"`, `"5m"`, `"2h"`, `"1d"`, `"500ms"`, `"1w"`, `"1h30m"`, `"1h 30m"`, `"1.5h"`;
/// - units: `ms`, `s`, `m` (minutes), `h`, `d` (24 h), `w` (7 d), lower case only
///   (`"5M"` is refused rather than guessed: it reads as months as often as minutes);
/// - a bare number, `"30"` or `"2.5"`, means seconds, like a Lua number does.
///
/// Resolution is one millisecond: fractions are rounded to the nearest millisecond
/// (`0.0004` s becomes 0). The result must fit in `Int64` milliseconds (about 292 million
/// years); anything larger is an overflow error, never a silent wrap.
public enum DurationText {
    /// Parses rule text such as `"1h30m"`.
    public static func parse(_ text: String) throws(DurationTextError) -> Duration {
        .milliseconds(try parseMilliseconds(text))
    }

    /// A Lua integer number of seconds.
    public static func parse(wholeSeconds seconds: Int64) throws(DurationTextError) -> Duration {
        let input = String(seconds)
        guard seconds >= 0 else { throw DurationTextError(input: input, reason: .negative) }
        let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        guard !overflow else { throw DurationTextError(input: input, reason: .overflow) }
        return .milliseconds(ms)
    }

    /// A Lua float number of seconds (rounded to the nearest millisecond).
    public static func parse(seconds: Double) throws(DurationTextError) -> Duration {
        let input = "\(seconds)"
        guard seconds.isFinite else { throw DurationTextError(input: input, reason: .notFinite) }
        guard seconds >= 0 else { throw DurationTextError(input: input, reason: .negative) }
        let ms = (seconds * 1000).rounded()
        // 9.2e18 < Int64.max (≈ 9.223e18), so the conversion below cannot trap.
        guard ms < 9.2e18 else { throw DurationTextError(input: input, reason: .overflow) }
        return .milliseconds(Int64(ms))
    }

    /// The same as `parse(_:)`, in milliseconds.
    public static func parseMilliseconds(_ text: String) throws(DurationTextError) -> Int64 {
        var parser = Parser(text: text)
        return try parser.parse()
    }

    // MARK: Formatting

    /// The shortest text that `parse` reads back as the same duration, made of whole-number
    /// components (for log lines and `sidobot check`, where compact beats decomposed):
    /// `300 s` → `"5m"`, `90 s` → `"90s"`, `5400 s` → `"90m"`, `86400 s` → `"1d"`,
    /// `1 d 1 s` → `"1d1s"`, `3661 s` → `"3661s"` (not `"1h1m1s"`), `1.5 s` → `"1500ms"`,
    /// zero → `"0s"`. Negative durations get a leading `-` (for "late by" lines). Among texts of
    /// equal length, fewer components and then larger units win (`"1w"`, not `"7d"`), so the
    /// output is stable. Sub-millisecond parts are truncated.
    public static func format(_ duration: Duration) -> String {
        format(milliseconds: duration.clampedMilliseconds)
    }

    /// A Lua number of seconds, formatted like `format(_:)` (rounded to milliseconds).
    public static func format(seconds: Double) -> String {
        if seconds.isNaN { return "nan" }
        if seconds.isInfinite { return seconds < 0 ? "-inf" : "inf" }
        let ms = (seconds * 1000).rounded()
        let clamped: Int64 = ms >= 9.2e18 ? .max : (ms <= -9.2e18 ? -Int64.max : Int64(ms))
        return format(milliseconds: clamped)
    }

    public static func format(milliseconds: Int64) -> String {
        if milliseconds == 0 { return "0s" }
        if milliseconds < 0 {
            return "-" + format(milliseconds: milliseconds == .min ? .max : -milliseconds)
        }
        let parts = shortest(milliseconds, top: units.count - 1)
        return parts.map { "\($0.count)\(units[$0.unit].symbol)" }.joined()
    }

    // MARK: Internals

    struct Unit {
        let symbol: String
        let milliseconds: Int64
    }

    /// Smallest first; a component's index is its rank (larger index = larger unit).
    static let units: [Unit] = [
        Unit(symbol: "ms", milliseconds: 1),
        Unit(symbol: "s", milliseconds: 1000),
        Unit(symbol: "m", milliseconds: 60_000),
        Unit(symbol: "h", milliseconds: 3_600_000),
        Unit(symbol: "d", milliseconds: 86_400_000),
        Unit(symbol: "w", milliseconds: 604_800_000),
    ]

    private struct Candidate {
        var parts: [(count: Int64, unit: Int)]
        var length: Int

        /// Shorter text first, then fewer components, then larger leading units.
        func isBetter(than other: Candidate) -> Bool {
            if length != other.length { return length < other.length }
            if parts.count != other.parts.count { return parts.count < other.parts.count }
            for (a, b) in zip(parts, other.parts) where a.unit != b.unit {
                return a.unit > b.unit
            }
            return false
        }
    }

    /// The shortest decomposition of `rest` using units `0...top`. Each unit either is left out,
    /// or takes as many as fit, or one fewer (the only counts that can beat leaving it out,
    /// since every unit is a multiple of the next smaller one); 3^6 branches at most.
    private static func shortest(_ rest: Int64, top: Int) -> [(count: Int64, unit: Int)] {
        shortestCandidate(rest, top: top).parts
    }

    private static func shortestCandidate(_ rest: Int64, top: Int) -> Candidate {
        if rest == 0 { return Candidate(parts: [], length: 0) }
        let unit = units[top]
        if top == 0 {
            return Candidate(parts: [(rest, 0)], length: String(rest).count + unit.symbol.count)
        }
        var best = shortestCandidate(rest, top: top - 1)
        let most = rest / unit.milliseconds
        for count in [most, most - 1] where count >= 1 {
            let tail = shortestCandidate(rest - count * unit.milliseconds, top: top - 1)
            let candidate = Candidate(
                parts: [(count, top)] + tail.parts,
                length: String(count).count + unit.symbol.count + tail.length
            )
            if candidate.isBetter(than: best) { best = candidate }
        }
        return best
    }

    private static func isDigit(_ scalar: Unicode.Scalar) -> Bool { scalar.value >= 48 && scalar.value <= 57 }

    private static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value >= 65 && scalar.value <= 90) || (scalar.value >= 97 && scalar.value <= 122)
    }

    /// A hand-written scanner: the grammar is tiny, and each failure gets its own reason.
    private struct Parser {
        let input: String
        let scalars: [Unicode.Scalar]
        var index = 0

        init(text: String) {
            self.input = text
            self.scalars = Array(text.unicodeScalars)
        }

        private func fail(_ reason: DurationTextError.Reason) -> DurationTextError {
            DurationTextError(input: input, reason: reason)
        }

        private var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

        private mutating func skipWhitespace() {
            while let c = current, c.properties.isWhitespace { index += 1 }
        }

        mutating func parse() throws(DurationTextError) -> Int64 {
            skipWhitespace()
            guard current != nil else { throw fail(.empty) }
            if current == "-" { throw fail(.negative) }

            var total: Int64 = 0
            var previousUnit: Int? = nil
            var isFirst = true
            while true {
                skipWhitespace()
                guard let c = current else { break }
                guard isDigit(c) || c == "." else {
                    if isLetter(c) { throw fail(.missingNumber(unit: scanLetters())) }
                    throw fail(.unexpectedCharacter(String(c)))
                }
                let number = try scanNumber()
                skipWhitespace()
                let letters = scanLetters()
                if letters.isEmpty {
                    if current == nil && isFirst {
                        // A bare number: seconds, the same as a Lua number.
                        return try number.milliseconds(perUnit: 1000, input: input)
                    }
                    if let c = current, !isDigit(c) {
                        throw fail(.unexpectedCharacter(String(c)))
                    }
                    throw fail(.missingUnit(number: number.text))
                }
                guard let unitIndex = DurationText.units.firstIndex(where: { $0.symbol == letters }) else {
                    throw fail(.unknownUnit(letters))
                }
                if let previous = previousUnit, unitIndex >= previous {
                    throw fail(.unitOrder(letters))
                }
                let part = try number.milliseconds(
                    perUnit: DurationText.units[unitIndex].milliseconds, input: input)
                let (sum, overflow) = total.addingReportingOverflow(part)
                guard !overflow else { throw fail(.overflow) }
                total = sum
                previousUnit = unitIndex
                isFirst = false
            }
            return total
        }

        private mutating func scanLetters() -> String {
            var letters = ""
            while let c = current, isLetter(c) {
                letters.unicodeScalars.append(c)
                index += 1
            }
            return letters
        }

        private mutating func scanNumber() throws(DurationTextError) -> Number {
            var number = Number()
            while let c = current, isDigit(c) {
                number.integerDigits.append(c)
                index += 1
            }
            if current == "." {
                index += 1
                while let c = current, isDigit(c) {
                    number.fractionDigits.append(c)
                    index += 1
                }
                guard !number.fractionDigits.isEmpty else {
                    throw fail(.malformedNumber(number.text + "."))
                }
            }
            return number
        }
    }

    /// A decimal number kept as digits, so `1.1h` is converted exactly (no binary floating point).
    private struct Number {
        var integerDigits: [Unicode.Scalar] = []
        var fractionDigits: [Unicode.Scalar] = []

        var text: String {
            var text = String(String.UnicodeScalarView(integerDigits))
            if !fractionDigits.isEmpty { text += "." + String(String.UnicodeScalarView(fractionDigits)) }
            return text
        }

        func milliseconds(perUnit unit: Int64, input: String) throws(DurationTextError) -> Int64 {
            var whole: Int64 = 0
            for digit in integerDigits {
                let (shifted, o1) = whole.multipliedReportingOverflow(by: 10)
                let (added, o2) = shifted.addingReportingOverflow(Int64(digit.value - 48))
                guard !o1, !o2 else { throw DurationTextError(input: input, reason: .overflow) }
                whole = added
            }
            let (wholeMs, overflow) = whole.multipliedReportingOverflow(by: unit)
            guard !overflow else { throw DurationTextError(input: input, reason: .overflow) }
            // At most 9 fraction digits count (a unit is at most 6.048e8 ms, so the product stays
            // far below Int64.max); the fraction is rounded half up to whole milliseconds.
            var fraction: Int64 = 0
            var scale: Int64 = 1
            for digit in fractionDigits.prefix(9) {
                fraction = fraction * 10 + Int64(digit.value - 48)
                scale *= 10
            }
            let fractionMs = (fraction * unit + scale / 2) / scale
            let (total, o3) = wholeMs.addingReportingOverflow(fractionMs)
            guard !o3 else { throw DurationTextError(input: input, reason: .overflow) }
            return total
        }
    }
}

/// Why a duration was refused. The description names the input and says what was expected:
/// `"10 minutes": expected a duration like 30s, 5m, 2h or 1d (unknown unit "minutes"; units are ms, s, m, h, d, w)`.
public struct DurationTextError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// Nothing but whitespace.
        case empty
        case negative
        /// NaN or an infinity (a Lua float).
        case notFinite
        /// Letters that are not one of ms, s, m, h, d, w.
        case unknownUnit(String)
        /// A number with no unit after it, in a compound such as `"1h30"`.
        case missingUnit(number: String)
        /// A unit with no number before it, such as `"h"` or `"1h m"`.
        case missingNumber(unit: String)
        /// Such as `"5."`.
        case malformedNumber(String)
        case unexpectedCharacter(String)
        /// A unit not smaller than the one before it: `"30m1h"`, `"1h1h"`.
        case unitOrder(String)
        /// More than `Int64` milliseconds.
        case overflow
    }

    /// The text as the rule wrote it (for numbers, their decimal rendering).
    public var input: String
    public var reason: Reason

    public init(input: String, reason: Reason) {
        self.input = input
        self.reason = reason
    }

    public var description: String {
        let expected = "\"\(input)\": expected a duration like 30s, 5m, 2h or 1d"
        let detail: String
        switch reason {
        case .empty: detail = "got nothing"
        case .negative: detail = "durations cannot be negative"
        case .notFinite: detail = "got a number that is not finite"
        case .unknownUnit(let unit): detail = "unknown unit \"\(unit)\"; units are ms, s, m, h, d, w"
        case .missingUnit(let number): detail = "\(number) has no unit; units are ms, s, m, h, d, w"
        case .missingNumber(let unit): detail = "\"\(unit)\" has no number before it"
        case .malformedNumber(let number): detail = "\"\(number)\" is not a number"
        case .unexpectedCharacter(let character): detail = "unexpected \"\(character)\""
        case .unitOrder(let unit):
            detail = "\"\(unit)\" comes after a unit no larger than it; write units from largest to smallest, each once, like 1h30m"
        case .overflow: detail = "too large"
        }
        return "\(expected) (\(detail))"
    }
}
