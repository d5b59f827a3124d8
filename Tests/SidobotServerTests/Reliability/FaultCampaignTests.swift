import Foundation
import Sidobe
import SidobeSimulator
import SidobotEngine
import SidobotServer
import Testing

/// ISSUE 8, faults: the simulator misbehaves (429 storms, 5xx bursts, timeouts, connection resets,
/// slow and repeated webhooks) while a real engine sends through it. Each test checks that no send
/// is lost or made twice beyond the documented semantics (a send whose answer is lost after the
/// request went out "may have been delivered" and is not retried blindly), and what the rule sees.
@Suite("reliability: simulator faults through the engine", .serialized)
struct FaultCampaignTests {
    static let rule = """
        rule { description = "fault campaign" }
        on("hook.send", function(ev)
          local id = ev.body.id
          local msg, err = sidobe.send { phone = ev.body.phone, message = "fault " .. id, key = id, async = ev.body.async == true }
          if msg then
            state.set("sent:" .. id, msg.id)
          else
            state.set("error:" .. id, err.code .. (err.may_have_been_delivered and ":maybe" or ""))
          end
        end)
        on("hook.check", function(ev)
          local ok, err = sidobe.check_number(ev.body.phone)
          if err then state.set("check:" .. ev.body.id, "error " .. err.code) else state.set("check:" .. ev.body.id, ok) end
        end)
        on("message.status", function(ev)
          if not ev.stale and ev.status ~= "PENDING" then state.incr("status:" .. ev.message_id) end
        end)
        """

    struct Outcome {
        var sent: [String: String] = [:]   // hook id -> message id
        var errors: [String: String] = [:]  // hook id -> code
    }

    /// Posts `count` sending hooks (distinct phones) and waits until each has its outcome in state.
    static func send(_ count: Int, through h: Harness, prefix: String, async: Bool = false, timeout: Double = 60) async throws -> Outcome {
        for n in 0..<count {
            let body = #"{"id":"\#(prefix)-\#(n)","phone":"+6281\#(String(200_000_000 + n))","async":\#(async)}"#
            let answer = try await http(.POST, h.base + "/hooks/send", headers: bearer + [("Content-Type", "application/json")], body: Array(body.utf8))
            #expect(answer.status == 202)
        }
        var outcome = Outcome()
        let done = try await eventually(timeout: timeout) {
            let state = try await h.state()
            outcome = Outcome()
            for n in 0..<count {
                let id = "\(prefix)-\(n)"
                if let message = state["sent:" + id] as? String { outcome.sent[id] = message }
                if let code = state["error:" + id] as? String { outcome.errors[id] = code }
            }
            return outcome.sent.count + outcome.errors.count == count
        }
        #expect(done, "not every send ended: \(outcome.sent.count) sent, \(outcome.errors.count) failed of \(count)")
        return outcome
    }

    /// Every message the simulator accepted is one the rule knows, each phone at most once.
    static func expectNoDuplicates(_ h: Harness, _ outcome: Outcome) async {
        let messages = await h.simulator.messages()
        #expect(Set(messages.map(\.phone)).count == messages.count, "a phone was sent to twice")
        #expect(Set(messages.map(\.id)) == Set(outcome.sent.values), "the simulator and the rule disagree on what was sent")
    }

