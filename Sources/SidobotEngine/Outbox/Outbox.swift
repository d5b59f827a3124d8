import CoreMetrics
import Foundation
import Logging
import Sidobe
import Synchronization

/// The way out to Sidobe: every send waits for its turn under the global rate (a token bucket
/// that slows down on 429s) and the recipient's minimum gap, goes out through the client (with
/// its retries), and is counted while its request is out, so that a status webhook racing its
/// answer can be held until the answer is read.
///
/// It knows nothing of rules or the ledger: ``MessageSender`` records what a send did.
/// Owned by the engine actor.
final class Outbox {
    /// Why a send did not reach Sidobe, or what Sidobe answered instead of a message.
    enum Failure: Error {
        /// It would have waited longer than its time-to-live for its turn.
        case expired(waited: Double)
        case sidobe(SidobeError)
        /// `beforeLeaving` failed: the request did not leave.
        case notJournaled(DurabilityError)
    }

    /// A send whose request is out: hand it back with ``land(_:)`` once its answer is recorded.
    struct Flight {
        fileprivate let token: Int
    }

    private var bucket: TokenBucket
    private var pacing: RecipientPacing
    private var inFlight = SendsInFlight()
    private var waiting = 0 {
        didSet { depthGauge.record(waiting) }
    }
    private let client: any SidobeAPI
    private let clock: any EngineClock
    /// How long a send may wait for its turn (`sendTimeToLive`).
    let timeToLive: Double
    private let logger: Logger
    private let depthGauge = Gauge(label: "sidobot_outbox_depth")
    private let rateGauge = Gauge(label: "sidobot_send_rate")

    init(client: any SidobeAPI, clock: any EngineClock, configuration: EngineConfiguration, logger: Logger) {
        self.client = client
        self.clock = clock
        self.logger = logger
        timeToLive = configuration.sendTimeToLive
        bucket = TokenBucket(rate: configuration.sendRate, burst: configuration.sendBurst, now: clock.now().secondsValue)
        pacing = RecipientPacing(minimumGap: configuration.recipientGap)
    }

    /// Sends waiting for their turn.
    var depth: Int { waiting }

    /// Whether a send's request is out.
    var hasSendsOut: Bool { !inFlight.isEmpty }

    /// Waits for the send's turn, then sends it. The caller records the answer, then hands the
    /// flight back with ``land(_:)``.
    ///
    /// - Parameter beforeLeaving: called once the turn has come, just before the request leaves
    ///   (the send's intent is journaled there, so a send still waiting for its turn when the
    ///   process dies was not out, and is made after the restart); if it throws, nothing is sent.
    func transmit(_ message: OutgoingMessage, beforeLeaving: () throws(DurabilityError) -> Void = {}) async -> (Result<SentMessage, Failure>, Flight?) {
        if let waited = await waitForTurn(phone: message.phone) { return (.failure(.expired(waited: waited)), nil) }
        do {
            try beforeLeaving()
        } catch {
            return (.failure(.notJournaled(error)), nil)
        }
        let flight = Flight(token: inFlight.begin())
        do {
            let sent = try await client.send(message)
            let now = clock.now().secondsValue
            pacing.record(message.phone, now: now)
            bucket.recordAdmitted(now: now)
            return (.success(sent), flight)
        } catch {
            if case .rateLimited(_, let retryAfter) = error { throttle(retryAfter: retryAfter) }
            return (.failure(.sidobe(error)), flight)
        }
    }

    /// A send's answer is recorded: the status events held for it (and no other send still out)
    /// may go now, in arrival order.
    func land(_ flight: Flight?) -> [EngineEvent] {
        guard let flight else { return [] }
        inFlight.end(flight.token)
        return inFlight.releasable()
    }

    /// Holds a status event of a message the ledger does not know while sends are out: it may be
    /// the status of one of them, whose answer is not read yet (see ``SendsInFlight``).
    func holdIfSendsOut(_ event: EngineEvent) -> Bool {
        guard !inFlight.isEmpty else { return false }
        inFlight.hold(event)
        return true
    }

