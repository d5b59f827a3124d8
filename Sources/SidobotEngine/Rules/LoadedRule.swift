import CoreMetrics
import Foundation
import LuaSandbox

/// A rule file loaded into its own sandboxed Lua state, with what it registered and how its runs
/// went.
///
/// Owned by the engine actor, like the `LuaState` inside it.
final class LoadedRule {
    /// The file stem: `retry_failed` for `rules/retry_failed.lua`.
    let name: String
    /// The path as shown in errors (`rules/retry_failed.lua`).
    let displayPath: String
    let source: String
    let state: LuaState
    let registration: RuleRegistration
    let loadedAt: UnixTime
    private(set) var stats = RuleStats()
    private var runCounters: [RunOutcome: Counter] = [:]

    init(name: String, displayPath: String, source: String, state: LuaState, registration: RuleRegistration, loadedAt: UnixTime) {
        self.name = name
        self.displayPath = displayPath
        self.source = source
        self.state = state
        self.registration = registration
        self.loadedAt = loadedAt
    }

    /// The handlers for an event name, in registration order.
    func handlers(for eventName: String) -> [LuaFunction] { registration.handlers[eventName] ?? [] }

    /// How routing sees the rule: each handler with the rule it belongs to, so a routed event
    /// needs no look-up by name to run.
    var route: RouteTable<DispatchTarget>.Rule {
        RouteTable.Rule(name: name,
                        handlers: registration.handlers.mapValues { $0.map { DispatchTarget(rule: self, function: $0) } },
                        schedules: Dictionary(registration.schedules.map { ($0.key, DispatchTarget(rule: self, function: $0.function)) },
                                              uniquingKeysWith: { first, _ in first }),
                        quarantinedAfter: stats.quarantined ? stats.consecutiveAborts : nil)
    }

    /// A run began.
    func runStarted() { stats.runs += 1 }

    /// A run ended: counted in `sidobot_handler_runs_total` and in the rule's statistics. Returns
    /// true when this run quarantines the rule (it aborted `quarantineAfter` times in a row).
    func runEnded(_ outcome: RunOutcome, limit: LuaLimit? = nil, error: String?, quarantineAfter: Int) -> Bool {
        count(outcome)
        if let error { stats.lastError = error }
        switch outcome {
        case .aborted:
            stats.aborts += 1
            if let limit { stats.limitHits[limit, default: 0] += 1 }
            stats.consecutiveAborts += 1
            guard stats.consecutiveAborts >= quarantineAfter, !stats.quarantined else { return false }
            stats.quarantined = true
            return true
        case .error:
            stats.errors += 1
            stats.consecutiveAborts = 0
        case .ran:
            stats.consecutiveAborts = 0
        case .cancelled, .running, .skipped:
            break
        }
        return false
    }

    /// Takes over the statistics of the version this one replaces: a reload releases a quarantine,
    /// a rebuild after an abort keeps it.
    func inherit(_ previous: LoadedRule, releasingQuarantine: Bool) {
        stats = previous.stats
        if releasingQuarantine {
            stats.quarantined = false
            stats.consecutiveAborts = 0
        }
    }

    private func count(_ outcome: RunOutcome) {
        if let counter = runCounters[outcome] { return counter.increment() }
        let counter = EngineMetrics.handlerRunCounter(rule: name, outcome: outcome.rawValue)
        runCounters[outcome] = counter
        counter.increment()
    }
}

/// One handler of a loaded rule, as the dispatcher runs it.
struct DispatchTarget {
    let rule: LoadedRule
    let function: LuaFunction
}

/// What a rule registered while its file ran: handlers, schedules, metadata.
struct RuleRegistration {
    var description: String?
    /// `rule { cpu_limit = ... }`: this rule's CPU time per run, instead of the engine's.
    var cpuLimit: Duration?
    var handlers: [String: [LuaFunction]] = [:]
    /// Event names in the order first registered (for listings).
    var eventNames: [String] = []
    var schedules: [RuleSchedule] = []

    mutating func add(handler: LuaFunction, for eventName: String) {
        if handlers[eventName] == nil { eventNames.append(eventName) }
        handlers[eventName, default: []].append(handler)
    }

    /// Adds a schedule under `key`, made unique with `#2`… when the same spec is registered again.
    mutating func add(schedule: any FireSchedule, key: String, function: LuaFunction, catchUp: Bool) {
        var unique = key
        var n = 2
        while schedules.contains(where: { $0.key == unique }) {
            unique = "\(key) #\(n)"
            n += 1
        }
        schedules.append(RuleSchedule(key: unique, schedule: schedule, function: function, catchUp: catchUp))
    }
}

/// An `every` or `cron` registration.
struct RuleSchedule {
    /// Stable across reloads and restarts, so catch-up knows when it last fired: `every 5m`,
    /// `cron 0 9 * * 1-5 Asia/Jakarta` (with `#2`… for a repeated spec).
    var key: String
    var schedule: any FireSchedule
    var function: LuaFunction
    var catchUp: Bool

    /// What the scheduler keeps of it.
    var spec: ScheduleSpec { ScheduleSpec(key: key, schedule: schedule, catchUp: catchUp) }
}

/// Counters kept per rule.
struct RuleStats {
    var runs = 0
    var errors = 0
    var aborts = 0
    var consecutiveAborts = 0
    var quarantined = false
    var lastError: String?
    /// Aborts by the limit that stopped the run (`instructions`, `cpu`, `memory`, `deadline`).
    var limitHits: [LuaLimit: Int] = [:]
}

/// Why a rule could not be loaded: the file and line, and a hint.
public struct RuleLoadError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The rule's path (`rules/retry.lua`).
    public var path: String
    public var line: Int?
    public var message: String

    public init(path: String, line: Int?, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        // Lua messages already start with `path:line:`; don't say it twice.
        if message.hasPrefix(path + ":") { return message }
        if let line { return "\(path):\(line): \(message)" }
        return "\(path): \(message)"
    }
}

extension RuleLoadError {
    init(luaError error: LuaError, path: String) {
        switch error {
        case .script(let script):
            self.init(path: script.chunk ?? path, line: script.line, message: script.message)
        case .limitExceeded(let limit):
            self.init(path: path, line: limit.line, message: "the rule's top level hit the \(limit.limit) while loading: \(limit)")
        default:
            self.init(path: path, line: nil, message: error.description)
        }
    }
}
