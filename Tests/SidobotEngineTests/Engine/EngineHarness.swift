import Foundation
import LuaSandbox
import Sidobe
@testable import SidobotEngine
import SidobeTesting
import Synchronization

/// A rules folder and a data folder in a temp directory, a virtual clock, a fake Sidobe, an engine.
final class EngineHarness {
    let root: URL
    let rulesFolder: String
    let dataFolder: String
    let clock: VirtualClock
    let sidobe: TestSidobe
    var configuration: EngineConfiguration
    private(set) var engine: Engine!

    init(persistent: Bool = true, start: UnixTime = UnixTime(seconds: 1_767_225_600)) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("sidobot-engine-\(UUID().uuidString)")
        rulesFolder = root.appendingPathComponent("rules").path
        dataFolder = root.appendingPathComponent("data").path
        try FileManager.default.createDirectory(atPath: rulesFolder, withIntermediateDirectories: true)
        let clock = VirtualClock(start: start)
        self.clock = clock
        // Numbers ending in 0000 are not on WhatsApp.
        sidobe = TestSidobe(now: { clock.now().date }, isRegistered: { !$0.hasSuffix("0000") })
        configuration = EngineConfiguration(rulesFolder: rulesFolder, dataFolder: persistent ? dataFolder : nil)
        configuration.fsync = .always
        // The engine's default wall-clock limit: the whole suite shares two pool threads, and a run
        // suspended in a send can wait seconds to be resumed while other tests' Lua loops spin
        // (5 s here aborted runs of passing tests). Longer under sanitizers (scripts/check-sanitizers
        // sets SIDOBOT_TEST_SLOWDOWN), which slow everything down several times.
        configuration.limits.timePerRun = .seconds(30 * testSlowdown)
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
