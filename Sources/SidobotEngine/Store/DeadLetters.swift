import DequeModule
import LuaSandbox
import Sidobe

/// A handler run that failed or hit a limit, or a send whose retries ran out, kept with its input
/// so it can be replayed once the rule is fixed.
public struct DeadLetter: Sendable, Hashable {
    public var id: String
    public var rule: String
    /// The event the run was handling.
    public var event: EngineEvent
    public var reason: DeadLetterReason
    /// The error as a person reads it, with file:line where known.
    public var error: String
    public var at: UnixTime

    public init(id: String, rule: String, event: EngineEvent, reason: DeadLetterReason, error: String, at: UnixTime) {
        self.id = id
        self.rule = rule
        self.event = event
        self.reason = reason
        self.error = error
        self.at = at
    }

    var journalValue: LuaValue {
        .object([
            "id": .string(id), "rule": .string(rule), "event": event.journalValue, "reason": .string(reason.rawValue),
            "error": .string(error), "at": .integer(at.milliseconds),
        ])
    }

    init(journalValue value: LuaValue) throws(RecordError) {
        let r = RecordReader(value, what: "dead letter")
        self.init(id: try r.string("id"), rule: try r.string("rule"), event: try EngineEvent(journalValue: r.value("event")),
                  reason: DeadLetterReason(rawValue: try r.string("reason")), error: try r.string("error"), at: UnixTime(milliseconds: try r.integer("at")))
    }
}

/// The dead-letter list, newest last, bounded in count (the oldest are dropped first).
public struct DeadLetterList: Sendable {
    public let capacity: Int
    public private(set) var entries: Deque<DeadLetter> = []

    public init(capacity: Int) { self.capacity = capacity }

    public mutating func add(_ letter: DeadLetter) {
        entries.append(letter)
        while entries.count > capacity { entries.removeFirst() }
    }

    @discardableResult
    public mutating func remove(id: String) -> DeadLetter? {
        guard let index = entries.firstIndex(where: { $0.id == id }) else { return nil }
        return entries.remove(at: index)
    }

    public subscript(id: String) -> DeadLetter? { entries.first { $0.id == id } }
}
