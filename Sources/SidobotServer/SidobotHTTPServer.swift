import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Sidobe
import SidobotEngine

/// The engine as an HTTP service (docs/OPERATING.md): webhook ingress, hooks, health, metrics and the
/// admin API, with the engine's lifecycle tied to swift-service-lifecycle.
///
/// ```swift
/// let server = SidobotHTTPServer(engine: engine, configuration: config, logger: logger)
/// let group = ServiceGroup(services: server.services(onListening: { port in ... }),
///                          gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
/// The group starts the engine (recovery, rule loading) while the server already answers
/// `/healthz` (and `/readyz` with 503 until the engine is ready). On SIGTERM/SIGINT the HTTP
/// server stops first (no new requests, in-flight ones finish), then the engine finishes its
/// handler runs up to ``ServerConfiguration/shutdownDeadline`` and writes its final snapshot.
public struct SidobotHTTPServer: Sendable {
    public let engine: Engine
    public let configuration: ServerConfiguration
    let logger: Logger
    let state = ServerState()
    let counters = IngressCounters()
    let token: BearerToken
    /// The webhook checks and answers, shared by the fast path and the route.
    let intake: WebhookIntake

    /// - Parameters:
    ///   - confirmStatus: with ``ServerConfiguration/confirmFailedStatus``, called with the message id
    ///     of a FAILED webhook before it is accepted (e.g. `{ try await client.message(id: $0).status }`).
    public init(engine: Engine, configuration: ServerConfiguration, logger: Logger = Logger(label: "sidobot.server"),
                confirmStatus: (@Sendable (String) async throws -> MessageStatus)? = nil) {
        self.engine = engine
        self.configuration = configuration
        self.logger = logger
        self.token = BearerToken(configuration.adminToken)
        intake = WebhookIntake(secretKey: configuration.secretKey, maxBodyBytes: configuration.maxBodyBytes,
                               state: state, counters: counters, logger: logger, engineIntake: engine.intake,
                               confirmStatus: configuration.confirmFailedStatus ? confirmStatus : nil)
    }

    /// Whether the engine started and the service is not shutting down.
    public var isReady: Bool { state.isReady }

    /// The services to run in one `ServiceGroup`, in order: the engine, then the HTTP server
    /// (graceful shutdown runs in reverse order). `onListening` gets the bound port.
    public func services(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> [any Service] {
        [EngineService(engine: engine, state: state, deadline: configuration.shutdownDeadline, logger: logger), application(onListening: onListening)]
    }

    /// The Hummingbird application alone (the engine must be started and stopped by the caller,
    /// who then calls ``markReady()``).
    public func application(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        let routes = RouteTable(router: router)
        addRoutes(to: routes)
        routes.answerOtherMethodsWith405()
        let port = configuration.port
        let intake = intake
        return Application(
            router: router,
            server: .http1(configuration: .init(additionalChannelHandlers: [WebhookFastPath(intake: intake)])),
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "sidobot"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// Every route the server answers, `METHOD /path` (`{id}` for a parameter), in registration
    /// order: what `GET /openapi.json` describes.
    public func routeList() -> [String] {
        let table = RouteTable(router: Router(context: BasicRequestContext.self))
        addRoutes(to: table)
        return table.routes
    }

    /// Marks the engine ready, for callers that run ``application(onListening:)`` themselves.
    public func markReady() { state.markReady() }

    func addRoutes(to router: RouteTable) {
        router.post("/webhooks/sidobe") { request, _ in await self.webhook(request) }
        router.post("/hooks/{name}") { request, context in await self.hook(request, name: context.parameters.get("name") ?? "") }
        router.get("/healthz") { _, _ in Self.json(["status": "ok"]) }
        router.get("/readyz") { _, _ in
            self.state.isReady ? Self.json(["status": "ready"]) : Self.error(.serviceUnavailable, self.state.isStopping ? "shutting down" : "starting: loading rules and replaying the journal")
        }
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: SidobotMetrics.exposition())))
        }
        addAdminRoutes(to: router)
        addStatusPageRoutes(to: router)
        addPlainStatusPageRoute(to: router)
        addOpenAPIRoute(to: router)
    }

    // MARK: Responses

    static let jsonEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let bytes = (try? jsonEncoder.encode(value)) ?? Data(#"{"error":"cannot encode the answer"}"#.utf8)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, headers extra: HTTPFields = [:]) -> Response {
        var response = Self.response(WebhookIntake.error(status, message))
        response.headers.append(contentsOf: extra)
        return response
    }

    /// Reads a body up to the limit; `nil` with the answer to give when it is too large or unreadable.
    func collect(_ request: inout Request) async -> Result<ByteBuffer, BodyProblem> {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > configuration.maxBodyBytes {
            return .failure(.tooLarge)
        }
        do {
            return .success(try await request.collectBody(upTo: configuration.maxBodyBytes))
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            return .failure(.tooLarge)
        } catch {
            return .failure(.unreadable("\(error)"))
        }
    }

    enum BodyProblem: Error {
        case tooLarge
        case unreadable(String)
    }
}

/// Starts the engine when the group runs, and shuts it down (final snapshot) on graceful shutdown.
struct EngineService: Service {
    let engine: Engine
    let state: ServerState
    let deadline: Double
    let logger: Logger

    func run() async throws {
        do {
            try await engine.start()
        } catch {
            throw EngineStartError(error: error)
        }
        state.markReady()
        logger.info("ready")
        // Graceful shutdown (SIGTERM/SIGINT) or cancellation both end in a clean engine shutdown.
        try? await gracefulShutdown()
        state.markStopping()
        logger.info("shutting down: finishing handler runs, then writing the final snapshot", metadata: ["deadline_seconds": "\(deadline)"])
        try await engine.shutdown(deadline: deadline)
    }
}

/// A service that does nothing until graceful shutdown, then runs `onShutdown` (e.g. stops the
/// in-process simulator after the engine stopped).
public struct ShutdownHookService: Service {
    let onShutdown: @Sendable () async -> Void

    public init(onShutdown: @escaping @Sendable () async -> Void) {
        self.onShutdown = onShutdown
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await onShutdown()
    }
}

/// The engine could not start (a corrupt data folder, an unreadable rules folder, a rule that
/// fails to load): a configuration problem, reported on one line.
public struct EngineStartError: Error, Sendable, CustomStringConvertible {
    public var error: EngineError

    public var description: String {
        switch error {
        case .rules(let failures) where failures.count > 1:
            "\(failures.count) rules failed to load: " + failures.map(\.description).joined(separator: "; ")
        case .rules(let failures):
            "a rule failed to load: " + failures.map(\.description).joined(separator: "; ")
        default:
            error.description.replacingOccurrences(of: "\n", with: "; ")
        }
    }
}
