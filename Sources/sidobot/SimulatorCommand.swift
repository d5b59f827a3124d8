import ArgumentParser
import Foundation
import Logging
import Sidobe
import SidobeSimulator

/// `sidobot simulator`: a local Sidobe for development, demos and tests.
struct SimulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulator",
        abstract: "Run a local Sidobe API simulator (same endpoints under /wa/v1, signed webhooks, failure injection).",
        discussion: """
            The simulator's secret key comes from SIDOBE_SECRET_KEY, or --secret-key. Async sends answer PENDING \
            and the final status is POSTed to --webhook-url. No failures are injected unless asked; every knob \
            is deterministic for a given --seed. See docs/SIMULATOR.md.
            """
    )

    @Option(name: .long, help: "Where to listen, HOST:PORT.")
    var listen = "127.0.0.1:8090"

    @Option(name: .customLong("webhook-url"), help: "Where to POST status webhooks, e.g. http://127.0.0.1:8080/webhooks/sidobe.")
    var webhookURL: String?

    @Option(name: .customLong("secret-key"), help: "The key clients must send (default: SIDOBE_SECRET_KEY).")
    var secretKey: String?

    @Option(name: .long, help: "Seed for every random decision.")
    var seed: UInt64 = 1

    @Option(name: .customLong("failure-rate"), help: "Fraction (0...1) of sends whose final status is FAILED.")
    var failureRate: Double = 0

    @Option(name: .customLong("failing-phone"), help: "A phone whose sends always end FAILED (repeatable).")
    var failingPhones: [String] = []

    @Option(name: .customLong("unregistered-phone"), help: "A phone not on WhatsApp: check-number says false, sends end FAILED (repeatable).")
    var unregisteredPhones: [String] = []

    @Flag(name: .customLong("broken-device"), help: "Answer every send with 400 INVALID_DEVICE_WHATSAPP.")
    var brokenDevice = false

    @Option(name: .customLong("rate-limit"), help: "Requests per second before 429s (token bucket), e.g. 50 or 50:100 for a burst of 100.")
    var rateLimit: String?

    @Option(name: .customLong("retry-after"), help: "Send Retry-After: SECONDS with every 429.")
    var retryAfterSeconds: Int?

    @Option(name: .customLong("latency-ms"), help: "Milliseconds added before every answer.")
    var latencyMilliseconds: Int = 0

    @Option(name: .customLong("server-error-rate"), help: "Fraction (0...1) of requests answered 503.")
    var serverErrorRate: Double = 0

    @Option(name: .customLong("connection-reset-rate"), help: "Fraction (0...1) of requests whose connection is closed without an answer (nothing stored).")
    var connectionResetRate: Double = 0

    @Option(name: .customLong("async-delay-ms"), help: "Milliseconds between an async send's PENDING answer and its status webhook.")
    var asyncDelayMilliseconds: Int = 500

    @Option(name: .customLong("webhook-attempts"), help: "Attempts per webhook before giving up (retried with backoff on non-2xx or timeout).")
    var webhookAttempts: Int = 5

    func validate() throws {
        for (name, rate) in [("--failure-rate", failureRate), ("--server-error-rate", serverErrorRate),
                             ("--connection-reset-rate", connectionResetRate)] where !(0...1).contains(rate) {
            throw ValidationError("\(name) must be between 0 and 1")
        }
        if latencyMilliseconds < 0 || asyncDelayMilliseconds < 0 { throw ValidationError("delays cannot be negative") }
        if webhookAttempts < 1 { throw ValidationError("--webhook-attempts must be at least 1") }
    }

    func run() async throws {
        bootstrapLogging()
        try await runReportingConfigurationErrors {
            let address = try ListenAddress(parsing: listen)
            let key: SecretKey
            if let secretKey, !secretKey.isEmpty {
                key = SecretKey(secretKey)
            } else {
                key = try Environment.secretKey(neededFor: "the simulator")
            }
            var faults = FaultInjection()
            faults.seed = seed
            faults.failureRate = failureRate
            faults.failingPhones = Set(failingPhones)
            faults.unregisteredPhones = Set(unregisteredPhones)
            faults.brokenDevice = brokenDevice
            faults.rateLimit = try rateLimit.map(Self.parseRateLimit)
            faults.retryAfterSeconds = retryAfterSeconds
            faults.latency = .milliseconds(latencyMilliseconds)
            faults.serverErrorRate = serverErrorRate
            faults.connectionResetRate = connectionResetRate
            var configuration = SimulatorConfiguration(secretKey: key, webhookURL: webhookURL)
            configuration.asyncDeliveryDelay = .milliseconds(asyncDelayMilliseconds)
            configuration.webhookMaxAttempts = webhookAttempts
            configuration.faults = faults
            let simulator = SidobeSimulator(configuration: configuration)
            if let problem = faults.problem { throw ConfigurationError(problem) }
            try await simulator.run(host: address.host, port: address.port) { port in
                let shown = address.host.contains(":") ? "[\(address.host)]" : address.host
                printError("simulator: listening on http://\(shown):\(port)/wa/v1 (inspection under /_simulator)")
            }
        }
    }

    static func parseRateLimit(_ text: String) throws -> RateLimit {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let rate = Double(parts[0]), rate > 0 else {
            throw ConfigurationError("bad --rate-limit '\(text)': expected REQUESTS_PER_SECOND or REQUESTS_PER_SECOND:BURST, e.g. 50:100")
        }
        var burst = max(1, Int(rate.rounded(.up)))
        if parts.count == 2 {
            guard let value = Int(parts[1]), value > 0 else {
                throw ConfigurationError("bad --rate-limit '\(text)': the burst must be a positive whole number")
            }
            burst = value
        }
        return RateLimit(requestsPerSecond: rate, burst: burst)
    }
}
