import Foundation
import Sidobe
@testable import SidobeSimulator
import Testing

/// The seed's curl examples, replayed against the simulator: same paths, bodies and headers,
/// answers of the documented shape.
@Suite("API: the seed's examples")
struct SeedExampleTests {
    @Test("send-message answers the documented shape with a lowercase UUID and SUCCESS")
    func sendMessage() async throws {
        try await withSimulator(fastConfiguration()) { simulator in
            let answer = try await post(simulator, "send-message", """
                {
                    "phone": "+628123123123",
                    "message": "example message"
                }
                """)
            #expect(answer.status == 200)
            #expect(answer.header("content-type") == "application/json")
            let json = try #require(answer.json)
            #expect(Shape(json) == SeedShapes.sent)
            #expect(json["is_success"] == .bool(true))
            #expect(isLowercaseUUID(json["data"]?["id"]?.stringValue))
            #expect(json["data"]?["message_type"] == .string("TEXT"))
            #expect(json["data"]?["status"] == .string("SUCCESS"))
            #expect(json["data"]?["is_async"] == .bool(false))
        }
    }

    @Test("send-message-image answers IMAGE")
    func sendImage() async throws {
        try await withSimulator(fastConfiguration()) { simulator in
            let answer = try await post(simulator, "send-message-image", """
                {
                    "phone": "+628123123123",
                    "message": "example message",
                    "image_url": "https://sidobe.com/wp-content/uploads/2023/09/logo-2.png"
                }
                """)
            #expect(answer.status == 200)
            let json = try #require(answer.json)
            #expect(Shape(json) == SeedShapes.sent)
            #expect(json["data"]?["message_type"] == .string("IMAGE"))
            #expect(json["data"]?["status"] == .string("SUCCESS"))
            let stored = try #require(await simulator.messages().first)
            #expect(stored.imageURL == "https://sidobe.com/wp-content/uploads/2023/09/logo-2.png")
            #expect(stored.message == "example message")
        }
    }

    @Test("send-message-doc answers DOCS")
    func sendDocument() async throws {
        try await withSimulator(fastConfiguration()) { simulator in
            let answer = try await post(simulator, "send-message-doc", """
                {
                    "phone": "+628123123123",
                    "message": "example message",
                    "document_url": "https://sidobe.com/example.pdf",
                    "document_name": "Document Name Example"
                }
                """)
            #expect(answer.status == 200)
            let json = try #require(answer.json)
            #expect(Shape(json) == SeedShapes.sent)
            #expect(json["data"]?["message_type"] == .string("DOCS"))
            let stored = try #require(await simulator.messages().first)
            #expect(stored.documentName == "Document Name Example")
            #expect(stored.documentURL == "https://sidobe.com/example.pdf")
        }
    }

    @Test("whatsapp-messages/:id answers the documented shape with the simulated device")
    func messageDetail() async throws {
        try await withSimulator(fastConfiguration()) { simulator in
            let sent = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "example message"}"#)
            let id = try #require(sent.json?["data"]?["id"]?.stringValue)
            let answer = try await get(simulator, "whatsapp-messages/\(id)")
            #expect(answer.status == 200)
            let json = try #require(answer.json)
            #expect(Shape(json) == SeedShapes.detail)
            #expect(json["data"]?["id"] == .string(id))
            #expect(json["data"]?["status"] == .string("SUCCESS"))
            #expect(json["data"]?["message_type"] == .string("TEXT"))
            #expect(json["data"]?["is_async"] == .bool(false))
            let device = SimulatorConfiguration.defaultDevice
            #expect(json["data"]?["whatsapp_device"] == .object([
                "id": .string(device.id), "phone": .string(device.phone), "name": .string(device.name),
            ]))
        }
    }

    @Test("utilities/check-number answers is_registered")
    func checkNumber() async throws {
        try await withSimulator(fastConfiguration(faults: FaultInjection(unregisteredPhones: ["+628999999999"]))) { simulator in
            let answer = try await post(simulator, "utilities/check-number", """
                {
                    "phone": "+628123123123"
                }
                """)
            #expect(answer.status == 200)
            let json = try #require(answer.json)
            #expect(Shape(json) == SeedShapes.checkNumber)
            #expect(json["data"]?["is_registered"] == .bool(true))
            let unregistered = try await post(simulator, "utilities/check-number", #"{"phone": "+628999999999"}"#)
            #expect(unregistered.json?["data"]?["is_registered"] == .bool(false))
        }
    }
}

