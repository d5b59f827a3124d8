import Testing
@testable import SidobotEngine

@Suite("DurationText")
struct DurationTextTests {
    @Test("parses rule durations", arguments: [
        ("30s", 30_000),
        ("5m", 300_000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
        ("500ms", 500),
        ("1w", 604_800_000),
        ("1h30m", 5_400_000),
        ("1h 30m", 5_400_000),
        ("  1h\t30m \n", 5_400_000),
        ("1 h 30 m", 5_400_000),
        ("1w2d3h4m5s6ms", 604_800_000 + 2 * 86_400_000 + 3 * 3_600_000 + 4 * 60_000 + 5000 + 6),
        ("30", 30_000),
        (" 45 ", 45_000),
        ("2.5", 2500),
        ("1.5h", 5_400_000),
        (".5s", 500),
        ("0.25m", 15_000),
        ("0", 0),
        ("0s", 0),
        ("0.0004s", 0),
        ("0.0005s", 1),
        ("1.0000000001s", 1000),
        ("007m", 420_000),
        ("1d1ms", 86_400_001),
        ("15250284452w3d", 9_223_372_036_828_800_000),
    ] as [(String, Int64)])
    func parses(text: String, milliseconds: Int64) throws {
        #expect(try DurationText.parseMilliseconds(text) == milliseconds)
        #expect(try DurationText.parse(text) == .milliseconds(milliseconds))
    }

    @Test("rejects bad text with a typed reason", arguments: [
        ("", DurationTextError.Reason.empty),
        ("   ", .empty),
        ("-5m", .negative),
        (" -1", .negative),
        ("10 minutes", .unknownUnit("minutes")),
        ("5M", .unknownUnit("M")),
        ("5x", .unknownUnit("x")),
        ("1mo", .unknownUnit("mo")),
        ("1h30", .missingUnit(number: "30")),
        ("1 2m", .missingUnit(number: "1")),
        ("h", .missingNumber(unit: "h")),
        ("1h m", .missingNumber(unit: "m")),
        ("5.", .malformedNumber("5.")),
        ("+5m", .unexpectedCharacter("+")),
        ("5m!", .unexpectedCharacter("!")),
        ("5 !", .unexpectedCharacter("!")),
        ("1,5s", .unexpectedCharacter(",")),
        ("30m1h", .unitOrder("h")),
        ("1h1h", .unitOrder("h")),
        ("1s500ms1s", .unitOrder("s")),
        ("99999999999999999999s", .overflow),
        ("15250284453w", .overflow),
        ("15250284452w4d", .overflow),
    ] as [(String, DurationTextError.Reason)])
    func rejects(text: String, reason: DurationTextError.Reason) {
        #expect(throws: DurationTextError(input: text, reason: reason)) {
            try DurationText.parse(text)
        }
    }

