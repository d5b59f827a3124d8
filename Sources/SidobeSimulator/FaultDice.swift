/// SplitMix64: a tiny, well-mixed 64-bit generator (Steele, Lea & Flood, 2014).
///
/// The simulator uses it in two ways: as a sequential ``RandomNumberGenerator`` seeded by
/// ``FaultInjection/seed``, and as a stateless hash (``FaultDice``) that turns a seed and a few
/// counters into a roll, so a decision does not depend on the order concurrent tasks happen to run in.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    /// The generator's state; the next output is derived from it.
    public var state: UInt64

    /// Creates a generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// A uniform `Double` in `0..<1` (53 random bits).
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// SplitMix64's finaliser: a bijective mix of 64 bits.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Deterministic fault decisions: a roll in `0..<1` computed from the seed, the kind of
/// decision and the counters that identify it (request number, message number, attempt).
///
/// The same seed and the same sequence of requests give the same outcomes, whatever the
/// timing of async deliveries and webhook attempts.
enum FaultDice {
    enum Stream: UInt64 {
        case sendFailure = 0x5EED_0001
        case serverError = 0x5EED_0002
        case webhookDrop = 0x5EED_0003
        case webhookDuplicate = 0x5EED_0004
        case connectionReset = 0x5EED_0005
    }

    /// A uniform roll in `0..<1` for one decision.
    static func roll(seed: UInt64, _ stream: Stream, _ counters: UInt64...) -> Double {
        roll(seed: seed, stream, counters)
    }

    /// Whether an event of probability `rate` happens for this decision. Rates outside `0...1` are clamped.
    static func happens(rate: Double, seed: UInt64, _ stream: Stream, _ counters: UInt64...) -> Bool {
        guard rate > 0 else { return false }
        guard rate < 1 else { return true }
        return roll(seed: seed, stream, counters) < rate
    }

    private static func roll(seed: UInt64, _ stream: Stream, _ counters: [UInt64]) -> Double {
        var generator = SplitMix64(seed: seed ^ SplitMix64.mix(stream.rawValue))
        var value = generator.next()
        for counter in counters {
            generator.state ^= SplitMix64.mix(counter &+ value)
            value = generator.next()
        }
        return Double(value >> 11) * 0x1.0p-53
    }
}
