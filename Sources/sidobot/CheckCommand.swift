import ArgumentParser
import SidobotEngine
import SidobotRuleTesting

/// `sidobot check [DIR]`: loads every rule in the sandbox without starting the engine.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Load and lint every rule, list what each registers, report errors (exit 1 on any).",
        discussion: """
            Nothing is started: no data folder is read, nothing is sent. Per rule: its handlers, its hooks \
            (POST /hooks/NAME) and its schedules with their next three fire times in the rule's time zone. \
            Then each rule is linted: luacheck (Debian's lua-check) with the sandbox's globals as its standard, \
            and the engine's cross-checks (a timer set without a handler, a phone without +). Every finding is \
            file:line:col with a hint; undefined names, unhandled timers and bad phones are errors, style is a \
            warning. See docs/RULES.md, "Finding mistakes".
            """
    )

    @Argument(help: "The rules folder.")
    var directory: String = "rules"

    func run() async throws {
        let report = await RuleChecker.check(folder: directory)
        print(report.text)
        if !report.ok { throw ExitCode(1) }
    }
}
