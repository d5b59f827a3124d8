import Foundation
import LuaSandbox
import Sidobe
@testable import SidobotEngine
import SidobeTesting
import Synchronization
import Testing

/// Sends across crashes: each path of a send that a kill can interrupt, through the engine. A
/// "kill" drops the engine without shutting it down (as SIGKILL does) and starts a new one on the
/// same data folder; a send whose request is out is held by the test double and never answered.
@Suite("Engine: sends across crashes (intents, implicit keys, in doubt)")
struct SendIntentTests {
    /// One send, its outcome kept in state: the message id, or the error code.
    static let oneSend = """
        on("hook.go", function(ev)
          local m, err = sidobe.send { phone = "+628123123123", message = "your order K9 shipped" }
          state.set("outcome", m and m.id or err.code)
          if err then state.set("may_have_been_delivered", err.may_have_been_delivered == true) end
        end)
        """

    /// Where a run is caught when the engine is killed.
    enum Caught {
        /// In a send whose answer is held (the sends `held` selects): its request is out.
        case inASend(held: @Sendable (SentMessage) -> Bool = { _ in true })
        /// In a status look-up (`sidobe.message`), before the run's next send.
        case inALookup
    }

    /// Starts the engine, sends `hook.go` with `body`, and returns once its run is held where
    /// `caught` says; the held call is never answered. The test then kills the engine by starting
    /// a new one (``EngineHarness/start()``).
    static func startGoAndHold(_ h: EngineHarness, _ caught: Caught, body: [UInt8] = []) async throws {
        try await h.start()
        let held = HeldAnswers()
        switch caught {
        case .inASend(let selected): h.sidobe.beforeAnswer { sent in if selected(sent) { await held.hold() } }
        case .inALookup: h.sidobe.beforeLookup { await held.hold() }
        }
        _ = try await h.engine.acceptHook(name: "go", body: body, contentType: "text/plain")
        await held.waitForHeld(1)
        h.sidobe.beforeAnswer(nil)
        h.sidobe.beforeLookup(nil)
    }

    @Test func aKillWhileTheRequestIsOutLeavesTheSendInDoubtNotSentAgain() async throws {
        let h = try EngineHarness()
        try h.rule("r", Self.oneSend)
        try await Self.startGoAndHold(h, .inASend())

        try await h.start()  // the kill, and the restart: the hook's event is dispatched again
        await h.engine.settle()
        #expect(h.sidobe.sends.count == 1, "the interrupted send reached Sidobe a second time")
        let state = await h.state("r")
        #expect(state["outcome"] == "IN_DOUBT")
        #expect(state["may_have_been_delivered"] == .bool(true))
        let doubt = try #require(await h.engine.messages().first)
        #expect(doubt.status == .inDoubt && doubt.status.rawValue == "UNKNOWN")
        #expect(doubt.phone == "+628123123123" && doubt.message == "your order K9 shipped" && doubt.rule == "r")
        #expect(doubt.history.map(\.source) == [.restart])
        // Its trace (`sidobot trace ID`) is the run dispatched again, which was told.
        let traces = await h.engine.traces(for: doubt.id)
        #expect(traces.contains { trace in trace.rules.contains { $0.actions.contains { $0.contains("in doubt since a restart") } } },
                "\(traces)")

