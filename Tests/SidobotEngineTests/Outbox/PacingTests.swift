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
        var bucket = TokenBucket(rate: 8, burst: 1, minimumRate: 1, now: 0)
        for _ in 0..<20 { bucket.throttled(now: 0) }
        #expect(bucket.currentRate == 1)
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
