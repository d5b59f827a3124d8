import Foundation
import Logging
import LuaSandbox

extension Engine {
    /// When the next timer or schedule falls due.
    func nextDue() -> UnixTime? {
        var next = store.data.timers.nextDue
        for rule in rules.values where !rule.stats.quarantined {
            for schedule in rule.registration.schedules {
                if let due = schedule.next, next.map({ due < $0 }) ?? true { next = due }
            }
        }
        return next
    }

    /// Fires every timer and schedule due at or before `now`, earliest first.
    func fireDue(now: UnixTime) {
        while true {
            let timerDue = store.data.timers.nextDue.flatMap { $0 <= now ? $0 : nil }
            var scheduleDue: (rule: String, index: Int, at: UnixTime)?
            for rule in rules.values where !rule.stats.quarantined {
                for (index, schedule) in rule.registration.schedules.enumerated() {
                    if let due = schedule.next, due <= now, scheduleDue.map({ due < $0.at }) ?? true {
                        scheduleDue = (rule.name, index, due)
                    }
                }
            }
            if let timerDue, scheduleDue.map({ timerDue <= $0.at }) ?? true {
                guard let timer = store.takeDueTimer(now: now) else { break }
                fire(timer, now: now)
            } else if let scheduleDue {
                fireSchedule(rule: scheduleDue.rule, index: scheduleDue.index, tick: scheduleDue.at, now: now)
            } else {
                break
            }
        }
    }

    func fire(_ timer: TimerRecord, now: UnixTime) {
        switch timer.late.decide(due: timer.due, now: now, grace: configuration.timerGrace) {
        case .skip(let lateBy):
            logger.info("timer skipped: it was due while the engine was down and its late policy is skip",
                        metadata: ["rule": "\(timer.rule)", "timer": "\(timer.id)", "name": "\(timer.name)", "late_by": "\(lateBy)"])
            do { try store.commit(.timerRemoved(timer.id, how: "skipped")) } catch { logJournalFailure(error) }
            var trace = Trace(event: EngineEvent(id: timer.id.description, kind: .timer(timer), at: now), eventName: "timer." + timer.name)
            trace.notes.append("skipped: \(DurationText.format(lateBy)) late, beyond its late policy")
            traces.begin(trace, messageID: nil)
        case .fire, .notDue:
            metrics.timerLateness.recordMilliseconds(max(0, now.milliseconds - timer.due.milliseconds))
            let event = EngineEvent(id: timer.id.description, kind: .timer(timer), at: now)
            do { try store.commit(.eventAccepted(event, dedupe: false)) } catch { logJournalFailure(error); return }
            dispatch(event)
        }
    }

    func fireSchedule(rule name: String, index: Int, tick: UnixTime, now: UnixTime) {
        guard let rule = rules[name] else { return }
        let schedule = rule.registration.schedules[index]
        rule.registration.schedules[index].next = schedule.schedule.nextFire(after: max(tick, now))
        let event = EngineEvent(id: "\(name)/\(schedule.key)@\(tick.milliseconds)",
                                kind: .schedule(rule: name, handler: schedule.key, scheduledAt: tick), at: now)
        do {
            try store.commit(.scheduleFired(key: "\(name)/\(schedule.key)", at: tick))
            try store.commit(.eventAccepted(event, dedupe: false))
        } catch {
            logJournalFailure(error)
            return
        }
        dispatch(event)
    }

