import LuaSandbox

/// The engine's memory (``StoreData``) and its one way to change it durably.
///
/// A change is journaled (through ``Durability``) before anything acknowledges it, by one of
/// three paths, all ending in ``StoreData/apply(_:)``, the function replay uses:
/// - ``commit(_:)``: journal now, then apply (the engine's own work: timers firing, sends).
/// - ``stage(_:)`` then ``commitStaged(_:)``: a handler run's changes, applied as it makes them and
///   journaled together when it gives up the engine (suspends in a `sidobe.*` call, or ends).
///   Nothing else runs on the engine in between, so no acknowledgement, snapshot or other run
///   sees them unjournaled.
/// - ``applyQueued(_:)``: apply now, journal with the engine's next write (completion marks of
///   runs that changed nothing: if the process dies first, those runs run again and change nothing
///   again; the ledger's moves: the event is dispatched again and the move decided again). They
///   wait here, on the engine, not in ``Durability``: a lock taken per event would make the
///   intake's threads wait for the engine.
///
/// Events the intake accepted are already journaled: ``take(_:)`` applies them.
/// Owned by the engine actor; not thread-safe by itself.
final class Store {
    private(set) var data: StoreData
    private let durability: Durability
    /// Applied, journaled with the next write.
    private var queued: [Mutation] = []

    init(deadLetterCapacity: Int, durability: Durability) {
        data = StoreData(deadLetterCapacity: deadLetterCapacity)
        self.durability = durability
    }

    /// Takes over what recovery read.
    func restore(_ recovered: StoreData) { data = recovered }

    /// Journals `mutation` (fsynced under `always`), then applies it.
    func commit(_ mutation: Mutation) throws(DurabilityError) {
        try write(mutation)
        data.apply(mutation)
    }

    /// Applies a handler run's change now; ``commitStaged(_:)`` journals it with the run's others.
    func stage(_ mutation: Mutation) { data.apply(mutation) }

    /// Journals staged changes as one record: they survive a crash together or not at all. If the
    /// journal cannot be written they stay queued for the next write (the error is rethrown).
    func commitStaged(_ mutations: [Mutation]) throws(DurabilityError) {
        guard !mutations.isEmpty else { return }
        try write(mutations.count == 1 ? mutations[0] : .batch(mutations), keepOnFailure: true)
    }

    /// Applies a change now and queues its record for the next journal write.
    func applyQueued(_ mutation: Mutation) {
        data.apply(mutation)
        queued.append(mutation)
        // Written in pieces as they pile up. The intake's writes do not carry them, so under load a
        // second's completion marks (tens of thousands) waited for the tick or a snapshot, and were
        // then written at once under the journal's lock, which the acknowledgements wait for
        // (30 ms, docs/PERFORMANCE.md). A failed write keeps them queued for the next one.
        if queued.count >= Self.queuedRecordsPerWrite { try? flushQueued() }
    }

    /// How many queued records make the engine write them without waiting for its next write.
    static let queuedRecordsPerWrite = 512

    /// Writes the queued changes, if any (the tick, a snapshot, shutdown).
    func flushQueued() throws(DurabilityError) {
        guard !queued.isEmpty else { return }
        try write(nil, keepOnFailure: true)
    }

    /// Writes the queued changes (as records of at most ``Durability/maxChangesPerRecord``) and
    /// then `record`, in one append. If it fails, nothing applied is lost: with `keepOnFailure`
    /// (`record` is applied already) ``Durability`` keeps both for its next write; without, the
    /// queued ones stay here and `record`, not applied, is the caller's to drop.
    private func write(_ record: Mutation?, keepOnFailure: Bool = false) throws(DurabilityError) {
        var records: [Mutation] = []
        var start = 0
        while start < queued.count {
            let end = min(queued.count, start + Durability.maxChangesPerRecord)
            records.append(end - start == 1 ? queued[start] : .batch(Array(queued[start..<end])))
            start = end
        }
        if let record { records.append(record) }
        guard !records.isEmpty else { return }
        do {
            try durability.write(records, keepOnFailure: keepOnFailure)
        } catch {
            if keepOnFailure { queued.removeAll() }
            throw error
        }
        queued.removeAll(keepingCapacity: queued.count <= 4096)
    }

    /// Applies an event the intake journaled (its record is written already).
    func take(_ event: EngineEvent) {
        data.apply(.eventAccepted(event, dedupe: true, movesLedger: false))
    }

    /// Runs `body` on the data without journaling: only for derived, non-durable upkeep
    /// (pruning by age, sweeping expired keys) that replay reproduces by itself.
    func maintain(_ body: (inout StoreData) -> Void) { body(&data) }

    /// Takes the earliest timer due at or before `now` out of the pending set. The caller journals
    /// what became of it (fired as an event, or skipped), which replay applies the same way.
    func takeDueTimer(now: UnixTime) -> TimerRecord? {
        var timer: TimerRecord?
        maintain { timer = $0.timers.popDue(now: now) }
        return timer
    }
}

extension Store: TimerSource {
    var nextTimerDue: UnixTime? { data.timers.nextDue }
}
