import Foundation
import LuaSandbox
import Sidobe

/// Which send a message is, so that the same send is never made twice.
enum SendKey: Sendable, Hashable {
    /// The rule's own `key =`: one message per key and rule, across events.
    case explicit(String)
    /// Derived by the engine for a send without `key =` (``SendKey/implicit(event:ordinal:message:)``).
    case implicit(String)

    /// The key of the `ordinal`-th send (1, 2, …) of a handler run for `event`: a run dispatched
    /// again after a crash that makes the same sends in the same order finds each one made.
    ///
    /// The recipient and content are part of it: a run whose send at some position differs after
    /// the restart (its text depends on `now()`, or on an answer that came back differently) makes
    /// that send as a new one rather than being handed a message it did not ask for.
    static func implicit(event: String, ordinal: Int, message: OutgoingMessage) -> SendKey {
        .implicit("\(event)#\(ordinal)#\(Self.digest(message))")
    }

    /// The key of the engine's own send for a retry policy: one resend, or one escalation, per
    /// failed message.
    static func policy(_ what: String, of messageID: String) -> SendKey { .implicit("\(what):\(messageID)") }

    /// FNV-1a over the recipient, the type and the content: stable across processes and versions
    /// (Swift's `Hasher` is seeded per process).
    private static func digest(_ message: OutgoingMessage) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func add(_ text: String?) {
            for byte in (text ?? "").utf8 {
                hash ^= UInt64(byte)
                hash &*= 0x100_0000_01b3
            }
            hash ^= 0xff
            hash &*= 0x100_0000_01b3
        }
        add(message.phone)
        switch message.content {
        case .text(let text): add("text"); add(text)
        case .image(let url, let caption): add("image"); add(url); add(caption)
        case .document(let url, let name, let caption): add("docs"); add(url); add(name); add(caption)
        }
        return String(hash, radix: 16)
    }
}

/// A send whose request may be out: journaled before the request leaves (``Mutation/sendIntended(_:)``),
/// closed by its answer (the message recorded in the ledger, or ``Mutation/sendClosed(rule:key:)``).
///
/// One still open after a restart is *in doubt*: the request may have reached Sidobe, so it is
/// not sent again. The engine records it in the ledger as `UNKNOWN` (``LedgerStatus/inDoubt``)
/// under the same key, where a run dispatched again finds it (`nil, { code = "IN_DOUBT" }`) and an
/// operator or the rule decides.
struct SendIntent: Sendable, Hashable {
    /// The message as the ledger will record it, but for the id Sidobe gives it (empty here).
    var message: MessageRecord
    /// The event whose run made the send (nil for the engine's own).
    var event: String?

    /// The send's key (every intent has one: explicit, or derived).
    var key: SendKey { message.sendKey ?? .implicit("") }

    /// Where it is kept: the ledger's key index.
    var index: String { MessageLedger.keyIndex(rule: message.rule, key) }

    var journalValue: LuaValue {
        var fields: [String: LuaValue] = ["message": message.journalValue]
        if let event { fields["event"] = .string(event) }
        return .object(fields)
    }

    init(message: MessageRecord, event: String?) {
        self.message = message
        self.event = event
    }

    init(journalValue value: LuaValue) throws(RecordError) {
        let r = RecordReader(value, what: "send intent")
        message = try MessageRecord(journalValue: r.value("message"))
        event = r.optionalString("event")
        guard message.sendKey != nil else { throw RecordError("send intent.message has neither key nor implicit_key") }
    }

    /// The ledger's record of this send once it is in doubt (a restart found its intent open, or
    /// its request went out and no answer came): `UNKNOWN`, under its key.
    func inDoubtRecord(at time: UnixTime, source: StatusSource) -> MessageRecord {
        var record = message
        record.id = "unknown-\(UUID().uuidString.lowercased())"
        record.status = .inDoubt
        record.history = [.init(status: .inDoubt, at: time.secondsValue, source: source, event: event)]
        return record
    }
}