    static func metric(_ h: Harness, _ name: String) async throws -> Double? {
        let text = try await http(.GET, h.base + "/metrics").text
        return text.split(separator: "\n").first { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
            .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
    }

    // How fast the engine reacts to the first 429s is a timing bound: beside the rest of the suite
    // on two cores it was exceeded in 3 of 9 runs (13, 18, 37 refusals), alone it is 2 every time.
    // scripts/test runs it alone, with the isolation timing tests (SIDOBOT_TIMING_TESTS=1).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SIDOBOT_TIMING_TESTS"] == "1",
                   "a timing bound: run alone by scripts/test with SIDOBOT_TIMING_TESTS=1"))
    func a429StormSlowsTheEngineDownAndLosesNoSend() async throws {
        var faults = FaultInjection(seed: 3)
        faults.rateLimit = RateLimit(requestsPerSecond: 10, burst: 2)
        faults.retryAfterSeconds = 1
        let h = try await Harness.start(rule: Self.rule, faults: faults, engine: { $0.sendRate = 40; $0.recipientGap = 0 })
        defer { h.cleanUp() }
        let outcome = try await Self.send(30, through: h, prefix: "storm")
        // The client waits out each Retry-After and retries; what still fails says RATE_LIMITED.
        #expect(outcome.errors.values.allSatisfy { $0 == "RATE_LIMITED" }, "\(outcome.errors)")
        #expect(outcome.sent.count >= 25, "\(outcome.errors.count) sends given up")
        await Self.expectNoDuplicates(h, outcome)
        // The 429s slowed the engine down (it started at 40/s against a limit of 10/s).
        let rate = try #require(try await Self.metric(h, "sidobot_send_rate"))
        #expect(rate < 40)
        let refused = await h.simulator.answerCounts()[429] ?? 0
        #expect(refused > 0)
        // Slowed at the first 429s (the client reports each one), not after its retries ran out:
        // without that, nearly every send of the storm is refused once (measured: 39 of 30 sends).
        // Under a sanitizer the engine reacts several times slower than the simulator's real-time
        // limit refills, so more requests are already on their way when the first 429 lands
        // (measured under TSan: 17); the bound there still tells feedback from none.
        let bound = testSlowdown > 1 ? 25 : 10
        #expect(refused <= bound, "\(refused) requests refused")
        #expect(await h.stop() == nil)
    }

    @Test func serverErrorBurstsAreRetriedAndNothingIsSentTwice() async throws {
        let h = try await Harness.start(rule: Self.rule, faults: FaultInjection(seed: 5, serverErrorRate: 0.4))
        defer { h.cleanUp() }
        let outcome = try await Self.send(30, through: h, prefix: "5xx")
        // A 503 is answered before anything is stored, so the client's retries are safe; what still
        // fails after four attempts says UNAVAILABLE.
        #expect(outcome.errors.values.allSatisfy { $0 == "UNAVAILABLE" }, "\(outcome.errors)")
        #expect(outcome.sent.count >= 25)
        await Self.expectNoDuplicates(h, outcome)
        #expect((await h.simulator.answerCounts()[503] ?? 0) > 0)
        // A send given up after retries is a dead letter, to replay once Sidobe is back.
        let letters = try await http(.GET, h.base + "/api/dead-letters", headers: bearer).text
        for id in outcome.errors.keys { #expect(letters.contains(id) || letters.contains("send")) }
        #expect(await h.stop() == nil)
    }

    @Test func aSendWhoseAnswerTimesOutIsNotRetriedAndTheRuleIsTold() async throws {
        let h = try await Harness.start(rule: Self.rule, faults: FaultInjection(seed: 7, latency: .milliseconds(700)),
                                        client: { $0.requestTimeout = .milliseconds(250) })
        defer { h.cleanUp() }
        let outcome = try await Self.send(4, through: h, prefix: "slow")
        // The requests went out, then no answer in time: the rule hears TIMEOUT, may have been delivered.
        #expect(outcome.errors.count == 4)
        #expect(outcome.errors.values.allSatisfy { $0 == "TIMEOUT:maybe" }, "\(outcome.errors)")
        // Sidobe did get them (it answered late): the engine did not send them again.
        #expect(try await eventually { await h.simulator.messages().count == 4 })
        let messages = await h.simulator.messages()
        #expect(Set(messages.map(\.phone)).count == 4)
        // The ledger keeps each as in doubt (UNKNOWN), for an operator to see and decide.
        let unknown = try await http(.GET, h.base + "/api/messages?status=UNKNOWN", headers: bearer).object?["messages"] as? [[String: Any]]
        #expect(unknown?.count == 4)
        // The counter is the process's (other suites in this process count theirs too): at least these.
        #expect(try await Self.metric(h, "sidobot_sends_in_doubt_total") ?? 0 >= 4)
        #expect(await h.stop() == nil)
    }

    @Test func aConnectionResetLosesNoSendSilentlyAndReadsAreRetried() async throws {
        let h = try await Harness.start(rule: Self.rule, faults: FaultInjection(seed: 11, connectionResetRate: 0.35))
        defer { h.cleanUp() }
        let outcome = try await Self.send(30, through: h, prefix: "reset")
        // A reset after the request was read: the client cannot know, so a send is not retried and
        // the rule is told it may have been delivered; the others went through once.
        #expect(outcome.errors.values.allSatisfy { $0.hasSuffix(":maybe") }, "\(outcome.errors)")
        #expect(!outcome.errors.isEmpty && !outcome.sent.isEmpty)
        await Self.expectNoDuplicates(h, outcome)
        #expect((await h.simulator.answerCounts()[0] ?? 0) >= outcome.errors.count)
        // check_number is a read: retried through the resets.
        for n in 0..<10 {
            let body = #"{"id":"c\#(n)","phone":"+6281\#(String(300_000_000 + n))"}"#
            _ = try await http(.POST, h.base + "/hooks/check", headers: bearer + [("Content-Type", "application/json")], body: Array(body.utf8))
        }
        var checks: [Any] = []
        #expect(try await eventually {
            let state = try await h.state()
            checks = (0..<10).compactMap { state["check:c\($0)"] }
            return checks.count == 10
        })
        #expect(checks.filter { ($0 as? Bool) == true }.count >= 8, "\(checks)")
        #expect(await h.stop() == nil)
    }

    @Test func slowAndRepeatedWebhooksReachRulesOncePerMessage() async throws {
        let h = try await Harness.start(rule: Self.rule, faults: FaultInjection(seed: 13, webhookDuplicateRate: 0.6, webhookDelay: .milliseconds(150)))
        defer { h.cleanUp() }
        let outcome = try await Self.send(20, through: h, prefix: "async", async: true)
        #expect(outcome.sent.count == 20)
        // Every final status arrives (late, some twice) and reaches the rule exactly once.
        var state: [String: Any] = [:]
        #expect(try await eventually(timeout: 30) {
            state = try await h.state()
            return outcome.sent.values.allSatisfy { state["status:" + $0] != nil }
        })
        for message in outcome.sent.values { #expect(state["status:" + message] as? Int == 1, "\(message)") }
        #expect(try await eventually { (try await Self.metric(h, #"sidobot_events_received_total{type="webhook",outcome="duplicate"}"#) ?? 0) > 0 })
        #expect(await h.stop() == nil)
    }
}
