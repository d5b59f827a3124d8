import Foundation
@testable import SidobotEngine
import Testing

/// Events accepted together (one group-committed record) are redelivered after a restart in the
/// order they were accepted, not in the inflight map's hash order.
@Suite("Inflight order")
struct InflightOrderTests {
    static func hooks(_ count: Int) -> [EngineEvent] {
        (0..<count).map { EngineEvent(id: "h-\($0)", kind: .hook(name: "n", body: .integer(Int64($0)), contentType: "application/json"),
                                      at: UnixTime(milliseconds: 1_767_225_600_000)) }
    }

    @Test func eventsAcceptedInOneRecordKeepTheirOrderThroughReplayAndSnapshot() throws {
        let first = Self.hooks(40)
        var data = StoreData(deadLetterCapacity: 10)
        data.apply(.batch(first.map { .eventAccepted($0, dedupe: true, movesLedger: false) }))
        #expect(data.inflightInOrder.map(\.event.id) == first.map(\.id))

        var restored = StoreData(deadLetterCapacity: 10)
        var dedupe = DedupeSet(retention: 86_400)
        _ = try SnapshotCodec.decode(try SnapshotCodec.encode(data, dedupe: DedupeSet(retention: 86_400), sequence: 1, savedAt: UnixTime(milliseconds: 0)),
                                     into: &restored, dedupe: &dedupe)
        // Events journaled after the snapshot come after the ones it holds.
        let later = (40..<60).map { EngineEvent(id: "h-\($0)", kind: .engineStart, at: UnixTime(milliseconds: 0)) }
        restored.apply(.batch(later.map { .eventAccepted($0, dedupe: false, movesLedger: true) }))
        #expect(restored.inflightInOrder.map(\.event.id) == (first + later).map(\.id))
    }
}
