import Foundation
import Logging
import LuaSandbox

extension Engine {
    /// Routes an event to the handlers that listen for it and starts one run per handler, in order.
    ///
    /// Each run starts immediately on the engine's executor and goes as far as its first `sidobe.*`
    /// call before the next run starts, so every rule sees events in arrival order, while a run
    /// waiting on Sidobe holds up nothing.
    func dispatch(_ event: EngineEvent, note: String? = nil, journaled: Bool = true, onlyRule: String? = nil,
                  exceptRules: Set<String> = []) {
        var event = event
        if case .messageStatus(let status) = event.kind, !status.stale, !sendsInFlight.isEmpty, store.data.ledger[status.messageID] == nil {
            // Perhaps the webhook of a send whose answer the engine has not read yet: see SendsInFlight.
            sendsInFlight.hold(event)
            return
        }
        if case .messageStatus(var status) = event.kind, !status.stale, let record = store.data.ledger[status.messageID],
           !record.history.contains(where: { $0.event == event.id }) {
            // The ledger knows the message but this event moved nothing: the status arrived before the
            // engine knew the message (a webhook racing the answer to a sync send), and the answer has
            // applied it since. Rules already saw it once: now it is a duplicate.
            status.stale = true
            event.kind = .messageStatus(status)
        }
        if case .timer(let timer) = event.kind, timer.name == Self.retryTimerName {
            performRetry(event, timer: timer)
            return
        }
        if case .messageStatus(let status) = event.kind, !status.stale, status.status == "FAILED" {
            // Planned when the event is dispatched, not when it is accepted, so an event dispatched
            // again after a crash plans it too; planRetry does nothing if it was already planned.
            planRetry(afterFailureOf: status.messageID)
        }
        let routed = route(event, onlyRule: onlyRule, exceptRules: exceptRules)
        var trace = Trace(event: event, eventName: routed.name)
        if let note { trace.notes.append(note) }
        if case .messageStatus(let m) = event.kind, m.stale {
            trace.notes.append("stale status: the message is already \(store.data.ledger[m.messageID]?.status ?? "final"); only message.status handlers run, with ev.stale = true")
        }
        for (rule, reason) in routed.skipped {
            trace.rules.append(.init(rule: rule, outcome: "skipped", detail: reason, startedAt: event.at, finishedAt: event.at))
        }
        if routed.targets.isEmpty && routed.skipped.isEmpty { trace.notes.append("no rule listens for \(routed.name)") }
        let position = traces.begin(trace)
        guard !routed.targets.isEmpty else {
            // Nothing ran, so nothing would run again after a crash: the mark may wait.
            if journaled { store.applyQueued(.eventDone(id: event.id)) }
            return
        }
        let count = DispatchCount(eventID: event.id, journaled: journaled, targets: routed.targets)
        // For several handlers the event is converted once (LuaSandbox's packed path); one handler
        // gets it written straight into its state. A value that cannot be converted is reported by
        // each run.
        let packed = routed.targets.count > 1 ? try? LuaPackedValues(table: routed.fields, limits: configuration.limits) : nil
        for target in routed.targets {
            startRun(target, packed: packed, fields: routed.fields, event: event, count: count, tracePosition: position)
        }
    }

    struct Target {
        var rule: LoadedRule
        var function: LuaFunction
    }

    /// The event's name, its Lua table (as fields), the handler runs it causes, and the rules it skips (with why).
    struct Routed {
        var name: String
        var fields: [(String, LuaValue)]
        var targets: [Target] = []
        var skipped: [(String, String)] = []
    }

    /// The handlers listening for one event name, rule by rule in name order: computed once per
    /// name and kept until the set of rules changes.
    func listeners(for name: String) -> [RouteEntry] {
        if let cached = routeCache[name] { return cached }
        let entries = Self.listeners(in: rules, names: [name])
        routeCache[name] = entries
        return entries
    }

    /// The handlers for a (fresh) message status, `message.failed` and the like, then `message.status`.
    func listeners(forStatus specific: String) -> [RouteEntry] {
        if let cached = statusRouteCache[specific] { return cached }
        let entries = Self.listeners(in: rules, names: [specific, "message.status"])
        statusRouteCache[specific] = entries
        return entries
    }

    static func listeners(in rules: [String: LoadedRule], names: [String]) -> [RouteEntry] {
        rules.values.sorted { $0.name < $1.name }.compactMap { rule -> RouteEntry? in
            let handlers = names.flatMap { rule.handlers(for: $0) }
            return handlers.isEmpty ? nil : RouteEntry(rule: rule, handlers: handlers)
        }
    }

