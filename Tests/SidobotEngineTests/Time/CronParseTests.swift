import Foundation
import Testing
@testable import SidobotEngine

private func bits(_ values: [Int]) -> UInt64 {
    values.reduce(0) { $0 | (1 << UInt64($1)) }
}

@Suite("CronExpression parsing")
struct CronParseTests {
    @Test("minute syntax: *, N, ranges, lists, steps", arguments: [
        ("*", Array(0...59)),
        ("7", [7]),
        ("1-5", [1, 2, 3, 4, 5]),
        ("1,3,5", [1, 3, 5]),
        ("*/15", [0, 15, 30, 45]),
        ("10-50/10", [10, 20, 30, 40, 50]),
        ("10-55/20", [10, 30, 50]),
        ("0-4,50-59/5,30", [0, 1, 2, 3, 4, 30, 50, 55]),
        ("*/59", [0, 59]),
        ("05", [5]),
        ("0-59", Array(0...59)),
    ] as [(String, [Int])])
    func minuteSyntax(field: String, minutes: [Int]) {
        let expression = parsedCron("\(field) * * * *")
        #expect(expression.minutes == bits(minutes))
    }

    @Test("month names JAN-DEC, case-insensitive")
    func monthNames() {
        #expect(parsedCron("0 0 1 JAN-MAR *").months == bits([1, 2, 3]))
        #expect(parsedCron("0 0 1 jan,Jun,DeC *").months == bits([1, 6, 12]))
        #expect(parsedCron("0 0 1 FEB-DEC/2 *").months == bits([2, 4, 6, 8, 10, 12]))
        #expect(parsedCron("0 0 1 */3 *").months == bits([1, 4, 7, 10]))
        #expect(parsedCron("0 0 1 * *").months == bits(Array(1...12)))
    }

    @Test("day-of-week: names SUN-SAT, 0-7 with 7 = Sunday")
    func dayOfWeek() {
        #expect(parsedCron("0 9 * * MON-FRI").daysOfWeek == bits([1, 2, 3, 4, 5]))
        #expect(parsedCron("0 9 * * 1-5").daysOfWeek == bits([1, 2, 3, 4, 5]))
        #expect(parsedCron("0 9 * * sun").daysOfWeek == bits([0]))
        #expect(parsedCron("0 9 * * 7").daysOfWeek == bits([0]))
        #expect(parsedCron("0 9 * * 0").daysOfWeek == bits([0]))
        #expect(parsedCron("0 9 * * 5-7").daysOfWeek == bits([0, 5, 6]))
        #expect(parsedCron("0 9 * * 0-7").daysOfWeek == bits(Array(0...6)))
        #expect(parsedCron("0 9 * * */2").daysOfWeek == bits([0, 2, 4, 6]))
        #expect(parsedCron("0 9 * * Sat,SUN").daysOfWeek == bits([0, 6]))
        #expect(parsedCron("0 9 * * *").daysOfWeek == bits(Array(0...6)))
    }

    @Test("hours and days of the month")
    func hoursAndDays() {
        let expression = parsedCron("0 9-17/4 1,15,31 * *")
        #expect(expression.hours == bits([9, 13, 17]))
        #expect(expression.daysOfMonth == bits([1, 15, 31]))
        #expect(parsedCron("0 0 * * *").daysOfMonth == bits(Array(1...31)))
    }

    @Test("Vixie star flags: a field starting with * is unrestricted for the day rule")
    func starFlags() {
        let weekdays = parsedCron("0 9 * * 1-5")
        #expect(weekdays.dayOfMonthIsStar && !weekdays.dayOfWeekIsStar)
        let both = parsedCron("0 9 13 * 5")
        #expect(!both.dayOfMonthIsStar && !both.dayOfWeekIsStar)
        let stepped = parsedCron("0 9 */2 * 1")
        #expect(stepped.dayOfMonthIsStar && !stepped.dayOfWeekIsStar)
    }

    @Test("macros expand to their five fields", arguments: [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
        ("  @hourly  ", "0 * * * *"),
    ])
    func macros(macro: String, fields: String) {
        let expanded = parsedCron(macro)
        let plain = parsedCron(fields)
        #expect(expanded.minutes == plain.minutes)
        #expect(expanded.hours == plain.hours)
        #expect(expanded.daysOfMonth == plain.daysOfMonth)
        #expect(expanded.months == plain.months)
        #expect(expanded.daysOfWeek == plain.daysOfWeek)
        #expect(expanded.dayOfMonthIsStar == plain.dayOfMonthIsStar)
        #expect(expanded.dayOfWeekIsStar == plain.dayOfWeekIsStar)
        #expect(expanded.source == macro.trimmingCharacters(in: .whitespaces))
    }

    @Test("whitespace between fields may be any run of spaces and tabs")
    func whitespace() {
        let expression = parsedCron("  0\t9   *  * \t1-5 ")
        #expect(expression.source == "0\t9   *  * \t1-5")
        #expect(expression.hours == bits([9]))
    }

    @Test("the example from the brief names the field and the value")
    func exampleMessage() {
        #expect(throws: CronParseError.self) { try CronExpression("0 25 * * *") }
        do {
            _ = try CronExpression("0 25 * * *")
        } catch {
            #expect(error.description == "cron \"0 25 * * *\": hour 25 is out of range 0-23")
        }
    }

