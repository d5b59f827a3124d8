import Foundation
import Logging
import LuaSandbox
import Sidobe
import Synchronization

/// The kind of `sidobe.send*` call.
enum SendKind {
    case text, image, document

    var functionName: String {
        switch self {
        case .text: "sidobe.send"
        case .image: "sidobe.send_image"
        case .document: "sidobe.send_doc"
        }
    }
}

extension Engine {
    /// `sidobe.send{...}`, `send_image`, `send_doc`: returns `msg` or `nil, err`.
    func apiSend(_ call: LuaAsyncHostCall, rule: String, kind: SendKind) async throws -> [LuaValue] {
        let arguments = call.arguments
        let fields = try arguments.object(at: 0)
        func text(_ key: String, required: Bool = false) throws(LuaHostError) -> String? {
            switch fields[key] {
            case nil, .null?:
                if required { throw LuaHostError("bad argument #1 to '\(kind.functionName)' (field '\(key)' is required)") }
                return nil
            case .string(let s)?: return s
            case let other?: throw LuaHostError("bad argument #1 to '\(kind.functionName)' (field '\(key)' must be a string, got \(other.luaTypeName))")
            }
        }
        var retry: RetryPlan?
        if let plan = fields["retry"], !plan.isNull { retry = try RetryPlan(luaValue: plan, functionName: kind.functionName) }
        let phone = try text("phone", required: true) ?? ""
        let caption = try text("message")
        let isAsync = fields["async"]?.boolValue ?? false
        let key = try text("key")
        let content: OutgoingMessage.Content
        switch kind {
        case .text: content = .text(caption ?? "")
        case .image: content = .image(url: try text("image_url") ?? "", caption: caption)
        case .document: content = .document(url: try text("document_url") ?? "", name: try text("document_name") ?? "", caption: caption)
        }
        let message = OutgoingMessage(phone: phone, content: content, isAsync: isAsync)
        return await send(message, rule: rule, key: key, attempt: 1, resendOf: nil, retry: retry, tag: call.runTag)
    }

    /// `sidobe.resend(message_id [, { phone = ... }])`: the same content again, optionally to another number.
    func apiResend(_ call: LuaAsyncHostCall, rule: String) async throws -> [LuaValue] {
        let id = try call.arguments.string(at: 0)
        let options = try Self.options(call.arguments, at: 1)
        guard let original = store.data.ledger[id] else {
            return [.null, Self.errorValue(code: "NOT_FOUND", message: "message \(id) is not in the ledger (not sent by this engine, or past retention)")]
        }
        var message = resendMessage(of: original)
        if let other = options["phone"] {
            guard case .string(let phone) = other else { throw LuaHostError("bad argument #2 to 'sidobe.resend' (phone must be a string)") }
            message.phone = phone
        }
        if let isAsync = options["async"]?.boolValue { message.isAsync = isAsync }
        return await send(message, rule: rule, key: nil, attempt: original.attempt + 1, resendOf: original.id, retry: nil, tag: call.runTag)
    }

    /// `sidobe.message(id)`: the message's details from Sidobe.
    func apiMessage(_ call: LuaAsyncHostCall, rule: String) async throws -> [LuaValue] {
        let id = try call.arguments.string(at: 0)
        do {
            let detail = try await sidobe.message(id: id)
            var fields: [String: LuaValue] = [
                "id": .string(detail.id), "status": .string(detail.status.rawValue),
                "message_type": .string(detail.messageType.rawValue), "is_async": .bool(detail.isAsync),
            ]
            if let device = detail.whatsappDevice {
                fields["device"] = .object(["id": .string(device.id), "phone": .string(device.phone), "name": .string(device.name)])
            }
            return [.object(fields)]
        } catch {
            return [.null, Self.errorValue(error)]
        }
    }

    /// `sidobe.check_number(phone)`: `true`/`false`, or `nil, err`.
    func apiCheckNumber(_ call: LuaAsyncHostCall, rule: String) async throws -> [LuaValue] {
        let phone = try call.arguments.string(at: 0)
        do {
            return [.bool(try await sidobe.checkNumber(phone))]
        } catch {
            return [.null, Self.errorValue(error)]
        }
    }

