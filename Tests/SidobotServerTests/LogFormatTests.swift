import Foundation
import Testing

/// What `sidobot run` writes to stderr, read back as a log shipper would: one line an event, in
/// both formats, with a handler error's multi-line Lua traceback among them.
@Suite("logs of sidobot run: one event, one line")
struct LogFormatTests {
    static let rule = """
        local function deeper() error("boom on purpose\\nwith a second line") end
        on("hook.boom", function(ev) deeper() end)
        on("hook.ok", function(ev) log.info("a rule's own line", { note = "spaces and \\"quotes\\"" }) end)
        """

    /// Runs an engine with `format`, a failing and a logging handler, then SIGTERM; returns its log.
    static func log(format: String) async throws -> String {
        let folder = try makeTempFolder("logs-\(format)")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let rules = folder + "/rules"
        try FileManager.default.createDirectory(atPath: rules, withIntermediateDirectories: true)
        try rule.write(toFile: rules + "/noisy.lua", atomically: true, encoding: .utf8)
        let arguments = ["run", "--simulate", "--rules", rules, "--data", folder + "/data", "--listen", "127.0.0.1:0", "--log-format", format]
        let environment = ["SIDOBE_SECRET_KEY": testKey.reveal(), "SIDOBOT_ADMIN_TOKEN": adminToken, "SIDOBOT_LOG_LEVEL": "debug"]
        let child = try ProcessTests.Child(arguments: arguments, environment: environment, logURL: URL(fileURLWithPath: folder + "/log"))
        defer { if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }
        let port = try #require(try await child.port(after: 0), "no listening line:\n\(child.log)")
        let base = "http://127.0.0.1:\(port)"
        #expect(try await http(.POST, base + "/hooks/boom", headers: bearer, body: []).status == 202)
        #expect(try await http(.POST, base + "/hooks/ok", headers: bearer, body: []).status == 202)
        #expect(try await eventually { (try await http(.GET, base + "/api/dead-letters", headers: bearer).object?["dead_letters"] as? [Any])?.count == 1 })
        kill(child.process.processIdentifier, SIGTERM)
        #expect(try await eventually(timeout: 20) { !child.process.isRunning })
        return child.log
    }

    @Test func textLinesAreOneEventEach() async throws {
        let log = try await Self.log(format: "text")
        let lines = log.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count > 5)
        for line in lines {
            #expect(line.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (trace|debug|info|notice|warning|error|critical) [a-z.]+: .*/) != nil,
                    "not a log line of its own: \(line)")
        }
        let failure = try #require(lines.first { $0.contains("] rule failed") })
        #expect(failure.contains(#"error="Lua error: rules/noisy.lua:1: boom on purpose\nwith a second line"#), "\(failure)")
        #expect(failure.contains("stack traceback:"), "the traceback is in the line, escaped")
        let own = lines.first { $0.contains("a rule's own line") }
        #expect(own?.contains(#"note="spaces and \"quotes\"""#) == true, "\(String(describing: own))")
    }

    @Test func jsonLinesParseWithTheDocumentedKeys() async throws {
        let log = try await Self.log(format: "json")
        let lines = log.split(separator: "\n")
        #expect(lines.count > 5)
        var objects: [[String: Any]] = []
        for line in lines {
            let object = try #require(try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON line: \(line)")
            for key in ["time", "level", "label", "source", "message"] {
                #expect(object[key] is String, "\(key) missing: \(line)")
            }
            objects.append(object)
        }
        let failure = try #require(objects.first { $0["message"] as? String == "rule failed" })
        #expect(failure["rule"] as? String == "noisy")
        #expect(failure["event"] is String)
        #expect((failure["error"] as? String)?.hasPrefix("Lua error: rules/noisy.lua:1: boom on purpose\nwith a second line") == true)
        #expect((failure["error"] as? String)?.contains("stack traceback:") == true)
        #expect(objects.contains { ($0["message"] as? String)?.hasPrefix("sidobot listening on http://127.0.0.1:") == true })
    }
}
