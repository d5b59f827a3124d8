import Foundation
import Logging
import Sidobe

/// The simulated Sidobe, without any HTTP server: validation, authentication, fault injection,
/// the message store, status decisions, and webhook events and their delivery.
///
/// ``SidobeSimulator`` serves it over HTTP; tests and the engine's fake Sidobe can use it directly:
///
/// ```swift
/// let core = SimulatedSidobeCore(
///     configuration: .init(secretKey: SecretKey("k"), webhookURL: "memory:", asyncDeliveryDelay: .zero),
///     webhookTransport: .inProcess { event, _ in await engine.receive(event); return 200 }
/// )
/// let answer = await core.send(.text(to: "+628123123123", "hi", isAsync: true))
/// answer.status                                   // 200
/// answer.envelope(SentMessage.self)?.data?.status // .pending
/// try await core.waitForIdle()                    // the SUCCESS webhook has been handed over
/// ```
///
/// ``handle(_:)`` answers exactly what the HTTP API answers (status, headers, JSON body), so the
/// in-process and HTTP simulators cannot disagree. All methods may be called from any context.
public final class SimulatedSidobeCore: Sendable {
    /// Where the core logs (requests at debug, accepted sends and webhook results at info,
    /// given-up webhooks at warning). The secret key is never logged.
    public let logger: Logger
    private let clock: SimulatorClock
    private let transport: WebhookTransport
    private let work = WorkTracker()
    private let state: Locked<State>

    private struct State {
        var configuration: SimulatorConfiguration
        var messages: [String: SimulatedMessage] = [:]
        var messageOrder: [String] = []
        /// Per message: its send number (for deterministic webhook decisions) and, while an async send
        /// is pending, the final status already decided for it.
        var sendNumbers: [String: UInt64] = [:]
        var plans: [String: Decision] = [:]
        var events: [WebhookEvent] = []
        var deliveries: [WebhookDeliveryRecord] = []
        var requestCounter: UInt64 = 0
        var answerCounts: [Int: Int] = [:]
        var sendCounter: UInt64 = 0
        var bucket: TokenBucket?

        init(configuration: SimulatorConfiguration, now: Date) {
            self.configuration = configuration
            self.bucket = configuration.faults.rateLimit.map { TokenBucket(limit: $0, now: now) }
        }
    }

    private struct Decision {
        var status: MessageStatus
        var reason: String?
    }

    /// A webhook event ready to deliver, with the counters its fault decisions use.
    private struct OutgoingEvent: Sendable {
        var event: WebhookEvent
        var messageID: String
        var status: MessageStatus
        var sendNumber: UInt64
        var ordinal: UInt64
        var body: [UInt8]
    }

    /// Creates a simulated Sidobe.
    /// - Parameters:
    ///   - configuration: key, webhook URL, timings and faults.
    ///   - logger: where to log.
    ///   - webhookTransport: how webhook attempts are delivered; HTTP POST by default.
    ///   - clock: the time source and sleep function; the system clock by default.
    public init(
        configuration: SimulatorConfiguration,
        logger: Logger = Logger(label: "sidobe.simulator"),
        webhookTransport: WebhookTransport = .http(),
        clock: SimulatorClock = .system
    ) {
        self.logger = logger
        self.clock = clock
        self.transport = webhookTransport
        self.state = Locked(State(configuration: configuration, now: clock.now()))
    }

    // MARK: Runtime settings

    /// The current configuration (including faults and webhook URL).
    public var configuration: SimulatorConfiguration { state.withLock { $0.configuration } }

    /// The current fault knobs.
    public var faults: FaultInjection { state.withLock { $0.configuration.faults } }

    /// Replaces the fault knobs. Random decisions restart from the new seed (the request and send
    /// counters they use restart at 0) and the rate limiter's bucket starts full.
    public func setFaults(_ faults: FaultInjection) {
        let now = clock.now()
        state.withLock { state in
            state.configuration.faults = faults
            state.requestCounter = 0
            state.sendCounter = 0
            state.bucket = faults.rateLimit.map { TokenBucket(limit: $0, now: now) }
        }
        logger.info("simulator faults changed", metadata: ["simulator.faults": "\(faults.summary)"])
    }