    @Test("every kind of parse error", arguments: [
        ("", CronParseError.Kind.empty, "is empty"),
        ("   ", .empty, "is empty"),
        ("0 9 * *", .wrongFieldCount(4), "has 4 fields; expected 5"),
        ("0 9 * * * *", .wrongFieldCount(6), "has 6 fields"),
        ("@reboot", .unknownMacro("@reboot"), "unknown macro @reboot"),
        ("@every 5m", .unknownMacro("@every 5m"), "unknown macro"),
        ("1,,2 * * * *", .emptyListItem(field: .minute, fieldText: "1,,2"), "minute \"1,,2\" has an empty list item"),
        ("0 9 * * 1,", .emptyListItem(field: .dayOfWeek, fieldText: "1,"), "day-of-week \"1,\" has an empty list item"),
        ("x * * * *", .invalidValue(field: .minute, token: "x"), "minute \"x\" is not a number"),
        ("MON * * * *", .invalidValue(field: .minute, token: "MON"), "minute \"MON\" is not a number"),
        ("0 0 * FOO *", .invalidValue(field: .month, token: "FOO"), "month \"FOO\" is not a number 1-12 or a month name JAN-DEC"),
        ("0 0 * * FUN", .invalidValue(field: .dayOfWeek, token: "FUN"), "day-of-week \"FUN\" is not a number 0-7 or a day name SUN-SAT"),
        ("0 0 * * MONDAY", .invalidValue(field: .dayOfWeek, token: "MONDAY"), "is not a number 0-7"),
        ("60 * * * *", .outOfRange(field: .minute, token: "60"), "minute 60 is out of range 0-59"),
        ("0 24 * * *", .outOfRange(field: .hour, token: "24"), "hour 24 is out of range 0-23"),
        ("0 0 0 * *", .outOfRange(field: .dayOfMonth, token: "0"), "day-of-month 0 is out of range 1-31"),
        ("0 0 32 * *", .outOfRange(field: .dayOfMonth, token: "32"), "day-of-month 32 is out of range 1-31"),
        ("0 0 * 0 *", .outOfRange(field: .month, token: "0"), "month 0 is out of range 1-12"),
        ("0 0 * 13 *", .outOfRange(field: .month, token: "13"), "month 13 is out of range 1-12"),
        ("0 0 * * 8", .outOfRange(field: .dayOfWeek, token: "8"), "day-of-week 8 is out of range 0-7"),
        ("99999999999999999999 * * * *", .outOfRange(field: .minute, token: "99999999999999999999"), "out of range 0-59"),
        ("0 1-70 * * *", .outOfRange(field: .hour, token: "70"), "hour 70 is out of range 0-23"),
        ("0 5-1 * * *", .backwardsRange(field: .hour, token: "5-1"), "hour range 5-1 is backwards"),
        ("0 0 * * FRI-MON", .backwardsRange(field: .dayOfWeek, token: "FRI-MON"), "range FRI-MON is backwards"),
        ("*/0 * * * *", .badStep(field: .minute, token: "0", maxStep: 59), "minute step \"0\" must be a whole number from 1 to 59"),
        ("*/60 * * * *", .badStep(field: .minute, token: "60", maxStep: 59), "from 1 to 59"),
        ("*/x * * * *", .badStep(field: .minute, token: "x", maxStep: 59), "minute step \"x\""),
        ("*/ * * * *", .badStep(field: .minute, token: "", maxStep: 59), "minute step \"\""),
        ("0 */+2 * * *", .badStep(field: .hour, token: "+2", maxStep: 23), "hour step \"+2\""),
        ("5/15 * * * *", .stepWithoutRange(field: .minute, token: "5/15"), "a step needs * or a range before it, like */15 or 5-59/15"),
        ("1-2-3 * * * *", .malformed(field: .minute, token: "1-2-3"), "minute \"1-2-3\" is not a value"),
        ("1- * * * *", .malformed(field: .minute, token: "1-"), "is not a value"),
        ("-5 * * * *", .malformed(field: .minute, token: "-5"), "is not a value"),
        ("*/5/2 * * * *", .malformed(field: .minute, token: "*/5/2"), "is not a value"),
        ("0 0 30 2 *", .neverFires, "never fires"),
        ("0 0 31 4,6,9,11 *", .neverFires, "never fires"),
        ("0 0 30,31 FEB */2", .neverFires, "never fires"),
    ] as [(String, CronParseError.Kind, String)])
    func errors(text: String, kind: CronParseError.Kind, message: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        #expect(throws: CronParseError(expression: trimmed, kind: kind)) {
            try CronExpression(text)
        }
        let description = CronParseError(expression: trimmed, kind: kind).description
        #expect(description.hasPrefix("cron \"\(trimmed)\": "))
        #expect(description.contains(message), "\(description)")
    }

    @Test("schedules that fire rarely are accepted")
    func rareButPossible() throws {
        _ = try CronExpression("0 0 29 2 *")        // leap years only
        _ = try CronExpression("0 0 30 2 1")        // both restricted: any Monday in February
        _ = try CronExpression("0 0 31 2,3 *")      // March 31st
        _ = try CronExpression("0 0 29 2 */7")      // Feb 29 falling on a Sunday (AND rule)
    }

    @Test("CronSchedule resolves IANA zones and refuses unknown ones")
    func schedules() throws {
        let jakarta = try CronSchedule("0 9 * * 1-5", timeZoneIdentifier: "Asia/Jakarta")
        #expect(jakarta.timeZone.identifier == "Asia/Jakarta")
        #expect(jakarta.description == "cron \"0 9 * * 1-5\" in Asia/Jakarta")
        #expect(try CronSchedule("@daily").timeZone.secondsFromGMT() == 0)
        let error = CronParseError(expression: "0 9 * * *", kind: .unknownTimeZone("Asia/Jakata"))
        #expect(throws: error) { try CronSchedule("0 9 * * *", timeZoneIdentifier: "Asia/Jakata") }
        #expect(error.description.contains("unknown time zone \"Asia/Jakata\""))
    }
}
