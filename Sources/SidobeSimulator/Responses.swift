import Foundation
import Sidobe

/// The simulator's answers, built once so the bodies are identical everywhere.
enum Responses {
    /// The seed's message for a wrong or missing secret key.
    static let invalidAPIKeyMessage =
        "The API key provided is invalid. Please make sure to use the secret/public API key that you can obtain from the Dashboard."
    /// The message of `INVALID_DEVICE_WHATSAPP` answers.
    static let invalidDeviceMessage =
        "There is a problem with the WhatsApp device/account registered on the dashboard. Please check whether the WhatsApp account has a problem; if there is none, delete the device and register it again."
    /// The message of 503 answers.
    static let maintenanceMessage = "We're temporarily offline for maintenance. Please try again later."
    /// The exact body of a 429 answer, as documented.
    static let rateLimitBody = Array(#"{"message":"rate limit exceeded"}"#.utf8)

    private struct NoPayload: Codable, Sendable {}

    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { Array($0) } ?? []
    }

    static func json(_ status: Int, _ body: [UInt8], extraHeaders: [String: String] = [:]) -> SimulatedResponse {
        var headers = ["Content-Type": "application/json"]
        headers.merge(extraHeaders) { _, new in new }
        return SimulatedResponse(status: status, headers: headers, body: body)
    }

    static func success<Payload: Codable & Sendable>(_ data: Payload) -> SimulatedResponse {
        json(200, encode(APIEnvelope(isSuccess: true, data: data)))
    }

    static func failure(_ status: Int, message: String, errorCode: String?, extraHeaders: [String: String] = [:]) -> SimulatedResponse {
        json(status, encode(APIEnvelope<NoPayload>(isSuccess: false, data: nil, message: message, errorCode: errorCode)), extraHeaders: extraHeaders)
    }

    static let invalidAPIKey = failure(401, message: invalidAPIKeyMessage, errorCode: APIErrorCode.invalidAPIKey.rawValue)

    static let invalidDevice = failure(400, message: invalidDeviceMessage, errorCode: APIErrorCode.invalidDeviceWhatsApp.rawValue)

    static func validation(_ error: InvalidField) -> SimulatedResponse {
        failure(400, message: error.description, errorCode: APIErrorCode.apiValidationError.rawValue)
    }

    static func messageNotFound(_ id: String) -> SimulatedResponse {
        failure(404, message: "WhatsApp message not found: \(id)", errorCode: nil)
    }

    static func routeNotFound(method: String, path: String) -> SimulatedResponse {
        failure(404, message: "No such endpoint: \(method) /wa/v1\(path == "/" ? "" : path)", errorCode: nil)
    }

    static func methodNotAllowed(_ method: String, allowed: String) -> SimulatedResponse {
        failure(405, message: "Method \(method) is not allowed here; use \(allowed)", errorCode: nil, extraHeaders: ["Allow": allowed])
    }

    static func rateLimited(retryAfter: Int?) -> SimulatedResponse {
        json(429, rateLimitBody, extraHeaders: retryAfter.map { ["Retry-After": String($0)] } ?? [:])
    }

    /// No answer at all: the HTTP server closes the connection instead.
    static let connectionReset = SimulatedResponse(status: 0, headers: [:], body: [], closesConnection: true)

    static func maintenance(retryAfter: Int?) -> SimulatedResponse {
        failure(503, message: maintenanceMessage, errorCode: nil, extraHeaders: retryAfter.map { ["Retry-After": String($0)] } ?? [:])
    }
}
