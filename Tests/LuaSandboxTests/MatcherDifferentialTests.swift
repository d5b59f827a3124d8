import CLuaShims
import CLuaStock
import Testing

@testable import LuaSandbox

/// The sandbox's string.find/match/gmatch/gsub are ports of Lua 5.4.4's
/// (CLuaShims/lua_libport.c) that must behave exactly like the stock ones,
/// only interruptible. These tests run the same generated calls through the
/// sandbox and through the stock functions of the Lua library the sandbox is
/// built on (a plain `luaL_newstate` + `luaL_openlibs` state, `sbt_stock_eval`)
/// and require the same results: every return value, or the same error text.
///
/// Subjects and patterns are small so that the stock matcher, which cannot be
/// interrupted, always finishes at once. Generation is seeded: a failure names
/// the seed and the case, which reproduce it.
@Suite struct MatcherDifferentialTests {
    /// Cases per seed, and per chunk (one chunk per batch on each side).
    static let casesPerSeed = 2000
    static let batchSize = 250
    static let seeds: [UInt64] = [0x5EED_0001, 0x5EED_0002, 0x5EED_0003, 0x5EED_0004, 0x5EED_0005, 0x5EED_0006]

    @Test func portedMatcherAgreesWithStockLua() async throws {
        var coverage = Coverage()
        for seed in Self.seeds {
            var gen = MatcherCaseGenerator(seed: seed)
            let cases = (0..<Self.casesPerSeed).map { _ in gen.nextCase() }
            for start in stride(from: 0, to: cases.count, by: Self.batchSize) {
                let batch = Array(cases[start..<min(start + Self.batchSize, cases.count)])
                try await compare(batch, seed: seed, firstIndex: start, coverage: &coverage)
            }
        }
        // The comparison is only worth something if the cases reach the matcher's paths.
        let total = Self.seeds.count * Self.casesPerSeed
        #expect(coverage.matched > total / 6, "only \(coverage.matched) of \(total) cases matched something")
        #expect(coverage.failed > total / 40, "only \(coverage.failed) of \(total) cases raised an error")
        for message in Coverage.expectedErrors {
            #expect(coverage.errorsSeen.contains { $0.contains(message) }, "no case raised \"\(message)\"")
        }
    }