    /// Sends (or, in dry-run mode, records) a message on behalf of a rule, through the idempotency
    /// check, the outbound pacing and the client's retries, and records it in the ledger.
    func send(_ message: OutgoingMessage, rule: String, key: String?, attempt: Int, resendOf: String?, retry: RetryPlan?, tag: Int) async -> [LuaValue] {
        do {
            try message.validate()
        } catch {
            note(tag: tag, "send to \(message.phone) refused: \(error)")
            return [.null, Self.errorValue(error)]
        }
        if let key, let existing = store.data.ledger.message(rule: rule, key: key) {
            note(tag: tag, "send skipped: key '\(key)' was already used by message \(existing.id)")
            return [Self.messageValue(existing, isAsync: message.isAsync)]
        }
        let now = clock.now()
        if configuration.dryRun {
            var record = ledgerRecord(message, id: "dry-\(UUID().uuidString.lowercased())", status: "DRY_RUN", rule: rule, key: key,
                                      attempt: attempt, resendOf: resendOf, at: now, source: "dry-run")
            record.retry = retry
            commitMessage(record, tag: tag)
            metrics.send(status: "DRY_RUN", code: "OK")
            note(tag: tag, "dry run: would send \(message.messageType) to \(message.phone) (\(record.id))")
            return [Self.messageValue(record, isAsync: message.isAsync)]
        }
        if let expired = await waitForTurn(phone: message.phone, tag: tag) { return [.null, expired] }
        let sent: SentMessage
        let inFlight = sendsInFlight.begin()
        defer { sendEnded(inFlight) }
        do {
            sent = try await sidobe.send(message)
        } catch {
            if case .rateLimited(_, let retryAfter) = error { throttleSends(retryAfter: retryAfter) }
            note(tag: tag, "send to \(message.phone) failed: \(error)")
            metrics.send(status: "error", code: error.code)
            if error.isRetryable, let run = runs[tag], let event = store.data.inflight[run.eventID]?.event {
                addDeadLetter(rule: rule, event: event, reason: "send", error: "send to \(message.phone) failed after retries: \(error)")
            }
            return [.null, Self.errorValue(error)]
        }
        pacing.record(message.phone, now: clock.now().secondsValue)
        bucket.recordAdmitted(now: clock.now().secondsValue)
        metrics.send(status: sent.status.rawValue, code: "OK")
        var record = ledgerRecord(message, id: sent.id, status: "PENDING", rule: rule, key: key, attempt: attempt,
                                  resendOf: resendOf, at: clock.now(), source: "send")
        record.retry = retry
        if sent.status.isFinal {
            // A sync send already knows its outcome: it moves the ledger and fires message.<status>
            // like a webhook would, so a rule sees exactly one message.failed per failed message,
            // whether it was sent sync or async. The webhook that follows is then a stale duplicate.
            // The message and its status event are one journal record: a crash between them would
            // leave the message PENDING for ever (the rule's retry finds it by key and sends nothing).
            let event = syncStatusEvent(messageID: sent.id, status: sent.status.rawValue, messageType: sent.messageType.rawValue)
            commitMessage(record, tag: tag, with: event)
            enqueue(event)
        } else {
            commitMessage(record, tag: tag)
        }
        note(tag: tag, "sent \(sent.messageType) to \(message.phone): \(sent.id) \(sent.status)")
        var result = Self.messageValue(store.data.ledger[sent.id] ?? record, isAsync: sent.isAsync)
        if case .object(var fields) = result {
            fields["status"] = .string(sent.status.rawValue)
            result = .object(fields)
        }
        return [result]
    }

    /// A send's request is answered (or failed): status events held for it may go now. Runs after
    /// the answer was recorded (the caller's `defer`), so a held webhook finds its message known.
    func sendEnded(_ token: Int) {
        sendsInFlight.end(token)
        for event in sendsInFlight.releasable() {
            dispatch(event, note: "held until the sends in flight were answered: it could have been the status of one of them")
        }
    }

