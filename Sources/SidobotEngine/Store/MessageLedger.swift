import DequeModule
import HashTreeCollections
import LuaSandbox
import Sidobe

/// What the engine remembers of a message it sent: content, origin, and status history.
///
/// Its fields and their wire names are declared here once (``Field``): the Lua form rules see in
/// `ev.message`, the journal and snapshot form, and the admin API's JSON all use them.
public struct MessageRecord: Sendable, Hashable {
    /// Sidobe's message id (or `dry-…` for a dry-run send).
    public var id: String
    public var phone: String
    public var message: String?
    public var imageURL: String?
    public var documentURL: String?
    public var documentName: String?
    public var messageType: MessageType
    /// The rule that sent it.
    public var rule: String
    /// The idempotency key it was sent with, if any.
    public var key: String?
    /// Without `key =`: the key the engine derived for the send (``SendKey/implicit(_:)``), so that
    /// a run dispatched again after a crash does not make it twice. In the journal and the admin
    /// API, not in the Lua form (`msg.key` is the rule's own key only).
    public var implicitKey: String?
    /// 1 for the first send; each resend of the same content counts up.
    public var attempt: Int
    /// The id of the message this one resends, if it is a resend.
    public var resendOf: String?
    /// The declarative retry policy it was sent with (`retry = {...}`), carried to each resend.
    public var retry: RetryPlan?
    /// Whether it was sent asynchronously (resends keep the mode).
    public var isAsync = false
    /// The current status.
    public var status: LedgerStatus
    /// When it was sent (seconds since 1970).
    public var sentAt: Double
    /// Every status it has had, in order, with the time it was recorded.
    public var history: [StatusChange]

    /// The wire names of the fields, for every form the record takes (the journal's adds the
    /// retry policy, `retry`, which is the engine's own).
    public enum Field: String, CodingKey, CaseIterable {
        case id, phone, message, rule, key, attempt, status, history
        case imageURL = "image_url", documentURL = "document_url", documentName = "document_name"
        case messageType = "message_type", resendOf = "resend_of", sentAt = "sent_at", isAsync = "is_async"
        case implicitKey = "implicit_key"
    }

    /// Which send this message is, if it has a key of either kind.
    var sendKey: SendKey? { key.map(SendKey.explicit) ?? implicitKey.map(SendKey.implicit) }

    public struct StatusChange: Sendable, Hashable {
        public var status: LedgerStatus
        public var at: Double
        /// Why it changed.
        public var source: StatusSource
        /// The event that made the change, if one did.
        public var event: String?

        public init(status: LedgerStatus, at: Double, source: StatusSource, event: String? = nil) {
            self.status = status
            self.at = at
            self.source = source
            self.event = event
        }
    }

