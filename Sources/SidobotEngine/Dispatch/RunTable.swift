import Logging

/// The runs going on, by the tag LuaSandbox passes to host functions: handler runs, rule files
/// loading, and the engine's own jobs (a resend). It keeps what each handler run changed since it
/// last gave up the engine, and journals it as one record when the run suspends or ends (a run's
/// transaction), with the run's completion mark at the end.
///
/// Owned by the engine actor.
final class RunTable {
    /// A run's tag.
    typealias Tag = Int

    private enum Kind {
        /// A handler run for an event: its changes are staged until it gives up the engine.
        case handler(count: DispatchCount, trace: TraceStore.Position)
        /// A rule file's top level while it loads, or the engine's own work: changes commit at once.
        case loading, engine
    }

    private struct Run {
        let rule: String
        let eventID: String
        let kind: Kind
        /// Changes applied since the run last gave up the engine, to be journaled together.
        var staged: [Mutation] = []
        /// Whether part of the run is journaled already: it suspended, or made more changes than
        /// one record holds. Its completion is then written at once, never deferred.
        var journaledBefore = false
        /// `sidobe.send*` and `resend` calls so far: each one's position names it (``SendKey``).
        var sends = 0
    }

    private var runs: [Tag: Run] = [:]
    private var nextTag = 1
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    private let store: Store
    private let logger: Logger