@Suite("API: errors")
struct APIErrorTests {
    static let invalidKeyBody: JSONValue = .object([
        "is_success": .bool(false),
        "message": .string("The API key provided is invalid. Please make sure to use the secret/public API key that you can obtain from the Dashboard."),
        "error_code": .string("INVALID_API_KEY"),
    ])

    @Test("a wrong or missing X-Secret-Key answers 401 with the seed's INVALID_API_KEY body", arguments: [
        "send-message", "send-message-image", "send-message-doc", "utilities/check-number",
    ])
    func invalidKey(path: String) async throws {
        try await withSimulator(fastConfiguration()) { simulator in
            let wrong = try await post(simulator, path, #"{"phone": "+628123123123", "message": "x"}"#, key: "1234567")
            #expect(wrong.status == 401)
            #expect(wrong.json == Self.invalidKeyBody)
            let missing = try await post(simulator, path, #"{"phone": "+628123123123", "message": "x"}"#, key: nil)
            #expect(missing.status == 401)
            #expect(missing.json == Self.invalidKeyBody)
            let prefix = try await post(simulator, path, #"{"phone": "+628123123123", "message": "x"}"#, key: "123")
            #expect(prefix.status == 401)
            #expect(await simulator.messages().isEmpty)
        }
    }

    @Test("message detail also needs the key")
    func detailNeedsKey() async throws {
        try await withSimulator(fastConfiguration()) { simulator in
            let answer = try await get(simulator, "whatsapp-messages/3c509654-1c28-4f27-81eb-0d129a5d6ecf", key: "nope")
            #expect(answer.status == 401)
            #expect(answer.json == Self.invalidKeyBody)
        }
    }

    struct ValidationCase: Sendable, CustomTestStringConvertible {
        var path: String
        var body: String
        var field: String
        var testDescription: String { "\(path) \(body) → \(field)" }
    }

    static let validationCases: [ValidationCase] = [
        .init(path: "send-message", body: #"{"message": "hi"}"#, field: "phone"),
        .init(path: "send-message", body: #"{"phone": "", "message": "hi"}"#, field: "phone"),
        .init(path: "send-message", body: #"{"phone": "08123123123", "message": "hi"}"#, field: "phone"),
        .init(path: "send-message", body: #"{"phone": "+62 812 3123", "message": "hi"}"#, field: "phone"),
        .init(path: "send-message", body: #"{"phone": "+0812312312", "message": "hi"}"#, field: "phone"),
        .init(path: "send-message", body: #"{"phone": 628123123123, "message": "hi"}"#, field: "phone"),
        .init(path: "send-message", body: #"{"phone": "+628123123123"}"#, field: "message"),
        .init(path: "send-message", body: #"{"phone": "+628123123123", "message": ""}"#, field: "message"),
        .init(path: "send-message", body: #"{"phone": "+628123123123", "message": 42}"#, field: "message"),
        .init(path: "send-message", body: #"{"phone": "+628123123123", "message": "hi", "is_async": "true"}"#, field: "is_async"),
        .init(path: "send-message", body: #"{"phone": "+628123123123", "message": "hi", "is_async": 1}"#, field: "is_async"),
        .init(path: "send-message", body: #"{"phone": "+628123123123", "message": "hi""#, field: "body"),
        .init(path: "send-message", body: #"["+628123123123", "hi"]"#, field: "body"),
        .init(path: "send-message", body: "", field: "body"),
        .init(path: "send-message-image", body: #"{"phone": "+628123123123"}"#, field: "image_url"),
        .init(path: "send-message-image", body: #"{"phone": "+628123123123", "image_url": "https://x.test/a.gif"}"#, field: "image_url"),
        .init(path: "send-message-image", body: #"{"phone": "+628123123123", "image_url": "ftp://x.test/a.png"}"#, field: "image_url"),
        .init(path: "send-message-image", body: #"{"phone": "+628123123123", "image_url": ["https://x.test/a.png"]}"#, field: "image_url"),
        .init(path: "send-message-doc", body: #"{"phone": "+628123123123", "document_name": "n"}"#, field: "document_url"),
        .init(path: "send-message-doc", body: #"{"phone": "+628123123123", "document_url": "https://x.test/a.exe", "document_name": "n"}"#, field: "document_url"),
        .init(path: "send-message-doc", body: #"{"phone": "+628123123123", "document_url": "https://x.test/a.pdf"}"#, field: "document_name"),
        .init(path: "send-message-doc", body: #"{"phone": "+628123123123", "document_url": "https://x.test/a.pdf", "document_name": "  "}"#, field: "document_name"),
        .init(path: "send-message-doc", body: #"{"phone": "+628123123123", "document_url": "https://x.test/a.pdf", "document_name": true}"#, field: "document_name"),
        .init(path: "utilities/check-number", body: #"{}"#, field: "phone"),
        .init(path: "utilities/check-number", body: #"{"phone": "123"}"#, field: "phone"),
        .init(path: "utilities/check-number", body: "not json", field: "body"),
    ]

    @Test("each validation error answers 400 API_VALIDATION_ERROR naming its field", arguments: validationCases)
    func validation(_ testCase: ValidationCase) async throws {
        try await withSimulator(fastConfiguration()) { simulator in
            let answer = try await post(simulator, testCase.path, testCase.body)
            #expect(answer.status == 400)
            let json = try #require(answer.json)
            #expect(Shape(json) == SeedShapes.error)
            #expect(json["is_success"] == .bool(false))
            #expect(json["error_code"] == .string("API_VALIDATION_ERROR"))
            let message = try #require(json["message"]?.stringValue)
            #expect(message.hasPrefix("\(testCase.field) "), "message \"\(message)\" should name \(testCase.field)")
            #expect(await simulator.messages().isEmpty)
        }
    }

    @Test("optional captions and is_async: null are accepted")
    func optionalFields() async throws {
        try await withSimulator(fastConfiguration()) { simulator in
            let image = try await post(simulator, "send-message-image", #"{"phone": "+628123123123", "image_url": "https://x.test/A.JPEG?size=2", "is_async": null}"#)
            #expect(image.status == 200)
            let document = try await post(simulator, "send-message-doc", #"{"phone": "+628123123123", "document_url": "https://x.test/a.xlsx", "document_name": "Report", "extra": 1}"#)
            #expect(document.status == 200)
        }
    }

    @Test("an unknown message id answers 404 with is_success false and a message")
    func unknownMessage() async throws {
        try await withSimulator(fastConfiguration()) { simulator in
            let answer = try await get(simulator, "whatsapp-messages/3c509654-1c28-4f27-81eb-0d129a5d6ecf")
            #expect(answer.status == 404)
            let json = try #require(answer.json)
            #expect(Shape(json) == SeedShapes.errorWithoutCode)
            #expect(json["is_success"] == .bool(false))
            #expect(json["message"]?.stringValue?.contains("3c509654-1c28-4f27-81eb-0d129a5d6ecf") == true)
        }
    }

    @Test("unknown routes answer 404 and wrong methods 405, both as JSON")
    func routes() async throws {
        try await withSimulator(fastConfiguration()) { simulator in
            let unknown = try await post(simulator, "send-sticker", #"{"phone": "+628123123123"}"#)
            #expect(unknown.status == 404)
            #expect(unknown.json?["is_success"] == .bool(false))
            let wrongMethod = try await get(simulator, "send-message")
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.header("allow") == "POST")
            let outside = try await http("GET", "http://127.0.0.1:\(simulator.port ?? 0)/elsewhere")
            #expect(outside.status == 404)
        }
    }
}

@Suite("API: async sends")
struct AsyncSendTests {
    @Test("an async send answers PENDING, then its status becomes SUCCESS")
    func asyncSend() async throws {
        // The async delay ends when the test opens the gate, not after some time.
        let delayOver = Gate()
        var configuration = fastConfiguration()
        configuration.asyncDeliveryDelay = .seconds(1)
        let core = SimulatedSidobeCore(
            configuration: configuration, logger: testLogger,
            clock: SimulatorClock(now: { Date() }, sleep: { _ in await delayOver.wait() })
        )
        try await withSimulator(SidobeSimulator(core: core, logger: testLogger)) { simulator in
            let answer = try await post(simulator, "send-message", #"{"phone": "+628123123123", "message": "hi", "is_async": true}"#)
            #expect(answer.status == 200)
            #expect(answer.json?["data"]?["status"] == .string("PENDING"))
            #expect(answer.json?["data"]?["is_async"] == .bool(true))
            let id = try #require(answer.json?["data"]?["id"]?.stringValue)
            let pending = try await get(simulator, "whatsapp-messages/\(id)")
            #expect(pending.json?["data"]?["status"] == .string("PENDING"))
            delayOver.open()
            try await simulator.waitForIdle()
            let done = try await get(simulator, "whatsapp-messages/\(id)")
            #expect(done.json?["data"]?["status"] == .string("SUCCESS"))
            #expect(done.json?["data"]?["is_async"] == .bool(true))
            let stored = try #require(await simulator.messages().first)
            #expect(stored.statusHistory.map(\.status) == [.pending, .success])
            // No webhook URL: the event is recorded, nothing is delivered.
            #expect(await simulator.webhookEvents().count == 1)
            #expect(await simulator.webhookDeliveries().isEmpty)
        }
    }
}
