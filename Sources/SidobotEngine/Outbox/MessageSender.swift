import CoreMetrics
import Foundation
import Logging
import LuaSandbox
import Sidobe

/// What a send does to the ledger: its key checked (the rule's `key =`, or the one derived from
/// the run, ``SendKey``), a dry run recorded instead of sent, its intent journaled before the
/// request leaves (``SendIntent``), the message sent through the ``Outbox`` and recorded with
/// Sidobe's answer (a sync answer also as its status event, so rules see one `message.failed` per
/// failed message however it was sent), and the outcome noted in the run's trace. Returns what the
/// rule gets: `msg` or `nil, err`; a send whose key names a message in doubt gets
/// `nil, { code = "IN_DOUBT" }` and is not made.
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
    /// `sidobot_sends_in_doubt_total`: sends found interrupted by a restart with their request out.
    private let inDoubtCounter = Counter(label: "sidobot_sends_in_doubt_total")

    init(outbox: Outbox, store: Store, services: RunServices, inbox: EventInbox, clock: any EngineClock, dryRun: Bool, logger: Logger) {
        self.outbox = outbox
        self.store = store
        self.services = services
        self.inbox = inbox
        self.clock = clock
        self.dryRun = dryRun
        self.logger = logger
    }

    /// Sends (or, in dry-run mode, records) a message on behalf of a rule, through the key check,
    /// the intent, the outbound pacing and the client's retries, and records it in the ledger.
    /// `run` is the calling run's tag (0 for the engine's own resends, which name their send with
    /// `policyKey`).
    func send(_ message: OutgoingMessage, rule: String, key: String?, policyKey: SendKey? = nil, attempt: Int, resendOf: String?,
              retry: RetryPlan?, run: RunTable.Tag) async -> [LuaValue] {
        do {
            try message.validate()
        } catch {
            services.note(run: run, "send to \(message.phone) refused: \(error)")
            return [.null, SidobeModule.errorValue(error)]
        }
        let sendKey = key.map(SendKey.explicit) ?? policyKey
            ?? services.nextSend(of: run).map { SendKey.implicit(event: $0.eventID, ordinal: $0.ordinal, message: message) }
        if let sendKey, let existing = store.data.ledger.message(rule: rule, sendKey: sendKey) {
            if existing.status == .inDoubt {
                let since = existing.history.first?.source == .restart ? "since a restart" : "since its answer never came"
                services.note(run: run, "send not made: it is in doubt \(since) (message \(existing.id)); an operator or the rule decides")
                // `sidobot trace unknown-…` then finds the run that was told.
                services.link(run: run, messageID: existing.id)
                return [.null, Self.inDoubtError(existing)]
            }
            if let key {
                services.note(run: run, "send skipped: key '\(key)' was already used by message \(existing.id)")
            } else {
                services.note(run: run, "send skipped: made before a restart as message \(existing.id)")
            }
            return [Self.messageValue(existing, isAsync: message.isAsync)]
        }
        var record = Self.ledgerRecord(message, id: "", status: .pending, rule: rule, key: key, attempt: attempt,
                                       resendOf: resendOf, at: clock.now(), source: .send)
        record.retry = retry
        if key == nil, case .implicit(let implicit)? = sendKey { record.implicitKey = implicit }
        if dryRun {
            record.id = "dry-\(UUID().uuidString.lowercased())"
            record.status = .dryRun
            record.history = [.init(status: .dryRun, at: record.sentAt, source: .dryRun)]
            commit(record, run: run)
            count(status: "DRY_RUN", code: "OK")
            services.note(run: run, "dry run: would send \(message.messageType) to \(message.phone) (\(record.id))")
            return [Self.messageValue(record, isAsync: message.isAsync)]
        }
        // The intent goes into the journal when the send's turn has come, just before its request
        // leaves: a crash while it is out leaves it open, and the restart records the send as in
        // doubt instead of making it again.
        let intent = sendKey.map { _ in SendIntent(message: record, event: services.eventID(of: run)) }
        let (result, flight) = await outbox.transmit(message) { () throws(DurabilityError) in
            guard let intent else { return }
            try services.commitNow(.sendIntended(intent), run: run)
        }
        // Status events held while this send was out go once its answer is recorded.
        defer { for event in outbox.land(flight) { inbox.appendReleased(event) } }
        let sent: SentMessage
        switch result {
        case .failure(.notJournaled(let error)):
            // Not durable, so the request did not leave; the intent, applied, is withdrawn with the next write.
            if let sendKey { store.applyQueued(.sendClosed(rule: rule, key: sendKey)) }
            services.note(run: run, "send to \(message.phone) not made: the journal cannot be written (\(error))")
            return [.null, SidobeModule.errorValue(code: "JOURNAL", message: "the send was not made: its intent could not be journaled (\(error))")]
        case .failure(.expired):
            close(sendKey, rule: rule)
            services.note(run: run, "send to \(message.phone) expired after waiting for its turn")
            return [.null, SidobeModule.errorValue(code: "EXPIRED", message:
                "the send would wait longer than its time-to-live (\(Int(outbox.timeToLive)) s) for the rate limit")]
        case .failure(.sidobe(let error)):
            count(status: "error", code: error.code)
            if error.mayHaveBeenDelivered, let intent {
                return answerInDoubt(intent, error: error, phone: message.phone, run: run)
            }
            close(sendKey, rule: rule)
            services.note(run: run, "send to \(message.phone) failed: \(error)")
            if error.isRetryable, let eventID = services.eventID(of: run), let event = store.data.inflight[eventID]?.event {
                services.addDeadLetter(rule: rule, event: event, reason: .send, error: "send to \(message.phone) failed after retries: \(error)")
            }
            return [.null, SidobeModule.errorValue(error)]
        case .success(let answer):
            sent = answer
        }
        count(status: sent.status.rawValue, code: "OK")
        record.id = sent.id
        record.sentAt = clock.now().secondsValue
        record.history = [.init(status: .pending, at: record.sentAt, source: .send)]
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

    /// The request went out and no answer came (a timeout, a connection lost after the write):
    /// the same doubt a crash leaves. The message is kept as UNKNOWN under its key, so no later
    /// send with that key makes it again and an operator sees it; the rule hears the error as it
    /// is, with the UNKNOWN message's `id` to resend.
    private func answerInDoubt(_ intent: SendIntent, error: SidobeError, phone: String, run: RunTable.Tag) -> [LuaValue] {
        services.note(run: run, "send to \(phone) in doubt: \(error); it may have been delivered")
        guard let doubt = recordInDoubt(intent, source: .send, because: "its request went out but no answer came (\(error))") else {
            return [.null, SidobeModule.errorValue(error)]
        }
        services.link(run: run, messageID: doubt.id)
        guard case .object(var fields) = SidobeModule.errorValue(error) else { return [.null, SidobeModule.errorValue(error)] }
        fields["id"] = .string(doubt.id)
        return [.null, .object(fields)]
    }

    /// At start-up, after recovery: every send whose intent is still open was interrupted while
    /// its request may have been out. Each is recorded as in doubt (UNKNOWN, under its key), never
    /// sent again by itself.
    func recordInterruptedSends() {
        let open = store.data.intents.values.sorted { $0.message.sentAt < $1.message.sentAt }
        for intent in open {
            recordInDoubt(intent, source: .restart, because: "the restart interrupted it while its request was out")
        }
    }

    /// Keeps the send of `intent` as a message in doubt (UNKNOWN, under its key; its intent is
    /// closed by it), counts and logs it. Nil when the journal cannot be written: the intent stays
    /// open, and the next restart finds it in doubt.
    @discardableResult
    private func recordInDoubt(_ intent: SendIntent, source: StatusSource, because reason: String) -> MessageRecord? {
        let record = intent.inDoubtRecord(at: clock.now(), source: source)
        do {
            try store.commit(.messageAdded(record))
        } catch {
            logger.error("journal write failed", metadata: ["error": "\(error)"])
            return nil
        }
        inDoubtCounter.increment()
        var metadata: Logger.Metadata = ["rule": "\(record.rule)", "message": "\(record.id)", "phone": "\(record.phone)"]
        if let key = record.key { metadata["key"] = "\(key)" }
        if let event = intent.event { metadata["event"] = "\(event)" }
        logger.warning("a send is in doubt: \(reason), so it may have been delivered; it is not sent again, and stays UNKNOWN until an operator or the rule decides",
                       metadata: metadata)
        return record
    }

    /// The intent of a send that ended without a message to record is closed (journaled now: an
    /// intent left open would make the next restart report the send as in doubt).
    private func close(_ key: SendKey?, rule: String) {
        guard let key else { return }
        do {
            try store.commit(.sendClosed(rule: rule, key: key))
        } catch {
            store.applyQueued(.sendClosed(rule: rule, key: key))
        }
    }

    /// The `err` of a send whose key names a message in doubt.
    static func inDoubtError(_ record: MessageRecord) -> LuaValue {
        .object([
            "code": "IN_DOUBT", "may_have_been_delivered": .bool(true), "id": .string(record.id),
            "message": .string((record.history.first?.source == .restart
                    ? "a restart interrupted this send while its request was out" : "this send's request went out and no answer came")
                + ", so it may have been delivered; it is not sent again by itself (message \(record.id), status UNKNOWN)"),
        ])
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
