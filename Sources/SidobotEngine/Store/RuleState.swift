import HashTreeCollections
import HeapModule
import LuaSandbox

/// One value in a rule's state, with its expiry.
public struct StateEntry: Sendable, Hashable {
    public var value: LuaValue
    /// When the entry stops existing, if it was set with a TTL.
    public var expiresAt: UnixTime?

    public init(value: LuaValue, expiresAt: UnixTime?) {
        self.value = value
        self.expiresAt = expiresAt
    }

    func isLive(at now: UnixTime) -> Bool { expiresAt.map { now < $0 } ?? true }
}

/// The `state.*` namespace of every rule: one key space per rule.
///
/// Persistent (hash-array-mapped trie) dictionaries make a snapshot copy O(1): the snapshot
/// serializer works on the copy while handlers keep writing, and a write after the copy duplicates
/// only the trie path it touches, not the whole map. Expired entries disappear lazily on read and
/// are swept before each snapshot; expiry needs no journal record because it follows from the
/// stored expiry time.
public struct RuleStateStore: Sendable {
    public private(set) var rules: [String: TreeDictionary<String, StateEntry>] = [:]
    /// Keys set with a TTL, by expiry: sweeping costs the expired keys, not a scan of every key.
    /// An entry whose key was set again since is stale and skipped. Derived (not in snapshots).
    private var expiries = Heap<Expiry>()

    public init() {}

    public func get(rule: String, key: String, now: UnixTime) -> LuaValue? {
        guard let entry = rules[rule]?[key], entry.isLive(at: now) else { return nil }
        return entry.value
    }

    public mutating func set(rule: String, key: String, entry: StateEntry) {
        let old = rules[rule, default: [:]].updateValue(entry, forKey: key)
        // An unchanged expiry is in the heap already: `state.incr` on a counter with a TTL keeps it,
        // and a million increments must not leave a million heap entries behind.
        if let expiry = entry.expiresAt, old?.expiresAt != expiry {
            expiries.insert(Expiry(at: expiry.milliseconds, rule: rule, key: key))
        }
    }

    @discardableResult
    public mutating func delete(rule: String, key: String) -> Bool {
        rules[rule]?.removeValue(forKey: key) != nil
    }

    /// The live keys of a rule starting with `prefix`, sorted.
    public func keys(rule: String, prefix: String, now: UnixTime) -> [String] {
        guard let map = rules[rule] else { return [] }
        return map.compactMap { $0.key.hasPrefix(prefix) && $0.value.isLive(at: now) ? $0.key : nil }.sorted()
    }

    /// Every live key and value of a rule (for `/api/state/{rule}` and tests).
    public func all(rule: String, now: UnixTime) -> [String: LuaValue] {
        var out: [String: LuaValue] = [:]
        for (key, entry) in rules[rule] ?? [:] where entry.isLive(at: now) { out[key] = entry.value }
        return out
    }

    /// Drops expired entries. Returns how many. Costs the number of keys that expired (and of
    /// TTLs that were overwritten since), never a scan of the whole state.
    @discardableResult
    public mutating func sweep(now: UnixTime) -> Int {
        var removed = 0
        while let top = expiries.min, top.at <= now.milliseconds {
            expiries.removeMin()
            // Only if the key still holds the value that expiry belonged to.
            guard let entry = rules[top.rule]?[top.key], entry.expiresAt?.milliseconds == top.at, !entry.isLive(at: now) else { continue }
            rules[top.rule]?.removeValue(forKey: top.key)
            if rules[top.rule]?.isEmpty == true { rules[top.rule] = nil }
            removed += 1
        }
        return removed
    }

    /// A copy for a snapshot: the entries, without the expiry index (which the live store keeps
    /// to itself, so writing after the copy copies nothing).
    var snapshotCopy: RuleStateStore {
        var copy = self
        copy.expiries = Heap()
        return copy
    }

    /// The number of stored keys, expired ones not yet swept included.
    public var count: Int { rules.values.reduce(0) { $0 + $1.count } }

    /// Entries in the expiry heap, stale ones included (tests check they do not pile up).
    var expiryHeapCount: Int { expiries.count }
}

/// A key set with a TTL, ordered by when it expires (swift-collections' `Heap` keeps them: it
/// measured faster than the hand-written binary heap it replaced, docs/PERFORMANCE.md).
struct Expiry: Comparable, Sendable {
    var at: Int64
    var rule: String
    var key: String

    static func < (a: Expiry, b: Expiry) -> Bool { a.at < b.at }
    /// Ordering only: two expiries at the same time are equal for the heap.
    static func == (a: Expiry, b: Expiry) -> Bool { a.at == b.at }
}