    func route(_ event: EngineEvent, onlyRule: String?, exceptRules: Set<String> = []) -> Routed {
        func add(_ entries: [RouteEntry], to routed: inout Routed) {
            for entry in entries {
                let rule = entry.rule
                if let onlyRule, rule.name != onlyRule { continue }
                if !exceptRules.isEmpty, exceptRules.contains(rule.name) { continue }
                if rule.stats.quarantined {
                    routed.skipped.append((rule.name, "quarantined after \(rule.stats.consecutiveAborts) consecutive aborts; fix the rule file to release it"))
                    continue
                }
                for function in entry.handlers { routed.targets.append(Target(rule: rule, function: function)) }
            }
        }
        switch event.kind {
        case .messageStatus(let m):
            var fields: [(String, LuaValue)] = [
                ("event_id", .string(event.id)), ("message_id", .string(m.messageID)), ("status", .string(m.status)),
                ("message_type", .string(m.messageType)), ("send_at", .string(m.sendAt)), ("created_at", .string(m.createdAt)),
            ]
            if let record = store.data.ledger[m.messageID] { fields.append(("message", record.luaValue)) }
            if m.stale { fields.append(("stale", .bool(true))) }
            let specific = Self.statusEventName(m.status)
            var routed = Routed(name: m.stale ? "message.status" : specific, fields: fields)
            add(m.stale ? listeners(for: "message.status") : listeners(forStatus: specific), to: &routed)
            return routed
        case .hook(let name, let body, let contentType):
            let eventName = "hook." + name
            var routed = Routed(name: eventName, fields: [
                ("event_id", .string(event.id)), ("name", .string(name)), ("body", body), ("content_type", .string(contentType)),
            ])
            add(listeners(for: eventName), to: &routed)
            return routed
        case .timer(let timer):
            let name = "timer." + timer.name
            var routed = Routed(name: name, fields: [
                ("timer_id", .string(timer.id.description)), ("name", .string(timer.name)), ("payload", timer.payload),
                ("due", Self.seconds(timer.due)), ("fired_at", Self.seconds(event.at)),
            ])
            if exceptRules.contains(timer.rule) {
                // Done with it before a restart.
            } else if let rule = rules[timer.rule] {
                let handlers = rule.handlers(for: name)
                if rule.stats.quarantined, !handlers.isEmpty {
                    routed.skipped.append((rule.name, "quarantined after \(rule.stats.consecutiveAborts) consecutive aborts; fix the rule file to release it"))
                } else if handlers.isEmpty {
                    routed.skipped.append((rule.name, "the rule has no on(\"\(name)\") handler (any more); the timer fired into nothing"))
                } else {
                    for function in handlers { routed.targets.append(Target(rule: rule, function: function)) }
                }
            } else {
                routed.skipped.append((timer.rule, "the rule that set this timer is no longer loaded"))
            }
            return routed
        case .schedule(let ruleName, let handler, let scheduledAt):
            var routed = Routed(name: handler, fields: [("scheduled_at", Self.seconds(scheduledAt)), ("fired_at", Self.seconds(event.at))])
            if exceptRules.contains(ruleName) {
                // Done with it before a restart.
            } else if let rule = rules[ruleName], let schedule = rule.registration.schedules.first(where: { $0.key == handler }) {
                if rule.stats.quarantined {
                    routed.skipped.append((rule.name, "quarantined; fix the rule file to release it"))
                } else {
                    routed.targets.append(Target(rule: rule, function: schedule.function))
                }
            } else {
                routed.skipped.append((ruleName, "the schedule \(handler) is no longer registered"))
            }
            return routed
        case .custom(let name, let payload, let fromRule):
            var fields: [(String, LuaValue)] = [("name", .string(name)), ("payload", payload), ("event_id", .string(event.id))]
            if name == "message.exhausted", case .object(let details) = payload {
                // Raised by the engine: its details are the event's own fields, like a message event's.
                for (key, value) in details.sorted(by: { $0.key < $1.key }) where !fields.contains(where: { $0.0 == key }) {
                    fields.append((key, value))
                }
            }
            if let fromRule { fields.append(("from_rule", .string(fromRule))) }
            var routed = Routed(name: name, fields: fields)
            add(listeners(for: name), to: &routed)
            return routed
        case .engineStart:
            var routed = Routed(name: "engine.start", fields: [("started_at", Self.seconds(event.at))])
            add(listeners(for: "engine.start"), to: &routed)
            return routed
        }
    }

    /// `message.failed` for `FAILED`, and so on (the common ones without building a string).
    static func statusEventName(_ status: String) -> String {
        switch status {
        case "FAILED": "message.failed"
        case "SUCCESS": "message.success"
        case "PENDING": "message.pending"
        default: "message." + status.lowercased()
        }
    }