    /// Waits for the global rate and the recipient's minimum gap. Returns the seconds it would
    /// have waited if that is longer than the time-to-live. Under a virtual clock there is no
    /// pacing (tests move time themselves).
    ///
    /// Each send reserves its slot in the bucket and at the recipient, then sleeps once until it;
    /// a 429 that comes back meanwhile makes the reservation stale, and it is made again at the
    /// lower rate.
    private func waitForTurn(phone: String) async -> Double? {
        guard !(clock is VirtualClock) else { return nil }
        let start = clock.now().secondsValue
        waiting += 1
        defer { waiting -= 1 }
        var ownSlot: Double?
        while true {
            let now = clock.now().secondsValue
            let recipientWait = pacing.wait(for: phone, now: now, ignoring: ownSlot)
            let wait = recipientWait > 0 ? recipientWait : bucket.waitIfReserved(now: now)
            if now + wait - start > timeToLive { return now + wait - start }
            if recipientWait > 0 {
                try? await clock.sleep(until: Self.time(now + recipientWait))
                continue
            }
            let slot = bucket.reserve(now: now)
            let generation = bucket.generation
            rateGauge.record(bucket.currentRate)
            pacing.record(phone, at: slot, now: now)
            ownSlot = slot
            if slot > now { try? await clock.sleep(until: Self.time(slot)) }
            if bucket.generation == generation { return nil }
            // Sidobe answered 429 while this send waited: its slot was planned at the old rate.
        }
    }

    private static func time(_ seconds: Double) -> UnixTime { UnixTime(milliseconds: Int64((seconds * 1000).rounded(.up))) }

    /// Sidobe answered 429: sends slow down (the rate halves, at most once a second) and, with a
    /// `Retry-After`, wait until it has passed.
    func throttle(retryAfter: Duration?) {
        let before = bucket.currentRate
        bucket.throttled(now: clock.now().secondsValue,
                         retryAfter: retryAfter.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 })
        rateGauge.record(bucket.currentRate)
        if bucket.currentRate < before {
            logger.warning("Sidobe is rate limiting (429): sends slowed down", metadata: [
                "rate_per_second": "\(bucket.currentRate)", "configured_rate": "\(bucket.configuredRate)",
                "retry_after": "\(retryAfter.map { "\($0)" } ?? "none")",
            ])
        }
    }
}

extension SidobeError {
    /// Whether the client retried this kind of failure before giving up (so it is worth a dead letter).
    var isRetryable: Bool {
        switch self {
        case .rateLimited, .transport, .timeout: true
        case .serverError(let failure): failure.httpStatus == 503
        default: false
        }
    }
}

/// Carries Sidobe's 429s from a ``SidobeClient`` to the engine that paces the sends. The client is
/// made before the engine (the engine is given it), so the link is made afterwards:
///
/// ```swift
/// let feedback = RateLimitFeedback()
/// var configuration = SidobeClient.Configuration(secretKey: key)
/// configuration.onRateLimited = { feedback.rateLimited(retryAfter: $0) }
/// let engine = Engine(configuration: engineConfiguration, sidobe: SidobeClient(configuration: configuration))
/// feedback.attach(engine)
/// ```
public final class RateLimitFeedback: Sendable {
    private let engine = Mutex<Engine?>(nil)

    public init() {}

    /// The engine to tell.
    public func attach(_ engine: Engine) { self.engine.withLock { $0 = engine } }

    /// Sidobe answered 429 (pass this as `SidobeClient.Configuration.onRateLimited`).
    public func rateLimited(retryAfter: Duration?) {
        engine.withLock { $0 }?.sidobeRateLimited(retryAfter: retryAfter)
    }
}

/// The sends whose request is out, and the status events held until they are answered.
///
/// Sidobe may deliver the webhook of a sync send before the engine has read the send's own
/// answer. Dispatched at once, it would reach rules as a first `message.failed` without
/// `ev.message`, and the answer would fire a second one. A status for a message the ledger does not
/// know, arriving while sends are out, is therefore held until every send out at that moment is
/// answered; then it is dispatched (stale, if it was one of ours). A status of a message another
/// system sent waits at most as long as one request.
struct SendsInFlight {
    private var next = 0
    private var open: Set<Int> = []
    private var held: [(waitFor: Int, event: EngineEvent)] = []

    var isEmpty: Bool { open.isEmpty }

    mutating func begin() -> Int {
        next += 1
        open.insert(next)
        return next
    }

    mutating func end(_ token: Int) { open.remove(token) }

    /// Holds `event` until the sends out now are answered.
    mutating func hold(_ event: EngineEvent) { held.append((next, event)) }

    /// The held events whose sends are all answered, in arrival order.
    mutating func releasable() -> [EngineEvent] {
        guard !held.isEmpty else { return [] }
        let oldestOpen = open.min() ?? Int.max
        let ready = held.prefix { $0.waitFor < oldestOpen }
        held.removeFirst(ready.count)
        return ready.map(\.event)
    }
}
