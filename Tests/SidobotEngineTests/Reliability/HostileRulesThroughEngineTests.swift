import Foundation
import LuaSandbox
@testable import SidobotEngine
import Testing

/// ISSUE 8, sandbox through the whole engine: attacks from the LuaSandbox hostile battery
/// (Tests/LuaSandboxTests/HostileScriptTests.swift), each in its own rule file as a `hook.attack` handler,
/// plus engine-specific ones (hostile values handed to `state.set`, `timer.after`, `emit`), loaded by the
/// engine next to a benign rule and triggered by one hook. Each must end its own run only — dead letter
/// with the right reason and error, trace outcome `error` or `aborted` — while the benign rule, listening
/// to the same hook, runs and keeps a correct state, and the engine keeps serving events, timers and a restart.
@Suite("reliability: the hostile battery through the engine", .serialized, .timeLimit(.minutes(5)))
struct HostileRulesThroughEngineTests {
    enum Expect: Sendable {
        /// A Lua error: dead letter reason `error`, trace outcome `error`, the error contains the text.
        case refused(String)
        /// A limit abort: dead letter reason `limit`, trace outcome `aborted`.
        case aborted
        /// Deep recursion: a stack overflow error or a memory abort, whichever comes first.
        case refusedOrAborted(String)
    }

    struct Attack: Sendable, CustomStringConvertible {
        let name: String
        let body: String
        let expect: Expect
        var description: String { name }
        init(_ name: String, _ body: String, _ expect: Expect) {
            self.name = name
            self.body = body
            self.expect = expect
        }
    }

