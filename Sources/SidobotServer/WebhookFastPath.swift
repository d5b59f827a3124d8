import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// `POST /webhooks/sidobe` answered in the channel pipeline, ahead of Hummingbird's router: the
/// request is read, checked and handed to the engine's intake (written with the other webhooks
/// arriving meanwhile: its group commit) without a Swift task or an `await` per request, and the
/// answer is written from the event loop. Every other request goes on to Hummingbird untouched.
///
/// The checks and answers are ``WebhookIntake``'s, the same as the Hummingbird route's. Order on
/// a connection is kept: a webhook that arrives while a request passed on is still unanswered goes
/// to Hummingbird too (which answers in order), and requests that arrive while a webhook waits for
/// its journal write are held and replayed once its answer is written.
final class WebhookFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let path = "/webhooks/sidobe"

    private enum State {
        /// Between requests.
        case idle
        /// A request that is not ours, going to Hummingbird part by part.
        case passing
        /// A webhook whose body is coming in.
        case collecting(signature: String, body: ByteBuffer, closeAfter: Bool)
        /// A webhook already answered (before its body was looked at): the body is skipped.
        case refusing(WebhookIntake.Answer, closeAfter: Bool)
        /// A webhook with the engine; parts arriving meanwhile are held.
        case waiting(closeAfter: Bool)
    }

    private let intake: WebhookIntake
    private var state = State.idle
    /// Requests passed to Hummingbird whose answer has not been written yet.
    private var unanswered = 0
    /// Parts read while a webhook waits for the engine, replayed after its answer.
    private var held: [HTTPRequestPart] = []

    init(intake: WebhookIntake) { self.intake = intake }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        handle(unwrapInboundIn(data), context: context)
    }

    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch (state, part) {
        case (.waiting, _):
            held.append(part)
        case (.idle, .head(let head)):
            guard unanswered == 0, head.method == .post, Self.isWebhookPath(head.path) else {
                unanswered += 1
                state = .passing
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            let closeAfter = head.headerFields[.connection]?.lowercased().contains("close") ?? false
            let signature = head.headerFields[.webhookSignature]
            if let refusal = intake.checkHead(signature: signature, contentLength: head.headerFields[.contentLength].flatMap { Int($0) }) {
                state = .refusing(refusal, closeAfter: closeAfter)
            } else {
                state = .collecting(signature: signature ?? "", body: context.channel.allocator.buffer(capacity: 512), closeAfter: closeAfter)
            }
        case (.passing, _):
            if case .end = part { state = .idle }
            context.fireChannelRead(wrapInboundOut(part))
        case (.collecting(let signature, var body, let closeAfter), .body(var chunk)):
            state = .idle  // the state lets go of the buffer, so it grows in place
            if body.readableBytes + chunk.readableBytes > intake.maxBodyBytes {
                state = .refusing(intake.tooLarge(), closeAfter: closeAfter)
            } else {
                body.writeBuffer(&chunk)
                state = .collecting(signature: signature, body: body, closeAfter: closeAfter)
            }
        case (.collecting(let signature, let body, let closeAfter), .end):
            switch intake.checkBody(signature: signature, body: body) {
            case .answer(let answer):
                write(answer, closeAfter: closeAfter, context: context)
            case .accept(let event):
                state = .waiting(closeAfter: closeAfter)
                let loop = context.eventLoop
                let bound = NIOLoopBound((self, context), eventLoop: loop)
                intake.accept(event, writeOn: { loop.execute($0) }) { answer in
                    loop.execute {
                        let (handler, context) = bound.value
                        handler.write(answer, closeAfter: closeAfter, context: context)
                    }
                }
            }
        case (.refusing(let answer, let closeAfter), .end):
            write(answer, closeAfter: closeAfter, context: context)
        case (.refusing, _):
            // The rest of a body already refused.
            break
        case (.collecting, _):
            // A second head before the end of the body: the HTTP/1 codec never delivers one.
            break
        case (.idle, _):
            // A body or end without a head: not HTTP as the codec delivers it; let Hummingbird judge.
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    /// Writes a webhook's answer, then replays what arrived meanwhile.
    private func write(_ answer: WebhookIntake.Answer, closeAfter: Bool, context: ChannelHandlerContext) {
        var head = HTTPResponse(status: answer.status)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = String(answer.body.readableBytes)
        head.headerFields[.server] = "sidobot"
        if closeAfter { head.headerFields[.connection] = "close" }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(answer.body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        state = .idle
        if closeAfter {
            held.removeAll()
            context.close(promise: nil)
            return
        }
        guard !held.isEmpty else { return }
        let replay = held
        held.removeAll()
        for (index, part) in replay.enumerated() {
            handle(part, context: context)
            if case .waiting = state {
                // Another webhook went to the engine: the rest waits behind it.
                held = Array(replay[(index + 1)...])
                break
            }
        }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Hummingbird's answers to the requests passed on.
        if case .end = unwrapOutboundIn(data) { unanswered = max(0, unanswered - 1) }
        context.write(data, promise: promise)
    }

    static func isWebhookPath(_ path: String?) -> Bool {
        guard let path else { return false }
        guard path.hasPrefix(Self.path) else { return false }
        let rest = path.utf8.dropFirst(Self.path.utf8.count)
        return rest.isEmpty || rest.first == UInt8(ascii: "?")
    }
}
