import Foundation
import Sidobe
import SidobeSimulator
import Synchronization
import Testing

/// The client and the simulator over loopback: every endpoint, every error case, the retry behaviour.
@Suite("Client against the simulator")
struct ClientAgainstSimulatorTests {
    static let key = SecretKey("sk_test_client")

    /// Records the waits the client asks for instead of sleeping, and runs `onSleep` in their place
    /// (to stand for time passing, e.g. by lifting a rate limit).
    final class SleepRecorder: Sendable {
        let waits = Mutex<[Duration]>([])
        let onSleep: @Sendable () async -> Void
        init(onSleep: @escaping @Sendable () async -> Void = {}) { self.onSleep = onSleep }
        var recorded: [Duration] { waits.withLock { $0 } }
        func sleep(_ duration: Duration) async {
            waits.withLock { $0.append(duration) }
            await onSleep()
        }
    }

    func withSimulator(
        faults: FaultInjection = FaultInjection(),
        _ body: (SidobeSimulator) async throws -> Void
    ) async throws {
        var configuration = SimulatorConfiguration(secretKey: Self.key)
        configuration.asyncDeliveryDelay = .zero
        configuration.faults = faults
        let simulator = SidobeSimulator(configuration: configuration)
        _ = try await simulator.start(host: "127.0.0.1", port: 0)
        do {
            try await body(simulator)
        } catch {
            await simulator.stop()
            throw error
        }
        await simulator.stop()
    }

