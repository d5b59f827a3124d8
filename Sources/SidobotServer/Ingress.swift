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
    /// `POST /webhooks/sidobe` through Hummingbird's router: what ``WebhookFastPath`` does in the
    /// channel pipeline, for a webhook it passes on (one pipelined behind another request). The
    /// checks and answers are ``WebhookIntake``'s.
    func webhook(_ incoming: Request) async -> Response {
        let signature = incoming.headers[.webhookSignature]
        if let refusal = intake.checkHead(signature: signature, contentLength: incoming.headers[.contentLength].flatMap { Int($0) }) {
            return Self.response(refusal)
        }
        var request = incoming
        let body: ByteBuffer
        switch await collect(&request) {
        case .success(let buffer):
            body = buffer
        case .failure(.tooLarge):
            return Self.response(intake.tooLarge())
        case .failure(.unreadable(let reason)):
            counters.webhook(.malformed)
            return Self.error(.badRequest, "cannot read the body: \(reason)")
        }
        switch intake.checkBody(signature: signature ?? "", body: body) {
        case .answer(let answer):
            return Self.response(answer)
        case .accept(let event):
            let answer = await withCheckedContinuation { continuation in
                intake.accept(event) { continuation.resume(returning: $0) }
            }
            return Self.response(answer)
        }
    }

    static func response(_ answer: WebhookIntake.Answer) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: answer.status, headers: headers, body: ResponseBody(byteBuffer: answer.body))
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
            return Self.error(.contentTooLarge, intake.tooLargeMessage)
        case .failure(.unreadable(let reason)):
            counters.hook(.malformed)
            return Self.error(.badRequest, "cannot read the body: \(reason)")
        }
        let contentType = request.headers[.contentType] ?? ""
        do {
            let eventID = try await engine.intake.acceptHook(name: name, body: Array(body.readableBytesView), contentType: contentType)
            counters.hook(.accepted)
            logger.info("hook accepted", metadata: ["hook": "\(name)", "event": "\(eventID)", "outcome": "accepted", "bytes": "\(body.readableBytes)"])
            return Self.response(WebhookIntake.accepted("accepted", eventID, code: .accepted))
        } catch {
            logger.error("hook not journaled", metadata: ["hook": "\(name)", "error": "\(error)"])
            return Self.error(.internalServerError, "the event could not be journaled; send it again")
        }
    }

    static func isValidHookName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128 && name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
    }
}
