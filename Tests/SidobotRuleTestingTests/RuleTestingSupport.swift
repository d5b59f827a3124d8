import Foundation
@testable import SidobotRuleTesting
import SidobotEngine
import Synchronization

/// A temporary folder named `rules` (so paths show as `rules/NAME.lua`), removed on deinit.
final class TempRules {
    let root: URL
    let folder: String

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("sidobot-ruletesting-\(UUID().uuidString)")
        folder = root.appendingPathComponent("rules").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    func write(_ file: String, _ text: String) throws {
        try text.write(toFile: folder + "/" + file, atomically: true, encoding: .utf8)
    }
}

/// Collects the runner's output lines.
final class Lines: Sendable {
    private let state = Mutex<[String]>([])
    var all: [String] { state.withLock { $0 } }
    var text: String { all.joined(separator: "\n") }
    func append(_ line: String) { state.withLock { $0.append(line) } }
}

/// Runs the tests of a folder and returns the summary and the output.
func runRuleTests(in folder: String, filter: String? = nil) async -> (RuleTestSummary, Lines) {
    let lines = Lines()
    let runner = RuleTestRunner(folder: folder) { lines.append($0) }
    let summary = await runner.runAll(filter: filter)
    return (summary, lines)
}

/// The repository root (this file is Tests/SidobotEngineTests/RuleTesting/…).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
