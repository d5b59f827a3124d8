import DequeModule
import HashTreeCollections
import LuaSandbox

/// What the engine remembers of a message it sent: content, origin, and status history.
public struct MessageRecord: Sendable, Hashable {
    /// Sidobe's message id (or `dry-…` for a dry-run send).
    public var id: String
    public var phone: String
    public var message: String?
    public var imageURL: String?
    public var documentURL: String?
    public var documentName: String?
    public var messageType: String
    /// The rule that sent it.
    public var rule: String
    /// The idempotency key it was sent with, if any.
    public var key: String?
    /// 1 for the first send; each resend of the same content counts up.
    public var attempt: Int
    /// The id of the message this one resends, if it is a resend.
    public var resendOf: String?
    /// The declarative retry policy it was sent with (`retry = {...}`), carried to each resend.
    public var retry: RetryPlan?
    /// Whether it was sent asynchronously (resends keep the mode).
    public var isAsync = false
    /// The current status: `PENDING`, `SUCCESS`, `FAILED`, or `DRY_RUN`.
    public var status: String
    /// When it was sent (seconds since 1970).
    public var sentAt: Double
    /// Every status it has had, in order, with the time it was recorded.
    public var history: [StatusChange]

    public struct StatusChange: Sendable, Hashable {
        public var status: String
        public var at: Double
        /// Why it changed: `send` (Sidobe's answer), `webhook`, `confirmed` (GET whatsapp-messages), `dry-run`.
        public var source: String
        /// The event that made the change, if one did.
        public var event: String?

        public init(status: String, at: Double, source: String, event: String? = nil) {
            self.status = status
            self.at = at
            self.source = source
            self.event = event
        }
    }

    public init(id: String, phone: String, message: String?, imageURL: String?, documentURL: String?, documentName: String?,
                messageType: String, rule: String, key: String?, attempt: Int, resendOf: String?, status: String, sentAt: Double, source: String) {
        self.id = id
        self.phone = phone
        self.message = message
        self.imageURL = imageURL
        self.documentURL = documentURL
        self.documentName = documentName
        self.messageType = messageType
        self.rule = rule
        self.key = key
        self.attempt = attempt
        self.resendOf = resendOf
        self.status = status
        self.sentAt = sentAt
        self.history = [StatusChange(status: status, at: sentAt, source: source)]
    }

}

extension MessageRecord {
    /// The ledger record as rules see it in `ev.message`, and as it is journaled.
    var luaValue: LuaValue {
        var fields: [String: LuaValue] = [
            "id": .string(id), "phone": .string(phone), "message_type": .string(messageType), "rule": .string(rule),
            "attempt": .integer(Int64(attempt)), "status": .string(status), "sent_at": .double(sentAt),
        ]
        if let message { fields["message"] = .string(message) }
        if let imageURL { fields["image_url"] = .string(imageURL) }
        if let documentURL { fields["document_url"] = .string(documentURL) }
        if let documentName { fields["document_name"] = .string(documentName) }
        if let key { fields["key"] = .string(key) }
        if let resendOf { fields["resend_of"] = .string(resendOf) }
        return .object(fields)
    }

    var journalValue: LuaValue {
        guard case .object(var fields) = luaValueWithHistory else { return luaValue }
        if let retry { fields["retry"] = retry.journalValue }
        if isAsync { fields["is_async"] = .bool(true) }
        return .object(fields)
    }

    private var luaValueWithHistory: LuaValue {
        guard case .object(var fields) = luaValue else { return luaValue }
        fields["history"] = .array(history.map { change in
            var entry: [String: LuaValue] = ["status": .string(change.status), "at": .double(change.at), "source": .string(change.source)]
            if let event = change.event { entry["event"] = .string(event) }
            return .object(entry)
        })
        return .object(fields)
    }

    init(journalValue value: LuaValue) throws(RecordError) {
        let r = RecordReader(value, what: "message")
        self.init(id: try r.string("id"), phone: try r.string("phone"), message: r.optionalString("message"),
                  imageURL: r.optionalString("image_url"), documentURL: r.optionalString("document_url"),
                  documentName: r.optionalString("document_name"), messageType: try r.string("message_type"),
                  rule: try r.string("rule"), key: r.optionalString("key"), attempt: Int(try r.integer("attempt")),
                  resendOf: r.optionalString("resend_of"), status: try r.string("status"), sentAt: try r.double("sent_at"),
                  source: "send")
        var changes: [StatusChange] = []
        if !r.value("retry").isNull { retry = try RetryPlan(journalValue: r.value("retry")) }
        isAsync = r.value("is_async").boolValue ?? false
        for entry in try r.array("history") {
            let e = RecordReader(entry, what: "message.history")
            changes.append(StatusChange(status: try e.string("status"), at: try e.double("at"), source: try e.string("source"),
                                        event: e.optionalString("event")))
        }
        if !changes.isEmpty { history = changes }
    }
}

