import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A typed client for the Sidobe WhatsApp API v1.
///
/// ```swift
/// let client = SidobeClient(configuration: .init(secretKey: SecretKey(key)))
/// let sent = try await client.send(.text(to: "+628123123123", "Your order has shipped"))
/// print(sent.id, sent.status)
/// ```
/// Every request carries the `X-Secret-Key` header. Requests are checked locally first
/// (see ``OutgoingMessage/validate()``), and failures are retried according to
/// ``Configuration/retryPolicy``. All errors are ``SidobeError``.
public struct SidobeClient: Sendable {
    /// How the client reaches Sidobe and how patient it is.
    public struct Configuration: Sendable {
        /// The production API base URL.
        public static let productionBaseURL = "https://api.sidobe.com/wa/v1"

        /// The API base URL, without a trailing slash (a trailing slash is removed).
        public var baseURL: String {
            didSet { baseURL = Self.trimmed(baseURL) }
        }
        /// The secret key from the Sidobe dashboard (Developer Tools → Credential).
        public var secretKey: SecretKey
        /// How failed requests are retried.
        public var retryPolicy: RetryPolicy
        /// The longest one attempt may take, from connecting to the last byte of the answer.
        /// Sync sends wait for WhatsApp, so this is generous by default.
        public var requestTimeout: Duration
        /// How the client waits between retries. Tests replace it to avoid real sleeping.
        public var sleep: @Sendable (Duration) async throws -> Void
        /// A source of uniform random numbers in `0..<1` for backoff jitter. Tests replace it for determinism.
        public var random: @Sendable () -> Double
        /// Called each time Sidobe answers 429, with its `Retry-After`, before the client waits to
        /// retry or gives up: lets the caller's own rate limiter slow down at the first 429, not
        /// only once the retries ran out. Called on no particular executor; keep it quick.
        public var onRateLimited: (@Sendable (_ retryAfter: Duration?) -> Void)?

        public init(
            baseURL: String = Configuration.productionBaseURL,
            secretKey: SecretKey,
            retryPolicy: RetryPolicy = .default,
            requestTimeout: Duration = .seconds(30),
            sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
            random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
        ) {
            self.baseURL = Self.trimmed(baseURL)
            self.secretKey = secretKey
            self.retryPolicy = retryPolicy
            self.requestTimeout = requestTimeout
            self.sleep = sleep
            self.random = random
        }

        private static func trimmed(_ url: String) -> String {
            var url = url
            while url.hasSuffix("/") { url.removeLast() }
            return url
        }
    }

    /// The configuration this client was made with.
    public let configuration: Configuration
    private let httpClient: HTTPClient
    private let logger: Logger

