import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTPTypes
import ServiceLifecycle
import Logging
import Sidobe

/// A local Sidobe WhatsApp API v1 over HTTP, for developers, tests and `sidobot run --simulate`.
///
/// ```swift
/// let simulator = SidobeSimulator(configuration: .init(secretKey: SecretKey("k"), webhookURL: "http://127.0.0.1:8080/webhooks/sidobe"))
/// let port = try await simulator.start()          // 127.0.0.1, a free port
/// let client = SidobeClient(configuration: .init(baseURL: simulator.baseURL, secretKey: SecretKey("k")))
/// _ = try await client.sendMessage(phone: "+628123123123", message: "hi", isAsync: true)
/// try await simulator.waitForIdle()                // the SUCCESS webhook was delivered (or given up)
/// await simulator.stop()
/// ```
///
/// The API is served under `/wa/v1` exactly as documented by Sidobe; inspection endpoints are
/// under `/_simulator` (see docs/SIMULATOR.md). The logic lives in ``core``, which can also be
/// used without HTTP. All methods may be called from any context.
public final class SidobeSimulator: Sendable {
    /// The simulated Sidobe this server exposes.
    public let core: SimulatedSidobeCore
    private let logger: Logger
    private let server = Locked(ServerState())

    private struct ServerState {
        var generation = 0
        var task: Task<Void, any Error>?
        /// Runs the HTTP server; stopping goes through its graceful shutdown (in-flight requests
        /// finish), not task cancellation, which Hummingbird reports as an error.
        var group: ServiceGroup?
        var host = "127.0.0.1"
        var port: Int?
    }

    /// Creates a simulator; it serves nothing until ``start(host:port:)`` or ``run(host:port:onStarted:)``.
    /// - Parameters:
    ///   - configuration: key, webhook URL, timings and faults.
    ///   - logger: where the simulator and its HTTP server log; the secret key is never logged.
    public convenience init(configuration: SimulatorConfiguration, logger: Logger = Logger(label: "sidobe.simulator")) {
        self.init(core: SimulatedSidobeCore(configuration: configuration, logger: logger), logger: logger)
    }

    /// Creates a simulator serving an existing core (e.g. one with an in-process webhook transport or a virtual clock).
    public init(core: SimulatedSidobeCore, logger: Logger = Logger(label: "sidobe.simulator")) {
        self.core = core
        self.logger = logger
    }

    // MARK: Lifecycle

