import LuaSandbox
import Sidobe

/// One change to the store: what the journal records, one per line, and what replay re-applies.
///
/// The live path and replay share ``StoreData/apply(_:)`` (and ``DedupeSet/apply(_:)`` for the
/// ids the intake remembers), so a replayed store is the store that was running, by construction.
enum Mutation: Sendable {
    case stateSet(rule: String, key: String, entry: StateEntry)
    case stateDelete(rule: String, key: String)
    case timerAdded(TimerRecord)
    /// A timer left the pending set without firing (a fired timer leaves with its event).
    case timerRemoved(TimerID, how: TimerRemoval)
    /// Sidobe answered a send: the message as sent (it closes the send's intent).
    case messageAdded(MessageRecord)
    /// A send's request is about to leave (journaled before it does).
    case sendIntended(SendIntent)
    /// A send's request ended without a message to record (refused, expired, failed).
    case sendClosed(rule: String, key: SendKey)
    /// An event was accepted (webhook, hook) or produced (timer, schedule, emit); `dedupe` remembers
    /// its id. For a status event, `movesLedger` says whether accepting it moves the message's
    /// status too (journals before the intake was apart from the engine, and the engine's own sync
    /// answers); the intake's events leave that to a ``statusApplied`` record of the engine, which
    /// alone can read the ledger.
    case eventAccepted(EngineEvent, dedupe: Bool, movesLedger: Bool)
    /// The engine applied a status event to the ledger (`message.status` in the journal).
    case statusApplied(messageID: String, status: LedgerStatus, at: Double, source: StatusSource, event: String)
    /// Every handler run for the event has finished.
    case eventDone(id: String)
    /// Every run of one rule for the event has finished (others may still be going): after a
    /// restart the event is dispatched again only to the rules not done with it.
    case ruleDone(id: String, rule: String)
    case scheduleFired(key: String, at: UnixTime)
    case deadLetterAdded(DeadLetter)
    case deadLetterRemoved(id: String)
    /// Several changes that must survive a crash together or not at all: one journal line.
    case batch([Mutation])

    var journalValue: LuaValue {
        switch self {
        case .batch(let mutations):
            return .object(["op": "batch", "records": .array(mutations.map(\.journalValue))])
        case .stateSet(let rule, let key, let entry):
            var fields: [String: LuaValue] = ["op": "state.set", "rule": .string(rule), "key": .string(key), "value": entry.value]
            if let expiry = entry.expiresAt { fields["expires"] = .integer(expiry.milliseconds) }
            return .object(fields)
        case .stateDelete(let rule, let key):
            return .object(["op": "state.del", "rule": .string(rule), "key": .string(key)])
        case .timerAdded(let timer):
            return .object(["op": "timer.add", "timer": timer.journalValue])
        case .timerRemoved(let id, let how):
            return .object(["op": "timer.remove", "id": .integer(Int64(id.rawValue)), "how": .string(how.rawValue)])
        case .messageAdded(let record):
            return .object(["op": "message.add", "message": record.journalValue])
        case .sendIntended(let intent):
            return .object(["op": "send.intent", "intent": intent.journalValue])
        case .sendClosed(let rule, let key):
            switch key {
            case .explicit(let key): return .object(["op": "send.closed", "rule": .string(rule), "key": .string(key)])
            case .implicit(let key): return .object(["op": "send.closed", "rule": .string(rule), "implicit_key": .string(key)])
            }
        case .eventAccepted(let event, let dedupe, let movesLedger):
            var fields: [String: LuaValue] = ["op": "event", "event": event.journalValue, "dedupe": .bool(dedupe)]
            if !movesLedger { fields["moves_ledger"] = .bool(false) }
            return .object(fields)
        case .statusApplied(let messageID, let status, let at, let source, let event):
            return .object(["op": "message.status", "message_id": .string(messageID), "status": .string(status.rawValue),
                            "at": .double(at), "source": .string(source.rawValue), "event": .string(event)])
        case .eventDone(let id):
            return .object(["op": "event.done", "id": .string(id)])
        case .ruleDone(let id, let rule):
            return .object(["op": "event.rule_done", "id": .string(id), "rule": .string(rule)])
        case .scheduleFired(let key, let at):
            return .object(["op": "schedule", "key": .string(key), "at": .integer(at.milliseconds)])
        case .deadLetterAdded(let letter):
            return .object(["op": "dead.add", "letter": letter.journalValue])
        case .deadLetterRemoved(let id):
            return .object(["op": "dead.remove", "id": .string(id)])
        }
    }

