import Foundation
import Sidobe
import Testing

@Suite("Webhook event decoding")
struct WebhookEventTests {
    /// The seed's SEND_MESSAGE_STATUS example, verbatim.
    static let seedExample = """
        {
            "id": "816332ca-b91a-469d-b4f6-9a17f440c05e",
            "event": "SEND_MESSAGE_STATUS",
            "created_at": "2025-08-11T23:41:43.889693+07:00",
            "data": {
                "whatsapp_message_id": "4da0cb47-9059-4074-ae64-8a1c659693a0",
                "status": "SUCCESS",
                "send_at": "2025-08-11T23:41:43+07:00",
                "message_type": "TEXT"
            }
        }
        """

    @Test func decodesTheSeedExample() throws {
        let event = try WebhookEvent.decode(Array(Self.seedExample.utf8))
        #expect(event.id == "816332ca-b91a-469d-b4f6-9a17f440c05e")
        #expect(event.type == "SEND_MESSAGE_STATUS")
        #expect(event.createdAt == "2025-08-11T23:41:43.889693+07:00")
        guard case .messageStatus(let update) = event.payload else {
            Issue.record("expected a message status, got \(event.payload)")
            return
        }
        #expect(update.whatsappMessageID == "4da0cb47-9059-4074-ae64-8a1c659693a0")
        #expect(update.status == .success)
        #expect(update.messageType == .text)
        #expect(update.sendAt == "2025-08-11T23:41:43+07:00")
        // 23:41:43 at +07:00 is 16:41:43 UTC.
        #expect(update.sendAtDate == Date(timeIntervalSince1970: 1_754_930_503))
        let created = try #require(event.createdAtDate)
        #expect(abs(created.timeIntervalSince1970 - 1_754_930_503.889693) < 0.000_01)
    }

    @Test func unknownEventTypesDecodeAsUnknown() throws {
        let body = #"{"id":"e1","event":"DEVICE_DISCONNECTED","created_at":"2025-08-11T23:41:43+07:00","data":{"anything":[1,2]}}"#
        let event = try WebhookEvent.decode(Array(body.utf8))
        #expect(event.payload == .unknown(type: "DEVICE_DISCONNECTED"))
        #expect(event.id == "e1")
    }

    @Test func unknownStatusAndTypeValuesDoNotFail() throws {
        let body = #"{"id":"e2","event":"SEND_MESSAGE_STATUS","created_at":"x","data":{"whatsapp_message_id":"m","status":"READ","send_at":"x","message_type":"VIDEO"}}"#
        let event = try WebhookEvent.decode(Array(body.utf8))
        guard case .messageStatus(let update) = event.payload else {
            Issue.record("expected a message status")
            return
        }
        #expect(update.status == .unknown("READ"))
        #expect(update.messageType == .unknown("VIDEO"))
        #expect(update.status.rawValue == "READ")
    }

    @Test(arguments: [
        (#"{"event":"SEND_MESSAGE_STATUS","created_at":"x","data":{}}"#, "id is missing"),
        (#"{"id":"e","event":"SEND_MESSAGE_STATUS","created_at":"x"}"#, "data is missing"),
        (#"{"id":"e","event":"SEND_MESSAGE_STATUS","created_at":"x","data":{"status":"SUCCESS","send_at":"x","message_type":"TEXT"}}"#, "data.whatsapp_message_id is missing"),
        (#"{"id":"e","event":"SEND_MESSAGE_STATUS","created_at":"x","data":{"whatsapp_message_id":"m","status":3,"send_at":"x","message_type":"TEXT"}}"#, "data.status must be a string"),
        (#"{"id":7,"event":"SEND_MESSAGE_STATUS","created_at":"x","data":{}}"#, "id must be a string"),
        (#"{"id":null,"event":"SEND_MESSAGE_STATUS","created_at":"x","data":{}}"#, "id is null"),
        (#"[1,2]"#, "body is not a JSON object"),
        (#"{"id": "#, "body is not valid JSON"),
        ("", "body is not valid JSON"),
    ])
    func malformedBodiesNameTheField(body: String, expected: String) {
        do {
            _ = try WebhookEvent.decode(Array(body.utf8))
            Issue.record("decoded \(body)")
        } catch {
            #expect(error.description.hasPrefix(expected), "got: \(error.description)")
        }
    }

    @Test func roundTripsThroughJSON() throws {
        let event = try WebhookEvent.decode(Array(Self.seedExample.utf8))
        let encoded = try JSONEncoder().encode(event)
        #expect(try WebhookEvent.decode(Array(encoded)) == event)
    }
}

@Suite("ISO 8601 timestamps")
struct ISO8601TimestampTests {
    @Test func parsesSidobeForms() {
        #expect(ISO8601Timestamp.parse("1970-01-01T00:00:00Z") == Date(timeIntervalSince1970: 0))
        #expect(ISO8601Timestamp.parse("1970-01-01T07:00:00+07:00") == Date(timeIntervalSince1970: 0))
        #expect(ISO8601Timestamp.parse("1969-12-31T19:00:00-05:00") == Date(timeIntervalSince1970: 0))
        #expect(ISO8601Timestamp.parse("2024-02-29T12:00:00.5Z") == Date(timeIntervalSince1970: 1_709_208_000.5))
    }

    @Test(arguments: ["", "2025-08-11", "2025-08-11T23:41:43", "2025-13-11T23:41:43Z", "2025-08-11T23:41:43.Z", "2025-08-11T23:41:43+0700x", "2025-08-11T25:00:00Z"])
    func rejectsMalformed(text: String) {
        #expect(ISO8601Timestamp.parse(text) == nil)
    }

    @Test func formatsLikeSidobe() {
        let date = Date(timeIntervalSince1970: 1_754_930_503.889693)
        #expect(ISO8601Timestamp.format(date, offsetSeconds: 7 * 3600) == "2025-08-11T23:41:43.889693+07:00")
        #expect(ISO8601Timestamp.format(date, offsetSeconds: 7 * 3600, fractional: false) == "2025-08-11T23:41:43+07:00")
        #expect(ISO8601Timestamp.format(Date(timeIntervalSince1970: 0), offsetSeconds: -5 * 3600, fractional: false) == "1969-12-31T19:00:00-05:00")
        let back = ISO8601Timestamp.parse(ISO8601Timestamp.format(date, offsetSeconds: 3600))!
        #expect(abs(back.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000_01)
    }
}
