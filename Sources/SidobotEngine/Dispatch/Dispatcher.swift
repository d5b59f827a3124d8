import DequeModule
import Logging
import LuaSandbox

/// Routes events to the handlers that listen and runs them, one run per handler, tracing each.
///
/// Each run starts at once on the engine's executor and goes as far as its first `sidobe.*`
/// call before the next run starts, so every rule sees events in arrival order, while a run
/// waiting on Sidobe holds up nothing: a run that suspends is handed back (``Suspended``) for the
/// engine to continue, and ends through ``finish(_:failure:)``.
///
/// A run that computes past its slice pauses (``LuaSandbox/LuaLimits/slice``) and is handed back
/// the same way. Until it ends, its rule is *computing*: the runs of later events for that rule
/// wait, in arrival order, and start when it ends (``startWaiting(after:)``), so a backlog of one
/// busy rule's events costs the other rules one routing each, not one slice each.
///
/// Owned by the engine actor.
final class Dispatcher {
    /// A run that suspended in a `sidobe.*` call or paused at the end of its slice.
    struct Suspended {
        let tag: RunTable.Tag
        let rule: LoadedRule
        let event: EngineEvent
        let run: LuaSuspendedRun
    }

    /// What a run's end asks of the engine.
    struct Ended {
        let rule: LoadedRule
        /// The rule hit a limit: its state must be rebuilt from the file before it runs again.
        var needsRebuild = false
        /// This run quarantined the rule: its schedules stop until it is reloaded.
        var quarantined = false
    }

    /// The runs an event started that need the engine: those that suspended, and those that ended
    /// asking for something.
    struct Dispatched {
        var suspended: [Suspended] = []
        var ended: [Ended] = []
    }

    /// A run whose rule was computing when its event came: it starts when that run ends.
    private struct Waiting {
        let tag: RunTable.Tag
        let handler: LuaFunction
        let rule: LoadedRule
        let packed: LuaPackedValues?
        let fields: [(String, LuaValue)]
        let event: EngineEvent
    }

    private var routes = RouteTable<DispatchTarget>()
    /// Rules with a run that paused at the end of its slice, and the runs waiting for it to end.
    /// A deque: a burst can line up a hundred thousand runs behind one pause, and they leave from
    /// the front (an array's `removeFirst` made draining them quadratic: seconds of the engine).
    private var computing: [String: Deque<Waiting>] = [:]
    private let rules: RuleSet
    private let runs: RunTable
    private let traces: TraceStore
    private let store: Store
    private let services: RunServices
    private let clock: any EngineClock
    private let limits: LuaLimits
    private let quarantineAfter: Int
    private let logger: Logger

    init(rules: RuleSet, runs: RunTable, traces: TraceStore, store: Store, services: RunServices, clock: any EngineClock,
         limits: LuaLimits, quarantineAfter: Int, logger: Logger) {
        self.rules = rules
        self.runs = runs
        self.traces = traces
        self.store = store
        self.services = services
        self.clock = clock
        self.limits = limits
        self.quarantineAfter = quarantineAfter
        self.logger = logger
    }

    /// The rules changed (a load, a reload, a rebuild): routing starts again from them.
    func rulesChanged() { routes.setRules(rules.sorted.map(\.route)) }

