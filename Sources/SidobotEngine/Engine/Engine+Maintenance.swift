import Foundation
import Logging

/// A snapshot under way, and when the last one was taken.
struct SnapshotState {
    var underWay = false
    /// Waiting for the snapshot under way to end (shutdown writes its own after it).
    var waiters: [CheckedContinuation<Void, Never>] = []
    var last: UnixTime?
}

/// Upkeep on the real clock: the once-a-second tick (queued records written, the `everysec`
/// fsync, retention sweeps), periodic snapshots, and the watch on the rules folder.
extension Engine {
    /// Once a second: the tick; every `snapshotInterval`: a snapshot.
    func maintenanceLoop() async {
        snapshot.last = snapshot.last ?? clock.now()
        while !isStopping && !Task.isCancelled {
            do {
                try await Task.sleep(for: .seconds(1))
            } catch {
                return
            }
            maintain()
            if clock.now().secondsValue - (snapshot.last ?? clock.now()).secondsValue >= configuration.snapshotInterval {
                await takeSnapshot()
            }
        }
    }

    func maintain() {
        let now = clock.now()
        do {
            try store.flushQueued()
            try durability.tick()
        } catch {
            logJournalFailure(error)
        }
        metrics.timersPending.record(store.data.timers.count)
        recordStoreSizes()
        // Each costs what expired, not a scan (docs/PERFORMANCE.md, snapshot stall).
        store.maintain { data in
            data.state.sweep(now: now)
            data.ledger.prune(sentBefore: now.secondsValue - configuration.ledgerRetention)
        }
        intake.prune(now: now)
        traces.prune(now: now)
    }

    /// `sidobot_store_records`, `sidobot_store_bytes_estimated`, `sidobot_trace_bytes`, the RSS,
    /// and the `--memory-budget` watch.
    private func recordStoreSizes() {
        let sizes = storeSizes()
        for size in sizes {
            metrics.storeRecords[size.store]?.record(size.records)
            if size.store == .traces {
                metrics.traceBytes.record(size.estimatedBytes ?? 0)
            } else if let bytes = size.estimatedBytes {
                metrics.storeBytesEstimated[size.store]?.record(bytes)
            }
        }
        guard let resident = ProcessMemory.residentBytes() else { return }
        metrics.residentBytes.record(resident)
        guard var budget = memoryBudget else { return }
        defer { memoryBudget = budget }
        let largest = sizes.filter { $0.store != .traces }.max { ($0.estimatedBytes ?? 0) < ($1.estimatedBytes ?? 0) }
        let metadata: Logger.Metadata = [
            "resident_bytes": "\(resident)", "budget_bytes": "\(budget.budget)",
            "largest_store": "\(largest?.name ?? "-")", "largest_store_records": "\(largest?.records ?? 0)",
        ]
        switch budget.check(resident: resident) {
        case .climbed(let level)?:
            let percent = Int((Double(resident) / Double(budget.budget) * 100).rounded())
            logger.warning(level == .over ? "memory is over its budget (\(percent) %): raise --memory-budget or shorten retention"
                                          : "memory is approaching its budget (\(percent) %)", metadata: metadata)
        case .recovered?:
            logger.info("memory is back under 80 % of its budget", metadata: metadata)
        case nil:
            break
        }
    }

    /// Polls the rules folder and reloads when a file changed, appeared or disappeared.
    /// Polling (not inotify) so it works the same on every file system, bind mounts included.
    func watchRules() async {
        while !isStopping && !Task.isCancelled {
            do {
                try await Task.sleep(for: .milliseconds(Int64(configuration.reloadPollInterval * 1000)))
            } catch {
                return
            }
            if rules.folderChanged() {
                let report = await reloadRules()
                logger.info("rules folder changed", metadata: ["reload": "\(report)"])
            }
        }
    }

