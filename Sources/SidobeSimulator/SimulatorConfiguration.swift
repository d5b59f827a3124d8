import Foundation
import Sidobe

/// How a simulator behaves: its secret key, where webhooks go, timings, and injected faults.
///
/// The defaults mimic Sidobe with no failures: async sends answer `PENDING` and their final status
/// arrives by webhook 500 ms later; webhooks are retried up to 5 times with exponential backoff from 1 s.
/// Tests set the delays to zero (or a few milliseconds).
public struct SimulatorConfiguration: Sendable {
    /// The key every API request must carry in `X-Secret-Key`; also the webhook signing key.
    public var secretKey: SecretKey
    /// Where webhooks are POSTed. `nil`: events are created and recorded (see
    /// ``SimulatedSidobeCore/webhookEvents()``) but not delivered.
    public var webhookURL: String?
    /// Attempts per webhook event, the first included; a non-2xx answer, a timeout or a
    /// connection error leads to the next attempt. At least 1.
    public var webhookMaxAttempts: Int
    /// The wait before the second attempt; it doubles before each further one
    /// (1 s, 2 s, 4 s, ... by default), capped by ``webhookRetryMaxDelay``.
    public var webhookRetryBaseDelay: Duration
    /// The longest wait between two attempts.
    public var webhookRetryMaxDelay: Duration
    /// How long one webhook attempt may take before it counts as failed.
    public var webhookTimeout: Duration
    /// The time between an async send's `PENDING` answer and its final status (and webhook).
    public var asyncDeliveryDelay: Duration
    /// Whether a sync send also produces a `SEND_MESSAGE_STATUS` webhook for its final status.
    ///
    /// Sidobe documents the event as triggered "whenever the status of a sent message changes";
    /// a sync send goes from nothing to `SUCCESS`/`FAILED`, so by default it is announced too.
    /// A receiver must therefore cope with a webhook for a message whose status it already knows.
    public var syncSendsSendWebhooks: Bool
    /// Whether an async send also produces a `PENDING` webhook when it is accepted, before the final one.
    ///
    /// Off by default. Turn it on to exercise a receiver's handling of `PENDING` events and of
    /// out-of-order delivery (a retried `PENDING` can arrive after the final status).
    public var asyncSendsSendPendingWebhook: Bool
    /// The device reported in `GET whatsapp-messages/:id` as `whatsapp_device`.
    public var device: WhatsAppDevice
    /// The UTC offset of the timestamps in webhooks (`created_at`, `send_at`), in seconds.
    /// Sidobe is in Jakarta, so the default is `+07:00`, as in the documentation's example.
    public var timestampOffsetSeconds: Int
    /// How many messages, webhook events and delivery records are kept; the oldest are dropped
    /// beyond it, so a long `sidobot run --simulate` does not grow without bound. At least 1.
    public var historyLimit: Int
    /// Injected failures; all off by default.
    public var faults: FaultInjection

    /// The device the simulator reports unless told otherwise.
    public static let defaultDevice = WhatsAppDevice(
        id: "5d1f0c2e-8a4b-4c6e-9f10-51d0be5100a1",
        phone: "+6281100000000",
        name: "Sidobe Simulator"
    )

    /// Creates a configuration.
    /// - Parameters:
    ///   - secretKey: the key clients must send in `X-Secret-Key`, also used to sign webhooks.
    ///   - webhookURL: where to POST webhooks; `nil` records them only.
    ///   - webhookMaxAttempts: attempts per webhook event (default 5).
    ///   - webhookRetryBaseDelay: the first retry wait, doubled each time (default 1 s).
    ///   - webhookRetryMaxDelay: the longest retry wait (default 60 s).
    ///   - webhookTimeout: the time one attempt may take (default 5 s).
    ///   - asyncDeliveryDelay: from an async send's `PENDING` answer to its final status (default 500 ms).
    ///   - syncSendsSendWebhooks: whether sync sends announce their status by webhook too (default `true`).
    ///   - asyncSendsSendPendingWebhook: whether async sends also send a `PENDING` webhook (default `false`).
    ///   - device: the `whatsapp_device` of message details.
    ///   - timestampOffsetSeconds: the UTC offset of webhook timestamps (default +07:00).
    ///   - historyLimit: how many messages, events and delivery records are kept (default 10,000).
    ///   - faults: injected failures (default none).
    public init(
        secretKey: SecretKey,
        webhookURL: String? = nil,
        webhookMaxAttempts: Int = 5,
        webhookRetryBaseDelay: Duration = .seconds(1),
        webhookRetryMaxDelay: Duration = .seconds(60),
        webhookTimeout: Duration = .seconds(5),
        asyncDeliveryDelay: Duration = .milliseconds(500),
        syncSendsSendWebhooks: Bool = true,
        asyncSendsSendPendingWebhook: Bool = false,
        device: WhatsAppDevice = SimulatorConfiguration.defaultDevice,
        timestampOffsetSeconds: Int = 7 * 3600,
        historyLimit: Int = 10_000,
        faults: FaultInjection = FaultInjection()
    ) {
        self.secretKey = secretKey
        self.webhookURL = webhookURL
        self.webhookMaxAttempts = webhookMaxAttempts
        self.webhookRetryBaseDelay = webhookRetryBaseDelay
        self.webhookRetryMaxDelay = webhookRetryMaxDelay
        self.webhookTimeout = webhookTimeout
        self.asyncDeliveryDelay = asyncDeliveryDelay
        self.syncSendsSendWebhooks = syncSendsSendWebhooks
        self.asyncSendsSendPendingWebhook = asyncSendsSendPendingWebhook
        self.device = device
        self.timestampOffsetSeconds = timestampOffsetSeconds
        self.historyLimit = historyLimit
        self.faults = faults
    }