    init(store: Store, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    private func allocate(_ run: Run) -> Tag {
        let tag = nextTag
        nextTag += 1
        runs[tag] = run
        return tag
    }

    /// A handler run of `rule` for `eventID` begins.
    func beginHandler(rule: String, eventID: String, count: DispatchCount, trace: TraceStore.Position) -> Tag {
        allocate(Run(rule: rule, eventID: eventID, kind: .handler(count: count, trace: trace)))
    }

    /// A rule file's top level begins to run (registering its handlers).
    func beginLoading(rule: String) -> Tag { allocate(Run(rule: rule, eventID: "", kind: .loading)) }

    /// One of the engine's own jobs begins (counted, so ``isIdle`` waits for it).
    func beginEngineWork() -> Tag { allocate(Run(rule: "", eventID: "", kind: .engine)) }

    /// The rule a run belongs to.
    func rule(of tag: Tag) -> String? { runs[tag]?.rule }

    /// The event a handler run is handling (nil for other runs).
    func eventID(of tag: Tag) -> String? {
        guard let run = runs[tag], case .handler = run.kind else { return nil }
        return run.eventID
    }

    /// The event of a handler run and the position of the send it is making now (1 for its
    /// first): what names a send without `key =` (nil for other runs).
    func nextSend(of tag: Tag) -> (eventID: String, ordinal: Int)? {
        guard let index = runs.index(forKey: tag), case .handler = runs.values[index].kind else { return nil }
        runs.values[index].sends += 1
        return (runs.values[index].eventID, runs.values[index].sends)
    }

    /// Where the trace of a handler run's event is.
    func tracePosition(of tag: Tag) -> TraceStore.Position? { traceTarget(of: tag)?.position }

    /// The trace of a handler run's event and the rule whose part in it the run is (one look-up:
    /// every traced action of every run asks).
    func traceTarget(of tag: Tag) -> (position: TraceStore.Position, rule: String)? {
        guard let run = runs[tag], case .handler(_, let trace) = run.kind else { return nil }
        return (trace, run.rule)
    }

    /// A change made by the run with this tag: in a handler run it is applied now and journaled
    /// with the run's other changes when the run suspends or ends; otherwise it is journaled now.
    ///
    /// A run that makes more than ``Durability/maxChangesPerRecord`` changes (a loop scheduling a
    /// million reminders) has them journaled in pieces of that size as it goes: such a run is not
    /// atomic, and a crash in the middle keeps the pieces written (it runs again after the restart).
    func record(_ mutation: Mutation, run tag: Tag) throws(DurabilityError) {
        // One look-up: this is called for every state write and timer of every run.
        guard let index = runs.index(forKey: tag), case .handler = runs.values[index].kind else {
            try store.commit(mutation)
            return
        }
        store.stage(mutation)
        runs.values[index].staged.append(mutation)
        guard runs.values[index].staged.count >= Durability.maxChangesPerRecord else { return }
        let piece = runs.values[index].staged
        runs.values[index].staged.removeAll()
        runs.values[index].journaledBefore = true
        commit(piece, of: runs.values[index])
    }

    /// A change that must be in the journal before the engine goes on (a send's intent, before
    /// its request leaves): journaled now, with whatever the run staged since it last gave up the
    /// engine, as one record. Outside a handler run, journaled alone.
    func commitNow(_ mutation: Mutation, run tag: Tag) throws(DurabilityError) {
        guard let index = runs.index(forKey: tag), case .handler = runs.values[index].kind else {
            try store.commit(mutation)
            return
        }
        store.stage(mutation)
        var records = runs.values[index].staged
        records.append(mutation)
        runs.values[index].staged = []
        runs.values[index].journaledBefore = true
        try store.commitStaged(records)
    }

    /// The run suspends in a `sidobe.*` call: what it changed so far is journaled before the
    /// request goes out.
    func suspended(_ tag: Tag) {
        guard let index = runs.index(forKey: tag), case .handler = runs.values[index].kind else { return }
        let staged = runs.values[index].staged
        runs.values[index].staged = []
        runs.values[index].journaledBefore = true
        commit(staged, of: runs.values[index])
    }

    /// A run ended. A handler run's last changes are journaled in one record with its completion
    /// (the rule's, or the event's when it was the last run), so a crash keeps all of them or none,
    /// and a run that never suspended happens exactly once; a run that changed nothing and never
    /// suspended only queues its completion mark.
    func end(_ tag: Tag) {
        guard let run = runs.removeValue(forKey: tag) else { return }
        defer { if runs.isEmpty { releaseIdleWaiters() } }
        guard case .handler(let count, _) = run.kind else { return }
        let mark = count.finish(rule: run.rule)
        if let mark, run.staged.isEmpty, !run.journaledBefore {
            store.applyQueued(mark)
            return
        }
        var records = run.staged
        if let mark {
            store.stage(mark)
            records.append(mark)
        }
        commit(records, of: run)
    }

    private func commit(_ records: [Mutation], of run: Run) {
        do {
            try store.commitStaged(records)
        } catch {
            logger.error("could not journal a handler run's changes; they are kept in memory and written with the next record",
                         metadata: ["rule": "\(run.rule)", "event": "\(run.eventID)", "error": "\(error)"])
        }
    }

    /// Runs going on.
    var count: Int { runs.count }

    /// Whether nothing runs.
    var isIdle: Bool { runs.isEmpty }

    /// Resumes `waiter` once nothing runs (at once if nothing does).
    func whenIdle(_ waiter: CheckedContinuation<Void, Never>) {
        if runs.isEmpty { waiter.resume() } else { idleWaiters.append(waiter) }
    }

    /// Resumes every idle waiter now (their wait timed out).
    func releaseIdleWaiters() {
        let waiters = idleWaiters
        idleWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }
}

/// The runs one dispatched event started, counted down as they end, so the journal learns when a
/// rule is done with the event (after a restart it goes only to the others) and when it is done.
/// Shared by the runs (a class): no lookup by event id on the hot path.
final class DispatchCount {
    private let eventID: String
    private let journaled: Bool
    private var remaining: Int
    /// Runs left per rule, in dispatch order, when the event reaches more than one rule (a handful
    /// at most: no dictionary needed; none at all for the usual single run).
    private var byRule: [(rule: String, left: Int)] = []

    init(eventID: String, journaled: Bool, rules: some Collection<String>) {
        self.eventID = eventID
        self.journaled = journaled
        remaining = rules.count
        guard rules.count > 1 else { return }
        for rule in rules {
            if let index = byRule.firstIndex(where: { $0.rule == rule }) {
                byRule[index].left += 1
            } else {
                byRule.append((rule, 1))
            }
        }
    }

    /// One run of `rule` ended: the completion mark to journal, if this was the rule's last run
    /// (`ruleDone`) or the event's (`eventDone`), and if the event is journaled at all.
    func finish(rule: String) -> Mutation? {
        remaining -= 1
        var ruleLeft = 0
        if let index = byRule.firstIndex(where: { $0.rule == rule }) {
            byRule[index].left -= 1
            ruleLeft = byRule[index].left
        }
        guard journaled else { return nil }
        if remaining <= 0 { return .eventDone(id: eventID) }
        return ruleLeft <= 0 ? .ruleDone(id: eventID, rule: rule) : nil
    }
}
