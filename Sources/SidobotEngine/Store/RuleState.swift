import HashTreeCollections
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

    public init() {}

    public func get(rule: String, key: String, now: UnixTime) -> LuaValue? {
        guard let entry = rules[rule]?[key], entry.isLive(at: now) else { return nil }
        return entry.value
    }

    public mutating func set(rule: String, key: String, entry: StateEntry) {
        rules[rule, default: [:]][key] = entry
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

    /// Drops expired entries. Returns how many.
    @discardableResult
    public mutating func sweep(now: UnixTime) -> Int {
        var removed = 0
        for (rule, map) in rules {
            let expired = map.filter { !$0.value.isLive(at: now) }
            guard !expired.isEmpty else { continue }
            var kept = map
            for (key, _) in expired { kept.removeValue(forKey: key) }
            removed += expired.count
            rules[rule] = kept.isEmpty ? nil : kept
        }
        return removed
    }

    /// The number of stored keys, expired ones not yet swept included.
    public var count: Int { rules.values.reduce(0) { $0 + $1.count } }
}
