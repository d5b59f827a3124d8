import Foundation

/// A standard five-field cron expression: `minute hour day-of-month month day-of-week`.
///
/// Syntax (Vixie cron, the one ops people know from crontab(5)):
/// - each field is a comma-separated list of `*`, `N`, `N-M`, `*/S` or `N-M/S`;
/// - minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or `JAN`-`DEC`,
///   day-of-week 0-7 or `SUN`-`SAT` (0 and 7 are both Sunday); names are case-insensitive;
/// - macros `@yearly` (= `@annually`), `@monthly`, `@weekly`, `@daily` (= `@midnight`), `@hourly`.
///   `@reboot` is refused: a rule that wants to run at start-up listens to `engine.start`.
///
/// Day matching follows Vixie cron exactly: when the day-of-month *and* the day-of-week field
/// are both restricted, a day matches if **either** matches (`0 9 13 * 5` runs on every 13th and
/// every Friday); when either field starts with `*` (including `*/2`), both must match, which for
/// a plain `*` means only the other field counts.
///
/// Refused at parse time, with the field and the bad token named: out-of-range values, backwards
/// ranges, zero or oversized steps, a step after a single value (`5/15`; write `5-59/15`), empty
/// list items, unknown names, and schedules that can never fire (`0 0 30 2 *`).
///
/// Fire times in a time zone, including the daylight-saving rules, are in
/// `CronExpression+NextFire.swift`.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The text as written (trimmed), for logs and error messages.
    public let source: String

    // One bit per allowed value; bit n = value n. Day-of-week uses bits 0...6 (7 is folded into 0).
    let minutes: UInt64
    let hours: UInt64
    let daysOfMonth: UInt64
    let months: UInt64
    let daysOfWeek: UInt64
    /// Vixie cron's DOM_STAR/DOW_STAR: the field's text starts with `*`.
    let dayOfMonthIsStar: Bool
    let dayOfWeekIsStar: Bool

    public var description: String { source }

    /// Parses `text`; throws a `CronParseError` naming the field and the bad token.
    public init(_ text: String) throws(CronParseError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        source = trimmed
        func fail(_ kind: CronParseError.Kind) -> CronParseError {
            CronParseError(expression: trimmed, kind: kind)
        }
        guard !trimmed.isEmpty else { throw fail(.empty) }

        var fieldTexts: [Substring]
        if trimmed.hasPrefix("@") {
            guard let expansion = CronExpression.macros[trimmed.lowercased()] else {
                throw fail(.unknownMacro(trimmed))
            }
            fieldTexts = expansion.split(separator: " ")
        } else {
            fieldTexts = trimmed.split(whereSeparator: { $0.isWhitespace })
        }
        guard fieldTexts.count == 5 else { throw fail(.wrongFieldCount(fieldTexts.count)) }

        var masks: [UInt64] = []
        for (field, fieldText) in zip(CronField.allCases, fieldTexts) {
            do {
                masks.append(try field.parse(fieldText))
            } catch {
                throw fail(error)
            }
        }
        minutes = masks[0]
        hours = masks[1]
        daysOfMonth = masks[2]
        months = masks[3]
        // 7 is Sunday, like 0.
        daysOfWeek = (masks[4] | (masks[4] >> 7)) & 0x7F
        dayOfMonthIsStar = fieldTexts[2].hasPrefix("*")
        dayOfWeekIsStar = fieldTexts[4].hasPrefix("*")

        // With the Vixie OR rule (both day fields restricted) some weekday always matches. Otherwise
        // every chosen day of the month must be checked against the chosen months: a valid
        // (month, day) pair falls on every weekday over the years, so one pair is enough to fire.
        if dayOfMonthIsStar || dayOfWeekIsStar {
            let canFire = (1...12).contains { month in
                months.hasBit(month) && (1...CronExpression.longestMonth[month]).contains { daysOfMonth.hasBit($0) }
            }
            if !canFire { throw fail(.neverFires) }
        }
    }

    /// Whether a local calendar day is selected by the day-of-month, month and day-of-week fields.
    func matchesDay(year: Int64, month: Int, day: Int) -> Bool {
        guard months.hasBit(month) else { return false }
        let dayOfMonthMatches = daysOfMonth.hasBit(day)
        let weekday = CivilDate(year: year, month: month, day: day).weekday
        let dayOfWeekMatches = daysOfWeek.hasBit(weekday)
        if dayOfMonthIsStar || dayOfWeekIsStar {
            return dayOfMonthMatches && dayOfWeekMatches
        }
        return dayOfMonthMatches || dayOfWeekMatches
    }

    static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    ]

    /// The most days each month can have (February: 29), index 1...12.
    static let longestMonth = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
}

