#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Sidobe
@testable import SidobeSimulator
import Testing

@Suite("Webhooks")
struct WebhookTests {
    @Test("an async send answers PENDING, then a signed SEND_MESSAGE_STATUS webhook of the seed's shape arrives")
    func asyncWebhook() async throws {
        try await withReceiver(WebhookReceiver(), configuration: { fastConfiguration(webhookURL: $0) }) { simulator, receiver in
            let answer = try await post(simulator, "send-message-image", #"{"phone": "+628123123123", "image_url": "https://x.test/a.png", "is_async": true}"#)
            #expect(answer.json?["data"]?["status"] == .string("PENDING"))
            let id = try #require(answer.json?["data"]?["id"]?.stringValue)

            let delivered = try #require(try await receiver.next().first)
            #expect(delivered.headers["content-type"] == "application/json")
            let json = try #require(delivered.json)
            #expect(Shape(json) == SeedShapes.webhook)
            #expect(json["event"] == .string("SEND_MESSAGE_STATUS"))
            let event = try #require(delivered.event)
            #expect(isLowercaseUUID(event.id))
            guard case .messageStatus(let update) = event.payload else {
                Issue.record("not a message status event")
                return
            }
            #expect(update.whatsappMessageID == id)
            #expect(update.status == .success)
            #expect(update.messageType == .image)
            // Timestamps as in the seed: created_at with microseconds, send_at without, both +07:00.
            #expect(event.createdAt.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+07:00/) != nil, "\(event.createdAt)")
            #expect(update.sendAt.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00/) != nil, "\(update.sendAt)")
            #expect(event.createdAtDate != nil && update.sendAtDate != nil)
            // The signature verifies with the key, and not with another.
            let signature = try #require(delivered.signature)
            #expect(WebhookSignature.verify(signature: signature, id: event.id, secretKey: seedKey))
            #expect(!WebhookSignature.verify(signature: signature, id: event.id, secretKey: SecretKey("other")))

            try await simulator.waitForIdle()
            let records = await simulator.webhookDeliveries()
            #expect(records.count == 1)
            #expect(records.first?.eventID == event.id)
            #expect(records.first?.messageID == id)
            #expect(records.first?.httpStatus == 200)
            #expect(records.first?.attempt == 1)
            let detail = try await get(simulator, "whatsapp-messages/\(id)")
            #expect(detail.json?["data"]?["status"] == .string("SUCCESS"))
        }
    }

    @Test("a sync send also announces its status by webhook (syncSendsSendWebhooks)")
    func syncWebhook() async throws {
        let faults = FaultInjection(failingPhones: ["+628111111111"])
        try await withReceiver(WebhookReceiver(), configuration: { fastConfiguration(webhookURL: $0, faults: faults) }) { simulator, receiver in
            let answer = try await post(simulator, "send-message", #"{"phone": "+628111111111", "message": "hi"}"#)
            #expect(answer.json?["data"]?["status"] == .string("FAILED"))
            let event = try #require(try await receiver.next().first?.event)
            guard case .messageStatus(let update) = event.payload else { throw TimeoutError(what: "status", timeout: .zero) }
            #expect(update.status == .failed)
            #expect(update.messageType == .text)
        }
    }

    @Test("with syncSendsSendWebhooks off, only async sends produce webhooks")
    func syncWebhookOff() async throws {
        try await withReceiver(WebhookReceiver(), configuration: {
            var configuration = fastConfiguration(webhookURL: $0)
            configuration.syncSendsSendWebhooks = false
            return configuration
        }) { simulator, receiver in
            _ = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "sync"}"#)
            let async = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "async", "is_async": true}"#)
            try await simulator.waitForIdle()
            #expect(receiver.requests.count == 1)
            #expect(receiver.requests.first?.json?["data"]?["whatsapp_message_id"] == async.json?["data"]?["id"])
        }
    }