    /// The `message.<status>` event of a sync send's answer (accepting it moves the ledger).
    func syncStatusEvent(messageID: String, status: String, messageType: String) -> EngineEvent {
        let now = clock.now()
        return EngineEvent(id: "s-\(messageID)", kind: .messageStatus(MessageStatusEvent(
            messageID: messageID, status: status, messageType: messageType,
            sendAt: ISO8601Timestamp.format(now.date), createdAt: ISO8601Timestamp.format(now.date))), at: now)
    }

    /// Waits for the global rate and the recipient's minimum gap. Returns an `EXPIRED` error if the
    /// send would wait longer than its time-to-live. Under a virtual clock there is no pacing.
    ///
    /// Each send reserves its slot in the bucket and at the recipient, then sleeps once until it; a
    /// 429 that comes back meanwhile makes the reservation stale, and it is made again at the
    /// lower rate.
    func waitForTurn(phone: String, tag: Int) async -> LuaValue? {
        guard !isVirtualTime else { return nil }
        let start = clock.now().secondsValue
        let timeToLive = configuration.sendTimeToLive
        waitingSends += 1
        defer { waitingSends -= 1 }
        var ownSlot: Double?
        while true {
            let now = clock.now().secondsValue
            let recipientWait = pacing.wait(for: phone, now: now, ignoring: ownSlot)
            let wait = recipientWait > 0 ? recipientWait : bucket.waitIfReserved(now: now)
            if now + wait - start > timeToLive {
                note(tag: tag, "send to \(phone) expired after waiting for its turn")
                return Self.errorValue(code: "EXPIRED", message: "the send would wait longer than its time-to-live (\(Int(timeToLive)) s) for the rate limit")
            }
            if recipientWait > 0 {
                try? await clock.sleep(until: Self.time(now + recipientWait))
                continue
            }
            let slot = bucket.reserve(now: now)
            let generation = bucket.generation
            metrics.sendRate.record(bucket.currentRate)
            pacing.record(phone, at: slot, now: now)
            ownSlot = slot
            if slot > now { try? await clock.sleep(until: Self.time(slot)) }
            if bucket.generation == generation { return nil }
            // Sidobe answered 429 while this send waited: its slot was planned at the old rate.
        }
    }

    static func time(_ seconds: Double) -> UnixTime { UnixTime(milliseconds: Int64((seconds * 1000).rounded(.up))) }

    /// Sidobe answered 429: sends slow down (the rate halves, at most once a second) and, with a
    /// `Retry-After`, wait until it has passed.
    func throttleSends(retryAfter: Duration?) {
        let before = bucket.currentRate
        bucket.throttled(now: clock.now().secondsValue, retryAfter: retryAfter.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 })
        metrics.sendRate.record(bucket.currentRate)
        if bucket.currentRate < before {
            logger.warning("Sidobe is rate limiting (429): sends slowed down", metadata: [
                "rate_per_second": "\(bucket.currentRate)", "configured_rate": "\(bucket.configuredRate)",
                "retry_after": "\(retryAfter.map { "\($0)" } ?? "none")",
            ])
        }
    }

    /// Tells the engine that Sidobe answered 429 (from any executor). Connect it to the client with
    /// ``RateLimitFeedback``, so sends slow down at the first 429 the client sees, not only when a
    /// send's retries ran out.
    public nonisolated func sidobeRateLimited(retryAfter: Duration?) {
        Task { await self.throttleSends(retryAfter: retryAfter) }
    }

    func ledgerRecord(_ message: OutgoingMessage, id: String, status: String, rule: String, key: String?, attempt: Int,
                      resendOf: String?, at time: UnixTime, source: String) -> MessageRecord {
        var imageURL: String?, documentURL: String?, documentName: String?
        switch message.content {
        case .text: break
        case .image(let url, _): imageURL = url
        case .document(let url, let name, _):
            documentURL = url
            documentName = name
        }
        var record = MessageRecord(id: id, phone: message.phone, message: message.text, imageURL: imageURL, documentURL: documentURL,
                                   documentName: documentName, messageType: message.messageType.rawValue, rule: rule, key: key,
                                   attempt: attempt, resendOf: resendOf, status: status, sentAt: time.secondsValue, source: source)
        record.isAsync = message.isAsync
        return record
    }

    func commitMessage(_ record: MessageRecord, tag: Int, with statusEvent: EngineEvent? = nil) {
        do {
            if let statusEvent {
                try store.commit(.batch([.messageAdded(record), .eventAccepted(statusEvent, dedupe: false)]))
            } else {
                try store.commit(.messageAdded(record))
            }
        } catch {
            logJournalFailure(error)
        }
        if let position = runs[tag]?.tracePosition { traces.link(messageID: record.id, to: position) }
    }

    static func messageValue(_ record: MessageRecord, isAsync: Bool) -> LuaValue {
        var fields: [String: LuaValue] = [
            "id": .string(record.id), "status": .string(record.status), "message_type": .string(record.messageType),
            "is_async": .bool(isAsync), "attempt": .integer(Int64(record.attempt)),
        ]
        if let key = record.key { fields["key"] = .string(key) }
        return .object(fields)
    }

    /// The `err` table rules receive: `{ code, message, http_status, field }`.
    static func errorValue(_ error: SidobeError) -> LuaValue {
        var fields: [String: LuaValue] = ["code": .string(error.code), "message": .string(error.message)]
        if let status = error.httpStatus { fields["http_status"] = .integer(Int64(status)) }
        if case .invalidField(let field) = error { fields["field"] = .string(field.field) }
        if error.mayHaveBeenDelivered { fields["may_have_been_delivered"] = .bool(true) }
        return .object(fields)
    }

    static func errorValue(code: String, message: String) -> LuaValue {
        .object(["code": .string(code), "message": .string(message)])
    }
}

