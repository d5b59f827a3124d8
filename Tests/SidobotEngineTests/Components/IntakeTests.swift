import Foundation
import Logging
import LuaSandbox
import Sidobe
import SidobeTesting
@testable import SidobotEngine
import Synchronization
import Testing

/// The intake alone (no engine), and the seam it gives the engine: acknowledging never waits for Lua.
@Suite("Intake")
struct IntakeTests {
    static func webhook(_ id: String, message: String = "m1", status: MessageStatus = .failed) -> WebhookEvent {
        WebhookEvent(id: id, createdAt: "2026-01-01T00:00:00+07:00", payload: .messageStatus(
            MessageStatusUpdate(whatsappMessageID: message, status: status, sendAt: "2026-01-01T00:00:00+07:00", messageType: .text)))
    }

    static func id(_ outcome: WebhookAcceptance) -> String {
        switch outcome {
        case .accepted(let id), .duplicate(let id): id
        }
    }

    static func intake(_ contents: MemoryJournal.Contents) -> Intake {
        Intake(durability: .inMemory(contents), clock: VirtualClock(), dedupeRetention: 86_400, logger: .init(label: "test"))
    }

    @Test("webhooks are journaled before they are answered, once: a redelivery is a duplicate and is written nowhere")
    func dedupe() async throws {
        let contents = MemoryJournal.Contents()
        let intake = Self.intake(contents)
        #expect(try await intake.acceptWebhook(Self.webhook("a")) == .accepted(eventID: "a"))
        #expect(contents.lines.count == 1)
        #expect(contents.lines[0].contains(#""moves_ledger":false"#), "the engine records what the status does to the ledger")
        #expect(try await intake.acceptWebhook(Self.webhook("a")) == .duplicate(eventID: "a"))
        // A type Sidobe added later is kept too (issue 19): journaled, deduplicated, and handed
        // on as `sidobe.TYPE` with its data as received.
        let unknown = WebhookEvent(id: "u", createdAt: "x", payload: .unknown(type: "DEVICE_STATUS"), rawData: Array(#"{"device":"d-1","online":false}"#.utf8))
        #expect(try await intake.acceptWebhook(unknown) == .accepted(eventID: "u"))
        #expect(try await intake.acceptWebhook(unknown) == .duplicate(eventID: "u"))
        #expect(contents.lines.count == 2)
        let accepted = intake.takeAccepted()
        #expect(accepted.map(\.id) == ["a", "u"])
        #expect(accepted.last?.kind == .sidobe(type: "DEVICE_STATUS", data: .object(["device": .string("d-1"), "online": .bool(false)]), createdAt: "x"))
        #expect(intake.takeAccepted().isEmpty)
        #expect(intake.hasSeen("a") && intake.hasSeen("u"))
    }

    @Test("webhooks accepted together are one journal record, in order, and reach the engine in that order")
    func groupCommit() async throws {
        let contents = MemoryJournal.Contents()
        let intake = Self.intake(contents)
        let ids = (0..<50).map { "w\($0)" }
        let outcomes = try await intake.acceptWebhooks(ids.map { Self.webhook($0) } + [Self.webhook("w3")])
        #expect(outcomes.last == .duplicate(eventID: "w3"))
        #expect(contents.appends == 1 && contents.lines.count == 1)
        #expect(intake.takeAccepted().map(\.id) == ids)
    }

    @Test("webhooks an event loop reads in one turn share one write at the end of the turn, and are answered after it")
    func writeAtTheEndOfTheTurn() async throws {
        let contents = MemoryJournal.Contents()
        let intake = Self.intake(contents)
        let turn = FakeTurn()
        let answered = Mutex<[String]>([])
        for n in 0..<20 {
            intake.submit([Self.webhook("t\(n)")], writeOn: turn.schedule) { result in
                if case .success(let outcomes) = result { answered.withLock { $0.append(contentsOf: outcomes.map(Self.id)) } }
            }
        }
        #expect(contents.appends == 0, "nothing is written during the turn that admits")
        #expect(answered.withLock { $0 }.isEmpty, "nothing is answered before its write")
        turn.runAll()
        #expect(contents.appends == 1 && contents.lines.count == 1)
        #expect(answered.withLock { $0 } == (0..<20).map { "t\($0)" })
        #expect(intake.takeAccepted().map(\.id) == (0..<20).map { "t\($0)" })
        // What the loop (or another) admits after the write goes in the next turn's.
        intake.submit([Self.webhook("late")], writeOn: turn.schedule) { _ in answered.withLock { $0.append("late") } }
        turn.runAll()
        #expect(contents.appends == 2 && answered.withLock { $0.last } == "late")
    }

    @Test("concurrent acceptances share writes, and every one is answered")
    func concurrentAcceptances() async throws {
        let contents = MemoryJournal.Contents()
        let intake = Self.intake(contents)
        let answers = try await withThrowingTaskGroup(of: WebhookAcceptance.self) { group in
            for n in 0..<200 { group.addTask { try await intake.acceptWebhook(Self.webhook("c\(n)")) } }
            return try await group.reduce(into: [WebhookAcceptance]()) { $0.append($1) }
        }
        #expect(answers.count == 200)
        #expect(Set(intake.takeAccepted().map(\.id)) == Set((0..<200).map { "c\($0)" }))
        #expect(contents.appends <= 200)
        #expect(contents.sequences == Array(1...UInt64(contents.lines.count)))
    }

    @Test("a failed write answers its webhooks with an error; their record is written by the next write")
    func failedWrite() async throws {
        let contents = MemoryJournal.Contents()
        let intake = Self.intake(contents)
        contents.failNextAppend()
        await #expect(throws: EngineError.self) { try await intake.acceptWebhook(Self.webhook("f1")) }
        // The redelivery finds it remembered, and waits for the retried write.
        #expect(try await intake.acceptWebhook(Self.webhook("f1")) == .duplicate(eventID: "f1"))
        #expect(contents.lines.count == 1 && contents.lines[0].contains("f1"))
    }

    @Test("hooks are journaled with their body decoded as JSON, or kept as text")
    func hooks() async throws {
        let contents = MemoryJournal.Contents()
        let intake = Self.intake(contents)
        _ = try await intake.acceptHook(name: "ping", body: Array(#"{"n":1}"#.utf8), contentType: "application/json")
        _ = try await intake.acceptHook(name: "ping", body: Array("plain".utf8), contentType: "text/plain")
        let bodies = intake.takeAccepted().compactMap { event -> LuaValue? in
            if case .hook(_, let body, _) = event.kind { return body }
            return nil
        }
        #expect(bodies == [.object(["n": .integer(1)]), .string("plain")])
    }

    /// Yields every log message, so a test can wait for one instead of for time.
    struct SignallingLogHandler: LogHandler {
        let messages: AsyncStream<String>.Continuation
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { messages.yield(event.message.description) }
    }

    @Test("a webhook is acknowledged while a handler holds the engine")
    func acknowledgementDoesNotWaitForLua() async throws {
        let h = try EngineHarness(persistent: false)
        h.configuration.limits.instructionsPerRun = 4_000_000_000
        h.configuration.limits.timePerRun = .seconds(10 * testSlowdown)
        // The handler holds the engine's executor until the (virtual) clock moves, which the test
        // does only after the webhook was answered: an acknowledgement that needed the engine
        // would wait for the run's time limit, and the handler would never send.
        try h.rule("slow", """
            on("hook.slow", function(ev)
              local until_ = now() + 1
              log.info("slow handler started")
              while now() < until_ do end
              sidobe.send { phone = "+628123123123", message = "done" }
            end)
            """)
        let (messages, continuation) = AsyncStream.makeStream(of: String.self)
        let logger = Logger(label: "test") { _ in SignallingLogHandler(messages: continuation) }
        let sidobe = TestSidobe()
        let engine = Engine(configuration: h.configuration, sidobe: sidobe, clock: h.clock, logger: logger)
        try await engine.start()
        _ = try await engine.acceptHook(name: "slow", body: [], contentType: "text/plain")
        for await message in messages where message == "slow handler started" { break }
        _ = try await engine.acceptWebhook(Self.webhook("during"))
        let acknowledged = Date()
        h.clock.set(h.clock.now() + .seconds(2))
        await engine.settle()
        let sent = try #require(sidobe.sends.first, "the handler was aborted before it could send: the acknowledgement waited for it")
        #expect(acknowledged < sent.at)
        try await engine.shutdown()
    }
}

/// An event loop's turns, run by the test: what is scheduled runs when the test says.
private final class FakeTurn: Sendable {
    private let scheduled = Mutex<[@Sendable () -> Void]>([])

    var schedule: Intake.TurnScheduler { { [self] work in scheduled.withLock { $0.append(work) } } }

    /// Runs what is scheduled, and what that schedules, until nothing is.
    func runAll() {
        while true {
            let work = scheduled.withLock { queue in
                defer { queue = [] }
                return queue
            }
            if work.isEmpty { return }
            for item in work { item() }
        }
    }
}
