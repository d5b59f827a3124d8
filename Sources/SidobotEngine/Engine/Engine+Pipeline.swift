import Foundation
import Logging
import LuaSandbox
import Sidobe

/// The flow of events: from the intake, the scheduler, the sends and the rules' `emit`, through
/// the ledger's and the outbox's checks, to the dispatcher; and the runs it starts, continued
/// until they end.
extension Engine {
    /// Dispatches everything waiting: the intake's events, then what runs raised meanwhile.
    func drainInbox() async {
        var turn = ExecutorTurn(slice: configuration.limits.slice)
        while true {
            if inbox.isEmpty { takeFromIntake() }
            guard let entry = inbox.next() else { return }
            deliver(entry.event, note: entry.note)
            await turn.yieldIfSpent()
        }
    }

    /// Delivers one event: a status is first checked against the ledger (held while sends are
    /// out if the ledger does not know its message yet; marked stale, or moving its message, if
    /// it does); a retry policy's timer goes to ``Retries``, a fresh failure plans its retry; then
    /// the dispatcher runs the handlers.
    ///
    /// - Parameters:
    ///   - journaled: whether the event is in the journal (`engine.start` is not).
    ///   - onlyRule: only this rule's handlers (a dead letter's replay).
    ///   - exceptRules: not these (done with the event before a restart).
    func deliver(_ event: EngineEvent, note: String? = nil, journaled: Bool = true, onlyRule: String? = nil,
                 exceptRules: Set<String> = []) {
        var event = event
        if case .messageStatus(var status) = event.kind, !status.stale {
            switch store.data.ledger.admission(of: status, eventID: event.id) {
            case .unknownMessage:
                // Perhaps the webhook of a send whose answer the engine has not read yet.
                if outbox.holdIfSendsOut(event) { return }
            case .applied:
                break
            case .moves:
                // Journaled with the next write, before anything this event's runs write: a crash
                // before it dispatches the event again, and the ledger is decided again.
                store.applyQueued(.statusApplied(messageID: status.messageID, status: LedgerStatus(status.status),
                                                 at: event.at.secondsValue, source: StatusSource(ofEvent: event.id),
                                                 event: event.id))
            case .stale:
                status.stale = true
                event.kind = .messageStatus(status)
            }
            if !status.stale, status.status == .failed, let job = retries.afterFailure(of: status.messageID) {
                startEngineWork(job)
            }
        }
        if case .timer(let timer) = event.kind, timer.name == RetryPlanner.timerName {
            if let job = retries.timerFired(event, timer: timer) {
                startEngineWork(job, finishing: event.id)
            } else {
                finishEvent(event.id)
            }
            return
        }
        let dispatched = dispatcher.dispatch(event, note: note, journaled: journaled, onlyRule: onlyRule, exceptRules: exceptRules)
        for ended in dispatched.ended { handle(ended) }
        for run in dispatched.suspended { continueRun(run) }
    }

    /// Continues a run that suspended in a `sidobe.*` call, in a task of its own, to its end.
    func continueRun(_ run: Dispatcher.Suspended) {
        Task.immediate {
            var failure: LuaError?
            do {
                _ = try await run.rule.state.resume(run.run, gate: self.slices)
            } catch let error as LuaError {
                failure = error
            } catch {
                failure = .host("\(error)")
            }
            let ended = self.dispatcher.finish(run, failure: failure)
            if ended.needsRebuild || ended.quarantined { self.handle(ended) }
            // After the rebuild, if any: the runs that waited for this one use the fresh state.
            let next = self.dispatcher.startWaiting(after: run)
            for ended in next.ended { self.handle(ended) }
            for run in next.suspended { self.continueRun(run) }
        }
    }

    /// What a run's end asks for: a rebuilt state after an abort, paused schedules after a quarantine.
    private func handle(_ ended: Dispatcher.Ended) {
        if ended.quarantined { scheduler.pause(rule: ended.rule.name) }
        if ended.needsRebuild {
            let rule = ended.rule
            // Immediate: a rule's top level rarely suspends, so the fresh state is in before the
            // next event is routed (a state that hit a limit refuses runs; an event routed to it
            // would fail with "must be rebuilt" and reset the abort count a quarantine relies on).
            Task.immediate { await self.rebuild(rule) }
        }
    }

    private func rebuild(_ rule: LoadedRule) async {
        if await rules.rebuild(rule) { dispatcher.rulesChanged() }
    }

