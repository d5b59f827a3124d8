import CoreMetrics
import Foundation
import LuaSandbox

/// A rule file loaded into its own sandboxed Lua state, with what it registered.
///
/// Owned by the engine actor, like the `LuaState` inside it.
final class LoadedRule {
    /// The file stem: `retry_failed` for `rules/retry_failed.lua`.
    let name: String
    /// The path as shown in errors (`rules/retry_failed.lua`).
    let displayPath: String
    let source: String
    var state: LuaState
    var registration: RuleRegistration
    let loadedAt: UnixTime
    var stats = RuleStats()
    private var runCounters: [String: Counter] = [:]

    init(name: String, displayPath: String, source: String, state: LuaState, registration: RuleRegistration, loadedAt: UnixTime) {
        self.name = name
        self.displayPath = displayPath
        self.source = source
        self.state = state
        self.registration = registration
        self.loadedAt = loadedAt
    }

    /// Counts a finished run in `sidobot_handler_runs_total`.
    func countRun(outcome: String) {
        if let counter = runCounters[outcome] { return counter.increment() }
        let counter = EngineMetrics.handlerRunCounter(rule: name, outcome: outcome)
        runCounters[outcome] = counter
        counter.increment()
    }

    /// The handlers for an event name, in registration order.
    func handlers(for eventName: String) -> [LuaFunction] { registration.handlers[eventName] ?? [] }
}

/// What a rule registered while its file ran: handlers, schedules, metadata.
struct RuleRegistration {
    var description: String?
    var handlers: [String: [LuaFunction]] = [:]
    /// Event names in the order first registered (for listings).
    var eventNames: [String] = []
    var schedules: [RuleSchedule] = []

    mutating func add(handler: LuaFunction, for eventName: String) {
        if handlers[eventName] == nil { eventNames.append(eventName) }
        handlers[eventName, default: []].append(handler)
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
    /// When it fires next.
    var next: UnixTime?
}

/// Counters kept per rule.
struct RuleStats {
    var runs = 0
    var errors = 0
    var aborts = 0
    var consecutiveAborts = 0
    var quarantined = false
    var lastError: String?
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
