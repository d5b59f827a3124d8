import Foundation
import Sidobe

/// A send the simulator accepted, with its content and every status it has had.
///
/// Encoded (for `GET /_simulator/messages`) with snake_case keys and ISO 8601 dates;
/// the current `status` is included for convenience.
public struct SimulatedMessage: Sendable, Hashable, Codable {
    /// One status the message had, and when it got it.
    public struct StatusChange: Sendable, Hashable, Codable {
        /// The status.
        public var status: MessageStatus
        /// When the message got it.
        public var at: Date

        /// Creates a status change.
        public init(status: MessageStatus, at: Date) {
            self.status = status
            self.at = at
        }
    }

    /// The message id returned in `data.id` (a lowercase UUID).
    public var id: String
    /// The recipient as sent (E.164).
    public var phone: String
    /// `TEXT`, `IMAGE` or `DOCS`, by endpoint.
    public var messageType: MessageType
    /// The text, or the caption of an image or document.
    public var message: String?
    /// The image URL of an `IMAGE` message.
    public var imageURL: String?
    /// The document URL of a `DOCS` message.
    public var documentURL: String?
    /// The document name of a `DOCS` message.
    public var documentName: String?
    /// Whether it was sent with `is_async: true`.
    public var isAsync: Bool
    /// When the send was accepted.
    public var acceptedAt: Date
    /// Every status the message had, oldest first: `[PENDING, SUCCESS|FAILED]` for an async send
    /// (the final one once delivered), `[SUCCESS|FAILED]` for a sync one.
    public var statusHistory: [StatusChange]
    /// Why the message ended `FAILED` (which fault knob decided it), else `nil`.
    public var failureReason: String?

    /// The current status: the last of ``statusHistory``.
    public var status: MessageStatus { statusHistory.last?.status ?? .pending }

    /// Creates a record.
    public init(
        id: String, phone: String, messageType: MessageType, message: String?, imageURL: String?,
        documentURL: String?, documentName: String?, isAsync: Bool, acceptedAt: Date,
        statusHistory: [StatusChange], failureReason: String?
    ) {
        self.id = id
        self.phone = phone
        self.messageType = messageType
        self.message = message
        self.imageURL = imageURL
        self.documentURL = documentURL
        self.documentName = documentName
        self.isAsync = isAsync
        self.acceptedAt = acceptedAt
        self.statusHistory = statusHistory
        self.failureReason = failureReason
    }

    enum CodingKeys: String, CodingKey {
        case id, phone, message, status
        case messageType = "message_type"
        case imageURL = "image_url"
        case documentURL = "document_url"
        case documentName = "document_name"
        case isAsync = "is_async"
        case acceptedAt = "accepted_at"
        case statusHistory = "status_history"
        case failureReason = "failure_reason"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        phone = try c.decode(String.self, forKey: .phone)
        messageType = try c.decode(MessageType.self, forKey: .messageType)
        message = try c.decodeIfPresent(String.self, forKey: .message)
        imageURL = try c.decodeIfPresent(String.self, forKey: .imageURL)
        documentURL = try c.decodeIfPresent(String.self, forKey: .documentURL)
        documentName = try c.decodeIfPresent(String.self, forKey: .documentName)
        isAsync = try c.decode(Bool.self, forKey: .isAsync)
        acceptedAt = try c.decode(Date.self, forKey: .acceptedAt)
        statusHistory = try c.decode([StatusChange].self, forKey: .statusHistory)
        failureReason = try c.decodeIfPresent(String.self, forKey: .failureReason)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(phone, forKey: .phone)
        try c.encode(messageType, forKey: .messageType)
        try c.encodeIfPresent(message, forKey: .message)
        try c.encodeIfPresent(imageURL, forKey: .imageURL)
        try c.encodeIfPresent(documentURL, forKey: .documentURL)
        try c.encodeIfPresent(documentName, forKey: .documentName)
        try c.encode(isAsync, forKey: .isAsync)
        try c.encode(status, forKey: .status)
        try c.encode(acceptedAt, forKey: .acceptedAt)
        try c.encode(statusHistory, forKey: .statusHistory)
        try c.encodeIfPresent(failureReason, forKey: .failureReason)
    }
}

/// One webhook delivery attempt and how it ended.
public struct WebhookDeliveryRecord: Sendable, Hashable, Codable {
    /// The event's id (the same on every attempt of the event: receivers dedupe on it).
    public var eventID: String
    /// The message the event is about (`data.whatsapp_message_id`).
    public var messageID: String
    /// The status the event announces.
    public var status: MessageStatus
    /// The attempt's number for this event, from 1. A deliberate duplicate continues the numbering.
    public var attempt: Int
    /// Whether this was a deliberate second delivery after a success (``FaultInjection/webhookDuplicateRate``).
    public var isDuplicate: Bool
    /// Where it was sent.
    public var url: String
    /// The receiver's HTTP status, if it answered.
    public var httpStatus: Int?
    /// Why the attempt failed without an answer (timeout, connection refused, dropped by fault injection).
    public var error: String?
    /// When the attempt started.
    public var startedAt: Date

    /// Whether the receiver answered 2xx.
    public var succeeded: Bool { httpStatus.map { (200..<300).contains($0) } ?? false }

    /// Creates a record.
    public init(
        eventID: String, messageID: String, status: MessageStatus, attempt: Int, isDuplicate: Bool,
        url: String, httpStatus: Int?, error: String?, startedAt: Date
    ) {
        self.eventID = eventID
        self.messageID = messageID
        self.status = status
        self.attempt = attempt
        self.isDuplicate = isDuplicate
        self.url = url
        self.httpStatus = httpStatus
        self.error = error
        self.startedAt = startedAt
    }

