import Foundation
import Sidobe
@testable import SidobeSimulator
import Testing

@Suite("Core in process")
struct CoreTests {
    @Test("the core answers like the HTTP API and hands webhooks to an in-process receiver")
    func inProcess() async throws {
        let received = Locked<[(WebhookEvent, WebhookTransport.Request)]>([])
        let core = SimulatedSidobeCore(
            configuration: fastConfiguration(webhookURL: "memory:engine"),
            logger: testLogger,
            webhookTransport: .inProcess { event, request in
                received.withLock { $0.append((event, request)) }
                return 200
            }
        )
        let answer = await core.send(.document(to: "+628123123123", url: "https://x.test/a.pdf", name: "Invoice", isAsync: true))
        #expect(answer.status == 200)
        let sent = try #require(answer.envelope(SentMessage.self)?.data)
        #expect(sent.status == .pending)
        #expect(sent.messageType == .docs)
        try await core.waitForIdle()
        let detail = try #require(await core.messageDetail(id: sent.id).envelope(MessageDetail.self)?.data)
        #expect(detail.status == .success)
        #expect(detail.whatsappDevice == SimulatorConfiguration.defaultDevice)
        let deliveries = received.withLock { $0 }
        #expect(deliveries.count == 1)
        let (event, request) = try #require(deliveries.first)
        #expect(request.url == "memory:engine")
        #expect(WebhookSignature.verify(signature: request.headers[WebhookSignature.headerName] ?? "", id: event.id, secretKey: seedKey))
        #expect(core.webhookDeliveries().map(\.httpStatus) == [200])
    }

