@testable import SidobotEngine
import Testing

@Suite("Outbox pacing")
struct PacingTests {
    @Test func bucketAllowsBurstThenPacesAtTheRate() {
        var bucket = TokenBucket(rate: 10, burst: 3, now: 0)
        let waits = [0, 0, 0, 0, 0.1].map { bucket.take(now: $0) }
        #expect(waits[0...2] == [0, 0, 0])
        #expect(abs(waits[3] - 0.1) < 1e-9)
        #expect(waits[4] == 0)
    }

    @Test func throttlingHalvesAndRecoversStepwise() {
        var bucket = TokenBucket(rate: 40, burst: 1, recoveryInterval: 10, now: 0)
        bucket.throttled(now: 1)
        #expect(bucket.currentRate == 20)
        bucket.throttled(now: 2)
        #expect(bucket.currentRate == 10)
        _ = bucket.take(now: 11.9)
        #expect(bucket.currentRate == 10)
        _ = bucket.take(now: 12)
        #expect(bucket.currentRate == 14)
        _ = bucket.take(now: 100)
        #expect(bucket.currentRate == 40)
    }

    @Test func throttlingNeverGoesBelowTheMinimum() {
        var bucket = TokenBucket(rate: 8, burst: 1, minimumRate: 1, recoveryInterval: 100, now: 0)
        for second in 0..<20 { bucket.throttled(now: Double(second)) }
        #expect(bucket.currentRate == 1)
    }

    @Test func a429StormWithinASecondHalvesOnce() {
        // The requests already in flight come back 429 together: one decrease, not one per answer.
        var bucket = TokenBucket(rate: 40, burst: 1, now: 0)
        for i in 0..<10 { bucket.throttled(now: 5 + Double(i) * 0.05) }
        #expect(bucket.currentRate == 20)
        #expect(bucket.generation == 10)
        bucket.throttled(now: 6.5)
        #expect(bucket.currentRate == 10)
    }

    @Test func a429FallsToWhatSidobeLetThroughNotBelow() {
        // 100/s configured, but Sidobe let only ~40/s through in the last two seconds.
        var bucket = TokenBucket(rate: 100, burst: 1, now: 0)
        for i in 0..<80 { bucket.recordAdmitted(now: 8 + Double(i) / 40) }
        bucket.throttled(now: 10)
        #expect(abs(bucket.currentRate - 50) < 1e-9)  // halving (50) is above 90% of 40
        bucket.throttled(now: 12)
        // Nothing admitted since: plain halving.
        #expect(abs(bucket.currentRate - 25) < 1e-9)
        var close = TokenBucket(rate: 100, burst: 1, now: 0)
        for i in 0..<190 { close.recordAdmitted(now: 8 + Double(i) / 95) }
        close.throttled(now: 10)
        // Sidobe let 95/s through: the limit was only just crossed, so 90% of that, not 50.
        #expect(abs(close.currentRate - 85.5) < 0.5)
    }

    @Test func reservationsQueueOneIntervalApart() {
        var bucket = TokenBucket(rate: 10, burst: 2, now: 0)
        let slots = (0..<5).map { _ in bucket.reserve(now: 0) }
        #expect(slots[0] == 0 && slots[1] == 0)
        for (slot, expected) in zip(slots[2...], [0.1, 0.2, 0.3]) { #expect(abs(slot - expected) < 1e-9) }
        // A later reservation queues behind the debt, and peeking takes nothing.
        #expect(abs(bucket.waitIfReserved(now: 0.05) - 0.35) < 1e-9)
        #expect(abs(bucket.reserve(now: 0.05) - 0.4) < 1e-9)
    }

    @Test func retryAfterHoldsEverySendUntilItPassed() {
        var bucket = TokenBucket(rate: 10, burst: 5, now: 0)
        let before = bucket.generation
        bucket.throttled(now: 1, retryAfter: 2)
        #expect(bucket.generation == before + 1)
        #expect(bucket.reserve(now: 1) >= 3 - 1e-9)
    }

    @Test func aReservedRecipientSlotHoldsTheNextSendToThatPhone() {
        var pacing = RecipientPacing(minimumGap: 1)
        pacing.record("+62811", at: 10, now: 2)
        #expect(pacing.wait(for: "+62811", now: 2) == 9)
        // The send that holds the slot is not held back by it when it asks again.
        #expect(pacing.wait(for: "+62811", now: 2, ignoring: 10) == 0)
        #expect(pacing.wait(for: "+62812", now: 2) == 0)
    }

    @Test func recipientGap() {
        var pacing = RecipientPacing(minimumGap: 5)
        #expect(pacing.wait(for: "+62811", now: 0) == 0)
        pacing.record("+62811", now: 0)
        #expect(pacing.wait(for: "+62811", now: 2) == 3)
        #expect(pacing.wait(for: "+62812", now: 2) == 0)
        #expect(pacing.wait(for: "+62811", now: 5) == 0)
    }

    @Test func recipientMemoryIsPruned() {
        var pacing = RecipientPacing(minimumGap: 1)
        for i in 0..<5000 { pacing.record("+62\(i)", now: Double(i)) }
        #expect(pacing.trackedRecipients < 1100)
    }
}

@Suite("Dedupe set")
struct DedupeSetTests {
    @Test func remembersForTheRetentionThenForgets() {
        var set = DedupeSet(retention: 100)
        let first = set.insert("a", at: 0), again = set.insert("a", at: 1), other = set.insert("b", at: 50)
        #expect(first && !again && other)
        set.prune(now: 99)
        #expect(set.contains("a"))
        set.prune(now: 101)
        #expect(!set.contains("a"))
        #expect(set.contains("b"))
        #expect(set.count == 1)
        let later = set.insert("a", at: 102)
        #expect(later)
    }
}

@Suite("Status events held while sends are out")
struct SendsInFlightTests {
    static func event(_ id: String) -> EngineEvent {
        EngineEvent(id: id, kind: .messageStatus(MessageStatusEvent(messageID: "m-" + id, status: "FAILED", messageType: "TEXT",
                                                                   sendAt: "x", createdAt: "x")), at: UnixTime(seconds: 0))
    }

    @Test func aHeldStatusWaitsForEverySendOutWhenItArrivedNotForLaterOnes() {
        var sends = SendsInFlight()
        let first = sends.begin()
        let second = sends.begin()
        sends.hold(Self.event("a"))
        let third = sends.begin()  // after the status arrived: not waited for
        sends.end(second)
        #expect(sends.releasable().isEmpty)
        sends.end(first)
        #expect(sends.releasable().map(\.id) == ["a"])
        sends.hold(Self.event("b"))
        #expect(sends.releasable().isEmpty)
        sends.end(third)
        #expect(sends.releasable().map(\.id) == ["b"])
        #expect(sends.isEmpty)
    }
}
