import Synchronization

/// The one way records reach the journal, from the engine and from the intake alike.
///
/// It numbers the records (their sequence numbers are the journal's positions, which snapshots
/// and replay go by), encodes them, and appends them under one lock, so two executors writing
/// at once still produce one ordered journal. Records whose write failed stay queued (they are
/// applied already and must not be lost) and go first in the next write. With no journal (no
/// data folder) records are numbered and dropped.
///
/// A write holds the lock for one `write(2)` (and, under `always`, its fsync): microseconds, so
/// the engine and the intake never wait for each other long.
final class Durability: Sendable {
    private struct State {
        var journal: (any Journal)?
        /// The sequence number of the last record written (or dropped, with no journal).
        var sequence: UInt64 = 0
        /// Records whose write failed: written first by the next write.
        var queued: [Mutation] = []
        var scratch: [UInt8] = []
        /// Closed at shutdown: a write after it is refused, not silently dropped.
        var closed = false
    }

    private let state: Mutex<State>
    /// Set once, when the journal opens: read on every webhook, so not behind the lock.
    private let syncsEachAppend = Atomic<Bool>(false)

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
            syncsEachAppend.store(journal.syncsEachAppend, ordering: .releasing)
            state.journal = journal
        }
    }

    /// The sequence number of the last record written.
    var sequence: UInt64 { state.withLock { $0.sequence } }

    /// How far the journal is known to survive a crash of the machine.
    var durableThrough: UInt64 { state.withLock { $0.journal?.durableThrough ?? $0.sequence } }

    /// Whether a write waits for the disk (an fsync under `always`): then a caller on an event
    /// loop must hand it to a task; otherwise a write is one `write(2)` of a few kilobytes.
    var writesWait: Bool { syncsEachAppend.load(ordering: .acquiring) }

    /// Whether changes are queued for the next write.
    var hasQueued: Bool { state.withLock { !$0.queued.isEmpty && $0.journal != nil } }

    /// Writes the records a failed write left queued, then `records` (each one journal record),
    /// as one append. On failure nothing of this write is in the journal; the queued records stay
    /// queued and, with `keepOnFailure`, so do `records` (changes already applied must not be
    /// lost); the error is rethrown.
    func write(_ records: [Mutation], keepOnFailure: Bool = false) throws(DurabilityError) {
        try state.withLock { (state) throws(DurabilityError) in
            if state.closed { throw DurabilityError(path: "journal", reason: "the journal is closed: the engine has stopped") }
            guard let journal = state.journal else {
                state.queued.removeAll()
                state.sequence += UInt64(records.count)
                return
            }
            var all: [Mutation] = []
            var start = 0
            while start < state.queued.count {
                let end = min(state.queued.count, start + Self.maxChangesPerRecord)
                all.append(end - start == 1 ? state.queued[start] : .batch(Array(state.queued[start..<end])))
                start = end
            }
            all += records
            guard !all.isEmpty else { return }
            state.scratch.removeAll(keepingCapacity: state.scratch.capacity <= 1 << 20)
            var sequence = state.sequence
            do throws(DurabilityError) {
                for record in all {
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
                if keepOnFailure { state.queued += records }
                throw error
            }
            state.queued.removeAll(keepingCapacity: state.queued.count <= 4096)
            state.sequence = sequence
        }
    }

    /// Writes one record (see ``write(_:keepOnFailure:)``).
    func write(_ record: Mutation, keepOnFailure: Bool = false) throws(DurabilityError) {
        try write([record], keepOnFailure: keepOnFailure)
    }

    /// Writes the records a failed write left queued, if any.
    func flushQueued() throws(DurabilityError) {
        guard hasQueued else { return }
        try write([Mutation]())
    }

    /// The once-a-second tick: retries what failed, and under `everysec` starts the fsync of
    /// what was written, off the caller's thread.
    func tick() throws(DurabilityError) {
        try flushQueued()
        state.withLock { state in state.journal?.syncInBackground(through: state.sequence) }
    }

    /// Starts a snapshot: writes what is queued (a snapshot must not cover a change whose record
    /// is still to come: replay would apply it twice; the caller has written its own queued
    /// changes first), and returns the writer of a snapshot that covers every record so far; nil
    /// with no journal, or while another snapshot is under way.
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