    /// Starts one handler run. It runs synchronously up to its end or its first `sidobe.*` call;
    /// only a run that suspends gets a task to continue in.
    func startRun(_ target: Target, packed: LuaPackedValues?, fields: [(String, LuaValue)], event: EngineEvent,
                  count: DispatchCount, tracePosition: TraceStore.Position) {
        let rule = target.rule
        let tag = allocateRunTag()
        var context = RunContext(rule: rule.name, eventID: event.id)
        context.dispatch = count
        context.tracePosition = tracePosition
        runs[tag] = context
        let started = clock.now()
        traces.update(tracePosition) { $0.rules.append(.init(rule: rule.name, outcome: "running", startedAt: started)) }
        rule.stats.runs += 1
        let start: LuaRunStart
        do {
            if let packed {
                start = try rule.state.start(target.function, packed: packed, tag: tag)
            } else {
                start = try rule.state.start(target.function, table: fields, tag: tag)
            }
        } catch {
            finishRun(tag: tag, rule: rule, event: event, failure: error)
            return
        }
        switch start {
        case .finished:
            finishRun(tag: tag, rule: rule, event: event, failure: nil)
        case .suspended(let suspended):
            Task.immediate {
                var failure: LuaError?
                do {
                    _ = try await rule.state.resume(suspended)
                } catch let error as LuaError {
                    failure = error
                } catch {
                    failure = .host("\(error)")
                }
                self.finishRun(tag: tag, rule: rule, event: event, failure: failure)
            }
        }
    }

    /// A handler run ended, well or not: counted, traced, and completed in the journal.
    func finishRun(tag: Int, rule: LoadedRule, event: EngineEvent, failure: LuaError?) {
        var outcome = "ran"
        var detail: String?
        if let failure {
            (outcome, detail) = handleFailure(failure, rule: rule, event: event, tag: tag)
        } else {
            rule.stats.consecutiveAborts = 0
        }
        let finished = clock.now()
        rule.countRun(outcome: outcome)
        if let position = runs[tag]?.tracePosition {
            traces.update(position) { trace in
                if let index = trace.rules.lastIndex(where: { $0.rule == rule.name && $0.outcome == "running" }) {
                    trace.rules[index].outcome = outcome
                    trace.rules[index].detail = detail
                    trace.rules[index].finishedAt = finished
                }
            }
        }
        // Debug, not info: a busy engine runs thousands of handlers a second; failures are logged
        // at error by handleFailure, and every run is in its event's trace.
        logger.debug("handler run finished", metadata: [
            "rule": "\(rule.name)", "event": "\(event.id)", "outcome": "\(outcome)",
        ])
        completeRun(tag: tag)
        checkIdle()
    }

    /// A run ended: its last changes are journaled in one record with its completion (the rule's,
    /// or the event's when it was the last run), so a crash keeps all of them or none, and a run
    /// that never suspended happens exactly once. A run that changed nothing and never suspended
    /// only defers its completion mark.
    func completeRun(tag: Int) {
        guard let run = runs.removeValue(forKey: tag) else { return }
        let mark = run.dispatch?.finish(rule: run.rule)
        if let mark, run.staged.isEmpty, !run.journaledBefore {
            store.applyQueued(mark)
            return
        }
        var records = run.staged
        if let mark {
            store.stage(mark)
            records.append(mark)
        }
        commitRunRecords(records, rule: run.rule, eventID: run.eventID)
    }

    /// The run with this tag suspends in a `sidobe.*` call: what it changed so far is journaled
    /// before the request goes out.
    func runSuspended(tag: Int) {
        guard var run = runs[tag], run.isHandlerRun else { return }
        let staged = run.staged
        run.staged = []
        run.journaledBefore = true
        runs[tag] = run
        commitRunRecords(staged, rule: run.rule, eventID: run.eventID)
    }

    func commitRunRecords(_ records: [Mutation], rule: String, eventID: String) {
        do {
            try store.commitApplied(records)
        } catch {
            logger.error("could not journal a handler run's changes; they are kept in memory and written with the next record",
                         metadata: ["rule": "\(rule)", "event": "\(eventID)", "error": "\(error)"])
        }
    }

    /// A change made by the run with this tag: inside a handler run it is applied now and journaled
    /// with the run's other changes when the run suspends or ends; elsewhere (a rule's top level,
    /// the engine's own work) it is journaled now.
    ///
    /// A run that makes more than ``EngineStore/maxChangesPerRecord`` changes (a loop scheduling a
    /// million reminders) has them journaled in pieces of that size as it goes: such a run is not
    /// atomic, and a crash in the middle keeps the pieces written (it runs again after the restart).
    func record(_ mutation: Mutation, tag: Int) throws(DurabilityError) {
        // One look-up for the run: this is called for every state write and timer of every run.
        guard let run = runs.index(forKey: tag), runs.values[run].isHandlerRun else {
            try store.commit(mutation)
            return
        }
        store.stage(mutation)
        runs.values[run].staged.append(mutation)
        guard runs.values[run].staged.count >= EngineStore.maxChangesPerRecord else { return }
        let piece = runs.values[run].staged
        runs.values[run].staged.removeAll()
        runs.values[run].journaledBefore = true
        commitRunRecords(piece, rule: runs.values[run].rule, eventID: runs.values[run].eventID)
    }

