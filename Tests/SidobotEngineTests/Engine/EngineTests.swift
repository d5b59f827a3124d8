import Foundation
import LuaSandbox
import Sidobe
@testable import SidobotEngine
import Testing

@Suite("Engine: rules, events, the Lua API")
struct EngineTests {
    @Test func webhookReachesMatchingHandlersWithTheEventTable() async throws {
        let h = try EngineHarness()
        try h.rule("watch", """
            rule { description = "remembers failures" }
            on("message.failed", function(ev)
              state.set("last", { id = ev.message_id, status = ev.status, event = ev.event_id })
            end)
            on("message.status", function(ev) state.incr("seen") end)
            on("message.success", function(ev) state.set("wrong", true) end)
            """)
        try await h.start()
        let result = try await h.webhook("abc", "FAILED", id: "wh-1")
        #expect(result == .accepted(eventID: "wh-1"))
        let state = await h.state("watch")
        #expect(state["last"] == .object(["id": "abc", "status": "FAILED", "event": "wh-1"]))
        #expect(state["seen"] == .integer(1))
        #expect(state["wrong"] == nil)
        let summaries = await h.engine.ruleSummaries()
        #expect(summaries.map(\.description) == ["remembers failures"])
        #expect(summaries.first?.events == ["message.failed", "message.status", "message.success"])
    }

    @Test func aTimerPayloadIsKeptAsJSONAndOneWithoutAJSONFormIsRefusedAtTheCall() async throws {
        let h = try EngineHarness()
        try h.rule("t", """
            on("hook.go", function(ev)
              timer.after("1m", "later", { n = 7, tags = { "a", "b" }, nested = { ok = true } })
              local ok, err = pcall(timer.after, "1m", "bad", { x = 0/0 })
              state.set("refused", tostring(ok) .. " " .. tostring(err))
            end)
            on("timer.later", function(ev) state.set("payload", ev.payload) end)
            """)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        #expect(await h.engine.pendingTimers().map(\.name) == ["later"])
        let refused = await h.state("t")["refused"]?.stringValue ?? ""
        // LuaSandbox refuses a NaN at the call, naming the argument and the path.
        #expect(refused.hasPrefix("false bad argument #3 to 'timer.after'") && refused.contains("$.x"), "\(refused)")
        // Across a restart (journal replay) and after it fires, the payload is what was given.
        try await h.start()
        await h.engine.advance(by: 61)
        #expect(await h.state("t")["payload"] == .object(["n": .integer(7), "tags": .array(["a", "b"]), "nested": .object(["ok": .bool(true)])]))
    }

    @Test func duplicateWebhookIdIsAcknowledgedButNotProcessedAgain() async throws {
        let h = try EngineHarness()
        try h.rule("count", #"on("message.status", function(ev) state.incr("n") end)"#)
        try await h.start()
        #expect(try await h.webhook("m", "SUCCESS", id: "same") == .accepted(eventID: "same"))
        #expect(try await h.webhook("m", "SUCCESS", id: "same") == .duplicate(eventID: "same"))
        #expect(await h.state("count")["n"] == .integer(1))
    }

    @Test func sendsAreLedgeredAndStatusesMoveOneWay() async throws {
        let h = try EngineHarness()
        try h.rule("flow", """
            on("hook.go", function(ev)
              local msg, err = sidobe.send { phone = "+628123123123", message = "hello", async = true, key = "k1" }
              state.set("sent", msg.id)
              state.set("status", msg.status)
            end)
            on("message.success", function(ev)
              state.set("success_for", ev.message.id)
              state.set("rule_of_message", ev.message.rule)
            end)
            on("message.status", function(ev)
              if ev.stale then state.incr("stale") end
            end)
            """)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: Array("{}".utf8), contentType: "application/json")
        await h.engine.settle()
        let sentID = try #require(await h.state("flow")["sent"]?.stringValue)
        #expect(await h.state("flow")["status"] == "PENDING")
        #expect(h.sidobe.sent.map(\.phone) == ["+628123123123"])
        #expect(await h.engine.message(id: sentID)?.status == "PENDING")

        _ = try await h.webhook(sentID, "SUCCESS")
        #expect(await h.state("flow")["success_for"] == .string(sentID))
        #expect(await h.state("flow")["rule_of_message"] == "flow")
        // A FAILED after SUCCESS, and a repeated SUCCESS, reach only message.status, marked stale.
        _ = try await h.webhook(sentID, "FAILED")
        _ = try await h.webhook(sentID, "SUCCESS")
        #expect(await h.state("flow")["stale"] == .integer(2))
        #expect(await h.engine.message(id: sentID)?.history.map(\.status) == ["PENDING", "SUCCESS"])
        // The trace of the message id shows what happened.
        let traces = await h.engine.traces(for: sentID)
        #expect(traces.count >= 3)
        #expect(traces.first?.rules.first?.actions.contains { $0.hasPrefix("sent TEXT to +628123123123: \(sentID)") } == true)
    }