    /// The HTTP client all `SidobeClient`s share unless given another: redirects off, a 10 s connect
    /// timeout, and no silent re-dialling of refused connections (AsyncHTTPClient's default), because
    /// ``RetryPolicy`` decides about retries, with backoff, and a refused connection must fail fast.
    /// It lives for the whole process.
    public static let defaultHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(10))
        )
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// Creates a client.
    /// - Parameters:
    ///   - configuration: base URL, secret key, retry policy and timeouts.
    ///   - httpClient: the AsyncHTTPClient to use; ``defaultHTTPClient`` unless given.
    ///   - logger: where requests and retries are logged (at debug and warning levels); never with the key.
    public init(configuration: Configuration, httpClient: HTTPClient = SidobeClient.defaultHTTPClient, logger: Logger = Logger(label: "sidobe.client")) {
        self.configuration = configuration
        self.httpClient = httpClient
        self.logger = logger
    }

    // MARK: Endpoints

    /// Sends a message (`send-message`, `send-message-image` or `send-message-doc`, by content).
    ///
    /// A sync send answers `SUCCESS` or `FAILED`; an async one answers `PENDING` and the final
    /// status arrives by webhook.
    /// - Throws: ``SidobeError``; ``SidobeError/invalidField(_:)`` before any request if the message is invalid.
    public func send(_ message: OutgoingMessage) async throws(SidobeError) -> SentMessage {
        try message.validate()
        return try await call(
            method: .POST, path: message.endpointPath, body: message.requestBody,
            idempotent: false, as: SentMessage.self
        )
    }

    /// Sends a text message. See ``send(_:)``.
    public func sendMessage(phone: String, message: String, isAsync: Bool = false) async throws(SidobeError) -> SentMessage {
        try await send(.text(to: phone, message, isAsync: isAsync))
    }

    /// Sends an image (jpg, jpeg or png URL) with an optional caption. See ``send(_:)``.
    public func sendImage(phone: String, imageURL: String, caption: String? = nil, isAsync: Bool = false) async throws(SidobeError) -> SentMessage {
        try await send(.image(to: phone, url: imageURL, caption: caption, isAsync: isAsync))
    }

    /// Sends a document (pdf, doc, docx, ppt, pptx, xls or xlsx URL) under a display name. See ``send(_:)``.
    public func sendDocument(phone: String, documentURL: String, documentName: String, caption: String? = nil, isAsync: Bool = false) async throws(SidobeError) -> SentMessage {
        try await send(.document(to: phone, url: documentURL, name: documentName, caption: caption, isAsync: isAsync))
    }

    /// The details and current status of a message (`GET whatsapp-messages/:id`).
    /// - Throws: ``SidobeError/notFound(_:)`` for an unknown id.
    public func message(id: String) async throws(SidobeError) -> MessageDetail {
        if id.isEmpty { throw .invalidField(FieldError(field: "id", reason: "is required")) }
        let escaped = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? id
        return try await call(
            method: .GET, path: "whatsapp-messages/\(escaped)", body: Optional<SendRequestBody>.none,
            idempotent: true, as: MessageDetail.self
        )
    }

    /// Whether a number is registered on WhatsApp (`POST utilities/check-number`).
    public func checkNumber(_ phone: String) async throws(SidobeError) -> Bool {
        if let problem = RequestValidation.phoneProblem(phone) {
            throw .invalidField(FieldError(field: "phone", reason: problem))
        }
        let check = try await call(
            method: .POST, path: "utilities/check-number", body: CheckNumberRequestBody(phone: phone),
            idempotent: true, as: NumberCheck.self
        )
        return check.isRegistered
    }

    // MARK: Transport

    private func call<Body: Encodable, Payload: Codable & Sendable>(
        method: HTTPMethod, path: String, body: Body?, idempotent: Bool, as: Payload.Type
    ) async throws(SidobeError) -> Payload {
        let url = "\(configuration.baseURL)/\(path)"
        var bodyBytes: [UInt8]?
        if let body {
            // Encoding our own request types cannot fail.
            bodyBytes = Array((try? JSONEncoder().encode(body)) ?? Data())
        }
        var attempt = 1
        while true {
            let outcome = await perform(method: method, url: url, body: bodyBytes)
            let error: SidobeError
            switch outcome {
            case .answer(let status, let headers, let responseBody):
                switch Self.interpret(status: status, headers: headers, body: responseBody, as: Payload.self) {
                case .success(let payload):
                    logger.debug("Sidobe answered", metadata: ["path": "\(path)", "status": "\(status)", "attempt": "\(attempt)"])
                    return payload
                case .failure(let failure): error = failure
                }
            case .failed(let failure): error = failure
            }
            if case .rateLimited(_, let retryAfter) = error { configuration.onRateLimited?(retryAfter) }
            guard configuration.retryPolicy.shouldRetry(error, attempt: attempt, idempotent: idempotent) else {
                if attempt > 1 {
                    logger.warning("Sidobe request failed after retries", metadata: [
                        "path": "\(path)", "attempts": "\(attempt)", "error": "\(error)",
                    ])
                }
                throw error
            }
            let wait = configuration.retryPolicy.delay(after: attempt, error: error, random: configuration.random())
            logger.info("Sidobe request will be retried", metadata: [
                "path": "\(path)", "attempt": "\(attempt)", "error": "\(error.code)", "wait": "\(wait)",
            ])
            do {
                try await configuration.sleep(wait)
            } catch {
                // Cancelled while waiting: report the failure that caused the wait.
                throw .transport("cancelled while waiting to retry", requestWritten: false)
            }
            attempt += 1
        }
    }

    enum Outcome {
        case answer(status: Int, headers: HTTPHeaders, body: ByteBuffer)
        case failed(SidobeError)
    }

    private func perform(method: HTTPMethod, url: String, body: [UInt8]?) async -> Outcome {
        var headers = HTTPHeaders()
        headers.add(name: "X-Secret-Key", value: configuration.secretKey.reveal())
        headers.add(name: "Accept", value: "application/json")
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        headers.add(name: "User-Agent", value: "sidobot")
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: url, method: method, headers: headers, body: body.map { .bytes($0) })
        } catch {
            return .failed(.transport("invalid API URL \(url)", requestWritten: false))
        }
        let delegate = ResponseCollector()
        let deadline = NIODeadline.now() + TimeAmount.nanoseconds(Int64(configuration.requestTimeout.nanoseconds))
        let task = httpClient.execute(request: request, delegate: delegate, deadline: deadline, logger: logger)
        do {
            let response = try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
            return .answer(status: response.status, headers: response.headers, body: response.body)
        } catch {
            let written = delegate.requestWritten
            if let httpError = error as? HTTPClientError {
                switch httpError {
                case .deadlineExceeded, .readTimeout, .writeTimeout:
                    return .failed(.timeout(requestWritten: written))
                case .connectTimeout, .tlsHandshakeTimeout, .getConnectionFromPoolTimeout:
                    return .failed(.timeout(requestWritten: false))
                case .cancelled:
                    return .failed(.transport("request cancelled", requestWritten: written))
                case .remoteConnectionClosed:
                    return .failed(.transport("Sidobe closed the connection", requestWritten: written))
                default:
                    return .failed(.transport(String(describing: httpError), requestWritten: written))
                }
            }
            return .failed(.transport(Self.describeTransport(error), requestWritten: written))
        }
    }

    private static func describeTransport(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        if text.contains("connectionReset") || text.contains("Connection reset") { return "connection reset" }
        return text
    }

    static func interpret<Payload: Codable & Sendable>(
        status: Int, headers: HTTPHeaders, body: ByteBuffer, as: Payload.Type
    ) -> Result<Payload, SidobeError> {
        let bytes = Data(body.readableBytesView)
        let envelope = try? JSONDecoder().decode(APIEnvelope<Payload>.self, from: bytes)
        if (200..<300).contains(status) {
            guard let envelope else {
                return .failure(.undecodableResponse(httpStatus: status, detail: "the body is not Sidobe's JSON envelope: \(preview(bytes))"))
            }
            if envelope.isSuccess == false {
                // A 2xx that says it failed: treat it by its error code.
                return .failure(.from(status: status, errorCode: envelope.errorCode, message: envelope.message, retryAfter: nil))
            }
            guard let data = envelope.data else {
                return .failure(.undecodableResponse(httpStatus: status, detail: "the answer has no data: \(preview(bytes))"))
            }
            return .success(data)
        }
        let loose = try? JSONDecoder().decode(APIEnvelope<IgnoredPayload>.self, from: bytes)
        let retryAfter = headers.first(name: "Retry-After").flatMap { parseRetryAfter($0, now: Date().timeIntervalSince1970) }
        let message = loose?.message ?? (bytes.isEmpty ? nil : preview(bytes))
        return .failure(.from(status: status, errorCode: loose?.errorCode, message: message, retryAfter: retryAfter))
    }

    private static func preview(_ bytes: Data) -> String {
        let text = String(decoding: bytes.prefix(200), as: UTF8.self)
        return bytes.count > 200 ? text + "…" : text
    }

    private struct IgnoredPayload: Codable, Sendable {}
}