    init(journalValue value: LuaValue) throws(RecordError) {
        let r = RecordReader(value, what: "record")
        switch try r.string("op") {
        case "state.set":
            self = .stateSet(rule: try r.string("rule"), key: try r.string("key"),
                             entry: StateEntry(value: r.value("value"), expiresAt: r.optionalInteger("expires").map(UnixTime.init(milliseconds:))))
        case "state.del":
            self = .stateDelete(rule: try r.string("rule"), key: try r.string("key"))
        case "timer.add":
            self = .timerAdded(try TimerRecord(journalValue: r.value("timer")))
        case "timer.remove":
            self = .timerRemoved(TimerID(UInt64(try r.integer("id"))), how: TimerRemoval(rawValue: try r.string("how")))
        case "message.add":
            self = .messageAdded(try MessageRecord(journalValue: r.value("message")))
        case "send.intent":
            self = .sendIntended(try SendIntent(journalValue: r.value("intent")))
        case "send.closed":
            let rule = try r.string("rule")
            if let key = r.optionalString("key") {
                self = .sendClosed(rule: rule, key: .explicit(key))
            } else {
                self = .sendClosed(rule: rule, key: .implicit(try r.string("implicit_key")))
            }
        case "event":
            guard case .bool(let dedupe)? = r.fields["dedupe"] else { throw RecordError("record.dedupe is missing") }
            self = .eventAccepted(try EngineEvent(journalValue: r.value("event")), dedupe: dedupe,
                                  movesLedger: r.value("moves_ledger").boolValue ?? true)
        case "message.status":
            self = .statusApplied(messageID: try r.string("message_id"), status: LedgerStatus(rawValue: try r.string("status")),
                                  at: try r.double("at"), source: StatusSource(rawValue: try r.string("source")),
                                  event: try r.string("event"))
        case "event.done":
            self = .eventDone(id: try r.string("id"))
        case "event.rule_done":
            self = .ruleDone(id: try r.string("id"), rule: try r.string("rule"))
        case "schedule":
            self = .scheduleFired(key: try r.string("key"), at: UnixTime(milliseconds: try r.integer("at")))
        case "dead.add":
            self = .deadLetterAdded(try DeadLetter(journalValue: r.value("letter")))
        case "dead.remove":
            self = .deadLetterRemoved(id: try r.string("id"))
        case "batch":
            var mutations: [Mutation] = []
            for record in try r.array("records") { mutations.append(try Mutation(journalValue: record)) }
            self = .batch(mutations)
        case let other:
            throw RecordError("unknown record op '\(other)'")
        }
    }
}

extension Mutation {
    /// Appends the journal line of this change (without the newline): the same fields as
    /// ``journalValue``, written directly for the records every webhook, run and timer produces.
    func appendJournalRecord(sequence: UInt64, to out: inout [UInt8]) throws(JSONCodec.Error) {
        try JSONObjectWriter.write(into: &out) { (w) throws(JSONCodec.Error) in
            w.integer("seq", Int64(sequence))
            try writeFields(into: &w)
        }
    }

