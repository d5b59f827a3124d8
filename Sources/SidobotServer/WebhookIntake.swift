import Foundation
import HTTPTypes
import Logging
import NIOCore
import Sidobe
import SidobotEngine

/// The checks and answers of `POST /webhooks/sidobe`, in one place for both ways a webhook comes
/// in: the NIO fast path (``WebhookFastPath``, the usual one) and the Hummingbird route (a request
/// pipelined behind another on the same connection).
///
/// Order: a missing signature is refused (401) and a server not ready answers 503 before the body
/// is looked at; a body over the limit gets 413; the `id` is read from it (400 when the body is
/// not JSON or has no string id: nothing is processed either way); the signature over the id is
/// checked in constant time (401); then the decoded event (400 naming the field) goes to the
/// engine's ``Intake``, which journals it (with the other webhooks arriving meanwhile: group
/// commit); only then is 200 sent. Rules run after the answer, and never hold it up.
struct WebhookIntake: Sendable {
    let secretKey: SecretKey
    let maxBodyBytes: Int
    let state: ServerState
    let counters: IngressCounters
    let logger: Logger
    /// The engine's intake: journals and acknowledges without waiting for a Lua run.
    let engineIntake: Intake
    /// With `--confirm-status`: asks Sidobe for a FAILED message's real status.
    let confirmStatus: (@Sendable (String) async throws -> MessageStatus)?

    /// An answer, ready to be written by either path.
    struct Answer: Sendable {
        var status: HTTPResponse.Status
        var body: ByteBuffer
    }

    enum Verdict {
        case answer(Answer)
        case accept(WebhookEvent)
    }

    var tooLargeMessage: String { "the body is larger than \(maxBodyBytes) bytes" }

    /// Before the body: the signature header, readiness, a declared length over the limit.
    func checkHead(signature: String?, contentLength: Int?) -> Answer? {
        guard let signature, !signature.isEmpty else {
            counters.webhook(.rejectedSignature)
            logger.info("webhook refused: no X-Webhook-Signature", metadata: ["outcome": "rejected_signature"])
            return Self.error(.unauthorized, "missing X-Webhook-Signature")
        }
        guard state.isReady else {
            return Self.error(.serviceUnavailable, state.isStopping ? "shutting down" : "starting: not ready yet")
        }
        if let contentLength, contentLength > maxBodyBytes { return tooLarge() }
        return nil
    }

    func tooLarge() -> Answer {
        counters.webhook(.tooLarge)
        logger.info("webhook refused: body too large", metadata: ["outcome": "too_large"])
        return Self.error(.contentTooLarge, tooLargeMessage)
    }

    /// With the body: one pass over it for the id the signature covers, and the event or the field at fault.
    func checkBody(signature: String, body: ByteBuffer) -> Verdict {
        let parsed = body.withUnsafeReadableBytes { WebhookEvent.parse($0.bindMemory(to: UInt8.self)) }
        guard let id = parsed.id else {
            counters.webhook(.malformed)
            logger.info("webhook refused: no readable id", metadata: ["outcome": "malformed"])
            return .answer(Self.error(.badRequest, "the body is not a JSON object with a string \"id\" (the signature is computed over it)"))
        }
        guard WebhookSignature.verify(signature: signature, id: id, secretKey: secretKey) else {
            counters.webhook(.rejectedSignature)
            logger.info("webhook refused: bad signature", metadata: ["event": "\(id)", "outcome": "rejected_signature"])
            return .answer(Self.error(.unauthorized, "bad X-Webhook-Signature"))
        }
        switch parsed.result {
        case .success(let event):
            return .accept(event)
        case .failure(let error):
            counters.webhook(.malformed)
            logger.info("webhook refused: malformed", metadata: ["event": "\(id)", "outcome": "malformed", "reason": "\(error)"])
            return .answer(Self.error(.badRequest, error.description))
        }
    }

