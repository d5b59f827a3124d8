import Foundation
import Logging
import LuaSandbox
import Sidobe
import SidobeTesting
import SidobotEngine

/// The outcome of one `test(name, fn)`.
public struct RuleTestResult: Sendable, Hashable {
    /// The test file as shown (`rules/retry_failed_test.lua`).
    public var file: String
    public var name: String
    /// Why it failed, with file:line; nil when it passed.
    public var failure: String?
    public var passed: Bool { failure == nil }
}

/// The outcome of a `sidobot test` run.
public struct RuleTestSummary: Sendable {
    public var results: [RuleTestResult]
    public var passed: Int { results.filter(\.passed).count }
    public var failed: Int { results.count - passed }
    /// The last line of the output: `N passed, N failed`.
    public var line: String { "\(passed) passed, \(failed) failed" }
}

/// Runs rule tests (`*_test.lua`) against the real engine, on a virtual clock, with a fake Sidobe.
///
/// Each test file runs in its own sandboxed Lua state holding the test API (`test`, `t.*`); each
/// `test(name, fn)` gets a fresh ``Engine`` over a fresh temporary data folder, a fresh
/// ``VirtualClock`` and a fresh ``TestSidobe``. The test API's functions that drive the engine
/// are asynchronous host functions: the test's coroutine is suspended while the engine works,
/// and resumed once every handler run the action caused has finished (`Engine.settle()`).
public actor RuleTestRunner {
    /// The folder the rules (and, by default, the tests) are read from.
    public let folder: String
    let output: @Sendable (String) -> Void
    var world: TestWorld?

    /// - Parameters:
    ///   - folder: the rules folder; `t.load("name")` reads `folder/name.lua`.
    ///   - output: receives the report line by line.
    public init(folder: String, output: @escaping @Sendable (String) -> Void) {
        self.folder = folder
        self.output = output
    }

    /// The `*_test.lua` files of the folder, sorted.
    public static func testFiles(in folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder)
            .filter { $0.hasSuffix("_test.lua") && !$0.hasPrefix(".") }
            .sorted()
            .map { folder.hasSuffix("/") ? folder + $0 : folder + "/" + $0 }
    }

    /// Runs every test file of the folder (tests whose file or name contains `filter`, when given),
    /// prints a line per test and, last, `N passed, N failed`.
    public func runAll(filter: String? = nil) async -> RuleTestSummary {
        let files: [String]
        do {
            files = try Self.testFiles(in: folder)
        } catch {
            output("cannot read \(folder): \(error.localizedDescription)")
            let summary = RuleTestSummary(results: [RuleTestResult(file: folder, name: "(folder)", failure: "cannot read the folder")])
            output(summary.line)
            return summary
        }
        var results: [RuleTestResult] = []
        for file in files { results += await runFile(file, filter: filter) }
        let summary = RuleTestSummary(results: results)
        if files.isEmpty { output("no *_test.lua files in \(folder)") }
        output(summary.line)
        return summary
    }

    /// Runs one test file.
    public func runFile(_ path: String, filter: String? = nil) async -> [RuleTestResult] {
        let display = RuleFiles.displayPath(path)
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let defaultRule = stem.hasSuffix("_test") ? String(stem.dropLast(5)) : stem
        func loadFailure(_ text: String) -> [RuleTestResult] {
            output(display)
            output("  FAIL  (loading the test file)")
            output(Self.indent(text))
            return [RuleTestResult(file: display, name: "(loading the test file)", failure: text)]
        }
        let source: String
        do {
            source = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            return loadFailure("\(display): cannot read the file: \(error.localizedDescription)")
        }
        let lua: LuaState
        do {
            lua = try LuaState(limits: LuaLimits(instructionsPerRun: 500_000_000, timePerRun: .seconds(600)))
        } catch {
            return loadFailure("cannot create a Lua state: \(error)")
        }
        defer { lua.close() }
        let names: [String]
        let runner: LuaFunction
        do {
            try installTestAPI(in: lua)
            _ = try await lua.execute(Self.prelude, chunkName: "=sidobot-test")
            _ = try await lua.execute(source, chunkName: display)
            names = (try lua.global("__sidobot_names").arrayValue ?? []).compactMap(\.stringValue)
            guard let function = try lua.function(named: "__sidobot_run") else { return loadFailure("the test prelude is missing") }
            runner = function
        } catch {
            return loadFailure(Self.describe(error))
        }
        let fileName = URL(fileURLWithPath: path).lastPathComponent
        let selected = names.enumerated().filter { filter == nil || $0.element.contains(filter!) || fileName.contains(filter!) }
        guard !selected.isEmpty else { return [] }
        output(display)
        if names.isEmpty { output("  (no test(name, fn) in this file)") }
        var results: [RuleTestResult] = []
        for (index, name) in selected {
            let world = TestWorld(rulesSource: folder, defaultRule: defaultRule)
            self.world = world
            var failure: String?
            do {
                _ = try await lua.run(runner, arguments: [.integer(Int64(index + 1))])
                failure = await world.unexpectedErrors()
            } catch {
                // The cause first: an assertion failing after a handler error is most often its effect.
                let causes = await world.handlerErrorsNotSeen()
                failure = (causes.isEmpty ? "" : causes.joined(separator: "\n") + "\n") + Self.describe(error)
            }
            await world.close()
            self.world = nil
            if let failure {
                output("  FAIL  \(name)")
                output(Self.indent(failure))
            } else {
                output("  pass  \(name)")
            }
            results.append(RuleTestResult(file: display, name: name, failure: failure))
        }
        return results
    }

    static func indent(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { "        " + $0 }.joined(separator: "\n")
    }

    static func describe(_ error: any Error) -> String {
        guard let error = error as? LuaError else { return "\(error)" }
        switch error {
        case .script(let script):
            if let chunk = script.chunk, let line = script.line, !script.message.hasPrefix(chunk + ":") {
                return "\(chunk):\(line): \(script.message)"
            }
            return script.message
        default:
            return error.description
        }
    }

    /// The Lua side of the test API: `test`, the `t` table, and the runner's entry point.
    static let prelude = #"""
    local H = __host
    __host = nil
    local tests, names = {}, {}
    __sidobot_names = names
    function test(name, fn)
      if type(name) ~= "string" then error("test(name, fn): the name must be a string", 2) end
      if type(fn) ~= "function" then error("test(name, fn): fn must be a function", 2) end
      tests[#tests + 1] = fn
      names[#names + 1] = name
    end
    t = {
      load = H.load, rule = H.rule, restart = H.restart,
      webhook = H.webhook, hook = H.hook, emit = H.emit,
      advance = H.advance, advance_to = H.advance_to, now = H.now, time = H.time,
      sends = H.sends, state = H.state, timers = H.timers, message = H.message, messages = H.messages,
      dead_letters = H.dead_letters, logs = H.logs,
      eq = H.eq, ok = H.ok, contains = H.contains, match = H.match, fail = H.fail,
      sidobe = { fail_next = H.fail_next, answer = H.answer, default = H.default, number = H.number },
    }
    function __sidobot_run(i) return tests[i](t) end
    """#

    // MARK: The test API

    func installTestAPI(in lua: LuaState) throws(LuaError) {
        func async(_ name: String, _ body: @escaping @Sendable (isolated RuleTestRunner, TestWorld, LuaArguments) async throws -> [LuaValue]) throws(LuaError) {
            try lua.registerAsync(name, in: "__host") { [weak self] call in
                guard let self else { throw LuaHostError("the test runner stopped") }
                return try await self.withWorld(call.arguments, body)
            }
        }
        try async("load") { _, world, arguments in
            var names: [String] = []
            for index in arguments.indices {
                switch arguments.value(at: index) {
                case .string(let name): names.append(name)
                case .array(let items): names += items.compactMap(\.stringValue)
                default: throw arguments.argumentError(at: index, "a rule name (the file stem, like \"retry_failed\") expected")
                }
            }
            if names.isEmpty { throw LuaHostError("t.load: name the rules to load, like t.load(\"retry_failed\", \"escalate\")") }
            try await world.start(names: names)
            return []
        }
        try async("rule") { _, world, arguments in
            let name = try arguments.string(at: 0)
            let source = try arguments.string(at: 1)
            try world.addInline(name: name, source: source)
            return []
        }
        try async("restart") { _, world, arguments in
            let options = try Self.options(arguments, at: 0)
            var down = 0.0
            if let value = options["down"], !value.isNull {
                down = try Self.seconds(LuaArguments(functionName: "t.restart", all: [.value(value)]), at: 0)
            }
            try await world.restart(graceful: options["graceful"]?.boolValue ?? false, down: down)
            return []
        }
        try async("webhook") { _, world, arguments in
            [.string(try await world.webhook(try Self.options(arguments, at: 0)))]
        }
        try async("hook") { _, world, arguments in
            let name = try arguments.string(at: 0)
            let contentType = try arguments.optionalString(at: 2)
            return [.string(try await world.hook(name: name, body: arguments.value(at: 1), contentType: contentType))]
        }
        try async("emit") { _, world, arguments in
            let name = try arguments.string(at: 0)
            return [.string(try await world.emit(name: name, payload: arguments.value(at: 1)))]
        }
        try async("advance") { _, world, arguments in
            let seconds = try Self.seconds(arguments, at: 0)
            if seconds < 0 { throw arguments.argumentError(at: 0, "time only moves forward") }
            try await world.advance(by: seconds)
            return [.integer(world.clock.now().seconds)]
        }
        try async("advance_to") { _, world, arguments in
            let target = try arguments.number(at: 0)
            let seconds = target - world.clock.now().secondsValue
            if seconds < 0 { throw arguments.argumentError(at: 0, "that time is in the past (now is \(world.clock.now().seconds))") }
            try await world.advance(by: seconds)
            return [.integer(world.clock.now().seconds)]
        }
        try async("now") { _, world, _ in [.integer(world.clock.now().seconds)] }
        try async("time") { _, _, arguments in
            let text = try arguments.string(at: 0)
            guard let date = ISO8601Timestamp.parse(text) else {
                throw arguments.argumentError(at: 0, "an ISO 8601 time with its offset expected, like \"2026-01-02T09:00:00+07:00\"")
            }
            return [.integer(UnixTime(date).seconds)]
        }
        try async("sends") { _, world, _ in [.array(world.sidobe.sends.map(Self.sendValue))] }
        try async("state") { _, world, arguments in
            let engine = try await world.running()
            let rule = try arguments.optionalString(at: 0) ?? world.defaultRule
            return [.object(await engine.stateOf(rule: rule))]
        }
        try async("timers") { _, world, arguments in
            let engine = try await world.running()
            let rule = try arguments.optionalString(at: 0)
            let now = world.clock.now()
            return [.array(await engine.pendingTimers().filter { rule == nil || $0.rule == rule }.map { timer -> LuaValue in
                .object(["id": .string(timer.id.description), "rule": .string(timer.rule), "name": .string(timer.name),
                         "payload": timer.payload, "due": timer.due.luaSeconds,
                         "in_seconds": .double(timer.due.secondsValue - now.secondsValue)])
            })]
        }
        try async("message") { _, world, arguments in
            let engine = try await world.running()
            return [await engine.message(id: try arguments.string(at: 0))?.luaValue ?? .null]
        }
        try async("messages") { _, world, _ in
            let engine = try await world.running()
            return [.array(await engine.messages().map(\.luaValue))]
        }
        try async("dead_letters") { _, world, _ in [.array(try await world.deadLetters())] }
        try async("logs") { _, world, arguments in
            let rule = try arguments.optionalString(at: 0)
            return [.array(world.logs.entries.filter { rule == nil || $0.rule == rule }.map { entry -> LuaValue in
                .object(["level": .string(entry.level), "text": .string(entry.text), "rule": .string(entry.rule),
                         "fields": .object(entry.fields)])
            })]
        }
        try async("fail_next") { _, world, arguments in
            let fields: [String: LuaValue]
            if case .string(let code) = arguments.value(at: 0) { fields = ["code": .string(code)] } else { fields = try Self.options(arguments, at: 0) }
            let code = fields["code"]?.stringValue ?? "UNAVAILABLE"
            guard let error = TestSidobe.error(code: code, message: fields["message"]?.stringValue,
                                                   httpStatus: fields["http_status"]?.int64Value.map { Int($0) }) else {
                throw LuaHostError("t.sidobe.fail_next: unknown code '\(code)'; one of \(TestSidobe.errorCodes.joined(separator: ", "))")
            }
            for _ in 0..<max(1, Int(fields["times"]?.int64Value ?? 1)) { world.sidobe.script(.failure(error)) }
            return []
        }
        try async("answer") { _, world, arguments in
            let fields = try Self.options(arguments, at: 0)
            let status = try Self.status(fields, function: "t.sidobe.answer")
            for _ in 0..<max(1, Int(fields["times"]?.int64Value ?? 1)) { world.sidobe.script(.status(status)) }
            return []
        }
        try async("default") { _, world, arguments in
            world.sidobe.setDefaultStatus(try Self.status(try Self.options(arguments, at: 0), function: "t.sidobe.default"))
            return []
        }
        try async("number") { _, world, arguments in
            let fields = try Self.options(arguments, at: 0)
            guard let phone = fields["phone"]?.stringValue else { throw LuaHostError("t.sidobe.number{ phone = ..., registered = false }: phone is required") }
            world.sidobe.setRegistered(phone, fields["registered"]?.boolValue ?? true)
            return []
        }

        // Assertions: synchronous and pure; a failure is a Lua error at the caller's line.
        try lua.register("eq", in: "__host") { call in
            let actual = call.arguments.value(at: 0), expected = call.arguments.value(at: 1)
            guard !ValueDiff.same(actual, expected) else { return [] }
            var text = Self.label(call.arguments, at: 2, "t.eq") + ": values differ\n    expected: \(ValueDiff.render(expected))\n    actual:   \(ValueDiff.render(actual))"
            if ValueDiff.isTable(actual) && ValueDiff.isTable(expected) {
                text += "\n    differences:\n" + ValueDiff.differences(actual: actual, expected: expected).map { "      " + $0 }.joined(separator: "\n")
            }
            throw LuaHostError(text)
        }
        try lua.register("ok", in: "__host") { call in
            switch call.arguments.value(at: 0) {
            case .null, .bool(false):
                throw LuaHostError(Self.label(call.arguments, at: 1, "t.ok") + ": expected a true value, got \(ValueDiff.render(call.arguments.value(at: 0)))")
            default: return []
            }
        }
        try lua.register("contains", in: "__host") { call in
            let haystack = call.arguments.value(at: 0), needle = call.arguments.value(at: 1)
            let found: Bool
            switch (haystack, needle) {
            case (.string(let text), .string(let part)): found = text.contains(part)
            case (.array(let items), _): found = items.contains { ValueDiff.matches($0, needle) }
            case (.object(let fields), _): found = ValueDiff.isTable(needle) ? ValueDiff.matches(haystack, needle) : fields.values.contains { ValueDiff.matches($0, needle) }
            default: found = false
            }
            guard !found else { return [] }
            throw LuaHostError(Self.label(call.arguments, at: 2, "t.contains") + ": \(ValueDiff.render(needle)) not found in\n    \(ValueDiff.render(haystack, limit: 1200))")
        }
        try lua.register("match", in: "__host") { call in
            let actual = call.arguments.value(at: 0), partial = call.arguments.value(at: 1)
            guard !ValueDiff.matches(actual, partial) else { return [] }
            var text = Self.label(call.arguments, at: 2, "t.match") + ": the value does not have the expected fields\n    expected (partial): \(ValueDiff.render(partial))\n    actual:             \(ValueDiff.render(actual))"
            if case .object(var fields) = actual, case .object(let wanted) = partial {
                fields = fields.filter { wanted[$0.key] != nil }
                text += "\n    differences:\n" + ValueDiff.differences(actual: .object(fields), expected: partial).map { "      " + $0 }.joined(separator: "\n")
            }
            throw LuaHostError(text)
        }
        try lua.register("fail", in: "__host") { call in
            throw LuaHostError(Self.label(call.arguments, at: 0, "t.fail"))
        }
    }

    func withWorld(_ arguments: LuaArguments,
                   _ body: @Sendable (isolated RuleTestRunner, TestWorld, LuaArguments) async throws -> [LuaValue]) async throws -> [LuaValue] {
        guard let world else { throw LuaHostError("t.* functions work only inside test(name, function(t) ... end)") }
        return try await body(self, world, arguments)
    }

    static func label(_ arguments: LuaArguments, at index: Int, _ function: String) -> String {
        arguments.value(at: index).stringValue ?? function
    }

    static func options(_ arguments: LuaArguments, at index: Int) throws(LuaHostError) -> [String: LuaValue] {
        switch arguments.value(at: index) {
        case .null: return [:]
        case .object(let fields): return fields
        case .array(let items) where items.isEmpty: return [:]
        case let other: throw arguments.argumentError(at: index, "a table expected, got \(other.luaTypeName)")
        }
    }

    static func seconds(_ arguments: LuaArguments, at index: Int) throws(LuaHostError) -> Double {
        switch arguments.value(at: index) {
        case .integer(let n): return Double(n)
        case .double(let d): return d
        case .string(let text):
            do {
                return Double(try DurationText.parseMilliseconds(text)) / 1000
            } catch {
                throw arguments.argumentError(at: index, "\(error)")
            }
        case let other:
            throw arguments.argumentError(at: index, "a duration expected (seconds, or \"30s\", \"5m\", \"2h\", \"1d\"), got \(other.luaTypeName)")
        }
    }

    static func status(_ fields: [String: LuaValue], function: String) throws(LuaHostError) -> MessageStatus {
        guard let text = fields["status"]?.stringValue, ["SUCCESS", "FAILED", "PENDING"].contains(text) else {
            throw LuaHostError("\(function){ status = \"SUCCESS\" | \"FAILED\" | \"PENDING\" }: status is required")
        }
        return MessageStatus(rawValue: text)
    }

    static func sendValue(_ send: TestSidobe.Send) -> LuaValue {
        var fields: [String: LuaValue] = [
            "id": .string(send.id), "phone": .string(send.message.phone), "message_type": .string(send.message.messageType.rawValue),
            "is_async": .bool(send.message.isAsync), "status": .string(send.status.rawValue), "at": UnixTime(send.at).luaSeconds,
        ]
        switch send.message.content {
        case .text(let text): fields["message"] = .string(text)
        case .image(let url, let caption):
            fields["image_url"] = .string(url)
            if let caption { fields["message"] = .string(caption) }
        case .document(let url, let name, let caption):
            fields["document_url"] = .string(url)
            fields["document_name"] = .string(name)
            if let caption { fields["message"] = .string(caption) }
        }
        return .object(fields)
    }
}