    private func writeFields(into w: inout JSONObjectWriter) throws(JSONCodec.Error) {
        switch self {
        case .batch(let mutations):
            w.string("op", "batch")
            try w.array("records", mutations) { (w, mutation) throws(JSONCodec.Error) in try mutation.writeFields(into: &w) }
        case .stateSet(let rule, let key, let entry):
            w.string("op", "state.set")
            w.string("rule", rule)
            w.string("key", key)
            try w.value("value", entry.value)
            if let expiry = entry.expiresAt { w.integer("expires", expiry.milliseconds) }
        case .stateDelete(let rule, let key):
            w.string("op", "state.del")
            w.string("rule", rule)
            w.string("key", key)
        case .timerAdded(let timer):
            w.string("op", "timer.add")
            try w.object("timer") { (w) throws(JSONCodec.Error) in timer.writeFields(into: &w) }
        case .timerRemoved(let id, let how):
            w.string("op", "timer.remove")
            w.integer("id", Int64(id.rawValue))
            w.string("how", how.rawValue)
        case .eventAccepted(let event, let dedupe, let movesLedger):
            w.string("op", "event")
            try w.object("event") { (w) throws(JSONCodec.Error) in try event.writeFields(into: &w) }
            w.bool("dedupe", dedupe)
            if !movesLedger { w.bool("moves_ledger", false) }
        case .statusApplied(let messageID, let status, let at, let source, let event):
            w.string("op", "message.status")
            w.string("message_id", messageID)
            w.string("status", status.rawValue)
            try w.value("at", .double(at))
            w.string("source", source.rawValue)
            w.string("event", event)
        case .eventDone(let id):
            w.string("op", "event.done")
            w.string("id", id)
        case .ruleDone(let id, let rule):
            w.string("op", "event.rule_done")
            w.string("id", id)
            w.string("rule", rule)
        case .scheduleFired(let key, let at):
            w.string("op", "schedule")
            w.string("key", key)
            w.integer("at", at.milliseconds)
        case .messageAdded, .sendIntended, .sendClosed, .deadLetterAdded, .deadLetterRemoved:
            // Rare: through the generic form.
            guard case .object(let fields) = journalValue else { return }
            for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
                try w.value(name: name, value)
            }
        }
    }
}

extension EngineEvent {
    /// The fields of ``journalValue``, written directly.
    func writeFields(into w: inout JSONObjectWriter) throws(JSONCodec.Error) {
        w.string("id", id)
        w.integer("at", at.milliseconds)
        switch kind {
        case .messageStatus(let m):
            w.string("type", "message")
            w.string("message_id", m.messageID)
            w.string("status", m.status.rawValue)
            w.string("message_type", m.messageType.rawValue)
            w.string("send_at", m.sendAt)
            w.string("created_at", m.createdAt)
            if m.stale { w.bool("stale", true) }
        case .sidobe(let type, let data, let createdAt):
            w.string("type", "sidobe")
            w.string("event", type)
            try w.value("data", data)
            w.string("created_at", createdAt)
        case .hook(let name, let body, let contentType):
            w.string("type", "hook")
            w.string("name", name)
            try w.value("body", body)
            w.string("content_type", contentType)
        case .timer(let timer):
            w.string("type", "timer")
            try w.object("timer") { (w) throws(JSONCodec.Error) in timer.writeFields(into: &w) }
        case .schedule(let rule, let handler, let scheduledAt):
            w.string("type", "schedule")
            w.string("rule", rule)
            w.string("handler", handler)
            w.integer("scheduled_at", scheduledAt.milliseconds)
        case .custom(let name, let payload, let fromRule):
            w.string("type", "custom")
            w.string("name", name)
            try w.value("payload", payload)
            if let fromRule { w.string("from_rule", fromRule) }
        case .engineStart:
            w.string("type", "engine.start")
        }
    }
}

extension TimerRecord {
    /// The fields of ``journalValue``, written directly.
    func writeFields(into w: inout JSONObjectWriter) {
        payloadJSON.withUnsafeBufferPointer { payload in
            Self.writeFields(id: id, rule: rule, name: name, payload: payload, due: due, createdAt: createdAt, late: late, into: &w)
        }
    }

    /// The fields of a timer's journal and snapshot record, from its parts (a record, or the
    /// store's ``TimerRecordBox``, which keeps the payload's bytes beside the fields).
    static func writeFields(id: TimerID, rule: String, name: String, payload: UnsafeBufferPointer<UInt8>, due: UnixTime,
                            createdAt: UnixTime, late: TimerLatePolicy, into w: inout JSONObjectWriter) {
        w.integer("id", Int64(id.rawValue))
        w.string("rule", rule)
        w.string("name", name)
        w.json("payload", payload)
        w.integer("due", due.milliseconds)
        w.integer("created", createdAt.milliseconds)
        w.string("late", late.mode == .skip ? "skip" : "fire")
        if let max = late.maxLateness { w.integer("max_lateness_ms", max.clampedMilliseconds) }
    }
}