    /// Runs a retry policy's send as the engine's own work, counted like a handler run so
    /// ``settle()`` and shutdown wait for it; `finishing` is the event it completes.
    func startEngineWork(_ job: Retries.Job, finishing eventID: String? = nil) {
        let tag = runs.beginEngineWork()
        Task.immediate {
            await self.retries.run(job)
            if let eventID { self.finishEvent(eventID) }
            self.runs.end(tag)
        }
    }

    func finishEvent(_ id: String) {
        do {
            try store.commit(.eventDone(id: id))
        } catch {
            logger.error("could not journal the end of an event; it will be dispatched again after a restart", metadata: ["event": "\(id)", "error": "\(error)"])
        }
    }

    // MARK: Time

    /// Fires every timer and schedule due at or before `now`, earliest first.
    func fireDue(now: UnixTime) {
        while let due = scheduler.takeDue(now: now) { fire(due, now: now) }
    }

    /// Turns what fell due into its event, journaled, and delivers it; or journals the skip of a
    /// timer whose late policy says so.
    func fire(_ due: DueEvent, now: UnixTime) {
        switch due {
        case .timer(let timer, .skip(let lateBy)):
            logger.info("timer skipped: it was due while the engine was down and its late policy is skip",
                        metadata: ["rule": "\(timer.rule)", "timer": "\(timer.id)", "name": "\(timer.name)", "late_by": "\(lateBy)"])
            do { try store.commit(.timerRemoved(timer.id, how: .skipped)) } catch { logJournalFailure(error) }
            var trace = Trace(event: EngineEvent(id: timer.id.description, kind: .timer(timer), at: now), eventName: "timer." + timer.name)
            trace.notes.append("skipped: \(DurationText.format(lateBy)) late, beyond its late policy")
            traces.begin(trace, messageID: nil)
        case .timer(let timer, _):
            metrics.timerLateness.recordMilliseconds(max(0, now.milliseconds - timer.due.milliseconds))
            let event = EngineEvent(id: timer.id.description, kind: .timer(timer), at: now)
            do { try store.commit(.eventAccepted(event, dedupe: false, movesLedger: true)) } catch { logJournalFailure(error); return }
            deliver(event)
        case .schedule(let rule, let key, let tick):
            let event = EngineEvent(id: "\(rule)/\(key)@\(tick.milliseconds)", kind: .schedule(rule: rule, handler: key, scheduledAt: tick), at: now)
            do {
                try store.commit(.scheduleFired(key: "\(rule)/\(key)", at: tick))
                try store.commit(.eventAccepted(event, dedupe: false, movesLedger: true))
            } catch {
                logJournalFailure(error)
                return
            }
            deliver(event)
        }
    }

    /// Hands a rule's schedules to the scheduler (a start or a reload) and runs the ticks it
    /// missed while the engine was down, when the schedule catches up.
    func registerSchedules(of rule: LoadedRule, now: UnixTime) {
        let fired = store.data.schedules
        let missed = scheduler.register(rule: rule.name, schedules: rule.registration.schedules.map(\.spec),
                                        lastFired: { fired["\(rule.name)/\($0)"] }, now: now)
        for due in missed { fire(due, now: now) }
    }

    /// The alarm rang (real clock): fire what fell due and set it again, yielding between timers
    /// once the burst has held the executor for a slice (``ExecutorTurn``).
    func alarmRang() async {
        guard !isStopping else { return }
        var turn = ExecutorTurn(slice: configuration.limits.slice)
        let now = clock.now()
        while !isStopping, let due = scheduler.takeDue(now: now) {
            fire(due, now: now)
            await turn.yieldIfSpent()
        }
        alarm.set(scheduler.nextDue())
    }

    /// Moves a virtual clock forward by `seconds`, firing every timer and schedule that falls due,
    /// in order, and waiting for their handler runs before moving on. For tests and `sidobot test`.
    public func advance(by seconds: Double) async {
        guard let clock = clock as? VirtualClock else {
            preconditionFailure("advance(by:) needs a VirtualClock")
        }
        let target = clock.now() + .milliseconds(Int64((seconds * 1000).rounded()))
        await settle()
        while let due = scheduler.nextDue(), due <= target {
            // A timer already overdue (after a restart) fires late, as on the real clock.
            let now = max(due, clock.now())
            clock.set(now)
            fireDue(now: now)
            // Settled, not only idle: a run's send can raise an event (a sync FAILED answer is
            // `message.failed`) that reaches the intake as the run ends; its handler may set the
            // next timer, which must be seen before the clock moves past it.
            await settle()
        }
        clock.set(target)
        await waitUntilIdle()
    }

    /// Dispatches what was accepted and waits until every run it started (and every event they
    /// raised) finished. For tests and `sidobot test`.
    public func settle() async {
        await drainInbox()
        await waitUntilIdle()
        while !inbox.isEmpty || intake.hasAccepted {
            await drainInbox()
            await waitUntilIdle()
        }
    }

