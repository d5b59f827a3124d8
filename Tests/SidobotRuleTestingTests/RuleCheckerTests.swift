import Foundation
@testable import SidobotRuleTesting
import SidobotEngine
import Testing

@Suite("sidobot check")
struct RuleCheckerTests {
    static let start = UnixTime(seconds: 1_767_225_600) // 2026-01-01T00:00:00Z

    @Test("lists handlers, hooks and schedules with their next three fire times in the rule's zone")
    func listing() async throws {
        let rules = try TempRules()
        try rules.write("a.lua", """
            rule { description = "demo" }
            on("message.failed", function(ev) end)
            on("hook.order", function(ev) end)
            on("timer.retry", function(ev) end)
            cron("0 9 * * 1-5", function() end, { tz = "Asia/Jakarta" })
            every("30m", function() end)
            """)
        try rules.write("a_test.lua", "this is not a rule and is not loaded")
        let report = await RuleChecker.check(folder: rules.folder, now: Self.start)
        #expect(report.ok)
        #expect(report.text == """
            ok    rules/a.lua — demo
                  handlers:  message.failed, timer.retry
                  hooks:     POST /hooks/order
                  schedules: cron 0 9 * * 1-5 Asia/Jakarta
                               next 2026-01-01T09:00:00+07:00, 2026-01-02T09:00:00+07:00, 2026-01-05T09:00:00+07:00
                             every 30m
                               next 2026-01-01T00:30:00+00:00, 2026-01-01T01:00:00+00:00, 2026-01-01T01:30:00+00:00

            1 rule loaded, 0 failed
            """)
    }

    @Test("every error is reported with file:line and a hint, and the report is not ok")
    func errors() async throws {
        let rules = try TempRules()
        try rules.write("good.lua", "on(\"hook.x\", function() end)")
        try rules.write("printer.lua", "on(\"hook.y\", function() end)\nprint(\"loaded\")\n")
        try rules.write("syntax.lua", "on(\"hook.z\", function()\n  if x then\nend)\n")
        try rules.write("zone.lua", "cron(\"0 9 * * *\", function() end, { tz = \"Mars/Olympus\" })\n")
        let report = await RuleChecker.check(folder: rules.folder, now: Self.start)
        #expect(!report.ok)
        let text = report.text
        #expect(text.contains("ok    rules/good.lua"))
        #expect(text.contains("ERROR rules/printer.lua:2: "))
        #expect(text.contains("hint: print is not in the sandbox"))
        #expect(text.contains("ERROR rules/syntax.lua:3: "))
        #expect(text.contains("ERROR rules/zone.lua:1: "))
        #expect(text.contains("hint: use an IANA zone name"))
        #expect(text.hasSuffix("1 rule loaded, 3 failed"))
    }

    @Test("a missing folder is an error")
    func missingFolder() async {
        let report = await RuleChecker.check(folder: "/nonexistent/rules", now: Self.start)
        #expect(!report.ok)
    }

    @Test("the example rules all load")
    func examples() async {
        let report = await RuleChecker.check(folder: repositoryRoot.appendingPathComponent("rules").path, now: Self.start)
        #expect(report.ok, "\(report.text)")
        #expect(report.checks.count == 6)
    }
}
