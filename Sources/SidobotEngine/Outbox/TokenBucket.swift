import DequeModule

/// The global send rate: a token bucket whose rate halves on a 429 and creeps back up (AIMD).
///
/// Sidobe does not publish its limit and says it changes with load, so a fixed rate is either too
/// slow or eventually too fast. A 429 halves the rate, but not below 90% of what Sidobe actually
/// let through in the seconds before (the sends that succeeded): halving alone would fall far
/// under a limit that was only just crossed. Adding back a tenth of the configured rate for every
/// quiet interval without a 429 recovers without oscillating.
///
/// Sends *reserve* their slot (``reserve(now:)``): the bucket may go into debt, and each waiting
/// send gets its own time, one `1/rate` after the previous one, so a queue of a thousand sends
/// sleeps once each instead of all waking for every token. A 429 invalidates the reservations made
/// before it (``generation`` changes) so they are made again at the lower rate.
/// Pure arithmetic on times passed in, so it is exact under a virtual clock.
public struct TokenBucket: Sendable, Hashable {
    /// The configured rate, in sends per second: the ceiling recovery returns to.
    public let configuredRate: Double
    /// The most tokens that can accumulate (the burst).
    public let burst: Double
    /// The lowest the rate may fall to after repeated 429s.
    public let minimumRate: Double
    /// How long without a 429 before the rate steps back up.
    public let recoveryInterval: Double
    /// 429s closer together than this halve the rate only once: the requests already in flight when
    /// the first one came back were sent at the old rate and say nothing new.
    public let decreaseSpacing: Double

    /// The rate in force now.
    public private(set) var currentRate: Double
    /// Counts the decreases: a reservation made under an older generation is stale.
    public private(set) var generation = 0
    private var tokens: Double
    private var updatedAt: Double
    private var lastThrottleAt: Double
    private var lastDecreaseAt: Double = -.infinity
    /// When the recent sends Sidobe accepted went out (the last ``admittedWindow`` seconds).
    private var admitted: Deque<Double> = []
    /// How far back ``recordAdmitted(now:)`` remembers.
    public static let admittedWindow: Double = 2

    public init(rate: Double, burst: Double, minimumRate: Double? = nil, recoveryInterval: Double = 10, now: Double) {
        precondition(rate > 0 && burst >= 1, "rate must be positive and burst at least 1")
        configuredRate = rate
        self.burst = burst
        self.minimumRate = min(rate, minimumRate ?? max(rate / 64, 0.01))
        self.recoveryInterval = recoveryInterval
        decreaseSpacing = min(1, recoveryInterval)
        currentRate = rate
        tokens = burst
        updatedAt = now
        lastThrottleAt = now
    }

    private mutating func refill(now: Double) {
        guard now > updatedAt else { return }
        // Recover one step per quiet interval that has passed since the last 429 or step.
        while currentRate < configuredRate, now - lastThrottleAt >= recoveryInterval {
            lastThrottleAt += recoveryInterval
            currentRate = min(configuredRate, currentRate + configuredRate / 10)
        }
        tokens = min(burst, tokens + (now - updatedAt) * currentRate)
        updatedAt = now
    }

    /// Takes a token if one is available now. Returns 0 when the send may go now, else the seconds to
    /// wait before asking again (nothing is taken then).
    public mutating func take(now: Double) -> Double {
        refill(now: now)
        if tokens >= 1 {
            tokens -= 1
            return 0
        }
        return (1 - tokens) / currentRate
    }

    /// Reserves the next slot: returns the time (on the same clock as `now`) at which the send may
    /// go, `now` itself when a token is there. The slot is taken whether the caller waits or not.
    public mutating func reserve(now: Double) -> Double {
        refill(now: now)
        tokens -= 1
        return tokens >= 0 ? now : now + -tokens / currentRate
    }

    /// A send went out at `now` and Sidobe accepted it (not a 429): what the next 429 measures the
    /// provider's real rate by.
    public mutating func recordAdmitted(now: Double) {
        admitted.append(now)
        forgetAdmitted(before: now - Self.admittedWindow)
    }

    private mutating func forgetAdmitted(before cutoff: Double) {
        while let first = admitted.first, first < cutoff { admitted.removeFirst() }
    }

    /// The seconds a reservation made now would wait, without making it.
    public func waitIfReserved(now: Double) -> Double {
        var copy = self
        return copy.reserve(now: now) - now
    }

    /// Sidobe answered 429: halve the rate (not below ``minimumRate``; once for 429s closer together
    /// than ``decreaseSpacing``), empty the bucket, and with a `Retry-After` of `retryAfter`
    /// seconds, hold every send until then. Reservations made before this are stale.
    public mutating func throttled(now: Double, retryAfter: Double? = nil) {
        refill(now: now)
        if now - lastDecreaseAt >= decreaseSpacing {
            forgetAdmitted(before: now - Self.admittedWindow)
            let admittedRate = Double(admitted.count) / Self.admittedWindow
            currentRate = max(minimumRate, max(currentRate / 2, min(currentRate, admittedRate * 0.9)))
            lastDecreaseAt = now
        }
        tokens = -(max(0, retryAfter ?? 0) * currentRate)
        lastThrottleAt = now
        generation += 1
    }
}

/// The minimum gap between two sends to the same recipient, so a bulk flow cannot hammer one number
/// (WhatsApp bans numbers that look like spam).
public struct RecipientPacing: Sendable {
    /// The gap in seconds; 0 turns pacing off.
    public let minimumGap: Double
    private var lastSend: [String: Double] = [:]
    private var sendsSincePrune = 0

    public init(minimumGap: Double) { self.minimumGap = minimumGap }

    /// Seconds to wait before `phone` may receive another message (0 if it may now). A send that
    /// reserved `ignoring` for itself is not held back by its own reservation.
    public func wait(for phone: String, now: Double, ignoring ownSlot: Double? = nil) -> Double {
        guard minimumGap > 0, let last = lastSend[phone], last != ownSlot else { return 0 }
        return max(0, last + minimumGap - now)
    }

    /// Records a send to `phone` at `now`.
    public mutating func record(_ phone: String, now: Double) { record(phone, at: now, now: now) }

    /// Records a send to `phone` reserved for `slot` (which may lie ahead of `now`): the next send
    /// to that phone waits for the gap after the slot.
    public mutating func record(_ phone: String, at slot: Double, now: Double) {
        guard minimumGap > 0 else { return }
        lastSend[phone] = max(slot, lastSend[phone] ?? slot)
        sendsSincePrune += 1
        // Entries older than the gap no longer matter; drop them now and then so the map stays
        // the size of the recently-messaged set, not of everyone ever messaged.
        if sendsSincePrune >= 1024 {
            sendsSincePrune = 0
            lastSend = lastSend.filter { now - $0.value < minimumGap }
        }
    }

    /// How many recipients are currently remembered.
    public var trackedRecipients: Int { lastSend.count }
}