    /// After a start or a reload: runs missed schedule ticks once (with `catch_up = true`), and sets
    /// every schedule's next fire time.
    func catchUpSchedules(of rule: LoadedRule, now: UnixTime) {
        for index in rule.registration.schedules.indices {
            let schedule = rule.registration.schedules[index]
            guard let last = store.data.schedules["\(rule.name)/\(schedule.key)"] else {
                rule.registration.schedules[index].next = schedule.schedule.nextFire(after: now)
                continue
            }
            let decision = CatchUpPolicy(catchUp: schedule.catchUp).decide(schedule: schedule.schedule, lastFired: last, now: now)
            rule.registration.schedules[index].next = decision.next
            if let missed = decision.missed, decision.runNow == nil {
                logger.info("schedule ticks missed while the engine was down were skipped (catch_up is off)",
                            metadata: ["rule": "\(rule.name)", "schedule": "\(schedule.key)", "missed": "\(missed.count)"])
            }
            if let runNow = decision.runNow {
                fireSchedule(rule: rule.name, index: index, tick: runNow, now: now)
                rule.registration.schedules[index].next = decision.next
            }
        }
    }

    /// Moves a virtual clock forward by `seconds`, firing every timer and schedule that falls due,
    /// in order, and waiting for their handler runs before moving on. For tests and `sidobot test`.
    public func advance(by seconds: Double) async {
        guard let clock = clock as? VirtualClock else {
            preconditionFailure("advance(by:) needs a VirtualClock")
        }
        let target = clock.now() + .milliseconds(Int64((seconds * 1000).rounded()))
        await waitUntilIdle()
        while let due = nextDue(), due <= target {
            // A timer already overdue (after a restart) fires late, as on the real clock.
            let now = max(due, clock.now())
            clock.set(now)
            fireDue(now: now)
            await drainInbox()
            await waitUntilIdle()
        }
        clock.set(target)
        await waitUntilIdle()
    }

    /// Called when a timer was added: the real-clock scheduler may have to wake earlier.
    func timersChanged() {
        guard !isVirtualTime, started, !stopping else { return }
        if let target = schedulerTarget, let next = store.data.timers.nextDue, next >= target { return }
        restartScheduler()
    }

    func restartScheduler() {
        schedulerTask?.cancel()
        schedulerTask = Task { await self.schedulerLoop() }
    }

    func schedulerLoop() async {
        while !stopping && !Task.isCancelled {
            let now = clock.now()
            fireDue(now: now)
            let target = nextDue() ?? now + .seconds(3600)
            schedulerTarget = target
            do {
                try await clock.sleep(until: target)
            } catch {
                return
            }
        }
    }

    func startBackgroundTasks() {
        restartScheduler()
        maintenanceTask = Task { await self.maintenanceLoop() }
        if configuration.reloadPollInterval > 0 {
            watcherTask = Task { await self.watchRules() }
        }
    }

    /// Once a second: fsync under `everysec`, prune by age; every `snapshotInterval`: a snapshot.
    func maintenanceLoop() async {
        while !stopping && !Task.isCancelled {
            do {
                try await Task.sleep(for: .seconds(1))
            } catch {
                return
            }
            maintain()
            if clock.now().secondsValue - lastSnapshot.secondsValue >= configuration.snapshotInterval {
                await takeSnapshot()
            }
        }
    }

    func maintain() {
        let now = clock.now()
        do {
            if let descriptor = try store.syncJournal() { Self.fsyncInBackground(descriptor, path: store.paths?.journal ?? "journal", metrics: metrics, logger: logger) }
        } catch {
            logJournalFailure(error)
        }
        metrics.timersPending.record(store.data.timers.count)
        store.maintain { data in
            // Each costs what expired, not a scan (docs/PERFORMANCE.md, snapshot stall).
            data.state.sweep(now: now)
            data.dedupe.prune(now: now.secondsValue)
            data.ledger.prune(sentBefore: now.secondsValue - configuration.ledgerRetention)
        }
        traces.prune(now: now)
    }

    /// The `everysec` fsync, on a thread of its own: fsyncing a second of writes can take
    /// milliseconds, and the engine goes on accepting meanwhile (as Redis does).
    nonisolated static func fsyncInBackground(_ descriptor: Int32, path: String, metrics: EngineMetrics, logger: Logger) {
        let timer = metrics.journalFsync
        fsyncQueue.async {
            let start = DispatchTime.now().uptimeNanoseconds
            let failed = fsync(descriptor) != 0 ? FileIO.errorText() : nil
            _ = close(descriptor)
            timer.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
            if let failed { logger.error("journal fsync failed", metadata: ["path": "\(path)", "error": "\(failed)"]) }
        }
    }

