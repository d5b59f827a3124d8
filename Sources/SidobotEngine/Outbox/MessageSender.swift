import CoreMetrics
import Foundation
import Logging
import LuaSandbox
import Sidobe

/// What a send does to the ledger: the idempotency key checked, a dry run recorded instead of
/// sent, the message sent through the ``Outbox`` and recorded with Sidobe's answer (a sync answer
/// also as its status event, so rules see one `message.failed` per failed message however it was
/// sent), and the outcome noted in the run's trace. Returns what the rule gets: `msg` or `nil, err`.
///
/// Owned by the engine actor.
final class MessageSender {
    private let outbox: Outbox
    private let store: Store
    private let services: RunServices
    private let inbox: EventInbox
    private let clock: any EngineClock
    private let dryRun: Bool
    private let logger: Logger
    private var sendCounters: [String: Counter] = [:]

    init(outbox: Outbox, store: Store, services: RunServices, inbox: EventInbox, clock: any EngineClock, dryRun: Bool, logger: Logger) {
        self.outbox = outbox
        self.store = store
        self.services = services
        self.inbox = inbox
        self.clock = clock
        self.dryRun = dryRun
        self.logger = logger
    }

    /// Sends (or, in dry-run mode, records) a message on behalf of a rule, through the idempotency
    /// check, the outbound pacing and the client's retries, and records it in the ledger. `run` is
    /// the calling run's tag (0 for the engine's own resends).
    func send(_ message: OutgoingMessage, rule: String, key: String?, attempt: Int, resendOf: String?, retry: RetryPlan?,
              run: RunTable.Tag) async -> [LuaValue] {
        do {
            try message.validate()
        } catch {
            services.note(run: run, "send to \(message.phone) refused: \(error)")
            return [.null, SidobeModule.errorValue(error)]
        }
        if let key, let existing = store.data.ledger.message(rule: rule, key: key) {
            services.note(run: run, "send skipped: key '\(key)' was already used by message \(existing.id)")
            return [Self.messageValue(existing, isAsync: message.isAsync)]
        }
        if dryRun {
            var record = Self.ledgerRecord(message, id: "dry-\(UUID().uuidString.lowercased())", status: .dryRun, rule: rule, key: key,
                                           attempt: attempt, resendOf: resendOf, at: clock.now(), source: .dryRun)
            record.retry = retry
            commit(record, run: run)
            count(status: "DRY_RUN", code: "OK")
            services.note(run: run, "dry run: would send \(message.messageType) to \(message.phone) (\(record.id))")
            return [Self.messageValue(record, isAsync: message.isAsync)]
        }
        let (result, flight) = await outbox.transmit(message)
        // Status events held while this send was out go once its answer is recorded.
        defer { for event in outbox.land(flight) { inbox.appendReleased(event) } }
        let sent: SentMessage
        switch result {
        case .failure(.expired):
            services.note(run: run, "send to \(message.phone) expired after waiting for its turn")
            return [.null, SidobeModule.errorValue(code: "EXPIRED", message:
                "the send would wait longer than its time-to-live (\(Int(outbox.timeToLive)) s) for the rate limit")]
        case .failure(.sidobe(let error)):
            services.note(run: run, "send to \(message.phone) failed: \(error)")
            count(status: "error", code: error.code)
            if error.isRetryable, let eventID = services.eventID(of: run), let event = store.data.inflight[eventID]?.event {
                services.addDeadLetter(rule: rule, event: event, reason: .send, error: "send to \(message.phone) failed after retries: \(error)")
            }
            return [.null, SidobeModule.errorValue(error)]
        case .success(let answer):
            sent = answer
        }
        count(status: sent.status.rawValue, code: "OK")
        var record = Self.ledgerRecord(message, id: sent.id, status: .pending, rule: rule, key: key, attempt: attempt,
                                       resendOf: resendOf, at: clock.now(), source: .send)
        record.retry = retry
        if sent.status.isFinal {
            // A sync send already knows its outcome: it moves the ledger and fires message.<status>
            // like a webhook would, so a rule sees exactly one message.failed per failed message,
            // whether it was sent sync or async. The webhook that follows is then a stale duplicate.
            // The message and its status event are one journal record: a crash between them would
            // leave the message PENDING for ever (the rule's retry finds it by key and sends nothing).
            let event = syncStatusEvent(messageID: sent.id, status: sent.status, messageType: sent.messageType)
            commit(record, run: run, with: event)
            inbox.append(event)
        } else {
            commit(record, run: run)
        }
        services.note(run: run, "sent \(sent.messageType) to \(message.phone): \(sent.id) \(sent.status)")
        var value = Self.messageValue(store.data.ledger[sent.id] ?? record, isAsync: sent.isAsync)
        if case .object(var fields) = value {
            fields["status"] = .string(sent.status.rawValue)
            value = .object(fields)
        }
        return [value]
    }

