import Foundation
import LuaSandbox
import Sidobe
@testable import SidobotEngine
import Synchronization

/// A Sidobe double: records what is sent, answers like Sidobe, and fails on request.
final class FakeSidobe: SidobeAPI {
    struct State {
        var sent: [OutgoingMessage] = []
        var failures: [SidobeError] = []
        var syncStatus: MessageStatus = .success
        var counter = 0
        var statuses: [String: MessageStatus] = [:]
    }

    let state = Mutex(State())
    /// Runs after Sidobe "sent" a message and before the answer reaches the engine (to race webhooks).
    let beforeAnswer = Mutex<(@Sendable (SentMessage) async -> Void)?>(nil)

    var sent: [OutgoingMessage] { state.withLock { $0.sent } }

    func failNext(_ error: SidobeError) { state.withLock { $0.failures.append(error) } }
    func answerSyncSends(with status: MessageStatus) { state.withLock { $0.syncStatus = status } }

    func send(_ message: OutgoingMessage) async throws(SidobeError) -> SentMessage {
        let result: Result<SentMessage, SidobeError> = state.withLock { state in
            if !state.failures.isEmpty { return .failure(state.failures.removeFirst()) }
            state.counter += 1
            state.sent.append(message)
            let status: MessageStatus = message.isAsync ? .pending : state.syncStatus
            let id = "m\(state.counter)"
            state.statuses[id] = status
            return .success(SentMessage(id: id, messageType: message.messageType, status: status, isAsync: message.isAsync))
        }
        let sent = try result.get()
        if let hook = beforeAnswer.withLock({ $0 }) { await hook(sent) }
        return sent
    }

    func message(id: String) async throws(SidobeError) -> MessageDetail {
        guard let status = state.withLock({ $0.statuses[id] }) else {
            throw .notFound(APIFailure(httpStatus: 404, message: "not found"))
        }
        return MessageDetail(id: id, whatsappDevice: nil, messageType: .text, status: status, isAsync: false)
    }

    func checkNumber(_ phone: String) async throws(SidobeError) -> Bool { !phone.hasSuffix("0000") }
}

/// A rules folder and a data folder in a temp directory, a virtual clock, a fake Sidobe, an engine.
final class EngineHarness {
    let root: URL
    let rulesFolder: String
    let dataFolder: String
    let clock: VirtualClock
    let sidobe = FakeSidobe()
    var configuration: EngineConfiguration
    private(set) var engine: Engine!

    init(persistent: Bool = true, start: UnixTime = UnixTime(seconds: 1_767_225_600)) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("sidobot-engine-\(UUID().uuidString)")
        rulesFolder = root.appendingPathComponent("rules").path
        dataFolder = root.appendingPathComponent("data").path
        try FileManager.default.createDirectory(atPath: rulesFolder, withIntermediateDirectories: true)
        clock = VirtualClock(start: start)
        configuration = EngineConfiguration(rulesFolder: rulesFolder, dataFolder: persistent ? dataFolder : nil)
        configuration.fsync = .always
        // Short, so a hung run fails its test quickly; longer under sanitizers (scripts/check-sanitizers
        // sets SIDOBOT_TEST_SLOWDOWN), which slow everything down several times.
        configuration.limits.timePerRun = .seconds(5 * testSlowdown)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    func rule(_ name: String, _ source: String) throws {
        try source.write(toFile: rulesFolder + "/\(name).lua", atomically: true, encoding: .utf8)
    }

    /// Builds a new engine over the same folders (a restart, or a crash if the last one was not shut down).
    @discardableResult
    func start() async throws -> Engine {
        let engine = Engine(configuration: configuration, sidobe: sidobe, clock: clock)
        try await engine.start()
        await engine.settle()
        self.engine = engine
        return engine
    }

    static let webhookCounter = Atomic<Int>(0)

    func webhook(_ messageID: String, _ status: String, id: String? = nil) async throws -> WebhookAcceptance {
        let n = Self.webhookCounter.add(1, ordering: .relaxed).newValue
        let event = WebhookEvent(id: id ?? "wh-\(n)", createdAt: "2026-01-01T00:00:00+07:00", payload: .messageStatus(
            MessageStatusUpdate(whatsappMessageID: messageID, status: MessageStatus(rawValue: status),
                                sendAt: "2026-01-01T00:00:00+07:00", messageType: .text)))
        let result = try await engine.acceptWebhook(event)
        await engine.settle()
        return result
    }

    func state(_ rule: String) async -> [String: LuaValue] { await engine.stateOf(rule: rule) }
}

/// How many times slower than usual the tests run (SIDOBOT_TEST_SLOWDOWN, 1 unless a sanitizer
/// build sets it): time limits in tests are multiplied by it.
let testSlowdown: Int64 = ProcessInfo.processInfo.environment["SIDOBOT_TEST_SLOWDOWN"].flatMap { Int64($0) }.map { max(1, $0) } ?? 1
