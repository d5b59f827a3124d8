import Foundation
@testable import SidobotRuleTesting
import SidobotEngine
import Testing

@Suite("sidobot test: the rule test runner")
struct RuleTestRunnerTests {
    @Test("a passing and a failing test: per-test lines, file:line, expected vs actual, the summary line")
    func passAndFail() async throws {
        let rules = try TempRules()
        try rules.write("hello.lua", """
            on("hook.hello", function(ev) sidobe.send { phone = ev.body.phone, message = "hello " .. ev.body.name } end)
            """)
        try rules.write("hello_test.lua", """
            test("greets", function(t)
              t.hook("hello", { phone = "+628123123123", name = "Ana" })
              t.eq(t.sends()[1].message, "hello Ana")
            end)

            test("wrong expectation", function(t)
              t.hook("hello", { phone = "+628123123123", name = "Ana" })
              t.eq(t.sends()[1].message, "hi Ana", "greeting")
            end)
            """)
        let (summary, lines) = await runRuleTests(in: rules.folder)
        #expect(summary.passed == 1)
        #expect(summary.failed == 1)
        #expect(lines.all.last == "1 passed, 1 failed")
        #expect(lines.all.contains("  pass  greets"))
        #expect(lines.all.contains("  FAIL  wrong expectation"))
        #expect(lines.text.contains("rules/hello_test.lua:8: greeting: values differ"))
        #expect(lines.text.contains("expected: \"hi Ana\""))
        #expect(lines.text.contains("actual:   \"hello Ana\""))
    }

    /// Issue 19's finding: a typo in a handler (`sidobe.sned`) made every assertion after it fail
    /// with `expected: 1 actual: 0`, the cause only in a log dump. Now the handler's error is the
    /// first thing under the FAIL line.
    @Test("an assertion failing after a handler error shows that error first, with the rule's file:line")
    func theCauseComesFirst() async throws {
        let rules = try TempRules()
        try rules.write("invoice.lua", """
            on("hook.invoice", function(ev)
              sidobe.sned { phone = ev.body.phone, message = "your invoice" }
            end)
            """)
        try rules.write("invoice_test.lua", """
            test("sends the invoice", function(t)
              t.hook("invoice", { phone = "+628123123123" })
              t.eq(#t.sends(), 1, "sends")
            end)
            """)
        let (summary, lines) = await runRuleTests(in: rules.folder)
        #expect(summary.failed == 1)
        let printed = lines.text.split(separator: "\n").map(String.init)
        let fail = try #require(printed.firstIndex(of: "  FAIL  sends the invoice"), "\(lines.text)")
        let cause = printed[fail + 1]
        #expect(cause.hasPrefix("        a handler failed (rule invoice): "), "\(lines.text)")
        #expect(cause.contains("rules/invoice.lua:2:"), "\(cause)")
        #expect(cause.contains("'sned'"), "\(cause)")
        #expect(printed[fail + 2].contains("rules/invoice_test.lua:3: sends: values differ"), "\(lines.text)")
    }

    @Test("table diffs name the differing paths")
    func tableDiff() async throws {
        let rules = try TempRules()
        try rules.write("x_test.lua", """
            test("diff", function(t)
              t.eq({ a = 1, list = { 1, 2 } }, { a = 1, list = { 1, 3 }, b = true })
            end)
            """)
        let (summary, lines) = await runRuleTests(in: rules.folder)
        #expect(summary.failed == 1)
        #expect(lines.text.contains(".b: missing, expected true"))
        #expect(lines.text.contains(".list[2]: expected 3, got 2"))
    }

    @Test("a handler error fails the test with the rule's file:line, unless read with t.dead_letters()")
    func handlerErrors() async throws {
        let rules = try TempRules()
        try rules.write("boom.lua", """
            on("hook.boom", function(ev)
              error("kaboom")
            end)
            """)
        try rules.write("boom_test.lua", """
            test("unexpected", function(t) t.hook("boom", {}) end)
            test("expected", function(t)
              t.hook("boom", {})
              t.eq(#t.dead_letters(), 1)
            end)
            """)
        let (summary, lines) = await runRuleTests(in: rules.folder)
        #expect(summary.passed == 1)
        #expect(summary.failed == 1)
        #expect(lines.text.contains("rules/boom.lua:2: kaboom"))
    }

    @Test("--filter runs only matching tests; each test gets a fresh engine and fake")
    func filterAndIsolation() async throws {
        let rules = try TempRules()
        try rules.write("count.lua", """
            on("hook.count", function(ev) state.incr("n"); sidobe.send { phone = "+628123123123", message = "x" } end)
            """)
        try rules.write("count_test.lua", """
            test("one: first", function(t) t.hook("count", {}); t.eq(t.state().n, 1); t.eq(t.sends()[1].id, "m1") end)
            test("one: second", function(t) t.hook("count", {}); t.eq(t.state().n, 1); t.eq(#t.sends(), 1) end)
            test("other", function(t) t.fail("should not run") end)
            """)
        let (summary, lines) = await runRuleTests(in: rules.folder, filter: "one:")
        #expect(summary.passed == 2)
        #expect(summary.failed == 0)
        #expect(lines.all.last == "2 passed, 0 failed")
    }

    @Test("a test file that does not compile is one failure with file:line")
    func brokenTestFile() async throws {
        let rules = try TempRules()
        try rules.write("bad_test.lua", "test(\"x\", function(t)\n  t.eq(1, 1\nend)\n")
        let (summary, lines) = await runRuleTests(in: rules.folder)
        #expect(summary.failed == 1)
        #expect(lines.text.contains("rules/bad_test.lua:"))
    }

    @Test("a rule that does not load fails the test that loads it")
    func brokenRule() async throws {
        let rules = try TempRules()
        try rules.write("bad.lua", "on(\"hook.x\", function() end)\nprint('hi')\n")
        try rules.write("bad_test.lua", "test(\"loads\", function(t) t.load(\"bad\") end)\n")
        let (summary, lines) = await runRuleTests(in: rules.folder)
        #expect(summary.failed == 1)
        #expect(lines.text.contains("rules/bad.lua:2:"))
    }

    @Test("virtual time: timers fire in order, at their due time, and restart keeps them")
    func virtualTime() async throws {
        let rules = try TempRules()
        try rules.write("tick.lua", """
            on("hook.start", function(ev)
              timer.after("2m", "b", {})
              timer.after("1m", "a", {})
            end)
            on("timer.a", function(ev) state.set("a", now()) end)
            on("timer.b", function(ev) state.set("b", now()) end)
            """)
        try rules.write("tick_test.lua", """
            test("order", function(t)
              local start = t.now()
              t.hook("start", {})
              t.restart()
              t.eq(#t.timers(), 2)
              t.advance("1h")
              t.eq(t.state().a - start, 60)
              t.eq(t.state().b - start, 120)
              t.eq(t.now() - start, 3600)
            end)
            """)
        let (summary, lines) = await runRuleTests(in: rules.folder)
        #expect(summary.failed == 0, "\(lines.text)")
        #expect(summary.passed == 1)
    }

    @Test("the example rules in rules/ pass their tests", .timeLimit(.minutes(5)))
    func exampleRules() async throws {
        let folder = repositoryRoot.appendingPathComponent("rules").path
        let (summary, lines) = await runRuleTests(in: folder)
        let failures = summary.results.filter { !$0.passed && !$0.file.hasSuffix("declarative_retry_test.lua") }
        #expect(failures.isEmpty, "\(lines.text)")
        #expect(summary.passed >= 30)
    }
}
