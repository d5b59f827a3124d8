import Foundation
import NIOCore
import NIOHTTP1
@testable import Sidobe
import Testing

@Suite("Answers mapped to typed errors")
struct ErrorMappingTests {
    func interpret(_ status: Int, _ body: String, headers: HTTPHeaders = [:]) -> Result<SentMessage, SidobeError> {
        SidobeClient.interpret(status: status, headers: headers, body: ByteBuffer(string: body), as: SentMessage.self)
    }

    @Test func successEnvelope() throws {
        let result = interpret(200, #"{"is_success":true,"data":{"id":"1","message_type":"TEXT","status":"SUCCESS","is_async":false}}"#)
        #expect(try result.get() == SentMessage(id: "1", messageType: .text, status: .success, isAsync: false))
    }

    @Test func eachDocumentedErrorCodeHasItsOwnCase() {
        func error(_ status: Int, _ code: String) -> SidobeError? {
            if case .failure(let e) = interpret(status, #"{"is_success":false,"message":"m \#(code)","error_code":"\#(code)"}"#) { return e }
            return nil
        }
        let m = { (s: Int, c: String) in APIFailure(httpStatus: s, errorCode: c, message: "m \(c)") }
        #expect(error(400, "API_VALIDATION_ERROR") == .apiValidation(m(400, "API_VALIDATION_ERROR")))
        #expect(error(401, "INVALID_API_KEY") == .invalidAPIKey(m(401, "INVALID_API_KEY")))
        #expect(error(400, "INVALID_REQUEST") == .invalidRequest(m(400, "INVALID_REQUEST")))
        #expect(error(400, "INVALID_DEVICE_WHATSAPP") == .invalidDevice(m(400, "INVALID_DEVICE_WHATSAPP")))
        #expect(error(418, "SOMETHING_NEW") == .unexpectedStatus(m(418, "SOMETHING_NEW")))
        #expect(error(400, "INVALID_DEVICE_WHATSAPP")?.code == "INVALID_DEVICE_WHATSAPP")
        #expect(error(400, "INVALID_DEVICE_WHATSAPP")?.httpStatus == 400)
    }

    @Test func rateLimitBodyHasNeitherIsSuccessNorErrorCode() {
        let result = interpret(429, #"{"message":"rate limit exceeded"}"#, headers: ["Retry-After": "7"])
        #expect(result == .failure(.rateLimited(APIFailure(httpStatus: 429, message: "rate limit exceeded"), retryAfter: .seconds(7))))
        guard case .failure(let error) = result else { return }
        #expect(error.code == "RATE_LIMITED")
        #expect(error.message == "rate limit exceeded")
    }

    @Test func statusesWithoutABody() {
        #expect(interpret(404, "") == .failure(.notFound(APIFailure(httpStatus: 404, message: "not found"))))
        #expect(interpret(500, "") == .failure(.serverError(APIFailure(httpStatus: 500, message: "internal server error"))))
        #expect(interpret(503, "<html>down</html>") == .failure(.serverError(APIFailure(httpStatus: 503, message: "<html>down</html>"))))
        #expect(interpret(401, "") == .failure(.invalidAPIKey(APIFailure(httpStatus: 401, message: "unauthorized: the secret key is wrong"))))
    }

    @Test func undecodableSuccess() {
        guard case .failure(.undecodableResponse(let status, let detail)) = interpret(200, "not json") else {
            Issue.record("expected undecodable")
            return
        }
        #expect(status == 200)
        #expect(detail.contains("not json"))
        guard case .failure(.undecodableResponse) = interpret(200, #"{"is_success":true}"#) else {
            Issue.record("expected undecodable for missing data")
            return
        }
    }

    @Test func descriptionsCarryStatusAndMessage() {
        let error = SidobeError.invalidDevice(APIFailure(httpStatus: 400, errorCode: "INVALID_DEVICE_WHATSAPP", message: "device offline"))
        #expect(error.description == "INVALID_DEVICE_WHATSAPP (HTTP 400): device offline")
        #expect(SidobeError.invalidField(FieldError(field: "phone", reason: "is required")).description == "invalid phone: is required")
        #expect(SidobeError.timeout(requestWritten: true).mayHaveBeenDelivered)
        #expect(!SidobeError.timeout(requestWritten: false).mayHaveBeenDelivered)
    }
}

@Suite("Retry policy")
struct RetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 4, baseDelay: .milliseconds(100), maxDelay: .seconds(1), maxRetryAfter: .seconds(10))
    let limited = SidobeError.rateLimited(APIFailure(httpStatus: 429, message: "rate limit exceeded"), retryAfter: nil)
    let maintenance = SidobeError.serverError(APIFailure(httpStatus: 503, message: "down"))

    @Test func retriesOnlyWhatIsSafe() {
        #expect(policy.shouldRetry(limited, attempt: 1, idempotent: false))
        #expect(policy.shouldRetry(maintenance, attempt: 3, idempotent: false))
        #expect(!policy.shouldRetry(maintenance, attempt: 4, idempotent: false))
        #expect(!policy.shouldRetry(.serverError(APIFailure(httpStatus: 500, message: "x")), attempt: 1, idempotent: false))
        #expect(!policy.shouldRetry(.apiValidation(APIFailure(httpStatus: 400, message: "x")), attempt: 1, idempotent: true))
        #expect(!policy.shouldRetry(.invalidAPIKey(APIFailure(httpStatus: 401, message: "x")), attempt: 1, idempotent: true))
        #expect(!policy.shouldRetry(.invalidField(FieldError(field: "phone", reason: "x")), attempt: 1, idempotent: true))
        #expect(policy.shouldRetry(.transport("refused", requestWritten: false), attempt: 1, idempotent: false))
        #expect(!policy.shouldRetry(.timeout(requestWritten: true), attempt: 1, idempotent: false))
        #expect(policy.shouldRetry(.timeout(requestWritten: true), attempt: 1, idempotent: true))
        let tooLong = SidobeError.rateLimited(APIFailure(httpStatus: 429, message: "x"), retryAfter: .seconds(11))
        #expect(!policy.shouldRetry(tooLong, attempt: 1, idempotent: false))
    }

    @Test func fullJitterStaysUnderTheExponentialCeiling() {
        #expect(policy.delay(after: 1, error: limited, random: 0.999_999) <= .milliseconds(100))
        #expect(policy.delay(after: 2, error: limited, random: 0.5) == .milliseconds(100))
        #expect(policy.delay(after: 3, error: limited, random: 1) == .milliseconds(400))
        #expect(policy.delay(after: 9, error: limited, random: 1) == .seconds(1))
        #expect(policy.delay(after: 9, error: limited, random: 0) == .zero)
    }

    @Test func retryAfterIsHonouredExactly() {
        let error = SidobeError.rateLimited(APIFailure(httpStatus: 429, message: "x"), retryAfter: .seconds(3))
        #expect(policy.delay(after: 1, error: error, random: 0) == .seconds(3))
        #expect(parseRetryAfter("120", now: 0) == .seconds(120))
        #expect(parseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now: 784_111_777 - 30) == .seconds(30))
        #expect(parseRetryAfter("soon", now: 0) == nil)
        #expect(parseRetryAfter("-5", now: 0) == nil)
    }
}
