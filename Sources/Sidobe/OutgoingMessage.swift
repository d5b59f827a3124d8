/// A message to send through Sidobe: a recipient, the content, and whether to queue it.
///
/// Build one, then hand it to ``SidobeClient/send(_:)``. The client checks it with
/// ``validate()`` before any request is made, so a bad phone number or URL never costs a round trip.
public struct OutgoingMessage: Sendable, Hashable, Codable {
    /// What the message carries; each case maps to one Sidobe endpoint.
    public enum Content: Sendable, Hashable, Codable {
        /// A text message (`POST send-message`).
        case text(String)
        /// An image with an optional caption (`POST send-message-image`).
        case image(url: String, caption: String?)
        /// A document with an optional caption (`POST send-message-doc`).
        /// `name` is shown in the chat and used as the file name, without extension.
        case document(url: String, name: String, caption: String?)
    }

    /// The recipient in E.164 (`+628123123123`).
    public var phone: String
    /// The content.
    public var content: Content
    /// Queue the message in Sidobe (answer `PENDING` now, final status by webhook) instead of sending it synchronously.
    public var isAsync: Bool

    public init(phone: String, content: Content, isAsync: Bool = false) {
        self.phone = phone
        self.content = content
        self.isAsync = isAsync
    }

    /// A text message.
    public static func text(to phone: String, _ message: String, isAsync: Bool = false) -> OutgoingMessage {
        OutgoingMessage(phone: phone, content: .text(message), isAsync: isAsync)
    }

    /// An image message; the URL must end in `.jpg`, `.jpeg` or `.png`.
    public static func image(to phone: String, url: String, caption: String? = nil, isAsync: Bool = false) -> OutgoingMessage {
        OutgoingMessage(phone: phone, content: .image(url: url, caption: caption), isAsync: isAsync)
    }

    /// A document message; the URL must end in `.pdf`, `.doc`, `.docx`, `.ppt`, `.pptx`, `.xls` or `.xlsx`.
    public static func document(to phone: String, url: String, name: String, caption: String? = nil, isAsync: Bool = false) -> OutgoingMessage {
        OutgoingMessage(phone: phone, content: .document(url: url, name: name, caption: caption), isAsync: isAsync)
    }

    /// The message type Sidobe will report for this content.
    public var messageType: MessageType {
        switch content {
        case .text: .text
        case .image: .image
        case .document: .docs
        }
    }

    /// The endpoint path, relative to the API base URL.
    public var endpointPath: String {
        switch content {
        case .text: "send-message"
        case .image: "send-message-image"
        case .document: "send-message-doc"
        }
    }

    /// The caption or text, if any.
    public var text: String? {
        switch content {
        case .text(let text): text
        case .image(_, let caption): caption
        case .document(_, _, let caption): caption
        }
    }

    /// Checks the message the way Sidobe would, without a request.
    /// - Throws: ``SidobeError/invalidField(_:)`` naming the first field that fails.
    public func validate() throws(SidobeError) {
        if let problem = RequestValidation.phoneProblem(phone) {
            throw .invalidField(FieldError(field: "phone", reason: problem))
        }
        switch content {
        case .text(let text):
            if text.isEmpty { throw .invalidField(FieldError(field: "message", reason: "is required")) }
        case .image(let url, _):
            if let problem = RequestValidation.urlProblem(url, allowedExtensions: RequestValidation.imageExtensions) {
                throw .invalidField(FieldError(field: "image_url", reason: problem))
            }
        case .document(let url, let name, _):
            if let problem = RequestValidation.urlProblem(url, allowedExtensions: RequestValidation.documentExtensions) {
                throw .invalidField(FieldError(field: "document_url", reason: problem))
            }
            if name.allSatisfy(\.isWhitespace) {
                throw .invalidField(FieldError(field: "document_name", reason: "is required"))
            }
        }
    }

    /// The JSON body Sidobe expects, with its field names (`phone`, `message`, `image_url`,
    /// `document_url`, `document_name`, `is_async`).
    public var requestBody: SendRequestBody {
        var body = SendRequestBody(phone: phone, message: text, isAsync: isAsync)
        switch content {
        case .text: break
        case .image(let url, _): body.imageURL = url
        case .document(let url, let name, _):
            body.documentURL = url
            body.documentName = name
        }
        return body
    }
}

/// The wire form of a send request, shared by the three send endpoints.
public struct SendRequestBody: Sendable, Hashable, Codable {
    public var phone: String?
    public var message: String?
    public var imageURL: String?
    public var documentURL: String?
    public var documentName: String?
    public var isAsync: Bool?

    public init(phone: String?, message: String? = nil, imageURL: String? = nil, documentURL: String? = nil, documentName: String? = nil, isAsync: Bool? = nil) {
        self.phone = phone
        self.message = message
        self.imageURL = imageURL
        self.documentURL = documentURL
        self.documentName = documentName
        self.isAsync = isAsync
    }

    enum CodingKeys: String, CodingKey {
        case phone
        case message
        case imageURL = "image_url"
        case documentURL = "document_url"
        case documentName = "document_name"
        case isAsync = "is_async"
    }
}

/// The body of `POST utilities/check-number`.
public struct CheckNumberRequestBody: Sendable, Hashable, Codable {
    public var phone: String?
    public init(phone: String?) { self.phone = phone }
}

/// The field checks Sidobe applies, shared by the client (before a request) and the simulator (on receipt).
public enum RequestValidation {
    /// Extensions accepted for `image_url`.
    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]
    /// Extensions accepted for `document_url`.
    public static let documentExtensions: Set<String> = ["pdf", "doc", "docx", "ppt", "pptx", "xls", "xlsx"]

    /// Why `phone` is not an E.164 number (`+`, then 8 to 15 digits, the first not 0), or `nil` if it is.
    public static func phoneProblem(_ phone: String) -> String? {
        if phone.isEmpty { return "is required" }
        let utf8 = Array(phone.utf8)
        guard utf8.first == UInt8(ascii: "+") else {
            return "must be in E.164 format, starting with + and the country code (e.g. +628123123123)"
        }
        let digits = utf8.dropFirst()
        guard digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return "must contain only digits after the + (no spaces or dashes), e.g. +628123123123"
        }
        guard (8...15).contains(digits.count) else {
            return "must have 8 to 15 digits after the +, got \(digits.count)"
        }
        guard digits.first != UInt8(ascii: "0") else {
            return "must start with a country code after the +, not 0"
        }
        return nil
    }

    /// Why `url` is not an http(s) URL whose path ends in one of `allowedExtensions`, or `nil` if it is.
    /// The extension is compared without case; a query string or fragment is ignored.
    public static func urlProblem(_ url: String, allowedExtensions: Set<String>) -> String? {
        if url.isEmpty { return "is required" }
        let lower = url.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            return "must be an http:// or https:// URL"
        }
        var path = Substring(lower)
        if let cut = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<cut] }
        let allowed = allowedExtensions.sorted().joined(separator: ", ")
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else {
            return "must end in one of: \(allowed)"
        }
        let ext = String(path[path.index(after: dot)...])
        guard allowedExtensions.contains(ext) else {
            return "must end in one of: \(allowed) (got .\(ext))"
        }
        return nil
    }
}
