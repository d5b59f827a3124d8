/// The kind of content a WhatsApp message carries, as Sidobe names it.
///
/// Values Sidobe adds later decode to ``unknown(_:)`` instead of failing.
public enum MessageType: OpenEnum {
    /// A text message (`TEXT`).
    case text
    /// An image with an optional caption (`IMAGE`).
    case image
    /// A document with an optional caption (`DOCS`).
    case docs
    /// A value this version of the client does not know.
    case unknown(String)

    public static let wireValues: [(Self, String)] = [(.text, "TEXT"), (.image, "IMAGE"), (.docs, "DOCS")]

    public var unknownValue: String? {
        if case .unknown(let value) = self { return value }
        return nil
    }
}

/// The delivery status of a message.
///
/// A message moves one way: `PENDING`, then `SUCCESS` or `FAILED`.
/// Values Sidobe adds later decode to ``unknown(_:)`` instead of failing.
public enum MessageStatus: OpenEnum {
    /// Accepted, not yet delivered (`PENDING`); the final status arrives by webhook.
    case pending
    /// Delivered to WhatsApp (`SUCCESS`).
    case success
    /// Delivery failed (`FAILED`).
    case failed
    /// A value this version of the client does not know.
    case unknown(String)

    public static let wireValues: [(Self, String)] = [(.pending, "PENDING"), (.success, "SUCCESS"), (.failed, "FAILED")]

    public var unknownValue: String? {
        if case .unknown(let value) = self { return value }
        return nil
    }

    /// Whether no further status change is expected (`SUCCESS` or `FAILED`).
    public var isFinal: Bool { self == .success || self == .failed }
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
