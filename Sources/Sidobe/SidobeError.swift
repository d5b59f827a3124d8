/// A field of a request that failed local validation.
public struct FieldError: Sendable, Hashable, CustomStringConvertible {
    /// The wire name of the field (`phone`, `image_url`, `document_url`, `document_name`, `message`).
    public var field: String
    /// What is wrong with it, in words a person can act on.
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field) \(reason)" }
}

/// An error answer from Sidobe: the HTTP status, Sidobe's `message`, and its `error_code` if any.
public struct APIFailure: Sendable, Hashable, CustomStringConvertible {
    /// The HTTP status of the answer.
    public var httpStatus: Int
    /// Sidobe's `error_code`, if the body had one.
    public var errorCode: String?
    /// Sidobe's `message`, or a short description of the status when the body had none.
    public var message: String

    public init(httpStatus: Int, errorCode: String? = nil, message: String) {
        self.httpStatus = httpStatus
        self.errorCode = errorCode
        self.message = message
    }

    public var description: String {
        if let errorCode { return "HTTP \(httpStatus) \(errorCode): \(message)" }
        return "HTTP \(httpStatus): \(message)"
    }
}

/// Everything that can go wrong talking to Sidobe.
///
/// Each case says what happened and carries what a person needs to fix it: the field for a
/// validation error, the HTTP status and Sidobe's message for an API error. Descriptions
/// never contain the secret key.
public enum SidobeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A field failed local validation; no request was made.
    case invalidField(FieldError)
    /// Sidobe rejected the request's parameters (400 `API_VALIDATION_ERROR`).
    case apiValidation(APIFailure)
    /// Sidobe rejected the secret key (401 `INVALID_API_KEY`). Never retried.
    case invalidAPIKey(APIFailure)
    /// Sidobe could not handle the request (`INVALID_REQUEST`); Sidobe says it may be retried by hand.
    case invalidRequest(APIFailure)
    /// The WhatsApp device registered on the dashboard has a problem (`INVALID_DEVICE_WHATSAPP`).
    case invalidDevice(APIFailure)
    /// Too many requests (429). `retryAfter` is the server's `Retry-After`, if it sent one.
    case rateLimited(APIFailure, retryAfter: Duration?)
    /// The resource does not exist (404), e.g. an unknown message id.
    case notFound(APIFailure)
    /// Sidobe failed (500) or is offline for maintenance (503).
    case serverError(APIFailure)
    /// Any other non-2xx answer, or an `error_code` this client does not know.
    case unexpectedStatus(APIFailure)
    /// No answer in time. `requestWritten` tells whether the whole request had been sent:
    /// if it had, Sidobe may have acted on it (a send may have been delivered), so it is not retried.
    case timeout(requestWritten: Bool)
    /// The connection failed (refused, reset, DNS, TLS). `requestWritten` as for ``timeout(requestWritten:)``.
    case transport(String, requestWritten: Bool)
    /// A 2xx answer whose body is not what Sidobe documents.
    case undecodableResponse(httpStatus: Int, detail: String)

    /// The HTTP status of the answer, if there was one.
    public var httpStatus: Int? {
        switch self {
        case .apiValidation(let f), .invalidAPIKey(let f), .invalidRequest(let f), .invalidDevice(let f),
             .rateLimited(let f, _), .notFound(let f), .serverError(let f), .unexpectedStatus(let f):
            f.httpStatus
        case .undecodableResponse(let status, _): status
        case .invalidField, .timeout, .transport: nil
        }
    }

    /// A stable code for the error, as rules see it in `err.code`:
    /// the documented `error_code` for API errors, else `VALIDATION`, `RATE_LIMITED`, `NOT_FOUND`,
    /// `UNAVAILABLE` (5xx or no connection), `TIMEOUT`, `UNEXPECTED_STATUS` or `BAD_RESPONSE`.
    public var code: String {
        switch self {
        case .invalidField: "API_VALIDATION_ERROR"
        case .apiValidation: APIErrorCode.apiValidationError.rawValue
        case .invalidAPIKey: APIErrorCode.invalidAPIKey.rawValue
        case .invalidRequest: APIErrorCode.invalidRequest.rawValue
        case .invalidDevice: APIErrorCode.invalidDeviceWhatsApp.rawValue
        case .rateLimited: "RATE_LIMITED"
        case .notFound: "NOT_FOUND"
        case .serverError: "UNAVAILABLE"
        case .unexpectedStatus(let f): f.errorCode ?? "UNEXPECTED_STATUS"
        case .timeout: "TIMEOUT"
        case .transport: "UNAVAILABLE"
        case .undecodableResponse: "BAD_RESPONSE"
        }
    }

    /// The message for a person: Sidobe's own message for API errors.
    public var message: String {
        switch self {
        case .invalidField(let f): f.description
        case .apiValidation(let f), .invalidAPIKey(let f), .invalidRequest(let f), .invalidDevice(let f),
             .rateLimited(let f, _), .notFound(let f), .serverError(let f), .unexpectedStatus(let f):
            f.message
        case .timeout(let written):
            written
                ? "no answer in time after the request was sent; it may have been delivered"
                : "no answer in time; the request was not sent"
        case .transport(let detail, _): detail
        case .undecodableResponse(_, let detail): detail
        }
    }

    /// Whether the request may have taken effect at Sidobe even though no answer arrived.
    public var mayHaveBeenDelivered: Bool {
        switch self {
        case .timeout(let written), .transport(_, let written): written
        default: false
        }
    }

    public var description: String {
        switch self {
        case .invalidField(let f): "invalid \(f.field): \(f.reason)"
        case .timeout: "\(code): \(message)"
        case .transport(let detail, _): "cannot reach Sidobe: \(detail)"
        case .undecodableResponse(let status, let detail): "unexpected response from Sidobe (HTTP \(status)): \(detail)"
        case .rateLimited(let f, let retryAfter):
            if let retryAfter { "\(code) (HTTP \(f.httpStatus), retry after \(retryAfter)): \(f.message)" } else { "\(code) (HTTP \(f.httpStatus)): \(f.message)" }
        default: "\(code) (HTTP \(httpStatus ?? 0)): \(message)"
        }
    }

    /// Maps a non-2xx answer to an error. `body` is Sidobe's envelope if it could be decoded.
    static func from(status: Int, errorCode: String?, message: String?, retryAfter: Duration?) -> SidobeError {
        let failure = APIFailure(httpStatus: status, errorCode: errorCode, message: message ?? defaultMessage(status))
        if let errorCode {
            switch APIErrorCode(rawValue: errorCode) {
            case .apiValidationError: return .apiValidation(failure)
            case .invalidAPIKey: return .invalidAPIKey(failure)
            case .invalidRequest: return .invalidRequest(failure)
            case .invalidDeviceWhatsApp: return .invalidDevice(failure)
            case nil: break
            }
        }
        switch status {
        case 401: return .invalidAPIKey(failure)
        case 400: return .apiValidation(failure)
        case 404: return .notFound(failure)
        case 429: return .rateLimited(failure, retryAfter: retryAfter)
        case 500, 503: return .serverError(failure)
        default: return .unexpectedStatus(failure)
        }
    }

    private static func defaultMessage(_ status: Int) -> String {
        switch status {
        case 400: "bad request"
        case 401: "unauthorized: the secret key is wrong"
        case 404: "not found"
        case 429: "rate limit exceeded"
        case 500: "internal server error"
        case 503: "service unavailable"
        default: "HTTP status \(status)"
        }
    }
}