    /// Sets or clears the webhook URL. Attempts started afterwards, retries of earlier events
    /// included, go to the new URL; with `nil`, events are only recorded and pending retries stop.
    public func setWebhookURL(_ url: String?) {
        state.withLock { $0.configuration.webhookURL = url }
        logger.info("simulator webhook URL changed", metadata: ["simulator.webhook_url": "\(url ?? "none")"])
    }

    // MARK: Inspection

    /// Every accepted send still in the history, oldest first.
    public func messages() -> [SimulatedMessage] {
        state.withLock { state in state.messageOrder.compactMap { state.messages[$0] } }
    }

    /// One accepted send, or `nil`.
    public func message(id: String) -> SimulatedMessage? {
        state.withLock { $0.messages[id] }
    }

    /// Every webhook event created, oldest first, whether or not it was delivered.
    public func webhookEvents() -> [WebhookEvent] {
        state.withLock { $0.events }
    }

    /// How many API requests got each HTTP status (429s from the rate limit, 503s, 200s...), since
    /// the start or the last ``reset()``.
    public func answerCounts() -> [Int: Int] {
        state.withLock { $0.answerCounts }
    }

    /// Every webhook delivery attempt, in the order they ended.
    public func webhookDeliveries() -> [WebhookDeliveryRecord] {
        state.withLock { $0.deliveries }
    }

    /// How many async deliveries and webhook deliveries (with their retries) are still running.
    public var pendingWorkCount: Int { work.pendingCount }

    /// Returns once no async delivery or webhook attempt (or retry wait) is pending.
    /// - Throws: ``SimulatorError/idleTimeout(pending:timeout:)`` after `timeout` on the real clock.
    public func waitForIdle(timeout: Duration = .seconds(10)) async throws {
        try await work.waitForIdle(timeout: timeout)
    }

    /// Forgets every message, event and delivery record and cancels pending deliveries.
    /// Configuration and fault knobs stay.
    public func reset() {
        work.cancelAll()
        state.withLock { state in
            state.messages = [:]
            state.messageOrder = []
            state.sendNumbers = [:]
            state.plans = [:]
            state.events = []
            state.deliveries = []
            state.answerCounts = [:]
        }
    }

    /// Cancels pending async deliveries and webhook attempts (messages still pending stay `PENDING`).
    public func cancelPendingWork() {
        work.cancelAll()
    }

    // MARK: The API

    /// Sends a message with the configured key (`send-message`, `send-message-image` or `send-message-doc`).
    public func send(_ message: OutgoingMessage) async -> SimulatedResponse {
        let key = state.withLock { $0.configuration.secretKey }
        return await handle(SimulatedRequest(method: "POST", path: message.endpointPath, secretKey: key, json: message.requestBody))
    }

    /// Gets a message's details with the configured key (`GET whatsapp-messages/:id`).
    public func messageDetail(id: String) async -> SimulatedResponse {
        let key = state.withLock { $0.configuration.secretKey }
        let escaped = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? id
        return await handle(SimulatedRequest(method: "GET", path: "whatsapp-messages/\(escaped)", headers: ["X-Secret-Key": key.reveal()]))
    }

    /// Checks a number with the configured key (`POST utilities/check-number`).
    public func checkNumber(_ phone: String) async -> SimulatedResponse {
        let key = state.withLock { $0.configuration.secretKey }
        return await handle(SimulatedRequest(method: "POST", path: "utilities/check-number", secretKey: key, json: CheckNumberRequestBody(phone: phone)))
    }

    /// Answers an API request exactly as the HTTP API does.
    ///
    /// Checks, in order: ``FaultInjection/latency``, ``FaultInjection/serverErrorRate`` (503),
    /// ``FaultInjection/rateLimit`` (429), `X-Secret-Key` (401), the route (404, 405), the body (400),
    /// then the endpoint's own logic.
    public func handle(_ request: SimulatedRequest) async -> SimulatedResponse {
        let latency = state.withLock { $0.configuration.faults.latency }
        if latency > .zero { try? await clock.sleep(latency) }
        let response = answer(request)
        state.withLock { $0.answerCounts[response.status, default: 0] += 1 }
        logger.debug("simulator answered", metadata: [
            "simulator.method": "\(request.method.uppercased())",
            "simulator.path": "\(request.path)",
            "simulator.status": "\(response.status)",
        ])
        return response
    }