    // MARK: Rules

    /// Reloads the rules folder (see ``RuleSet/reload()``): changed files are swapped in, their
    /// schedules caught up; a broken edit keeps the previous version running and is reported.
    public func reloadRules() async -> RuleReloadReport {
        let now = clock.now()
        let report = await rules.reload(now: now)
        metrics.lastReloadSuccessful.record(report.failed.isEmpty ? 1 : 0)
        metrics.rulesFailingToLoad.record(rules.loadFailures.count)
        dispatcher.rulesChanged()
        for name in report.loaded {
            if let rule = rules[name] { registerSchedules(of: rule, now: now) }
        }
        for name in report.removed { scheduler.remove(rule: name) }
        alarm.set(scheduler.nextDue())
        return report
    }

    /// Replays a dead letter: its event goes again to the rule that failed on it, and the letter is removed.
    public func replayDeadLetter(id: String) throws(EngineError) -> Bool {
        guard let letter = store.data.deadLetters[id] else { return false }
        var event = letter.event
        event.id = "\(letter.event.id)/replay-\(clock.now().milliseconds)"
        do {
            try store.commit(.deadLetterRemoved(id: id))
            try store.commit(.eventAccepted(event, dedupe: false, movesLedger: true))
        } catch {
            throw .journal(error)
        }
        deliver(event, note: "replay of dead letter \(id)", onlyRule: letter.rule)
        return true
    }

    /// An operator's decision on a message in doubt (``LedgerStatus/inDoubt``): it moves to
    /// SUCCESS (`delivered`) or FAILED as a status would, and rules see `message.success` or
    /// `message.failed` with `ev.message`; a FAILED one is resent by its retry policy, if it has one.
    public func resolveInDoubt(id: String, delivered: Bool) throws(ResolutionError) -> MessageRecord {
        guard let record = store.data.ledger[id] else { throw .notFound }
        guard record.status == .inDoubt else { throw .notInDoubt(record.status) }
        let now = clock.now()
        let event = EngineEvent(id: StatusSource.operatorEventID(of: id), kind: .messageStatus(MessageStatusEvent(
            messageID: id, status: delivered ? .success : .failed, messageType: record.messageType,
            sendAt: ISO8601Timestamp.format(Date(timeIntervalSince1970: record.sentAt)), createdAt: ISO8601Timestamp.format(now.date))), at: now)
        do {
            try store.commit(.eventAccepted(event, dedupe: false, movesLedger: true))
        } catch {
            throw .journal(error)
        }
        logger.notice("a message in doubt was resolved by an operator", metadata: [
            "message": "\(id)", "rule": "\(record.rule)", "status": "\(delivered ? "SUCCESS" : "FAILED")",
        ])
        inbox.append(event)
        return store.data.ledger[id] ?? record
    }

    func logJournalFailure(_ error: DurabilityError) {
        logger.error("journal write failed", metadata: ["error": "\(error)"])
    }

    /// The dispatcher alone, for `sidobot-bench dispatch`: each webhook becomes an event and is
    /// routed, traced and run as if accepted, without what acceptance adds (deduplication, the
    /// inflight set, the journal, completion marks). Not for use outside benchmarks.
    @_spi(Benchmarks) public func dispatchWithoutAcceptance(_ webhooks: [WebhookEvent]) async {
        let now = clock.now()
        for webhook in webhooks {
            guard case .messageStatus(let update) = webhook.payload else { continue }
            let event = EngineEvent(id: webhook.id, kind: .messageStatus(MessageStatusEvent(
                messageID: update.whatsappMessageID, status: update.status, messageType: update.messageType,
                sendAt: update.sendAt, createdAt: webhook.createdAt)), at: now)
            let dispatched = dispatcher.dispatch(event, journaled: false)
            for run in dispatched.suspended { continueRun(run) }
        }
        await waitUntilIdle()
    }
}

/// `sidobe.send*` and `sidobe.resend` from the rules, through ``SendRelay``.
extension Engine {
    func send(_ message: OutgoingMessage, rule: String, key: String?, retry: RetryPlan?, run: RunTable.Tag) async -> [LuaValue] {
        await sender.send(message, rule: rule, key: key, attempt: 1, resendOf: nil, retry: retry, run: run)
    }

    func resend(_ id: String, phone: String?, isAsync: Bool?, rule: String, run: RunTable.Tag) async -> [LuaValue] {
        await sender.resend(id, phone: phone, isAsync: isAsync, rule: rule, run: run)
    }
}
