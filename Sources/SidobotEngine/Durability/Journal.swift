/// Where the engine's records and snapshots are kept (docs/ENGINE.md#durability): an append-only log of JSON
/// lines, one record each, and a store for the latest snapshot.
///
/// ``FileJournal`` keeps them in the data folder (`journal.jsonl`, `snapshot.json`); another
/// implementation may keep them elsewhere (a database) as long as it keeps these promises:
/// - ``append(_:through:)`` returns only once the batch is *committed*: an acknowledgement given
///   after it survives a crash of the process. Whether it also survives a crash of the machine
///   is the journal's durability policy; ``durableThrough`` tells how far it does.
/// - The records read back are the bytes appended, in order, each line whole.
/// - A snapshot is stored whole or not at all, and a compaction never drops a record the stored
///   snapshot does not cover.
///
/// Not thread-safe: ``Durability`` owns it and serializes every call but the ``SnapshotWriter``'s,
/// which runs on a thread of its own.
protocol Journal: AnyObject {
    /// The journal as messages name it (`data/journal.jsonl`).
    var location: String { get }

    /// The latest stored snapshot, or nil when there is none.
    func readSnapshot() throws(DurabilityError) -> [UInt8]?

    /// Reads every record after sequence number `sequence`, in order (start-up, once, before the
    /// first append). Returns the bytes of a torn last record (a write cut short by a crash of
    /// the machine), which the journal set aside and dropped.
    func readRecords(after sequence: UInt64, _ body: (JournalLine) throws(DurabilityError) -> Void) throws(DurabilityError) -> [UInt8]?

    /// Appends one batch of complete records (JSON lines, each ending in a newline), whose last
    /// sequence number is `sequence`. Committed when it returns; a batch that fails is not in the
    /// journal, not even in part.
    func append(_ lines: [UInt8], through sequence: UInt64) throws(DurabilityError)

    /// Whether ``append(_:through:)`` waits for the disk (an fsync) before it returns.
    var syncsEachAppend: Bool { get }

    /// The highest sequence number known to survive a crash of the machine.
    var durableThrough: UInt64 { get }

    /// Makes what was appended so far durable, through sequence `sequence`, if the policy leaves
    /// that to a periodic sync (`everysec`); the work runs off the caller's thread.
    func syncInBackground(through sequence: UInt64)

    /// Starts a snapshot that covers every record appended so far, through `sequence`; nil when
    /// one is already under way.
    func beginSnapshot(through sequence: UInt64) -> (any SnapshotWriter)?

    /// Ends a snapshot whose writer succeeded: drops the records it covers.
    func finishSnapshot(_ writer: any SnapshotWriter) throws(DurabilityError)

    /// Ends a snapshot whose writer failed: everything is kept.
    func abandonSnapshot(_ writer: any SnapshotWriter)

    /// Makes everything durable and releases the journal.
    func close() throws(DurabilityError)
}

/// The half of a snapshot that runs off the engine's executor: stores the encoded snapshot (and
/// whatever the journal prepares for its compaction meanwhile).
protocol SnapshotWriter: Sendable {
    /// The sequence number the snapshot covers.
    var sequence: UInt64 { get }
    /// Stores the snapshot. Safe from any thread.
    func write(_ snapshot: [UInt8]) throws(DurabilityError)
}

/// One record as read back from a journal.
struct JournalLine {
    /// Where it is, for messages: the 1-based line of the file (or the row of a table).
    var number: Int
    /// The record's bytes, without the newline.
    var bytes: ArraySlice<UInt8>
}
