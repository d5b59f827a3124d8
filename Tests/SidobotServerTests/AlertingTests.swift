#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// Alerting tools as real clients of `rules/alert_page.lua` through `sidobot run`: Prometheus
/// Alertmanager (Debian's, started here, an alert raised and resolved with `amtool`) and Grafana's
/// webhook contact point (its payload as Grafana's documentation defines it), each with the bearer
/// token as the tool configures it. The page goes out through the simulator; the resolved alert
/// closes it.
@Suite("alerting: Alertmanager and Grafana page through alert_page.lua", .serialized)
struct AlertingTests {
    final class Running {
        let folder: String
        let engine: ProcessTests.Child
        let base: String

        init() async throws {
            folder = try makeTempFolder("alerting")
            let rules = folder + "/rules"
            try FileManager.default.createDirectory(atPath: rules, withIntermediateDirectories: true)
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            try FileManager.default.copyItem(atPath: root.appendingPathComponent("rules/alert_page.lua").path, toPath: rules + "/alert_page.lua")
            let arguments = ["run", "--simulate", "--rules", rules, "--data", folder + "/data", "--listen", "127.0.0.1:0"]
            let environment = ["SIDOBE_SECRET_KEY": testKey.reveal(), "SIDOBOT_ADMIN_TOKEN": adminToken]
            engine = try ProcessTests.Child(arguments: arguments, environment: environment, logURL: URL(fileURLWithPath: folder + "/engine.log"))
            let port = try #require(try await engine.port(after: 0), "no listening line:\n\(engine.log)")
            base = "http://127.0.0.1:\(port)"
            _ = try await eventually { (try? await http(.GET, base + "/readyz"))?.status == 200 }
        }

        func stop() {
            if engine.process.isRunning { kill(engine.process.processIdentifier, SIGKILL) }
            try? FileManager.default.removeItem(atPath: folder)
        }

        /// The alert_page rule's state.
        func state() async throws -> [String: Any] {
            try await http(.GET, base + "/api/state/alert_page", headers: bearer).object ?? [:]
        }

        /// Pages in the ledger, oldest first.
        func pages() async throws -> [[String: Any]] {
            let messages = try await http(.GET, base + "/api/messages?limit=100", headers: bearer).object?["messages"] as? [[String: Any]] ?? []
            return messages.filter { $0["rule"] as? String == "alert_page" }.reversed()
        }
    }

