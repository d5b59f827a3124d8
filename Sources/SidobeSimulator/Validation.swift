import Sidobe

/// The fields of a send request, checked the way the client checks them (``RequestValidation``),
/// plus the JSON type checks only a server can make.
struct SendFields: Sendable {
    var phone: String
    var message: String?
    var imageURL: String?
    var documentURL: String?
    var documentName: String?
    var isAsync: Bool

    /// Parses and checks a send body; the error names the first field at fault, in the order
    /// phone, message, image_url / document_url, document_name, is_async.
    static func parse(_ type: MessageType, body: [UInt8]) throws(InvalidField) -> SendFields {
        let object = try object(body)
        guard let phone = try string("phone", in: object) else { throw InvalidField(field: "phone", reason: "is required") }
        if let problem = RequestValidation.phoneProblem(phone) { throw InvalidField(field: "phone", reason: problem) }
        let message = try string("message", in: object)
        var fields = SendFields(phone: phone, message: message, isAsync: false)
        switch type {
        case .image:
            let url = try string("image_url", in: object) ?? ""
            if let problem = RequestValidation.urlProblem(url, allowedExtensions: RequestValidation.imageExtensions) {
                throw InvalidField(field: "image_url", reason: problem)
            }
            fields.imageURL = url
        case .docs:
            let url = try string("document_url", in: object) ?? ""
            if let problem = RequestValidation.urlProblem(url, allowedExtensions: RequestValidation.documentExtensions) {
                throw InvalidField(field: "document_url", reason: problem)
            }
            let name = try string("document_name", in: object) ?? ""
            if name.allSatisfy(\.isWhitespace) { throw InvalidField(field: "document_name", reason: "is required") }
            fields.documentURL = url
            fields.documentName = name
        default:
            if (message ?? "").isEmpty { throw InvalidField(field: "message", reason: "is required") }
        }
        switch object["is_async"] {
        case nil, .null?: fields.isAsync = false
        case .bool(let value)?: fields.isAsync = value
        case let other?: throw InvalidField(field: "is_async", reason: "must be a boolean, got \(other.typeName)")
        }
        return fields
    }

    private init(phone: String, message: String?, isAsync: Bool) {
        self.phone = phone
        self.message = message
        self.isAsync = isAsync
    }

    /// The body as a JSON object.
    static func object(_ body: [UInt8]) throws(InvalidField) -> [String: JSONValue] {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            throw InvalidField(field: "body", reason: "is required: send a JSON object")
        }
        guard let value = JSONValue.parse(body) else { throw InvalidField(field: "body", reason: "is not valid JSON") }
        guard case .object(let object) = value else {
            throw InvalidField(field: "body", reason: "must be a JSON object, got \(value.typeName)")
        }
        return object
    }

    /// A string member; `nil` when absent or `null`.
    static func string(_ name: String, in object: [String: JSONValue]) throws(InvalidField) -> String? {
        switch object[name] {
        case nil, .null?: nil
        case .string(let value)?: value
        case let other?: throw InvalidField(field: name, reason: "must be a string, got \(other.typeName)")
        }
    }
}

/// A request field that failed validation; answered as `400 API_VALIDATION_ERROR` with the
/// message `"<field> <reason>"` (the same wording as the client's ``FieldError``).
struct InvalidField: Error, Sendable, Hashable, CustomStringConvertible {
    /// The wire name of the field, or `body` for the body as a whole.
    var field: String
    /// What is wrong with it.
    var reason: String

    var description: String { "\(field) \(reason)" }
}
