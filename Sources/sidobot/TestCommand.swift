import ArgumentParser
import Foundation
import SidobotEngine
import SidobotRuleTesting

/// `sidobot test [DIR]`: runs the rule tests (`*_test.lua`) on a virtual clock with a fake Sidobe.
struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run rule tests (*_test.lua) against the engine on a virtual clock and a fake Sidobe.",
        discussion: """
            Each test(name, fn) gets a fresh engine, clock, fake Sidobe and temporary data folder. \
            The last line is `N passed, N failed`; the exit status is 1 if any test failed or none ran. \
            The test API is documented in docs/RULES.md.
            """
    )

    @Argument(help: "The folder of the rules and their *_test.lua files.")
    var directory: String = "rules"

    @Option(name: .long, help: "Run only the tests whose name or file contains this text.")
    var filter: String?

    func run() async throws {
        let runner = RuleTestRunner(folder: directory) { line in print(line) }
        let summary = await runner.runAll(filter: filter)
        if summary.failed > 0 || summary.results.isEmpty { throw ExitCode(1) }
    }
}
