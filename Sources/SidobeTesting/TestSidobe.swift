import Foundation
import Sidobe
import Synchronization

/// A Sidobe that answers in process, for tests, benchmarks and `sidobot test`: one configurable
/// double instead of one per test suite.
///
/// It assigns ids `m1`, `m2`…, records every accepted send with the time it happened, answers
/// async sends `PENDING` and sync sends with the default status (`SUCCESS` unless changed), and
/// follows a script: a queue of one-shot answers or failures for the next sends. Phone numbers
/// are validated as Sidobe does; whether one is on WhatsApp is the `isRegistered` rule, unless
/// ``setRegistered(_:_:)`` said otherwise. Made with `refusing:`, it refuses every request with
/// that error (a benchmark whose rules never send).
///
/// ```swift
/// let sidobe = TestSidobe()
/// sidobe.script(.failure(TestSidobe.error(code: "RATE_LIMITED")!))
/// let engine = Engine(configuration: configuration, sidobe: sidobe, clock: clock)
/// ...
/// #expect(sidobe.sent.map(\.phone) == ["+628123123123"])
/// ```
public final class TestSidobe: SidobeAPI {
    /// A send Sidobe accepted.
    public struct Send: Sendable, Hashable {
        public var id: String
        public var message: OutgoingMessage
        public var status: MessageStatus
        /// When it was accepted, on the double's clock.
        public var at: Date
    }

    /// One scripted answer for the next send.
    public enum Answer: Sendable, Hashable {
        /// Accept it with this status.
        case status(MessageStatus)
        /// Refuse it with this error.
        case failure(SidobeError)
    }

    private struct State {
        var sends: [Send] = []
        var script: [Answer] = []
        var defaultStatus: MessageStatus = .success
        var counter = 0
        var statuses: [String: MessageStatus] = [:]
        var registration: [String: Bool] = [:]
        var refused = 0
        var beforeAnswer: (@Sendable (SentMessage) async -> Void)?
        var beforeLookup: (@Sendable () async -> Void)?
    }

    private let state = Mutex(State())
    private let now: @Sendable () -> Date
    private let isRegistered: @Sendable (String) -> Bool
    private let refusal: SidobeError?

    /// - Parameters:
    ///   - now: the time sends are recorded at (a virtual clock's, under test).
    ///   - isRegistered: whether a phone is on WhatsApp, unless ``setRegistered(_:_:)`` was told.
    ///   - refusing: refuse every request with this error.
    public init(now: @escaping @Sendable () -> Date = { Date() }, isRegistered: @escaping @Sendable (String) -> Bool = { _ in true },
                refusing: SidobeError? = nil) {
        self.now = now
        self.isRegistered = isRegistered
        refusal = refusing
    }

    /// Every accepted send, in order.
    public var sends: [Send] { state.withLock { $0.sends } }

    /// The messages of every accepted send, in order.
    public var sent: [OutgoingMessage] { sends.map(\.message) }

    /// Sends refused by a scripted failure.
    public var refusedCount: Int { state.withLock { $0.refused } }

    /// Queues an answer for the next send (answers are used in order, one per send).
    public func script(_ answer: Answer) { state.withLock { $0.script.append(answer) } }

    /// Refuses the next send with `error` (after the answers already scripted).
    public func failNext(_ error: SidobeError) { script(.failure(error)) }

    /// The status sync sends get when nothing is scripted.
    public func setDefaultStatus(_ status: MessageStatus) { state.withLock { $0.defaultStatus = status } }

    /// Says whether a number is on WhatsApp (what `checkNumber` answers for it).
    public func setRegistered(_ phone: String, _ registered: Bool) { state.withLock { $0.registration[phone] = registered } }

    /// Records a delivery status (what `message(id:)` answers), as a webhook would change it.
    public func setStatus(_ status: MessageStatus, of id: String) { state.withLock { $0.statuses[id] = status } }

    /// Runs `hook` after a send is accepted and before its answer returns (to race webhooks against it).
    public func beforeAnswer(_ hook: (@Sendable (SentMessage) async -> Void)?) { state.withLock { $0.beforeAnswer = hook } }

    public func send(_ message: OutgoingMessage) async throws(SidobeError) -> SentMessage {
        if let refusal { throw refusal }
        let at = now()
        let result: Result<(SentMessage, (@Sendable (SentMessage) async -> Void)?), SidobeError> = state.withLock { state in
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
            state.sends.append(Send(id: id, message: message, status: status, at: at))
            state.statuses[id] = status
            return .success((SentMessage(id: id, messageType: message.messageType, status: status, isAsync: message.isAsync), state.beforeAnswer))
        }
        let (sent, hook) = try result.get()
        if let hook { await hook(sent) }
        return sent
    }

    /// Runs `hook` when a message's status is asked for, before the answer (to hold a rule's run
    /// in a Sidobe call that is not a send).
    public func beforeLookup(_ hook: (@Sendable () async -> Void)?) { state.withLock { $0.beforeLookup = hook } }

    public func message(id: String) async throws(SidobeError) -> MessageDetail {
        if let refusal { throw refusal }
        if let hook = state.withLock({ $0.beforeLookup }) { await hook() }
        let found: (MessageStatus, OutgoingMessage)? = state.withLock { state in
            guard let status = state.statuses[id], let send = state.sends.first(where: { $0.id == id }) else { return nil }
            return (status, send.message)
        }
        guard let (status, message) = found else {
            throw .notFound(APIFailure(httpStatus: 404, message: "message \(id) not found"))
        }
        return MessageDetail(id: id, whatsappDevice: nil, messageType: message.messageType, status: status, isAsync: message.isAsync)
    }

    public func checkNumber(_ phone: String) async throws(SidobeError) -> Bool {
        if let refusal { throw refusal }
        if let problem = RequestValidation.phoneProblem(phone) {
            throw .invalidField(FieldError(field: "phone", reason: problem))
        }
        return state.withLock { $0.registration[phone] } ?? isRegistered(phone)
    }

    /// The error Sidobe gives for an error code (`API_VALIDATION_ERROR`, `RATE_LIMITED`,
    /// `UNAVAILABLE`, `TIMEOUT`, ... see ``errorCodes``), or nil for a code it does not give.
    public static func error(code: String, message: String? = nil, httpStatus: Int? = nil) -> SidobeError? {
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

    /// The codes ``error(code:message:httpStatus:)`` knows.
    public static let errorCodes = ["API_VALIDATION_ERROR", "INVALID_API_KEY", "INVALID_REQUEST", "INVALID_DEVICE_WHATSAPP",
                                    "RATE_LIMITED", "NOT_FOUND", "UNAVAILABLE", "TIMEOUT"]
}
