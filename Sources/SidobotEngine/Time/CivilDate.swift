/// A proleptic Gregorian calendar date, converted to and from a day count since 1970-01-01.
///
/// Why not `Calendar`: cron matching walks wall-clock dates field by field millions of times
/// (catch-up, `fireTimes`), and these conversions are a handful of integer operations
/// (Howard Hinnant's `days_from_civil`/`civil_from_days`), exact for every year, with no locale,
/// no allocation and no lock. Time zones are applied separately (see `ZoneMapping`).
struct CivilDate: Hashable, Sendable {
    var year: Int64
    /// 1...12
    var month: Int
    /// 1...31
    var day: Int

    init(year: Int64, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// The date `days` days after 1970-01-01 (negative: before).
    init(days: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        self.year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        self.month = Int(month)
        self.day = Int(day)
    }

    /// Days since 1970-01-01.
    var days: Int64 {
        let y = year - (month <= 2 ? 1 : 0)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// 0 = Sunday ... 6 = Saturday, as cron counts.
    var weekday: Int { CivilDate.weekday(days: days) }

    static func weekday(days: Int64) -> Int {
        // 1970-01-01 was a Thursday (4).
        Int((days + 4).floorModulo(7))
    }

    static func isLeapYear(_ year: Int64) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    static func daysInMonth(year: Int64, month: Int) -> Int {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// The year as ISO 8601 writes it: at least four digits, a sign outside 0...9999.
    var yearText: String {
        if year >= 0 && year <= 9999 {
            let digits = String(year)
            return String(repeating: "0", count: 4 - digits.count) + digits
        }
        return year < 0 ? "-\(year.magnitude)" : "+\(year)"
    }
}