    /// Handler bodies: the code runs inside `on("hook.attack", function(ev) ... end)`.
    static let attacks: [Attack] = [
        // Escapes: libraries that must not exist in a rule either.
        Attack("io.open", #"return io.open("/etc/passwd"):read("a")"#, .refused("global 'io'")),
        Attack("os.execute", #"return os.execute("id")"#, .refused("field 'execute'")),
        Attack("os.exit", #"os.exit(1)"#, .refused("field 'exit'")),
        Attack("os.getenv", #"return os.getenv("SIDOBE_SECRET_KEY")"#, .refused("field 'getenv'")),
        Attack("require", #"return require("io")"#, .refused("global 'require'")),
        Attack("package.loadlib", #"return package.loadlib("libc.so.6", "system")"#, .refused("global 'package'")),
        Attack("debug.getregistry", #"return debug.getregistry()"#, .refused("global 'debug'")),
        Attack("dofile", #"dofile("/etc/passwd")"#, .refused("global 'dofile'")),
        Attack("loadfile", #"return loadfile("/etc/passwd")"#, .refused("global 'loadfile'")),
        Attack("string.dump", #"return string.dump(function() end)"#, .refused("field 'dump'")),
        Attack("binary chunk", #"return assert(load("\27Lua\84\0", "x", "b"))"#, .refused("attempt to load a binary chunk")),
        Attack("string metatable patch", #"getmetatable("").__index = function() return "pwned" end"#, .refused("boolean value")),
        Attack("collectgarbage", #"collectgarbage()"#, .refused("not allowed in the sandbox")),
        Attack("__gc", #"setmetatable({}, {__gc = function() while true do end end})"#, .refused("__gc metamethods are not allowed")),
        // CPU.
        Attack("infinite loop", "while true do end", .aborted),
        Attack("goto loop", "::top:: goto top", .aborted),
        Attack("loop inside pcall", "local ok = pcall(function() while true do end end) return ok", .aborted),
        Attack("looping xpcall handler", "return xpcall(function() while true do end end, function() while true do end end)", .aborted),
        Attack("loop in a coroutine", "return coroutine.wrap(function() while true do end end)()", .aborted),
        Attack("tail call loop", "local function f() return f() end return f()", .aborted),
        Attack("loop in __close", "do local x <close> = setmetatable({}, {__close = function() while true do end end}) while true do end end", .aborted),
        Attack("pattern backtracking", #"return string.find(string.rep("a", 5000), string.rep(".-", 20) .. "b")"#, .aborted),
        Attack("sort comparator loops", "table.sort({3, 2, 1}, function() while true do end end)", .aborted),
        Attack("table.move over 2^62", "table.move({}, 1, 1 << 62, 2)", .aborted),
        Attack("deep recursion", "local function f(n) return 1 + f(n + 1) end return f(1)", .refusedOrAborted("stack overflow")),
        Attack("__index chain loop", "local t = {} setmetatable(t, {__index = t}) return t.x", .refused("'__index' chain too long")),
        // Memory.
        Attack("string.rep bomb", #"local s = string.rep("x", 1 << 30) return #s"#, .aborted),
        Attack("table growth", "local t = {} for i = 1, 1e9 do t[i] = i end", .aborted),
        Attack("concat doubling", #"local s = "x" while true do s = s .. s end"#, .aborted),
        Attack("memory bomb in pcall", #"return pcall(string.rep, "x", 1 << 30)"#, .aborted),
        Attack("unpack bomb", "return select('#', table.unpack({}, 1, 1e8))", .refused("too many results to unpack")),
        // Hostile values handed to the engine's own functions.
        Attack("state.set of a cycle", #"local t = {} t.self = t state.set("k", t)"#, .refused("cycle")),
        Attack("state.set of a deep value", #"local t = {} for i = 1, 10000 do t = { t } end state.set("k", t)"#, .refused("nested too deeply")),
        Attack("state.set of a huge value", #"state.set("k", string.rep("x", 4 << 20))"#, .refusedOrAborted("too large")),
        Attack("timer payload cycle", #"local t = {} t.self = t timer.after("1s", "x", t)"#, .refused("cycle")),
        Attack("timer with a bad duration", #"timer.after("forever", "x", {})"#, .refused("expected a duration")),
        Attack("emit of a cycle", #"local t = {} t.self = t emit("custom.x", t)"#, .refused("cycle")),
        Attack("on() inside a handler", #"on("hook.attack", function() end)"#, .refused("can only be called when the rule loads")),
    ]

    static let benign = """
        rule { description = "benign" }
        on("hook.attack", function(ev) state.incr("attacks_seen") end)
        on("hook.ping", function(ev)
          state.incr("pings")
          state.set("last", ev.body)
          timer.after("10s", "later", { n = state.get("pings") })
        end)
        on("timer.later", function(ev) state.incr("timers") state.set("timer_n", ev.payload.n) end)
        """

    static func fileName(_ index: Int) -> String { "hostile_\(index < 10 ? "0" : "")\(index)" }

    @Test func everyAttackEndsItsOwnRunAndTheBenignRuleKeepsWorking() async throws {
        let h = try EngineHarness()
        h.configuration.limits = LuaLimits(memoryBytes: 16 << 20, instructionsPerRun: 5_000_000, timePerRun: .seconds(20), maxValueBytes: 1 << 20)
        try h.rule("benign", Self.benign)
        for (index, attack) in Self.attacks.enumerated() {
            try h.rule(Self.fileName(index), "-- \(attack.name)\non(\"hook.attack\", function(ev)\n\(attack.body)\nend)\n")
        }
        try await h.start()
        #expect(await h.engine.ruleSummaries().count == Self.attacks.count + 1)

        let eventID = try await h.engine.acceptHook(name: "attack", body: Array("{}".utf8), contentType: "application/json")
        await h.engine.settle()

        let trace = try #require(await h.engine.traces(for: eventID).first)
        let outcomes = Dictionary(trace.rules.map { ($0.rule, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(outcomes["benign"]?.outcome == .ran)
        let letters = Dictionary(await h.engine.deadLetters().map { ($0.rule, $0) }, uniquingKeysWith: { first, _ in first })
        for (index, attack) in Self.attacks.enumerated() {
            let rule = Self.fileName(index)
            let letter = letters[rule]
            let outcome = outcomes[rule]?.outcome
            #expect(letter?.event.id == eventID, "\(attack.name): no dead letter")
            switch attack.expect {
            case .refused(let text):
                #expect(letter?.reason == "error", "\(attack.name): \(letter?.reason.rawValue ?? "-") \(letter?.error ?? "")")
                #expect(outcome == .error, "\(attack.name): trace outcome \(outcome?.rawValue ?? "-")")
                #expect(letter?.error.contains(text) == true, "\(attack.name): \(letter?.error ?? "")")
                #expect(letter?.error.contains("\(rule).lua") == true, "\(attack.name): no file in \(letter?.error ?? "")")
            case .aborted:
                #expect(letter?.reason == "limit", "\(attack.name): \(letter?.reason.rawValue ?? "-") \(letter?.error ?? "")")
                #expect(outcome == .aborted, "\(attack.name): trace outcome \(outcome?.rawValue ?? "-")")
            case .refusedOrAborted(let text):
                let ok = (letter?.reason == "error" && letter?.error.contains(text) == true) || letter?.reason == "limit"
                #expect(ok, "\(attack.name): \(letter?.reason.rawValue ?? "-") \(letter?.error ?? "")")
            }
        }
        #expect(letters["benign"] == nil)
        #expect(await h.engine.deadLetters().count == Self.attacks.count)

        // The benign rule still works: hooks, state, durable timers.
        for n in 1...3 {
            _ = try await h.engine.acceptHook(name: "ping", body: Array(#"{"n":\#(n)}"#.utf8), contentType: "application/json")
            await h.engine.settle()
        }
        await h.engine.advance(by: 60)
        var state = await h.state("benign")
        #expect(state["attacks_seen"] == .integer(1))
        #expect(state["pings"] == .integer(3))
        #expect(state["last"] == .object(["n": .integer(3)]))
        #expect(state["timers"] == .integer(3))
        #expect(state["timer_n"] == .integer(3))
        let benignSummary = await h.engine.ruleSummaries().first { $0.name == "benign" }
        #expect(benignSummary?.errors == 0 && benignSummary?.aborts == 0 && benignSummary?.quarantined == false)
        // The attackers' states were rebuilt after their aborts: a second attack round ends the same way.
        _ = try await h.engine.acceptHook(name: "attack", body: [], contentType: "text/plain")
        await h.engine.settle()
        #expect(await h.engine.deadLetters().count == 2 * Self.attacks.count)
        #expect(await h.state("benign")["attacks_seen"] == .integer(2))
        // No hostile write reached the store.
        for index in Self.attacks.indices { #expect(await h.state(Self.fileName(index)).isEmpty, "\(Self.attacks[index].name)") }

        // A restart (crash: no shutdown) replays the journal: every event was finished, nothing runs twice.
        try await h.start()
        state = await h.state("benign")
        #expect(state["attacks_seen"] == .integer(2))
        #expect(state["pings"] == .integer(3))
        #expect(state["timers"] == .integer(3))
        #expect(await h.engine.deadLetters().count == 2 * Self.attacks.count)
    }

    /// `state.set(key, function() end)` fails like any unconvertible value and leaves the old value
    /// (it used to map the function to nil and silently delete the key).
    @Test func stateSetOfAFunctionIsRefusedAndKeepsTheOldValue() async throws {
        let h = try EngineHarness()
        try h.rule("r", #"on("hook.go", function(ev) state.set("k", 1) state.set("k", function() end) end)"#)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        #expect(await h.engine.deadLetters().first?.reason == "error", "state.set of a function did not fail")
        #expect(await h.state("r")["k"] == .integer(1), "state.set of a function deleted the key")
    }

    @Test func topLevelAttacksAreRefusedAtReloadAndTheRunningRulesStay() async throws {
        let h = try EngineHarness()
        h.configuration.limits = LuaLimits(memoryBytes: 16 << 20, instructionsPerRun: 5_000_000, timePerRun: .seconds(20))
        try h.rule("benign", Self.benign)
        try await h.start()
        let topLevel = [
            "top_loop": "while true do end",
            "top_memory": #"local s = string.rep("x", 1 << 30)"#,
            "top_io": #"io.open("/etc/passwd")"#,
            "top_handlers": #"for i = 1, 1e9 do on("hook.h" .. i, function() end) end"#,
            "top_gc": #"setmetatable({}, {__gc = function() end})"#,
            "top_binary": #"load("\27Lua\84\0", "x", "b")()"#,
        ]
        for (name, source) in topLevel { try h.rule(name, source) }
        let report = await h.engine.reloadRules()
        #expect(Set(report.failed.map { ($0.path as NSString).lastPathComponent }) == Set(topLevel.keys.map { $0 + ".lua" }), "\(report)")
        #expect(await h.engine.ruleSummaries().map(\.name) == ["benign"])
        _ = try await h.engine.acceptHook(name: "ping", body: Array("{}".utf8), contentType: "application/json")
        await h.engine.settle()
        await h.engine.advance(by: 60)
        #expect(await h.state("benign")["pings"] == .integer(1))
        #expect(await h.state("benign")["timers"] == .integer(1))
    }

    @Test func aRuleAttackingOnEveryEventIsQuarantinedAndTheOthersRun() async throws {
        let h = try EngineHarness()
        h.configuration.limits = LuaLimits(memoryBytes: 16 << 20, instructionsPerRun: 1_000_000, timePerRun: .seconds(20))
        h.configuration.quarantineAfter = 3
        try h.rule("benign", Self.benign)
        try h.rule("looper", #"on("hook.attack", function(ev) while true do end end)"#)
        try await h.start()
        var ids: [String] = []
        for _ in 0..<5 {
            ids.append(try await h.engine.acceptHook(name: "attack", body: [], contentType: "text/plain"))
            await h.engine.settle()
        }
        let looper = await h.engine.ruleSummaries().first { $0.name == "looper" }
        #expect(looper?.quarantined == true)
        #expect(looper?.aborts == 3)
        #expect(await h.engine.traces(for: ids[4]).first?.rules.first { $0.rule == "looper" }?.outcome == .skipped)
        #expect(await h.state("benign")["attacks_seen"] == .integer(5))
    }
}
