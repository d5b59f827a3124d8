import Foundation
import LuaSandbox
import Sidobe
@testable import SidobotEngine
import Testing

@Suite("Declarative retry")
struct DeclarativeRetryTests {
    static let rule = """
        on("hook.go", function(ev)
          local msg, err = sidobe.send { phone = "+628111111111", message = "your code is 1234", async = true,
                                         retry = { max = 2, backoff = "exp", base = "1m", jitter = false, escalate_to = ESCALATE } }
          state.set("first", msg.id)
        end)
        on("message.exhausted", function(ev) state.set("exhausted", { id = ev.message_id, attempts = ev.attempts }) end)
        on("message.failed", function(ev) state.incr("failed_events") end)
        """

    func harness(escalateTo: String?) throws -> EngineHarness {
        let h = try EngineHarness()
        let target = escalateTo.map { "\"\($0)\"" } ?? "nil"
        try h.rule("r", Self.rule.replacingOccurrences(of: "ESCALATE", with: target))
        return h
    }

    @Test func failedMessagesAreResentWithBackoffThenEscalated() async throws {
        let h = try harness(escalateTo: "+628222222222")
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        _ = try await h.webhook("m1", "FAILED")
        #expect(h.sidobe.sent.count == 1)
        // First resend after base (1m), second after 2m more.
        await h.engine.advance(by: 59)
        #expect(h.sidobe.sent.count == 1)
        await h.engine.advance(by: 1)
        #expect(h.sidobe.sent.count == 2)
        #expect(await h.engine.message(id: "m2")?.resendOf == "m1")
        #expect(await h.engine.message(id: "m2")?.attempt == 2)
        // The resend's trace says what was sent and is found from the new message id too.
        let resend = try #require(await h.engine.traces(for: "m2").first { $0.eventName == "retry" })
        #expect(resend.notes.last == "resend of m1: sent as m2")
        _ = try await h.webhook("m2", "FAILED")
        await h.engine.advance(by: 120)
        #expect(h.sidobe.sent.count == 3)
        _ = try await h.webhook("m3", "FAILED")
        // Resends used up: escalated to the second number, same content.
        #expect(h.sidobe.sent.map(\.phone) == ["+628111111111", "+628111111111", "+628111111111", "+628222222222"])
        #expect(h.sidobe.sent.last?.text == "your code is 1234")
        #expect(await h.state("r")["exhausted"] == nil)
        #expect(await h.state("r")["failed_events"] == .integer(3))
    }

    @Test func withoutEscalationMessageExhaustedIsRaised() async throws {
        let h = try harness(escalateTo: nil)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        _ = try await h.webhook("m1", "FAILED")
        await h.engine.advance(by: 60)
        _ = try await h.webhook("m2", "FAILED")
        await h.engine.advance(by: 120)
        _ = try await h.webhook("m3", "FAILED")
        #expect(await h.state("r")["exhausted"] == .object(["id": "m3", "attempts": .integer(3)]))
    }

    @Test func aSuccessStopsTheResends() async throws {
        let h = try harness(escalateTo: nil)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        _ = try await h.webhook("m1", "FAILED")
        await h.engine.advance(by: 60)
        _ = try await h.webhook("m2", "SUCCESS")
        await h.engine.advance(by: 3600)
        #expect(h.sidobe.sent.count == 2)
    }

    @Test func pendingResendsSurviveARestart() async throws {
        let h = try harness(escalateTo: nil)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        _ = try await h.webhook("m1", "FAILED")
        try await h.start()  // crash and restart
        await h.engine.advance(by: 60)
        #expect(h.sidobe.sent.count == 2)
    }

    @Test func badRetryOptionsAreNamed() async throws {
        let h = try EngineHarness()
        try h.rule("r", #"on("hook.go", function(ev) sidobe.send { phone = "+628111111111", message = "x", retry = { max = 3, bse = "1m" } } end)"#)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        #expect(await h.engine.deadLetters().first?.error.contains("retry.bse is not a retry option") == true)
    }
}

@Suite("Hot reload")
struct HotReloadTests {
    @Test func aChangedRuleIsSwappedAndKeepsItsTimers() async throws {
        let h = try EngineHarness()
        try h.rule("r", """
            on("hook.go", function(ev) timer.after("10m", "ping", {}) end)
            on("timer.ping", function(ev) state.set("version", 1) end)
            """)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        try h.rule("r", """
            on("hook.go", function(ev) timer.after("10m", "ping", {}) end)
            on("timer.ping", function(ev) state.set("version", 2) end)
            """)
        let report = await h.engine.reloadRules()
        #expect(report.loaded == ["r"])
        await h.engine.advance(by: 600)
        #expect(await h.state("r")["version"] == .integer(2))
    }