    func client(
        _ simulator: SidobeSimulator, key: SecretKey = key, sleeper: SleepRecorder = SleepRecorder(),
        policy: RetryPolicy = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(100), maxDelay: .seconds(2)),
        timeout: Duration = .seconds(10)
    ) -> SidobeClient {
        SidobeClient(configuration: .init(
            baseURL: simulator.baseURL, secretKey: key, retryPolicy: policy, requestTimeout: timeout,
            sleep: { await sleeper.sleep($0) }, random: { 0.5 }
        ))
    }

    // MARK: Endpoints

    @Test func syncTextImageAndDocumentSendsSucceed() async throws {
        try await withSimulator { simulator in
            let client = client(simulator)
            let text = try await client.sendMessage(phone: "+628123123123", message: "hello")
            #expect(text.status == .success)
            #expect(text.messageType == .text)
            #expect(!text.isAsync)
            let image = try await client.sendImage(phone: "+628123123123", imageURL: "https://example.com/a.png", caption: "look")
            #expect(image.messageType == .image)
            #expect(image.status == .success)
            let doc = try await client.sendDocument(phone: "+628123123123", documentURL: "https://example.com/f.pdf", documentName: "Invoice")
            #expect(doc.messageType == .docs)
            let recorded = await simulator.messages()
            #expect(recorded.map(\.id) == [text.id, image.id, doc.id])
            #expect(Set([text.id, image.id, doc.id]).count == 3)
        }
    }

    @Test func asyncSendIsPendingThenFinalInMessageDetail() async throws {
        try await withSimulator { simulator in
            let client = client(simulator)
            let sent = try await client.send(.text(to: "+628123123123", "later", isAsync: true))
            #expect(sent.status == .pending)
            #expect(sent.isAsync)
            try await simulator.waitForIdle()
            let detail = try await client.message(id: sent.id)
            #expect(detail.id == sent.id)
            #expect(detail.status == .success)
            #expect(detail.isAsync)
            #expect(detail.messageType == .text)
            let device = try #require(detail.whatsappDevice)
            #expect(device.phone.hasPrefix("+"))
            #expect(!device.name.isEmpty)
        }
    }

    @Test func failingPhoneEndsFailed() async throws {
        var faults = FaultInjection()
        faults.failingPhones = ["+628111111111"]
        try await withSimulator(faults: faults) { simulator in
            let sent = try await client(simulator).sendMessage(phone: "+628111111111", message: "x")
            #expect(sent.status == .failed)
        }
    }

    @Test func checkNumber() async throws {
        var faults = FaultInjection()
        faults.unregisteredPhones = ["+628999999999"]
        try await withSimulator(faults: faults) { simulator in
            let client = client(simulator)
            let registered = try await client.checkNumber("+628123123123")
            let unregistered = try await client.checkNumber("+628999999999")
            #expect(registered)
            #expect(!unregistered)
        }
    }

    // MARK: Errors

    @Test func unknownMessageIsNotFound() async throws {
        try await withSimulator { simulator in
            do throws(SidobeError) {
                _ = try await client(simulator).message(id: "00000000-0000-0000-0000-000000000000")
                Issue.record("expected not found")
            } catch {
                guard case .notFound(let failure) = error else { Issue.record("got \(error)"); return }
                #expect(failure.httpStatus == 404)
                #expect(!failure.message.isEmpty)
            }
        }
    }

    @Test func wrongKeyIsInvalidAPIKeyAndNotRetried() async throws {
        try await withSimulator { simulator in
            let sleeper = SleepRecorder()
            do throws(SidobeError) {
                _ = try await client(simulator, key: SecretKey("wrong"), sleeper: sleeper).sendMessage(phone: "+628123123123", message: "x")
                Issue.record("expected invalid key")
            } catch {
                guard case .invalidAPIKey(let failure) = error else { Issue.record("got \(error)"); return }
                #expect(failure.httpStatus == 401)
                #expect(failure.errorCode == "INVALID_API_KEY")
                #expect(!"\(error)".contains("sk_test_client"))
            }
            #expect(sleeper.recorded.isEmpty)
            #expect(await simulator.messages().isEmpty)
        }
    }

    @Test func brokenDeviceIsInvalidDeviceAndNotRetried() async throws {
        var faults = FaultInjection()
        faults.brokenDevice = true
        try await withSimulator(faults: faults) { simulator in
            let sleeper = SleepRecorder()
            do throws(SidobeError) {
                _ = try await client(simulator, sleeper: sleeper).sendMessage(phone: "+628123123123", message: "x")
                Issue.record("expected invalid device")
            } catch {
                guard case .invalidDevice(let failure) = error else { Issue.record("got \(error)"); return }
                #expect(failure.httpStatus == 400)
                #expect(error.code == "INVALID_DEVICE_WHATSAPP")
            }
            #expect(sleeper.recorded.isEmpty)
        }
    }

    @Test func localValidationMakesNoRequest() async throws {
        try await withSimulator { simulator in
            do throws(SidobeError) {
                _ = try await client(simulator).sendImage(phone: "+628123123123", imageURL: "https://example.com/a.gif")
                Issue.record("expected a validation error")
            } catch {
                #expect(error == .invalidField(FieldError(field: "image_url", reason: "must end in one of: jpeg, jpg, png (got .gif)")))
            }
            #expect(await simulator.messages().isEmpty)
        }
    }

    // MARK: Retries

    @Test func rateLimitedThenSucceedsHonouringRetryAfter() async throws {
        var faults = FaultInjection()
        faults.rateLimit = RateLimit(requestsPerSecond: 0.001, burst: 1)
        faults.retryAfterSeconds = 2
        try await withSimulator(faults: faults) { simulator in
            // Standing in for the two seconds passing: the bucket is lifted while the client "sleeps".
            let sleeper = SleepRecorder { await simulator.setFaults(FaultInjection()) }
            let client = client(simulator, sleeper: sleeper)
            _ = try await client.sendMessage(phone: "+628123123123", message: "first")    // takes the only token
            let second = try await client.sendMessage(phone: "+628123123123", message: "second")
            #expect(second.status == .success)
            #expect(sleeper.recorded == [.seconds(2)])
            #expect(await simulator.messages().count == 2)
        }
    }

    @Test func rateLimitWithoutRetryAfterBacksOffWithJitter() async throws {
        var faults = FaultInjection()
        faults.rateLimit = RateLimit(requestsPerSecond: 0.001, burst: 1)
        try await withSimulator(faults: faults) { simulator in
            let sleeper = SleepRecorder()
            let client = client(simulator, sleeper: sleeper)
            _ = try await client.sendMessage(phone: "+628123123123", message: "first")
            do throws(SidobeError) {
                _ = try await client.sendMessage(phone: "+628123123123", message: "second")
                Issue.record("expected rate limited")
            } catch {
                guard case .rateLimited(let failure, let retryAfter) = error else { Issue.record("got \(error)"); return }
                #expect(failure.httpStatus == 429)
                #expect(failure.message == "rate limit exceeded")
                #expect(retryAfter == nil)
            }
            // random() is 0.5: half of 100, 200, 400 ms.
            #expect(sleeper.recorded == [.milliseconds(50), .milliseconds(100), .milliseconds(200)])
        }
    }

    @Test func serviceUnavailableStormExhaustsRetries() async throws {
        var faults = FaultInjection()
        faults.serverErrorRate = 1
        try await withSimulator(faults: faults) { simulator in
            let sleeper = SleepRecorder()
            do throws(SidobeError) {
                _ = try await client(simulator, sleeper: sleeper).sendMessage(phone: "+628123123123", message: "x")
                Issue.record("expected unavailable")
            } catch {
                guard case .serverError(let failure) = error else { Issue.record("got \(error)"); return }
                #expect(failure.httpStatus == 503)
                #expect(error.code == "UNAVAILABLE")
            }
            #expect(sleeper.recorded.count == 3)
            #expect(await simulator.messages().isEmpty)
        }
    }

    @Test func sendTimingOutAfterWritingIsNotRetried() async throws {
        var faults = FaultInjection()
        faults.latency = .seconds(2)
        try await withSimulator(faults: faults) { simulator in
            let sleeper = SleepRecorder()
            let client = client(simulator, sleeper: sleeper, timeout: .milliseconds(300))
            do throws(SidobeError) {
                _ = try await client.sendMessage(phone: "+628123123123", message: "x")
                Issue.record("expected a timeout")
            } catch {
                #expect(error == .timeout(requestWritten: true))
                #expect(error.mayHaveBeenDelivered)
            }
            #expect(sleeper.recorded.isEmpty)
            // A read is safe to repeat, so the same timeout is retried.
            do throws(SidobeError) {
                _ = try await client.checkNumber("+628123123123")
                Issue.record("expected a timeout")
            } catch {
                #expect(error == .timeout(requestWritten: true))
            }
            #expect(sleeper.recorded.count == 3)
        }
    }

    @Test func connectionRefusedIsRetriedThenReported() async throws {
        // A port that was just free: bind, learn it, close.
        var configuration = SimulatorConfiguration(secretKey: Self.key)
        configuration.asyncDeliveryDelay = .zero
        let simulator = SidobeSimulator(configuration: configuration)
        _ = try await simulator.start(host: "127.0.0.1", port: 0)
        let baseURL = simulator.baseURL
        await simulator.stop()
        let sleeper = SleepRecorder()
        let client = SidobeClient(configuration: .init(
            baseURL: baseURL, secretKey: Self.key, retryPolicy: RetryPolicy(maxAttempts: 3), requestTimeout: .seconds(5),
            sleep: { await sleeper.sleep($0) }, random: { 0 }
        ))
        do throws(SidobeError) {
            _ = try await client.sendMessage(phone: "+628123123123", message: "x")
            Issue.record("expected a transport error")
        } catch {
            guard case .transport(_, let written) = error else { Issue.record("got \(error)"); return }
            #expect(!written)
            #expect(error.code == "UNAVAILABLE")
        }
        #expect(sleeper.recorded.count == 2)
    }

    @Test func aConnectionResetAfterTheRequestIsNotRetriedForSendsButIsForReads() async throws {
        try await withSimulator(faults: FaultInjection(seed: 1, connectionResetRate: 1)) { simulator in
            let sleeper = SleepRecorder()
            let client = client(simulator, sleeper: sleeper)
            do {
                _ = try await client.send(.text(to: "+628123123123", "hi"))
                Issue.record("a reset send succeeded")
            } catch {
                #expect((error as? SidobeError)?.mayHaveBeenDelivered == true, "\(error)")
            }
            // Not retried: the request went out, and a send is not repeated blindly.
            #expect(sleeper.recorded.isEmpty)
            #expect(await simulator.messages().isEmpty)
            #expect(await simulator.answerCounts()[0] == 1)
            // A read is safe to repeat: retried until the attempts run out.
            do {
                _ = try await client.checkNumber("+628123123123")
                Issue.record("a reset read succeeded")
            } catch {
                #expect(sleeper.recorded.count == 3)
            }
        }
    }
}
