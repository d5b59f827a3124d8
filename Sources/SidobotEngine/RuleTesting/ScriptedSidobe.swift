import Foundation
import Sidobe
import Synchronization

/// The fake Sidobe of `sidobot test`: answers in process, assigns ids `m1`, `m2`…, records every
/// accepted send with the virtual time it happened, and follows a script (`t.sidobe.*`):
/// a queue of one-shot answers or failures for the next sends, a default answer for sync sends,
/// and numbers that are not on WhatsApp.
///
/// Async sends are answered `PENDING` (the test then plays the webhook with `t.webhook`); sync sends
/// get the next scripted answer, else the default (`SUCCESS`).
public final class ScriptedSidobe: SidobeAPI {
    /// A send Sidobe accepted.
    public struct Send: Sendable, Hashable {
        public var id: String
        public var message: OutgoingMessage
        public var status: MessageStatus
        public var at: UnixTime
    }

    /// One scripted answer for the next send.
    public enum Answer: Sendable, Hashable {
        case status(MessageStatus)
        case failure(SidobeError)
    }

    struct State {
        var sends: [Send] = []
        var script: [Answer] = []
        var defaultStatus: MessageStatus = .success
        var counter = 0
        var statuses: [String: MessageStatus] = [:]
        var unregistered: Set<String> = []
        var refused = 0
    }

    private let clock: any EngineClock
    private let state = Mutex(State())

    public init(clock: any EngineClock) {
        self.clock = clock
    }

    /// Every accepted send, in order.
    public var sends: [Send] { state.withLock { $0.sends } }

    /// Sends refused by a scripted failure.
    public var refusedCount: Int { state.withLock { $0.refused } }

    /// Queues an answer for the next send (answers are used in order, one per send).
    public func script(_ answer: Answer) { state.withLock { $0.script.append(answer) } }

    /// The status sync sends get when nothing is scripted.
    public func setDefaultStatus(_ status: MessageStatus) { state.withLock { $0.defaultStatus = status } }

    /// Marks a number as not on WhatsApp (`sidobe.check_number` answers false).
    public func setRegistered(_ phone: String, _ registered: Bool) {
        state.withLock { state in
            if registered { state.unregistered.remove(phone) } else { state.unregistered.insert(phone) }
        }
    }

    /// Records a delivery status (what `sidobe.message(id)` answers), as a webhook would change it.
    public func setStatus(_ status: MessageStatus, of id: String) { state.withLock { $0.statuses[id] = status } }

    public func send(_ message: OutgoingMessage) async throws(SidobeError) -> SentMessage {
        let now = clock.now()
        let result: Result<SentMessage, SidobeError> = state.withLock { state in
            var status: MessageStatus = message.isAsync ? .pending : state.defaultStatus
            if !state.script.isEmpty {
                switch state.script.removeFirst() {
                case .failure(let error):
                    state.refused += 1
                    return .failure(error)
                case .status(let scripted):
                    status = scripted
                }
            }
            state.counter += 1
            let id = "m\(state.counter)"
            state.sends.append(Send(id: id, message: message, status: status, at: now))
            state.statuses[id] = status
            return .success(SentMessage(id: id, messageType: message.messageType, status: status, isAsync: message.isAsync))
        }
        return try result.get()
    }

    public func message(id: String) async throws(SidobeError) -> MessageDetail {
        let found: (MessageStatus, MessageType)? = state.withLock { state in
            guard let status = state.statuses[id], let send = state.sends.first(where: { $0.id == id }) else { return nil }
            return (status, send.message.messageType)
        }
        guard let (status, type) = found else {
            throw .notFound(APIFailure(httpStatus: 404, message: "message \(id) not found"))
        }
        return MessageDetail(id: id, whatsappDevice: nil, messageType: type, status: status, isAsync: false)
    }

    public func checkNumber(_ phone: String) async throws(SidobeError) -> Bool {
        if let problem = RequestValidation.phoneProblem(phone) {
            throw .invalidField(FieldError(field: "phone", reason: problem))
        }
        return state.withLock { !$0.unregistered.contains(phone) }
    }

    /// The error a test asks for by its code (`t.sidobe.fail_next{ code = ... }`).
    public static func error(code: String, message: String?, httpStatus: Int?) -> SidobeError? {
        func failure(_ status: Int) -> APIFailure {
            APIFailure(httpStatus: httpStatus ?? status, errorCode: code, message: message ?? "scripted \(code) from the fake Sidobe")
        }
        switch code {
        case "API_VALIDATION_ERROR": return .apiValidation(failure(400))
        case "INVALID_API_KEY": return .invalidAPIKey(failure(401))
        case "INVALID_REQUEST": return .invalidRequest(failure(400))
        case "INVALID_DEVICE_WHATSAPP": return .invalidDevice(failure(400))
        case "RATE_LIMITED": return .rateLimited(failure(429), retryAfter: nil)
        case "NOT_FOUND": return .notFound(failure(404))
        case "UNAVAILABLE": return .serverError(failure(503))
        case "TIMEOUT": return .timeout(requestWritten: false)
        default: return nil
        }
    }

    /// Codes ``error(code:message:httpStatus:)`` knows.
    public static let errorCodes = ["API_VALIDATION_ERROR", "INVALID_API_KEY", "INVALID_REQUEST", "INVALID_DEVICE_WHATSAPP",
                                    "RATE_LIMITED", "NOT_FOUND", "UNAVAILABLE", "TIMEOUT"]
}