/// The outcome of applying a reported status to a message.
public enum StatusTransition: Sendable, Hashable {
    /// The status moved forward (PENDING → SUCCESS or FAILED, or a first status): handlers for it run.
    case advanced(from: String?, to: String)
    /// A duplicate or out-of-order status (a FAILED after a SUCCESS, a PENDING after either):
    /// only `message.status` handlers see it, with `ev.stale = true`.
    case stale(current: String)
    /// A message this engine did not send.
    case unknownMessage
}

/// Every message the engine sent, by id, with an index of idempotency keys.
///
/// Delivery status is a one-way state machine per message: PENDING, then SUCCESS or FAILED.
/// Stored in persistent (hash-array-mapped trie) dictionaries so a snapshot copy is O(1) and
/// later changes copy only the paths they touch: the engine never stalls to copy the ledger.
public struct MessageLedger: Sendable {
    public private(set) var records: TreeDictionary<String, MessageRecord> = [:]
    private var keys: TreeDictionary<String, String> = [:]
    /// Original message id → the id of its resend (or escalation), to plan each retry once.
    private var resends: TreeDictionary<String, String> = [:]
    private var order: Deque<(id: String, sentAt: Double)> = []

    public init() {}

    /// The message with this id.
    public subscript(id: String) -> MessageRecord? { records[id] }

    /// The message a rule sent with an idempotency key.
    public func message(rule: String, key: String) -> MessageRecord? {
        keys[Self.keyIndex(rule: rule, key: key)].flatMap { records[$0] }
    }

    /// Records a sent message (or replaces the record with the same id, for replay).
    public mutating func insert(_ record: MessageRecord) {
        if records.updateValue(record, forKey: record.id) == nil {
            order.append((record.id, record.sentAt))
        }
        if let key = record.key { keys[Self.keyIndex(rule: record.rule, key: key)] = record.id }
        if let original = record.resendOf { resends[original] = record.id }
    }

    /// The resend (or escalation) of a message, if one was sent.
    public func resend(of id: String) -> String? { resends[id] }

    /// Applies a status reported for a message, following the one-way state machine.
    public mutating func apply(status: String, to id: String, at time: Double, source: String, event: String? = nil) -> StatusTransition {
        guard var record = records[id] else { return .unknownMessage }
        guard Self.canMove(from: record.status, to: status) else { return .stale(current: record.status) }
        let from = record.status
        record.status = status
        record.history.append(.init(status: status, at: time, source: source, event: event))
        records[id] = record
        return .advanced(from: from, to: status)
    }

    /// PENDING → SUCCESS | FAILED; nothing moves out of SUCCESS, FAILED or DRY_RUN.
    /// A status Sidobe may add later is accepted from PENDING and never overrides a final one.
    static func canMove(from current: String, to next: String) -> Bool {
        switch current {
        case "PENDING": next != "PENDING"
        default: false
        }
    }

    /// Forgets messages sent before `cutoff`, with their idempotency keys. Returns how many.
    @discardableResult
    public mutating func prune(sentBefore cutoff: Double) -> Int {
        var removed = 0
        while let first = order.first, first.sentAt < cutoff {
            order.removeFirst()
            if let record = records.removeValue(forKey: first.id) {
                removed += 1
                resends.removeValue(forKey: record.id)
                if let key = record.key {
                    let index = Self.keyIndex(rule: record.rule, key: key)
                    if keys[index] == record.id { keys[index] = nil }
                }
            }
        }
        return removed
    }

    public var count: Int { records.count }

    /// A copy for a snapshot: the persistent maps, without the age index the live ledger keeps to itself.
    var snapshotCopy: MessageLedger {
        var copy = self
        copy.order = []
        return copy
    }

    private static func keyIndex(rule: String, key: String) -> String { rule + "\u{0}" + key }
}
