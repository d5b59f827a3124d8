import Foundation
import Sidobe
import SidobotServer
import Testing

/// ISSUE 8, secrets: a full `sidobot run --simulate` (engine + HTTP server + in-process simulator, trace-level
/// logs) is driven through every path that touches Sidobe or the admin API: async, sync, failing and invalid sends,
/// status webhooks (confirmed with GET, `--confirm-status`), a bad signature, timers, a failing rule, a replay, a
/// reload, a periodic and a final snapshot. Then the process log, the data folder (journal, snapshots) and every
/// HTTP answer (admin, health, metrics, hooks, webhooks, 401s) are searched for the secret key and the admin token.
@Suite("reliability: no secret in any log, trace, snapshot, journal or admin answer", .serialized)
struct SecretLeakTests {
    static let secretRule = """
        rule { description = "secrets" }
        on("hook.go", function(ev)
          local a = sidobe.send { phone = "+628111111111", message = "hello async", async = true }
          local s = sidobe.send { phone = "+628111111112", message = "hello sync" }
          local f, ferr = sidobe.send { phone = "+628999999999", message = "fails", async = true }
          local bad, berr = sidobe.send { phone = "nonsense", message = "x" }
          state.set("async", a and a.id)
          state.set("sync", s and s.id)
          state.set("failing", f and f.id)
          state.set("invalid", berr and berr.code)
          timer.after("1s", "tick", { n = 1 })
        end)
        on("timer.tick", function(ev) state.incr("ticks") end)
        on("message.status", function(ev) state.incr("statuses") end)
        on("message.failed", function(ev) state.incr("failed") end)
        on("hook.boom", function(ev) error("boom on purpose") end)
        """