    private func answer(_ request: SimulatedRequest) -> SimulatedResponse {
        let now = clock.now()
        let gate = state.withLock { state -> SimulatedResponse? in
            let number = state.requestCounter
            state.requestCounter &+= 1
            let faults = state.configuration.faults
            if FaultDice.happens(rate: faults.connectionResetRate, seed: faults.seed, .connectionReset, number) {
                return Responses.connectionReset
            }
            if FaultDice.happens(rate: faults.serverErrorRate, seed: faults.seed, .serverError, number) {
                return Responses.maintenance(retryAfter: faults.retryAfterSeconds)
            }
            if var bucket = state.bucket {
                let allowed = bucket.take(now: now)
                state.bucket = bucket
                if !allowed { return Responses.rateLimited(retryAfter: faults.retryAfterSeconds) }
            }
            return nil
        }
        if let gate { return gate }

        let key = state.withLock { $0.configuration.secretKey }
        guard let received = request.header("X-Secret-Key"), Self.constantTimeEquals(received, key.reveal()) else {
            return Responses.invalidAPIKey
        }

        let method = request.method.uppercased()
        switch Route(path: request.path) {
        case .send(let type):
            guard method == "POST" else { return Responses.methodNotAllowed(method, allowed: "POST") }
            return send(type, body: request.body, now: now)
        case .message(let id):
            guard method == "GET" else { return Responses.methodNotAllowed(method, allowed: "GET") }
            return detail(id: id)
        case .checkNumber:
            guard method == "POST" else { return Responses.methodNotAllowed(method, allowed: "POST") }
            return checkNumber(body: request.body)
        case .unknown(let path):
            return Responses.routeNotFound(method: method, path: path)
        }
    }

    // MARK: Endpoints

    private func send(_ type: MessageType, body: [UInt8], now: Date) -> SimulatedResponse {
        let parsed: SendFields
        do {
            parsed = try SendFields.parse(type, body: body)
        } catch {
            return Responses.validation(error)
        }
        let id = UUID().uuidString.lowercased()
        let outcome = state.withLock { state -> (SimulatedResponse, [OutgoingEvent], MessageStatus) in
            let configuration = state.configuration
            let faults = configuration.faults
            if faults.brokenDevice { return (Responses.invalidDevice, [], .failed) }
            let number = state.sendCounter
            state.sendCounter &+= 1
            let decision = Self.decide(phone: parsed.phone, faults: faults, sendNumber: number)
            let first = parsed.isAsync ? MessageStatus.pending : decision.status
            let message = SimulatedMessage(
                id: id, phone: parsed.phone, messageType: type, message: parsed.message,
                imageURL: parsed.imageURL, documentURL: parsed.documentURL, documentName: parsed.documentName,
                isAsync: parsed.isAsync, acceptedAt: now,
                statusHistory: [.init(status: first, at: now)],
                failureReason: parsed.isAsync ? nil : decision.reason
            )
            Self.store(message, sendNumber: number, in: &state)
            var events: [OutgoingEvent] = []
            if parsed.isAsync {
                state.plans[id] = decision
                if configuration.asyncSendsSendPendingWebhook {
                    events.append(Self.makeEvent(for: message, status: .pending, ordinal: 0, sendAt: now, now: now, in: &state))
                }
            } else if configuration.syncSendsSendWebhooks {
                events.append(Self.makeEvent(for: message, status: decision.status, ordinal: 1, sendAt: now, now: now, in: &state))
            }
            let answer = SentMessage(id: id, messageType: type, status: first, isAsync: parsed.isAsync)
            return (Responses.success(answer), events, first)
        }
        let (response, events, status) = outcome
        guard response.status == 200 else {
            logger.info("simulator refused a send: broken device", metadata: ["simulator.message_type": "\(type)"])
            return response
        }
        logger.info("simulator accepted a send", metadata: [
            "simulator.message_id": "\(id)", "simulator.message_type": "\(type)",
            "simulator.is_async": "\(parsed.isAsync)", "simulator.status": "\(status)",
        ])
        logger.debug("simulator send recipient", metadata: ["simulator.message_id": "\(id)", "simulator.phone": "\(parsed.phone)"])
        for event in events { dispatch(event) }
        if parsed.isAsync {
            let delay = state.withLock { $0.configuration.asyncDeliveryDelay }
            work.spawn { [self] in
                if delay > .zero {
                    do { try await clock.sleep(delay) } catch { return }
                }
                guard !Task.isCancelled else { return }
                complete(id)
            }
        }
        return response
    }