    @Test("the core's typed helpers and raw requests agree; paths may carry /wa/v1 and a query")
    func rawRequests() async throws {
        let core = SimulatedSidobeCore(configuration: fastConfiguration(), logger: testLogger)
        let request = SimulatedRequest(
            method: "post", path: "/wa/v1/utilities/check-number/?x=1",
            headers: ["x-secret-KEY": "123123"], body: Array(#"{"phone":"+628123123123"}"#.utf8)
        )
        let answer = await core.handle(request)
        #expect(answer.status == 200)
        #expect(answer.header("content-type") == "application/json")
        #expect(answer.envelope(NumberCheck.self)?.data?.isRegistered == true)
        #expect(await core.checkNumber("+628123123123").body == answer.body)
    }

    @Test("routes are recognised from relative paths")
    func routes() {
        #expect(Route(path: "send-message") == .send(.text))
        #expect(Route(path: "/wa/v1/send-message-image") == .send(.image))
        #expect(Route(path: "send-message-doc/") == .send(.docs))
        #expect(Route(path: "whatsapp-messages/abc%2Dd") == .message(id: "abc-d"))
        #expect(Route(path: "whatsapp-messages/") == .unknown("/whatsapp-messages"))
        #expect(Route(path: "whatsapp-messages/a/b") == .unknown("/whatsapp-messages/a/b"))
        #expect(Route(path: "/wa/v1") == .unknown("/"))
    }

    @Test("history is bounded by historyLimit")
    func historyLimit() async throws {
        var configuration = fastConfiguration()
        configuration.historyLimit = 3
        let core = SimulatedSidobeCore(configuration: configuration, logger: testLogger)
        var ids: [String] = []
        for _ in 0..<5 {
            ids.append(try #require(await core.send(.text(to: "+628123123123", "hi")).envelope(SentMessage.self)?.data?.id))
        }
        #expect(core.messages().map(\.id) == Array(ids.suffix(3)))
        #expect(core.webhookEvents().count == 3)
        #expect(await core.messageDetail(id: ids[0]).status == 404)
        #expect(await core.messageDetail(id: ids[4]).status == 200)
    }

    @Test("reset forgets messages and cancels pending deliveries")
    func reset() async throws {
        var configuration = fastConfiguration()
        configuration.asyncDeliveryDelay = .seconds(30)
        let core = SimulatedSidobeCore(configuration: configuration, logger: testLogger)
        _ = await core.send(.text(to: "+628123123123", "hi", isAsync: true))
        #expect(core.pendingWorkCount == 1)
        core.reset()
        try await core.waitForIdle(timeout: .seconds(5))
        #expect(core.messages().isEmpty)
        #expect(core.webhookEvents().isEmpty)
    }

    @Test("a virtual clock drives timestamps and the async delay")
    func virtualClock() async throws {
        let start = Date(timeIntervalSince1970: 1_754_930_503.889693) // 2025-08-11T23:41:43.889693+07:00
        let sleeps = Locked<[Duration]>([])
        let clock = SimulatorClock(now: { start }, sleep: { duration in sleeps.withLock { $0.append(duration) } })
        var configuration = fastConfiguration()
        configuration.asyncDeliveryDelay = .seconds(90)
        let core = SimulatedSidobeCore(configuration: configuration, logger: testLogger, clock: clock)
        _ = await core.send(.text(to: "+628123123123", "hi", isAsync: true))
        try await core.waitForIdle()
        #expect(sleeps.withLock { $0 } == [.seconds(90)])
        let event = try #require(core.webhookEvents().first)
        #expect(event.createdAt == "2025-08-11T23:41:43.889693+07:00")
        guard case .messageStatus(let update) = event.payload else { throw TimeoutError(what: "status", timeout: .zero) }
        #expect(update.sendAt == "2025-08-11T23:41:43+07:00")
    }

    @Test("fault dice are stable functions of the seed and counters")
    func dice() {
        #expect(FaultDice.roll(seed: 1, .sendFailure, 5) == FaultDice.roll(seed: 1, .sendFailure, 5))
        #expect(FaultDice.roll(seed: 1, .sendFailure, 5) != FaultDice.roll(seed: 2, .sendFailure, 5))
        #expect(FaultDice.roll(seed: 1, .sendFailure, 5) != FaultDice.roll(seed: 1, .serverError, 5))
        #expect(FaultDice.roll(seed: 1, .webhookDrop, 1, 1, 1) != FaultDice.roll(seed: 1, .webhookDrop, 1, 1, 2))
        let rolls = (0..<10_000).map { FaultDice.roll(seed: 99, .sendFailure, UInt64($0)) }
        #expect(rolls.allSatisfy { (0..<1).contains($0) })
        let mean = rolls.reduce(0, +) / Double(rolls.count)
        #expect(abs(mean - 0.5) < 0.02)
        var generator = SplitMix64(seed: 0)
        // The reference SplitMix64 sequence for seed 0.
        #expect(generator.next() == 0xE220_A839_7B1D_CDAF)
        #expect(generator.next() == 0x6E78_9E6A_A1B9_65F4)
    }
}

@Suite("Inspection endpoints")
struct InspectionTests {
    @Test("GET /_simulator/messages, /_simulator/messages/:id and /_simulator/webhooks")
    func inspect() async throws {
        try await withReceiver(WebhookReceiver(statuses: [500]), configuration: { fastConfiguration(webhookURL: $0) }) { simulator, _ in
            let sent = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "hello", "is_async": true}"#)
            let id = try #require(sent.json?["data"]?["id"]?.stringValue)
            try await simulator.waitForIdle()

            let list = try await http("GET", "\(simulator.inspectionURL)/messages")
            #expect(list.status == 200)
            let messages = try SimulatorJSON.decoder().decode([SimulatedMessage].self, from: Data(list.body))
            #expect(messages.map(\.id) == [id])
            #expect(messages.first?.message == "hello")
            #expect(messages.first?.statusHistory.map(\.status) == [.pending, .success])
            #expect(list.json?.arrayValue?.first?["status"] == .string("SUCCESS"))

            let one = try await http("GET", "\(simulator.inspectionURL)/messages/\(id)")
            #expect(one.json?["id"] == .string(id))
            #expect(try await http("GET", "\(simulator.inspectionURL)/messages/nope").status == 404)

            let hooks = try await http("GET", "\(simulator.inspectionURL)/webhooks")
            let inspection = try SimulatorJSON.decoder().decode(WebhookInspection.self, from: Data(hooks.body))
            #expect(inspection.events.count == 1)
            #expect(inspection.deliveries.map(\.httpStatus) == [500, 200])
            #expect(hooks.json?["deliveries"]?.arrayValue?.first?["succeeded"] == .bool(false))

            let summary = try await http("GET", simulator.inspectionURL)
            #expect(summary.json?["base_url"] == .string(simulator.baseURL))
            #expect(summary.json?["messages"] == .number(1))
        }
    }

    @Test("PUT /_simulator/faults changes the knobs; bad knobs answer 400 naming the field")
    func putFaults() async throws {
        try await withSimulator(fastConfiguration()) { simulator in
            let put = try await http("PUT", "\(simulator.inspectionURL)/faults", body: #"{"failing_phones": ["+628111111111"], "seed": 3}"#)
            #expect(put.status == 200)
            #expect(simulator.core.faults.failingPhones == ["+628111111111"])
            let sent = try await post(simulator, "send-message", #"{"phone": "+628111111111", "message": "hi"}"#)
            #expect(sent.json?["data"]?["status"] == .string("FAILED"))
            let get = try await http("GET", "\(simulator.inspectionURL)/faults")
            #expect(get.json?["failing_phones"] == .array([.string("+628111111111")]))

            let bad = try await http("PUT", "\(simulator.inspectionURL)/faults", body: #"{"server_error_rate": 2}"#)
            #expect(bad.status == 400)
            #expect(bad.json?["message"]?.stringValue?.hasPrefix("server_error_rate") == true)
            let wrongType = try await http("PUT", "\(simulator.inspectionURL)/faults", body: #"{"broken_device": "yes"}"#)
            #expect(wrongType.status == 400)
            #expect(wrongType.json?["message"]?.stringValue?.contains("broken_device") == true)
            #expect(simulator.core.faults.failingPhones == ["+628111111111"])
        }
    }

    @Test("PUT /_simulator/webhook-url, POST /_simulator/reset and POST /_simulator/wait-for-idle")
    func control() async throws {
        try await withSimulator(fastConfiguration()) { simulator in
            let set = try await http("PUT", "\(simulator.inspectionURL)/webhook-url", body: #"{"url": "http://127.0.0.1:9/hook"}"#)
            #expect(set.status == 200)
            #expect(simulator.core.configuration.webhookURL == "http://127.0.0.1:9/hook")
            #expect(try await http("PUT", "\(simulator.inspectionURL)/webhook-url", body: #"{"url": "ftp://x"}"#).status == 400)
            #expect(try await http("PUT", "\(simulator.inspectionURL)/webhook-url", body: #"{"url": null}"#).status == 200)
            #expect(simulator.core.configuration.webhookURL == nil)

            _ = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "hi"}"#)
            #expect(try await http("POST", "\(simulator.inspectionURL)/wait-for-idle?timeout_ms=2000").json == .object(["idle": .bool(true)]))
            #expect(try await http("POST", "\(simulator.inspectionURL)/reset").status == 200)
            #expect(await simulator.messages().isEmpty)
            #expect(try await http("DELETE", "\(simulator.inspectionURL)/messages").status == 405)
        }
    }
}

@Suite("Lifecycle and the client")
struct LifecycleTests {
    @Test("start returns the port, baseURL uses it, stop frees it, a second start fails while running")
    func lifecycle() async throws {
        let simulator = SidobeSimulator(configuration: fastConfiguration(), logger: testLogger)
        let port = try await simulator.start()
        #expect(port > 0)
        #expect(simulator.baseURL == "http://127.0.0.1:\(port)/wa/v1")
        await #expect(throws: SimulatorError.alreadyRunning(port: port)) { try await simulator.start() }
        await simulator.stop()
        #expect(simulator.port == nil)
        // The port is free again: a new simulator can take it.
        let other = SidobeSimulator(configuration: fastConfiguration(), logger: testLogger)
        #expect(try await other.start(port: port) == port)
        await #expect(throws: SimulatorError.self) { try await simulator.start(port: port) }
        await other.stop()
    }

    @Test("run serves until cancelled")
    func run() async throws {
        let simulator = SidobeSimulator(configuration: fastConfiguration(), logger: testLogger)
        let (ports, sink) = AsyncStream<Int>.makeStream()
        let task = Task {
            try await simulator.run { port in
                sink.yield(port)
            }
        }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        let answer = try await http("POST", "http://127.0.0.1:\(port)/wa/v1/utilities/check-number",
                                    headers: ["X-Secret-Key": "123123"], body: #"{"phone": "+628123123123"}"#)
        #expect(answer.status == 200)
        task.cancel()
        try await task.value
        #expect(simulator.port == nil)
    }

    @Test("SidobeClient against the simulator: send, detail, check-number and typed errors")
    func client() async throws {
        let faults = FaultInjection(unregisteredPhones: ["+628999999999"])
        try await withSimulator(fastConfiguration(faults: faults)) { simulator in
            let client = SidobeClient(configuration: .init(baseURL: simulator.baseURL, secretKey: seedKey, retryPolicy: .none))
            let sent = try await client.sendImage(phone: "+628123123123", imageURL: "https://x.test/a.png", caption: "c", isAsync: true)
            #expect(sent.status == .pending)
            try await simulator.waitForIdle()
            let detail = try await client.message(id: sent.id)
            #expect(detail.status == .success)
            #expect(detail.messageType == .image)
            #expect(try await client.checkNumber("+628999999999") == false)
            await #expect(throws: SidobeError.self) { try await client.message(id: "missing") }
            do throws(SidobeError) {
                _ = try await client.message(id: "missing")
            } catch {
                #expect(error.code == "NOT_FOUND")
            }
            let wrongKey = SidobeClient(configuration: .init(baseURL: simulator.baseURL, secretKey: SecretKey("x"), retryPolicy: .none))
            do throws(SidobeError) {
                _ = try await wrongKey.checkNumber("+628123123123")
                Issue.record("expected INVALID_API_KEY")
            } catch {
                #expect(error.code == "INVALID_API_KEY")
            }
            await simulator.setFaults(FaultInjection(rateLimit: RateLimit(requestsPerSecond: 0.001, burst: 1), retryAfterSeconds: 4))
            _ = try await client.checkNumber("+628123123123")
            do throws(SidobeError) {
                _ = try await client.checkNumber("+628123123123")
                Issue.record("expected RATE_LIMITED")
            } catch {
                guard case .rateLimited(_, let retryAfter) = error else {
                    Issue.record("expected rateLimited, got \(error)")
                    return
                }
                #expect(retryAfter == .seconds(4))
            }
        }
    }
}