    /// The wait after failed attempt `attempt` (1-based): `base · 2^(attempt-1)`, at most ``webhookRetryMaxDelay``.
    public func webhookRetryDelay(afterAttempt attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let delay = webhookRetryBaseDelay * (1 << exponent)
        return min(max(delay, .zero), webhookRetryMaxDelay)
    }
}

/// A token bucket: up to ``burst`` requests at once, refilled at ``requestsPerSecond``.
public struct RateLimit: Sendable, Hashable, Codable {
    /// Tokens added per second.
    public var requestsPerSecond: Double
    /// The bucket's size: how many requests may arrive at once after a quiet period. At least 1.
    public var burst: Int

    /// Creates a token bucket limit.
    public init(requestsPerSecond: Double, burst: Int) {
        self.requestsPerSecond = requestsPerSecond
        self.burst = burst
    }

    enum CodingKeys: String, CodingKey {
        case requestsPerSecond = "requests_per_second"
        case burst
    }
}

/// Failures the simulator injects on purpose. Everything is off by default.
///
/// Random decisions are deterministic: each is a function of ``seed`` and the counters that
/// identify it (the request's number, the send's number, the webhook attempt's number), counted
/// from the simulator's start or the last ``SimulatedSidobeCore/setFaults(_:)``. The same seed and
/// the same sequence of requests give the same outcomes.
///
/// The order of checks for an API request: ``latency`` → ``connectionResetRate`` (no answer) →
/// ``serverErrorRate`` (503) → ``rateLimit``
/// (429) → secret key (401) → route (404/405) → body validation (400) → ``brokenDevice`` (400) →
/// the send's final status (``unregisteredPhones``, ``failingPhones``, ``failureRate``).
public struct FaultInjection: Sendable, Hashable, Codable {
    /// The seed of every random decision below.
    public var seed: UInt64
    /// The fraction (`0...1`) of accepted sends whose final status is `FAILED`.
    public var failureRate: Double
    /// Sends to these numbers always end `FAILED`.
    public var failingPhones: Set<String>
    /// Check-number answers `is_registered: false` for these numbers, and sends to them end `FAILED`.
    public var unregisteredPhones: Set<String>
    /// Every send answers `400 INVALID_DEVICE_WHATSAPP` (after body validation); nothing is stored.
    public var brokenDevice: Bool
    /// A token bucket over all `/wa/v1` requests; an empty bucket answers
    /// `429 {"message":"rate limit exceeded"}`. `nil`: unlimited.
    public var rateLimit: RateLimit?
    /// When set, 429 and 503 answers carry `Retry-After: <seconds>`.
    public var retryAfterSeconds: Int?
    /// Time added before every `/wa/v1` answer.
    public var latency: Duration
    /// The fraction (`0...1`) of `/wa/v1` requests whose connection is closed once the request
    /// was read, without an answer: nothing is stored or sent, and the client cannot tell (a send
    /// so lost "may have been delivered").
    public var connectionResetRate: Double
    /// The fraction (`0...1`) of `/wa/v1` requests answered `503` ("temporarily offline for
    /// maintenance") before anything else happens: nothing is stored or sent.
    public var serverErrorRate: Double
    /// The fraction (`0...1`) of webhook attempts that are lost: nothing reaches the receiver, the
    /// attempt is recorded as failed ("dropped by fault injection") and retried like any failure.
    public var webhookFailureRate: Double
    /// The fraction (`0...1`) of successfully delivered webhook events that are delivered a second
    /// time, with the same event id and body, as a real at-least-once system sometimes does.
    public var webhookDuplicateRate: Double
    /// Time added before every webhook attempt (a slow Sidobe).
    public var webhookDelay: Duration

    /// No faults.
    public static let none = FaultInjection()

    /// Creates a set of faults; everything is off unless given.
    public init(
        seed: UInt64 = 0,
        failureRate: Double = 0,
        failingPhones: Set<String> = [],
        unregisteredPhones: Set<String> = [],
        brokenDevice: Bool = false,
        rateLimit: RateLimit? = nil,
        retryAfterSeconds: Int? = nil,
        latency: Duration = .zero,
        connectionResetRate: Double = 0,
        serverErrorRate: Double = 0,
        webhookFailureRate: Double = 0,
        webhookDuplicateRate: Double = 0,
        webhookDelay: Duration = .zero
    ) {
        self.seed = seed
        self.failureRate = failureRate
        self.failingPhones = failingPhones
        self.unregisteredPhones = unregisteredPhones
        self.brokenDevice = brokenDevice
        self.rateLimit = rateLimit
        self.retryAfterSeconds = retryAfterSeconds
        self.latency = latency
        self.connectionResetRate = connectionResetRate
        self.serverErrorRate = serverErrorRate
        self.webhookFailureRate = webhookFailureRate
        self.webhookDuplicateRate = webhookDuplicateRate
        self.webhookDelay = webhookDelay
    }

