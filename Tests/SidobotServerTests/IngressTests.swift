import Foundation
import Sidobe
import SidobotEngine
import SidobotServer
import Testing

@Suite("webhook and hook ingress")
struct IngressTests {
    @Test func signedWebhookIsAcceptedAndRuns() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        let answer = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-1"), body: webhookBody(id: "ev-1", messageID: "m-9"))
        #expect(answer.status == 200)
        #expect(answer.object?["status"] as? String == "accepted")
        #expect(answer.object?["event_id"] as? String == "ev-1")
        #expect(try await eventually { try await h.state()["last_failed"] as? String == "m-9" })
        #expect(await h.stop() == nil)
    }

    @Test func badOrMissingSignatureIs401AndNothingHappens() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        let wrong = WebhookSignature.sign(id: "ev-2", secretKey: SecretKey("another key"))
        let bad = try await http(.POST, h.base + "/webhooks/sidobe", headers: [("X-Webhook-Signature", wrong)], body: webhookBody(id: "ev-2"))
        #expect(bad.status == 401)
        #expect(bad.object?["error"] as? String == "bad X-Webhook-Signature")
        // Signed for another id than the body's.
        let other = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-other"), body: webhookBody(id: "ev-2"))
        #expect(other.status == 401)
        let missing = try await http(.POST, h.base + "/webhooks/sidobe", body: webhookBody(id: "ev-2"))
        #expect(missing.status == 401)
        #expect(await h.engine.traces(for: "ev-2").isEmpty)
        // The same event, correctly signed, is still new: nothing of the refused ones was recorded.
        let good = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-2"), body: webhookBody(id: "ev-2"))
        #expect(good.object?["status"] as? String == "accepted")
        #expect(await h.stop() == nil)
    }

    @Test func malformedIs400WithTheReasonAndTooLargeIs413() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        let missingField = Array(#"{"id":"ev-3","event":"SEND_MESSAGE_STATUS","created_at":"2025-08-11T23:41:43+07:00","data":{"whatsapp_message_id":"m","send_at":"x","message_type":"TEXT"}}"#.utf8)
        let answer = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-3"), body: missingField)
        #expect(answer.status == 400)
        #expect((answer.object?["error"] as? String)?.contains("data.status") == true)
        let notJSON = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-3"), body: Array("not json".utf8))
        #expect(notJSON.status == 400)
        #expect(notJSON.object?["error"] != nil)
        var big = Array(#"{"id":"ev-4","pad":""#.utf8)
        big.append(contentsOf: [UInt8](repeating: UInt8(ascii: "a"), count: (1 << 20) + 10))
        big.append(contentsOf: Array(#""}"#.utf8))
        let tooLarge = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-4"), body: big)
        #expect(tooLarge.status == 413)
        let hookTooLarge = try await http(.POST, h.base + "/hooks/ping", headers: bearer, body: big)
        #expect(hookTooLarge.status == 413)
        // The server still works after refusing.
        let ok = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-5"), body: webhookBody(id: "ev-5"))
        #expect(ok.status == 200)
        #expect(await h.stop() == nil)
    }

    @Test func duplicateIdsAreAcknowledgedAndProcessedOnce() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        let first = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-dup"), body: webhookBody(id: "ev-dup"))
        let second = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-dup"), body: webhookBody(id: "ev-dup"))
        #expect(first.status == 200 && second.status == 200)
        #expect(first.object?["status"] as? String == "accepted")
        #expect(second.object?["status"] as? String == "duplicate")
        #expect(try await eventually { try await h.state()["failed"] as? Int == 1 })
        await h.engine.settle()
        #expect(try await h.state()["failed"] as? Int == 1)
        let unknown = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-new-type"),
                                     body: webhookBody(id: "ev-new-type", event: "SOMETHING_NEW"))
        #expect(unknown.status == 200)
        #expect(unknown.object?["status"] as? String == "accepted")
        #expect(await h.stop() == nil)
    }

    /// A webhook type Sidobe adds later reaches rules as `sidobe.TYPE` with its data as sent,
    /// once: a redelivery is a duplicate, and it survives a restart like any accepted event.
    @Test func anUnknownSidobeEventReachesRulesByItsName() async throws {
        let h = try await Harness.start(rule: testRule + """

            on("sidobe.MESSAGE_RECEIVED", function(ev)
              state.incr("received")
              state.set("received_data", ev.data)
              state.set("received_name", ev.name)
            end)
            """)
        defer { h.cleanUp() }
        let body = Array(#"{"id":"ev-in-1","event":"MESSAGE_RECEIVED","created_at":"2026-12-06T09:00:00+07:00","data":{"from":"+628123123123","text":"halo","items":[1,2]}}"#.utf8)
        let first = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-in-1"), body: body)
        #expect(first.object?["status"] as? String == "accepted")
        let again = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-in-1"), body: body)
        #expect(again.object?["status"] as? String == "duplicate")
        #expect(try await eventually { try await h.state()["received"] as? Int == 1 })
        await h.engine.settle()
        let state = try await h.state()
        #expect(state["received"] as? Int == 1)
        #expect(state["received_name"] as? String == "sidobe.MESSAGE_RECEIVED")
        let data = try #require(state["received_data"] as? [String: Any])
        #expect(data["from"] as? String == "+628123123123" && data["text"] as? String == "halo")
        #expect(data["items"] as? [Int] == [1, 2])
        #expect(await h.stop() == nil)
    }

    @Test func hooksNeedTheToken() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        let none = try await http(.POST, h.base + "/hooks/ping", body: Array("{}".utf8))
        #expect(none.status == 401)
        #expect(none.headers["www-authenticate"] == "Bearer")
        let wrong = try await http(.POST, h.base + "/hooks/ping", headers: [("Authorization", "Bearer nope")], body: Array("{}".utf8))
        #expect(wrong.status == 401)
        let prefix = try await http(.POST, h.base + "/hooks/ping", headers: [("Authorization", "Bearer \(adminToken)x")], body: Array("{}".utf8))
        #expect(prefix.status == 401)
        let ok = try await http(.POST, h.base + "/hooks/ping", headers: bearer + [("Content-Type", "application/json")],
                                body: Array(#"{"alert":"disk full","level":2}"#.utf8))
        #expect(ok.status == 202)
        let eventID = try #require(ok.object?["event_id"] as? String)
        #expect(try await eventually { (try await h.state()["ping"] as? [String: Any])?["alert"] as? String == "disk full" })
        #expect(await !h.engine.traces(for: eventID).isEmpty)
        let text = try await http(.POST, h.base + "/hooks/ping", headers: bearer + [("Content-Type", "text/plain")], body: Array("plain words".utf8))
        #expect(text.status == 202)
        #expect(try await eventually { try await h.state()["ping"] as? String == "plain words" })
        let badName = try await http(.POST, h.base + "/hooks/bad%20name", headers: bearer, body: [])
        #expect(badName.status == 400)
        #expect(await h.stop() == nil)
    }

    @Test func withoutATokenHooksAndAdminAreOff() async throws {
        let h = try await Harness.start(token: nil)
        defer { h.cleanUp() }
        let hook = try await http(.POST, h.base + "/hooks/ping", headers: [("Authorization", "Bearer anything")], body: Array("{}".utf8))
        #expect(hook.status == 403)
        #expect((hook.object?["error"] as? String)?.contains("SIDOBOT_ADMIN_TOKEN") == true)
        let admin = try await http(.GET, h.base + "/api/rules")
        #expect(admin.status == 403)
        // Webhooks do not need the token.
        let webhook = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-6"), body: webhookBody(id: "ev-6"))
        #expect(webhook.status == 200)
        #expect(await h.stop() == nil)
    }
}
