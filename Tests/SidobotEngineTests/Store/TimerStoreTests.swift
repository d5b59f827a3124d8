import Foundation
import LuaSandbox
@testable import SidobotEngine
import Testing

/// The store keeps each timer's fields and payload bytes in one compact box: what comes out
/// (fired, cancelled, listed, snapshotted) must be exactly what went in.
@Suite("Timer store")
struct TimerStoreTests {
    static let now = UnixTime(milliseconds: 1_767_225_600_000)

    static func record(_ id: UInt64, rule: String = "reminders", name: String = "later", payload: LuaValue,
                       dueIn seconds: Int64, late: TimerLatePolicy = .default) throws -> TimerRecord {
        try TimerRecord(id: TimerID(id), rule: rule, name: name, payload: payload, due: now + .seconds(seconds), createdAt: now, late: late)
    }

    /// Payloads of every size class a box can have (empty text included), long rule and timer names
    /// (heap-allocated strings), and both late policies with and without a maximum lateness.
    static func assortedRecords() throws -> [TimerRecord] {
        let long = String(repeating: "ž", count: 3000)
        var records = [
            try record(1, payload: .object(["n": .integer(1)]), dueIn: 30),
            try record(2, rule: "a-rule-name-longer-than-fifteen-bytes", name: "a-timer-name-longer-than-fifteen",
                       payload: .object(["text": .string(long), "list": .array([.integer(1), .double(2.5), .bool(true)])]), dueIn: 10,
                       late: TimerLatePolicy(mode: .skip, maxLateness: .seconds(90))),
            try record(3, payload: .null, dueIn: 20, late: TimerLatePolicy(mode: .fire, maxLateness: .milliseconds(250))),
            try record(4, payload: .string("ünïcödé ✓"), dueIn: 20, late: TimerLatePolicy(mode: .skip, maxLateness: nil)),
        ]
        records.append(TimerRecord(id: TimerID(5), rule: "reminders", name: "empty", payloadJSON: [], due: now + .seconds(5),
                                   createdAt: now, late: .default))
        return records
    }

    @Test func whatGoesInComesOutWhenTimersFire() throws {
        let records = try Self.assortedRecords()
        var store = TimerStore()
        for record in records { store.add(record) }
        #expect(store.count == records.count)
        for record in records { #expect(store[record.id] == record) }
        var fired: [TimerRecord] = []
        while let record = store.popDue(now: Self.now + .seconds(60)) { fired.append(record) }
        // By due time, then in the order they were set.
        #expect(fired.map(\.id.rawValue) == [5, 2, 3, 4, 1])
        #expect(Set(fired) == Set(records))
        #expect(store.count == 0)
        #expect(store.nextDue == nil)
    }

    @Test func cancelledTimersComeOutWholeAndNeverFire() throws {
        let records = try Self.assortedRecords()
        var store = TimerStore()
        for record in records { store.add(record) }
        #expect(store.remove(TimerID(2)) == records[1])
        #expect(store.remove(TimerID(2)) == nil)
        #expect(store[TimerID(2)] == nil)
        var fired: [UInt64] = []
        while let record = store.popDue(now: Self.now + .seconds(60)) { fired.append(record.id.rawValue) }
        #expect(fired == [5, 3, 4, 1])
    }

    @Test func pendingListsOneRulesTimersByNameInDueOrder() throws {
        var store = TimerStore()
        for record in try Self.assortedRecords() { store.add(record) }
        store.add(try Self.record(9, rule: "other", payload: .integer(9), dueIn: 1))
        #expect(store.pending(rule: "reminders").map(\.id.rawValue) == [5, 3, 4, 1])
        #expect(store.pending(rule: "reminders", name: "later").map(\.id.rawValue) == [3, 4, 1])
        #expect(store.pending(rule: "other").map(\.payload) == [.integer(9)])
    }

    @Test func aSnapshotKeepsEveryFieldAndPayloadByte() throws {
        let records = try Self.assortedRecords()
        var data = StoreData(deadLetterCapacity: 10)
        for record in records { data.timers.add(record) }
        let bytes = try SnapshotCodec.encode(data, dedupe: DedupeSet(retention: 86_400), sequence: 0, savedAt: Self.now)
        var restored = StoreData(deadLetterCapacity: 10)
        var dedupe = DedupeSet(retention: 86_400)
        _ = try SnapshotCodec.decode(bytes, into: &restored, dedupe: &dedupe)
        #expect(restored.timers.count == records.count)
        for record in records {
            let back = try #require(restored.timers[record.id] as TimerRecord?)
            // The empty payload text is written as `null` and read back as its JSON form.
            #expect(back.payload == record.payload)
            #expect(back.rule == record.rule && back.name == record.name && back.due == record.due)
            #expect(back.createdAt == record.createdAt && back.late == record.late)
        }
        #expect(restored.timers.nextID == 6)
    }
}