    /// Records a failed run: counted, logged with file:line, put in the dead-letter list; a limit
    /// abort also rebuilds the rule's state, and quarantines the rule after too many in a row.
    func handleFailure(_ error: LuaError, rule: LoadedRule, event: EngineEvent, tag: Int) -> (String, String) {
        let text = error.description
        rule.stats.lastError = text
        var reason = "error"
        switch error {
        case .limitExceeded:
            reason = "limit"
            rule.stats.aborts += 1
            rule.stats.consecutiveAborts += 1
            logger.error("rule aborted: it hit a limit", metadata: ["rule": "\(rule.name)", "event": "\(event.id)", "error": "\(text)"])
            if rule.stats.consecutiveAborts >= configuration.quarantineAfter && !rule.stats.quarantined {
                rule.stats.quarantined = true
                logger.critical("RULE QUARANTINED: it aborted \(rule.stats.consecutiveAborts) times in a row and will not run until its file is fixed and reloaded", metadata: ["rule": "\(rule.name)"])
            }
            rebuildState(of: rule)
        case .cancelled:
            reason = "cancelled"
            logger.warning("handler run cancelled", metadata: ["rule": "\(rule.name)", "event": "\(event.id)"])
        default:
            rule.stats.errors += 1
            rule.stats.consecutiveAborts = 0
            logger.error("rule failed", metadata: ["rule": "\(rule.name)", "event": "\(event.id)", "error": "\(text)"])
        }
        if reason != "cancelled" { addDeadLetter(rule: rule.name, event: event, reason: reason, error: text, tag: tag) }
        return (reason == "limit" ? "aborted" : reason, text)
    }

    /// Keeps a failed input for replay. From a failed run (`tag`), with the run's own changes.
    func addDeadLetter(rule: String, event: EngineEvent, reason: String, error: String, tag: Int = 0) {
        deadLetterCounter += 1
        let letter = DeadLetter(id: "dl-\(clock.now().milliseconds)-\(deadLetterCounter)", rule: rule, event: event,
                                reason: reason, error: error, at: clock.now())
        do {
            try record(.deadLetterAdded(letter), tag: tag)
        } catch {
            logger.error("could not journal a dead letter", metadata: ["error": "\(error)"])
        }
    }

    /// Replaces a rule's Lua state after a limit abort: a state that hit a limit is discarded and the
    /// rule file's current source is loaded again (its timers are in the store and are unaffected).
    func rebuildState(of rule: LoadedRule) {
        let name = rule.name
        Task {
            do {
                let fresh = try await self.loadRule(name: name, path: rule.displayPath, source: rule.source)
                guard let current = self.rules[name], current === rule else {
                    fresh.state.close()
                    return
                }
                fresh.stats = rule.stats
                self.rules[name] = fresh
            } catch {
                self.logger.error("could not rebuild the rule after an abort", metadata: ["rule": "\(name)", "error": "\(error)"])
            }
        }
    }

    func finishEvent(_ id: String) {
        do {
            try store.commit(.eventDone(id: id))
        } catch {
            logger.error("could not journal the end of an event; it will be dispatched again after a restart", metadata: ["event": "\(id)", "error": "\(error)"])
        }
    }

    /// Adds a line to the trace of the run with this tag (built only if the trace keeps it).
    func note(tag: Int, _ action: @autoclosure () -> String) {
        guard let run = runs[tag], let position = run.tracePosition else { return }
        traces.noteAction(position, rule: run.rule, action)
    }
}

/// The handlers of one rule for one event name (or names), as the route cache keeps them.
struct RouteEntry {
    let rule: LoadedRule
    let handlers: [LuaFunction]
}

/// The runs one dispatched event started, counted down as they end, so the journal learns when a
/// rule is done with the event (after a restart it goes only to the others) and when it is done.
/// Shared by the runs (a class): no lookup by event id on the hot path.
final class DispatchCount {
    let eventID: String
    let journaled: Bool
    private var remaining: Int
    /// Runs left per rule, in dispatch order, when the event reaches more than one rule (a handful
    /// at most: no dictionary needed; none at all for the usual single run).
    private var byRule: [(rule: String, left: Int)] = []

    init(eventID: String, journaled: Bool, targets: [Engine.Target]) {
        self.eventID = eventID
        self.journaled = journaled
        remaining = targets.count
        guard targets.count > 1 else { return }
        for target in targets {
            if let index = byRule.firstIndex(where: { $0.rule == target.rule.name }) {
                byRule[index].left += 1
            } else {
                byRule.append((target.rule.name, 1))
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
