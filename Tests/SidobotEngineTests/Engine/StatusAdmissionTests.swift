import Foundation
import LuaSandbox
import Sidobe
@testable import SidobotEngine
import Testing

/// What a status event does to the ledger, decided by the engine when it takes the event in.
@Suite("Engine: status admission")
struct StatusAdmissionTests {
    static func record(_ status: LedgerStatus, history: [String] = []) -> MessageRecord {
        var record = MessageRecord(id: "m1", phone: "+628123123123", message: "hi", imageURL: nil, documentURL: nil, documentName: nil,
                                   messageType: .text, rule: "r", key: nil, attempt: 1, resendOf: nil, status: status, sentAt: 0, source: .send)
        for event in history { record.history.append(.init(status: status, at: 0, source: .webhook, event: event)) }
        return record
    }

    static let failed = MessageStatusEvent(messageID: "m1", status: .failed, messageType: .text, sendAt: "", createdAt: "")

    @Test func admission() {
        var ledger = MessageLedger()
        #expect(ledger.admission(of: Self.failed, eventID: "e1") == .unknownMessage)
        ledger.insert(Self.record(.pending))
        #expect(ledger.admission(of: Self.failed, eventID: "e1") == .moves)
        ledger.insert(Self.record(.failed, history: ["e1"]))
        #expect(ledger.admission(of: Self.failed, eventID: "e1") == .applied)
        #expect(ledger.admission(of: Self.failed, eventID: "e2") == .stale)
    }

    @Test("an async send's FAILED webhook that arrives before the send's answer is held, then moves the message: one message.failed, with ev.message")
    func aWebhookRacingAnAsyncSendsAnswerMovesTheMessage() async throws {
        let h = try EngineHarness()
        try h.rule("r", """
            on("hook.go", function(ev) sidobe.send { phone = "+628123123123", message = "x", async = true } end)
            on("message.failed", function(ev)
              state.incr("failed")
              if ev.message then state.set("status_seen", ev.message.status) end
            end)
            on("message.status", function(ev) if ev.stale then state.incr("stale") end end)
            """)
        try await h.start()
        let engine = h.engine!
        h.sidobe.beforeAnswer { sent in
            let webhook = WebhookEvent(id: "early-\(sent.id)", createdAt: "2026-01-01T00:00:00+07:00", payload: .messageStatus(
                MessageStatusUpdate(whatsappMessageID: sent.id, status: .failed, sendAt: "2026-01-01T00:00:00+07:00", messageType: .text)))
            _ = try? await engine.acceptWebhook(webhook)
            await engine.drainInbox()
        }
        _ = try await engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await engine.settle()
        let state = await h.state("r")
        #expect(state["failed"] == .integer(1))
        #expect(state["status_seen"] == "FAILED")
        #expect(state["stale"] == nil)
        #expect(await engine.message(id: "m1")?.status == .failed)
        #expect(await engine.traces(for: "early-m1").first?.notes.contains { $0.hasPrefix("held until the sends in flight were answered") } == true)

        // After a restart the ledger is the same: the move is in the journal.
        try await engine.shutdown()
        try await h.start()
        #expect(await h.engine.message(id: "m1")?.history.map(\.status) == [.pending, .failed])
    }
}
