import Foundation
import LuaSandbox
import SidobotEngine

// The JSON bodies of the admin API (docs/OPERATING.md): snake_case keys, times as ISO 8601 UTC text.
// They are Codable both ways so `sidobot trace` (and tests) decode exactly what the server encodes.

/// `{"error": "..."}`: every error answer.
public struct APIErrorBody: Codable, Sendable, Hashable {
    public var error: String
    public init(error: String) { self.error = error }
}

/// A Lua value as JSON (state values, timer payloads, hook bodies).
public struct JSONValue: Codable, Sendable, Hashable {
    public var value: LuaValue
    public init(_ value: LuaValue) { self.value = value }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        switch value {
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .bool(let bool):
            var container = encoder.singleValueContainer()
            try container.encode(bool)
        case .integer(let integer):
            var container = encoder.singleValueContainer()
            try container.encode(integer)
        case .double(let double):
            var container = encoder.singleValueContainer()
            if double.isFinite { try container.encode(double) } else { try container.encodeNil() }
        case .string(let string):
            var container = encoder.singleValueContainer()
            try container.encode(string)
        case .array(let array):
            var container = encoder.unkeyedContainer()
            for element in array { try container.encode(JSONValue(element)) }
        case .object(let object):
            var container = encoder.container(keyedBy: Key.self)
            for (key, element) in object { try container.encode(JSONValue(element), forKey: Key(stringValue: key)) }
        }
    }

    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: Key.self) {
            var object: [String: LuaValue] = [:]
            for key in container.allKeys { object[key.stringValue] = try container.decode(JSONValue.self, forKey: key).value }
            value = .object(object)
        } else if var container = try? decoder.unkeyedContainer() {
            var array: [LuaValue] = []
            while !container.isAtEnd { array.append(try container.decode(JSONValue.self).value) }
            value = .array(array)
        } else {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                value = .null
            } else if let bool = try? container.decode(Bool.self) {
                value = .bool(bool)
            } else if let integer = try? container.decode(Int64.self) {
                value = .integer(integer)
            } else if let double = try? container.decode(Double.self) {
                value = .double(double)
            } else {
                value = .string(try container.decode(String.self))
            }
        }
    }
}

public struct RuleInfo: Codable, Sendable, Hashable {
    public struct Schedule: Codable, Sendable, Hashable {
        public var key: String
        public var next: String?
    }

    public var name: String
    public var path: String
    public var description: String?
    public var events: [String]
    public var schedules: [Schedule]
    public var runs: Int
    public var errors: Int
    public var aborts: Int
    /// Aborts by the limit that stopped the run: `instructions`, `cpu`, `memory`, `deadline`.
    public var limitsHit: [String: Int]
    public var quarantined: Bool
    public var lastError: String?
    /// When the running version was loaded.
    public var loadedAt: String
    public var memoryBytes: Int
    /// Why the file's current content did not load (the version of ``loadedAt`` keeps running).
    public var loadError: RuleLoadFailureInfo?

    enum CodingKeys: String, CodingKey {
        case name, path, description, events, schedules, runs, errors, aborts, quarantined
        case limitsHit = "limits_hit", lastError = "last_error", loadedAt = "loaded_at", memoryBytes = "memory_bytes"
        case loadError = "load_error"
    }

    /// Every documented field is present: `description`, `last_error` and `load_error` are null
    /// when there is none (a client need not tell a missing field from an empty one).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(path, forKey: .path)
        try container.encode(description, forKey: .description)
        try container.encode(events, forKey: .events)
        try container.encode(schedules, forKey: .schedules)
        try container.encode(runs, forKey: .runs)
        try container.encode(errors, forKey: .errors)
        try container.encode(aborts, forKey: .aborts)
        try container.encode(limitsHit, forKey: .limitsHit)
        try container.encode(quarantined, forKey: .quarantined)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(loadedAt, forKey: .loadedAt)
        try container.encode(memoryBytes, forKey: .memoryBytes)
        try container.encode(loadError, forKey: .loadError)
    }

    init(_ summary: RuleSummary) {
        name = summary.name
        path = summary.path
        description = summary.description
        events = summary.events
        schedules = summary.schedules.map { Schedule(key: $0.key, next: $0.next?.description) }
        runs = summary.runs
        errors = summary.errors
        aborts = summary.aborts
        limitsHit = summary.limitHits
        quarantined = summary.quarantined
        lastError = summary.lastError
        loadedAt = summary.loadedAt.description
        memoryBytes = summary.memoryBytes
        loadError = summary.loadFailure.map(RuleLoadFailureInfo.init)
    }
}

/// `GET /api/rules`.
public struct RulesBody: Codable, Sendable, Hashable {
    public var rules: [RuleInfo]
    /// The last reload of the folder, and every file whose current content failed to load.
    public var reload: ReloadStateInfo
}