    @Test("errors say what was expected")
    func errorMessages() {
        let minutes = DurationTextError(input: "10 minutes", reason: .unknownUnit("minutes"))
        #expect(minutes.description.hasPrefix("\"10 minutes\": expected a duration like 30s, 5m, 2h or 1d"))
        #expect(minutes.description.contains("unknown unit \"minutes\""))
        #expect(DurationTextError(input: "-5m", reason: .negative).description
            == "\"-5m\": expected a duration like 30s, 5m, 2h or 1d (durations cannot be negative)")
        #expect(DurationTextError(input: "30m1h", reason: .unitOrder("h")).description.contains("largest to smallest"))
    }

    @Test("numbers of seconds, as Lua passes them")
    func numbers() throws {
        #expect(try DurationText.parse(wholeSeconds: 30) == .seconds(30))
        #expect(try DurationText.parse(wholeSeconds: 0) == .zero)
        #expect(try DurationText.parse(seconds: 1.5) == .milliseconds(1500))
        #expect(try DurationText.parse(seconds: 0.0004) == .zero)
        #expect(try DurationText.parse(seconds: -0.0) == .zero)
        #expect(throws: DurationTextError(input: "-5", reason: .negative)) { try DurationText.parse(wholeSeconds: -5) }
        #expect(throws: DurationTextError(input: "-0.5", reason: .negative)) { try DurationText.parse(seconds: -0.5) }
        #expect(throws: DurationTextError(input: "\(Int64.max)", reason: .overflow)) {
            try DurationText.parse(wholeSeconds: .max)
        }
        #expect(throws: DurationTextError(input: "1e+300", reason: .overflow)) { try DurationText.parse(seconds: 1e300) }
        #expect(throws: DurationTextError(input: "nan", reason: .notFinite)) { try DurationText.parse(seconds: .nan) }
        #expect(throws: DurationTextError(input: "inf", reason: .notFinite)) { try DurationText.parse(seconds: .infinity) }
    }

    @Test("formats the shortest text", arguments: [
        (0, "0s"),
        (1, "1ms"),
        (500, "500ms"),
        (1000, "1s"),
        (1500, "1500ms"),
        (30_000, "30s"),
        (60_000, "1m"),
        (90_000, "90s"),
        (300_000, "5m"),
        (3_600_000, "1h"),
        (3_661_000, "3661s"),
        (3_661_001, "3661s1ms"),
        (5_400_000, "90m"),
        (86_400_000, "1d"),
        (86_401_000, "1d1s"),
        (90_000_000, "25h"),
        (604_800_000, "1w"),
        (691_200_000, "8d"),
        (777_600_000, "9d"),
        (1_209_600_000, "2w"),
        (864_000_000, "10d"),
        (4_233_600_000, "7w"),
        (-90_000, "-90s"),
    ] as [(Int64, String)])
    func formats(milliseconds: Int64, text: String) throws {
        #expect(DurationText.format(milliseconds: milliseconds) == text)
        #expect(DurationText.format(.milliseconds(milliseconds)) == text)
        if milliseconds >= 0 {
            #expect(try DurationText.parseMilliseconds(text) == milliseconds)
        }
    }

    @Test("formats Lua numbers of seconds")
    func formatsSeconds() {
        #expect(DurationText.format(seconds: 300) == "5m")
        #expect(DurationText.format(seconds: 0.5) == "500ms")
        #expect(DurationText.format(seconds: 86_400) == "1d")
        #expect(DurationText.format(seconds: .nan) == "nan")
        #expect(DurationText.format(seconds: -.infinity) == "-inf")
        #expect(DurationText.format(milliseconds: .min).hasPrefix("-"))
    }

    @Test("format round-trips through parse (seeded random values)")
    func roundTrip() throws {
        var random = TimeTestRandom(seed: 42)
        for _ in 0..<2000 {
            let magnitude = Int64.random(in: 0...18, using: &random)
            let value = Int64.random(in: 0...(Int64(1) << (magnitude * 3 + 6)), using: &random)
            let text = DurationText.format(milliseconds: value)
            #expect(try DurationText.parseMilliseconds(text) == value, "\(value) → \(text)")
        }
        let largest = DurationText.format(milliseconds: .max)
        #expect(try DurationText.parseMilliseconds(largest) == .max)
    }

    /// Checks the formatter's pruned search against every decomposition into s, m and h
    /// (durations below 6 hours of whole seconds).
    @Test("no decomposition is shorter (brute force over whole seconds)")
    func shortestByBruteForce() {
        var random = TimeTestRandom(seed: 7)
        func digits(_ n: Int) -> Int { String(n).count }
        let samples = (0..<300).map { _ in Int.random(in: 1..<21_600, using: &random) } + [59, 60, 61, 3599, 3600, 3601, 7260]
        for seconds in samples {
            var best = Int.max
            for hours in 0...(seconds / 3600) {
                for minutes in 0...((seconds - hours * 3600) / 60) {
                    let rest = seconds - hours * 3600 - minutes * 60
                    var length = 0
                    if hours > 0 { length += digits(hours) + 1 }
                    if minutes > 0 { length += digits(minutes) + 1 }
                    if rest > 0 { length += digits(rest) + 1 }
                    best = min(best, length)
                }
            }
            let text = DurationText.format(milliseconds: Int64(seconds) * 1000)
            #expect(text.count == best, "\(seconds) s formatted as \(text), but \(best) characters suffice")
        }
    }
}
