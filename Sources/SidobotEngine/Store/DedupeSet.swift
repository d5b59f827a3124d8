import DequeModule
import HashTreeCollections

/// The ids of accepted inbound events, remembered for a retention period so a redelivery is
/// acknowledged and not processed twice.
///
/// Bounded by age, not by a small count: Sidobe retries a webhook for a while, and a burst of
/// traffic must not push out ids that are still being retried. Ids are kept in arrival order in a
/// deque beside a persistent hash map, so pruning expired ids is O(expired), not a scan, and a
/// snapshot copies the map in O(1) (the deque is an index the live set keeps to itself).
public struct DedupeSet: Sendable {
    /// How long an id is remembered, in seconds.
    public let retention: Double
    private var order: Deque<(id: String, acceptedAt: Double)> = []
    private var ids: TreeDictionary<String, Double> = [:]

    public init(retention: Double) { self.retention = retention }

    /// Whether `id` was accepted within the retention period.
    public func contains(_ id: String) -> Bool { ids[id] != nil }

    /// Remembers `id` as accepted at `time`. Returns `false` if it was already remembered.
    @discardableResult
    public mutating func insert(_ id: String, at time: Double) -> Bool {
        if let first = ids.updateValue(time, forKey: id) {
            // Already remembered: keep the first acceptance time.
            ids[id] = first
            return false
        }
        order.append((id, time))
        return true
    }

    /// Forgets ids accepted before `now - retention`.
    public mutating func prune(now: Double) {
        let cutoff = now - retention
        while let first = order.first, first.acceptedAt < cutoff {
            order.removeFirst()
            if ids[first.id] == first.acceptedAt { ids[first.id] = nil }
        }
    }

    /// The number of remembered ids.
    public var count: Int { ids.count }

    /// Every remembered id with its acceptance time, in no particular order (for snapshots).
    public var entries: [(id: String, acceptedAt: Double)] { ids.map { ($0.key, $0.value) } }

    /// A copy for a snapshot: the ids and times, without the arrival-order index.
    var snapshotCopy: DedupeSet {
        var copy = self
        copy.order = []
        return copy
    }

    /// Remembers many ids at once, in any order (restoring a snapshot): the order index is rebuilt sorted.
    mutating func restore(_ restored: [(id: String, acceptedAt: Double)]) {
        for (id, time) in restored.sorted(by: { $0.acceptedAt < $1.acceptedAt }) { insert(id, at: time) }
    }
}

extension DedupeSet {
    /// Applies the part of a change that concerns accepted ids: the other half of
    /// ``StoreData/apply(_:)``, for replay and for the intake's own acceptances alike.
    mutating func apply(_ mutation: Mutation) {
        switch mutation {
        case .batch(let mutations):
            for change in mutations { apply(change) }
        case .eventAccepted(let event, true, _):
            insert(event.id, at: event.at.secondsValue)
        default:
            break
        }
    }
}
