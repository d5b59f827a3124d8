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
        let (name, argument, targets, skipped) = route(event, onlyRule: onlyRule, exceptRules: exceptRules)
        var trace = Trace(eventID: event.id, eventName: name, at: event.at, summary: summary(of: event))
        if let note { trace.notes.append(note) }
        if case .messageStatus(let m) = event.kind, m.stale {
            trace.notes.append("stale status: the message is already \(store.data.ledger[m.messageID]?.status ?? "final"); only message.status handlers run, with ev.stale = true")
        }
        for (rule, reason) in skipped {
            trace.rules.append(.init(rule: rule, outcome: "skipped", detail: reason, startedAt: event.at, finishedAt: event.at))
        }
        if targets.isEmpty && skipped.isEmpty { trace.notes.append("no rule listens for \(name)") }
        var messageID: String?
        if case .messageStatus(let m) = event.kind { messageID = m.messageID }
        traces.begin(trace, messageID: messageID)
        guard !targets.isEmpty else {
            // Nothing ran, so nothing would run again after a crash: the mark may wait.
            if journaled { store.deferCompletion(.eventDone(id: event.id)) }
            return
        }
        outstanding[event.id, default: 0] += targets.count
        for target in targets { ruleRuns[RuleRunKey(eventID: event.id, rule: target.rule.name), default: 0] += 1 }
        // Converted once for every handler it goes to (LuaSandbox's fast path); a value that cannot
        // be converted is reported by each run through the unpacked path.
        let packed = try? LuaPackedValues([argument], limits: configuration.limits)
        for target in targets {
            startRun(rule: target.rule, function: target.function, argument: target.argument ?? argument,
                     packed: target.argument == nil ? packed : nil, event: event, eventName: target.eventName, journaled: journaled)
        }
    }

    struct Target {
        var rule: LoadedRule
        var function: LuaFunction
        var eventName: String
        var argument: LuaValue?
    }

    /// The event's name, its Lua table, the handler runs it causes, and the rules it skips (with why).
    func route(_ event: EngineEvent, onlyRule: String?, exceptRules: Set<String> = []) -> (String, LuaValue, [Target], [(String, String)]) {
        var targets: [Target] = []
        var skipped: [(String, String)] = []
        let candidates = rules.values.filter { (onlyRule == nil || $0.name == onlyRule) && !exceptRules.contains($0.name) }
            .sorted { $0.name < $1.name }
        func add(_ rule: LoadedRule, _ names: [String], argument: LuaValue? = nil) {
            let functions = names.flatMap { name in rule.handlers(for: name).map { ($0, name) } }
            guard !functions.isEmpty else { return }
            if rule.stats.quarantined {
                skipped.append((rule.name, "quarantined after \(rule.stats.consecutiveAborts) consecutive aborts; fix the rule file to release it"))
                return
            }
            for (function, name) in functions { targets.append(Target(rule: rule, function: function, eventName: name, argument: argument)) }
        }
        switch event.kind {
        case .messageStatus(let m):
            var fields: [String: LuaValue] = [
                "event_id": .string(event.id), "message_id": .string(m.messageID), "status": .string(m.status),
                "message_type": .string(m.messageType), "send_at": .string(m.sendAt), "created_at": .string(m.createdAt),
            ]
            if let record = store.data.ledger[m.messageID] { fields["message"] = record.luaValue }
            if m.stale { fields["stale"] = .bool(true) }
            let specific = "message." + m.status.lowercased()
            let names = m.stale ? ["message.status"] : [specific, "message.status"]
            for rule in candidates { add(rule, names) }
            return (m.stale ? "message.status" : specific, .object(fields), targets, skipped)
        case .hook(let name, let body, let contentType):
            let argument: LuaValue = .object(["event_id": .string(event.id), "name": .string(name), "body": body, "content_type": .string(contentType)])
            for rule in candidates { add(rule, ["hook." + name]) }
            return ("hook." + name, argument, targets, skipped)
        case .timer(let timer):
            let argument: LuaValue = .object([
                "timer_id": .string(timer.id.description), "name": .string(timer.name), "payload": timer.payload,
                "due": Self.seconds(timer.due), "fired_at": Self.seconds(event.at),
            ])
            let name = "timer." + timer.name
            if exceptRules.contains(timer.rule) {
                // Done with it before a restart.
            } else if let rule = rules[timer.rule] {
                add(rule, [name])
                if rule.handlers(for: name).isEmpty { skipped.append((rule.name, "the rule has no on(\"\(name)\") handler (any more); the timer fired into nothing")) }
            } else {
                skipped.append((timer.rule, "the rule that set this timer is no longer loaded"))
            }
            return (name, argument, targets, skipped)
        case .schedule(let ruleName, let handler, let scheduledAt):
            let argument: LuaValue = .object(["scheduled_at": Self.seconds(scheduledAt), "fired_at": Self.seconds(event.at)])
            if exceptRules.contains(ruleName) {
                // Done with it before a restart.
            } else if let rule = rules[ruleName], let schedule = rule.registration.schedules.first(where: { $0.key == handler }) {
                if rule.stats.quarantined {
                    skipped.append((rule.name, "quarantined; fix the rule file to release it"))
                } else {
                    targets.append(Target(rule: rule, function: schedule.function, eventName: handler, argument: nil))
                }
            } else {
                skipped.append((ruleName, "the schedule \(handler) is no longer registered"))
            }
            return (handler, argument, targets, skipped)
        case .custom(let name, let payload, let fromRule):
            var fields: [String: LuaValue] = ["name": .string(name), "payload": payload, "event_id": .string(event.id)]
            if name == "message.exhausted", case .object(let details) = payload {
                // Raised by the engine: its details are the event's own fields, like a message event's.
                fields.merge(details) { current, _ in current }
            }
            if let fromRule { fields["from_rule"] = .string(fromRule) }
            for rule in candidates { add(rule, [name]) }
            return (name, .object(fields), targets, skipped)
        case .engineStart:
            for rule in candidates { add(rule, ["engine.start"]) }
            return ("engine.start", .object(["started_at": Self.seconds(event.at)]), targets, skipped)
        }
    }

    func summary(of event: EngineEvent) -> String {
        switch event.kind {
        case .messageStatus(let m): "message \(m.messageID) is \(m.status)"
        case .hook(let name, _, let contentType): "POST /hooks/\(name) (\(contentType))"
        case .timer(let timer): "timer \(timer.id) '\(timer.name)' of rule \(timer.rule), due \(timer.due)"
        case .schedule(let rule, let handler, let at): "\(handler) of rule \(rule), scheduled for \(at)"
        case .custom(let name, _, let from): "\(name) emitted by \(from ?? "the engine")"
        case .engineStart: "engine started"
        }
    }

    func startRun(rule: LoadedRule, function: LuaFunction, argument: LuaValue, packed: LuaPackedValues?,
                  event: EngineEvent, eventName: String, journaled: Bool) {
        let tag = allocateRunTag()
        runs[tag] = RunContext(tag: tag, rule: rule.name, eventID: event.id, eventName: eventName)
        let started = clock.now()
        traces.update(event.id) { $0.rules.append(.init(rule: rule.name, outcome: "running", startedAt: started)) }
        rule.stats.runs += 1
        Task.immediate {
            await self.execute(tag: tag, rule: rule, function: function, argument: argument, packed: packed, event: event, journaled: journaled)
        }
    }

    func execute(tag: Int, rule: LoadedRule, function: LuaFunction, argument: LuaValue, packed: LuaPackedValues?,
                 event: EngineEvent, journaled: Bool) async {
        var outcome = "ran"
        var detail: String?
        do {
            if let packed {
                _ = try await rule.state.run(function, packed: packed, tag: tag)
            } else {
                _ = try await rule.state.run(function, arguments: [argument], tag: tag)
            }
            rule.stats.consecutiveAborts = 0
        } catch {
            (outcome, detail) = handleFailure(error, rule: rule, event: event, tag: tag)
        }
        let finished = clock.now()
        metrics.handlerRun(rule: rule.name, outcome: outcome)
        traces.update(event.id) { trace in
            if let index = trace.rules.lastIndex(where: { $0.rule == rule.name && $0.outcome == "running" }) {
                trace.rules[index].outcome = outcome
                trace.rules[index].detail = detail
                trace.rules[index].finishedAt = finished
            }
        }
        // Debug, not info: a busy engine runs thousands of handlers a second; failures are logged
        // above at error, and every run is in its event's trace.
        logger.debug("handler run finished", metadata: [
            "rule": "\(rule.name)", "event": "\(event.id)", "outcome": "\(outcome)",
        ])
        completeRun(tag: tag, rule: rule.name, eventID: event.id, journaled: journaled)
        checkIdle()
    }

    /// A run ended: its last changes are journaled in one record with its completion (the rule's,
    /// or the event's when it was the last run), so a crash keeps all of them or none, and a run
    /// that never suspended happens exactly once. A run that changed nothing and never suspended
    /// only defers its completion mark.
    func completeRun(tag: Int, rule: String, eventID: String, journaled: Bool) {
        guard let run = runs.removeValue(forKey: tag) else { return }
        let key = RuleRunKey(eventID: eventID, rule: rule)
        let ruleLeft = (ruleRuns[key] ?? 1) - 1
        ruleRuns[key] = ruleLeft > 0 ? ruleLeft : nil
        let eventLeft = (outstanding[eventID] ?? 1) - 1
        outstanding[eventID] = eventLeft > 0 ? eventLeft : nil
        var mark: Mutation?
        if journaled {
            if eventLeft <= 0 {
                mark = .eventDone(id: eventID)
            } else if ruleLeft <= 0 {
                mark = .ruleDone(id: eventID, rule: rule)
            }
        }
        if let mark, run.staged.isEmpty, !run.suspended {
            store.deferCompletion(mark)
            return
        }
        var records = run.staged
        if let mark {
            store.stage(mark)
            records.append(mark)
        }
        commitRunRecords(records, rule: rule, eventID: eventID)
    }

    /// The run with this tag suspends in a `sidobe.*` call: what it changed so far is journaled
    /// before the request goes out.
    func runSuspended(tag: Int) {
        guard var run = runs[tag], run.isHandlerRun else { return }
        let staged = run.staged
        run.staged = []
        run.suspended = true
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
    func record(_ mutation: Mutation, tag: Int) throws(DurabilityError) {
        if runs[tag]?.isHandlerRun == true {
            store.stage(mutation)
            runs[tag]!.staged.append(mutation)
        } else {
            try store.commit(mutation)
        }
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
        guard let run = runs[tag], !run.eventID.isEmpty else { return }
        traces.noteAction(run.eventID, rule: run.rule, action)
    }
}