    @Test func aBrokenEditKeepsThePreviousVersion() async throws {
        let h = try EngineHarness()
        try h.rule("r", #"on("hook.go", function(ev) state.set("v", "old") end)"#)
        try await h.start()
        try h.rule("r", "on(\"hook.go\", function(ev) state.set(\"v\", \"new\") end\n")
        let report = await h.engine.reloadRules()
        #expect(report.loaded.isEmpty)
        #expect(report.failed.first?.description.hasPrefix("rules/r.lua:") == true)
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        #expect(await h.state("r")["v"] == "old")
    }

    @Test func theRulesFolderIsWatchedOnTheRealClock() async throws {
        let h = try EngineHarness()
        h.configuration.reloadPollInterval = 0.05
        try h.rule("r", #"rule { description = "v1" }"#)
        let engine = Engine(configuration: h.configuration, sidobe: h.sidobe, clock: SystemClock())
        try await engine.start()
        #expect(await engine.ruleSummaries().first?.description == "v1")
        try h.rule("r", #"rule { description = "version 2" }"#)
        // Wait for the watcher to notice (bounded: 10 s), polling the engine's own answer.
        var seen: String?
        for _ in 0..<500 {
            seen = await engine.ruleSummaries().first?.description
            if seen == "version 2" { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(seen == "version 2")
        try await engine.shutdown()
    }

    @Test func aDeletedRuleLosesItsHandlers() async throws {
        let h = try EngineHarness()
        try h.rule("r", #"on("hook.go", function(ev) state.incr("n") end)"#)
        try h.rule("other", #"on("hook.other", function(ev) end)"#)
        try await h.start()
        try FileManager.default.removeItem(atPath: h.rulesFolder + "/r.lua")
        let report = await h.engine.reloadRules()
        #expect(report.removed == ["r"])
        #expect(report.unchanged == ["other"])
        let id = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        #expect(await h.state("r")["n"] == nil)
        #expect(await h.engine.traces(for: id).first?.notes == ["no rule listens for hook.go"])
    }
}

@Suite("Lua API details")
struct LuaAPITests {
    @Test func stateTTLKeysDelAndIncr() async throws {
        let h = try EngineHarness()
        try h.rule("s", """
            on("hook.go", function(ev)
              state.set("a:1", "x", 60)
              state.set("a:2", { nested = { 1, 2 } })
              state.set("b", true)
              state.incr("n", 5)
              state.incr("n")
              state.set("keys", state.keys("a:"))
              state.del("b")
            end)
            """)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        var state = await h.state("s")
        #expect(state["keys"] == .array(["a:1", "a:2"]))
        #expect(state["n"] == .integer(6))
        #expect(state["b"] == nil)
        #expect(state["a:2"] == .object(["nested": .array([.integer(1), .integer(2)])]))
        await h.engine.advance(by: 61)
        state = await h.state("s")
        #expect(state["a:1"] == nil)
    }

    @Test func timerAtWithSkipPolicyIsSkippedAfterDowntime() async throws {
        let h = try EngineHarness()
        try h.rule("t", """
            on("hook.go", function(ev)
              timer.at(now() + 60, "skip_me", {}, { late = "skip", max_lateness = "5m" })
              timer.at(now() + 60, "fire_me", {})
            end)
            on("timer.skip_me", function(ev) state.set("skipped_fired", true) end)
            on("timer.fire_me", function(ev) state.set("late_by", ev.fired_at - ev.due) end)
            """)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        // The engine is down for an hour: the clock moves without it.
        h.clock.set(h.clock.now() + .seconds(3600))
        try await h.start()
        await h.engine.advance(by: 1)
        #expect(await h.state("t")["skipped_fired"] == nil)
        #expect(await h.state("t")["late_by"] == .integer(3540))
    }

    @Test func cronCatchUpRunsOnceAfterDowntime() async throws {
        let h = try EngineHarness()
        try h.rule("c", """
            cron("*/10 * * * *", function(ev) state.incr("runs") end, { catch_up = true })
            """)
        try await h.start()
        await h.engine.advance(by: 600)
        #expect(await h.state("c")["runs"] == .integer(1))
        h.clock.set(h.clock.now() + .seconds(3600))
        try await h.start()
        #expect(await h.state("c")["runs"] == .integer(2))
    }

    @Test func engineStartAndResendAndCheckNumberAndMessage() async throws {
        let h = try EngineHarness()
        try h.rule("e", """
            on("engine.start", function(ev) state.incr("starts") end)
            on("hook.go", function(ev)
              local first = sidobe.send { phone = "+628123123123", message = "hello" }
              local again = sidobe.resend(first.id, { phone = "+628999990000" })
              state.set("again_attempt", again.attempt)
              state.set("registered", sidobe.check_number("+628123123123"))
              state.set("not_registered", sidobe.check_number("+628999990000"))
              local detail = sidobe.message(first.id)
              state.set("detail_status", detail.status)
              local missing, err = sidobe.message("nope")
              state.set("missing_code", err.code)
            end)
            """)
        try await h.start()
        #expect(await h.state("e")["starts"] == .integer(1))
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        let state = await h.state("e")
        #expect(state["again_attempt"] == .integer(2))
        #expect(h.sidobe.sent.map(\.phone) == ["+628123123123", "+628999990000"])
        #expect(state["registered"] == .bool(true))
        #expect(state["not_registered"] == .bool(false))
        #expect(state["detail_status"] == "SUCCESS")
        #expect(state["missing_code"] == "NOT_FOUND")
    }

    @Test func jsonAndNowAndLog() async throws {
        let h = try EngineHarness()
        try h.rule("j", """
            on("hook.go", function(ev)
              local text = json.encode({ b = 1.5, a = { 1, 2 }, s = "é\\n" })
              state.set("text", text)
              state.set("back", json.decode(text))
              local bad, err = json.decode("{oops")
              state.set("err", err)
              state.set("now", now())
              log.info("hello", { n = 1 })
            end)
            """)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        let state = await h.state("j")
        #expect(state["text"] == #"{"a":[1,2],"b":1.5,"s":"é\n"}"#)
        #expect(state["back"] == .object(["a": .array([.integer(1), .integer(2)]), "b": .double(1.5), "s": "é\n"]))
        #expect(state["err"]?.stringValue?.hasPrefix("json.decode: expected a string key") == true)
        #expect(state["now"] == .integer(1_767_225_600))
    }
}