    @Test func idempotencyKeySendsOnce() async throws {
        let h = try EngineHarness()
        try h.rule("once", """
            on("hook.go", function(ev)
              local a = sidobe.send { phone = "+628123123123", message = "x", key = "order-42" }
              local b = sidobe.send { phone = "+628123123123", message = "x", key = "order-42" }
              state.set("same", a.id == b.id)
            end)
            """)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        #expect(h.sidobe.sent.count == 1)
        #expect(await h.state("once")["same"] == .bool(true))
    }

    @Test func aSyncFailedSendFiresMessageFailedExactlyOnce() async throws {
        let h = try EngineHarness()
        h.sidobe.setDefaultStatus(.failed)
        try h.rule("retry", """
            on("hook.go", function(ev) sidobe.send { phone = "+628123123123", message = "x" } end)
            on("message.failed", function(ev) state.incr("failed") end)
            """)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        #expect(await h.state("retry")["failed"] == .integer(1))
        _ = try await h.webhook("m1", "FAILED")
        #expect(await h.state("retry")["failed"] == .integer(1))
    }

    @Test func sendErrorsReachTheHandlerAsNilErr() async throws {
        let h = try EngineHarness()
        h.sidobe.failNext(.invalidDevice(APIFailure(httpStatus: 400, errorCode: "INVALID_DEVICE_WHATSAPP", message: "device offline")))
        try h.rule("s", """
            on("hook.go", function(ev)
              local msg, err = sidobe.send { phone = "+628123123123", message = "x" }
              state.set("err", err)
              local bad, verr = sidobe.send { phone = "0812", message = "x" }
              state.set("verr", verr)
            end)
            """)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        let state = await h.state("s")
        #expect(state["err"] == .object(["code": "INVALID_DEVICE_WHATSAPP", "message": "device offline", "http_status": .integer(400)]))
        #expect(state["verr"]?["field"] == "phone")
        #expect(state["verr"]?["code"] == "API_VALIDATION_ERROR")
    }

    @Test func timersFireInOrderOnTheVirtualClock() async throws {
        let h = try EngineHarness()
        try h.rule("t", """
            on("hook.go", function(ev)
              timer.after("10m", "b", { n = 2 })
              timer.after("5m", "a", { n = 1 })
              local id = timer.after("7m", "c", {})
              timer.cancel(id)
              state.set("pending", #timer.pending())
            end)
            local function record(ev)
              local log = state.get("log") or {}
              log[#log + 1] = ev.name .. "@" .. (ev.fired_at - ev.payload.n * 0)
              state.set("log", log)
            end
            on("timer.a", record)
            on("timer.b", record)
            on("timer.c", function() state.set("cancelled fired", true) end)
            """)
        try await h.start()
        let start = h.clock.now().seconds
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        #expect(await h.state("t")["pending"] == .integer(2))
        await h.engine.advance(by: 4 * 60)
        #expect(await h.state("t")["log"] == nil)
        await h.engine.advance(by: 7 * 60)
        #expect(await h.state("t")["log"] == .array([.string("a@\(start + 300)"), .string("b@\(start + 600)")]))
        #expect(await h.state("t")["cancelled fired"] == nil)
        #expect(await h.engine.pendingTimers().isEmpty)
    }

    @Test func everyAndCronRunOnSchedule() async throws {
        // 2026-01-01T00:00:00Z
        let h = try EngineHarness()
        try h.rule("s", """
            every("30m", function(ev) state.incr("every") end)
            cron("0 9 * * *", function(ev) state.set("cron_at", ev.scheduled_at) end, { tz = "Asia/Jakarta" })
            """)
        try await h.start()
        await h.engine.advance(by: 3 * 3600)
        #expect(await h.state("s")["every"] == .integer(6))
        // 09:00 in Jakarta (UTC+7) is 02:00 UTC.
        #expect(await h.state("s")["cron_at"] == .integer(1_767_225_600 + 2 * 3600))
    }

