import ArgumentParser
import SidobotEngine
import SidobotRuleTesting

/// `sidobot check [DIR]`: loads every rule in the sandbox without starting the engine.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Load every rule in the sandbox, list what each registers, report errors (exit 1 on any).",
        discussion: """
            Nothing is started: no data folder is read, nothing is sent. Per rule: its handlers, its hooks \
            (POST /hooks/NAME) and its schedules with their next three fire times in the rule's time zone. \
            Every error is shown as file:line with a hint. See docs/RULES.md.
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
