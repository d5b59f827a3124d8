import Foundation
import Sidobe
@testable import SidobeSimulator
import Testing

@Suite("Faults")
struct FaultTests {
    @Test("the token bucket answers 429 with exactly {\"message\":\"rate limit exceeded\"} and Retry-After")
    func rateLimit() async throws {
        let faults = FaultInjection(rateLimit: RateLimit(requestsPerSecond: 0.001, burst: 2), retryAfterSeconds: 7)
        try await withSimulator(fastConfiguration(faults: faults)) { simulator in
            let body = #"{"phone": "+628123123123", "message": "hi"}"#
            #expect(try await post(simulator, "send-message", body).status == 200)
            #expect(try await post(simulator, "send-message", body).status == 200)
            let limited = try await post(simulator, "send-message", body)
            #expect(limited.status == 429)
            #expect(limited.text == #"{"message":"rate limit exceeded"}"#)
            #expect(limited.json == .object(["message": .string("rate limit exceeded")]))
            #expect(limited.header("retry-after") == "7")
            #expect(await simulator.messages().count == 2)
            // Reads are limited too: the bucket covers every /wa/v1 request.
            #expect(try await get(simulator, "whatsapp-messages/x").status == 429)
            // New knobs refill the bucket; without retry_after_seconds there is no Retry-After.
            await simulator.setFaults(FaultInjection(rateLimit: RateLimit(requestsPerSecond: 0.001, burst: 1)))
            #expect(try await post(simulator, "send-message", body).status == 200)
            let again = try await post(simulator, "send-message", body)
            #expect(again.status == 429)
            #expect(again.header("retry-after") == nil)
        }
    }

    @Test("the bucket refills at requests_per_second")
    func rateLimitRefill() async throws {
        // A clock the test moves by hand.
        let now = Locked(Date(timeIntervalSince1970: 1_700_000_000))
        let clock = SimulatorClock(now: { now.withLock { $0 } }, sleep: { _ in })
        let core = SimulatedSidobeCore(
            configuration: fastConfiguration(faults: FaultInjection(rateLimit: RateLimit(requestsPerSecond: 2, burst: 1))),
            logger: testLogger, clock: clock
        )
        #expect(await core.checkNumber("+628123123123").status == 200)
        #expect(await core.checkNumber("+628123123123").status == 429)
        now.withLock { $0 += 0.25 }
        #expect(await core.checkNumber("+628123123123").status == 429)
        now.withLock { $0 += 0.25 }
        #expect(await core.checkNumber("+628123123123").status == 200)
    }