/// Collects the answer and remembers whether the whole request was written,
/// which decides whether a failed send may have been delivered.
private final class ResponseCollector: HTTPClientResponseDelegate {
    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    private struct State {
        var written = false
        var head: HTTPResponseHead?
        var body = ByteBuffer()
    }

    private let state = NIOLockedValueBox(State())
    private static let maxBodySize = 1 << 20

    var requestWritten: Bool { state.withLockedValue { $0.written } }

    func didSendRequest(task: HTTPClient.Task<Response>) {
        state.withLockedValue { $0.written = true }
    }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        state.withLockedValue { $0.head = head }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        var buffer = buffer
        let tooBig = state.withLockedValue { state -> Bool in
            guard state.body.readableBytes + buffer.readableBytes <= Self.maxBodySize else { return true }
            state.body.writeBuffer(&buffer)
            return false
        }
        if tooBig { return task.eventLoop.makeFailedFuture(HTTPClientError.bodyLengthMismatch) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response {
        try state.withLockedValue { state in
            guard let head = state.head else { throw HTTPClientError.remoteConnectionClosed }
            return Response(status: Int(head.status.code), headers: head.headers, body: state.body)
        }
    }
}

extension Duration {
    /// The whole duration in nanoseconds, saturating.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return product &+ attoseconds / 1_000_000_000
    }
}
