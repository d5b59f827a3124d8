import LuaSandbox
import Sidobe

/// Which handlers an event reaches, and why a rule it names does not run.
///
/// Holds what routing needs to know of the loaded rules (their handlers by event name, their
/// schedules, whether they are quarantined) and nothing of Lua: `Handler` is whatever the caller
/// runs (a `LuaFunction` for the engine; anything in a test). Listeners of an event name are
/// computed once and kept until the rules change.
struct RouteTable<Handler> {
    /// What one rule registered, as routing sees it.
    struct Rule {
        var name: String
        /// Handlers by event name, in registration order.
        var handlers: [String: [Handler]]
        /// Schedule handlers by schedule key (`every 5m`).
        var schedules: [String: Handler]
        /// Consecutive aborts that quarantined the rule; nil while it may run.
        var quarantinedAfter: Int?
    }

    /// The handlers of one rule for one event name (or names), and whether the rule was
    /// quarantined when they were listed (quarantining clears the lists).
    struct Listeners {
        let rule: String
        let handlers: [Handler]
        let quarantinedAfter: Int?
    }

    /// One event, routed: its name, its Lua table, the handler runs it causes, the rules it skips.
    struct Routed {
        var name: String
        var fields: [(String, LuaValue)]
        var targets: [(rule: String, handler: Handler)] = []
        var skipped: [(rule: String, reason: String)] = []
    }

    private var rules: [String: Rule] = [:]
    private var listenerCache: [String: [Listeners]] = [:]
    private var statusListenerCache: [String: [Listeners]] = [:]

    /// Replaces the rules (a load, a reload, a rebuild): the caches start again.
    mutating func setRules(_ rules: [Rule]) {
        self.rules = Dictionary(rules.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        listenerCache.removeAll()
        statusListenerCache.removeAll()
    }

    /// Quarantines a rule (after `aborts` aborts in a row) or releases it (nil).
    mutating func setQuarantine(_ rule: String, after aborts: Int?) {
        rules[rule]?.quarantinedAfter = aborts
        listenerCache.removeAll()
        statusListenerCache.removeAll()
    }

    /// Routes `event`: to `onlyRule` alone when given (a dead letter's replay), and never to
    /// `exceptRules` (those done with it before a restart). `ledger` gives `ev.message`.
    mutating func route(_ event: EngineEvent, onlyRule: String? = nil, exceptRules: Set<String> = [],
                        ledger: MessageLedger) -> Routed {
        var routed = Routed(name: "", fields: EventFields.fields(of: event, ledger: ledger))
        switch event.kind {
        case .messageStatus(let m):
            let specific = Self.statusEventName(m.status)
            routed.name = m.stale ? "message.status" : specific
            add(m.stale ? listeners(for: "message.status") : listeners(forStatus: specific), onlyRule, exceptRules, to: &routed)
        case .hook(let name, _, _):
            routed.name = "hook." + name
            add(listeners(for: routed.name), onlyRule, exceptRules, to: &routed)
        case .timer(let timer):
            routed.name = "timer." + timer.name
            // A timer fires into the rule that set it, and only that one.
            guard !exceptRules.contains(timer.rule) else { break }
            guard let rule = rules[timer.rule] else {
                routed.skipped.append((timer.rule, "the rule that set this timer is no longer loaded"))
                break
            }
            let handlers = rule.handlers[routed.name] ?? []
            if let aborts = rule.quarantinedAfter, !handlers.isEmpty {
                routed.skipped.append((rule.name, Self.quarantined(after: aborts)))
            } else if handlers.isEmpty {
                routed.skipped.append((rule.name, "the rule has no on(\"\(routed.name)\") handler (any more); the timer fired into nothing"))
            } else {
                for handler in handlers { routed.targets.append((rule.name, handler)) }
            }
        case .schedule(let ruleName, let key, _):
            routed.name = key
            guard !exceptRules.contains(ruleName) else { break }
            guard let rule = rules[ruleName], let handler = rule.schedules[key] else {
                routed.skipped.append((ruleName, "the schedule \(key) is no longer registered"))
                break
            }
            if rule.quarantinedAfter != nil {
                routed.skipped.append((rule.name, "quarantined; fix the rule file to release it"))
            } else {
                routed.targets.append((rule.name, handler))
            }
        case .custom(let name, _, _):
            routed.name = name
            add(listeners(for: name), onlyRule, exceptRules, to: &routed)
        case .sidobe(let type, _, _):
            routed.name = "sidobe." + type
            add(listeners(for: routed.name), onlyRule, exceptRules, to: &routed)
        case .engineStart:
            routed.name = "engine.start"
            add(listeners(for: "engine.start"), onlyRule, exceptRules, to: &routed)
        }
        return routed
    }

    private func add(_ entries: [Listeners], _ onlyRule: String?, _ exceptRules: Set<String>, to routed: inout Routed) {
        for entry in entries {
            if let onlyRule, entry.rule != onlyRule { continue }
            if !exceptRules.isEmpty, exceptRules.contains(entry.rule) { continue }
            if let aborts = entry.quarantinedAfter {
                routed.skipped.append((entry.rule, Self.quarantined(after: aborts)))
                continue
            }
            for handler in entry.handlers { routed.targets.append((entry.rule, handler)) }
        }
    }

    static func quarantined(after aborts: Int) -> String {
        "quarantined after \(aborts) consecutive aborts; fix the rule file to release it"
    }

    /// The handlers listening for one event name, rule by rule in name order.
    mutating func listeners(for name: String) -> [Listeners] {
        if let cached = listenerCache[name] { return cached }
        let entries = listeners(names: [name])
        listenerCache[name] = entries
        return entries
    }

    /// The handlers for a fresh message status: `message.failed` and the like, then `message.status`.
    mutating func listeners(forStatus specific: String) -> [Listeners] {
        if let cached = statusListenerCache[specific] { return cached }
        let entries = listeners(names: [specific, "message.status"])
        statusListenerCache[specific] = entries
        return entries
    }

    private func listeners(names: [String]) -> [Listeners] {
        rules.values.sorted { $0.name < $1.name }.compactMap { rule -> Listeners? in
            let handlers = names.flatMap { rule.handlers[$0] ?? [] }
            return handlers.isEmpty ? nil : Listeners(rule: rule.name, handlers: handlers, quarantinedAfter: rule.quarantinedAfter)
        }
    }

    /// `message.failed` for `FAILED`, and so on (the common ones without building a string).
    static func statusEventName(_ status: MessageStatus) -> String {
        switch status {
        case .failed: "message.failed"
        case .success: "message.success"
        case .pending: "message.pending"
        case .unknown(let other): "message." + other.lowercased()
        }
    }
}

extension RouteTable.Rule: Sendable where Handler: Sendable {}
