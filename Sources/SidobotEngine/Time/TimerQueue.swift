/// The id of a durable timer: an engine-assigned sequence number, never reused.
///
/// Rules see it as a string, `"t-42"` (what `timer.after` returns and `timer.cancel` takes);
/// `description` and `init?(_:)` convert both ways. The engine hands out ids from a counter
/// it journals, so ids stay unique across restarts and sort in creation order.
public struct TimerID: Hashable, Comparable, Sendable, CustomStringConvertible, LosslessStringConvertible {
    public var rawValue: UInt64

    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    /// Parses the rule-facing form `"t-42"`; nil for anything else (`"t-"`, `"42"`, `"t-+1"`).
    public init?(_ description: String) {
        guard description.hasPrefix("t-") else { return nil }
        let digits = description.dropFirst(2)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let value = UInt64(digits) else { return nil }
        self.rawValue = value
    }

    public var description: String { "t-\(rawValue)" }

    public static func < (lhs: TimerID, rhs: TimerID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The in-memory index of pending durable timers: which timer fires next.
///
/// Order: by due time, then by the order `schedule` was called (so two timers due at the same
/// millisecond fire in the order the rules set them). To keep that order across restarts, the
/// engine re-schedules timers from the snapshot and journal in creation order (by `TimerID`).
///
/// ## Structure, and why
/// A 4-ary min-heap of 24-byte nodes `(due, sequence, id)` in one contiguous array, a `Set` of
/// pending ids, and lazy deletion:
/// - schedule is O(log₄ n) with one comparison per level; pop is O(log₄ n) over children that
///   sit next to each other in memory (4 × 24 bytes ≈ 1.5 cache lines), which beats a binary
///   heap's twice-as-deep pointer-free walk; no per-timer allocation, no pointers;
/// - cancel only removes the id from the pending set and remembers it in `cancelled`; its node
///   stays in the heap until it reaches the top (then it is dropped) or until dead nodes outnumber
///   live ones, when the heap is rebuilt in O(n) (amortised O(1) per cancel; the heap never holds
///   more than twice the pending timers plus a constant);
/// - `contains` and `cancel` are hash look-ups; the head of the heap is always a pending timer,
///   so `next` is O(1).
/// Memory per pending timer: a 24-byte node (up to twice that while the array has growth room)
/// plus 11–22 bytes of hash set (8-byte buckets, at most 3/4 full, power-of-two sized); measured
/// at 1M timers: 42 bytes each (see `approximateMemoryBytes`). After a burst drains, storage
/// shrinks again once it is at most 1/8 used. A hierarchical timing wheel would make schedule O(1), but timers
/// here are due anywhere from milliseconds to months ahead at millisecond resolution, so it
/// needs several levels, re-sorting on cascade to keep the tie order, and a scan to answer
/// "when is the next one?" (which the engine asks to know how long to sleep). At 1M timers the
/// heap costs well under a microsecond per operation, which is ample.
///
/// Re-scheduling an id that is still in the heap (pending, or cancelled and not yet purged)
/// removes its old node eagerly, in O(n): the engine assigns fresh ids to new timers, so this
/// only happens when a journal replays the same timer twice.
///
/// A value type: the engine keeps it inside the actor that owns the scheduler.
public struct TimerQueue: Sendable {
    public struct Entry: Sendable, Hashable, CustomStringConvertible {
        public var id: TimerID
        public var due: UnixTime

        public init(id: TimerID, due: UnixTime) {
            self.id = id
            self.due = due
        }

        public var description: String { "\(id)@\(due)" }
    }

    struct Node {
        var due: Int64
        var sequence: UInt64
        var id: UInt64

        @inline(__always) func precedes(_ other: Node) -> Bool {
            due < other.due || (due == other.due && sequence < other.sequence)
        }
    }

    private var heap: [Node] = []
    /// Ids with a live node in the heap.
    private var pending: Set<UInt64> = []
    /// Ids whose (dead) node is still in the heap. Disjoint from `pending`; an id has at most one node.
    private var cancelled: Set<UInt64> = []
    private var nextSequence: UInt64 = 0

    public init() {}

    /// Reserves room for `minimumCapacity` timers up front (start-up with a known snapshot size).
    public init(minimumCapacity: Int) {
        heap.reserveCapacity(minimumCapacity)
        pending.reserveCapacity(minimumCapacity)
    }

    /// Pending timers.
    public var count: Int { pending.count }
    public var isEmpty: Bool { pending.isEmpty }

    public func contains(_ id: TimerID) -> Bool {
        pending.contains(id.rawValue)
    }

    /// The timer that fires next (earliest due; first scheduled among equals), without removing it.
    public var next: Entry? {
        heap.first.map { Entry(id: TimerID($0.id), due: UnixTime(milliseconds: $0.due)) }
    }

    /// Adds a timer; a pending timer with the same id is replaced (moved to `due`, and behind
    /// timers already due at the same time). Returns true if it replaced one.
    @discardableResult
    public mutating func schedule(_ id: TimerID, due: UnixTime) -> Bool {
        let raw = id.rawValue
        let replaced = !pending.insert(raw).inserted
        if replaced {
            removeNode(id: raw)
        } else if !cancelled.isEmpty, cancelled.remove(raw) != nil {
            removeNode(id: raw)
        }
        heap.append(Node(due: due.milliseconds, sequence: nextSequence, id: raw))
        nextSequence &+= 1
        siftUp(heap.count - 1)
        return replaced
    }

    /// Cancels a pending timer; false if `id` was not pending (already fired, cancelled, unknown).
    @discardableResult
    public mutating func cancel(_ id: TimerID) -> Bool {
        let raw = id.rawValue
        guard pending.remove(raw) != nil else { return false }
        if heap[0].id == raw {
            removeTop()
            dropDeadTop()
        } else {
            cancelled.insert(raw)
            if cancelled.count > max(pending.count, 1024) { compact() }
        }
        return true
    }

    /// Removes and returns the next timer if it is due at or before `now`.
    public mutating func popNext(dueBy now: UnixTime) -> Entry? {
        guard let top = heap.first, top.due <= now.milliseconds else { return nil }
        removeTop()
        pending.remove(top.id)
        dropDeadTop()
        shrinkIfSparse()
        return Entry(id: TimerID(top.id), due: UnixTime(milliseconds: top.due))
    }

    /// Removes and returns every timer due at or before `now`, in firing order.
    public mutating func popAll(dueBy now: UnixTime) -> [Entry] {
        var entries: [Entry] = []
        while let entry = popNext(dueBy: now) { entries.append(entry) }
        return entries
    }

    public mutating func removeAll() {
        heap = []
        pending = []
        cancelled = []
    }

    /// The pending timers in firing order (O(n log n); for snapshots, `timer.pending`, debugging).
    public func sortedEntries() -> [Entry] {
        heap.filter { !cancelled.contains($0.id) }
            .sorted { $0.precedes($1) }
            .map { Entry(id: TimerID($0.id), due: UnixTime(milliseconds: $0.due)) }
    }

    /// An estimate of the bytes this queue holds (heap array and hash sets, by capacity), for metrics.
    public var approximateMemoryBytes: Int {
        // A native Set keeps a power-of-two bucket count with a 3/4 maximum load:
        // 8 bytes per bucket plus one bit of occupancy map.
        func setBytes(_ capacity: Int) -> Int {
            capacity == 0 ? 0 : Int((Double(capacity) / 0.75).rounded(.up) * 8.125)
        }
        return heap.capacity * MemoryLayout<Node>.stride + setBytes(pending.capacity) + setBytes(cancelled.capacity)
    }

    /// Nodes in the heap, live and dead (tests check that dead ones do not pile up).
    var storageCount: Int { heap.count }

    // MARK: Heap internals

    /// Pops dead nodes off the top so that `heap.first` is always pending.
    private mutating func dropDeadTop() {
        while !cancelled.isEmpty, let top = heap.first, cancelled.contains(top.id) {
            cancelled.remove(top.id)
            removeTop()
        }
    }

    /// Rebuilds the heap without dead nodes: O(n), after at least max(n/2, 1024) cancels.
    private mutating func compact() {
        var live: [Node] = []
        live.reserveCapacity(pending.count + pending.count / 4)
        for node in heap where !cancelled.contains(node.id) {
            live.append(node)
        }
        heap = live
        cancelled = []
        heapify()
    }

    /// Gives memory back after a burst: when the heap or the pending set is at most 1/8 full.
    private mutating func shrinkIfSparse() {
        if heap.capacity > 8 * (heap.count + 512) {
            var smaller: [Node] = []
            smaller.reserveCapacity(heap.count * 2)
            smaller.append(contentsOf: heap)
            heap = smaller
        }
        if pending.capacity > 8 * (pending.count + 512) {
            var smaller = Set<UInt64>(minimumCapacity: pending.count * 2)
            smaller.formUnion(pending)
            pending = smaller
        }
    }

    private mutating func removeTop() {
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
    }

    /// Removes the node of `id` wherever it is: O(n) search.
    private mutating func removeNode(id: UInt64) {
        guard let index = heap.firstIndex(where: { $0.id == id }) else { return }
        let last = heap.removeLast()
        guard index < heap.count else { return }
        heap[index] = last
        if index > 0 && last.precedes(heap[(index - 1) / 4]) {
            siftUp(index)
        } else {
            siftDown(index)
        }
    }

    private mutating func heapify() {
        guard heap.count > 1 else { return }
        var index = (heap.count - 2) / 4
        while index >= 0 {
            siftDown(index)
            index -= 1
        }
    }

    private mutating func siftUp(_ start: Int) {
        heap.withUnsafeMutableBufferPointer { nodes in
            var index = start
            let node = nodes[index]
            while index > 0 {
                let parent = (index - 1) / 4
                guard node.precedes(nodes[parent]) else { break }
                nodes[index] = nodes[parent]
                index = parent
            }
            nodes[index] = node
        }
    }

    private mutating func siftDown(_ start: Int) {
        heap.withUnsafeMutableBufferPointer { nodes in
            let count = nodes.count
            var index = start
            let node = nodes[index]
            while true {
                let firstChild = 4 * index + 1
                guard firstChild < count else { break }
                var best = firstChild
                var child = firstChild + 1
                let end = min(firstChild + 4, count)
                while child < end {
                    if nodes[child].precedes(nodes[best]) { best = child }
                    child += 1
                }
                guard nodes[best].precedes(node) else { break }
                nodes[index] = nodes[best]
                index = best
            }
            nodes[index] = node
        }
    }
}
