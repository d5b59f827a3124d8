import Foundation
import Hummingbird
import Logging
import LuaSandbox
import Sidobe
import SidobotEngine

extension HTTPFields.Element.Name {
    static let webhookSignature = HTTPFields.Element.Name(WebhookSignature.headerName)!
}


extension SidobotHTTPServer {
    /// `POST /webhooks/sidobe`.
    ///
    /// Order: a missing signature is refused (401) before the body is read; the body is read up to
    /// the limit (413); the `id` is read from it (400 when the body is not JSON or has no string id:
    /// nothing is processed either way); the signature over the id is checked in constant time
    /// (401); then the body is decoded in full (400 naming the field) and the engine journals it;
    /// only then is 200 sent. Rules run after the answer.
    func webhook(_ incoming: Request) async -> Response {
        guard let signature = incoming.headers[.webhookSignature], !signature.isEmpty else {
            counters.webhook(.rejectedSignature)
            logger.info("webhook refused: no X-Webhook-Signature", metadata: ["outcome": "rejected_signature"])
            return Self.error(.unauthorized, "missing X-Webhook-Signature")
        }
        guard state.isReady else {
            return Self.error(.serviceUnavailable, state.isStopping ? "shutting down" : "starting: not ready yet")
        }
        var request = incoming
        let body: ByteBuffer
        switch await collect(&request) {
        case .success(let buffer):
            body = buffer
        case .failure(.tooLarge):
            counters.webhook(.tooLarge)
            logger.info("webhook refused: body too large", metadata: ["outcome": "too_large"])
            return Self.error(.contentTooLarge, tooLargeMessage)
        case .failure(.unreadable(let reason)):
            counters.webhook(.malformed)
            return Self.error(.badRequest, "cannot read the body: \(reason)")
        }
        // One pass over the body: the id the signature covers, and the event or the field at fault.
        let parsed = body.withUnsafeReadableBytes { WebhookEvent.parse($0.bindMemory(to: UInt8.self)) }
        guard let id = parsed.id else {
            counters.webhook(.malformed)
            logger.info("webhook refused: no readable id", metadata: ["outcome": "malformed"])
            return Self.error(.badRequest, "the body is not a JSON object with a string \"id\" (the signature is computed over it)")
        }
        guard WebhookSignature.verify(signature: signature, id: id, secretKey: configuration.secretKey) else {
            counters.webhook(.rejectedSignature)
            logger.info("webhook refused: bad signature", metadata: ["event": "\(id)", "outcome": "rejected_signature"])
            return Self.error(.unauthorized, "bad X-Webhook-Signature")
        }
        var event: WebhookEvent
        switch parsed.result {
        case .success(let decoded):
            event = decoded
        case .failure(let error):
            counters.webhook(.malformed)
            logger.info("webhook refused: malformed", metadata: ["event": "\(id)", "outcome": "malformed", "reason": "\(error)"])
            return Self.error(.badRequest, error.description)
        }
        if configuration.confirmFailedStatus, let confirmStatus, case .messageStatus(var update) = event.payload, update.status == .failed {
            do {
                let confirmed = try await confirmStatus(update.whatsappMessageID)
                if confirmed != update.status {
                    logger.warning("webhook status not confirmed by Sidobe; using Sidobe's answer",
                                   metadata: ["event": "\(id)", "message": "\(update.whatsappMessageID)", "claimed": "\(update.status)", "confirmed": "\(confirmed)"])
                    update.status = confirmed
                    event.payload = .messageStatus(update)
                }
            } catch {
                logger.warning("cannot confirm a FAILED status with Sidobe; answering 503 so the webhook is delivered again",
                               metadata: ["event": "\(id)", "error": "\(error)"])
                return Self.error(.serviceUnavailable, "cannot confirm the status with Sidobe now; try again")
            }
        }
        let acceptance: WebhookAcceptance
        do {
            acceptance = try await engine.acceptWebhook(event)
        } catch {
            logger.error("webhook not journaled; answering 500 so it is delivered again", metadata: ["event": "\(id)", "error": "\(error)"])
            return Self.error(.internalServerError, "the event could not be journaled; deliver it again")
        }
        switch acceptance {
        case .accepted(let eventID):
            counters.webhook(.accepted)
            if case .messageStatus(let update) = event.payload {
                logger.info("webhook accepted", metadata: ["event": "\(eventID)", "outcome": "accepted", "message": "\(update.whatsappMessageID)", "status": "\(update.status)"])
            }
            return Self.accepted("accepted", eventID)
        case .duplicate(let eventID):
            // The engine logs the duplicate (one line per outcome).
            counters.webhook(.duplicate)
            return Self.accepted("duplicate", eventID)
        case .ignored(let eventID, _):
            // The engine logs the unknown type.
            counters.webhook(.ignored)
            return Self.accepted("ignored", eventID)
        }
    }

