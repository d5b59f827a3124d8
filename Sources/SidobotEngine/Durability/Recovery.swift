import LuaSandbox

/// Start-up: the latest snapshot, then every journal record after it, applied through the same
/// functions the live engine applies changes with (``StoreData/apply(_:)`` and
/// ``DedupeSet/apply(_:)``), so the recovered store is the store that was running.
///
/// Refuses, naming the file and line, anything corrupt but a torn last record, and writes nothing
/// over what it could not read.
struct Recovery {
    /// What start-up found.
    struct Report: Sendable {
        var snapshotSequence: UInt64?
        var replayedRecords = 0
        var tornTail: Int?
        /// The sequence number of the last record: where appending continues.
        var lastSequence: UInt64 = 0
    }

    var data: StoreData
    var dedupe: DedupeSet

    /// Reads `journal` into `data` and `dedupe` (empty stores carrying the retention settings).
    mutating func recover(from journal: any Journal) throws(DurabilityError) -> Report {
        var report = Report()
        var sequence: UInt64 = 0
        if let bytes = try journal.readSnapshot() {
            do {
                sequence = try SnapshotCodec.decode(bytes, into: &data, dedupe: &dedupe)
            } catch {
                throw DurabilityError(path: (journal as? FileJournal)?.snapshotPath ?? journal.location,
                                      reason: "corrupt snapshot: \(error.description); fix or move the file away to start (state would be lost)")
            }
            report.snapshotSequence = sequence
        }
        let snapshotSequence = sequence
        var data = self.data, dedupe = self.dedupe
        let location = journal.location
        report.tornTail = try journal.readRecords(after: snapshotSequence) { (line) throws(DurabilityError) in
            let value: LuaValue
            do {
                value = try JSONCodec.decode(bytes: line.bytes)
            } catch {
                throw DurabilityError(path: location, line: line.number, reason: "corrupt journal record: \(error)")
            }
            guard case .integer(let seq)? = value.objectValue?["seq"] else {
                throw DurabilityError(path: location, line: line.number, reason: "journal record without a sequence number")
            }
            let next = UInt64(seq)
            if next <= snapshotSequence { return }  // covered by the snapshot
            guard next == sequence + 1 else {
                throw DurabilityError(path: location, line: line.number,
                                      reason: "journal sequence jumps from \(sequence) to \(next): records are missing")
            }
            let mutation: Mutation
            do throws(RecordError) {
                mutation = try Mutation(journalValue: value)
            } catch {
                throw DurabilityError(path: location, line: line.number, reason: "corrupt journal record: \(error.description)")
            }
            data.apply(mutation)
            dedupe.apply(mutation)
            sequence = next
            report.replayedRecords += 1
        }?.count
        self.data = data
        self.dedupe = dedupe
        report.lastSequence = sequence
        return report
    }
}
