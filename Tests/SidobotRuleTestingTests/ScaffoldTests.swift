import Foundation
@testable import SidobotRuleTesting
import Testing

@Suite("sidobot types and sidobot init")
struct ScaffoldTests {
    /// Every function the sandbox registers has its annotation, and no annotation names one it
    /// does not have: the types cannot fall behind the API.
    @Test func theTypesCoverTheSandboxExactly() async throws {
        let globals = await RuleLint.sandboxGlobals()
        #expect(!globals.isEmpty)
        var registered = Set<String>()
        for (name, fields) in globals where !LuaTypes.standardLibrary.contains(name) {
            if fields.isEmpty { registered.insert(name) } else { for field in fields { registered.insert("\(name).\(field)") } }
        }
        let annotated = Set(LuaTypes.entries.keys)
        #expect(registered.subtracting(annotated).isEmpty, "registered without an annotation: \(registered.subtracting(annotated).sorted())")
        #expect(annotated.subtracting(registered).isEmpty, "annotated but not in the sandbox: \(annotated.subtracting(registered).sorted())")
        for table in LuaTypes.tables { #expect(globals[table]?.isEmpty == false, "\(table)") }
        let meta = LuaTypes.meta
        #expect(meta.hasPrefix("---@meta"))
        for name in annotated.sorted() { #expect(meta.contains("function \(name)("), "\(name)") }
    }

    /// The same for the test API: the fields of `t` the test prelude defines.
    @Test func theTypesCoverTheTestAPIExactly() {
        let prelude = RuleTestRunner.prelude
        var fields = Set(prelude.matches(of: /([a-z_]+) = H\.[a-z_]+/).map { String($0.1) })
        fields.subtract(["fail_next", "answer", "default", "number"])  // t.sidobe.*
        fields.insert("sidobe")
        fields.insert("test")
        #expect(fields == Set(LuaTypes.testEntries.keys), "prelude: \(fields.sorted()), annotated: \(LuaTypes.testEntries.keys.sorted())")
        for sub in ["answer", "default", "fail_next", "number"] { #expect(LuaTypes.testEntries["sidobe"]?.contains("\(sub):") == true, "\(sub)") }
    }

    @Test func anInitialisedFolderPassesCheckAndTest() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sidobot-init-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let written = try await RuleScaffold.create(in: folder)
        #expect(Set(written) == [".luacheckrc", ".luarc.json", ".sidobot/sidobot.lua", "hello.lua", "hello_test.lua"])
        let check = await RuleChecker.check(folder: folder)
        #expect(check.ok && check.findings.isEmpty, "\(check.text)")
        let (summary, lines) = await runRuleTests(in: folder)
        #expect(summary.failed == 0 && summary.passed == 2, "\(lines.text)")
        let luarc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/.luarc.json"))) as? [String: Any]
        #expect(luarc?["workspace.library"] as? [String] == [".sidobot"])
        #expect(try String(contentsOfFile: folder + "/.sidobot/sidobot.lua", encoding: .utf8) == LuaTypes.meta)
        // luacheck itself, with the folder's .luacheckrc, as an editor plugin runs it.
        if let luacheck = RuleLint.luacheck {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: luacheck)
            process.arguments = ["--no-color", "."]
            process.currentDirectoryURL = URL(fileURLWithPath: folder)
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(output)")
        }
        // A second init into the same folder refuses to overwrite.
        await #expect(throws: RuleScaffold.Failure.self) { _ = try await RuleScaffold.create(in: folder) }
    }
}