    static func tool(_ names: [String]) throws -> String {
        try #require(names.first { FileManager.default.isExecutableFile(atPath: $0) },
                     "\(names.first!) is not installed (Debian's prometheus-alertmanager; scripts/test installs it)")
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    @Test func anAlertmanagerAlertPagesOnceAndItsResolutionClosesIt() async throws {
        let alertmanager = try Self.tool(["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"])
        let amtool = try Self.tool(["/usr/bin/amtool"])
        let running = try await Running()
        defer { running.stop() }
        let amPort = try Self.freePort()
        // The webhook receiver as an Alertmanager user configures it: the bearer token in
        // http_config.authorization, resolved notifications on; short intervals for the test.
        let config = """
            route:
              receiver: sidobot
              group_by: [alertname]
              group_wait: 0s
              group_interval: 1s
              repeat_interval: 1h
            receivers:
              - name: sidobot
                webhook_configs:
                  - url: \(running.base)/hooks/alertmanager
                    send_resolved: true
                    http_config:
                      authorization:
                        type: Bearer
                        credentials: \(adminToken)
            """
        try config.write(toFile: running.folder + "/alertmanager.yml", atomically: true, encoding: .utf8)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: alertmanager)
        server.arguments = ["--config.file=\(running.folder)/alertmanager.yml", "--storage.path=\(running.folder)/am",
                            "--web.listen-address=127.0.0.1:\(amPort)", "--cluster.listen-address="]
        _ = FileManager.default.createFile(atPath: running.folder + "/alertmanager.log", contents: nil)
        let amLog = FileHandle(forWritingAtPath: running.folder + "/alertmanager.log") ?? FileHandle.nullDevice
        server.standardOutput = amLog
        server.standardError = amLog
        try server.run()
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        let amURL = "http://127.0.0.1:\(amPort)"
        #expect(try await eventually { (try? await http(.GET, amURL + "/-/ready"))?.status == 200 },
                "Alertmanager did not start: \((try? String(contentsOfFile: running.folder + "/alertmanager.log", encoding: .utf8)) ?? "")")

        let raised = try Self.run(amtool, ["alert", "add", "DiskFull", "severity=critical",
                                           "--annotation=summary=disk 95% full on db-1", "--alertmanager.url=\(amURL)"])
        #expect(raised.status == 0, "amtool: \(raised.output)")
        #expect(try await eventually(timeout: 30) { try await running.pages().count == 1 }, "no page:\n\(running.engine.log)")
        let page = try #require(try await running.pages().first)
        #expect(page["message"] as? String == "[CRITICAL] DiskFull: disk 95% full on db-1")
        #expect(page["phone"] as? String == "+628555000111")
        #expect(try await eventually { try await running.pages().first?["status"] as? String == "SUCCESS" })
        let state = try await running.state()
        let open = try #require(state.keys.first { $0.hasPrefix("open:") }, "\(state)")

        // Resolved: an alert with an end in the past; Alertmanager tells the receiver.
        let resolved = try Self.run(amtool, ["alert", "add", "DiskFull", "severity=critical",
                                             "--annotation=summary=disk 95% full on db-1",
                                             "--end=\(ISO8601DateFormatter().string(from: Date().addingTimeInterval(-1)))",
                                             "--alertmanager.url=\(amURL)"])
        #expect(resolved.status == 0, "amtool: \(resolved.output)")
        #expect(try await eventually(timeout: 30) { try await running.state()[open] == nil }, "the alert was not closed:\n\(running.engine.log)")
        #expect(try await running.pages().count == 1, "paged once")
        kill(server.processIdentifier, SIGTERM)
    }

    /// Grafana's webhook contact point, with "Authorization header" scheme Bearer: its payload has
    /// Alertmanager's fields plus its own (orgId, values, title, state, message, ...).
    @Test func aGrafanaContactPointPagesAndResolves() async throws {
        let running = try await Running()
        defer { running.stop() }
        func payload(_ status: String) -> [UInt8] {
            Array("""
                {"receiver":"sidobot","status":"\(status)","orgId":1,
                 "alerts":[{"status":"\(status)","labels":{"alertname":"High memory usage","team":"blue","zone":"us-1","severity":"warning"},
                   "annotations":{"description":"The system has high memory usage","runbook_url":"https://example.com/runbook",
                                  "summary":"This alert was triggered for zone us-1"},
                   "startsAt":"2026-12-06T09:51:03.157076+02:00","endsAt":"\(status == "resolved" ? "2026-12-06T10:01:03+02:00" : "0001-01-01T00:00:00Z")",
                   "generatorURL":"https://grafana.example.com/alerting/1afz29v7z/edit","fingerprint":"c6eadffa33fcdf37",
                   "silenceURL":"https://grafana.example.com/alerting/silence/new","dashboardURL":"","panelURL":"",
                   "values":{"B":44.23943737541908,"C":1},"valueString":"[ var='B' labels={} value=44.2 ]"}],
                 "groupLabels":{},"commonLabels":{"team":"blue"},"commonAnnotations":{},
                 "externalURL":"https://grafana.example.com/","version":"1","groupKey":"{}:{}","truncatedAlerts":0,
                 "title":"[\(status.uppercased()):1]  (High memory usage blue us-1)","state":"\(status == "firing" ? "alerting" : "ok")",
                 "message":"**Firing**\\n\\nValue: B=44.2\\nLabels:\\n - alertname = High memory usage\\n"}
                """.utf8)
        }
        let headers = [("Authorization", "Bearer \(adminToken)"), ("Content-Type", "application/json")]
        #expect(try await http(.POST, running.base + "/hooks/alertmanager", headers: [("Authorization", "Bearer wrong")], body: payload("firing")).status == 401)
        #expect(try await http(.POST, running.base + "/hooks/alertmanager", headers: headers, body: payload("firing")).status == 202)
        #expect(try await eventually { try await running.pages().count == 1 })
        #expect(try await running.pages().first?["message"] as? String == "[WARNING] High memory usage: This alert was triggered for zone us-1")
        #expect(try await running.state()["open:c6eadffa33fcdf37"] != nil)
        // Grafana repeats a firing alert: no second page.
        #expect(try await http(.POST, running.base + "/hooks/alertmanager", headers: headers, body: payload("firing")).status == 202)
        #expect(try await http(.POST, running.base + "/hooks/alertmanager", headers: headers, body: payload("resolved")).status == 202)
        #expect(try await eventually { try await running.state()["open:c6eadffa33fcdf37"] == nil })
        #expect(try await running.pages().count == 1)
    }
}
