#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import SidobotServer
import Testing

@Suite("log lines")
struct LogLineHandlerTests {
    /// Logs through a handler writing into a pipe and returns what came out.
    func lines(format: LogFormat = .text, _ body: (Logger) -> Void) throws -> [String] {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw POSIXError(.EMFILE) }
        defer { close(fds[0]) }
        var logger = Logger(label: "sidobot.test") { label in LogLineHandler(label: label, level: .info, format: format, descriptor: fds[1], metadataProvider: nil) }
        logger[metadataKey: "rule"] = "retry"
        body(logger)
        close(fds[1])
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fds[0], &buffer, buffer.count)
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test func aLineHasTheTimeLevelLabelSortedFieldsSourceAndMessage() throws {
        let out = try lines { logger in
            logger.info("webhook accepted", metadata: ["status": "FAILED", "event": "e-1"])
            logger.debug("not written at info")
            logger.warning("slow", metadata: ["rule": "other"])
        }
        #expect(out.count == 2)
        let first = try #require(out.first)
        #expect(first.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z info sidobot\.test: event=e-1 rule=retry status=FAILED \[\w+\] webhook accepted$"#,
                            options: .regularExpression) != nil, "\(first)")
        // A call's own metadata wins over the logger's.
        #expect(out.last?.contains(" rule=other ") == true)
        #expect(out.last?.contains(" warning sidobot.test:") == true)
    }

    /// A handler error's traceback must not split one event over several lines (a log shipper
    /// splits on newlines): it is quoted and escaped logfmt-style, and the fields stay parseable.
    @Test func aTracebackStaysOnItsEventsLineQuoted() throws {
        let traceback = "rules/a.lua:3: boom \"x\"\nstack traceback:\n\t[C]: in ?"
        let out = try lines { logger in
            logger.error("handler failed", metadata: ["error": "\(traceback)", "event": "e-1", "empty": ""])
            logger.info("two\nlines")
        }
        #expect(out.count == 2, "\(out)")
        let first = try #require(out.first)
        #expect(first.contains(#" empty="" error="rules/a.lua:3: boom \"x\"\nstack traceback:\n\t[C]: in ?" event=e-1 rule=retry ["#), "\(first)")
        #expect(first.hasSuffix("] handler failed"))
        #expect(out.last?.hasSuffix(#"] two\nlines"#) == true)
    }

    @Test func jsonLinesHaveStableKeysAndTheFields() throws {
        let out = try lines(format: .json) { logger in
            logger.warning("rule edit failed to load", metadata: ["error": "a\nb \"c\" \\ \u{01}", "message": "shadowed", "n": "\(3)",
                                                                 "list": ["x", "y"], "map": ["k": "v"]])
        }
        #expect(out.count == 1)
        let first = try #require(out.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "warning")
        #expect(object["label"] as? String == "sidobot.test")
        #expect(object["message"] as? String == "rule edit failed to load")
        #expect(object["field.message"] as? String == "shadowed")
        #expect(object["rule"] as? String == "retry")
        #expect(object["error"] as? String == "a\nb \"c\" \\ \u{01}")
        #expect(object["n"] as? String == "3")
        #expect(object["list"] as? [String] == ["x", "y"])
        #expect(object["map"] as? [String: String] == ["k": "v"])
        let time = try #require(object["time"] as? String)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        #expect(formatter.date(from: time) != nil, "\(time)")
        #expect(object["source"] is String)
    }

    @Test func theTimeIsUTCToTheMillisecond() throws {
        let before = Date()
        let line = try #require(try lines { $0.info("x") }.first)
        let stamp = String(line.prefix(24))
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let parsed = try #require(formatter.date(from: stamp), "\(stamp)")
        #expect(abs(parsed.timeIntervalSince(before)) < 5)
    }
}
