import DequeModule

/// What became of one rule's part in an event.
public enum RunOutcome: String, Sendable, Hashable, CustomStringConvertible {
    /// The handler run is going on.
    case running
    /// It ran to its end.
    case ran
    /// It raised an error (a dead letter keeps the event).
    case error
    /// It hit a limit and was aborted (a dead letter keeps the event).
    case aborted
    /// It was cancelled (the engine stopped).
    case cancelled
    /// The rule did not run; the trace says why.
    case skipped

    public var description: String { rawValue }
}

/// What happened to one event: which rules it reached, what each did, and why a rule did not run.
/// Answers "why did (or didn't) my rule fire?".
public struct Trace: Sendable, Hashable {
    public var eventID: String { event.id }
    /// `message.failed`, `hook.alertmanager`, `timer.retry`, `cron`…
    public var eventName: String
    public var at: UnixTime { event.at }
    /// The event itself: the summary and the message id are read from it when asked for, not made
    /// for each of the thousands of events a second that nobody asks about.
    public let event: EngineEvent
    public var rules: [RuleTrace] = []
    /// Notes about the event itself (`duplicate status`, `replayed after restart`).
    public var notes: [String] = []
    /// Message ids linked to the trace beside the event's own (a send the run made).
    private var linkedMessageIDs: [String] = []

    public init(event: EngineEvent, eventName: String) {
        self.event = event
        self.eventName = eventName
    }

    /// A one-line summary of the event (message id and status, hook name…).
    public var summary: String {
        switch event.kind {
        case .messageStatus(let m): "message \(m.messageID) is \(m.status)"
        case .sidobe(let type, _, _): "a Sidobe \(type) webhook"
        case .hook(let name, _, let contentType): "POST /hooks/\(name) (\(contentType))"
        case .timer(let timer): "timer \(timer.id) '\(timer.name)' of rule \(timer.rule), due \(timer.due)"
        case .schedule(let rule, let handler, let at): "\(handler) of rule \(rule), scheduled for \(at)"
        case .custom(let name, _, let from): "\(name) emitted by \(from ?? "the engine")"
        case .engineStart: "engine started"
        }
    }

    /// Message ids this trace can be found by: the status event's own, then those linked to it.
    public var messageIDs: [String] {
        guard case .messageStatus(let m) = event.kind else { return linkedMessageIDs }
        return [m.messageID] + linkedMessageIDs.filter { $0 != m.messageID }
    }

    /// Whether the trace concerns this message (without building ``messageIDs``).
    func concerns(messageID: String) -> Bool {
        if case .messageStatus(let m) = event.kind, m.messageID == messageID { return true }
        return linkedMessageIDs.contains(messageID)
    }

    mutating func link(messageID: String) {
        guard !concerns(messageID: messageID) else { return }
        linkedMessageIDs.append(messageID)
    }

    /// One rule's part in an event.
    public struct RuleTrace: Sendable, Hashable {
        public var rule: String
        public var outcome: RunOutcome
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
        // A flat 192 B for the event, which is shared with the rest of the engine while it runs (a
        // large hook body or custom payload kept alive by a trace alone is not counted).
        var total = 192 + eventID.utf8.count + eventName.utf8.count + linkedMessageIDs.count * 48
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
///
/// Traces are written for every event and read when a person asks, so the store is shaped for the
/// writes: an append-only deque in arrival order, with no index to maintain. A running event's
/// trace is reached by its ``Position`` (kept by the run); a search by id scans from the newest,
/// which takes a millisecond or two for the ~200,000 traces the default budget holds.
///
/// Shared by the parts of the engine that write traces (the dispatcher, the sends, the scheduler's
/// skips); owned by the engine actor.
final class TraceStore {
    /// Where a trace sits: stable while the trace is kept (positions only grow).
    typealias Position = Int

    let retention: Double
    let budgetBytes: Int
    private var traces: Deque<Trace> = []
    /// The approximate size of each trace, in step with `traces`.
    private var sizes: Deque<Int> = []
    /// The position of `traces.first`.
    private var firstPosition = 0
    private var bytes = 0

    init(retention: Double, budgetBytes: Int) {
        self.retention = retention
        self.budgetBytes = budgetBytes
    }

    /// The newest trace of the event with this id.
    subscript(eventID: String) -> Trace? {
        traces.last(where: { $0.eventID == eventID })
    }

    /// The newest trace of the event with this id, or the traces of every event that concerned this
    /// message id, oldest first.
    func find(_ id: String) -> [Trace] {
        if let trace = self[id] { return [trace] }
        return traces.filter { $0.concerns(messageID: id) }
    }

    /// The most recent traces, newest first.
    func recent(limit: Int) -> [Trace] {
        Array(traces.suffix(limit).reversed())
    }

    /// Keeps a new trace (linked to `messageID` if given) and returns its position.
    @discardableResult
    func begin(_ trace: Trace, messageID: String? = nil) -> Position {
        var trace = trace
        if let messageID { trace.link(messageID: messageID) }
        let size = trace.approximateBytes
        traces.append(trace)
        sizes.append(size)
        bytes += size
        return firstPosition + traces.count - 1
    }

    /// Makes the trace at `position` findable by `messageID` too.
    func link(messageID: String, to position: Position) {
        update(position) { $0.link(messageID: messageID) }
    }

    /// Changes the trace at `position` in place (nothing if it was pruned).
    func update(_ position: Position, _ body: (inout Trace) -> Void) {
        let index = position - firstPosition
        guard index >= 0, index < traces.count else { return }
        body(&traces[index])
        let size = traces[index].approximateBytes
        bytes += size - sizes[index]
        sizes[index] = size
    }

    /// Adds an action to the running part of `rule` in the trace at `position`: kept up to
    /// ``Trace/maxActionsPerRun``, counted beyond it. `action` is built only when it is kept.
    func noteAction(_ position: Position, rule: String, _ action: () -> String) {
        let index = position - firstPosition
        guard index >= 0, index < traces.count,
              let run = traces[index].rules.lastIndex(where: { $0.rule == rule && $0.outcome == .running }) else { return }
        if traces[index].rules[run].actions.count < Trace.maxActionsPerRun {
            let text = action()
            traces[index].rules[run].actions.append(text)
            sizes[index] += 16 + text.utf8.count
            bytes += 16 + text.utf8.count
        } else {
            traces[index].rules[run].omittedActions += 1
        }
    }

    /// Drops traces older than the retention, then the oldest until the size fits the budget.
    func prune(now: UnixTime) {
        let cutoff = now.secondsValue - retention
        while let first = traces.first, first.at.secondsValue < cutoff || bytes > budgetBytes {
            traces.removeFirst()
            bytes -= sizes.removeFirst()
            firstPosition += 1
        }
    }

    var count: Int { traces.count }
    /// The traces' estimated size, which ``budgetBytes`` caps.
    var byteCount: Int { bytes }
}
