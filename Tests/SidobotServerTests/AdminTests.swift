import Foundation
import Sidobe
import SidobotEngine
import SidobotServer
import Testing

@Suite("admin API, health and metrics")
struct AdminTests {
    @Test func everyAdminEndpoint() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        let api = h.base + "/api"

        // Without the token: 401 everywhere.
        for path in ["/rules", "/timers", "/traces", "/dead-letters", "/state/test", "/messages/x", "/traces/x"] {
            #expect(try await http(.GET, api + path).status == 401, "\(path)")
        }
        #expect(try await http(.POST, api + "/rules/reload").status == 401)

        // Rules.
        let rules = try await http(.GET, api + "/rules", headers: bearer).decode(RulesBody.self)
        #expect(rules.rules.map(\.name) == ["test"])
        #expect(rules.rules.first?.events.contains("hook.ping") == true)
        #expect(rules.rules.first?.description == "server test rule")

        // A hook that sets a timer, one that sends, one that fails.
        let ping = try await http(.POST, h.base + "/hooks/ping", headers: bearer, body: Array(#"{"n":1}"#.utf8))
        let pingID = try #require(ping.object?["event_id"] as? String)
        _ = try await http(.POST, h.base + "/hooks/send", headers: bearer, body: [])
        _ = try await http(.POST, h.base + "/hooks/boom", headers: bearer, body: [])

        // Timers.
        #expect(try await eventually { try await http(.GET, api + "/timers", headers: bearer).decode(TimersBody.self).timers.count == 1 })
        let timer = try #require(try await http(.GET, api + "/timers", headers: bearer).decode(TimersBody.self).timers.first)
        #expect(timer.name == "later")
        #expect(timer.rule == "test")
        #expect(timer.payload == JSONValue(.object(["from": .string("ping")])))

        // State: a JSON object of the rule's keys and values.
        #expect(try await eventually { try await h.state()["sent"] is String })
        let state = try await h.state()
        #expect(state["pings"] as? Int == 1)
        #expect((state["ping"] as? [String: Any])?["n"] as? Int == 1)
        #expect(try await http(.GET, api + "/state/nosuchrule", headers: bearer).status == 404)

        // Messages: the send is in the ledger; its SUCCESS webhook comes back from the simulator.
        let sent = try #require(state["sent"] as? String)
        let message = try await http(.GET, api + "/messages/\(sent)", headers: bearer)
        #expect(message.status == 200)
        #expect(try message.decode(MessageInfo.self).phone == "+628123123123")
        #expect(try await eventually { try await h.state()["success"] as? Int == 1 })
        let unknown = try await http(.GET, api + "/messages/nope", headers: bearer)
        #expect(unknown.status == 404)
        #expect(unknown.object?["error"] != nil)

        // Traces: by event id, by message id, recent.
        let traces = try await http(.GET, api + "/traces/\(pingID)", headers: bearer).decode(TracesBody.self)
        #expect(traces.traces.first?.event == "hook.ping")
        #expect(traces.traces.first?.rules.first?.outcome == "ran")
        #expect(!(traces.traces.first?.text.isEmpty ?? true))
        let byMessage = try await http(.GET, api + "/traces/\(sent)", headers: bearer)
        #expect(byMessage.status == 200)
        let recent = try await http(.GET, api + "/traces?limit=2", headers: bearer).decode(TracesBody.self)
        #expect(recent.traces.count == 2)
        #expect(try await http(.GET, api + "/traces/no-such-event", headers: bearer).status == 404)

        // Dead letters and replay.
        #expect(try await eventually { try await http(.GET, api + "/dead-letters", headers: bearer).decode(DeadLettersBody.self).deadLetters.count == 1 })
        let letter = try #require(try await http(.GET, api + "/dead-letters", headers: bearer).decode(DeadLettersBody.self).deadLetters.first)
        #expect(letter.event == "hook.boom")
        #expect(letter.error.contains("boom on purpose"))
        #expect(letter.error.contains("test.lua:"))
        let boomTrace = try await http(.GET, api + "/traces/\(letter.eventID)", headers: bearer).decode(TracesBody.self)
        #expect(boomTrace.traces.first?.rules.first?.outcome == "error")
        #expect(boomTrace.traces.first?.text.contains("test.lua:") == true)
        let replay = try await http(.POST, api + "/dead-letters/\(letter.id)/replay", headers: bearer)
        #expect(replay.status == 202)
        #expect(try await http(.POST, api + "/dead-letters/nope/replay", headers: bearer).status == 404)

        // Every documented field of a rule is present, null when empty.
        let raw = try #require(try await http(.GET, api + "/rules", headers: bearer).object)
        let first = try #require((raw["rules"] as? [[String: Any]])?.first)
        for field in ["name", "path", "description", "events", "schedules", "runs", "errors", "aborts", "limits_hit",
                      "quarantined", "last_error", "loaded_at", "memory_bytes", "load_error"] {
            #expect(first.keys.contains(field), "\(field) missing from /api/rules")
        }
        #expect(first["load_error"] is NSNull)
        #expect((raw["reload"] as? [String: Any])?["at"] is NSNull, "no reload yet")

        // Reload: unchanged, then a broken edit is refused with 422 and the old version keeps running.
        let reload = try await http(.POST, api + "/rules/reload", headers: bearer)
        #expect(reload.status == 200)
        #expect(try reload.decode(ReloadBody.self).unchanged == ["test"])
        let original = try String(contentsOfFile: h.rules + "/test.lua", encoding: .utf8)
        try "on(\"hook.ping\", function(ev) end\n  this is not lua".write(toFile: h.rules + "/test.lua", atomically: true, encoding: .utf8)
        try "on(\"hook.x\", function(ev) end".write(toFile: h.rules + "/fresh.lua", atomically: true, encoding: .utf8)
        let broken = try await http(.POST, api + "/rules/reload", headers: bearer)
        #expect(broken.status == 422)
        let failed = try broken.decode(ReloadBody.self).failed
        #expect(failed.map(\.path).sorted().map { ($0 as NSString).lastPathComponent } == ["fresh.lua", "test.lua"])
        // The failure stays visible in /api/rules (not only in the reload's answer and the log).
        let afterBroken = try await http(.GET, api + "/rules", headers: bearer).decode(RulesBody.self)
        let kept = try #require(afterBroken.rules.first { $0.name == "test" })
        #expect(kept.events.contains("hook.boom"), "the previous version keeps running")
        #expect(kept.loadError?.error.contains("test.lua:2") == true, "\(String(describing: kept.loadError))")
        #expect(kept.loadError?.previousVersionRuns == true)
        #expect(afterBroken.rules.map(\.name) == ["test"], "a new file that failed to load is not a running rule")
        #expect(afterBroken.reload.successful == false)
        #expect(afterBroken.reload.at != nil)
        let fresh = try #require(afterBroken.reload.failed.first { $0.rule == "fresh" })
        #expect(fresh.previousVersionRuns == false)
        #expect(fresh.error.contains("fresh.lua"))
        // Fixed: the failures are gone.
        try original.write(toFile: h.rules + "/test.lua", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: h.rules + "/fresh.lua")
        #expect(try await http(.POST, api + "/rules/reload", headers: bearer).status == 200)
        let fixed = try await http(.GET, api + "/rules", headers: bearer).decode(RulesBody.self)
        #expect(fixed.reload.successful)
        #expect(fixed.reload.failed.isEmpty)
        #expect(fixed.rules.first?.loadError == nil)
        #expect(await h.stop() == nil)
    }

    @Test func healthReadinessAndMetrics() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        #expect(try await http(.GET, h.base + "/healthz").status == 200)
        #expect(try await http(.GET, h.base + "/readyz").status == 200)
        _ = try await http(.POST, h.base + "/webhooks/sidobe", headers: signed("ev-m"), body: webhookBody(id: "ev-m"))
        _ = try await http(.POST, h.base + "/webhooks/sidobe", body: webhookBody(id: "ev-m"))
        let metrics = try await http(.GET, h.base + "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        let families = try parsePrometheus(metrics.text)
        let received = families["sidobot_events_received_total"] ?? []
        func value(_ type: String, _ outcome: String) -> Double? {
            received.first { sample in sample.labels == ["type": type, "outcome": outcome] }?.value
        }
        #expect((value("webhook", "accepted") ?? 0) >= 1)
        #expect((value("webhook", "rejected_signature") ?? 0) >= 1)
        #expect(value("hook", "unauthorized") != nil)
        #expect(await h.stop() == nil)
    }
}

struct Sample {
    var labels: [String: String]
    var value: Double
}

enum ExpositionError: Error { case badLine(String) }

/// A strict-enough parser of the Prometheus text format: every sample line must be
/// `name{label="value",...} number`, every comment `# HELP` or `# TYPE`.
func parsePrometheus(_ text: String) throws -> [String: [Sample]] {
    var families: [String: [Sample]] = [:]
    let sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/
    let label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/
    for line in text.split(separator: "\n") {
        if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { continue }
        guard let match = line.wholeMatch(of: sample) else { throw ExpositionError.badLine(String(line)) }
        var labels: [String: String] = [:]
        if let body = match.3 {
            for found in body.matches(of: label) { labels[String(found.1)] = String(found.2) }
        }
        let value = Double(match.4) ?? (match.4 == "+Inf" ? .infinity : match.4 == "-Inf" ? -.infinity : .nan)
        families[String(match.1), default: []].append(Sample(labels: labels, value: value))
    }
    return families
}