    /// The snapshot's content and the writer that stores it, once the intake's events are in the
    /// store and the queued records written: a copy in O(1) (persistent maps), at the journal
    /// position the writer covers.
    private func beginSnapshot(at now: UnixTime) -> (copy: StoreData, dedupe: DedupeSet, writer: any SnapshotWriter)? {
        store.maintain { $0.state.sweep(now: now) }
        takeFromIntake()
        guard !snapshot.underWay, (try? store.flushQueued()) != nil, let writer = durability.beginSnapshot() else { return nil }
        // The intake may accept more meanwhile: ids journaled after the writer's position are
        // remembered again by replay, which changes nothing.
        return (store.data.snapshotCopy, intake.dedupeForSnapshot(), writer)
    }

    /// Takes a snapshot without stopping the engine: a cheap copy now; encoding, writing, and
    /// whatever the journal prepares for its compaction, off the engine's executor; then a short
    /// step back on it to drop what the snapshot covers.
    public func takeSnapshot() async {
        let now = clock.now()
        let beginAt = DispatchTime.now().uptimeNanoseconds
        guard let begun = beginSnapshot(at: now) else { return }
        snapshot.underWay = true
        let beginNanoseconds = DispatchTime.now().uptimeNanoseconds - beginAt
        let startedAt = DispatchTime.now().uptimeNanoseconds
        defer { metrics.snapshot.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - startedAt)) }
        let (copy, dedupe, writer) = begun
        // On a thread of its own, not the concurrency pool: encoding a million keys takes a second
        // or two of CPU, and the pool's threads (as many as cores) are the engine's.
        let result: Result<Void, DurabilityError> = await withCheckedContinuation { continuation in
            Self.snapshotQueue.async {
                Self.lowerThreadPriority()
                continuation.resume(returning: Self.encodeAndWrite(copy, dedupe: dedupe, writer: writer, savedAt: now))
            }
        }
        snapshot.last = now
        let finishAt = DispatchTime.now().uptimeNanoseconds
        do {
            try durability.finishSnapshot(writer, succeeded: (try? result.get()) != nil)
            if case .failure(let error) = result { throw error }
            // What the engine itself spent on the snapshot (the rest ran beside it).
            logger.debug("snapshot written", metadata: [
                "copy_ms": "\(Double(beginNanoseconds) / 1e6)",
                "journal_swap_ms": "\(Double(DispatchTime.now().uptimeNanoseconds - finishAt) / 1e6)",
                "total_ms": "\(Double(DispatchTime.now().uptimeNanoseconds - startedAt) / 1e6)",
            ])
        } catch {
            logger.error("snapshot failed; the journal is kept, nothing is lost", metadata: ["error": "\(error)"])
        }
        snapshot.underWay = false
        let waiters = snapshot.waiters
        snapshot.waiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }

    /// Writes a snapshot on the engine's executor (shutdown), then drops what it covers.
    func snapshotNow() throws(DurabilityError) {
        let now = clock.now()
        guard let (copy, dedupe, writer) = beginSnapshot(at: now) else { return }
        let result = Self.encodeAndWrite(copy, dedupe: dedupe, writer: writer, savedAt: now)
        try durability.finishSnapshot(writer, succeeded: (try? result.get()) != nil)
        try result.get()
    }

    /// Waits for a snapshot under way to end.
    func snapshotFinished() async {
        guard snapshot.underWay else { return }
        await withCheckedContinuation { snapshot.waiters.append($0) }
    }

    private nonisolated static func encodeAndWrite(_ copy: StoreData, dedupe: DedupeSet, writer: any SnapshotWriter,
                                                   savedAt: UnixTime) -> Result<Void, DurabilityError> {
        do {
            let bytes = try SnapshotCodec.encode(copy, dedupe: dedupe, sequence: writer.sequence, savedAt: savedAt)
            try writer.write(bytes)
            return .success(())
        } catch let error as DurabilityError {
            return .failure(error)
        } catch {
            return .failure(DurabilityError(path: "snapshot", reason: "cannot encode the snapshot: \(error)"))
        }
    }

    nonisolated static let snapshotQueue = DispatchQueue(label: "sidobot.snapshot")

    /// Makes the calling thread yield to the engine's threads when the CPUs are busy (Linux nice 10
    /// for this thread only): a snapshot may take a second longer, a webhook must not wait for it.
    nonisolated static func lowerThreadPriority() {
        #if os(Linux)
            // On Linux the nice value belongs to the thread, and 0 names the calling one.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
    }
}
