import DequeModule

/// What happened to one event: which rules it reached, what each did, and why a rule did not run.
/// Answers "why did (or didn't) my rule fire?".
public struct Trace: Sendable, Hashable {
    public var eventID: String
    /// `message.failed`, `hook.alertmanager`, `timer.retry`, `cron`…
    public var eventName: String
    public var at: UnixTime
    /// A one-line summary of the event (message id and status, hook name…).
    public var summary: String
    public var rules: [RuleTrace] = []
    /// Notes about the event itself (`duplicate status`, `replayed after restart`).
    public var notes: [String] = []
    /// Message ids this trace can also be found by.
    public var messageIDs: [String] = []

    /// One rule's part in an event.
    public struct RuleTrace: Sendable, Hashable {
        public var rule: String
        /// `ran`, `error`, `aborted`, `skipped`.
        public var outcome: String
        /// Why, for `skipped`/`error`/`aborted` (with file:line for errors).
        public var detail: String?
        /// What the run did, in order: the first ``Trace/maxActionsPerRun``; the rest are counted in
        /// ``omittedActions`` (a loop scheduling a million timers must not keep a million lines).
        public var actions: [String] = []
        public var omittedActions = 0
        public var startedAt: UnixTime
        public var finishedAt: UnixTime?
    }

    /// How many actions of one rule run a trace keeps.
    public static let maxActionsPerRun = 200

    var approximateBytes: Int {
        var total = 128 + eventID.utf8.count + eventName.utf8.count + summary.utf8.count
        for rule in rules {
            total += 96 + rule.rule.utf8.count + (rule.detail?.utf8.count ?? 0)
            for action in rule.actions { total += 16 + action.utf8.count }
        }
        for note in notes { total += 16 + note.utf8.count }
        return total
    }
}

/// Recent traces, bounded by age and by total size (not by a small count), findable by event id
/// and by message id (a trace of a send is found from the message id too).
public struct TraceStore: Sendable {
    public let retention: Double
    public let budgetBytes: Int
    private var order: Deque<String> = []
    private var traces: [String: Trace] = [:]
    private var byMessage: [String: [String]] = [:]
    private var bytes = 0

    public init(retention: Double, budgetBytes: Int) {
        self.retention = retention
        self.budgetBytes = budgetBytes
    }

    public subscript(eventID: String) -> Trace? { traces[eventID] }

    /// Traces of the event with this id, or of every event that concerned this message id, oldest first.
    public func find(_ id: String) -> [Trace] {
        if let trace = traces[id] { return [trace] }
        return (byMessage[id] ?? []).compactMap { traces[$0] }
    }

    /// The most recent traces, newest first.
    public func recent(limit: Int) -> [Trace] {
        order.suffix(limit).reversed().compactMap { traces[$0] }
    }

    public mutating func begin(_ trace: Trace, messageID: String?) {
        if traces[trace.eventID] == nil { order.append(trace.eventID) } else { bytes -= traces[trace.eventID]!.approximateBytes }
        traces[trace.eventID] = trace
        bytes += trace.approximateBytes
        if let messageID { link(messageID: messageID, to: trace.eventID) }
    }

    public mutating func link(messageID: String, to eventID: String) {
        guard traces[eventID] != nil else { return }
        var list = byMessage[messageID, default: []]
        guard list.last != eventID else { return }
        list.append(eventID)
        byMessage[messageID] = list
        traces[eventID]!.messageIDs.append(messageID)
    }

    public mutating func update(_ eventID: String, _ body: (inout Trace) -> Void) {
        // In place: copying the trace out would copy its arrays on every change.
        guard traces[eventID] != nil else { return }
        bytes -= traces[eventID]!.approximateBytes
        body(&traces[eventID]!)
        bytes += traces[eventID]!.approximateBytes
    }

    /// Adds an action to the running part of `rule` in the event's trace: kept up to
    /// ``Trace/maxActionsPerRun``, counted beyond it. `action` is built only when it is kept.
    public mutating func noteAction(_ eventID: String, rule: String, _ action: () -> String) {
        guard traces[eventID] != nil,
              let index = traces[eventID]!.rules.lastIndex(where: { $0.rule == rule && $0.outcome == "running" }) else { return }
        if traces[eventID]!.rules[index].actions.count < Trace.maxActionsPerRun {
            let text = action()
            traces[eventID]!.rules[index].actions.append(text)
            bytes += 16 + text.utf8.count
        } else {
            traces[eventID]!.rules[index].omittedActions += 1
        }
    }

    /// Drops traces older than the retention, then the oldest until the size fits the budget.
    public mutating func prune(now: UnixTime) {
        let cutoff = now.secondsValue - retention
        while let first = order.first, let trace = traces[first], trace.at.secondsValue < cutoff || bytes > budgetBytes {
            drop(first)
        }
        while let first = order.first, traces[first] == nil { order.removeFirst() }
    }

    private mutating func drop(_ id: String) {
        order.removeFirst()
        guard let trace = traces.removeValue(forKey: id) else { return }
        bytes -= trace.approximateBytes
        for messageID in trace.messageIDs {
            let rest = byMessage[messageID, default: []].filter { $0 != id }
            byMessage[messageID] = rest.isEmpty ? nil : rest
        }
    }

    public var count: Int { traces.count }
}
