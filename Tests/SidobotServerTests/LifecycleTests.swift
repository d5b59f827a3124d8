import Foundation
import Sidobe
import SidobotEngine
import SidobotServer
import Testing

@Suite("lifecycle: graceful shutdown, crash and restart")
struct LifecycleTests {
    @Test func gracefulShutdownWritesTheSnapshot() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        _ = try await http(.POST, h.base + "/hooks/ping", headers: bearer, body: Array(#"{"n":1}"#.utf8))
        #expect(try await eventually { try await h.state()["pings"] as? Int == 1 })
        let started = Date()
        #expect(await h.stop() == nil)
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(!h.server.isReady)
        let snapshot = h.data + "/snapshot.json"
        #expect(FileManager.default.fileExists(atPath: snapshot))
        let text = try String(contentsOfFile: snapshot, encoding: .utf8)
        #expect(text.contains("later"))
        // The port is closed: nothing accepts requests any more.
        await #expect(throws: (any Error).self) { _ = try await http(.GET, h.base + "/healthz", timeout: 3) }
    }

    @Test func aRuleThatFailsToLoadStopsTheStartWithAnEngineStartError() async throws {
        let rules = try makeTempFolder("rules")
        let data = try makeTempFolder("data")
        defer {
            try? FileManager.default.removeItem(atPath: rules)
            try? FileManager.default.removeItem(atPath: data)
        }
        try "this is not lua".write(toFile: rules + "/broken.lua", atomically: true, encoding: .utf8)
        let engine = Engine(configuration: EngineConfiguration(rulesFolder: rules, dataFolder: data),
                            sidobe: SidobeClient(configuration: .init(baseURL: "http://127.0.0.1:1", secretKey: testKey)), logger: testLogger("engine"))
        let server = SidobotHTTPServer(engine: engine, configuration: ServerConfiguration(port: 0, secretKey: testKey), logger: testLogger("server"))
        let group = ServiceGroup(services: server.services(), logger: testLogger("group"))
        let error = await #expect(throws: EngineStartError.self) { try await group.run() }
        #expect(error?.description.contains("broken.lua:1") == true)
        #expect(error?.description.contains("\n") == false)
    }
}

import ServiceLifecycle

/// `sidobot run` as a child process, killed with SIGKILL and restarted.
@Suite("sidobot run as a process", .serialized)
struct ProcessTests {
    final class Child {
        let process = Process()
        let logURL: URL
        init(arguments: [String], environment: [String: String], logURL: URL) throws {
            self.logURL = logURL
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
                .deletingLastPathComponent().appendingPathComponent("sidobot")
            process.arguments = arguments
            var env = ProcessInfo.processInfo.environment
            for (key, value) in environment { env[key] = value }
            process.environment = env
            _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
            let handle = try FileHandle(forWritingTo: logURL)
            handle.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

        /// The port from the `sidobot listening on http://127.0.0.1:PORT` line of this run.
        func port(after offset: Int) async throws -> Int? {
            var found: Int?
            _ = try await eventually(timeout: 60) {
                let text = String(log.dropFirst(offset))
                if let match = text.firstMatch(of: /sidobot listening on http:\/\/127\.0\.0\.1:([0-9]+)/) { found = Int(match.1) }
                return found != nil || !process.isRunning
            }
            return found
        }
    }