    nonisolated static let fsyncQueue = DispatchQueue(label: "sidobot.journal.fsync")
    nonisolated static let snapshotQueue = DispatchQueue(label: "sidobot.snapshot")

    /// Makes the calling thread yield to the engine's threads when the CPUs are busy (Linux nice 10
    /// for this thread only): a snapshot may take a second longer, a webhook must not wait for it.
    nonisolated static func lowerThreadPriority() {
        #if os(Linux)
            // On Linux the nice value belongs to the thread, and 0 names the calling one.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
    }

    /// Takes a snapshot without stopping the engine: a cheap copy now; encoding, writing, and
    /// copying the journal records it does not cover, off the engine's executor; then a short
    /// step back on it to append what was journaled meanwhile and swap the journal.
    public func takeSnapshot() async {
        let now = clock.now()
        let beginAt = DispatchTime.now().uptimeNanoseconds
        store.maintain { $0.state.sweep(now: now) }
        guard let started = store.beginSnapshot(), let path = store.paths?.snapshot, let journal = store.journalForCompaction else { return }
        let beginNanoseconds = DispatchTime.now().uptimeNanoseconds - beginAt
        let copy = started.copy
        let offset = started.journalOffset
        let temp = journal.path + ".compacting"
        let tail = journal.tail
        let startedAt = DispatchTime.now().uptimeNanoseconds
        defer { metrics.snapshot.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - startedAt)) }
        // On a thread of its own, not the concurrency pool: encoding a million keys takes a second
        // or two of CPU, and the pool's threads (as many as cores) are the engine's.
        let result: Result<Int, DurabilityError> = await withCheckedContinuation { continuation in
            Self.snapshotQueue.async {
                Self.lowerThreadPriority()
                do {
                    let bytes = try SnapshotCodec.encode(copy, savedAt: now)
                    try SnapshotFile.write(bytes, to: path)
                    continuation.resume(returning: .success(try tail.copy(from: offset, into: temp)))
                } catch let error as DurabilityError {
                    continuation.resume(returning: .failure(error))
                } catch {
                    continuation.resume(returning: .failure(DurabilityError(path: path, reason: "cannot encode the snapshot: \(error)")))
                }
            }
        }
        lastSnapshot = now
        switch result {
        case .success(let copied):
            let finishAt = DispatchTime.now().uptimeNanoseconds
            let remainder = journal.byteCount - copied
            do {
                try store.finishSnapshot(compactedInto: temp, copiedUpTo: copied)
                if journal.policy != .always {
                    let folder = JournalWriter.folder(of: journal.path)
                    let log = logger
                    Self.fsyncQueue.async {
                        do { try FileIO.fsyncDirectory(folder) } catch { log.error("journal folder fsync failed", metadata: ["error": "\(error)"]) }
                    }
                }
            } catch {
                logJournalFailure(error)
            }
            // What the engine itself spent on the snapshot (the rest ran beside it).
            logger.debug("snapshot written", metadata: [
                "copy_ms": "\(Double(beginNanoseconds) / 1e6)",
                "journal_swap_ms": "\(Double(DispatchTime.now().uptimeNanoseconds - finishAt) / 1e6)",
                "journal_bytes_copied_by_the_engine": "\(remainder)",
                "total_ms": "\(Double(DispatchTime.now().uptimeNanoseconds - startedAt) / 1e6)",
            ])
        case .failure(let error):
            store.abandonSnapshot()
            unlink(temp)
            logger.error("snapshot failed; the journal is kept, nothing is lost", metadata: ["error": "\(error)"])
        }
        let waiters = snapshotWaiters
        snapshotWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }

    func logJournalFailure(_ error: DurabilityError) {
        logger.error("journal write failed", metadata: ["error": "\(error)"])
    }
}

