import DequeModule

/// The ids of accepted inbound events, remembered for a retention period so a redelivery is
/// acknowledged and not processed twice.
///
/// Bounded by age, not by a small count: Sidobe retries a webhook for a while, and a burst of
/// traffic must not push out ids that are still being retried. Ids are kept in arrival order in a
/// deque beside a hash set, so pruning expired ids is O(expired), not a scan.
public struct DedupeSet: Sendable {
    /// How long an id is remembered, in seconds.
    public let retention: Double
    private var order: Deque<(id: String, acceptedAt: Double)> = []
    private var ids: [String: Double] = [:]

    public init(retention: Double) { self.retention = retention }

    /// Whether `id` was accepted within the retention period.
    public func contains(_ id: String) -> Bool { ids[id] != nil }

    /// Remembers `id` as accepted at `time`. Returns `false` if it was already remembered.
    @discardableResult
    public mutating func insert(_ id: String, at time: Double) -> Bool {
        // One hash of the id, not two: this is on every webhook's path.
        var inserted = false
        _ = { (slot: inout Double?) in
            if slot == nil {
                slot = time
                inserted = true
            }
        }(&ids[id])
        guard inserted else { return false }
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

    /// Every remembered id with its acceptance time, oldest first (for snapshots).
    public var entries: [(id: String, acceptedAt: Double)] { Array(order) }
}
