import AsyncHTTPClient
import Foundation
import Logging
import ServiceLifecycle
import Sidobe
import SidobeSimulator
import SidobotEngine
import SidobotServer
import Testing

let testKey = SecretKey("sk_server_test")
let adminToken = "admin-token-for-tests"

/// Quiet unless SIDOBOT_TEST_LOG=debug (or info…).
func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["SIDOBOT_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return logger
}

/// The rule most tests use: counts statuses, keeps hook bodies, sets a timer, sends, fails on demand.
let testRule = """
rule { description = "server test rule" }
on("message.failed", function(ev) state.incr("failed") state.set("last_failed", ev.message_id) end)
on("message.success", function(ev) state.incr("success") end)
on("hook.ping", function(ev) state.set("ping", ev.body) state.incr("pings") timer.after("1h", "later", { from = "ping" }) end)
on("hook.send", function(ev)
  local msg, err = sidobe.send { phone = "+628123123123", message = "hello", async = true }
  if msg then state.set("sent", msg.id) else state.set("send_error", err.code) end
end)
on("hook.boom", function(ev) error("boom on purpose") end)
"""

func makeTempFolder(_ name: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("sidobot-server-\(name)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// An HTTP answer as a test sees it.
struct Answer: Sendable {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONDecoder().decode(type, from: Data(body)) }
    var object: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
}

enum Verb: Sendable { case GET, POST, PUT }

func http(_ method: Verb, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil, timeout: Int64 = 30) async throws -> Answer {
    var request = HTTPClientRequest(url: url)
    switch method {
    case .GET: request.method = .GET
    case .POST: request.method = .POST
    case .PUT: request.method = .PUT
    }
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body { request.body = .bytes(body) }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeout))
    let buffer = try await response.body.collect(upTo: 16 << 20)
    var headers: [String: String] = [:]
    for header in response.headers { headers[header.name.lowercased()] = header.value }
    return Answer(status: Int(response.status.code), headers: headers, body: Array(buffer.readableBytesView))
}

/// A signed webhook body for a message status.
func webhookBody(id: String, messageID: String = "m-1", status: String = "FAILED", event: String = "SEND_MESSAGE_STATUS") -> [UInt8] {
    Array("""
    {"id":"\(id)","event":"\(event)","created_at":"2025-08-11T23:41:43.889693+07:00",\
    "data":{"whatsapp_message_id":"\(messageID)","status":"\(status)","send_at":"2025-08-11T23:41:43+07:00","message_type":"TEXT"}}
    """.utf8)
}

func signed(_ id: String) -> [(String, String)] {
    [("X-Webhook-Signature", WebhookSignature.sign(id: id, secretKey: testKey)), ("Content-Type", "application/json")]
}

let bearer = [("Authorization", "Bearer \(adminToken)")]

/// How many times slower than usual the tests run: `SIDOBOT_TEST_SLOWDOWN`, which
/// `scripts/check-sanitizers` sets (everything takes several times longer under a sanitizer); 1 otherwise.
let testSlowdown = max(1, ProcessInfo.processInfo.environment["SIDOBOT_TEST_SLOWDOWN"].flatMap { Double($0) } ?? 1)

/// Polls `condition` up to `timeout` seconds (no fixed sleeps: it returns as soon as it holds).
func eventually(timeout: Double = 15, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout * testSlowdown)
    while Date() < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// A real server (engine + HTTP on 127.0.0.1:0) against a real simulator, run by a ServiceGroup.
final class Harness: Sendable {
    let rules: String
    let data: String
    let simulator: SidobeSimulator
    let engine: Engine
    let server: SidobotHTTPServer
    let group: ServiceGroup
    let task: Task<Void, any Error>
    let port: Int
    var base: String { "http://127.0.0.1:\(port)" }

    static func start(rule: String = testRule, token: String? = adminToken, data: String? = nil,
                      faults: FaultInjection = .none,
                      client configureClient: (inout SidobeClient.Configuration) -> Void = { _ in },
                      engine configureEngine: (inout EngineConfiguration) -> Void = { _ in },
                      configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> Harness {
        let rules = try makeTempFolder("rules")
        try rule.write(toFile: rules + "/test.lua", atomically: true, encoding: .utf8)
        let dataFolder = try data ?? makeTempFolder("data")
        let simulator = SidobeSimulator(configuration: SimulatorConfiguration(
            secretKey: testKey, webhookURL: nil, webhookRetryBaseDelay: .milliseconds(5), asyncDeliveryDelay: .milliseconds(1)),
            logger: testLogger("simulator"))
        try await simulator.start()
        await simulator.setFaults(faults)
        // As `sidobot run` does it: metrics first, so the engine's gauges are Prometheus ones.
        SidobotMetrics.bootstrap()
        // Wired as `sidobot run` wires it: every 429 the client sees slows the engine's sends.
        let feedback = RateLimitFeedback()
        var clientConfiguration = SidobeClient.Configuration(baseURL: simulator.baseURL, secretKey: testKey)
        clientConfiguration.onRateLimited = { feedback.rateLimited(retryAfter: $0) }
        configureClient(&clientConfiguration)
        let client = SidobeClient(configuration: clientConfiguration)
        var engineConfiguration = EngineConfiguration(rulesFolder: rules, dataFolder: dataFolder)
        engineConfiguration.reloadPollInterval = 0
        configureEngine(&engineConfiguration)
        let engine = Engine(configuration: engineConfiguration, sidobe: client, logger: testLogger("engine"))
        feedback.attach(engine)
        var configuration = ServerConfiguration(host: "127.0.0.1", port: 0, secretKey: testKey, adminToken: token)
        configure(&configuration)
        let server = SidobotHTTPServer(engine: engine, configuration: configuration, logger: testLogger("server"))
        let (ports, sink) = AsyncStream<Int>.makeStream()
        let group = ServiceGroup(services: server.services { port in
            await simulator.setWebhookURL("http://127.0.0.1:\(port)/webhooks/sidobe")
            sink.yield(port)
            sink.finish()
        }, logger: testLogger("group"))
        let task = Task {
            defer { sink.finish() }
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            _ = await task.result
            throw HarnessError.didNotStart
        }
        let harness = Harness(rules: rules, data: dataFolder, simulator: simulator, engine: engine, server: server, group: group, task: task, port: port)
        let ready = try await eventually { try await http(.GET, harness.base + "/readyz").status == 200 }
        guard ready else {
            await harness.stop()
            throw HarnessError.didNotStart
        }
        return harness
    }

    private init(rules: String, data: String, simulator: SidobeSimulator, engine: Engine, server: SidobotHTTPServer,
                 group: ServiceGroup, task: Task<Void, any Error>, port: Int) {
        self.rules = rules
        self.data = data
        self.simulator = simulator
        self.engine = engine
        self.server = server
        self.group = group
        self.task = task
        self.port = port
    }

    /// Graceful shutdown, as SIGTERM does it; returns what the group threw, if anything.
    @discardableResult
    func stop() async -> (any Error)? {
        await group.triggerGracefulShutdown()
        let result = await task.result
        await simulator.stop()
        if case .failure(let error) = result { return error }
        return nil
    }

    func state() async throws -> [String: Any] {
        try await http(.GET, base + "/api/state/test", headers: bearer).object ?? [:]
    }

    func cleanUp() {
        try? FileManager.default.removeItem(atPath: rules)
        try? FileManager.default.removeItem(atPath: data)
    }
}

enum HarnessError: Error { case didNotStart }
