import Foundation
import Logging
import LuaSandbox

/// The store with its durability: every change is journaled before it is acknowledged (a handler
/// run's changes are applied as it makes them and journaled when it suspends or ends);
/// snapshots are taken from a cheap copy and written off the engine's executor.
///
/// Owned by the engine actor (not thread-safe by itself). With no data folder it keeps everything
/// in memory only (`sidobot test`, unit tests).
final class EngineStore {
    struct Paths {
        let folder: String
        var journal: String { folder + "/journal.jsonl" }
        var snapshot: String { folder + "/snapshot.json" }
    }

    /// What start-up found in the data folder.
    struct RecoveryReport: Sendable {
        var snapshotSequence: UInt64?
        var replayedRecords = 0
        var tornTail: Int?
    }

    private(set) var data: StoreData
    let paths: Paths?
    private let fsync: FsyncPolicy
    private var journal: JournalWriter?
    private var scratch: [UInt8] = []
    /// Changes applied to ``data`` whose journal record is not written yet: deferred completion
    /// marks, and a run's changes whose write failed. Written first by the next journal write.
    private(set) var unwritten: [Mutation] = []
    private(set) var snapshotInProgress = false

    init(dataFolder: String?, fsync: FsyncPolicy, dedupeRetention: Double, deadLetterCapacity: Int) {
        data = StoreData(dedupeRetention: dedupeRetention, deadLetterCapacity: deadLetterCapacity)
        paths = dataFolder.map(Paths.init(folder:))
        self.fsync = fsync
    }

    /// Loads the snapshot, replays the journal past it, and opens the journal for appending.
    /// Refuses (naming the file and line) anything corrupt other than a torn last journal line,
    /// and writes nothing over a file it could not read.
    func recover() throws(DurabilityError) -> RecoveryReport {
        var report = RecoveryReport()
        guard let paths else { return report }
        var isFolder: ObjCBool = false
        if !FileManager.default.fileExists(atPath: paths.folder, isDirectory: &isFolder) {
            do {
                try FileManager.default.createDirectory(atPath: paths.folder, withIntermediateDirectories: true)
            } catch {
                throw DurabilityError(path: paths.folder, reason: "cannot create the data folder: \(error.localizedDescription)")
            }
        } else if !isFolder.boolValue {
            throw DurabilityError(path: paths.folder, reason: "is not a folder")
        }
        if let bytes = try SnapshotFile.read(path: paths.snapshot) {
            do {
                try SnapshotCodec.decode(bytes, into: &data)
            } catch {
                throw DurabilityError(path: paths.snapshot, reason: "corrupt snapshot: \(error.description); fix or move the file away to start (state would be lost)")
            }
            report.snapshotSequence = data.sequence
        }
        let contents = try JournalReader.read(path: paths.journal)
        report.tornTail = contents.tornTail?.count
        var lastSequence = data.sequence
        for line in contents.lines {
            let value: LuaValue
            do {
                value = try JSONCodec.decode(bytes: line.bytes)
            } catch {
                throw DurabilityError(path: paths.journal, line: line.number, reason: "corrupt journal record: \(error)")
            }
            guard case .integer(let seq)? = value.objectValue?["seq"] else {
                throw DurabilityError(path: paths.journal, line: line.number, reason: "journal record without a sequence number")
            }
            let sequence = UInt64(seq)
            if sequence <= data.sequence { continue }  // covered by the snapshot
            guard sequence == lastSequence + 1 else {
                throw DurabilityError(path: paths.journal, line: line.number,
                                      reason: "journal sequence jumps from \(lastSequence) to \(sequence): records are missing")
            }
            let mutation: Mutation
            do {
                mutation = try Mutation(journalValue: value)
            } catch {
                throw DurabilityError(path: paths.journal, line: line.number, reason: "corrupt journal record: \(error.description)")
            }
            data.apply(mutation)
            lastSequence = sequence
            report.replayedRecords += 1
        }
        journal = try JournalWriter(path: paths.journal, policy: fsync)
        return report
    }

    /// Journals `mutation` (fsynced under `always`), then applies it. Changes applied earlier but
    /// not written yet (``unwritten``) go first, in the same write.
    func commit(_ mutation: Mutation) throws(DurabilityError) {
        try write(mutation)
        data.apply(mutation)
    }

    /// Applies a change made by a handler run now; the engine journals it with the run's other
    /// changes (``commitApplied(_:)``) when the run gives up the engine: when it suspends in a
    /// `sidobe.*` call or ends. Nothing else runs on the engine in between, so no acknowledgement,
    /// snapshot or other run can see it unjournaled.
    func stage(_ mutation: Mutation) {
        data.applyUnsequenced(mutation)
    }

    /// Journals changes already applied (by ``stage(_:)``) as one record: they survive a crash
    /// together or not at all. If the journal cannot be written, they are kept and written before
    /// the next record (the error is rethrown for the caller to log).
    func commitApplied(_ mutations: [Mutation]) throws(DurabilityError) {
        guard !mutations.isEmpty else { return }
        let record = mutations.count == 1 ? mutations[0] : .batch(mutations)
        do {
            try write(record)
            data.sequence += 1
        } catch {
            unwritten.append(record)
            throw error
        }
    }

