import ArgumentParser
import Sidobe
import SidobeSimulator

/// How the options of ``SimulatorOptions`` are spelled: plainly for `sidobot simulator`
/// (`--failure-rate`), with a `sim-` prefix for `sidobot run --simulate` (`--sim-failure-rate`),
/// where they sit beside the engine's own.
protocol SimulatorOptionNames: SendableMetatype {
    static var prefix: String { get }
}

enum PlainSimulatorNames: SimulatorOptionNames { static let prefix = "" }
enum PrefixedSimulatorNames: SimulatorOptionNames { static let prefix = "sim-" }

/// The simulator's failure knobs and delays, shared by `sidobot simulator` and
/// `sidobot run --simulate` (docs/SIMULATOR.md): one declaration, two spellings.
struct SimulatorOptions<Names: SimulatorOptionNames>: ParsableArguments {
    @Option(name: .customLong(Names.prefix + "seed"), help: "Seed for every random decision of the simulator.")
    var seed: UInt64 = 1

    @Option(name: .customLong(Names.prefix + "failure-rate"), help: "Fraction (0...1) of sends whose final status is FAILED.")
    var failureRate: Double = 0

    @Option(name: .customLong(Names.prefix + "failing-phone"), help: "A phone whose sends always end FAILED (repeatable).")
    var failingPhones: [String] = []

    @Option(name: .customLong(Names.prefix + "unregistered-phone"),
            help: "A phone not on WhatsApp: check-number says false, sends end FAILED (repeatable).")
    var unregisteredPhones: [String] = []

    @Flag(name: .customLong(Names.prefix + "broken-device"), help: "Answer every send with 400 INVALID_DEVICE_WHATSAPP.")
    var brokenDevice = false

    @Option(name: .customLong(Names.prefix + "rate-limit"),
            help: "Requests per second before 429s (token bucket), e.g. 50 or 50:100 for a burst of 100.")
    var rateLimit: String?

    @Option(name: .customLong(Names.prefix + "retry-after"), help: "Send Retry-After: SECONDS with every 429.")
    var retryAfterSeconds: Int?

    @Option(name: .customLong(Names.prefix + "latency-ms"), help: "Milliseconds added before every answer.")
    var latencyMilliseconds: Int = 0

    @Option(name: .customLong(Names.prefix + "server-error-rate"), help: "Fraction (0...1) of requests answered 503.")
    var serverErrorRate: Double = 0

    @Option(name: .customLong(Names.prefix + "connection-reset-rate"),
            help: "Fraction (0...1) of requests whose connection is closed without an answer (nothing stored).")
    var connectionResetRate: Double = 0

    @Option(name: .customLong(Names.prefix + "async-delay-ms"), help: "Milliseconds between an async send's PENDING answer and its status webhook.")
    var asyncDelayMilliseconds: Int = 500

    @Option(name: .customLong(Names.prefix + "webhook-attempts"),
            help: "Attempts per webhook before giving up (retried with backoff on non-2xx or timeout).")
    var webhookAttempts: Int = 5

    func validate() throws {
        for (name, rate) in [("failure-rate", failureRate), ("server-error-rate", serverErrorRate),
                             ("connection-reset-rate", connectionResetRate)] where !(0...1).contains(rate) {
            throw ValidationError("--\(Names.prefix)\(name) must be between 0 and 1")
        }
        if latencyMilliseconds < 0 || asyncDelayMilliseconds < 0 {
            throw ValidationError("--\(Names.prefix)latency-ms and --\(Names.prefix)async-delay-ms cannot be negative")
        }
        if webhookAttempts < 1 { throw ValidationError("--\(Names.prefix)webhook-attempts must be at least 1") }
    }

    /// Whether any failure is asked for (`run` refuses those without `--simulate`).
    var injectsFailures: Bool {
        failureRate > 0 || !failingPhones.isEmpty || !unregisteredPhones.isEmpty || brokenDevice || rateLimit != nil
            || retryAfterSeconds != nil || latencyMilliseconds > 0 || serverErrorRate > 0 || connectionResetRate > 0
    }

    /// Applies the options to a simulator's configuration.
    /// - Throws: ``ConfigurationError`` for a bad `--rate-limit` or knobs that contradict each other.
    func apply(to configuration: inout SimulatorConfiguration) throws {
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
        if let problem = faults.problem { throw ConfigurationError(problem) }
        configuration.faults = faults
        configuration.asyncDeliveryDelay = .milliseconds(asyncDelayMilliseconds)
        configuration.webhookMaxAttempts = webhookAttempts
    }

    static func parseRateLimit(_ text: String) throws -> RateLimit {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let rate = Double(parts[0]), rate > 0 else {
            throw ConfigurationError("bad --\(Names.prefix)rate-limit '\(text)': expected REQUESTS_PER_SECOND or REQUESTS_PER_SECOND:BURST, e.g. 50:100")
        }
        var burst = max(1, Int(rate.rounded(.up)))
        if parts.count == 2 {
            guard let value = Int(parts[1]), value > 0 else {
                throw ConfigurationError("bad --\(Names.prefix)rate-limit '\(text)': the burst must be a positive whole number")
            }
            burst = value
        }
        return RateLimit(requestsPerSecond: rate, burst: burst)
    }
}