    /// Starts the HTTP server in the background and returns the bound port.
    ///
    /// The server runs until ``stop()``. Pass port 0 (the default) for a free port.
    /// - Throws: ``SimulatorError/alreadyRunning(port:)``, or ``SimulatorError/cannotStart(_:)``
    ///   when the address cannot be bound.
    @discardableResult
    public func start(host: String = "127.0.0.1", port: Int = 0) async throws -> Int {
        let (ports, portSink) = AsyncStream<Int>.makeStream()
        let responder = SimulatorResponder(core: core, baseURL: { [server] in Self.baseURL(server.withLock { $0 }) })
        let app = Application(
            responder: responder,
            server: .http1(configuration: .init(additionalChannelHandlers: [ConnectionResetter()])),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "Sidobe-Simulator"),
            onServerRunning: { channel in
                portSink.yield(channel.localAddress?.port ?? port)
                portSink.finish()
            },
            logger: logger
        )
        let generation = try server.withLock { state throws -> Int in
            if state.task != nil { throw SimulatorError.alreadyRunning(port: state.port ?? port) }
            state.generation += 1
            state.host = host
            state.port = nil
            let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
            state.group = group
            state.task = Task {
                defer { portSink.finish() }
                try await group.run()
            }
            return state.generation
        }
        var iterator = ports.makeAsyncIterator()
        if let bound = await iterator.next() {
            server.withLock { state in
                if state.generation == generation { state.port = bound }
            }
            logger.info("Sidobe simulator listening", metadata: [
                "simulator.base_url": "\(baseURL)",
                "simulator.webhook_url": "\(core.configuration.webhookURL ?? "none (events recorded only)")",
                "simulator.faults": "\(core.faults.summary)",
            ])
            return bound
        }
        // The server ended before it was running: it could not bind.
        let task = server.withLock { state -> Task<Void, any Error>? in
            guard state.generation == generation else { return nil }
            defer { state.task = nil }
            return state.task
        }
        let result = await task?.result
        if case .failure(let error) = result { throw SimulatorError.cannotStart("\(host):\(port): \(error)") }
        throw SimulatorError.cannotStart("\(host):\(port): the server stopped before it was listening")
    }

    /// Stops the server and cancels pending async deliveries and webhook attempts
    /// (call ``waitForIdle(timeout:)`` first to let them finish). Does nothing if not running.
    /// The simulator can be started again; its messages and records are kept.
    public func stop() async {
        let (task, group) = server.withLock { state -> (Task<Void, any Error>?, ServiceGroup?) in
            defer {
                state.task = nil
                state.group = nil
                state.port = nil
            }
            return (state.task, state.group)
        }
        guard let task else { return }
        core.cancelPendingWork()
        if let group {
            await group.triggerGracefulShutdown()
        } else {
            task.cancel()
        }
        _ = await task.result
        logger.info("Sidobe simulator stopped")
    }

    /// Serves until the calling task is cancelled (or ``stop()`` is called), then stops.
    /// For the `sidobot simulator` command.
    /// - Parameters:
    ///   - host: the address to listen on.
    ///   - port: the port to listen on; 0 for a free one.
    ///   - onStarted: called with the bound port once the server listens (e.g. to print the base URL).
    /// - Throws: what ``start(host:port:)`` throws, or the server's error if it fails while running.
    public func run(host: String = "127.0.0.1", port: Int = 0, onStarted: @Sendable (Int) async -> Void = { _ in }) async throws {
        let bound = try await start(host: host, port: port)
        await onStarted(bound)
        let (running, group) = server.withLock { ($0.task, $0.group) }
        guard let task = running else { return }
        let core = core
        let result = await withTaskCancellationHandler {
            await task.result
        } onCancel: {
            core.cancelPendingWork()
            if let group {
                Task { await group.triggerGracefulShutdown() }
            } else {
                task.cancel()
            }
        }
        let stillOurs = server.withLock { $0.task == task }
        if stillOurs { await stop() }
        if case .failure(let error) = result, !(error is CancellationError) { throw error }
    }

    /// The bound port while running, else `nil`.
    public var port: Int? { server.withLock { $0.port } }

    /// The API base URL, `http://127.0.0.1:PORT/wa/v1`, once started (the port is 0 before).
    /// A wildcard listen address (`0.0.0.0`, `::`) is reported as the loopback address.
    public var baseURL: String { Self.baseURL(server.withLock { $0 }) }

    /// The root of the inspection endpoints, `http://127.0.0.1:PORT/_simulator`.
    public var inspectionURL: String {
        let state = server.withLock { $0 }
        return "http://\(Self.clientHost(state.host)):\(state.port ?? 0)/_simulator"
    }

    private static func baseURL(_ state: ServerState) -> String {
        "http://\(clientHost(state.host)):\(state.port ?? 0)/wa/v1"
    }

    private static func clientHost(_ host: String) -> String {
        switch host {
        case "0.0.0.0", "": "127.0.0.1"
        case "::", "[::]": "[::1]"
        default: host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        }
    }

    // MARK: Inspection and control (forwarded to the core)

    /// Every accepted send, oldest first.
    public func messages() async -> [SimulatedMessage] { core.messages() }

    /// Every webhook delivery attempt, in the order they ended.
    public func webhookDeliveries() async -> [WebhookDeliveryRecord] { core.webhookDeliveries() }

    /// How many API requests got each HTTP status. See ``SimulatedSidobeCore/answerCounts()``.
    public func answerCounts() async -> [Int: Int] { core.answerCounts() }

    /// Every webhook event created, oldest first, delivered or not.
    public func webhookEvents() async -> [WebhookEvent] { core.webhookEvents() }

    /// Replaces the fault knobs at runtime. See ``SimulatedSidobeCore/setFaults(_:)``.
    public func setFaults(_ faults: FaultInjection) async { core.setFaults(faults) }

    /// Sets or clears the webhook URL at runtime. See ``SimulatedSidobeCore/setWebhookURL(_:)``.
    public func setWebhookURL(_ url: String?) async { core.setWebhookURL(url) }

    /// Returns when no async delivery or webhook attempt is pending.
    /// - Throws: ``SimulatorError/idleTimeout(pending:timeout:)`` after `timeout`.
    public func waitForIdle(timeout: Duration = .seconds(10)) async throws {
        try await core.waitForIdle(timeout: timeout)
    }
}

