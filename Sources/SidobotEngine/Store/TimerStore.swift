import HashTreeCollections
import LuaSandbox

/// A durable timer: a name and a JSON payload, never a closure, so it survives restarts and reloads.
public struct TimerRecord: Sendable, Hashable {
    public var id: TimerID
    /// The rule that scheduled it; it fires into that rule's `on("timer.NAME")` handlers.
    public var rule: String
    public var name: String
    /// The payload as the JSON text it is journaled as: a timer may wait for days and its payload
    /// is read only when it fires, so it is kept as a few bytes rather than a tree of values (a
    /// million pending timers: ~100 MB less) and journaled without encoding it again.
    public private(set) var payloadJSON: [UInt8]
    public var due: UnixTime
    public var createdAt: UnixTime
    public var late: TimerLatePolicy

    /// The payload, decoded.
    public var payload: LuaValue { (try? JSONCodec.decode(bytes: payloadJSON)) ?? .null }

    /// - Throws: ``JSONCodec/Error`` when the payload has no JSON form (NaN, infinities, nesting too deep).
    public init(id: TimerID, rule: String, name: String, payload: LuaValue, due: UnixTime, createdAt: UnixTime,
                late: TimerLatePolicy) throws(JSONCodec.Error) {
        var json: [UInt8] = []
        try JSONCodec.encode(payload, into: &json)
        self.init(id: id, rule: rule, name: name, payloadJSON: json, due: due, createdAt: createdAt, late: late)
    }

    init(id: TimerID, rule: String, name: String, payloadJSON: [UInt8], due: UnixTime, createdAt: UnixTime, late: TimerLatePolicy) {
        self.id = id
        self.rule = rule
        self.name = name
        self.payloadJSON = payloadJSON
        self.due = due
        self.createdAt = createdAt
        self.late = late
    }
}

/// A timer record in a box of its own: records never change once made, and a persistent map whose
/// values are one word moves far less memory per insert than one whose values are the records
/// themselves (docs/PERFORMANCE.md, timers: 2.4 µs → less a timer).
final class TimerRecordBox: Sendable {
    let record: TimerRecord
    init(_ record: TimerRecord) { self.record = record }
}

/// Every pending timer: the records by id, and the ``TimerQueue`` that orders them by due time.
public struct TimerStore: Sendable {
    private var records: TreeDictionary<TimerID, TimerRecordBox> = [:]
    private var queue = TimerQueue()
    /// The id the next timer gets. Ids are never reused, so a stale `timer.cancel(id)` cannot hit a new timer.
    public private(set) var nextID: UInt64 = 1

    public init() {}

    public mutating func allocateID() -> TimerID {
        defer { nextID += 1 }
        return TimerID(nextID)
    }

    /// Adds a timer (or re-adds one during replay).
    public mutating func add(_ record: TimerRecord) {
        records[record.id] = TimerRecordBox(record)
        _ = queue.schedule(record.id, due: record.due)
        if record.id.rawValue >= nextID { nextID = record.id.rawValue + 1 }
    }

    /// Removes a pending timer. Returns it if it was pending.
    @discardableResult
    public mutating func remove(_ id: TimerID) -> TimerRecord? {
        guard let record = records.removeValue(forKey: id)?.record else { return nil }
        _ = queue.cancel(id)
        return record
    }

    public subscript(id: TimerID) -> TimerRecord? { records[id]?.record }

    /// Every pending timer, in no particular order (read as it is iterated: no copy of the set).
    public var all: some Sequence<TimerRecord> { records.values.lazy.map(\.record) }

    /// When the earliest pending timer is due.
    public var nextDue: UnixTime? { queue.next?.due }

    /// Takes the earliest timer due at or before `now` out of the store.
    public mutating func popDue(now: UnixTime) -> TimerRecord? {
        while let entry = queue.popNext(dueBy: now) {
            if let record = records.removeValue(forKey: entry.id)?.record { return record }
        }
        return nil
    }

    /// A rule's pending timers, optionally only those with `name`, by due time.
    public func pending(rule: String, name: String? = nil) -> [TimerRecord] {
        records.values.lazy.map(\.record).filter { $0.rule == rule && (name == nil || $0.name == name) }
            .sorted { ($0.due, $0.id) < ($1.due, $1.id) }
    }

    public mutating func restoreNextID(_ value: UInt64) { nextID = max(nextID, value) }

    public var count: Int { records.count }

    /// A copy for a snapshot: the records (a persistent map), without the due-time queue, which
    /// the live store keeps to itself so that scheduling after the copy copies nothing.
    var snapshotCopy: TimerStore {
        var copy = self
        copy.queue = TimerQueue()
        return copy
    }
}
