import Foundation
import Logging
import LuaSandbox
import Sidobe
import SidobeTesting
@_spi(RuleTesting) import SidobotEngine
import Synchronization

/// One test's world: a temporary rules folder and data folder, a virtual clock, a fake Sidobe, and
/// the engine (started on first use, or by `t.load`). Owned by the ``RuleTestRunner`` actor.
final class TestWorld {
    let rulesSource: String
    let defaultRule: String
    let root: URL
    let rulesFolder: String
    let dataFolder: String
    let clock: VirtualClock
    let sidobe: TestSidobe
    let logs = CapturedLogs()
    private(set) var engine: Engine?
    private var loaded: [String]?
    private var inline: [String: String] = [:]
    private var seenLetters: Set<String> = []
    private var webhookCounter = 0

    init(rulesSource: String, defaultRule: String) {
        self.rulesSource = rulesSource
        self.defaultRule = defaultRule
        root = FileManager.default.temporaryDirectory.appendingPathComponent("sidobot-test-\(UUID().uuidString.lowercased())")
        rulesFolder = root.appendingPathComponent("rules").path
        dataFolder = root.appendingPathComponent("data").path
        let clock = VirtualClock()
        self.clock = clock
        sidobe = TestSidobe(now: { clock.now().date })
    }

    /// `t.rule(name, source)`: a rule written in the test, loaded with the others.
    func addInline(name: String, source: String) throws(LuaHostError) {
        guard engine == nil else { throw LuaHostError("t.rule: the engine already started; add rules before t.load or any other action") }
        inline[name] = source
    }

    /// The engine, started with the default rules if nothing started it yet.
    func running() async throws -> Engine {
        if let engine { return engine }
        var names = inline.keys.sorted()
        if FileManager.default.fileExists(atPath: sourcePath(defaultRule)) && !names.contains(defaultRule) { names.append(defaultRule) }
        try await start(names: names)
        return engine!
    }

    private func sourcePath(_ name: String) -> String {
        (rulesSource.hasSuffix("/") ? rulesSource : rulesSource + "/") + name + ".lua"
    }

    /// `t.load(...)`: copies the named rules into the test's rules folder and starts the engine.
    func start(names: [String]) async throws {
        guard engine == nil else {
            throw LuaHostError("t.load: the engine already started; call t.load once, first, with every rule: t.load(\"a\", \"b\")")
        }
        try FileManager.default.createDirectory(atPath: rulesFolder, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dataFolder, withIntermediateDirectories: true)
        for name in names {
            let target = rulesFolder + "/" + name + ".lua"
            if let source = inline[name] {
                try source.write(toFile: target, atomically: true, encoding: .utf8)
            } else {
                guard let source = try? String(contentsOfFile: sourcePath(name), encoding: .utf8) else {
                    throw LuaHostError("t.load: there is no rule \(sourcePath(name))")
                }
                try source.write(toFile: target, atomically: true, encoding: .utf8)
            }
        }
        loaded = names
        try await boot()
    }

    private func boot() async throws {
        var configuration = EngineConfiguration(rulesFolder: rulesFolder, dataFolder: dataFolder)
        configuration.fsync = .no
        let logs = self.logs
        let logger = Logger(label: "sidobot.test") { _ in CapturingLogHandler(logs: logs) }
        let engine = Engine(configuration: configuration, sidobe: sidobe, clock: clock, logger: logger)
        do {
            try await engine.start()
        } catch {
            // The error names rules by their folder; show them as the author knows them.
            let text = error.description.replacingOccurrences(of: URL(fileURLWithPath: rulesFolder).lastPathComponent + "/",
                                                              with: URL(fileURLWithPath: rulesSource).lastPathComponent + "/")
            throw LuaHostError("the rules did not load:\n\(text)")
        }
        await engine.fireOverdue()
        await engine.settle()
        self.engine = engine
    }

    /// `t.restart()`: a new engine over the same data folder, as after a crash (or after a clean
    /// stop with `graceful = true`). The clock and the fake Sidobe carry on.
    ///
    /// `down` seconds pass on the clock while no engine runs (timers and schedules do not fire
    /// during that time; the new engine finds them late, as after an outage).
    func restart(graceful: Bool, down: Double) async throws {
        guard let old = engine, loaded != nil else {
            throw LuaHostError("t.restart: the engine has not started yet (call t.load or drive it first)")
        }
        await old.settle()
        if graceful {
            do { try await old.shutdown(deadline: 5) } catch { throw LuaHostError("t.restart: the shutdown failed: \(error)") }
        }
        engine = nil
        if down > 0 { clock.set(clock.now() + .milliseconds(Int64((down * 1000).rounded()))) }
        try await boot()
    }