    /// Hands a verified event to the engine's intake (with the other webhooks arriving meanwhile)
    /// and calls `completion` with the answer once it is journaled, on no particular executor.
    ///
    /// - Parameter writeOn: the event loop the request was read on, when the caller is one: the
    ///   journal write of the webhooks it reads in one turn is done there, at the end of the turn.
    func accept(_ event: WebhookEvent, writeOn: Intake.TurnScheduler? = nil, completion: @escaping @Sendable (Answer) -> Void) {
        if let confirmStatus, case .messageStatus(let update) = event.payload, update.status == .failed {
            Task {
                switch await confirmed(event, update, with: confirmStatus) {
                case .accept(let event): submit(event, writeOn: nil, completion: completion)
                case .answer(let answer): completion(answer)
                }
            }
            return
        }
        submit(event, writeOn: writeOn, completion: completion)
    }

    private func submit(_ event: WebhookEvent, writeOn: Intake.TurnScheduler?, completion: @escaping @Sendable (Answer) -> Void) {
        engineIntake.submit([event], writeOn: writeOn) { result in completion(answer(for: result.map { $0[0] }, event: event)) }
    }

    /// `--confirm-status`: the event with Sidobe's own view of the status, or the 503 to answer.
    private func confirmed(_ event: WebhookEvent, _ update: MessageStatusUpdate,
                           with confirmStatus: @Sendable (String) async throws -> MessageStatus) async -> Verdict {
        do {
            let status = try await confirmStatus(update.whatsappMessageID)
            guard status != update.status else { return .accept(event) }
            logger.warning("webhook status not confirmed by Sidobe; using Sidobe's answer",
                           metadata: ["event": "\(event.id)", "message": "\(update.whatsappMessageID)", "claimed": "\(update.status)", "confirmed": "\(status)"])
            var corrected = event
            var changed = update
            changed.status = status
            corrected.payload = .messageStatus(changed)
            return .accept(corrected)
        } catch {
            logger.warning("cannot confirm a FAILED status with Sidobe; answering 503 so the webhook is delivered again",
                           metadata: ["event": "\(event.id)", "error": "\(error)"])
            return .answer(Self.error(.serviceUnavailable, "cannot confirm the status with Sidobe now; try again"))
        }
    }

    /// The answer to a webhook the engine took (or could not journal).
    func answer(for result: Result<WebhookAcceptance, EngineError>, event: WebhookEvent) -> Answer {
        switch result {
        case .failure(let error):
            logger.error("webhook not journaled; answering 500 so it is delivered again", metadata: ["event": "\(event.id)", "error": "\(error)"])
            return Self.error(.internalServerError, "the event could not be journaled; deliver it again")
        case .success(.accepted(let eventID)):
            counters.webhook(.accepted)
            switch event.payload {
            case .messageStatus(let update):
                logger.info("webhook accepted", metadata: ["event": "\(eventID)", "outcome": "accepted", "message": "\(update.whatsappMessageID)", "status": "\(update.status)"])
            case .unknown(let type):
                logger.info("webhook of a type Sidobot does not interpret accepted; rules see it as sidobe.\(type)",
                            metadata: ["event": "\(eventID)", "outcome": "accepted", "type": "\(type)"])
            }
            return Self.accepted("accepted", eventID)
        case .success(.duplicate(let eventID)):
            // The engine logs the duplicate (one line per outcome).
            counters.webhook(.duplicate)
            return Self.accepted("duplicate", eventID)
        }
    }

    // MARK: Answers

    /// `{"event_id":"…","status":"…"}`, written directly: this answer is on the hot path, and
    /// `JSONEncoder` cost several microseconds per request (docs/PERFORMANCE.md).
    static func accepted(_ status: String, _ eventID: String, code: HTTPResponse.Status = .ok) -> Answer {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(eventID.utf8.count + 48)
        bytes.append(contentsOf: #"{"event_id":"#.utf8)
        JSONCodec.appendString(eventID, to: &bytes)
        bytes.append(contentsOf: #","status":""#.utf8)
        bytes.append(contentsOf: status.utf8)
        bytes.append(contentsOf: #""}"#.utf8)
        return Answer(status: code, body: ByteBuffer(bytes: bytes))
    }

    /// `{"error":"…"}`: the body of every error answer of the server.
    static func error(_ status: HTTPResponse.Status, _ message: String) -> Answer {
        var bytes: [UInt8] = []
        bytes.append(contentsOf: #"{"error":"#.utf8)
        JSONCodec.appendString(message, to: &bytes)
        bytes.append(UInt8(ascii: "}"))
        return Answer(status: status, body: ByteBuffer(bytes: bytes))
    }
}