    /// The harness itself: both sides give these known answers, as text in the
    /// form the comparison uses (so a harness that reported nothing, or the
    /// same wrong thing on both sides, would fail here).
    @Test func bothSidesGiveKnownAnswers() async throws {
        let known: [(DiffCase, String)] = [
            (DiffCase(label: "find", args: #"string.find, "abab", "b", -2"#), "3 boolean:true integer:4 integer:4"),
            (DiffCase(label: "match", args: #"string.match, "xaay", "(a+)()""#), #"3 boolean:true string:"aa" integer:4"#),
            (DiffCase(label: "gmatch", args: #"gm, "a1b2", "%a(%d)", nil"#), #"2 boolean:true string:" {1 string:\"1\"} {1 string:\"2\"} end""#),
            (DiffCase(label: "gsub", args: #"string.gsub, "abc", "%w", "%0%0", 2"#), #"3 boolean:true string:"aabbc" integer:2"#),
            (DiffCase(label: "find", args: #"string.find, "a", "%""#), #"2 boolean:false string:"malformed pattern (ends with '%')""#),
            // A back-reference to a position capture compares nothing (found by the random cases:
            // the port charged it (size_t)CAP_POSITION / 64 steps and aborted the state).
            (DiffCase(label: "find", args: #"string.find, "aa", "()%1""#), "2 boolean:true nil:nil"),
            (DiffCase(label: "find", args: #"string.find, "a", "a", 1.5"#),
             #"2 boolean:false string:"bad argument #3 to 'string.find' (number has no integer representation)""#),
        ]
        let cases = known.map(\.0)
        let stock = try stockResults(for: cases)
        let sandboxed = try await sandboxResults(MatcherCaseGenerator.chunk(for: cases), count: cases.count)
        for (i, (c, expected)) in known.enumerated() {
            #expect(stock[i] == expected, "stock, \(c.label)(\(c.args))")
            #expect(sandboxed[i] == expected, "sandbox, \(c.label)(\(c.args))")
        }
    }

    private func compare(
        _ batch: [DiffCase], seed: UInt64, firstIndex: Int, coverage: inout Coverage
    ) async throws {
        let chunk = MatcherCaseGenerator.chunk(for: batch)
        let stock = try stockResults(for: batch)
        for r in stock { coverage.note(r) }
        let sandboxed: [String]
        do {
            sandboxed = try await sandboxResults(chunk, count: batch.count)
        } catch {
            // Find the cases that make the sandbox fail, one state each.
            var culprits: [String] = []
            for (i, c) in batch.enumerated() where culprits.count < 5 {
                do { _ = try await sandboxResults(MatcherCaseGenerator.chunk(for: [c]), count: 1) } catch {
                    culprits.append("#\(firstIndex + i) \(c.label)(\(c.args)): \(error)")
                }
            }
            let cases = "cases #\(firstIndex)..<\(firstIndex + batch.count)"
            Issue.record(
                "seed \(hex(seed)), \(cases): the sandbox failed: \(error)\n\(culprits.joined(separator: "\n"))")
            return
        }
        var reported = 0
        for (i, c) in batch.enumerated() where stock[i] != sandboxed[i] {
            reported += 1
            if reported > 10 { break }
            Issue.record(
                """
                seed \(hex(seed)), case #\(firstIndex + i): \(c.label)(\(c.args))
                  stock:   \(stock[i])
                  sandbox: \(sandboxed[i])
                """)
        }
    }

    private func stockResults(for batch: [DiffCase]) throws -> [String] {
        let chunk = MatcherCaseGenerator.chunk(for: batch)
        var buf = SBBuffer(data: nil, len: 0, cap: 0)
        defer { sb_buffer_free(&buf) }
        let rc = chunk.utf8CString.withUnsafeBufferPointer { p in
            sbt_stock_eval(p.baseAddress, p.count - 1, "diff", &buf)
        }
        let text = String(decoding: UnsafeBufferPointer(start: buf.data, count: buf.len), as: UTF8.self)
        try #require(rc == SB_OK, "the stock state failed: \(text)")
        let results = text.split(separator: "\u{1}", omittingEmptySubsequences: false).map(String.init)
        try #require(results.count == batch.count)
        return results
    }

    private func sandboxResults(_ chunk: String, count: Int) async throws -> [String] {
        // Limits far above what the cases need: only a disagreement can fail them.
        let state = try LuaState(limits: LuaLimits(instructionsPerRun: 1_000_000_000, timePerRun: .seconds(120)))
        defer { state.close() }
        let values = try await state.execute(chunk, chunkName: "diff")
        let text = try #require(values.first?.stringValue)
        let results = text.split(separator: "\u{1}", omittingEmptySubsequences: false).map(String.init)
        try #require(results.count == count)
        return results
    }

    private func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16, uppercase: true) }
}

/// One generated call: `label` names the function, `args` is the Lua argument
/// list given to `pcall` (the function first).
struct DiffCase {
    let label: String
    let args: String
}

/// What the stock side's results show the cases reached.
struct Coverage {
    static let expectedErrors = [
        "malformed pattern (ends with '%')",
        "malformed pattern (missing ']')",
        "malformed pattern (missing arguments to '%b')",
        "missing '[' after '%f' in pattern",
        "invalid capture index",
        "invalid pattern capture",
        "unfinished capture",
        "too many captures",
        "pattern too complex",
        "invalid use of '%' in replacement string",
        "invalid replacement value (a table)",
        "boom",
    ]
    var matched = 0
    var failed = 0
    var errorsSeen: Set<String> = []

    mutating func note(_ result: String) {
        if result.hasPrefix("2 boolean:false ") {
            failed += 1
            errorsSeen.insert(String(result.dropFirst("2 boolean:false ".count)))
        } else if result != "2 boolean:true nil:nil", result != #"2 boolean:true string:" end""#,
            !result.hasSuffix(" integer:0")  // gsub without a replacement
        {
            matched += 1
        }
    }
}

/// Generates calls of the four functions with small patterns and subjects.
struct MatcherCaseGenerator {
    var g: SplitMix64

    init(seed: UInt64) { g = SplitMix64(state: seed) }

    private mutating func int(_ n: Int) -> Int { Int(g.next() % UInt64(n)) }
    private mutating func chance(_ percent: Int) -> Bool { int(100) < percent }
    private mutating func pick<T>(_ a: [T]) -> T { a[int(a.count)] }

    /// Subjects: a small alphabet, so that matches happen.
    private static let subjectChars = Array("aaaaaabbbbbc()1 .%-]A")
    private static let literals = [
        "a", "a", "a", "b", "b", "c", "1", " ", "A", "%(", "%)", "%.", "%%", "%-", "%]", "%[",
    ]
    private static let classLetters = Array("adswpxlucg")

    mutating func nextCase() -> DiffCase {
        let s = Self.lit(subject())
        let p = Self.lit(pattern())
        switch int(100) {
        case 0..<30:
            var args = "string.find, \(s), \(p)"
            if chance(45) {
                args += ", \(initArg())"
                if chance(30) { args += ", \(pick(["true", "false", "nil", "1"]))" }
            }
            return DiffCase(label: "find", args: args)
        case 30..<55:
            return DiffCase(label: "match", args: "string.match, \(s), \(p)" + (chance(40) ? ", \(initArg())" : ""))
        case 55..<70:
            return DiffCase(label: "gmatch", args: "gm, \(s), \(p), \(chance(40) ? initArg() : "nil")")
        default:
            var args = "string.gsub, \(s), \(p), \(replacement())"
            if chance(35) { args += ", \(pick(["0", "1", "2", "-1", "1.5", "2.0", "\"1\"", "math.maxinteger", "nil"]))" }
            return DiffCase(label: "gsub", args: args)
        }
    }

    private mutating func subject() -> String {
        String((0..<int(8)).map { _ in pick(Self.subjectChars) })
    }

    private mutating func initArg() -> String {
        switch int(10) {
        case 0: return pick(["math.mininteger", "math.maxinteger", "100", "0"])
        case 1: return pick(["1.0", "1.5", "\"2\"", "-0.0"])
        case 2: return String(int(19) - 9)  // -9 ... 9: far before the start and past the end
        default: return String(int(9) - 4)  // -4 ... 4: mostly inside short subjects
        }
    }

    private mutating func replacement() -> String {
        switch int(10) {
        case 0..<6:
            let parts = ["a", "-", "%0", "%1", "%2", "%3", "%9", "%%", "", "b"]
            var r = (0..<int(4)).map { _ in pick(parts) }.joined()
            if chance(8) { r += pick(["%", "%z", "%a"]) }  // invalid uses of '%'
            return Self.lit(r)
        case 6, 7: return "R.t"
        case 8: return pick(["R.f1", "R.f2", "R.f3"])
        default: return pick(["R.f4", "R.f5", "3", "true"])  // errors, a number, a bad type
        }
    }

    private mutating func pattern() -> String {
        if chance(3) { return tooComplex() }
        var quantifiers = 0
        var p = chance(20) ? "^" : ""
        p += sequence(depth: 0, quantifiers: &quantifiers)
        if chance(15) { p += "$" }
        if chance(10) { p = malformed(p) }
        return p
    }

    /// Patterns at the matcher's limits: recursion depth (200) and captures (32).
    /// Each has a single path however long it is (every item may match empty,
    /// and nothing follows), so the stock matcher is done at once. A lazy item
    /// that matches recurses without consuming: 200 of them reach the depth
    /// limit on a one-character subject.
    private mutating func tooComplex() -> String {
        switch int(3) {
        case 0: return String(repeating: pick(["a-", "%a-", "[ab]-", ".-"]), count: 195 + int(10))
        case 1: return String(repeating: "()", count: 30 + int(5))
        default: return String(repeating: "(a*)", count: 31 + int(3))
        }
    }

    private mutating func malformed(_ p: String) -> String {
        switch int(7) {
        case 0: return p + "%"
        case 1: return p + ")"
        case 2: return p + "[a" + (chance(50) ? "%" : "")
        case 3: return p + "%f" + pick(["a", "", "%a"])
        case 4: return p + "%b" + pick(["", "("])
        case 5: return "(" + p
        default: return String(p.prefix(int(p.count + 1)))  // cut anywhere
        }
    }

    private mutating func sequence(depth: Int, quantifiers: inout Int) -> String {
        var out = ""
        for _ in 0..<(1 + int(depth == 0 ? 3 : 2)) {
            switch int(100) {
            case 0..<62:
                out += single()
                if quantifiers < 3, chance(40) {
                    out += pick(["*", "+", "-", "?"])
                    quantifiers += 1
                }
            case 62..<74 where depth < 2:
                out += "(" + sequence(depth: depth + 1, quantifiers: &quantifiers) + ")"
            case 74..<80: out += "()"
            case 80..<85: out += "%" + String(1 + int(3))
            case 85..<90: out += "%b" + String(pick(Array("()ab"))) + String(pick(Array("()ab")))
            case 90..<95: out += "%f" + set()
            case 95..<97: out += "$"  // not at the end: a literal
            default: out += pick(["*", "+", "-", "?", "^"])  // where an item is expected: literals
            }
        }
        return out
    }

    private mutating func single() -> String {
        switch int(10) {
        case 0..<4: return pick(Self.literals)
        case 4: return "."
        case 5, 6:
            let c = pick(Self.classLetters)
            return "%" + String(chance(30) ? Character(c.uppercased()) : c)
        default: return set()
        }
    }

    private mutating func set() -> String {
        var s = "[" + (chance(30) ? "^" : "")
        if chance(5) { s += "]" }  // a ']' first is a member
        for _ in 0..<(1 + int(3)) {
            switch int(6) {
            case 0, 1: s += pick(["a", "a", "b", "c", "1", "(", " "])
            case 2: s += pick(["a-b", "a-c", "0-9", "(-)", "b-a"])
            case 3:
                let c = pick(Self.classLetters)
                s += "%" + String(chance(30) ? Character(c.uppercased()) : c)
            case 4: s += pick(["%]", "%-", "%%", "%^"])
            default: s += "-"
            }
        }
        return s + "]"
    }

    /// A Lua string literal for `s` (decimal escapes for everything but letters and digits).
    static func lit(_ s: String) -> String {
        var out = "\""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let d = String(b)
                out += "\\" + String(repeating: "0", count: 3 - d.count) + d
            }
        }
        return out + "\""
    }

    /// The chunk both sides run: every case under pcall, each result as text
    /// (count, then type-tagged values), joined with "\1" (which %q never
    /// leaves raw).
    static func chunk(for cases: [DiffCase]) -> String {
        var lua = """
            local R = {
              t = {a = "T", b = false, ab = 7, [1] = "one", [2] = {}, ["("] = "P"},
              f1 = function(...) return select("#", ...) end,
              f2 = function(a, b) if b ~= nil then return tostring(b) .. tostring(a) end return nil end,
              f3 = function(a) if a == "a" then return false end return "<" .. tostring(a) .. ">" end,
              f4 = function() return {} end,
              f5 = function(a) error("boom " .. tostring(a)) end,
            }
            local function ser(...)
              local n = select("#", ...)
              local out = tostring(n)
              for i = 1, n do
                local v = select(i, ...)
                local t = type(v)
                if t == "string" then out = out .. " string:" .. string.format("%q", v)
                elseif t == "number" then out = out .. " " .. math.type(v) .. ":" .. tostring(v)
                else out = out .. " " .. t .. ":" .. tostring(v) end
              end
              return out
            end
            local function gm(s, p, init)
              local it = string.gmatch(s, p, init)
              local out = ""
              for _ = 1, 64 do
                local r = table.pack(it())
                if r[1] == nil then return out .. " end" end
                out = out .. " {" .. ser(table.unpack(r, 1, r.n)) .. "}"
              end
              return out .. " more"
            end
            local o = {}

            """
        for c in cases { lua += "o[#o + 1] = ser(pcall(\(c.args)))\n" }
        lua += "return table.concat(o, \"\\1\")\n"
        return lua
    }
}