/// JSON coding of the inspection endpoints: snake_case keys (given by the types), sorted,
/// dates as ISO 8601 with microseconds and offset.
public enum SimulatorJSON {
    /// The encoder the inspection endpoints use.
    public static func encoder(offsetSeconds: Int = 0, pretty: Bool = true) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(ISO8601Timestamp.format(date, offsetSeconds: offsetSeconds, fractional: true))
        }
        return encoder
    }

    /// A decoder for what ``encoder(offsetSeconds:pretty:)`` produces.
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = ISO8601Timestamp.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 timestamp: \(text)")
            }
            return date
        }
        return decoder
    }
}

/// What `GET /_simulator/webhooks` answers.
public struct WebhookInspection: Sendable, Hashable, Codable {
    /// Every event created, delivered or not.
    public var events: [WebhookEvent]
    /// Every delivery attempt.
    public var deliveries: [WebhookDeliveryRecord]

    /// Creates the answer.
    public init(events: [WebhookEvent], deliveries: [WebhookDeliveryRecord]) {
        self.events = events
        self.deliveries = deliveries
    }
}

/// What `GET /_simulator` answers.
struct SimulatorSummary: Codable {
    var baseURL: String
    var webhookURL: String?
    var messages: Int
    var webhookEvents: Int
    var webhookDeliveries: Int
    var pendingWork: Int
    var faults: FaultInjection

    enum CodingKeys: String, CodingKey {
        case baseURL = "base_url"
        case webhookURL = "webhook_url"
        case messages
        case webhookEvents = "webhook_events"
        case webhookDeliveries = "webhook_deliveries"
        case pendingWork = "pending_work"
        case faults
    }
}