extension SidobeError {
    /// Whether the client retried this kind of failure before giving up (so it is worth a dead letter).
    var isRetryable: Bool {
        switch self {
        case .rateLimited, .transport, .timeout: true
        case .serverError(let failure): failure.httpStatus == 503
        default: false
        }
    }
}

/// Carries Sidobe's 429s from a ``SidobeClient`` to the engine that paces the sends. The client is
/// made before the engine (the engine is given it), so the link is made afterwards:
///
/// ```swift
/// let feedback = RateLimitFeedback()
/// var configuration = SidobeClient.Configuration(secretKey: key)
/// configuration.onRateLimited = { feedback.rateLimited(retryAfter: $0) }
/// let engine = Engine(configuration: engineConfiguration, sidobe: SidobeClient(configuration: configuration))
/// feedback.attach(engine)
/// ```
public final class RateLimitFeedback: Sendable {
    private let engine = Mutex<Engine?>(nil)

    public init() {}

    /// The engine to tell.
    public func attach(_ engine: Engine) { self.engine.withLock { $0 = engine } }

    /// Sidobe answered 429 (pass this as `SidobeClient.Configuration.onRateLimited`).
    public func rateLimited(retryAfter: Duration?) {
        engine.withLock { $0 }?.sidobeRateLimited(retryAfter: retryAfter)
    }
}

/// The sends whose request is out, and the status events held until they are answered.
///
/// Sidobe may deliver the webhook of a sync send before the engine has read the send's own
/// answer. Dispatched at once, it would reach rules as a first `message.failed` without
/// `ev.message`, and the answer would fire a second one. A status for a message the ledger does not
/// know, arriving while sends are out, is therefore held until every send out at that moment is
/// answered; then it is dispatched (stale, if it was one of ours). A status of a message another
/// system sent waits at most as long as one request.
struct SendsInFlight {
    private var next = 0
    private var open: Set<Int> = []
    private var held: [(waitFor: Int, event: EngineEvent)] = []

    var isEmpty: Bool { open.isEmpty }

    mutating func begin() -> Int {
        next += 1
        open.insert(next)
        return next
    }

    mutating func end(_ token: Int) { open.remove(token) }

    /// Holds `event` until the sends out now are answered.
    mutating func hold(_ event: EngineEvent) { held.append((next, event)) }

    /// The held events whose sends are all answered, in arrival order.
    mutating func releasable() -> [EngineEvent] {
        guard !held.isEmpty else { return [] }
        let oldestOpen = open.min() ?? Int.max
        let ready = held.prefix { $0.waitFor < oldestOpen }
        held.removeFirst(ready.count)
        return ready.map(\.event)
    }
}