    func webhook(_ fields: [String: LuaValue]) async throws -> String {
        let engine = try await running()
        guard let messageID = fields["message_id"]?.stringValue ?? sidobe.sends.last?.id else {
            throw LuaHostError("t.webhook: no message_id given and nothing was sent yet")
        }
        let statusText = fields["status"]?.stringValue ?? "SUCCESS"
        webhookCounter += 1
        let id = fields["id"]?.stringValue ?? "wh-test-\(webhookCounter)"
        let type = fields["message_type"]?.stringValue
            ?? sidobe.sends.first(where: { $0.id == messageID })?.message.messageType.rawValue ?? "TEXT"
        let at = ISO8601Timestamp.format(clock.now().date)
        let status = MessageStatus(rawValue: statusText)
        let event = WebhookEvent(id: id, createdAt: at, payload: .messageStatus(MessageStatusUpdate(
            whatsappMessageID: messageID, status: status, sendAt: at, messageType: MessageType(rawValue: type))))
        if status.isFinal { sidobe.setStatus(status, of: messageID) }
        let acceptance = try await engine.acceptWebhook(event)
        await engine.settle()
        switch acceptance {
        case .accepted: return "accepted"
        case .duplicate: return "duplicate"
        }
    }

    func hook(name: String, body: LuaValue, contentType: String?) async throws -> String {
        let engine = try await running()
        let bytes: [UInt8]
        var type = contentType ?? "application/json"
        if case .string(let text) = body {
            bytes = Array(text.utf8)
            if contentType == nil { type = "text/plain" }
        } else {
            bytes = Array(try JSONCodec.encode(body).utf8)
        }
        let id = try await engine.acceptHook(name: name, body: bytes, contentType: type)
        await engine.settle()
        return id
    }

    func emit(name: String, payload: LuaValue) async throws -> String {
        if name.hasPrefix("message.") || name.hasPrefix("timer.") || name.hasPrefix("hook.") || name == "engine.start" {
            throw LuaHostError("t.emit: '\(name)' is an engine event; use t.webhook, t.hook or t.advance to cause it")
        }
        let engine = try await running()
        let id = try await engine.injectCustomEvent(name: name, payload: payload)
        await engine.settle()
        return id
    }

    func advance(by seconds: Double) async throws {
        let engine = try await running()
        await engine.advance(by: seconds)
        await engine.settle()
    }

    /// `t.dead_letters()`: the failed handler runs (and exhausted sends); reading them marks them
    /// as expected, so they no longer fail the test.
    func deadLetters() async throws -> [LuaValue] {
        let engine = try await running()
        return await engine.deadLetters().map { letter -> LuaValue in
            seenLetters.insert(letter.id)
            return .object(["id": .string(letter.id), "rule": .string(letter.rule), "reason": .string(letter.reason.rawValue),
                            "error": .string(letter.error), "event_id": .string(letter.event.id)])
        }
    }

    /// Handler errors the test did not look at (with `t.dead_letters()`): they fail the test.
    func unexpectedErrors() async -> String? {
        let letters = await lettersNotSeen()
        guard !letters.isEmpty else { return nil }
        return letters.map { "a handler failed (rule \($0.rule)): \($0.error)" }.joined(separator: "\n")
            + "\n(if this error is expected, read it with t.dead_letters() in the test)"
    }

    /// `a handler failed (rule R): file:line: message`, the first line of each handler error (or
    /// limit abort) the test did not read: a failing assertion shows them first, since it is most
    /// often their consequence.
    func handlerErrorsNotSeen() async -> [String] {
        await lettersNotSeen().map { letter in
            var first = letter.error.split(separator: "\n").first.map(String.init) ?? letter.error
            if first.hasPrefix("Lua error: ") { first.removeFirst("Lua error: ".count) }
            return "a handler failed (rule \(letter.rule)): \(first)"
        }
    }

    /// The handler errors and limit aborts of this test not read with `t.dead_letters()`.
    private func lettersNotSeen() async -> [DeadLetter] {
        guard let engine else { return [] }
        await engine.settle()
        return await engine.deadLetters().filter { $0.reason != "send" && !seenLetters.contains($0.id) }
    }

    func close() async {
        if let engine {
            await engine.settle()
            try? await engine.shutdown(deadline: 5)
        }
        engine = nil
        try? FileManager.default.removeItem(at: root)
    }
}

/// Log lines of rules (`log.*`) and engine warnings, kept for `t.logs()`.
final class CapturedLogs: Sendable {
    struct Entry: Sendable {
        var level: String
        var text: String
        var rule: String
        var fields: [String: LuaValue]
    }

    private let state = Mutex<[Entry]>([])

    var entries: [Entry] { state.withLock { $0 } }

    func append(_ entry: Entry) { state.withLock { $0.append(entry) } }
}

/// A log handler that keeps rule logs in memory instead of printing them.
struct CapturingLogHandler: LogHandler {
    let logs: CapturedLogs
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static let engineChatter: Set<String> = ["handler run finished", "engine started", "engine stopped"]

    func log(event: LogEvent) {
        let text = event.message.description
        guard let meta = event.metadata, case .string(let rule)? = meta["rule"], !Self.engineChatter.contains(text) else { return }
        var fields: [String: LuaValue] = [:]
        for (key, value) in meta where key != "rule" && key != "event" { fields[key] = .string("\(value)") }
        let level: String
        switch event.level {
        case .trace, .debug: level = "debug"
        case .info, .notice: level = "info"
        case .warning: level = "warn"
        case .error, .critical: level = "error"
        }
        logs.append(.init(level: level, text: text, rule: rule, fields: fields))
    }
}
