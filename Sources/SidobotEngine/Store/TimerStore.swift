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

/// A pending timer as the store keeps it: the record's fields and the payload's bytes in one
/// allocation. Records never change once made, so the persistent map holds one word per timer
/// (a map whose values are the records themselves moved kilobytes per insert), and the payload
/// needs no array of its own (a second allocation of ~48 bytes for a small payload: 1M timers
/// measured 283 B each before, docs/PERFORMANCE.md).
///
/// A `ManagedBuffer` cannot be `Sendable`; ``TimerRecordBox/Shared`` says it for the store.
final class TimerRecordBox: ManagedBuffer<TimerRecordBox.Head, UInt8> {
    /// The box as the store's map holds it. `@unchecked Sendable`: nothing in a box is written
    /// after ``make(_:)`` returns, and the head's fields are themselves `Sendable`.
    struct Shared: @unchecked Sendable {
        let box: TimerRecordBox
    }

    /// Everything but the payload's bytes, which follow it in the same allocation. Laid out
    /// tightly (the late policy as milliseconds and a flag, the journal's own resolution; the
    /// byte count in 32 bits): a box is one malloc size class smaller than with the record's
    /// own types (`Duration?` alone takes 17 bytes).
    struct Head: Sendable {
        let id: TimerID
        let rule: String
        let name: String
        let due: UnixTime
        let createdAt: UnixTime
        /// `max_lateness` in milliseconds; `Int64.min` when the timer has none.
        let maxLatenessMilliseconds: Int64
        let payloadCount: UInt32
        let skipsWhenLate: Bool

        var late: TimerLatePolicy {
            TimerLatePolicy(mode: skipsWhenLate ? .skip : .fire,
                            maxLateness: maxLatenessMilliseconds == .min ? nil : .milliseconds(maxLatenessMilliseconds))
        }
    }

    static func make(_ record: TimerRecord) -> TimerRecordBox {
        let bytes = record.payloadJSON
        let head = Head(id: record.id, rule: record.rule, name: record.name, due: record.due, createdAt: record.createdAt,
                        maxLatenessMilliseconds: record.late.maxLateness?.clampedMilliseconds ?? .min,
                        payloadCount: UInt32(bytes.count), skipsWhenLate: record.late.mode == .skip)
        let buffer = create(minimumCapacity: bytes.count) { _ in head }
        buffer.withUnsafeMutablePointerToElements { elements in
            bytes.withUnsafeBufferPointer { source in
                if let base = source.baseAddress { elements.initialize(from: base, count: source.count) }
            }
        }
        return unsafeDowncast(buffer, to: TimerRecordBox.self)
    }

    /// The payload's JSON text, read in place.
    func withPayload<Result, Failure: Error>(_ body: (UnsafeBufferPointer<UInt8>) throws(Failure) -> Result) throws(Failure) -> Result {
        let count = Int(header.payloadCount)
        let pointer = withUnsafeMutablePointerToElements { UnsafePointer($0) }
        // The elements live as long as `self`, which the caller holds for the call.
        return try withExtendedLifetime(self) { () throws(Failure) -> Result in
            try body(UnsafeBufferPointer(start: pointer, count: count))
        }
    }

    var record: TimerRecord {
        let head = header
        return TimerRecord(id: head.id, rule: head.rule, name: head.name, payloadJSON: withPayload { Array($0) },
                           due: head.due, createdAt: head.createdAt, late: head.late)
    }

    /// The record's journal and snapshot fields, written without copying the payload out.
    func writeFields(into w: inout JSONObjectWriter) {
        let head = header
        withPayload { payload in
            TimerRecord.writeFields(id: head.id, rule: head.rule, name: head.name, payload: payload, due: head.due,
                                    createdAt: head.createdAt, late: head.late, into: &w)
        }
    }
}

/// Every pending timer: the records by id, and the ``TimerQueue`` that orders them by due time.
public struct TimerStore: Sendable {
    private var records: TreeDictionary<TimerID, TimerRecordBox.Shared> = [:]
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
        records[record.id] = TimerRecordBox.Shared(box: TimerRecordBox.make(record))
        _ = queue.schedule(record.id, due: record.due)
        if record.id.rawValue >= nextID { nextID = record.id.rawValue + 1 }
    }

    /// Removes a pending timer. Returns it if it was pending.
    @discardableResult
    public mutating func remove(_ id: TimerID) -> TimerRecord? {
        guard let record = records.removeValue(forKey: id)?.box.record else { return nil }
        _ = queue.cancel(id)
        return record
    }

    public subscript(id: TimerID) -> TimerRecord? { records[id]?.box.record }

    /// Every pending timer, in no particular order (read as it is iterated: no copy of the set).
    public var all: some Sequence<TimerRecord> { records.values.lazy.map(\.box.record) }

    /// Writes every pending timer's fields, one object each, in no particular order (snapshots:
    /// the payloads are copied straight from the store into the output, not into records first).
    func forEachTimer(_ body: (TimerRecordBox) throws(JSONCodec.Error) -> Void) throws(JSONCodec.Error) {
        for shared in records.values { try body(shared.box) }
    }

    /// When the earliest pending timer is due.
    public var nextDue: UnixTime? { queue.next?.due }

    /// Takes the earliest timer due at or before `now` out of the store.
    public mutating func popDue(now: UnixTime) -> TimerRecord? {
        while let entry = queue.popNext(dueBy: now) {
            if let record = records.removeValue(forKey: entry.id)?.box.record { return record }
        }
        return nil
    }

    /// A rule's pending timers, optionally only those with `name`, by due time.
    public func pending(rule: String, name: String? = nil) -> [TimerRecord] {
        records.values.lazy.map(\.box).filter { $0.header.rule == rule && (name == nil || $0.header.name == name) }.map(\.record)
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
