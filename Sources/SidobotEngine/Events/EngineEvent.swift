import LuaSandbox
import Sidobe

/// Something that happened and that rules may react to.
///
/// Every event is journaled when it is accepted (or when a timer or schedule fires) and marked done
/// when every handler run for it has finished, so an event interrupted by a crash is dispatched
/// again at start-up: delivery to rules is at-least-once.
public struct EngineEvent: Sendable, Hashable {
    /// Unique id: the webhook id, a generated id for hooks and custom events,
    /// `t-42` for a timer, `rule/handler@time` for a schedule.
    public var id: String
    public var kind: Kind
    /// When it was accepted or fired.
    public var at: UnixTime

    /// `indirect`: the payloads live in one heap box, so an event (kept in the inflight set,
    /// passed to every run, copied into traces and dead letters) copies as a few words.
    public indirect enum Kind: Sendable, Hashable {
        /// A Sidobe `SEND_MESSAGE_STATUS` webhook.
        case messageStatus(MessageStatusEvent)
        /// A Sidobe webhook of a type Sidobot does not interpret (`MESSAGE_RECEIVED`, one Sidobe
        /// adds later): dispatched as `sidobe.TYPE` with its `data` as received.
        case sidobe(type: String, data: LuaValue, createdAt: String)
        /// `POST /hooks/{name}`.
        case hook(name: String, body: LuaValue, contentType: String)
        /// A durable timer fell due.
        case timer(TimerRecord)
        /// An `every` or `cron` schedule ticked; `handler` is the schedule's key in its rule.
        case schedule(rule: String, handler: String, scheduledAt: UnixTime)
        /// `emit(name, payload)` from a rule, or `message.exhausted` from a retry policy.
        case custom(name: String, payload: LuaValue, fromRule: String?)
        /// The engine started (not journaled: it happens at every start).
        case engineStart
    }

    public init(id: String, kind: Kind, at: UnixTime) {
        self.id = id
        self.kind = kind
        self.at = at
    }
}

/// The content of a delivery-status webhook.
public struct MessageStatusEvent: Sendable, Hashable {
    public var messageID: String
    public var status: MessageStatus
    public var messageType: MessageType
    public var sendAt: String
    public var createdAt: String
    /// A duplicate or out-of-order status for a message in the ledger (decided when the engine
    /// takes the event in, from the ledger as it is then): it reaches only `message.status`
    /// handlers, with `ev.stale = true`.
    public var stale: Bool

    public init(messageID: String, status: MessageStatus, messageType: MessageType, sendAt: String, createdAt: String, stale: Bool = false) {
        self.messageID = messageID
        self.status = status
        self.messageType = messageType
        self.sendAt = sendAt
        self.createdAt = createdAt
        self.stale = stale
    }
}

extension EngineEvent {
    /// The journal form of the event.
    var journalValue: LuaValue {
        var fields: [String: LuaValue] = ["id": .string(id), "at": .integer(at.milliseconds)]
        switch kind {
        case .messageStatus(let m):
            fields["type"] = "message"
            fields["message_id"] = .string(m.messageID)
            fields["status"] = .string(m.status.rawValue)
            fields["message_type"] = .string(m.messageType.rawValue)
            fields["send_at"] = .string(m.sendAt)
            fields["created_at"] = .string(m.createdAt)
            if m.stale { fields["stale"] = .bool(true) }
        case .sidobe(let type, let data, let createdAt):
            fields["type"] = "sidobe"
            fields["event"] = .string(type)
            fields["data"] = data
            fields["created_at"] = .string(createdAt)
        case .hook(let name, let body, let contentType):
            fields["type"] = "hook"
            fields["name"] = .string(name)
            fields["body"] = body
            fields["content_type"] = .string(contentType)
        case .timer(let timer):
            fields["type"] = "timer"
            fields["timer"] = timer.journalValue
        case .schedule(let rule, let handler, let scheduledAt):
            fields["type"] = "schedule"
            fields["rule"] = .string(rule)
            fields["handler"] = .string(handler)
            fields["scheduled_at"] = .integer(scheduledAt.milliseconds)
        case .custom(let name, let payload, let fromRule):
            fields["type"] = "custom"
            fields["name"] = .string(name)
            fields["payload"] = payload
            if let fromRule { fields["from_rule"] = .string(fromRule) }
        case .engineStart:
            fields["type"] = "engine.start"
        }
        return .object(fields)
    }

