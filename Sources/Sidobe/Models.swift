/// The kind of content a WhatsApp message carries, as Sidobe names it.
///
/// Values Sidobe adds later decode to ``unknown(_:)`` instead of failing.
public enum MessageType: Sendable, Hashable, Codable, CustomStringConvertible {
    /// A text message (`TEXT`).
    case text
    /// An image with an optional caption (`IMAGE`).
    case image
    /// A document with an optional caption (`DOCS`).
    case docs
    /// A value this version of the client does not know.
    case unknown(String)

    /// Creates a message type from Sidobe's wire value.
    public init(rawValue: String) {
        switch rawValue {
        case "TEXT": self = .text
        case "IMAGE": self = .image
        case "DOCS": self = .docs
        default: self = .unknown(rawValue)
        }
    }

    /// Sidobe's wire value (`TEXT`, `IMAGE`, `DOCS`, or the unknown value as received).
    public var rawValue: String {
        switch self {
        case .text: "TEXT"
        case .image: "IMAGE"
        case .docs: "DOCS"
        case .unknown(let value): value
        }
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// The delivery status of a message.
///
/// A message moves one way: `PENDING`, then `SUCCESS` or `FAILED`.
/// Values Sidobe adds later decode to ``unknown(_:)`` instead of failing.
public enum MessageStatus: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Accepted, not yet delivered (`PENDING`); the final status arrives by webhook.
    case pending
    /// Delivered to WhatsApp (`SUCCESS`).
    case success
    /// Delivery failed (`FAILED`).
    case failed
    /// A value this version of the client does not know.
    case unknown(String)

    /// Creates a status from Sidobe's wire value.
    public init(rawValue: String) {
        switch rawValue {
        case "PENDING": self = .pending
        case "SUCCESS": self = .success
        case "FAILED": self = .failed
        default: self = .unknown(rawValue)
        }
    }

    /// Sidobe's wire value (`PENDING`, `SUCCESS`, `FAILED`, or the unknown value as received).
    public var rawValue: String {
        switch self {
        case .pending: "PENDING"
        case .success: "SUCCESS"
        case .failed: "FAILED"
        case .unknown(let value): value
        }
    }

    /// Whether no further status change is expected (`SUCCESS` or `FAILED`).
    public var isFinal: Bool { self == .success || self == .failed }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// What Sidobe answers to a send: the `data` object of send-message, send-message-image and send-message-doc.
public struct SentMessage: Sendable, Hashable, Codable {
    /// Sidobe's id for the message; webhooks carry it as `whatsapp_message_id`.
    public var id: String
    /// The kind of message that was sent.
    public var messageType: MessageType
    /// The status at the time of the answer: `SUCCESS` or `FAILED` for a sync send, `PENDING` for an async one.
    public var status: MessageStatus
    /// Whether the send was queued asynchronously.
    public var isAsync: Bool

    public init(id: String, messageType: MessageType, status: MessageStatus, isAsync: Bool) {
        self.id = id
        self.messageType = messageType
        self.status = status
        self.isAsync = isAsync
    }

    enum CodingKeys: String, CodingKey {
        case id
        case messageType = "message_type"
        case status
        case isAsync = "is_async"
    }
}

/// The WhatsApp device (a registered number) that sent a message.
public struct WhatsAppDevice: Sendable, Hashable, Codable {
    /// Sidobe's id for the device.
    public var id: String
    /// The device's phone number in E.164.
    public var phone: String
    /// The name given to the device in the Sidobe dashboard.
    public var name: String

    public init(id: String, phone: String, name: String) {
        self.id = id
        self.phone = phone
        self.name = name
    }
}

/// The details and current status of a sent message: the `data` object of `GET whatsapp-messages/:id`.
public struct MessageDetail: Sendable, Hashable, Codable {
    /// Sidobe's id for the message.
    public var id: String
    /// The device that sent it; `nil` if Sidobe omits it.
    public var whatsappDevice: WhatsAppDevice?
    /// The kind of message.
    public var messageType: MessageType
    /// Its current delivery status.
    public var status: MessageStatus
    /// Whether it was sent asynchronously.
    public var isAsync: Bool

    public init(id: String, whatsappDevice: WhatsAppDevice?, messageType: MessageType, status: MessageStatus, isAsync: Bool) {
        self.id = id
        self.whatsappDevice = whatsappDevice
        self.messageType = messageType
        self.status = status
        self.isAsync = isAsync
    }

    enum CodingKeys: String, CodingKey {
        case id
        case whatsappDevice = "whatsapp_device"
        case messageType = "message_type"
        case status
        case isAsync = "is_async"
    }
}

/// The `data` object of `POST utilities/check-number`.
public struct NumberCheck: Sendable, Hashable, Codable {
    /// Whether the number is registered on WhatsApp.
    public var isRegistered: Bool

    public init(isRegistered: Bool) { self.isRegistered = isRegistered }

    enum CodingKeys: String, CodingKey { case isRegistered = "is_registered" }
}

/// Sidobe's response envelope: `{"is_success": true, "data": {...}}` on success,
/// `{"is_success": false, "message": "...", "error_code": "..."}` on failure.
/// A 429 answers `{"message": "rate limit exceeded"}` with neither field, so every field is optional.
public struct APIEnvelope<Payload: Codable & Sendable>: Codable, Sendable {
    public var isSuccess: Bool?
    public var data: Payload?
    public var message: String?
    public var errorCode: String?

    public init(isSuccess: Bool?, data: Payload?, message: String? = nil, errorCode: String? = nil) {
        self.isSuccess = isSuccess
        self.data = data
        self.message = message
        self.errorCode = errorCode
    }

    enum CodingKeys: String, CodingKey {
        case isSuccess = "is_success"
        case data
        case message
        case errorCode = "error_code"
    }
}

/// The error codes Sidobe documents in failed responses.
public enum APIErrorCode: String, Sendable, CaseIterable {
    /// The request has invalid parameters.
    case apiValidationError = "API_VALIDATION_ERROR"
    /// The secret key is wrong.
    case invalidAPIKey = "INVALID_API_KEY"
    /// The request could not be handled; it may be retried.
    case invalidRequest = "INVALID_REQUEST"
    /// The WhatsApp device registered on the dashboard has a problem.
    case invalidDeviceWhatsApp = "INVALID_DEVICE_WHATSAPP"
}
