import Synchronization

/// The one way records reach the journal, from the engine and from the intake alike.
///
/// It numbers the records (their sequence numbers are the journal's positions, which snapshots
/// and replay go by), encodes them, and appends them under one lock, so two executors writing
/// at once still produce one ordered journal. Changes may also be *queued*: applied already and
/// written by the next write, first (deferred completion marks, and records whose write
/// failed, which must not be lost). With no journal (no data folder) records are numbered and
/// dropped.
///
/// A write holds the lock for one `write(2)` (and, under `always`, its fsync): microseconds, so
/// the engine and the intake never wait for each other long.
final class Durability: Sendable {
    private struct State {
        var journal: (any Journal)?
        /// The sequence number of the last record written (or dropped, with no journal).
        var sequence: UInt64 = 0
        /// Applied, not yet written: written first by the next write.
        var queued: [Mutation] = []
        var scratch: [UInt8] = []
        /// Closed at shutdown: a write after it is refused, not silently dropped.
        var closed = false
    }

    private let state: Mutex<State>

    /// The most changes one journal record holds: more are written as several records, so that
    /// no line of the journal (read whole at start-up) grows without bound.
    static let maxChangesPerRecord = 10_000

    init() { state = Mutex(State()) }

    /// Opens the journal `make` returns, reads it back with `recover` (which returns the sequence
    /// number of its last record), and appends after it from now on. The journal never leaves the
    /// lock.
    func open(_ make: () throws(DurabilityError) -> any Journal,
              recover: (any Journal) throws(DurabilityError) -> UInt64) throws(DurabilityError) {
        try state.withLock { (state) throws(DurabilityError) in
            let journal = try make()
            state.sequence = try recover(journal)
            state.journal = journal
        }
    }

    /// The sequence number of the last record written.
    var sequence: UInt64 { state.withLock { $0.sequence } }

    /// How far the journal is known to survive a crash of the machine.
    var durableThrough: UInt64 { state.withLock { $0.journal?.durableThrough ?? $0.sequence } }

    /// Whether changes are queued for the next write.
    var hasQueued: Bool { state.withLock { !$0.queued.isEmpty && $0.journal != nil } }

    /// Writes the queued changes, then `record`, as one append. On failure nothing of this write is
    /// in the journal; the queued changes stay queued and, with `keepOnFailure`, so does `record`
    /// (a change already applied must not be lost); the error is rethrown.
    func write(_ record: Mutation?, keepOnFailure: Bool = false) throws(DurabilityError) {
        try state.withLock { (state) throws(DurabilityError) in
            if state.closed { throw DurabilityError(path: "journal", reason: "the journal is closed: the engine has stopped") }
            guard let journal = state.journal else {
                state.queued.removeAll()
                if record != nil { state.sequence += 1 }
                return
            }
            var records: [Mutation] = []
            var start = 0
            while start < state.queued.count {
                let end = min(state.queued.count, start + Self.maxChangesPerRecord)
                records.append(end - start == 1 ? state.queued[start] : .batch(Array(state.queued[start..<end])))
                start = end
            }
            if let record { records.append(record) }
            guard !records.isEmpty else { return }
            state.scratch.removeAll(keepingCapacity: state.scratch.capacity <= 1 << 20)
            var sequence = state.sequence
            do throws(DurabilityError) {
                for record in records {
                    sequence += 1
                    do {
                        try record.appendJournalRecord(sequence: sequence, to: &state.scratch)
                    } catch {
                        throw DurabilityError(path: journal.location, reason: "cannot encode a journal record: \(error)")
                    }
                    state.scratch.append(UInt8(ascii: "\n"))
                }
                try journal.append(state.scratch, through: sequence)
            } catch {
                if keepOnFailure, let record { state.queued.append(record) }
                throw error
            }
            state.queued.removeAll(keepingCapacity: state.queued.count <= 4096)
            state.sequence = sequence
        }
    }

    /// Queues a change (already applied by the caller) for the next write.
    func queue(_ mutation: Mutation) {
        state.withLock { state in
            if state.journal != nil { state.queued.append(mutation) }
        }
    }

    /// Writes the queued changes, if any.
    func flushQueued() throws(DurabilityError) {
        guard hasQueued else { return }
        try write(nil)
    }

    /// The once-a-second tick: writes queued changes, and under `everysec` starts the fsync of
    /// what was written, off the caller's thread.
    func tick() throws(DurabilityError) {
        try flushQueued()
        state.withLock { state in state.journal?.syncInBackground(through: state.sequence) }
    }

    /// Starts a snapshot: writes what is queued (a snapshot must not cover a change whose record
    /// is still to come: replay would apply it twice), and returns the writer of a snapshot that
    /// covers every record so far; nil with no journal, or while another snapshot is under way.
    func beginSnapshot() -> (any SnapshotWriter)? {
        guard (try? flushQueued()) != nil else { return nil }
        return state.withLock { state in state.journal?.beginSnapshot(through: state.sequence) }
    }

    /// Ends a snapshot: on success the journal drops what it covers; on failure it keeps everything.
    func finishSnapshot(_ writer: any SnapshotWriter, succeeded: Bool) throws(DurabilityError) {
        try state.withLock { (state) throws(DurabilityError) in
            guard let journal = state.journal else { return }
            if succeeded {
                try journal.finishSnapshot(writer)
            } else {
                journal.abandonSnapshot(writer)
            }
        }
    }

    /// Writes what is queued and closes the journal.
    func close() throws(DurabilityError) {
        try flushQueued()
        try state.withLock { (state) throws(DurabilityError) in
            try state.journal?.close()
            state.journal = nil
            state.closed = true
        }
    }
}
