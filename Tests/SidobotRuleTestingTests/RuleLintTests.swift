import Foundation
@testable import SidobotRuleTesting
import Testing

/// `sidobot check` on the mistakes rule authors make inside handlers, which loading alone cannot
/// see (issue 19's findings): each one is an error naming file:line:col, with a hint, and exit 1.
@Suite("sidobot check: lint inside handlers")
struct RuleLintTests {
    /// The check of one rule with `body` inside a hook handler.
    static func check(_ body: String, extra: String = "") async throws -> RuleChecker.Report {
        let rules = try TempRules()
        try rules.write("mistake.lua", "on(\"hook.go\", function(ev)\n\(body)\nend)\n\(extra)")
        return await RuleChecker.check(folder: rules.folder)
    }

    static func finding(_ report: RuleChecker.Report, containing text: String) -> LintFinding? {
        report.findings.first { $0.message.contains(text) }
    }

    @Test func luacheckIsInstalledHere() {
        #expect(RuleLint.luacheck != nil, "scripts/test installs Debian's lua-check; without it these tests cannot see luacheck's findings")
    }

    @Test func aMisspeltAPIFunctionIsAnErrorWithTheRightName() async throws {
        let report = try await Self.check(#"  sidobe.sned { phone = "+628123123123", message = "hi" }"#)
        #expect(!report.ok)
        let finding = try #require(Self.finding(report, containing: "'sned'"), "\(report.text)")
        #expect(finding.severity == .error)
        #expect("\(finding)" == "rules/mistake.lua:2:3: error: accessing undefined field 'sned' of global 'sidobe' (W143)")
        #expect(finding.hint?.hasPrefix("did you mean sidobe.send?") == true)
        #expect(report.text.hasSuffix("1 rule loaded, 0 failed; 1 lint error, 0 warnings"))
    }

    @Test func printIsNotInTheSandbox() async throws {
        let report = try await Self.check(#"  print("sent")"#)
        let finding = try #require(Self.finding(report, containing: "'print'"), "\(report.text)")
        #expect(finding.severity == .error && finding.line == 2)
        #expect(finding.hint?.contains("log.info") == true)
    }

    @Test func aMisspeltGlobalGetsTheClosestName() async throws {
        let report = try await Self.check(#"  local n = stat.get("n")"#)
        let finding = try #require(Self.finding(report, containing: "'stat'"), "\(report.text)")
        #expect(finding.hint == "did you mean state?")
    }

    @Test func aGlobalSetInAHandlerIsAnError() async throws {
        let report = try await Self.check("  count = 1")
        let finding = try #require(Self.finding(report, containing: "setting non-standard global variable 'count'"), "\(report.text)")
        #expect(finding.severity == .error)
        #expect(finding.hint?.contains("state.set") == true)
    }

    @Test func aTimerSetWithoutAHandlerAndAHandlerOfAnotherName() async throws {
        let report = try await Self.check(#"  timer.after("5m", "retry", { n = 1 })"#, extra: #"on("timer.retyr", function(ev) end)"#)
        let set = try #require(Self.finding(report, containing: "timer 'retry' is set"), "\(report.text)")
        #expect(set.severity == .error && set.line == 2)
        #expect(set.hint == "the rule handles timer.retyr: is one of the two names misspelt?")
        let handler = try #require(Self.finding(report, containing: "on(\"timer.retyr\")"))
        #expect(handler.severity == .warning && handler.line == 4)
        #expect(!report.ok)
    }

    @Test func aLiteralPhoneWithoutPlusIsAnErrorNow() async throws {
        let report = try await Self.check(#"  sidobe.send { phone = "08123123123", message = "hi" }"#)
        let finding = try #require(Self.finding(report, containing: "not in E.164"), "\(report.text)")
        #expect(finding.severity == .error)
        #expect(finding.hint == #"write it with + and the country code, e.g. "+628123123123""#)
    }

    @Test func styleFindingsAreWarningsAndDoNotFail() async throws {
        let report = try await Self.check("  local unused = 1")
        let finding = try #require(Self.finding(report, containing: "unused variable 'unused'"), "\(report.text)")
        #expect(finding.severity == .warning)
        #expect(report.ok)
    }

    @Test func theStandardIsTheSandboxItself() async throws {
        let globals = await RuleLint.sandboxGlobals()
        #expect(globals["sidobe"]?.contains("send") == true)
        #expect(globals["timer"]?.contains("after") == true)
        #expect(globals["print"] == nil && globals["io"] == nil && globals["require"] == nil)
        #expect(globals.keys.contains("on") && globals.keys.contains("rule"))
    }

    @Test func theExampleRulesAreClean() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let report = await RuleChecker.check(folder: root.appendingPathComponent("rules").path)
        #expect(report.findings.isEmpty, "\(report.text)")
        #expect(report.ok)
    }
}