    /// `sidobe.resend(id, { phone =, async = })`: the same content again, optionally to another number.
    func resend(_ id: String, phone: String?, isAsync: Bool?, rule: String, run: RunTable.Tag) async -> [LuaValue] {
        guard let original = store.data.ledger[id] else {
            return [.null, SidobeModule.errorValue(code: "NOT_FOUND", message: "message \(id) is not in the ledger (not sent by this engine, or past retention)")]
        }
        var message = Self.content(of: original)
        if let phone { message.phone = phone }
        if let isAsync { message.isAsync = isAsync }
        return await send(message, rule: rule, key: nil, attempt: original.attempt + 1, resendOf: original.id, retry: nil, run: run)
    }

    /// The `message.<status>` event of a sync send's answer (accepting it moves the ledger).
    private func syncStatusEvent(messageID: String, status: MessageStatus, messageType: MessageType) -> EngineEvent {
        let now = clock.now()
        return EngineEvent(id: "s-\(messageID)", kind: .messageStatus(MessageStatusEvent(
            messageID: messageID, status: status, messageType: messageType,
            sendAt: ISO8601Timestamp.format(now.date), createdAt: ISO8601Timestamp.format(now.date))), at: now)
    }

    private func commit(_ record: MessageRecord, run: RunTable.Tag, with statusEvent: EngineEvent? = nil) {
        do {
            if let statusEvent {
                try store.commit(.batch([.messageAdded(record), .eventAccepted(statusEvent, dedupe: false, movesLedger: true)]))
            } else {
                try store.commit(.messageAdded(record))
            }
        } catch {
            logger.error("journal write failed", metadata: ["error": "\(error)"])
        }
        services.link(run: run, messageID: record.id)
    }

    /// `sidobot_sends_total{status, code}`.
    private func count(status: String, code: String) {
        let key = status + "\u{0}" + code
        if let counter = sendCounters[key] { return counter.increment() }
        let counter = Counter(label: "sidobot_sends_total", dimensions: [("status", status), ("code", code)])
        sendCounters[key] = counter
        counter.increment()
    }

    /// What a rule gets back for a message: `{ id, status, message_type, is_async, attempt, key }`.
    static func messageValue(_ record: MessageRecord, isAsync: Bool) -> LuaValue {
        var fields: [String: LuaValue] = [
            "id": .string(record.id), "status": .string(record.status.rawValue), "message_type": .string(record.messageType.rawValue),
            "is_async": .bool(isAsync), "attempt": .integer(Int64(record.attempt)),
        ]
        if let key = record.key { fields["key"] = .string(key) }
        return .object(fields)
    }

    /// The same content as a ledger message, to send again.
    static func content(of record: MessageRecord) -> OutgoingMessage {
        let content: OutgoingMessage.Content
        switch record.messageType {
        case .image: content = .image(url: record.imageURL ?? "", caption: record.message)
        case .docs: content = .document(url: record.documentURL ?? "", name: record.documentName ?? "", caption: record.message)
        default: content = .text(record.message ?? "")
        }
        return OutgoingMessage(phone: record.phone, content: content, isAsync: record.isAsync)
    }

    static func ledgerRecord(_ message: OutgoingMessage, id: String, status: LedgerStatus, rule: String, key: String?, attempt: Int,
                             resendOf: String?, at time: UnixTime, source: StatusSource) -> MessageRecord {
        var imageURL: String?, documentURL: String?, documentName: String?
        switch message.content {
        case .text: break
        case .image(let url, _): imageURL = url
        case .document(let url, let name, _):
            documentURL = url
            documentName = name
        }
        var record = MessageRecord(id: id, phone: message.phone, message: message.text, imageURL: imageURL, documentURL: documentURL,
                                   documentName: documentName, messageType: message.messageType, rule: rule, key: key,
                                   attempt: attempt, resendOf: resendOf, status: status, sentAt: time.secondsValue, source: source)
        record.isAsync = message.isAsync
        return record
    }
}