    init(journalValue value: LuaValue) throws(RecordError) {
        let r = RecordReader(value, what: "event")
        id = try r.string("id")
        at = UnixTime(milliseconds: try r.integer("at"))
        switch try r.string("type") {
        case "message":
            kind = .messageStatus(MessageStatusEvent(
                messageID: try r.string("message_id"), status: MessageStatus(rawValue: try r.string("status")),
                messageType: MessageType(rawValue: try r.string("message_type")), sendAt: try r.string("send_at"), createdAt: try r.string("created_at"),
                stale: r.value("stale").boolValue ?? false))
        case "hook":
            kind = .hook(name: try r.string("name"), body: r.value("body"), contentType: try r.string("content_type"))
        case "timer":
            kind = .timer(try TimerRecord(journalValue: r.value("timer")))
        case "schedule":
            kind = .schedule(rule: try r.string("rule"), handler: try r.string("handler"),
                             scheduledAt: UnixTime(milliseconds: try r.integer("scheduled_at")))
        case "sidobe":
            kind = .sidobe(type: try r.string("event"), data: r.value("data"), createdAt: try r.string("created_at"))
        case "custom":
            kind = .custom(name: try r.string("name"), payload: r.value("payload"), fromRule: r.optionalString("from_rule"))
        case "engine.start":
            kind = .engineStart
        case let other:
            throw RecordError("unknown event type '\(other)'")
        }
    }
}

extension TimerRecord {
    var journalValue: LuaValue {
        var fields: [String: LuaValue] = [
            "id": .integer(Int64(id.rawValue)), "rule": .string(rule), "name": .string(name), "payload": payload,
            "due": .integer(due.milliseconds), "created": .integer(createdAt.milliseconds),
            "late": .string(late.mode == .skip ? "skip" : "fire"),
        ]
        if let max = late.maxLateness { fields["max_lateness_ms"] = .integer(max.clampedMilliseconds) }
        return .object(fields)
    }

    init(journalValue value: LuaValue) throws(RecordError) {
        let r = RecordReader(value, what: "timer")
        let maxLateness = r.optionalInteger("max_lateness_ms").map { Duration.milliseconds($0) }
        var payload: [UInt8] = []
        do {
            try JSONCodec.encode(r.value("payload"), into: &payload)
        } catch {
            throw RecordError("timer.payload: \(error)")
        }
        self.init(
            id: TimerID(UInt64(try r.integer("id"))), rule: try r.string("rule"), name: try r.string("name"),
            payloadJSON: payload, due: UnixTime(milliseconds: try r.integer("due")),
            createdAt: UnixTime(milliseconds: try r.integer("created")),
            late: TimerLatePolicy(mode: try r.string("late") == "skip" ? .skip : .fire, maxLateness: maxLateness))
    }
}


/// A journal or snapshot record that does not have the expected shape.
struct RecordError: Error, CustomStringConvertible, JSONErrorConvertible {
    var description: String
    init(_ description: String) { self.description = description }
    init(json error: JSONCodec.Error) { self.init("not valid JSON: \(error)") }
}

/// Typed access to the fields of a journal or snapshot record.
struct RecordReader {
    let fields: [String: LuaValue]
    let what: String

    init(_ value: LuaValue, what: String) {
        fields = value.objectValue ?? [:]
        self.what = what
    }

    func value(_ key: String) -> LuaValue { fields[key] ?? .null }

    func string(_ key: String) throws(RecordError) -> String {
        guard case .string(let s)? = fields[key] else { throw RecordError("\(what).\(key) is missing or not a string") }
        return s
    }

    func optionalString(_ key: String) -> String? {
        if case .string(let s)? = fields[key] { return s }
        return nil
    }

    func integer(_ key: String) throws(RecordError) -> Int64 {
        guard case .integer(let i)? = fields[key] else { throw RecordError("\(what).\(key) is missing or not an integer") }
        return i
    }

    func optionalInteger(_ key: String) -> Int64? {
        if case .integer(let i)? = fields[key] { return i }
        return nil
    }

    func double(_ key: String) throws(RecordError) -> Double {
        switch fields[key] {
        case .integer(let i)?: return Double(i)
        case .double(let d)?: return d
        default: throw RecordError("\(what).\(key) is missing or not a number")
        }
    }

    func array(_ key: String) throws(RecordError) -> [LuaValue] {
        guard case .array(let a)? = fields[key] else {
            if case .object(let o)? = fields[key], o.isEmpty { return [] }
            throw RecordError("\(what).\(key) is missing or not an array")
        }
        return a
    }
}