    @Test func emitReachesEveryListener() async throws {
        let h = try EngineHarness()
        try h.rule("a", #"on("hook.go", function(ev) emit("escalation.needed", { phone = ev.body.phone }) end)"#)
        try h.rule("b", #"on("escalation.needed", function(ev) state.set("got", ev.payload.phone .. " from " .. ev.from_rule) end)"#)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: Array(#"{"phone":"+62811"}"#.utf8), contentType: "application/json")
        await h.engine.settle()
        #expect(await h.state("b")["got"] == "+62811 from a")
    }

    @Test func hookBodyIsDecodedJSONOrRawText() async throws {
        let h = try EngineHarness()
        try h.rule("h", #"on("hook.in", function(ev) state.set(ev.content_type, ev.body) end)"#)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "in", body: Array(#"{"alerts":[{"fingerprint":"f1"}]}"#.utf8), contentType: "application/json")
        _ = try await h.engine.acceptHook(name: "in", body: Array("disk full".utf8), contentType: "text/plain")
        await h.engine.settle()
        let state = await h.state("h")
        #expect(state["application/json"] == .object(["alerts": .array([.object(["fingerprint": "f1"])])]))
        #expect(state["text/plain"] == "disk full")
    }

    @Test func aFailingRuleIsDeadLetteredWithFileAndLineAndOthersGoOn() async throws {
        let h = try EngineHarness()
        try h.rule("broken", """
            on("message.failed", function(ev)
              local x = nil
              return x.field
            end)
            """)
        try h.rule("fine", #"on("message.failed", function(ev) state.set("ok", true) end)"#)
        try await h.start()
        _ = try await h.webhook("m", "FAILED", id: "wh-broken")
        #expect(await h.state("fine")["ok"] == .bool(true))
        let letters = await h.engine.deadLetters()
        #expect(letters.count == 1)
        #expect(letters.first?.rule == "broken")
        #expect(letters.first?.reason == "error")
        #expect(letters.first?.error.contains("broken.lua:3:") == true)
        #expect(letters.first?.event.id == "wh-broken")
        let trace = try #require(await h.engine.traces(for: "wh-broken").first)
        #expect(Set(trace.rules.map { "\($0.rule):\($0.outcome)" }) == ["broken:error", "fine:ran"])
    }

    @Test func aRuleThatKeepsAbortingIsQuarantined() async throws {
        let h = try EngineHarness()
        h.configuration.quarantineAfter = 2
        h.configuration.limits.instructionsPerRun = 100_000
        try h.rule("loop", #"on("message.failed", function(ev) while true do end end)"#)
        try await h.start()
        _ = try await h.webhook("m", "FAILED")
        _ = try await h.webhook("m", "FAILED")
        let trace = try await h.webhook("m", "FAILED")
        guard case .accepted(let third) = trace else { Issue.record("not accepted"); return }
        let summary = try #require(await h.engine.ruleSummaries().first)
        #expect(summary.aborts == 2)
        #expect(summary.quarantined)
        #expect(await h.engine.traces(for: third).first?.rules.first?.outcome == .skipped)
        #expect(await h.engine.deadLetters().map(\.reason) == ["limit", "limit"])
    }

    @Test func ruleLoadErrorsNameFileAndLine() async throws {
        let h = try EngineHarness()
        try h.rule("bad", "on(\"message.failed\", function(ev)\n  state.set(\n end)\n")
        do {
            try await h.start()
            Issue.record("a broken rule loaded")
        } catch let error as EngineError {
            guard case .rules(let errors) = error else { Issue.record("got \(error)"); return }
            #expect(errors.count == 1)
            #expect(errors.first?.path.hasSuffix("bad.lua") == true)
            #expect(errors.first?.line == 3)
        }
    }

    @Test func handlersCannotBeRegisteredInsideHandlers() async throws {
        let h = try EngineHarness()
        try h.rule("r", #"on("hook.go", function(ev) on("message.failed", function() end) end)"#)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        #expect(await h.engine.deadLetters().first?.error.contains("can only be called when the rule loads") == true)
    }

    @Test func dryRunRecordsWithoutSending() async throws {
        let h = try EngineHarness()
        h.configuration.dryRun = true
        try h.rule("d", #"on("hook.go", function(ev) local m = sidobe.send { phone = "+628123123123", message = "x" } state.set("status", m.status) end)"#)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        #expect(h.sidobe.sent.isEmpty)
        #expect(await h.state("d")["status"] == "DRY_RUN")
        #expect(await h.engine.messages().map(\.status) == ["DRY_RUN"])
    }
}