        // A second restart keeps it as it is: in doubt once, not twice, and still not sent.
        try await h.start()
        await h.engine.settle()
        #expect(h.sidobe.sends.count == 1)
        #expect(await h.engine.messages().filter { $0.status == .inDoubt }.count == 1)
    }

    @Test func aKillAfterTheAnswerWasJournaledReturnsTheFirstMessage() async throws {
        let h = try EngineHarness()
        // The first send is answered and journaled; the kill comes while the second is out.
        try h.rule("r", """
            on("hook.go", function(ev)
              local first = sidobe.send { phone = "+628123123123", message = "one" }
              state.set("first", first.id)
              local second, err = sidobe.send { phone = "+628123123123", message = "two" }
              state.set("second", second and second.id or err.code)
            end)
            """)
        try await Self.startGoAndHold(h, .inASend { $0.id != "m1" })

        try await h.start()
        await h.engine.settle()
        #expect(h.sidobe.sent.map(\.text) == ["one", "two"], "a send was made again after the restart")
        let state = await h.state("r")
        #expect(state["first"] == "m1", "the run dispatched again gets the message the first send made")
        #expect(state["second"] == "IN_DOUBT")
    }

    @Test func aKillBeforeTheRequestLeftSendsItOnceAfterTheRestart() async throws {
        let h = try EngineHarness()
        // The run is interrupted in another Sidobe call, before its send.
        try h.rule("r", """
            on("hook.go", function(ev)
              sidobe.message("m-lookup")
              local m, err = sidobe.send { phone = "+628123123123", message = "after the look-up" }
              state.set("outcome", m and m.id or err.code)
            end)
            """)
        try await Self.startGoAndHold(h, .inALookup)

        try await h.start()
        await h.engine.settle()
        #expect(h.sidobe.sent.map(\.text) == ["after the look-up"])
        #expect(await h.state("r")["outcome"] == "m1")
        #expect(await h.engine.messages().map(\.status) == [.success])
    }

    @Test func aHandlerWhoseSendDependsOnTheClockSendsTheNewTextAfterTheRestart() async throws {
        let h = try EngineHarness()
        // Documented (RULES.md, "Sends and restarts"): the implicit key covers the recipient and
        // the content, so a send whose text changed by the time the run is dispatched again is a
        // different send and is made; the one in doubt stays in doubt.
        try h.rule("r", """
            on("hook.go", function(ev)
              local m, err = sidobe.send { phone = "+628123123123", message = "code " .. tostring(now()) }
              state.set("outcome", m and m.id or err.code)
            end)
            """)
        try await Self.startGoAndHold(h, .inASend())

        h.clock.set(h.clock.now() + .seconds(5))
        try await h.start()
        await h.engine.settle()
        #expect(h.sidobe.sends.count == 2)
        #expect(h.sidobe.sent[0].text != h.sidobe.sent[1].text)
        #expect(await h.state("r")["outcome"] == "m2")
        #expect(await h.engine.messages().map(\.status.rawValue).sorted() == ["SUCCESS", "UNKNOWN"])
    }

    @Test func anExplicitKeyInDoubtAnswersEveryLaterSendWithThatKey() async throws {
        let h = try EngineHarness()
        try h.rule("r", """
            on("hook.go", function(ev)
              local m, err = sidobe.send { phone = "+628123123123", message = "confirmation", key = "order-" .. ev.body }
              state.set("outcome:" .. state.incr("runs"), m and m.id or err.code)
            end)
            """)
        try await Self.startGoAndHold(h, .inASend(), body: Array("K9".utf8))

        try await h.start()
        await h.engine.settle()
        // Another event with the same key: still in doubt, still not sent.
        _ = try await h.engine.acceptHook(name: "go", body: Array("K9".utf8), contentType: "text/plain")
        await h.engine.settle()
        #expect(h.sidobe.sends.count == 1)
        // The interrupted event's run again, then the new event's (the interrupted run never got
        // past its send, so it counted nothing).
        let state = await h.state("r")
        #expect(state["outcome:1"] == "IN_DOUBT" && state["outcome:2"] == "IN_DOUBT")
        #expect(state["runs"] == .integer(2))
        #expect(await h.engine.messages().first { $0.key == "order-K9" }?.status == .inDoubt)
    }

    @Test func aSendWhoseAnswerNeverCameIsInDoubtAtOnceAndItsKeyIsNotSentAgain() async throws {
        let h = try EngineHarness()
        try h.rule("r", """
            on("hook.go", function(ev)
              local m, err = sidobe.send { phone = "+628123123123", message = "confirmation", key = "order-K9" }
              local n = state.incr("runs")
              state.set("outcome:" .. n, m and m.id or (err.code .. " " .. tostring(err.may_have_been_delivered) .. " " .. tostring(err.id)))
            end)
            """)
        try await h.start()
        h.sidobe.failNext(.timeout(requestWritten: true))
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        let doubt = try #require(await h.engine.messages().first)
        #expect(doubt.status == .inDoubt && doubt.key == "order-K9" && doubt.history.map(\.source) == [.send])
        // The rule hears the timeout as it is, with the UNKNOWN message's id to resend.
        #expect(await h.state("r")["outcome:1"] == .string("TIMEOUT true \(doubt.id)"))

        // A later send with the key is not made: the first may have reached the customer.
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        #expect(h.sidobe.sends.isEmpty && h.sidobe.refusedCount == 1, "the key in doubt reached Sidobe again")
        #expect(await h.state("r")["outcome:2"] == .string("IN_DOUBT true \(doubt.id)"))
        #expect(await h.engine.traces(for: doubt.id).contains { trace in
            trace.rules.contains { $0.actions.contains { $0.contains("in doubt since its answer never came") } }
        })
        // A restart keeps it as it was: no intent was left open, so nothing new is in doubt.
        try await h.start()
        await h.engine.settle()
        #expect(await h.engine.messages().filter { $0.status == .inDoubt }.map(\.id) == [doubt.id])
    }

    @Test func anOperatorResolvesAMessageInDoubtAndRulesSeeTheStatus() async throws {
        let h = try EngineHarness()
        try h.rule("r", Self.oneSend + #"""

            on("message.failed", function(ev) state.set("failed", ev.message.id .. " " .. ev.message.status) end)
            """#)
        try await Self.startGoAndHold(h, .inASend())
        try await h.start()
        await h.engine.settle()
        let doubt = try #require(await h.engine.messages().first { $0.status == .inDoubt })

        let resolved = try await h.engine.resolveInDoubt(id: doubt.id, delivered: false)
        await h.engine.settle()
        #expect(resolved.status == .failed && resolved.history.last?.source == .operator)
        #expect(await h.state("r")["failed"] == .string("\(doubt.id) FAILED"))
        // Only a message in doubt is the operator's to decide.
        await #expect(throws: ResolutionError.self) { try await h.engine.resolveInDoubt(id: doubt.id, delivered: true) }
        #expect(h.sidobe.sends.count == 1)
    }

    @Test func sendsWithoutAKeyInOneRunAreToldApartByTheirPosition() async throws {
        let h = try EngineHarness()
        // The same text twice on purpose: two sends, and after a crash neither is made again.
        try h.rule("r", """
            on("hook.go", function(ev)
              local a = sidobe.send { phone = "+628123123123", message = "reminder" }
              local b = sidobe.send { phone = "+628123123123", message = "reminder" }
              state.set("ids", a.id .. "," .. b.id)
              sidobe.message("m-lookup")
            end)
            """)
        try await Self.startGoAndHold(h, .inALookup)
        #expect(h.sidobe.sends.count == 2)

        try await h.start()
        await h.engine.settle()
        #expect(h.sidobe.sends.count == 2)
        #expect(await h.state("r")["ids"] == "m1,m2")
    }
}

/// Answers the test double holds back for ever: their requests stay out, as when the engine is
/// killed while waiting for Sidobe. The continuations are kept, never resumed, so the old engine
/// never writes to the journal the restarted one uses.
private actor HeldAnswers {
    private var held: [CheckedContinuation<Void, Never>] = []
    private var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    private static let forever = Mutex<[HeldAnswers]>([])

    func hold() async {
        Self.forever.withLock { $0.append(self) }
        await withCheckedContinuation { continuation in
            held.append(continuation)
            let count = held.count
            waiters.removeAll { waiter in
                guard waiter.count <= count else { return false }
                waiter.continuation.resume()
                return true
            }
        }
    }

    func waitForHeld(_ count: Int) async {
        if held.count >= count { return }
        await withCheckedContinuation { waiters.append((count, $0)) }
    }
}
