import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import Sidobe
@testable import SidobeSimulator
import Testing

/// The key of the seed's curl examples.
let seedKey = SecretKey("123123")

/// A quiet logger for tests (set SIMULATOR_TEST_LOG=debug to see everything).
let testLogger: Logger = {
    var logger = Logger(label: "sidobe.simulator.test")
    logger.logLevel = ProcessInfo.processInfo.environment["SIMULATOR_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return logger
}()

/// A configuration with no waiting: zero delays, fast retries.
func fastConfiguration(
    webhookURL: String? = nil, faults: FaultInjection = FaultInjection(), maxAttempts: Int = 5
) -> SimulatorConfiguration {
    SimulatorConfiguration(
        secretKey: seedKey, webhookURL: webhookURL, webhookMaxAttempts: maxAttempts,
        webhookRetryBaseDelay: .milliseconds(5), webhookTimeout: .seconds(5),
        asyncDeliveryDelay: .zero, faults: faults
    )
}

/// Runs `body` against a started simulator, and stops it afterwards whatever happens.
func withSimulator<T>(
    _ configuration: SimulatorConfiguration, _ body: (SidobeSimulator) async throws -> T
) async throws -> T {
    try await withSimulator(SidobeSimulator(configuration: configuration, logger: testLogger), body)
}

/// Starts `simulator`, runs `body`, and stops it afterwards whatever happens.
func withSimulator<T>(
    _ simulator: SidobeSimulator, _ body: (SidobeSimulator) async throws -> T
) async throws -> T {
    try await simulator.start()
    do {
        let result = try await body(simulator)
        await simulator.stop()
        return result
    } catch {
        await simulator.stop()
        throw error
    }
}

/// An HTTP answer as a test sees it.
struct HTTPAnswer: Sendable {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSONValue? { JSONValue.parse(body) }
    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// One raw HTTP request with AsyncHTTPClient.
func http(
    _ method: String, _ url: String, headers: [String: String] = [:], body: String? = nil
) async throws -> HTTPAnswer {
    var request = HTTPClientRequest(url: url)
    request.method = .init(rawValue: method)
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body { request.body = .bytes(Array(body.utf8)) }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let bytes = try await response.body.collect(upTo: 1 << 20)
    var answerHeaders: [String: String] = [:]
    for header in response.headers { answerHeaders[header.name.lowercased()] = header.value }
    return HTTPAnswer(status: Int(response.status.code), headers: answerHeaders, body: Array(bytes.readableBytesView))
}

/// `POST base/path` with the seed's headers (`X-Secret-Key`, `Content-Type: application/json`).
func post(_ simulator: SidobeSimulator, _ path: String, _ body: String, key: String? = "123123") async throws -> HTTPAnswer {
    var headers = ["Content-Type": "application/json"]
    if let key { headers["X-Secret-Key"] = key }
    return try await http("POST", "\(simulator.baseURL)/\(path)", headers: headers, body: body)
}

/// `GET base/path` with the seed's key.
func get(_ simulator: SidobeSimulator, _ path: String, key: String? = "123123") async throws -> HTTPAnswer {
    try await http("GET", "\(simulator.baseURL)/\(path)", headers: key.map { ["X-Secret-Key": $0] } ?? [:])
}

/// The JSON "shape" of a value: its keys (recursively) and their types, values left out.
indirect enum Shape: Equatable, CustomStringConvertible {
    case string, bool, number, null
    case object([String: Shape])
    case array

    init(_ value: JSONValue) {
        switch value {
        case .string: self = .string
        case .bool: self = .bool
        case .number: self = .number
        case .null: self = .null
        case .array: self = .array
        case .object(let members): self = .object(members.mapValues(Shape.init))
        }
    }

    var description: String {
        switch self {
        case .string: "string"
        case .bool: "bool"
        case .number: "number"
        case .null: "null"
        case .array: "array"
        case .object(let members):
            "{" + members.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}

/// The seed's documented shapes.
enum SeedShapes {
    static let sent = Shape.object([
        "is_success": .bool,
        "data": .object(["id": .string, "message_type": .string, "status": .string, "is_async": .bool]),
    ])
    static let detail = Shape.object([
        "is_success": .bool,
        "data": .object([
            "id": .string,
            "whatsapp_device": .object(["id": .string, "phone": .string, "name": .string]),
            "message_type": .string, "status": .string, "is_async": .bool,
        ]),
    ])
    static let checkNumber = Shape.object(["is_success": .bool, "data": .object(["is_registered": .bool])])
    static let error = Shape.object(["is_success": .bool, "message": .string, "error_code": .string])
    static let errorWithoutCode = Shape.object(["is_success": .bool, "message": .string])
    static let webhook = Shape.object([
        "id": .string, "event": .string, "created_at": .string,
        "data": .object(["whatsapp_message_id": .string, "status": .string, "send_at": .string, "message_type": .string]),
    ])
}

/// Whether `text` is a lowercase UUID.
func isLowercaseUUID(_ text: String?) -> Bool {
    guard let text, UUID(uuidString: text) != nil else { return false }
    return text == text.lowercased()
}

/// Awaits `operation`, failing with a clear error after `timeout`.
func within<T: Sendable>(_ timeout: Duration, _ what: String, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw TimeoutError(what: what, timeout: timeout)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    var what: String
    var timeout: Duration
    var description: String { "timed out after \(timeout) waiting for \(what)" }
}

/// A tiny webhook receiver on 127.0.0.1, port 0: records every request and answers from a script
/// (then 200), optionally after a delay.
final class WebhookReceiver: Sendable {
    struct Received: Sendable {
        var headers: [String: String]
        var body: [UInt8]
        var signature: String? { headers["x-webhook-signature"] }
        var event: WebhookEvent? { try? WebhookEvent.decode(body) }
        var json: JSONValue? { JSONValue.parse(body) }
    }

    struct Reply: Sendable {
        var status: Int
        var delay: Duration = .zero
    }

    private let script: Locked<[Reply]>
    private let received = Locked<[Received]>([])
    private let stream: AsyncStream<Received>
    private let sink: AsyncStream<Received>.Continuation
    private let task = Locked<Task<Void, any Error>?>(nil)
    private let address = Locked<String?>(nil)

    /// The receiver's URL once started.
    var url: String? { address.withLock { $0 } }

    init(replies: [Reply] = []) {
        script = Locked(replies)
        (stream, sink) = AsyncStream<Received>.makeStream()
    }

    convenience init(statuses: [Int]) {
        self.init(replies: statuses.map { Reply(status: $0) })
    }

    /// Starts the receiver and returns its URL.
    func start() async throws -> String {
        let (ports, portSink) = AsyncStream<Int>.makeStream()
        let responder = CallbackResponder<BasicRequestContext> { [script, received, sink] request, _ in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
            let item = Received(headers: headers, body: Array(body.readableBytesView))
            let reply = script.withLock { $0.isEmpty ? Reply(status: 200) : $0.removeFirst() }
            if reply.delay > .zero { try await Task.sleep(for: reply.delay) }
            received.withLock { $0.append(item) }
            sink.yield(item)
            return Response(status: .init(code: reply.status))
        }
        let app = Application(
            responder: responder,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                portSink.yield(channel.localAddress?.port ?? 0)
                portSink.finish()
            },
            logger: testLogger
        )
        task.withLock { $0 = Task { try await app.run() } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw TimeoutError(what: "receiver start", timeout: .zero) }
        let url = "http://127.0.0.1:\(port)/webhooks/sidobe"
        address.withLock { $0 = url }
        return url
    }

    func stop() async {
        sink.finish()
        let task = task.withLock { $0 }
        task?.cancel()
        _ = await task?.result
    }

    /// Every request answered so far.
    var requests: [Received] { received.withLock { $0 } }

    /// Waits for the next `count` requests (in arrival order), failing after `timeout`.
    func next(_ count: Int = 1, timeout: Duration = .seconds(10)) async throws -> [Received] {
        let stream = stream
        return try await within(timeout, "\(count) webhook request(s)") {
            var items: [Received] = []
            for await item in stream {
                items.append(item)
                if items.count == count { break }
            }
            return items
        }
    }
}

/// Runs `body` with a started receiver and a started simulator whose webhook URL points at it.
func withReceiver<T>(
    _ receiver: WebhookReceiver,
    configuration: (String) -> SimulatorConfiguration,
    _ body: (SidobeSimulator, WebhookReceiver) async throws -> T
) async throws -> T {
    try await withReceiver(receiver, simulator: { SidobeSimulator(configuration: configuration($0), logger: testLogger) }, body)
}

/// Runs `body` with a started receiver and a started simulator made for the receiver's URL.
func withReceiver<T>(
    _ receiver: WebhookReceiver,
    simulator makeSimulator: (String) -> SidobeSimulator,
    _ body: (SidobeSimulator, WebhookReceiver) async throws -> T
) async throws -> T {
    let url = try await receiver.start()
    do {
        let result = try await withSimulator(makeSimulator(url)) { try await body($0, receiver) }
        await receiver.stop()
        return result
    } catch {
        await receiver.stop()
        throw error
    }
}

/// A one-shot gate: `wait()` suspends until `open()`. Stands in for time passing in a
/// ``SimulatorClock`` so a test decides when a delay is over instead of racing it.
final class Gate: Sendable {
    private struct State {
        var isOpen = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Locked(State())

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resume = state.withLock { state -> Bool in
                if state.isOpen { return true }
                state.waiters.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.isOpen = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
