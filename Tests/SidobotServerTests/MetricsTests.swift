import Foundation
import SidobotServer
import Testing

/// `/metrics` as Prometheus's own linter reads it, through the real binary (one process, so the
/// process-wide gauges are this engine's alone): every family has HELP and the right TYPE, and
/// the store and reload gauges say what the engine holds.
@Suite("metrics: promtool check metrics on a live engine")
struct MetricsTests {
    static let rule = """
        on("hook.send", function(ev)
          local msg, err = sidobe.send({ phone = "+628123450001", message = "metrics test" })
          state.set("sent", msg and msg.id or tostring(err and err.message))
          timer.after("1h", "later", {})
        end)
        """

    @Test func promtoolFindsNothingAndEveryFamilyHasHelp() async throws {
        let promtool = try #require(["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                    "promtool is not installed (Debian's prometheus package; scripts/test installs it)")
        let folder = try makeTempFolder("metrics")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let rules = folder + "/rules"
        try FileManager.default.createDirectory(atPath: rules, withIntermediateDirectories: true)
        try Self.rule.write(toFile: rules + "/pager.lua", atomically: true, encoding: .utf8)
        // A budget far below what any process uses: the warning must come, once.
        let arguments = ["run", "--simulate", "--rules", rules, "--data", folder + "/data", "--listen", "127.0.0.1:0", "--memory-budget", "1MiB"]
        let environment = ["SIDOBE_SECRET_KEY": testKey.reveal(), "SIDOBOT_ADMIN_TOKEN": adminToken]
        let child = try ProcessTests.Child(arguments: arguments, environment: environment, logURL: URL(fileURLWithPath: folder + "/log"))
        defer { if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }
        let port = try #require(try await child.port(after: 0), "no listening line:\n\(child.log)")
        let base = "http://127.0.0.1:\(port)"

        // Work that makes every family: a webhook, a hook whose handler sends and sets a timer,
        // and a reload with a broken file beside the good one.
        #expect(try await http(.POST, base + "/webhooks/sidobe", headers: signed("ev-metrics"), body: webhookBody(id: "ev-metrics")).status == 200)
        #expect(try await http(.POST, base + "/hooks/send", headers: bearer, body: []).status == 202)
        #expect(try await eventually { try await http(.GET, base + "/api/state/pager", headers: bearer).object?["sent"] as? String != nil })
        #expect(try await http(.GET, base + "/api/state/pager", headers: bearer).object?["sent"] as? String != "message is required")
        try "this is not lua".write(toFile: rules + "/broken.lua", atomically: true, encoding: .utf8)
        #expect(try await http(.POST, base + "/api/rules/reload", headers: bearer).status == 422)

        // The store gauges are recorded once a second.
        var text = ""
        _ = try await eventually {
            text = try await http(.GET, base + "/metrics").text
            let families = try parsePrometheus(text)
            return families["sidobot_store_records"]?.first { $0.labels["store"] == "timers" }?.value == 1
        }
        let families = try parsePrometheus(text)
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            families[name]?.first { $0.labels == labels }?.value
        }
        #expect(value("sidobot_store_records", ["store": "timers"]) == 1)
        #expect(value("sidobot_store_records", ["store": "state"]) == 1)
        #expect((value("sidobot_store_records", ["store": "dedupe"]) ?? 0) >= 1)
        #expect(value("sidobot_store_records", ["store": "ledger"]) == 1)
        #expect((value("sidobot_store_records", ["store": "traces"]) ?? 0) >= 2)
        #expect((value("sidobot_trace_bytes") ?? 0) > 0)
        #expect(value("sidobot_rules_last_reload_successful") == 0)
        #expect((value("sidobot_resident_memory_bytes") ?? 0) > 1_048_576)
        #expect(value("sidobot_memory_budget_bytes") == 1_048_576)
        #expect(value("sidobot_store_bytes_estimated", ["store": "timers"]) == 213, "one timer at the measured 213 bytes")
        #expect(child.log.components(separatedBy: "memory is over its budget").count == 2, "one warning:\n\(child.log)")
        #expect(child.log.contains("largest_store="))
        #expect(value("sidobot_rules_failing_to_load") == 1)

        // HELP for every family the process declares, and nothing exposed that is not declared.
        let helped = Set(text.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("# HELP ") else { return nil }
            return line.dropFirst("# HELP ".count).split(separator: " ").first.map(String.init)
        })
        #expect(helped == Set(SidobotMetrics.families.map(\.name)))
        for family in SidobotMetrics.families {
            #expect(text.contains("# TYPE \(family.name) \(family.kind.rawValue)\n"), "\(family.name) is not a \(family.kind)")
        }

        // Prometheus's linter: no finding at all.
        let lint = Process()
        lint.executableURL = URL(fileURLWithPath: promtool)
        lint.arguments = ["check", "metrics"]
        let input = Pipe(), output = Pipe()
        lint.standardInput = input
        lint.standardOutput = output
        lint.standardError = output
        try lint.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let findings = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        lint.waitUntilExit()
        #expect(lint.terminationStatus == 0 && findings.isEmpty, "promtool check metrics:\n\(findings)")
    }
}