/// The five fields, in order, with their ranges and names.
public enum CronField: Int, CaseIterable, Sendable {
    case minute, hour, dayOfMonth, month, dayOfWeek

    /// The field's name as error messages print it: `day-of-month`.
    public var name: String {
        switch self {
        case .minute: "minute"
        case .hour: "hour"
        case .dayOfMonth: "day-of-month"
        case .month: "month"
        case .dayOfWeek: "day-of-week"
        }
    }

    /// The values the field accepts (day-of-week: 0-7, 7 being Sunday again).
    public var range: ClosedRange<Int> {
        switch self {
        case .minute: 0...59
        case .hour: 0...23
        case .dayOfMonth: 1...31
        case .month: 1...12
        case .dayOfWeek: 0...7
        }
    }

    /// Three-letter names (upper case), their values starting at `range.lowerBound`.
    var names: [String] {
        switch self {
        case .month: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
        case .dayOfWeek: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
        default: []
        }
    }

    /// `0`...`9` only (`Character.isNumber` alone also accepts "½" and Arabic-Indic digits).
    private static func isDecimalDigit(_ character: Character) -> Bool {
        character.isASCII && character.isNumber
    }

    /// Parses a whole field (a comma-separated list) into a bit mask.
    func parse(_ text: Substring) throws(CronParseError.Kind) -> UInt64 {
        var mask: UInt64 = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else { throw .emptyListItem(field: self, fieldText: String(text)) }
            mask |= try parseItem(item)
        }
        return mask
    }

    /// One list item: `*`, `N`, `N-M`, `*/S`, `N-M/S`.
    private func parseItem(_ item: Substring) throws(CronParseError.Kind) -> UInt64 {
        let pieces = item.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count <= 2 else { throw .malformed(field: self, token: String(item)) }
        let base = pieces[0]

        var low: Int
        var high: Int
        if base == "*" {
            low = range.lowerBound
            high = range.upperBound
        } else {
            let ends = base.split(separator: "-", omittingEmptySubsequences: false)
            guard ends.count <= 2 else { throw .malformed(field: self, token: String(item)) }
            low = try value(ends[0], item: item)
            high = ends.count == 2 ? try value(ends[1], item: item) : low
            guard low <= high else { throw .backwardsRange(field: self, token: String(base)) }
            if pieces.count == 2 && ends.count == 1 {
                throw .stepWithoutRange(field: self, token: String(item))
            }
        }

        var step = 1
        if pieces.count == 2 {
            let stepText = pieces[1]
            let maxStep = range.upperBound
            guard let parsed = Int(stepText), stepText.allSatisfy(CronField.isDecimalDigit), parsed >= 1, parsed <= maxStep else {
                throw .badStep(field: self, token: String(stepText), maxStep: maxStep)
            }
            step = parsed
        }

        var mask: UInt64 = 0
        var v = low
        while v <= high {
            mask |= 1 << UInt64(v)
            v += step
        }
        return mask
    }

    /// A number or (month, day-of-week) a name, checked against the field's range.
    private func value(_ token: Substring, item: Substring) throws(CronParseError.Kind) -> Int {
        guard !token.isEmpty else { throw .malformed(field: self, token: String(item)) }
        if token.allSatisfy(CronField.isDecimalDigit) {
            // A digit string too long for Int is out of range all the same.
            guard let number = Int(token), range.contains(number) else {
                throw .outOfRange(field: self, token: String(token))
            }
            return number
        }
        if let index = names.firstIndex(of: token.uppercased()) {
            return range.lowerBound + index
        }
        throw .invalidValue(field: self, token: String(token))
    }
}