    enum CodingKeys: String, CodingKey {
        case eventID = "event_id"
        case messageID = "message_id"
        case status, attempt, url, error, succeeded
        case isDuplicate = "is_duplicate"
        case httpStatus = "http_status"
        case startedAt = "started_at"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        eventID = try c.decode(String.self, forKey: .eventID)
        messageID = try c.decode(String.self, forKey: .messageID)
        status = try c.decode(MessageStatus.self, forKey: .status)
        attempt = try c.decode(Int.self, forKey: .attempt)
        isDuplicate = try c.decodeIfPresent(Bool.self, forKey: .isDuplicate) ?? false
        url = try c.decode(String.self, forKey: .url)
        httpStatus = try c.decodeIfPresent(Int.self, forKey: .httpStatus)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        startedAt = try c.decode(Date.self, forKey: .startedAt)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(eventID, forKey: .eventID)
        try c.encode(messageID, forKey: .messageID)
        try c.encode(status, forKey: .status)
        try c.encode(attempt, forKey: .attempt)
        try c.encode(isDuplicate, forKey: .isDuplicate)
        try c.encode(url, forKey: .url)
        try c.encodeIfPresent(httpStatus, forKey: .httpStatus)
        try c.encodeIfPresent(error, forKey: .error)
        try c.encode(succeeded, forKey: .succeeded)
        try c.encode(startedAt, forKey: .startedAt)
    }
}

/// An API request to the simulated Sidobe, independent of any HTTP server.
public struct SimulatedRequest: Sendable, Hashable {
    /// The HTTP method, e.g. `POST` (compared without case).
    public var method: String
    /// The path relative to the API base, e.g. `send-message` or `whatsapp-messages/ID`.
    /// A leading `/`, a `/wa/v1` prefix and a query string are ignored.
    public var path: String
    /// Header names in lower case (see ``header(_:)``).
    public private(set) var headers: [String: String]
    /// The raw body.
    public var body: [UInt8]

    /// Creates a request; header names are matched without case.
    public init(method: String, path: String, headers: [String: String] = [:], body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { _, last in last })
        self.body = body
    }

    /// A request with a JSON body encoded from `value` and `Content-Type: application/json`.
    public init(method: String, path: String, secretKey: SecretKey?, json value: some Encodable) {
        let body = (try? JSONEncoder().encode(value)).map { Array($0) } ?? []
        var headers = ["content-type": "application/json"]
        if let secretKey { headers["x-secret-key"] = secretKey.reveal() }
        self.init(method: method, path: path, headers: headers, body: body)
    }

    /// The value of a header, matched without case.
    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// Sets a header, replacing any value it had.
    public mutating func setHeader(_ name: String, _ value: String?) { headers[name.lowercased()] = value }
}

/// The simulated Sidobe's answer: the HTTP status, headers and body, exactly as the HTTP front sends them.
public struct SimulatedResponse: Sendable, Hashable {
    /// The HTTP status.
    public var status: Int
    /// Response headers (`Content-Type`, and `Retry-After` or `Allow` when relevant).
    public var headers: [String: String]
    /// The JSON body.
    public var body: [UInt8]
    /// No answer is sent: the connection is closed once the request was read (``FaultInjection/connectionResetRate``).
    public var closesConnection: Bool

    /// Creates a response.
    public init(status: Int, headers: [String: String] = ["Content-Type": "application/json"], body: [UInt8], closesConnection: Bool = false) {
        self.status = status
        self.closesConnection = closesConnection
        self.headers = headers
        self.body = body
    }

    /// The body as text.
    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON value, if it is JSON.
    public var json: JSONValue? { JSONValue.parse(body) }

    /// The body decoded as Sidobe's envelope with a `data` of type `Payload`, if it decodes.
    public func envelope<Payload: Codable & Sendable>(_ payload: Payload.Type) -> APIEnvelope<Payload>? {
        try? JSONDecoder().decode(APIEnvelope<Payload>.self, from: Data(body))
    }

    /// The value of a header, matched without case.
    public func header(_ name: String) -> String? {
        headers.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// How the simulator reads the time and waits. Replace both to drive it from a virtual clock.
public struct SimulatorClock: Sendable {
    /// The current time, for timestamps and the rate limiter.
    public var now: @Sendable () -> Date
    /// Waits for a duration: async delivery delays, webhook backoff, latency. Throws when cancelled.
    public var sleep: @Sendable (Duration) async throws -> Void

    /// Creates a clock.
    public init(now: @escaping @Sendable () -> Date, sleep: @escaping @Sendable (Duration) async throws -> Void) {
        self.now = now
        self.sleep = sleep
    }

    /// The system clock and `Task.sleep`.
    public static let system = SimulatorClock(now: { Date() }, sleep: { try await Task.sleep(for: $0) })
}

/// Errors of the simulator's own operations (not API answers, which are ``SimulatedResponse``s).
public enum SimulatorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// ``SidobeSimulator/waitForIdle(timeout:)`` gave up; `pending` deliveries or attempts were still running.
    case idleTimeout(pending: Int, timeout: Duration)
    /// ``SidobeSimulator/start(host:port:)`` was called on a running simulator.
    case alreadyRunning(port: Int)
    /// The server could not start (e.g. the port is taken).
    case cannotStart(String)

    public var description: String {
        switch self {
        case .idleTimeout(let pending, let timeout):
            "the simulator was still busy after \(timeout): \(pending) async deliveries or webhook attempts pending"
        case .alreadyRunning(let port): "the simulator is already running on port \(port)"
        case .cannotStart(let detail): "the simulator could not start: \(detail)"
        }
    }
}