    @Test func sigkillAndRestartLosesNoAcknowledgedEventAndNoTimer() async throws {
        let folder = try makeTempFolder("process")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let rules = folder + "/rules", data = folder + "/data"
        try FileManager.default.createDirectory(atPath: rules, withIntermediateDirectories: true)
        // Delivery to rules is at-least-once: an event interrupted by the kill is dispatched again.
        // This rule is idempotent per event, as docs/RULES.md advises, so "processed" is countable.
        let crashRule = """
            on("message.failed", function(ev) state.set("seen:" .. ev.event_id, true) end)
            on("hook.ping", function(ev)
              state.set("pinged", true)
              if #timer.pending("later") == 0 then timer.after("1h", "later", { from = "ping" }) end
            end)
            """
        try crashRule.write(toFile: rules + "/test.lua", atomically: true, encoding: .utf8)
        let arguments = ["run", "--simulate", "--rules", rules, "--data", data, "--listen", "127.0.0.1:0"]
        let environment = ["SIDOBE_SECRET_KEY": testKey.reveal(), "SIDOBOT_ADMIN_TOKEN": adminToken, "SIDOBOT_LOG_LEVEL": "info"]
        let logURL = URL(fileURLWithPath: folder + "/log")

        let first = try Child(arguments: arguments, environment: environment, logURL: logURL)
        let port = try #require(try await first.port(after: 0), "no listening line:\n\(first.log)")
        let base = "http://127.0.0.1:\(port)"
        #expect(try await eventually { (try? await http(.GET, base + "/readyz"))?.status == 200 })
        let count = 30
        for index in 0..<count {
            let answer = try await http(.POST, base + "/webhooks/sidobe", headers: signed("crash-\(index)"),
                                        body: webhookBody(id: "crash-\(index)", messageID: "m-\(index)"))
            #expect(answer.status == 200)
        }
        let hook = try await http(.POST, base + "/hooks/ping", headers: bearer, body: Array("{}".utf8))
        #expect(hook.status == 202)
        // Kill it right after the last acknowledgement: no graceful anything.
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        #expect(first.process.terminationReason == .uncaughtSignal)

        let offset = 0
        let second = try Child(arguments: arguments, environment: environment, logURL: URL(fileURLWithPath: folder + "/log2"))
        defer { if second.process.isRunning { kill(second.process.processIdentifier, SIGKILL) } }
        let port2 = try #require(try await second.port(after: offset), "no listening line:\n\(second.log)")
        let base2 = "http://127.0.0.1:\(port2)"
        #expect(try await eventually { (try? await http(.GET, base2 + "/readyz"))?.status == 200 })
        // Every acknowledged event was processed (interrupted ones are dispatched again).
        #expect(try await eventually {
            let state = try await http(.GET, base2 + "/api/state/test", headers: bearer).object ?? [:]
            let seen = (0..<count).filter { state["seen:crash-\($0)"] as? Bool == true }.count
            return seen == count && state["pinged"] as? Bool == true
        })
        // They are still known as delivered: a redelivery is a duplicate.
        let again = try await http(.POST, base2 + "/webhooks/sidobe", headers: signed("crash-0"), body: webhookBody(id: "crash-0", messageID: "m-0"))
        #expect(again.object?["status"] as? String == "duplicate")
        // The timer survived.
        let timers = try await http(.GET, base2 + "/api/timers", headers: bearer).decode(TimersBody.self).timers
        #expect(timers.map(\.name) == ["later"])

        // SIGTERM: clean stop, exit 0, snapshot written.
        kill(second.process.processIdentifier, SIGTERM)
        #expect(try await eventually(timeout: 30) { !second.process.isRunning })
        #expect(second.process.terminationStatus == 0)
        #expect(FileManager.default.fileExists(atPath: data + "/snapshot.json"))
    }

    @Test func configurationErrorsExitTwoWithOneLine() async throws {
        let folder = try makeTempFolder("config")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/rules", withIntermediateDirectories: true)
        func run(_ arguments: [String], _ environment: [String: String] = [:]) throws -> (Int32, String) {
            let logURL = URL(fileURLWithPath: folder + "/log-\(UUID().uuidString)")
            var env = environment
            if env["SIDOBE_SECRET_KEY"] == nil { env["SIDOBE_SECRET_KEY"] = "" }
            let child = try Child(arguments: arguments, environment: env, logURL: logURL)
            child.process.waitUntilExit()
            return (child.process.terminationStatus, child.log)
        }
        let rules = ["--rules", folder + "/rules", "--data", folder + "/data", "--listen", "127.0.0.1:0"]
        let noKey = try run(["run"] + rules)
        #expect(noKey.0 == 2)
        #expect(noKey.1.contains("SIDOBE_SECRET_KEY"))
        #expect(noKey.1.split(separator: "\n").count == 1)
        let badListen = try run(["run", "--simulate", "--listen", "nonsense", "--rules", folder + "/rules"])
        #expect(badListen.0 == 2)
        #expect(badListen.1.contains("bad listen address"))
        let noRules = try run(["run", "--simulate", "--rules", folder + "/missing", "--listen", "127.0.0.1:0"])
        #expect(noRules.0 == 2)
        #expect(noRules.1.contains("rules folder"))
        try "nonsense here".write(toFile: folder + "/rules/bad.lua", atomically: true, encoding: .utf8)
        let badRule = try run(["run", "--simulate"] + rules)
        #expect(badRule.0 == 2)
        #expect(badRule.1.contains("bad.lua:1"))
        #expect(badRule.1.contains("error: "))
        try FileManager.default.removeItem(atPath: folder + "/rules/bad.lua")
        try FileManager.default.createDirectory(atPath: folder + "/data2", withIntermediateDirectories: true)
        try "{ not a snapshot".write(toFile: folder + "/data2/snapshot.json", atomically: true, encoding: .utf8)
        let corrupt = try run(["run", "--simulate", "--rules", folder + "/rules", "--data", folder + "/data2", "--listen", "127.0.0.1:0"])
        #expect(corrupt.0 == 2)
        #expect(corrupt.1.contains("snapshot.json"))
    }
}