    /// `POST /hooks/{name}`: bearer token, body JSON or text, 202 with the event id.
    func hook(_ incoming: Request, name: String) async -> Response {
        switch token.check(authorization: incoming.headers[.authorization]) {
        case .ok:
            break
        case .disabled:
            counters.hook(.unauthorized)
            return Self.error(.forbidden, "hooks are disabled: start sidobot with SIDOBOT_ADMIN_TOKEN set")
        case .missing, .wrong:
            counters.hook(.unauthorized)
            logger.info("hook refused: bad or missing bearer token", metadata: ["hook": "\(name)", "outcome": "unauthorized"])
            return Self.error(.unauthorized, "missing or wrong Authorization: Bearer token", headers: [.wwwAuthenticate: "Bearer"])
        }
        guard Self.isValidHookName(name) else {
            counters.hook(.malformed)
            return Self.error(.badRequest, "bad hook name '\(name)': use letters, digits, '_', '-' and '.'")
        }
        guard state.isReady else {
            return Self.error(.serviceUnavailable, state.isStopping ? "shutting down" : "starting: not ready yet")
        }
        var request = incoming
        let body: ByteBuffer
        switch await collect(&request) {
        case .success(let buffer):
            body = buffer
        case .failure(.tooLarge):
            counters.hook(.tooLarge)
            return Self.error(.contentTooLarge, tooLargeMessage)
        case .failure(.unreadable(let reason)):
            counters.hook(.malformed)
            return Self.error(.badRequest, "cannot read the body: \(reason)")
        }
        let contentType = request.headers[.contentType] ?? ""
        do {
            let eventID = try await engine.acceptHook(name: name, body: Array(body.readableBytesView), contentType: contentType)
            counters.hook(.accepted)
            logger.info("hook accepted", metadata: ["hook": "\(name)", "event": "\(eventID)", "outcome": "accepted", "bytes": "\(body.readableBytes)"])
            return Self.accepted("accepted", eventID, status: .accepted)
        } catch {
            logger.error("hook not journaled", metadata: ["hook": "\(name)", "error": "\(error)"])
            return Self.error(.internalServerError, "the event could not be journaled; send it again")
        }
    }

    /// `{"event_id":"…","status":"…"}`, written directly: this answer is on the hot path, and
    /// `JSONEncoder` cost several microseconds per request (docs/PERFORMANCE.md).
    static func accepted(_ status: String, _ eventID: String, status code: HTTPResponse.Status = .ok) -> Response {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(eventID.utf8.count + 48)
        buffer.writeStaticString(#"{"event_id":"#)
        JSONText.appendString(eventID, to: &buffer)
        buffer.writeStaticString(#","status":""#)
        buffer.writeString(status)
        buffer.writeStaticString(#""}"#)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: code, headers: headers, body: ResponseBody(byteBuffer: buffer))
    }

    static func isValidHookName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128 && name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
    }
}

/// JSON string literals written into a `ByteBuffer`.
enum JSONText {
    /// Appends `text` as a quoted JSON string, escaping quotes, backslashes and control characters.
    static func appendString(_ text: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case 0x0A: buffer.writeStaticString("\\n")
            case 0x0D: buffer.writeStaticString("\\r")
            case 0x09: buffer.writeStaticString("\\t")
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(hex[Int(byte >> 4)])
                buffer.writeInteger(hex[Int(byte & 0xF)])
            default: buffer.writeInteger(byte)
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}
