import ArgumentParser
import Foundation
import SidobotRuleTesting

/// `sidobot types`: the LuaLS annotations of the rule API and the test API.
struct TypesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "types",
        abstract: "Print LuaLS annotations (---@meta) of the rule API and the test API, for an editor.",
        discussion: "Save them where .luarc.json's workspace.library points (sidobot init does). See docs/RULES.md."
    )

    func run() async throws {
        print(LuaTypes.meta, terminator: "")
    }
}

/// `sidobot init DIR`: a rules folder to start from.
struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a rules folder: one rule and its test, .luarc.json and the API types for the editor, .luacheckrc.",
        discussion: "The folder must be new or empty. Exit 2 when it is not. See docs/RULES.md."
    )

    @Argument(help: "The folder to create.")
    var directory: String

    func run() async throws {
        try await runReportingConfigurationErrors {
            let written: [String]
            do {
                written = try await RuleScaffold.create(in: directory)
            } catch {
                throw ConfigurationError("\(error)")
            }
            for file in written { print("created \(directory)/\(file)") }
            print("next: sidobot check \(directory) && sidobot test \(directory)")
        }
    }
}
