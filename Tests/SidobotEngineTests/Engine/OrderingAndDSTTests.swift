import Foundation
import LuaSandbox
import Sidobe
@testable import SidobotEngine
import Testing

@Suite("Engine: ordering, media sends, DST")
struct OrderingAndDSTTests {
    @Test func eachRuleSeesEventsInArrivalOrderWhileSendsInterleave() async throws {
        let h = try EngineHarness()
        try h.rule("o", """
            on("hook.n", function(ev)
              local seen = state.get("seen") or {}
              seen[#seen + 1] = ev.body.n
              state.set("seen", seen)
              sidobe.send { phone = "+628123123123", message = "n=" .. ev.body.n, async = true }
              local done = state.get("done") or {}
              done[#done + 1] = ev.body.n
              state.set("done", done)
            end)
            """)
        try await h.start()
        for n in 1...40 {
            _ = try await h.engine.acceptHook(name: "n", body: Array(#"{"n":\#(n)}"#.utf8), contentType: "application/json")
        }
        await h.engine.settle()
        let state = await h.state("o")
        #expect(state["seen"] == .array((1...40).map { .integer(Int64($0)) }))
        #expect(state["done"]?.arrayValue?.count == 40)
        #expect(h.sidobe.sent.count == 40)
    }

    @Test func aBacklogBehindRunsThatPauseKeepsArrivalOrder() async throws {
        let h = try EngineHarness(persistent: false)
        h.configuration.limits.slice = .milliseconds(1)
        // Every 100th event computes past its slice and pauses, so the events behind it line up
        // behind their rule's computing run, start when it ends, and line up again at the next.
        try h.rule("o", """
            on("hook.n", function(ev)
              if ev.body.n % 100 == 0 then
                local x = 0
                for i = 1, 1000000 do x = x + i end
              end
              local seen = state.get("seen") or {}
              seen[#seen + 1] = ev.body.n
              state.set("seen", seen)
            end)
            """)
        try await h.start()
        let count = 1_000
        for n in 1...count {
            _ = try await h.engine.acceptHook(name: "n", body: Array(#"{"n":\#(n)}"#.utf8), contentType: "application/json")
        }
        await h.engine.settle()
        let state = await h.state("o")
        #expect(state["seen"] == .array((1...count).map { .integer(Int64($0)) }))
        let summary = try #require(await h.engine.ruleSummaries().first { $0.name == "o" })
        #expect(summary.limitHits.isEmpty)
    }

    @Test(arguments: [true, false])
    func aWebhookRacingASyncSendsAnswerIsSeenOnce(dispatchedBeforeTheAnswer: Bool) async throws {
        let h = try EngineHarness()
        h.sidobe.setDefaultStatus(.failed)
        try h.rule("r", """
            on("hook.go", function(ev) sidobe.send { phone = "+628123123123", message = "x" } end)
            on("message.failed", function(ev)
              state.incr("failed")
              if ev.message then state.incr("with_message") end
            end)
            on("message.status", function(ev) if ev.stale then state.incr("stale") end end)
            """)
        try await h.start()
        let engine = h.engine!
        // Sidobe's webhook for the sync send arrives before the send's answer (and maybe is dispatched).
        h.sidobe.beforeAnswer { sent in
            let webhook = WebhookEvent(id: "race-\(sent.id)", createdAt: "2026-01-01T00:00:00+07:00", payload: .messageStatus(
                MessageStatusUpdate(whatsappMessageID: sent.id, status: .failed, sendAt: "2026-01-01T00:00:00+07:00", messageType: .text)))
            // Accepted by the intake, which does not need the engine (busy with the send): the
            // engine takes it when it next drains, before the answer or after it.
            _ = try? await engine.acceptWebhook(webhook)
            if dispatchedBeforeTheAnswer { await engine.drainInbox() }
        }
        _ = try await engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await engine.settle()
        let state = await h.state("r")
        // Once, with the ledger record, either way: dispatched while the send is still out, the
        // webhook is held until the answer is read, and is then stale; dispatched after it, stale.
        #expect(state["with_message"] == .integer(1))
        #expect(state["failed"] == .integer(1))
        #expect(state["stale"] == .integer(1))
        // A webhook accepted after the answer, for the same status, is stale.
        h.sidobe.beforeAnswer(nil)
        _ = try await h.webhook("m1", "FAILED", id: "late")
        #expect(await h.state("r")["with_message"] == .integer(1))
    }

    @Test func imageAndDocumentSendsCarryTheirFields() async throws {
        let h = try EngineHarness()
        try h.rule("m", """
            on("hook.go", function(ev)
              local img = sidobe.send_image { phone = "+628123123123", image_url = "https://example.com/a.png", message = "look" }
              local doc = sidobe.send_doc { phone = "+628123123123", document_url = "https://example.com/i.pdf", document_name = "Invoice 7" }
              local bad, err = sidobe.send_doc { phone = "+628123123123", document_url = "https://example.com/i.exe", document_name = "x" }
              state.set("types", { img.message_type, doc.message_type })
              state.set("err_field", err.field)
            end)
            """)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        #expect(await h.state("m")["types"] == .array(["IMAGE", "DOCS"]))
        #expect(await h.state("m")["err_field"] == "document_url")
        #expect(h.sidobe.sent.map(\.content) == [
            .image(url: "https://example.com/a.png", caption: "look"),
            .document(url: "https://example.com/i.pdf", name: "Invoice 7", caption: nil),
        ])
        let doc = try #require(await h.engine.messages().first { $0.messageType == "DOCS" })
        #expect(doc.documentName == "Invoice 7")
    }

    /// Europe/Berlin springs forward on 2026-03-29 (02:00 → 03:00) and falls back on 2026-10-25.
    @Test(arguments: [
        ("2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"),  // spring forward: 02:30 does not exist, runs at 03:00 CEST
        ("2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z"),  // fall back: 02:30 happens twice, runs once (CEST)
    ])
    func aDailyJobAtHalfPastTwoRunsOnceOnTransitionDays(start: String, expectedUTC: String) async throws {
        let startTime = try #require(ISO8601Timestamp.parse(start))
        let h = try EngineHarness(start: UnixTime(startTime))
        try h.rule("d", """
            cron("30 2 * * *", function(ev)
              local runs = state.get("runs") or {}
              runs[#runs + 1] = ev.scheduled_at
              state.set("runs", runs)
            end, { tz = "Europe/Berlin" })
            """)
        try await h.start()
        await h.engine.advance(by: 24 * 3600)
        let expected = try #require(ISO8601Timestamp.parse(expectedUTC))
        #expect(await h.state("d")["runs"] == .array([.integer(Int64(expected.timeIntervalSince1970))]))
    }

    @Test func newYorkAndJakartaSchedules() async throws {
        // New York springs forward on 2026-03-08; Jakarta has no DST.
        let start = try #require(ISO8601Timestamp.parse("2026-03-07T12:00:00Z"))
        let h = try EngineHarness(start: UnixTime(start))
        try h.rule("z", """
            cron("30 2 * * *", function(ev) state.set("ny", ev.scheduled_at) end, { tz = "America/New_York" })
            cron("0 9 * * *", function(ev) state.incr("jakarta") end, { tz = "Asia/Jakarta" })
            """)
        try await h.start()
        await h.engine.advance(by: 24 * 3600)
        // 2026-03-08 02:30 does not exist in New York: it runs at 03:00 EDT = 07:00 UTC.
        let expected = try #require(ISO8601Timestamp.parse("2026-03-08T07:00:00Z"))
        #expect(await h.state("z")["ny"] == .integer(Int64(expected.timeIntervalSince1970)))
        #expect(await h.state("z")["jakarta"] == .integer(1))
    }
}