/// The last reload of the rules folder as `/api/rules` shows it.
public struct ReloadStateInfo: Codable, Sendable, Hashable {
    /// When it ran; null before the first reload (the start-up load fails the start instead).
    public var at: String?
    /// Every file loaded (or was unchanged); false while any file's content fails to load.
    public var successful: Bool
    /// Files whose current content failed to load, new ones (no version running) included.
    public var failed: [RuleLoadFailureInfo]

    init(last: RuleReloadState?, failures: [RuleLoadFailure]) {
        at = last?.at.description
        successful = failures.isEmpty && last?.folderError == nil
        var failed = failures.map(RuleLoadFailureInfo.init)
        if let last, let folderError = last.folderError {
            failed.insert(RuleLoadFailureInfo(rule: nil, error: folderError, at: last.at, previousVersionRuns: true), at: 0)
        }
        self.failed = failed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(at, forKey: .at)
        try container.encode(successful, forKey: .successful)
        try container.encode(failed, forKey: .failed)
    }
}

/// A rule file whose current content failed to load.
public struct RuleLoadFailureInfo: Codable, Sendable, Hashable {
    /// The rule's name; null when the folder itself could not be read.
    public var rule: String?
    public var path: String
    public var line: Int?
    public var message: String
    /// `path:line: message`, as a person reads it.
    public var error: String
    /// When the reload that found it ran.
    public var at: String
    /// Whether a previous version keeps running (false for a new file: nothing of it runs).
    public var previousVersionRuns: Bool

    enum CodingKeys: String, CodingKey {
        case rule, path, line, message, error, at
        case previousVersionRuns = "previous_version_runs"
    }

    init(_ failure: RuleLoadFailure) {
        self.init(rule: failure.rule, error: failure.error, at: failure.at, previousVersionRuns: failure.previousVersionRuns)
    }

    init(rule: String?, error: RuleLoadError, at: UnixTime, previousVersionRuns: Bool) {
        self.rule = rule
        path = error.path
        line = error.line
        message = error.message
        self.error = error.description
        self.at = at.description
        self.previousVersionRuns = previousVersionRuns
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(rule, forKey: .rule)
        try container.encode(path, forKey: .path)
        try container.encode(line, forKey: .line)
        try container.encode(message, forKey: .message)
        try container.encode(error, forKey: .error)
        try container.encode(at, forKey: .at)
        try container.encode(previousVersionRuns, forKey: .previousVersionRuns)
    }
}

public struct RuleErrorInfo: Codable, Sendable, Hashable {
    public var path: String
    public var line: Int?
    public var message: String
    /// `path:line: message`, as a person reads it.
    public var error: String

    init(_ error: RuleLoadError) {
        path = error.path
        line = error.line
        message = error.message
        self.error = error.description
    }
}

/// `POST /api/rules/reload`.
public struct ReloadBody: Codable, Sendable, Hashable {
    public var loaded: [String]
    public var unchanged: [String]
    public var removed: [String]
    public var failed: [RuleErrorInfo]

    init(_ report: RuleReloadReport) {
        loaded = report.loaded
        unchanged = report.unchanged
        removed = report.removed
        failed = report.failed.map(RuleErrorInfo.init)
    }
}

public struct TimerInfo: Codable, Sendable, Hashable {
    public var id: String
    public var rule: String
    public var name: String
    public var payload: JSONValue
    public var due: String
    public var createdAt: String

    enum CodingKeys: String, CodingKey {
        case id, rule, name, payload, due, createdAt = "created_at"
    }

    init(_ record: TimerRecord) {
        id = record.id.description
        rule = record.rule
        name = record.name
        payload = JSONValue(record.payload)
        due = record.due.description
        createdAt = record.createdAt.description
    }
}

public struct TimersBody: Codable, Sendable, Hashable {
    public var timers: [TimerInfo]
}

public struct MessageInfo: Codable, Sendable, Hashable {
    public struct StatusChange: Codable, Sendable, Hashable {
        public var status: String
        public var at: String
        public var source: String
    }

    public var id: String
    public var phone: String
    public var message: String?
    public var imageURL: String?
    public var documentURL: String?
    public var documentName: String?
    public var messageType: String
    public var rule: String
    public var key: String?
    public var attempt: Int
    public var resendOf: String?
    public var status: String
    public var sentAt: String
    /// Whether it was sent asynchronously.
    public var isAsync: Bool?
    /// Without `key =`: the key the engine derived for the send (event, position, content digest).
    public var implicitKey: String?
    public var history: [StatusChange]

    /// The ledger record's own field names (declared once, on ``MessageRecord``).
    typealias CodingKeys = MessageRecord.Field