    private func detail(id: String) -> SimulatedResponse {
        let found = state.withLock { state -> (SimulatedMessage, WhatsAppDevice)? in
            state.messages[id].map { ($0, state.configuration.device) }
        }
        guard let (message, device) = found else { return Responses.messageNotFound(id) }
        return Responses.success(MessageDetail(
            id: message.id, whatsappDevice: device, messageType: message.messageType,
            status: message.status, isAsync: message.isAsync
        ))
    }

    private func checkNumber(body: [UInt8]) -> SimulatedResponse {
        let phone: String
        do throws(InvalidField) {
            let object = try SendFields.object(body)
            guard let value = try SendFields.string("phone", in: object) else {
                throw InvalidField(field: "phone", reason: "is required")
            }
            if let problem = RequestValidation.phoneProblem(value) { throw InvalidField(field: "phone", reason: problem) }
            phone = value
        } catch {
            return Responses.validation(error)
        }
        let registered = state.withLock { !$0.configuration.faults.unregisteredPhones.contains(phone) }
        return Responses.success(NumberCheck(isRegistered: registered))
    }

    // MARK: Status decisions

    private static func decide(phone: String, faults: FaultInjection, sendNumber: UInt64) -> Decision {
        // Rolled for every send, so the failure-rate outcomes do not shift when phone lists change.
        let unlucky = FaultDice.happens(rate: faults.failureRate, seed: faults.seed, .sendFailure, sendNumber)
        if faults.unregisteredPhones.contains(phone) {
            return Decision(status: .failed, reason: "the number is not registered on WhatsApp (unregistered_phones)")
        }
        if faults.failingPhones.contains(phone) {
            return Decision(status: .failed, reason: "the number always fails (failing_phones)")
        }
        if unlucky {
            return Decision(status: .failed, reason: "random failure (failure_rate \(faults.failureRate), seed \(faults.seed))")
        }
        return Decision(status: .success, reason: nil)
    }

    /// An async send reaches its final status and announces it.
    private func complete(_ id: String) {
        let now = clock.now()
        let event = state.withLock { state -> OutgoingEvent? in
            guard let decision = state.plans.removeValue(forKey: id), var message = state.messages[id] else { return nil }
            message.statusHistory.append(.init(status: decision.status, at: now))
            message.failureReason = decision.reason
            state.messages[id] = message
            return Self.makeEvent(for: message, status: decision.status, ordinal: 1, sendAt: now, now: now, in: &state)
        }
        guard let event else { return }
        logger.info("simulator delivered an async send", metadata: [
            "simulator.message_id": "\(id)", "simulator.status": "\(event.status)",
        ])
        dispatch(event)
    }

    private static func store(_ message: SimulatedMessage, sendNumber: UInt64, in state: inout State) {
        state.messages[message.id] = message
        state.messageOrder.append(message.id)
        state.sendNumbers[message.id] = sendNumber
        let limit = max(1, state.configuration.historyLimit)
        if state.messageOrder.count > limit {
            for old in state.messageOrder.prefix(state.messageOrder.count - limit) {
                state.messages[old] = nil
                state.sendNumbers[old] = nil
                state.plans[old] = nil
            }
            state.messageOrder.removeFirst(state.messageOrder.count - limit)
        }
    }