/// The Hummingbird responder: `/wa/v1/**` goes to the core, `/_simulator/**` to the inspection endpoints.
struct SimulatorResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    let core: SimulatedSidobeCore
    let baseURL: @Sendable () -> String

    static let maxBodyBytes = 1 << 20

    func respond(to request: Request, context: Context) async throws -> Response {
        let path = request.uri.path
        if path == "/wa/v1" || path.hasPrefix("/wa/v1/") {
            return try await api(request, path: path)
        }
        if path == "/_simulator" || path.hasPrefix("/_simulator/") {
            return try await inspection(request, path: path)
        }
        return Self.response(Responses.failure(404, message: "No such endpoint: the API is under /wa/v1 and the inspection endpoints under /_simulator", errorCode: nil))
    }

    private func collect(_ request: inout Request) async throws -> [UInt8]? {
        do {
            return Array(try await request.collectBody(upTo: Self.maxBodyBytes).readableBytesView)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            return nil
        }
    }

    private func api(_ request: Request, path: String) async throws -> Response {
        var request = request
        guard let body = try await collect(&request) else {
            return Self.response(Responses.failure(413, message: "The request body is larger than \(Self.maxBodyBytes) bytes", errorCode: nil))
        }
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let answer = await core.handle(SimulatedRequest(method: request.method.rawValue, path: path, headers: headers, body: body))
        return Self.response(answer)
    }

    // MARK: Inspection endpoints

    private func inspection(_ request: Request, path: String) async throws -> Response {
        var request = request
        let method = request.method.rawValue.uppercased()
        var rest = Substring(path.dropFirst("/_simulator".count))
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        let offset = core.configuration.timestampOffsetSeconds
        func json(_ value: some Encodable, status: Int = 200) -> Response {
            let body = (try? SimulatorJSON.encoder(offsetSeconds: offset).encode(value)).map { Array($0) } ?? []
            return Self.response(SimulatedResponse(status: status, body: body))
        }
        func problem(_ status: Int, _ message: String, allow: String? = nil) -> Response {
            Self.response(Responses.failure(status, message: message, errorCode: nil, extraHeaders: allow.map { ["Allow": $0] } ?? [:]))
        }

        switch (method, rest) {
        case ("GET", ""):
            let configuration = core.configuration
            return json(SimulatorSummary(
                baseURL: baseURL(), webhookURL: configuration.webhookURL, messages: core.messages().count,
                webhookEvents: core.webhookEvents().count, webhookDeliveries: core.webhookDeliveries().count,
                pendingWork: core.pendingWorkCount, faults: configuration.faults
            ))
        case ("GET", "/messages"):
            return json(core.messages())
        case ("GET", _) where rest.hasPrefix("/messages/"):
            let raw = String(rest.dropFirst("/messages/".count))
            let id = raw.removingPercentEncoding ?? raw
            guard let message = core.message(id: id) else { return problem(404, "WhatsApp message not found: \(id)") }
            return json(message)
        case ("GET", "/webhooks"):
            return json(WebhookInspection(events: core.webhookEvents(), deliveries: core.webhookDeliveries()))
        case ("GET", "/faults"):
            return json(core.faults)
        case ("PUT", "/faults"):
            guard let body = try await collect(&request) else { return problem(413, "body too large") }
            let faults: FaultInjection
            do {
                faults = try JSONDecoder().decode(FaultInjection.self, from: Data(body))
            } catch {
                return problem(400, "body must be a JSON object of fault knobs (see docs/SIMULATOR.md): \(Self.describe(error))")
            }
            if let issue = faults.problem { return problem(400, issue) }
            core.setFaults(faults)
            return json(faults)
        case ("PUT", "/webhook-url"):
            guard let body = try await collect(&request) else { return problem(413, "body too large") }
            guard let object = JSONValue.parse(body)?.objectValue, let value = object["url"] else {
                return problem(400, #"body must be {"url": "http://..."} or {"url": null}"#)
            }
            switch value {
            case .null: core.setWebhookURL(nil)
            case .string(let url) where url.lowercased().hasPrefix("http://") || url.lowercased().hasPrefix("https://"):
                core.setWebhookURL(url)
            default: return problem(400, "url must be an http:// or https:// URL, or null")
            }
            return json(["webhook_url": core.configuration.webhookURL])
        case ("POST", "/reset"):
            core.reset()
            return json(["reset": true])
        case ("POST", "/wait-for-idle"):
            let milliseconds = request.uri.queryParameters.get("timeout_ms", as: Int.self) ?? 10_000
            do {
                try await core.waitForIdle(timeout: .milliseconds(max(0, milliseconds)))
                return json(["idle": true])
            } catch {
                return problem(504, "\(error)")
            }
        case (_, ""), (_, "/messages"), (_, "/webhooks"):
            return problem(405, "use GET", allow: "GET")
        case (_, "/faults"):
            return problem(405, "use GET or PUT", allow: "GET, PUT")
        case (_, "/webhook-url"):
            return problem(405, "use PUT", allow: "PUT")
        case (_, "/reset"), (_, "/wait-for-idle"):
            return problem(405, "use POST", allow: "POST")
        default:
            return problem(404, "No such inspection endpoint: \(method) \(path) (see docs/SIMULATOR.md)")
        }
    }

    private static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .keyNotFound(let key, _): return "\(key.stringValue) is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "not valid JSON" : "\(path) has the wrong type"
        @unknown default: return "\(error)"
        }
    }

    static func response(_ answer: SimulatedResponse) -> Response {
        if answer.closesConnection {
            // ConnectionResetter closes the connection when it sees this answer go out.
            return Response(status: .internalServerError, headers: [ConnectionResetter.marker: "1"])
        }
        var fields = HTTPFields()
        for (name, value) in answer.headers.sorted(by: { $0.key < $1.key }) {
            // `HTTPField` itself is not re-exported by Hummingbird: let the subscript name the type.
            guard HTTPFields.isValidName(name) else { continue }
            fields[.init(name)!] = value
        }
        return Response(
            status: HTTPResponse.Status(code: answer.status, reasonPhrase: reasonPhrase(answer.status)),
            headers: fields,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body))
        )
    }

    private static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 413: "Content Too Large"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: ""
        }
    }
}

extension HTTPFields {
    /// Whether `name` is a valid header field name (an RFC 9110 token).
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            default:
                "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
        }
    }
}

/// Closes the connection instead of writing an answer marked by ``SidobeSimulator/response(_:)``
/// (``FaultInjection/connectionResetRate``): what a client sees when a proxy or Sidobe itself drops
/// the connection after reading the request.
final class ConnectionResetter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let marker = HTTPField.Name("X-Simulator-Reset")!
    private var dropping = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        if case .head(let head) = part, head.headerFields[Self.marker] != nil {
            dropping = true
            context.close(promise: nil)
        }
        guard dropping else { return context.write(data, promise: promise) }
        if case .end = part { dropping = false }
        promise?.succeed(())
    }
}
