import LuaSandbox
@testable import SidobotEngine
import Testing

@Suite("Engine: a rule's own CPU limit")
struct CPULimitTests {
    @Test func aRuleCanSetItsOwnCPULimitAndTheAbortIsCountedByLimit() async throws {
        let h = try EngineHarness()
        h.configuration.limits.instructionsPerRun = .max
        h.configuration.limits.cpuPerRun = .seconds(60)
        try h.rule("spin", #"rule { cpu_limit = "50ms" } on("hook.go", function(ev) while true do end end)"#)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        let spin = try #require(await h.engine.ruleSummaries().first { $0.name == "spin" })
        #expect(spin.limitHits == ["cpu": 1])
        #expect(spin.lastError?.contains("CPU time limit") == true)
    }

    @Test func aCPULimitThatIsNotADurationIsALoadError() async throws {
        let h = try EngineHarness()
        try h.rule("bad", #"rule { cpu_limit = true }"#)
        // At start a broken rule stops the engine, with the file, line and what to write instead.
        let error = await #expect(throws: (any Error).self) { try await h.start() }
        #expect("\(String(describing: error))".contains("rules/bad.lua:1: bad argument #1 to 'rule' (cpu_limit must be a duration"))
    }
}