    @Test func aFullRunNeverShowsTheSecretKeyOrTheAdminToken() async throws {
        let unique = UUID().uuidString
        let key = "sk_live_SENTINEL-\(unique)"
        let token = "adm-SENTINEL-\(unique.reversed().map(String.init).joined())"
        let needles = [key, token, unique]  // the uuid alone catches a truncated or re-quoted copy

        let folder = try makeTempFolder("secrets")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let rules = folder + "/rules", data = folder + "/data"
        try FileManager.default.createDirectory(atPath: rules, withIntermediateDirectories: true)
        try Self.secretRule.write(toFile: rules + "/secrets.lua", atomically: true, encoding: .utf8)
        let arguments = ["run", "--simulate", "--rules", rules, "--data", data, "--listen", "127.0.0.1:0",
                         "--fsync", "always", "--snapshot-interval", "1", "--confirm-status",
                         "--sim-failing-phone", "+628999999999", "--sim-async-delay-ms", "10"]
        let environment = ["SIDOBE_SECRET_KEY": key, "SIDOBOT_ADMIN_TOKEN": token, "SIDOBOT_LOG_LEVEL": "trace"]
        let logURL = URL(fileURLWithPath: folder + "/log")
        let child = try ProcessTests.Child(arguments: arguments, environment: environment, logURL: logURL)
        defer { if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }
        let port = try #require(try await child.port(after: 0), "no listening line:\n\(child.log)")
        let base = "http://127.0.0.1:\(port)"
        let auth = [("Authorization", "Bearer \(token)")]
        var answers: [(String, Answer)] = []
        func call(_ verb: Verb, _ path: String, headers: [(String, String)] = auth, body: [UInt8]? = nil) async throws -> Answer {
            let answer = try await http(verb, base + path, headers: headers, body: body)
            answers.append(("\(verb) \(path)", answer))
            return answer
        }
        #expect(try await eventually { (try? await call(.GET, "/readyz"))?.status == 200 })

        #expect(try await call(.POST, "/hooks/go", body: Array("{}".utf8)).status == 202)
        #expect(try await call(.POST, "/hooks/boom", body: Array(#"{"x":1}"#.utf8)).status == 202)
        // Status webhooks come from the simulator (async SUCCESS, the failing phone's FAILED, confirmed with GET).
        #expect(try await eventually(timeout: 30) {
            let state = try await call(.GET, "/api/state/secrets").object ?? [:]
            return state["ticks"] as? Int == 1 && state["failed"] as? Int == 1 && (state["statuses"] as? Int ?? 0) >= 2
        }, "state: \(answers.last?.1.text ?? "")")
        // A webhook signed with the right key, one with a wrong signature, one unsigned.
        let id = "wh-secret-1"
        let signature = WebhookSignature.sign(id: id, secretKey: SecretKey(key))
        let body = webhookBody(id: id, messageID: "nope")
        _ = try await call(.POST, "/webhooks/sidobe", headers: [("X-Webhook-Signature", signature), ("Content-Type", "application/json")], body: body)
        #expect(try await call(.POST, "/webhooks/sidobe", headers: [("X-Webhook-Signature", "bad")], body: body).status == 401)
        _ = try await call(.POST, "/webhooks/sidobe", headers: [], body: body)

        // Every admin endpoint, with and without (and with a wrong) token.
        let state = try await call(.GET, "/api/state/secrets").object ?? [:]
        for path in ["/api/rules", "/api/timers", "/api/traces?limit=1000", "/api/dead-letters", "/api/state/secrets",
                     "/api/state/nosuch", "/api/messages/nope", "/api/traces/nope", "/healthz", "/readyz", "/metrics"] {
            _ = try await call(.GET, path)
            _ = try await call(.GET, path, headers: [])
            _ = try await call(.GET, path, headers: [("Authorization", "Bearer wrong")])
        }
        for name in ["async", "sync", "failing"] {
            if let message = state[name] as? String {
                _ = try await call(.GET, "/api/messages/\(message)")
                _ = try await call(.GET, "/api/traces/\(message)")
            } else {
                Issue.record("no \(name) message id in \(state)")
            }
        }
        let traces = try await call(.GET, "/api/traces?limit=1000").decode(TracesBody.self)
        for trace in traces.traces { _ = try await call(.GET, "/api/traces/\(trace.eventID)") }
        let letters = try await call(.GET, "/api/dead-letters").decode(DeadLettersBody.self).deadLetters
        #expect(!letters.isEmpty)
        for letter in letters { _ = try await call(.POST, "/api/dead-letters/\(letter.id)/replay") }
        _ = try await call(.POST, "/api/rules/reload")
        try (Self.secretRule + "\n-- edited\n").write(toFile: rules + "/secrets.lua", atomically: true, encoding: .utf8)
        _ = try await call(.POST, "/api/rules/reload")
        try "this is not lua".write(toFile: rules + "/broken.lua", atomically: true, encoding: .utf8)
        #expect(try await call(.POST, "/api/rules/reload").status == 422)
        _ = try await call(.POST, "/api/rules/reload", headers: [])
        _ = try await call(.POST, "/hooks/go", headers: [], body: [])
        #expect(try await eventually { try await call(.GET, "/api/dead-letters").decode(DeadLettersBody.self).deadLetters.count >= 1 })

        // A periodic snapshot (every second), then a clean stop with the final one.
        #expect(try await eventually(timeout: 30) { FileManager.default.fileExists(atPath: data + "/snapshot.json") })
        kill(child.process.processIdentifier, SIGTERM)
        #expect(try await eventually(timeout: 30) { !child.process.isRunning })
        #expect(child.process.terminationStatus == 0)

        // The haystack: the log, every file of the data folder, every answer (status line, headers, body).
        var haystacks: [(String, String)] = [("process log", child.log)]
        let files = FileManager.default.enumerator(atPath: data)?.allObjects as? [String] ?? []
        #expect(files.contains("journal.jsonl"))
        #expect(files.contains("snapshot.json"))
        for file in files {
            haystacks.append((file, (try? String(contentsOfFile: data + "/" + file, encoding: .utf8)) ?? ""))
        }
        for (request, answer) in answers {
            haystacks.append((request, "\(answer.status) \(answer.headers) \(answer.text)"))
        }
        // The haystack is not empty: the run did produce traces, logs and data.
        #expect(child.log.contains("hello async") || child.log.contains("handler run finished"))
        #expect(answers.count > 60)
        for (name, text) in haystacks {
            for needle in needles {
                #expect(!text.contains(needle), "\(name) contains a secret (\(needle == token ? "admin token" : "secret key"))")
            }
        }
    }
}
