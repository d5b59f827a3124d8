import Foundation
@testable import SidobotRuleTesting
import SidobotEngine
import Testing

/// Every fenced block of docs/RULES.md is exercised, by the marker in the comment before it
/// (the convention is written at the top of the guide).
@Suite("docs/RULES.md stays true")
struct RulesGuideTests {
    struct Block {
        var marker: String
        var language: String
        var body: String
        var line: Int
    }

    static func blocks() throws -> [Block] {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/RULES.md"), encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        var blocks: [Block] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            guard line.hasPrefix("```") else { index += 1; continue }
            let language = String(line.dropFirst(3)).trimmingCharacters(in: .whitespaces)
            var marker = ""
            if index > 0 {
                let previous = lines[index - 1].trimmingCharacters(in: .whitespaces)
                if previous.hasPrefix("<!--") && previous.hasSuffix("-->") {
                    marker = String(previous.dropFirst(4).dropLast(3)).trimmingCharacters(in: .whitespaces)
                }
            }
            var body: [String] = []
            var end = index + 1
            while end < lines.count && !lines[end].hasPrefix("```") {
                body.append(lines[end])
                end += 1
            }
            blocks.append(Block(marker: marker, language: language, body: body.joined(separator: "\n"), line: index + 1))
            index = end + 1
        }
        return blocks
    }

    static func value(of marker: String, _ kind: String) -> String? {
        guard marker.hasPrefix(kind + ":") else { return nil }
        return String(marker.dropFirst(kind.count + 1)).trimmingCharacters(in: .whitespaces)
    }

    @Test("every block is marked, every rule loads, every test passes, every broken rule fails as said")
    func guide() async throws {
        let blocks = try Self.blocks()
        #expect(blocks.count >= 8)
        let rules = try TempRules()
        var ruleSources: [String: String] = [:]
        var testCount = 0
        for block in blocks {
            if let name = Self.value(of: block.marker, "rule") {
                #expect(block.language == "lua", "line \(block.line)")
                ruleSources[name] = block.body
                try rules.write("\(name).lua", block.body)
            } else if let name = Self.value(of: block.marker, "test") {
                try rules.write("\(name)_test.lua", block.body)
                testCount += 1
            } else if let name = Self.value(of: block.marker, "mistaken-rule") {
                // Loads, but `sidobot check` finds mistakes in it: kept apart from the rules that must pass.
                #expect(block.language == "lua", "line \(block.line)")
                ruleSources[name] = block.body
            } else if let expected = Self.value(of: block.marker, "broken-rule") {
                let broken = try TempRules()
                try broken.write("broken.lua", block.body)
                let report = await RuleChecker.check(folder: broken.folder)
                #expect(!report.ok, "docs/RULES.md:\(block.line): this rule should not load")
                #expect(report.text.contains(expected), "docs/RULES.md:\(block.line): expected an error containing \(expected), got \(report.text)")
            } else if let name = Self.value(of: block.marker, "check-output") {
                let alone = try TempRules()
                try alone.write("\(name).lua", try #require(ruleSources[name], "docs/RULES.md:\(block.line): no rule \(name) above"))
                let report = await RuleChecker.check(folder: alone.folder)
                #expect(report.text == block.body, "docs/RULES.md:\(block.line): sidobot check prints\n\(report.text)")
            } else if block.marker == "test-output" {
                let lines = block.body.components(separatedBy: "\n")
                #expect(lines.first?.hasSuffix("_test.lua") == true, "docs/RULES.md:\(block.line)")
                #expect(lines.contains { $0.hasPrefix("  FAIL  ") }, "docs/RULES.md:\(block.line)")
                #expect(lines.contains { $0.contains("_test.lua:") && $0.contains(": t.eq: values differ") }, "docs/RULES.md:\(block.line)")
                #expect(lines.contains { $0.contains("expected: ") } && lines.contains { $0.contains("actual:   ") })
            } else if block.marker == "shell" {
                for line in block.body.components(separatedBy: "\n") where line.hasPrefix("sidobot ") {
                    let command = line.split(separator: " ")[1]
                    #expect(["check", "test", "run", "send", "simulator", "sign", "trace", "types", "init"].contains(String(command)), "docs/RULES.md:\(block.line)")
                }
            } else {
                Issue.record("docs/RULES.md:\(block.line): a code block without a marker comment (see the top of the guide)")
            }
        }
        #expect(testCount >= 2)
        let check = await RuleChecker.check(folder: rules.folder)
        #expect(check.ok, "\(check.text)")
        let (summary, lines) = await runRuleTests(in: rules.folder)
        #expect(summary.failed == 0, "\(lines.text)")
        #expect(summary.passed >= 4)
    }
}
