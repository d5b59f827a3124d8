import LuaSandbox
@testable import SidobotEngine
import Testing

@Suite("Rule state TTLs")
struct RuleStateStoreTests {
    static let start = UnixTime(milliseconds: 1_767_225_600_000)

    /// `state.incr` keeps a counter's expiry: incrementing it must not grow the expiry heap.
    @Test func rewritingAKeyWithTheSameExpiryAddsNothingToSweep() {
        var store = RuleStateStore()
        let expiry = Self.start + .seconds(60)
        for n in 1...1000 { store.set(rule: "r", key: "count", entry: StateEntry(value: .integer(Int64(n)), expiresAt: expiry)) }
        #expect(store.expiryHeapCount == 1)
        #expect(store.get(rule: "r", key: "count", now: Self.start) == .integer(1000))
        #expect(store.sweep(now: expiry) == 1)
        #expect(store.get(rule: "r", key: "count", now: Self.start) == nil)
        #expect(store.expiryHeapCount == 0)
    }

    @Test func aNewExpiryIsSweptAtItsOwnTimeNotTheOldOne() {
        var store = RuleStateStore()
        store.set(rule: "r", key: "k", entry: StateEntry(value: .integer(1), expiresAt: Self.start + .seconds(10)))
        store.set(rule: "r", key: "k", entry: StateEntry(value: .integer(2), expiresAt: Self.start + .seconds(20)))
        #expect(store.sweep(now: Self.start + .seconds(10)) == 0)
        #expect(store.get(rule: "r", key: "k", now: Self.start + .seconds(10)) == .integer(2))
        #expect(store.sweep(now: Self.start + .seconds(20)) == 1)
        // Set again after the sweep with an expiry it had before: swept again.
        store.set(rule: "r", key: "k", entry: StateEntry(value: .integer(3), expiresAt: Self.start + .seconds(30)))
        store.delete(rule: "r", key: "k")
        store.set(rule: "r", key: "k", entry: StateEntry(value: .integer(4), expiresAt: Self.start + .seconds(30)))
        #expect(store.sweep(now: Self.start + .seconds(30)) == 1)
        #expect(store.count == 0)
    }
}