    /// What is wrong with these knobs, naming the JSON field (`failure_rate must be between 0 and 1`),
    /// or `nil` if they are usable.
    public var problem: String? {
        for (name, rate) in [
            ("failure_rate", failureRate), ("server_error_rate", serverErrorRate), ("connection_reset_rate", connectionResetRate),
            ("webhook_failure_rate", webhookFailureRate), ("webhook_duplicate_rate", webhookDuplicateRate),
        ] where !(0...1).contains(rate) {
            return "\(name) must be between 0 and 1, got \(rate)"
        }
        if let rateLimit {
            if !(rateLimit.requestsPerSecond >= 0 && rateLimit.requestsPerSecond.isFinite) {
                return "rate_limit.requests_per_second must be a number of at least 0"
            }
            if rateLimit.burst < 1 { return "rate_limit.burst must be at least 1" }
        }
        if let retryAfterSeconds, retryAfterSeconds < 0 { return "retry_after_seconds must be at least 0" }
        if latency < .zero { return "latency_ms must be at least 0" }
        if webhookDelay < .zero { return "webhook_delay_ms must be at least 0" }
        for phone in failingPhones.union(unregisteredPhones) {
            if let problem = RequestValidation.phoneProblem(phone) { return "phone \(phone) \(problem)" }
        }
        return nil
    }

    // MARK: Codable (snake_case, durations in milliseconds, missing keys = off)

    enum CodingKeys: String, CodingKey {
        case seed
        case failureRate = "failure_rate"
        case failingPhones = "failing_phones"
        case unregisteredPhones = "unregistered_phones"
        case brokenDevice = "broken_device"
        case rateLimit = "rate_limit"
        case retryAfterSeconds = "retry_after_seconds"
        case latencyMilliseconds = "latency_ms"
        case serverErrorRate = "server_error_rate"
        case connectionResetRate = "connection_reset_rate"
        case webhookFailureRate = "webhook_failure_rate"
        case webhookDuplicateRate = "webhook_duplicate_rate"
        case webhookDelayMilliseconds = "webhook_delay_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            seed: try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? 0,
            failureRate: try c.decodeIfPresent(Double.self, forKey: .failureRate) ?? 0,
            failingPhones: try c.decodeIfPresent(Set<String>.self, forKey: .failingPhones) ?? [],
            unregisteredPhones: try c.decodeIfPresent(Set<String>.self, forKey: .unregisteredPhones) ?? [],
            brokenDevice: try c.decodeIfPresent(Bool.self, forKey: .brokenDevice) ?? false,
            rateLimit: try c.decodeIfPresent(RateLimit.self, forKey: .rateLimit),
            retryAfterSeconds: try c.decodeIfPresent(Int.self, forKey: .retryAfterSeconds),
            latency: .milliseconds(try c.decodeIfPresent(Int64.self, forKey: .latencyMilliseconds) ?? 0),
            connectionResetRate: try c.decodeIfPresent(Double.self, forKey: .connectionResetRate) ?? 0,
            serverErrorRate: try c.decodeIfPresent(Double.self, forKey: .serverErrorRate) ?? 0,
            webhookFailureRate: try c.decodeIfPresent(Double.self, forKey: .webhookFailureRate) ?? 0,
            webhookDuplicateRate: try c.decodeIfPresent(Double.self, forKey: .webhookDuplicateRate) ?? 0,
            webhookDelay: .milliseconds(try c.decodeIfPresent(Int64.self, forKey: .webhookDelayMilliseconds) ?? 0)
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(seed, forKey: .seed)
        try c.encode(failureRate, forKey: .failureRate)
        try c.encode(failingPhones.sorted(), forKey: .failingPhones)
        try c.encode(unregisteredPhones.sorted(), forKey: .unregisteredPhones)
        try c.encode(brokenDevice, forKey: .brokenDevice)
        try c.encodeIfPresent(rateLimit, forKey: .rateLimit)
        try c.encodeIfPresent(retryAfterSeconds, forKey: .retryAfterSeconds)
        try c.encode(latency.wholeMilliseconds, forKey: .latencyMilliseconds)
        try c.encode(serverErrorRate, forKey: .serverErrorRate)
        try c.encode(connectionResetRate, forKey: .connectionResetRate)
        try c.encode(webhookFailureRate, forKey: .webhookFailureRate)
        try c.encode(webhookDuplicateRate, forKey: .webhookDuplicateRate)
        try c.encode(webhookDelay.wholeMilliseconds, forKey: .webhookDelayMilliseconds)
    }
}

extension Duration {
    /// The duration in whole milliseconds, rounded down.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds &* 1000 &+ attoseconds / 1_000_000_000_000_000
    }

    /// The duration in seconds, as a `Double`.
    var secondsDouble: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
