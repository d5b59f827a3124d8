import Foundation
import LuaSandbox
@testable import SidobotEngine
import Testing

/// ``Durability`` and ``Recovery`` over a journal in memory.
@Suite("Durability")
struct DurabilityLayerTests {
    static let at = UnixTime(seconds: 1_767_225_600)

    static func hook(_ n: Int) -> Mutation {
        .eventAccepted(EngineEvent(id: "h-\(n)", kind: .hook(name: "n", body: .integer(Int64(n)), contentType: "application/json"), at: at),
                       dedupe: false, movesLedger: true)
    }

    @Test("records are numbered in one sequence whoever writes them; the engine's queued records ride with its next write")
    func numbering() throws {
        let contents = MemoryJournal.Contents()
        let durability = Durability.inMemory(contents)
        let store = Store(deadLetterCapacity: 10, durability: durability)
        try durability.write(Self.hook(1))  // the intake's
        store.applyQueued(.eventDone(id: "h-1"))
        #expect(contents.lines.count == 1, "a queued record waits for the engine's next write")
        try durability.write(Self.hook(2))  // the intake's again: it does not carry the engine's queue
        try store.commit(Self.hook(3))
        #expect(contents.sequences == [1, 2, 3, 4])
        #expect(contents.lines[2].contains(#""op":"event.done""#) && contents.lines[3].contains("h-3"))
        #expect(contents.appends == 3, "the queued record rides with the engine's next write")
        #expect(durability.sequence == 4)
    }

    @Test("a failed write leaves nothing half-written; the record it was asked to keep is written first next time")
    func failedWrite() throws {
        let contents = MemoryJournal.Contents()
        let durability = Durability.inMemory(contents)
        try durability.write(Self.hook(1))
        contents.failNextAppend()
        #expect(throws: DurabilityError.self) { try durability.write(Self.hook(2), keepOnFailure: true) }
        #expect(contents.sequences == [1])
        #expect(durability.sequence == 1)
        try durability.write(Self.hook(3))
        #expect(contents.sequences == [1, 2, 3])
        #expect(contents.lines[1].contains("h-2") && contents.lines[2].contains("h-3"))
    }

    @Test("a snapshot covers the queued records too, and replay skips what it covers")
    func snapshotAndReplay() throws {
        let contents = MemoryJournal.Contents()
        let durability = Durability.inMemory(contents)
        var data = StoreData(deadLetterCapacity: 10)
        for n in 1...3 {
            let record = Self.hook(n)
            try durability.write(record)
            data.apply(record)
        }
        // A write that failed leaves its records queued; the snapshot writes them first.
        contents.failNextAppend()
        #expect(throws: DurabilityError.self) { try durability.write(.eventDone(id: "h-1"), keepOnFailure: true) }
        data.apply(.eventDone(id: "h-1"))
        let writer = try #require(durability.beginSnapshot())
        #expect(writer.sequence == 4)
        try writer.write(try SnapshotCodec.encode(data.snapshotCopy, dedupe: DedupeSet(retention: 60), sequence: writer.sequence, savedAt: Self.at))
        try durability.finishSnapshot(writer, succeeded: true)
        try durability.write(.eventDone(id: "h-2"))

        var recovery = Recovery(data: StoreData(deadLetterCapacity: 10), dedupe: DedupeSet(retention: 60))
        let report = try recovery.recover(from: MemoryJournal(contents))
        #expect(report.snapshotSequence == 4)
        #expect(report.replayedRecords == 1)
        #expect(report.lastSequence == 5)
        #expect(recovery.data.inflightInOrder.map(\.event.id) == ["h-3"])
    }

    @Test("a gap in the sequence is refused with the line named")
    func gap() throws {
        let broken = MemoryJournal.Contents()
        try Durability.inMemory(broken).write(Self.hook(1))
        // Record 3 right after record 1.
        var bytes: [UInt8] = []
        try Self.hook(3).appendJournalRecord(sequence: 3, to: &bytes)
        try MemoryJournal(broken).append(bytes + [UInt8(ascii: "\n")], through: 3)
        var recovery = Recovery(data: StoreData(deadLetterCapacity: 10), dedupe: DedupeSet(retention: 60))
        #expect {
            _ = try recovery.recover(from: MemoryJournal(broken))
        } throws: { error in
            (error as? DurabilityError)?.description == "memory:2: journal sequence jumps from 1 to 3: records are missing"
        }
    }

    @Test("after close a write is refused, not dropped")
    func closed() throws {
        let durability = Durability.inMemory()
        try durability.close()
        #expect(throws: DurabilityError.self) { try durability.write(Self.hook(1)) }
    }
}