    public init(id: String, phone: String, message: String?, imageURL: String?, documentURL: String?, documentName: String?,
                messageType: MessageType, rule: String, key: String?, attempt: Int, resendOf: String?, status: LedgerStatus,
                sentAt: Double, source: StatusSource) {
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
    /// The ledger record as rules see it in `ev.message`.
    public var luaValue: LuaValue { .object(fields(journal: false)) }

    /// The journal and snapshot form: the Lua form with the history, the retry policy and the send mode.
    var journalValue: LuaValue { .object(fields(journal: true)) }

    private static let retryField = "retry"

    private func fields(journal: Bool) -> [String: LuaValue] {
        var fields: [String: LuaValue] = [:]
        func set(_ field: Field, _ value: LuaValue) { fields[field.rawValue] = value }
        func set(_ field: Field, _ value: String?) { if let value { fields[field.rawValue] = .string(value) } }
        set(.id, id)
        set(.phone, phone)
        set(.message, message)
        set(.imageURL, imageURL)
        set(.documentURL, documentURL)
        set(.documentName, documentName)
        set(.messageType, messageType.rawValue)
        set(.rule, rule)
        set(.key, key)
        set(.attempt, .integer(Int64(attempt)))
        set(.resendOf, resendOf)
        set(.status, status.rawValue)
        set(.sentAt, .double(sentAt))
        guard journal else { return fields }
        set(.history, .array(history.map { change in
            var entry: [String: LuaValue] = ["status": .string(change.status.rawValue), "at": .double(change.at),
                                             "source": .string(change.source.rawValue)]
            if let event = change.event { entry["event"] = .string(event) }
            return .object(entry)
        }))
        if let retry { fields[Self.retryField] = retry.journalValue }
        if isAsync { set(.isAsync, .bool(true)) }
        set(.implicitKey, implicitKey)
        return fields
    }

    init(journalValue value: LuaValue) throws(RecordError) {
        let r = RecordReader(value, what: "message")
        func string(_ field: Field) throws(RecordError) -> String { try r.string(field.rawValue) }
        func optional(_ field: Field) -> String? { r.optionalString(field.rawValue) }
        self.init(id: try string(.id), phone: try string(.phone), message: optional(.message),
                  imageURL: optional(.imageURL), documentURL: optional(.documentURL), documentName: optional(.documentName),
                  messageType: MessageType(rawValue: try string(.messageType)), rule: try string(.rule), key: optional(.key),
                  attempt: Int(try r.integer(Field.attempt.rawValue)), resendOf: optional(.resendOf),
                  status: LedgerStatus(rawValue: try string(.status)), sentAt: try r.double(Field.sentAt.rawValue), source: .send)
        if !r.value(Self.retryField).isNull { retry = try RetryPlan(journalValue: r.value(Self.retryField)) }
        isAsync = r.value(Field.isAsync.rawValue).boolValue ?? false
        implicitKey = optional(.implicitKey)
        var changes: [StatusChange] = []
        for entry in try r.array(Field.history.rawValue) {
            let e = RecordReader(entry, what: "message.history")
            changes.append(StatusChange(status: LedgerStatus(rawValue: try e.string("status")), at: try e.double("at"),
                                        source: StatusSource(rawValue: try e.string("source")), event: e.optionalString("event")))
        }
        if !changes.isEmpty { history = changes }
    }
}

/// What a status event means to the ledger, decided when the engine takes the event in.
enum StatusAdmission: Equatable {
    /// A message this engine did not send (or whose record is past retention).
    case unknownMessage
    /// The event moved the message already (its acceptance did, in an older journal; or it is a
    /// sync send's own answer): it is dispatched as it is, again after a restart.
    case applied
    /// The status moves the message forward: handlers for it run.
    case moves
    /// A duplicate or out-of-order status: only `message.status` handlers see it, marked stale.
    case stale
}

/// The outcome of applying a reported status to a message.
public enum StatusTransition: Sendable, Hashable {
    /// The status moved forward (PENDING → SUCCESS or FAILED, or a first status): handlers for it run.
    case advanced(from: LedgerStatus?, to: LedgerStatus)
    /// A duplicate or out-of-order status (a FAILED after a SUCCESS, a PENDING after either):
    /// only `message.status` handlers see it, with `ev.stale = true`.
    case stale(current: LedgerStatus)
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
    public func message(rule: String, key: String) -> MessageRecord? { message(rule: rule, sendKey: .explicit(key)) }

    /// The message a rule sent with this key, explicit or implicit.
    func message(rule: String, sendKey: SendKey) -> MessageRecord? {
        keys[Self.keyIndex(rule: rule, sendKey)].flatMap { records[$0] }
    }

    /// Records a sent message (or replaces the record with the same id, for replay).
    public mutating func insert(_ record: MessageRecord) {
        if records.updateValue(record, forKey: record.id) == nil {
            order.append((record.id, record.sentAt))
        }
        if let key = record.sendKey { keys[Self.keyIndex(rule: record.rule, key)] = record.id }
        if let original = record.resendOf { resends[original] = record.id }
    }


    /// The resend (or escalation) of a message, if one was sent.
    public func resend(of id: String) -> String? { resends[id] }

    /// Applies a status reported for a message, following the one-way state machine.
    public mutating func apply(status: LedgerStatus, to id: String, at time: Double, source: StatusSource, event: String? = nil) -> StatusTransition {
        guard var record = records[id] else { return .unknownMessage }
        guard Self.canMove(from: record.status, to: status) else { return .stale(current: record.status) }
        let from = record.status
        record.status = status
        record.history.append(.init(status: status, at: time, source: source, event: event))
        records[id] = record
        return .advanced(from: from, to: status)
    }

    /// What the status event `eventID` means to its message.
    func admission(of status: MessageStatusEvent, eventID: String) -> StatusAdmission {
        guard let record = records[status.messageID] else { return .unknownMessage }
        if record.history.contains(where: { $0.event == eventID }) { return .applied }
        return Self.canMove(from: record.status, to: LedgerStatus(status.status)) ? .moves : .stale
    }

    /// PENDING → SUCCESS | FAILED; nothing moves out of SUCCESS, FAILED or DRY_RUN.
    /// A status Sidobe may add later is accepted from PENDING and never overrides a final one.
    /// UNKNOWN (in doubt) moves only to a final status, by a resolution.
    static func canMove(from current: LedgerStatus, to next: LedgerStatus) -> Bool {
        switch current {
        case .pending: next != .pending && next != .inDoubt
        case .inDoubt: next != .pending && next != .inDoubt && next != .dryRun
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
                if let key = record.sendKey {
                    let index = Self.keyIndex(rule: record.rule, key)
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

    /// One map for both kinds of key; an implicit one cannot collide with a rule's own.
    static func keyIndex(rule: String, _ key: SendKey) -> String {
        switch key {
        case .explicit(let key): rule + "\u{0}" + key
        case .implicit(let key): rule + "\u{1}" + key
        }
    }
}