    init(_ record: MessageRecord) {
        id = record.id
        phone = record.phone
        message = record.message
        imageURL = record.imageURL
        documentURL = record.documentURL
        documentName = record.documentName
        messageType = record.messageType.rawValue
        rule = record.rule
        key = record.key
        attempt = record.attempt
        resendOf = record.resendOf
        status = record.status.rawValue
        sentAt = Self.time(record.sentAt)
        isAsync = record.isAsync
        implicitKey = record.implicitKey
        history = record.history.map { StatusChange(status: $0.status.rawValue, at: Self.time($0.at), source: $0.source.rawValue) }
    }

    static func time(_ seconds: Double) -> String {
        UnixTime(secondsValue: seconds)?.description ?? String(seconds)
    }
}

public struct TraceInfo: Codable, Sendable, Hashable {
    public struct RuleRun: Codable, Sendable, Hashable {
        public var rule: String
        /// `ran`, `error`, `aborted`, `skipped`.
        public var outcome: String
        public var detail: String?
        public var actions: [String]
        public var startedAt: String
        public var finishedAt: String?
        public var durationMilliseconds: Int64?

        enum CodingKeys: String, CodingKey {
            case rule, outcome, detail, actions
            case startedAt = "started_at", finishedAt = "finished_at", durationMilliseconds = "duration_ms"
        }
    }

    public var eventID: String
    public var event: String
    public var at: String
    public var summary: String
    public var notes: [String]
    public var messageIDs: [String]
    public var rules: [RuleRun]

    enum CodingKeys: String, CodingKey {
        case event, at, summary, notes, rules
        case eventID = "event_id", messageIDs = "message_ids"
    }

    init(_ trace: Trace) {
        eventID = trace.eventID
        event = trace.eventName
        at = trace.at.description
        summary = trace.summary
        notes = trace.notes
        messageIDs = trace.messageIDs
        rules = trace.rules.map { rule in
            RuleRun(rule: rule.rule, outcome: rule.outcome.rawValue, detail: rule.detail,
                    actions: rule.actions + (rule.omittedActions > 0
                        ? ["… and \(rule.omittedActions) more actions (a trace keeps the first \(Trace.maxActionsPerRun) of a run)"] : []),
                    startedAt: rule.startedAt.description, finishedAt: rule.finishedAt?.description,
                    durationMilliseconds: rule.finishedAt.map { $0.milliseconds - rule.startedAt.milliseconds })
        }
    }
}

public struct TracesBody: Codable, Sendable, Hashable {
    public var traces: [TraceInfo]
}

public struct DeadLetterInfo: Codable, Sendable, Hashable {
    public var id: String
    public var rule: String
    public var eventID: String
    public var event: String
    /// `error`, `limit` or `send`.
    public var reason: String
    public var error: String
    public var at: String

    enum CodingKeys: String, CodingKey {
        case id, rule, event, reason, error, at
        case eventID = "event_id"
    }

    init(_ letter: DeadLetter) {
        id = letter.id
        rule = letter.rule
        eventID = letter.event.id
        event = letter.event.displayName
        reason = letter.reason.rawValue
        error = letter.error
        at = letter.at.description
    }
}

public struct DeadLettersBody: Codable, Sendable, Hashable {
    public var deadLetters: [DeadLetterInfo]
    enum CodingKeys: String, CodingKey { case deadLetters = "dead_letters" }
}

extension EngineEvent {
    /// The event name a rule listens for (`message.failed`, `hook.alertmanager`, `timer.retry`…).
    var displayName: String {
        switch kind {
        case .messageStatus(let status): "message.\(status.status.rawValue.lowercased())"
        case .hook(let name, _, _): "hook.\(name)"
        case .sidobe(let type, _, _): "sidobe.\(type)"
        case .timer(let timer): "timer.\(timer.name)"
        case .schedule(_, let handler, _): "schedule \(handler)"
        case .custom(let name, _, _): name
        case .engineStart: "engine.start"
        }
    }
}

// MARK: - Human-readable traces (`sidobot trace`)

extension TraceInfo {
    /// The trace as a person reads it at a glance: the event, then each rule's outcome, actions and errors.
    public var text: String {
        var lines: [String] = []
        lines.append("\(event)  \(eventID)  at \(at)")
        if !summary.isEmpty { lines.append("  \(summary)") }
        if !messageIDs.isEmpty { lines.append("  messages: \(messageIDs.joined(separator: ", "))") }
        for note in notes { lines.append("  note: \(note)") }
        if rules.isEmpty { lines.append("  no rule listens for \(event)") }
        for run in rules {
            var head = "  \(run.rule): \(run.outcome)"
            if let duration = run.durationMilliseconds { head += " (\(duration) ms)" }
            lines.append(head)
            if let detail = run.detail, !detail.isEmpty {
                let label = run.outcome == "skipped" ? "why" : "error"
                lines.append("      \(label): \(detail)")
            }
            for action in run.actions { lines.append("      - \(action)") }
        }
        return lines.joined(separator: "\n")
    }
}