    /// Routes `event` and starts its runs; returns those that suspended.
    ///
    /// - Parameters:
    ///   - note: a line for the event's trace (why it is dispatched again, say).
    ///   - journaled: whether the event is in the journal (its completion is journaled too).
    ///   - onlyRule: only this rule's handlers (a dead letter's replay).
    ///   - exceptRules: not these rules (done with the event before a restart).
    func dispatch(_ event: EngineEvent, note: String? = nil, journaled: Bool = true, onlyRule: String? = nil,
                  exceptRules: Set<String> = []) -> Dispatched {
        let routed = routes.route(event, onlyRule: onlyRule, exceptRules: exceptRules, ledger: store.data.ledger)
        var trace = Trace(event: event, eventName: routed.name)
        if let note { trace.notes.append(note) }
        if case .messageStatus(let m) = event.kind, m.stale {
            trace.notes.append("stale status: the message is already \(store.data.ledger[m.messageID]?.status.rawValue ?? "final"); only message.status handlers run, with ev.stale = true")
        }
        for (rule, reason) in routed.skipped {
            trace.rules.append(.init(rule: rule, outcome: .skipped, detail: reason, startedAt: event.at, finishedAt: event.at))
        }
        if routed.targets.isEmpty && routed.skipped.isEmpty { trace.notes.append("no rule listens for \(routed.name)") }
        let position = traces.begin(trace)
        guard !routed.targets.isEmpty else {
            // Nothing ran, so nothing would run again after a crash: the mark may wait.
            if journaled { store.applyQueued(.eventDone(id: event.id)) }
            return Dispatched()
        }
        let count = DispatchCount(eventID: event.id, journaled: journaled, rules: routed.targets.lazy.map(\.rule))
        // For several handlers the event is converted once (LuaSandbox's packed path); one handler
        // gets it written straight into its state. A value that cannot be converted is reported by
        // each run.
        let packed = routed.targets.count > 1 ? try? LuaPackedValues(table: routed.fields, limits: limits) : nil
        var dispatched = Dispatched()
        for target in routed.targets {
            start(target.handler.function, of: target.handler.rule, packed: packed, fields: routed.fields, event: event, count: count,
                  trace: position, into: &dispatched)
        }
        return dispatched
    }

    /// Starts one handler run (it runs synchronously up to its end, its first `sidobe.*` call or the
    /// end of its slice), or lines it up behind the rule's computing run.
    private func start(_ handler: LuaFunction, of rule: LoadedRule, packed: LuaPackedValues?, fields: [(String, LuaValue)],
                       event: EngineEvent, count: DispatchCount, trace: TraceStore.Position, into dispatched: inout Dispatched) {
        let tag = runs.beginHandler(rule: rule.name, eventID: event.id, count: count, trace: trace)
        let started = clock.now()
        traces.update(trace) { $0.rules.append(.init(rule: rule.name, outcome: .running, startedAt: started)) }
        if computing[rule.name] != nil {
            computing[rule.name]!.append(Waiting(tag: tag, handler: handler, rule: rule, packed: packed, fields: fields, event: event))
            return
        }
        launch(tag: tag, handler, of: rule, packed: packed, fields: fields, event: event, into: &dispatched)
    }

    /// A computing run of this rule ended: starts the runs that waited for it, in order, until one
    /// of them pauses in turn. A waiting run whose rule was replaced meanwhile (rebuilt after an
    /// abort, reloaded) runs the same handler of the new version.
    func startWaiting(after run: Suspended) -> Dispatched {
        var dispatched = Dispatched()
        let name = run.rule.name
        guard run.run.isPaused, var waiting = computing.removeValue(forKey: name) else { return dispatched }
        while computing[name] == nil, let next = waiting.popFirst() {
            let (rule, handler) = current(next.rule, next.handler)
            launch(tag: next.tag, handler, of: rule, packed: next.packed, fields: next.fields, event: next.event, into: &dispatched)
        }
        // One of them paused in turn: the rest wait for it, moved back whole rather than copied.
        if !waiting.isEmpty {
            if let queuedMeanwhile = computing.removeValue(forKey: name) { waiting.append(contentsOf: queuedMeanwhile) }
            computing[name] = waiting
        }
        return dispatched
    }

    /// The loaded version of `rule` and its handler matching `handler` (same event, same position).
    private func current(_ rule: LoadedRule, _ handler: LuaFunction) -> (LoadedRule, LuaFunction) {
        guard let now = rules[rule.name], now !== rule else { return (rule, handler) }
        for name in rule.registration.eventNames {
            if let index = rule.handlers(for: name).firstIndex(of: handler) {
                let handlers = now.handlers(for: name)
                if index < handlers.count { return (now, handlers[index]) }
            }
        }
        return (rule, handler)
    }