    private static func makeEvent(
        for message: SimulatedMessage, status: MessageStatus, ordinal: UInt64, sendAt: Date, now: Date, in state: inout State
    ) -> OutgoingEvent {
        let offset = state.configuration.timestampOffsetSeconds
        let event = WebhookEvent(
            id: UUID().uuidString.lowercased(),
            createdAt: ISO8601Timestamp.format(now, offsetSeconds: offset, fractional: true),
            payload: .messageStatus(MessageStatusUpdate(
                whatsappMessageID: message.id, status: status,
                sendAt: ISO8601Timestamp.format(sendAt, offsetSeconds: offset, fractional: false),
                messageType: message.messageType
            ))
        )
        state.events.append(event)
        let limit = max(1, state.configuration.historyLimit)
        if state.events.count > limit { state.events.removeFirst(state.events.count - limit) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(event)).map { Array($0) } ?? []
        return OutgoingEvent(
            event: event, messageID: message.id, status: status,
            sendNumber: state.sendNumbers[message.id] ?? 0, ordinal: ordinal, body: body
        )
    }

    // MARK: Webhook delivery

    private func dispatch(_ outgoing: OutgoingEvent) {
        guard state.withLock({ $0.configuration.webhookURL }) != nil else {
            logger.debug("simulator recorded a webhook event (no webhook URL)", metadata: [
                "simulator.event_id": "\(outgoing.event.id)", "simulator.message_id": "\(outgoing.messageID)",
            ])
            return
        }
        work.spawn { [self] in await deliver(outgoing) }
    }

    private func deliver(_ outgoing: OutgoingEvent) async {
        let eventMetadata: Logger.Metadata = [
            "simulator.event_id": "\(outgoing.event.id)", "simulator.message_id": "\(outgoing.messageID)",
            "simulator.status": "\(outgoing.status)",
        ]
        var attempt = 1
        var duplicate = false
        while !Task.isCancelled {
            let configuration = state.withLock { $0.configuration }
            guard let url = configuration.webhookURL else {
                logger.info("simulator stopped delivering a webhook: no webhook URL any more", metadata: eventMetadata)
                return
            }
            let faults = configuration.faults
            if faults.webhookDelay > .zero {
                do { try await clock.sleep(faults.webhookDelay) } catch { return }
            }
            let startedAt = clock.now()
            let outcome: WebhookTransport.Outcome
            if !duplicate, FaultDice.happens(
                rate: faults.webhookFailureRate, seed: faults.seed, .webhookDrop,
                outgoing.sendNumber, outgoing.ordinal, UInt64(attempt)
            ) {
                outcome = .failed("dropped by fault injection (webhook_failure_rate)")
            } else {
                let request = WebhookTransport.Request(
                    url: url,
                    headers: [
                        "Content-Type": "application/json",
                        WebhookSignature.headerName: WebhookSignature.sign(id: outgoing.event.id, secretKey: configuration.secretKey),
                        "User-Agent": "Sidobe-Simulator",
                    ],
                    body: outgoing.body,
                    timeout: configuration.webhookTimeout
                )
                outcome = await transport.deliver(request)
            }
            if Task.isCancelled { return }
            var record = WebhookDeliveryRecord(
                eventID: outgoing.event.id, messageID: outgoing.messageID, status: outgoing.status,
                attempt: attempt, isDuplicate: duplicate, url: url, httpStatus: nil, error: nil, startedAt: startedAt
            )
            switch outcome {
            case .answered(let status): record.httpStatus = status
            case .failed(let reason): record.error = reason
            }
            state.withLock { state in
                state.deliveries.append(record)
                let limit = max(1, state.configuration.historyLimit)
                if state.deliveries.count > limit { state.deliveries.removeFirst(state.deliveries.count - limit) }
            }
            var metadata = eventMetadata
            metadata["simulator.attempt"] = "\(attempt)"
            metadata["simulator.outcome"] = "\(record.httpStatus.map { "HTTP \($0)" } ?? record.error ?? "")"
            if duplicate {
                logger.info("simulator delivered a deliberate duplicate webhook", metadata: metadata)
                return
            }
            if record.succeeded {
                logger.info("simulator delivered a webhook", metadata: metadata)
                guard FaultDice.happens(
                    rate: faults.webhookDuplicateRate, seed: faults.seed, .webhookDuplicate, outgoing.sendNumber, outgoing.ordinal
                ) else { return }
                duplicate = true
                attempt += 1
                continue
            }
            guard attempt < max(1, configuration.webhookMaxAttempts) else {
                logger.warning("simulator gave up delivering a webhook", metadata: metadata)
                return
            }
            let wait = configuration.webhookRetryDelay(afterAttempt: attempt)
            metadata["simulator.retry_in"] = "\(wait)"
            logger.info("simulator webhook attempt failed; will retry", metadata: metadata)
            if wait > .zero {
                do { try await clock.sleep(wait) } catch { return }
            }
            attempt += 1
        }
    }