    @Test("a PENDING webhook precedes the final one when asked for")
    func pendingWebhook() async throws {
        let delayOver = Gate()
        try await withReceiver(WebhookReceiver(), simulator: { url in
            var configuration = fastConfiguration(webhookURL: url)
            configuration.asyncSendsSendPendingWebhook = true
            configuration.asyncDeliveryDelay = .seconds(1)
            let core = SimulatedSidobeCore(
                configuration: configuration, logger: testLogger,
                clock: SimulatorClock(now: { Date() }, sleep: { _ in await delayOver.wait() })
            )
            return SidobeSimulator(core: core, logger: testLogger)
        }) { simulator, receiver in
            _ = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "hi", "is_async": true}"#)
            let pending = try #require(try await receiver.next().first)
            #expect(pending.json?["data"]?["status"] == .string("PENDING"))
            delayOver.open()
            let final = try #require(try await receiver.next().first)
            #expect(final.json?["data"]?["status"] == .string("SUCCESS"))
            #expect(pending.event?.id != final.event?.id)
            #expect(pending.json?["data"]?["whatsapp_message_id"] == final.json?["data"]?["whatsapp_message_id"])
        }
    }

    @Test("a receiver answering 500 then 200 gets the same event id twice; both attempts are recorded")
    func retryOnServerError() async throws {
        try await withReceiver(WebhookReceiver(statuses: [500, 200]), configuration: { fastConfiguration(webhookURL: $0) }) { simulator, receiver in
            let answer = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "hi", "is_async": true}"#)
            let id = try #require(answer.json?["data"]?["id"]?.stringValue)
            let received = try await receiver.next(2)
            let events = received.compactMap(\.event)
            #expect(events.count == 2)
            #expect(events[0].id == events[1].id)
            #expect(received[0].body == received[1].body)
            for item in received {
                #expect(WebhookSignature.verify(signature: item.signature ?? "", id: events[0].id, secretKey: seedKey))
            }
            try await simulator.waitForIdle()
            let records = await simulator.webhookDeliveries()
            #expect(records.map(\.attempt) == [1, 2])
            #expect(records.map(\.httpStatus) == [500, 200])
            #expect(records.allSatisfy { $0.eventID == events[0].id && $0.messageID == id })
            #expect(receiver.requests.count == 2)
        }
    }

    @Test("retries stop after webhookMaxAttempts")
    func givesUp() async throws {
        try await withReceiver(WebhookReceiver(statuses: [503, 502, 500, 200]), configuration: { fastConfiguration(webhookURL: $0, maxAttempts: 3) }) { simulator, receiver in
            _ = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "hi", "is_async": true}"#)
            try await simulator.waitForIdle()
            let records = await simulator.webhookDeliveries()
            #expect(records.map(\.httpStatus) == [503, 502, 500])
            #expect(receiver.requests.count == 3)
        }
    }

    @Test("a timed-out attempt is retried")
    func retryOnTimeout() async throws {
        let receiver = WebhookReceiver(replies: [.init(status: 200, delay: .seconds(30)), .init(status: 200)])
        try await withReceiver(receiver, configuration: {
            var configuration = fastConfiguration(webhookURL: $0)
            configuration.webhookTimeout = .seconds(1)
            return configuration
        }) { simulator, receiver in
            _ = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "hi", "is_async": true}"#)
            try await simulator.waitForIdle()
            let records = await simulator.webhookDeliveries()
            #expect(records.count == 2)
            #expect(records.first?.httpStatus == nil)
            #expect(records.first?.error?.contains("timed out") == true)
            #expect(records.last?.httpStatus == 200)
            #expect(records.first?.eventID == records.last?.eventID)
        }
    }

    @Test("a refused connection is recorded and retried")
    func connectionRefused() async throws {
        // A port bound but not listening refuses connections, and nobody else (a server of another
        // test running in parallel) can take it while the test runs.
        let closed = try RefusingPort()
        defer { closed.close() }
        var configuration = fastConfiguration(webhookURL: "http://127.0.0.1:\(closed.port)/webhook", maxAttempts: 2)
        // AsyncHTTPClient keeps retrying a refused connection until the attempt's deadline.
        configuration.webhookTimeout = .milliseconds(300)
        try await withSimulator(configuration) { simulator in
            _ = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "hi"}"#)
            try await simulator.waitForIdle()
            let records = await simulator.webhookDeliveries()
            #expect(records.count == 2)
            #expect(records.allSatisfy { $0.httpStatus == nil && $0.error != nil }, "\(records.map(\.error))")
        }
    }

    @Test("webhook_failure_rate drops attempts deterministically; drops are retried with the same event id")
    func droppedAttempts() async throws {
        let faults = FaultInjection(seed: 11, webhookFailureRate: 0.5)
        func run() async throws -> (records: [WebhookDeliveryRecord], received: Int) {
            try await withReceiver(WebhookReceiver(), configuration: { fastConfiguration(webhookURL: $0, faults: faults, maxAttempts: 8) }) { simulator, receiver in
                for _ in 0..<6 {
                    _ = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "hi"}"#)
                }
                try await simulator.waitForIdle()
                return (await simulator.webhookDeliveries(), receiver.requests.count)
            }
        }
        let first = try await run()
        let dropped = first.records.filter { $0.error?.contains("dropped") == true }
        #expect(!dropped.isEmpty)
        #expect(first.received == first.records.count - dropped.count)
        // Every event was eventually delivered (8 attempts at 50% loss), once.
        #expect(Set(first.records.filter(\.succeeded).map(\.eventID)).count == 6)
        #expect(first.records.filter(\.succeeded).count == 6)
        // The same seed drops the same attempts of the same sends.
        let second = try await run()
        func pattern(_ records: [WebhookDeliveryRecord]) -> [Int] {
            Dictionary(grouping: records, by: \.eventID).values.map(\.count).sorted()
        }
        #expect(pattern(first.records) == pattern(second.records))
        #expect(first.records.count == second.records.count)
    }

    @Test("webhook_duplicate_rate delivers a successful event twice with the same id")
    func duplicates() async throws {
        let faults = FaultInjection(webhookDuplicateRate: 1)
        try await withReceiver(WebhookReceiver(), configuration: { fastConfiguration(webhookURL: $0, faults: faults) }) { simulator, receiver in
            _ = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "hi"}"#)
            let received = try await receiver.next(2)
            #expect(received[0].event?.id == received[1].event?.id)
            #expect(received[0].body == received[1].body)
            try await simulator.waitForIdle()
            #expect(await simulator.webhookDeliveries().map(\.isDuplicate) == [false, true])
        }
    }

    @Test("webhook_delay slows each attempt")
    func webhookDelay() async throws {
        let faults = FaultInjection(webhookDelay: .milliseconds(200))
        try await withReceiver(WebhookReceiver(), configuration: { fastConfiguration(webhookURL: $0, faults: faults) }) { simulator, _ in
            let start = ContinuousClock.now
            _ = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "hi"}"#)
            try await simulator.waitForIdle()
            #expect(ContinuousClock.now - start >= .milliseconds(200))
            #expect(await simulator.webhookDeliveries().count == 1)
        }
    }

    @Test("setWebhookURL at runtime: events before it are only recorded, later ones are delivered")
    func setWebhookURL() async throws {
        try await withReceiver(WebhookReceiver(), configuration: { _ in fastConfiguration() }) { simulator, receiver in
            _ = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "before"}"#)
            let url: String = try #require(receiver.url)
            await simulator.setWebhookURL(url)
            let after = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "after"}"#)
            try await simulator.waitForIdle()
            #expect(await simulator.webhookEvents().count == 2)
            #expect(receiver.requests.count == 1)
            #expect(receiver.requests.first?.json?["data"]?["whatsapp_message_id"] == after.json?["data"]?["id"])
        }
    }

    @Test("waitForIdle times out with a clear error while work is pending")
    func waitForIdleTimeout() async throws {
        var configuration = fastConfiguration()
        configuration.asyncDeliveryDelay = .seconds(30)
        try await withSimulator(configuration) { simulator in
            _ = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "hi", "is_async": true}"#)
            await #expect(throws: SimulatorError.idleTimeout(pending: 1, timeout: .milliseconds(50))) {
                try await simulator.waitForIdle(timeout: .milliseconds(50))
            }
        }
    }
}

/// A TCP port on 127.0.0.1 that is bound but never listened on: every connection to it is refused.
struct RefusingPort {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            Glibc.close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Glibc.close(fd) }
}