    /// Applies a change now and queues its record for the next journal write (``flushUnwritten()``,
    /// or any later record, which writes the queue first).
    ///
    /// For two kinds of change: accepted inputs, whose acknowledgement waits for the write (the
    /// engine's group commit: one `write(2)` for every webhook that arrived meanwhile); and the
    /// completion of runs that changed nothing, which may wait as long as it likes (if the process
    /// dies first, those runs run again after the restart and change nothing again).
    func applyQueued(_ mutation: Mutation) {
        data.applyUnsequenced(mutation)
        if journal != nil { unwritten.append(mutation) }
    }

    /// Whether changes are applied whose records are not written yet.
    var hasUnwritten: Bool { !unwritten.isEmpty && journal != nil }

    /// Writes the changes that were applied but not journaled yet, if any.
    func flushUnwritten() throws(DurabilityError) {
        guard !unwritten.isEmpty, journal != nil else {
            if journal == nil { unwritten.removeAll() }
            return
        }
        try write(nil)
    }

    /// The most changes one journal record holds: a bigger batch is written as several records,
    /// so that no line of the journal (read whole at start-up) grows without bound.
    static let maxChangesPerRecord = 10_000

    /// One `write(2)`: the unwritten changes (as batch records, applied already) and then
    /// `mutation` (applied by the caller once this returns), each with its sequence number.
    private func write(_ mutation: Mutation?) throws(DurabilityError) {
        guard let journal else {
            unwritten.removeAll()
            return
        }
        scratch.removeAll(keepingCapacity: scratch.capacity <= 1 << 20)
        var sequence = data.sequence
        var pending: [Mutation] = []
        var start = 0
        while start < unwritten.count {
            let end = min(unwritten.count, start + Self.maxChangesPerRecord)
            pending.append(end - start == 1 ? unwritten[start] : .batch(Array(unwritten[start..<end])))
            start = end
        }
        let unwrittenRecords = pending.count
        if let mutation { pending.append(mutation) }
        for record in pending {
            sequence += 1
            do {
                try record.appendJournalRecord(sequence: sequence, to: &scratch)
            } catch {
                throw DurabilityError(path: journal.path, reason: "cannot encode a journal record: \(error)")
            }
            scratch.append(UInt8(ascii: "\n"))
        }
        try journal.appendLines(scratch)
        if unwrittenRecords > 0 {
            unwritten.removeAll(keepingCapacity: unwritten.count <= 4096)
            data.sequence += UInt64(unwrittenRecords)
        }
    }

    /// Runs `body` on the data without journaling: only for derived, non-durable upkeep
    /// (pruning by age, sweeping expired keys) that replay reproduces by itself.
    func maintain(_ body: (inout StoreData) -> Void) { body(&data) }

    /// Takes the earliest timer due at or before `now` out of the pending set. The caller journals
    /// what became of it (fired as an event, or skipped), which replay applies the same way.
    func takeDueTimer(now: UnixTime) -> TimerRecord? { data.timers.popDue(now: now) }

    /// The once-a-second tick: writes queued records; under `everysec`, returns a descriptor whose
    /// fsync the caller runs off the engine's executor (see ``JournalWriter/takeSyncDescriptor()``).
    func syncJournal() throws(DurabilityError) -> Int32? {
        try flushUnwritten()
        guard fsync == .everysec else { return nil }
        return journal?.takeSyncDescriptor()
    }

    /// The journal, for the off-executor half of compaction (its ``JournalTail/copy(from:into:)``).
    var journalForCompaction: JournalWriter? { journal }

    /// Starts a snapshot: a cheap consistent copy and the journal position it covers.
    func beginSnapshot() -> (copy: StoreData, journalOffset: Int)? {
        guard paths != nil, let journal, !snapshotInProgress else { return nil }
        // The snapshot must not cover a change whose record is still to be written: its sequence
        // number would come after the snapshot's and replay would apply it twice.
        guard (try? flushUnwritten()) != nil else { return nil }
        snapshotInProgress = true
        return (data.snapshotCopy, journal.byteCount)
    }

    /// Finishes a snapshot whose file was written: drops the journal records it covers.
    func finishSnapshot(journalOffset: Int?) throws(DurabilityError) {
        snapshotInProgress = false
        if let journalOffset { try journal?.discard(before: journalOffset) }
    }

    /// Finishes a snapshot whose file was written and whose journal tail was copied off the
    /// executor into `temp` up to `copiedUpTo`: the short second half of the compaction.
    func finishSnapshot(compactedInto temp: String, copiedUpTo: Int) throws(DurabilityError) {
        snapshotInProgress = false
        try journal?.finishCompaction(temp: temp, copiedUpTo: copiedUpTo)
    }

    /// Ends a snapshot that failed: the journal keeps everything.
    func abandonSnapshot() { snapshotInProgress = false }

    /// Writes a snapshot synchronously (shutdown), then empties the journal.
    func snapshotNow(at now: UnixTime) throws(DurabilityError) {
        guard let paths, let started = beginSnapshot() else { return }
        do {
            let bytes = try SnapshotCodec.encode(started.copy, savedAt: now)
            try SnapshotFile.write(bytes, to: paths.snapshot)
        } catch let error as DurabilityError {
            snapshotInProgress = false
            throw error
        } catch {
            snapshotInProgress = false
            throw DurabilityError(path: paths.snapshot, reason: "cannot encode the snapshot: \(error)")
        }
        try finishSnapshot(journalOffset: started.journalOffset)
    }

    func close() throws(DurabilityError) {
        try flushUnwritten()
        try journal?.close()
    }
}