/// Why a cron expression was refused; the description reads like
/// `cron "0 25 * * *": hour 25 is out of range 0-23`.
public struct CronParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Error, Equatable, Sendable {
        case empty
        case wrongFieldCount(Int)
        case unknownMacro(String)
        case emptyListItem(field: CronField, fieldText: String)
        /// Not a number, and not a name this field knows.
        case invalidValue(field: CronField, token: String)
        case outOfRange(field: CronField, token: String)
        case backwardsRange(field: CronField, token: String)
        /// A step that is not a whole number from 1 to `maxStep`.
        case badStep(field: CronField, token: String, maxStep: Int)
        /// `5/15`: a step needs `*` or a range before it.
        case stepWithoutRange(field: CronField, token: String)
        /// Extra `-` or `/`, or a missing range end: `1-2-3`, `1-`, `*/5/2`.
        case malformed(field: CronField, token: String)
        /// The chosen days of the month never occur in the chosen months (`0 0 30 2 *`).
        case neverFires
        /// Raised by `CronSchedule` for a `tz` that is not an IANA zone name.
        case unknownTimeZone(String)
    }

    /// The expression as written (trimmed).
    public var expression: String
    public var kind: Kind

    public init(expression: String, kind: Kind) {
        self.expression = expression
        self.kind = kind
    }

    public var description: String {
        "cron \"\(expression)\": " + detail
    }

    private var detail: String {
        switch kind {
        case .empty:
            return "is empty; expected 5 fields: minute hour day-of-month month day-of-week, like \"0 9 * * 1-5\""
        case .wrongFieldCount(let count):
            return "has \(count) field\(count == 1 ? "" : "s"); expected 5: minute hour day-of-month month day-of-week"
        case .unknownMacro(let macro):
            return "unknown macro \(macro); expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"
        case .emptyListItem(let field, let text):
            return "\(field.name) \"\(text)\" has an empty list item"
        case .invalidValue(let field, let token):
            switch field {
            case .month: return "month \"\(token)\" is not a number 1-12 or a month name JAN-DEC"
            case .dayOfWeek: return "day-of-week \"\(token)\" is not a number 0-7 or a day name SUN-SAT"
            default: return "\(field.name) \"\(token)\" is not a number"
            }
        case .outOfRange(let field, let token):
            return "\(field.name) \(token) is out of range \(field.range.lowerBound)-\(field.range.upperBound)"
        case .backwardsRange(let field, let token):
            return "\(field.name) range \(token) is backwards; write the smaller value first"
        case .badStep(let field, let token, let maxStep):
            return "\(field.name) step \"\(token)\" must be a whole number from 1 to \(maxStep)"
        case .stepWithoutRange(let field, let token):
            let start = token.split(separator: "/").first.map(String.init) ?? token
            let step = token.split(separator: "/").last.map(String.init) ?? "S"
            return "\(field.name) \"\(token)\": a step needs * or a range before it, like */\(step) or \(start)-\(field.range.upperBound)/\(step)"
        case .malformed(let field, let token):
            return "\(field.name) \"\(token)\" is not a value, a range N-M or a step */S or N-M/S"
        case .neverFires:
            return "never fires: the chosen days of the month do not occur in the chosen months"
        case .unknownTimeZone(let name):
            return "unknown time zone \"\(name)\"; expected an IANA name like \"Asia/Jakarta\" or \"UTC\""
        }
    }
}

extension UInt64 {
    @inline(__always) func hasBit(_ n: Int) -> Bool {
        n >= 0 && n < 64 && (self >> UInt64(n)) & 1 == 1
    }

    /// The lowest set bit at or above `n`, if any.
    @inline(__always) func nextBit(atOrAfter n: Int) -> Int? {
        guard n < 64 else { return nil }
        let masked = n <= 0 ? self : self & (~0 << UInt64(n))
        return masked == 0 ? nil : masked.trailingZeroBitCount
    }

    /// The highest set bit at or below `n`, if any.
    @inline(__always) func previousBit(atOrBefore n: Int) -> Int? {
        guard n >= 0 else { return nil }
        let masked = n >= 63 ? self : self & ((1 << UInt64(n + 1)) - 1)
        return masked == 0 ? nil : 63 - masked.leadingZeroBitCount
    }
}