    private static func constantTimeEquals(_ received: String, _ expected: String) -> Bool {
        let a = Array(received.utf8)
        let b = Array(expected.utf8)
        guard !b.isEmpty else { return false }
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<b.count {
            difference |= (index < a.count ? a[index] : 0) ^ b[index]
        }
        return difference == 0
    }
}

/// The API routes, from a path relative to `/wa/v1`.
enum Route: Equatable {
    case send(MessageType)
    case message(id: String)
    case checkNumber
    case unknown(String)

    init(path: String) {
        var rest = Substring(path)
        if let query = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<query] }
        while rest.hasPrefix("/") { rest = rest.dropFirst() }
        if rest == "wa/v1" { rest = "" } else if rest.hasPrefix("wa/v1/") { rest = rest.dropFirst(6) }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        switch rest {
        case "send-message": self = .send(.text)
        case "send-message-image": self = .send(.image)
        case "send-message-doc": self = .send(.docs)
        case "utilities/check-number": self = .checkNumber
        default:
            let prefix = "whatsapp-messages/"
            if rest.hasPrefix(prefix) {
                let raw = rest.dropFirst(prefix.count)
                if !raw.isEmpty, !raw.contains("/") {
                    self = .message(id: String(raw).removingPercentEncoding ?? String(raw))
                    return
                }
            }
            self = .unknown("/" + rest)
        }
    }
}

/// A token bucket over a wall clock.
struct TokenBucket: Sendable {
    var limit: RateLimit
    var tokens: Double
    var last: Date

    init(limit: RateLimit, now: Date) {
        self.limit = limit
        self.tokens = Double(max(1, limit.burst))
        self.last = now
    }

    /// Takes a token if there is one.
    mutating func take(now: Date) -> Bool {
        let elapsed = max(0, now.timeIntervalSince(last))
        last = max(last, now)
        tokens = min(Double(max(1, limit.burst)), tokens + elapsed * max(0, limit.requestsPerSecond))
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

extension FaultInjection {
    /// A one-line description of the knobs that are on, for logs.
    var summary: String {
        var parts: [String] = []
        if failureRate > 0 { parts.append("failure_rate=\(failureRate)") }
        if !failingPhones.isEmpty { parts.append("failing_phones=\(failingPhones.count)") }
        if !unregisteredPhones.isEmpty { parts.append("unregistered_phones=\(unregisteredPhones.count)") }
        if brokenDevice { parts.append("broken_device") }
        if let rateLimit { parts.append("rate_limit=\(rateLimit.requestsPerSecond)/s burst \(rateLimit.burst)") }
        if let retryAfterSeconds { parts.append("retry_after=\(retryAfterSeconds)s") }
        if latency > .zero { parts.append("latency=\(latency)") }
        if serverErrorRate > 0 { parts.append("server_error_rate=\(serverErrorRate)") }
        if connectionResetRate > 0 { parts.append("connection_reset_rate=\(connectionResetRate)") }
        if webhookFailureRate > 0 { parts.append("webhook_failure_rate=\(webhookFailureRate)") }
        if webhookDuplicateRate > 0 { parts.append("webhook_duplicate_rate=\(webhookDuplicateRate)") }
        if webhookDelay > .zero { parts.append("webhook_delay=\(webhookDelay)") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ") + " (seed \(seed))"
    }
}