    private func launch(tag: RunTable.Tag, _ handler: LuaFunction, of rule: LoadedRule, packed: LuaPackedValues?,
                        fields: [(String, LuaValue)], event: EngineEvent, into dispatched: inout Dispatched) {
        rule.runStarted()
        let start: LuaRunStart
        do {
            if let packed {
                start = try rule.state.start(handler, packed: packed, tag: tag)
            } else {
                start = try rule.state.start(handler, table: fields, tag: tag)
            }
        } catch {
            let ended = finish(tag: tag, rule: rule, event: event, failure: error)
            if ended.needsRebuild || ended.quarantined { dispatched.ended.append(ended) }
            return
        }
        switch start {
        case .finished:
            let ended = finish(tag: tag, rule: rule, event: event, failure: nil)
            if ended.needsRebuild || ended.quarantined { dispatched.ended.append(ended) }
        case .suspended(let run):
            if run.isPaused, computing[rule.name] == nil { computing[rule.name] = [] }
            dispatched.suspended.append(Suspended(tag: tag, rule: rule, event: event, run: run))
        }
    }

    /// A suspended run ended, well or not.
    func finish(_ run: Suspended, failure: LuaError?) -> Ended {
        finish(tag: run.tag, rule: run.rule, event: run.event, failure: failure)
    }

    /// A handler run ended: counted, traced, a failure logged and kept as a dead letter, and its
    /// changes and completion journaled.
    private func finish(tag: RunTable.Tag, rule: LoadedRule, event: EngineEvent, failure: LuaError?) -> Ended {
        var ended = Ended(rule: rule)
        var outcome = RunOutcome.ran
        var limit: LuaLimit?
        var detail: String?
        if let failure {
            let text = failure.description
            detail = text
            switch failure {
            case .limitExceeded(let exceeded):
                outcome = .aborted
                limit = exceeded.limit
                logger.error("rule aborted: it hit a limit", metadata: ["rule": "\(rule.name)", "event": "\(event.id)", "error": "\(text)"])
                services.addDeadLetter(rule: rule.name, event: event, reason: .limit, error: text, run: tag)
                ended.needsRebuild = true
            case .cancelled:
                outcome = .cancelled
                logger.warning("handler run cancelled", metadata: ["rule": "\(rule.name)", "event": "\(event.id)"])
            default:
                outcome = .error
                logger.error("rule failed", metadata: ["rule": "\(rule.name)", "event": "\(event.id)", "error": "\(text)"])
                services.addDeadLetter(rule: rule.name, event: event, reason: .error, error: text, run: tag)
            }
        }
        if rule.runEnded(outcome, limit: limit, error: detail, quarantineAfter: quarantineAfter) {
            ended.quarantined = true
            routes.setQuarantine(rule.name, after: rule.stats.consecutiveAborts)
            logger.critical("RULE QUARANTINED: it aborted \(rule.stats.consecutiveAborts) times in a row and will not run until its file is fixed and reloaded",
                            metadata: ["rule": "\(rule.name)"])
        }
        let finished = clock.now()
        if let position = runs.tracePosition(of: tag) {
            traces.update(position) { trace in
                if let index = trace.rules.lastIndex(where: { $0.rule == rule.name && $0.outcome == .running }) {
                    trace.rules[index].outcome = outcome
                    trace.rules[index].detail = detail
                    trace.rules[index].finishedAt = finished
                }
            }
        }
        // Debug, not info: a busy engine runs thousands of handlers a second; failures are logged
        // at error above, and every run is in its event's trace.
        logger.debug("handler run finished", metadata: ["rule": "\(rule.name)", "event": "\(event.id)", "outcome": "\(outcome)"])
        runs.end(tag)
        return ended
    }
}
