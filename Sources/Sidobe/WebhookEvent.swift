import Foundation

/// A webhook event from Sidobe, decoded from the JSON body Sidobe POSTs to your endpoint.
///
/// ```json
/// {"id": "816332ca-...", "event": "SEND_MESSAGE_STATUS", "created_at": "2025-08-11T23:41:43.889693+07:00",
///  "data": {"whatsapp_message_id": "4da0cb47-...", "status": "SUCCESS", "send_at": "2025-08-11T23:41:43+07:00", "message_type": "TEXT"}}
/// ```
/// Event types this client does not know decode as ``Payload/unknown(type:)``, never as a failure,
/// so a new Sidobe event cannot break a receiver.
public struct WebhookEvent: Sendable, Hashable {
    /// The event's unique id; the signature is computed over it.
    public var id: String
    /// When Sidobe created the event, as sent (ISO 8601 with offset).
    public var createdAt: String
    /// What happened.
    public var payload: Payload
    /// The `data` member as received (its JSON bytes) for an event type this client does not
    /// interpret (``Payload/unknown(type:)``), so a receiver can pass it on; nil otherwise.
    public var rawData: [UInt8]?

    /// The content of an event, by type.
    public enum Payload: Sendable, Hashable {
        /// `SEND_MESSAGE_STATUS`: the status of a sent message changed.
        case messageStatus(MessageStatusUpdate)
        /// An event type this client does not know; its `data` is not interpreted.
        case unknown(type: String)
    }

    public init(id: String, createdAt: String, payload: Payload, rawData: [UInt8]? = nil) {
        self.id = id
        self.createdAt = createdAt
        self.payload = payload
        self.rawData = rawData
    }

    /// The wire name of the `SEND_MESSAGE_STATUS` event type.
    public static let sendMessageStatusType = "SEND_MESSAGE_STATUS"

    /// The `event` field as sent.
    public var type: String {
        switch payload {
        case .messageStatus: Self.sendMessageStatusType
        case .unknown(let type): type
        }
    }

    /// `created_at` as a date, if it is valid ISO 8601.
    public var createdAtDate: Date? { ISO8601Timestamp.parse(createdAt) }
}

/// The `data` of a `SEND_MESSAGE_STATUS` event.
public struct MessageStatusUpdate: Sendable, Hashable, Codable {
    /// The message's id, as returned in `data.id` when it was sent.
    public var whatsappMessageID: String
    /// The new status.
    public var status: MessageStatus
    /// When the message was sent or the attempt happened, as sent (ISO 8601 with offset).
    public var sendAt: String
    /// The message's type.
    public var messageType: MessageType

    public init(whatsappMessageID: String, status: MessageStatus, sendAt: String, messageType: MessageType) {
        self.whatsappMessageID = whatsappMessageID
        self.status = status
        self.sendAt = sendAt
        self.messageType = messageType
    }

    /// `send_at` as a date, if it is valid ISO 8601.
    public var sendAtDate: Date? { ISO8601Timestamp.parse(sendAt) }

    enum CodingKeys: String, CodingKey {
        case whatsappMessageID = "whatsapp_message_id"
        case status
        case sendAt = "send_at"
        case messageType = "message_type"
    }
}

/// Why a webhook body could not be decoded, naming the field at fault.
public struct WebhookDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The JSON path of the field at fault (`data.status`), or `body` when the body is not a JSON object.
    public var field: String
    /// What is wrong with it.
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { field == "body" ? reason : "\(field) \(reason)" }
}

extension WebhookEvent: Codable {
    enum CodingKeys: String, CodingKey {
        case id, event, createdAt = "created_at", data
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        createdAt = try container.decode(String.self, forKey: .createdAt)
        let type = try container.decode(String.self, forKey: .event)
        if type == Self.sendMessageStatusType {
            payload = .messageStatus(try container.decode(MessageStatusUpdate.self, forKey: .data))
        } else {
            payload = .unknown(type: type)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(type, forKey: .event)
        try container.encode(createdAt, forKey: .createdAt)
        switch payload {
        case .messageStatus(let update): try container.encode(update, forKey: .data)
        case .unknown: try container.encode([String: String](), forKey: .data)
        }
    }

    /// Decodes a webhook body.
    ///
    /// - Throws: ``WebhookDecodingError`` naming the missing or mistyped field, e.g.
    ///   `data.whatsapp_message_id is missing`, or `body is not a JSON object`.
    public static func decode(_ body: some Collection<UInt8>) throws(WebhookDecodingError) -> WebhookEvent {
        try parse(body).result.get()
    }
}