    @Test("server_error_rate answers 503 with a JSON body and stores nothing")
    func serverErrors() async throws {
        try await withSimulator(fastConfiguration(faults: FaultInjection(retryAfterSeconds: 3, serverErrorRate: 1))) { simulator in
            let answer = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "hi"}"#)
            #expect(answer.status == 503)
            #expect(answer.json == .object([
                "is_success": .bool(false),
                "message": .string("We're temporarily offline for maintenance. Please try again later."),
            ]))
            #expect(answer.header("retry-after") == "3")
            #expect(await simulator.messages().isEmpty)
            // Even a request with a wrong key: maintenance comes first.
            #expect(try await post(simulator, "send-message", "{}", key: "wrong").status == 503)
        }
    }

    @Test("broken_device answers 400 INVALID_DEVICE_WHATSAPP to every send")
    func brokenDevice() async throws {
        try await withSimulator(fastConfiguration(faults: FaultInjection(brokenDevice: true))) { simulator in
            for (path, body) in [
                ("send-message", #"{"phone": "+628123123123", "message": "hi", "is_async": true}"#),
                ("send-message-image", #"{"phone": "+628123123123", "image_url": "https://x.test/a.png"}"#),
                ("send-message-doc", #"{"phone": "+628123123123", "document_url": "https://x.test/a.pdf", "document_name": "d"}"#),
            ] {
                let answer = try await post(simulator, path, body)
                #expect(answer.status == 400)
                #expect(Shape(try #require(answer.json)) == SeedShapes.error)
                #expect(answer.json?["error_code"] == .string("INVALID_DEVICE_WHATSAPP"))
            }
            // Validation still comes first.
            let invalid = try await post(simulator, "send-message", #"{"phone": "+628123123123"}"#)
            #expect(invalid.json?["error_code"] == .string("API_VALIDATION_ERROR"))
            #expect(await simulator.messages().isEmpty)
            // Check-number does not need the device.
            #expect(try await post(simulator, "utilities/check-number", #"{"phone": "+628123123123"}"#).status == 200)
        }
    }

    @Test("failing and unregistered phones end FAILED, sync and async")
    func failingPhones() async throws {
        let faults = FaultInjection(failingPhones: ["+628111111111"], unregisteredPhones: ["+628222222222"])
        try await withSimulator(fastConfiguration(faults: faults)) { simulator in
            for phone in ["+628111111111", "+628222222222"] {
                let sync = try await post(simulator, "send-message", #"{"phone": "\#(phone)", "message": "hi"}"#)
                #expect(sync.json?["data"]?["status"] == .string("FAILED"))
                let async = try await post(simulator, "send-message", #"{"phone": "\#(phone)", "message": "hi", "is_async": true}"#)
                #expect(async.json?["data"]?["status"] == .string("PENDING"))
            }
            let fine = try await post(simulator, "send-message", #"{"phone": "+628333333333", "message": "hi"}"#)
            #expect(fine.json?["data"]?["status"] == .string("SUCCESS"))
            try await simulator.waitForIdle()
            let statuses = await simulator.messages().map(\.status)
            #expect(statuses == [.failed, .failed, .failed, .failed, .success])
            let reasons = await simulator.messages().compactMap(\.failureReason)
            #expect(reasons.count == 4)
        }
    }

    /// The statuses of `count` sync sends to one simulator with these faults.
    static func outcomes(_ faults: FaultInjection, count: Int = 32) async -> [MessageStatus] {
        let core = SimulatedSidobeCore(configuration: fastConfiguration(faults: faults), logger: testLogger)
        var statuses: [MessageStatus] = []
        for index in 0..<count {
            let answer = await core.send(.text(to: "+62812312\(String(format: "%04d", index))", "hi"))
            statuses.append(answer.envelope(SentMessage.self)?.data?.status ?? .unknown("none"))
        }
        return statuses
    }

    @Test("failure_rate is deterministic given the seed")
    func deterministicFailures() async throws {
        let first = await Self.outcomes(FaultInjection(seed: 42, failureRate: 0.5))
        let second = await Self.outcomes(FaultInjection(seed: 42, failureRate: 0.5))
        let otherSeed = await Self.outcomes(FaultInjection(seed: 7, failureRate: 0.5))
        #expect(first == second)
        #expect(first != otherSeed)
        #expect(first.contains(.failed) && first.contains(.success))
        #expect(await Self.outcomes(FaultInjection(seed: 42, failureRate: 0)).allSatisfy { $0 == .success })
        #expect(await Self.outcomes(FaultInjection(seed: 42, failureRate: 1)).allSatisfy { $0 == .failed })
        // About half fail over many sends.
        let many = await Self.outcomes(FaultInjection(seed: 1, failureRate: 0.3), count: 1000)
        let failed = many.filter { $0 == .failed }.count
        #expect((200...400).contains(failed))
    }

    @Test("setFaults restarts the random decisions from the seed")
    func setFaultsRestarts() async throws {
        let faults = FaultInjection(seed: 9, failureRate: 0.5)
        let core = SimulatedSidobeCore(configuration: fastConfiguration(faults: faults), logger: testLogger)
        var first: [MessageStatus] = []
        for _ in 0..<16 { first.append(await core.send(.text(to: "+628123123123", "hi")).envelope(SentMessage.self)?.data?.status ?? .pending) }
        core.setFaults(faults)
        var second: [MessageStatus] = []
        for _ in 0..<16 { second.append(await core.send(.text(to: "+628123123123", "hi")).envelope(SentMessage.self)?.data?.status ?? .pending) }
        #expect(first == second)
    }

    @Test("server_error_rate is deterministic given the seed")
    func deterministicServerErrors() async throws {
        func statuses(seed: UInt64) async -> [Int] {
            let core = SimulatedSidobeCore(configuration: fastConfiguration(faults: FaultInjection(seed: seed, serverErrorRate: 0.5)), logger: testLogger)
            var result: [Int] = []
            for _ in 0..<32 { result.append(await core.checkNumber("+628123123123").status) }
            return result
        }
        let a = await statuses(seed: 3)
        #expect(a == (await statuses(seed: 3)))
        #expect(Set(a) == [200, 503])
    }

    @Test("latency is added before the answer")
    func latency() async throws {
        try await withSimulator(fastConfiguration(faults: FaultInjection(latency: .milliseconds(150)))) { simulator in
            let start = ContinuousClock.now
            let answer = try await post(simulator, "utilities/check-number", #"{"phone": "+628123123123"}"#)
            #expect(answer.status == 200)
            #expect(ContinuousClock.now - start >= .milliseconds(150))
        }
    }

    @Test("fault knobs decode from the documented JSON, and bad values are named")
    func faultsJSON() throws {
        let json = #"""
        {"seed": 5, "failure_rate": 0.25, "failing_phones": ["+628111111111"], "rate_limit": {"requests_per_second": 5, "burst": 10},
         "retry_after_seconds": 2, "latency_ms": 40, "webhook_delay_ms": 15, "broken_device": true}
        """#
        let faults = try JSONDecoder().decode(FaultInjection.self, from: Data(json.utf8))
        #expect(faults == FaultInjection(
            seed: 5, failureRate: 0.25, failingPhones: ["+628111111111"], brokenDevice: true,
            rateLimit: RateLimit(requestsPerSecond: 5, burst: 10), retryAfterSeconds: 2,
            latency: .milliseconds(40), webhookDelay: .milliseconds(15)
        ))
        let roundTrip = try JSONDecoder().decode(FaultInjection.self, from: JSONEncoder().encode(faults))
        #expect(roundTrip == faults)
        #expect(try JSONDecoder().decode(FaultInjection.self, from: Data("{}".utf8)) == .none)
        #expect(FaultInjection(failureRate: 1.5).problem == "failure_rate must be between 0 and 1, got 1.5")
        #expect(FaultInjection(rateLimit: RateLimit(requestsPerSecond: 1, burst: 0)).problem == "rate_limit.burst must be at least 1")
        #expect(FaultInjection(failingPhones: ["0812"]).problem?.hasPrefix("phone 0812 ") == true)
        #expect(FaultInjection.none.problem == nil)
    }
}
