import Foundation
import LuaSandbox
@testable import SidobotEngine
import Testing

@Suite("Engine durability")
struct EngineDurabilityTests {
    static let rule = """
        on("hook.go", function(ev)
          state.set("greeting", "hello")
          state.set("short", 1, 60)
          timer.after("1h", "later", { n = 1 })
          sidobe.send { phone = "+628123123123", message = "x", async = true, key = "k" }
        end)
        on("timer.later", function(ev) state.set("fired", ev.payload.n) end)
        """

    @Test func aCrashLosesNothingAcknowledged() async throws {
        let h = try EngineHarness()
        try h.rule("r", Self.rule)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        _ = try await h.webhook("m1", "SUCCESS", id: "wh-crash")
        // No shutdown: the engine is simply dropped, as by SIGKILL.
        try await h.start()
        #expect(await h.state("r")["greeting"] == "hello")
        #expect(await h.engine.pendingTimers().map(\.name) == ["later"])
        #expect(await h.engine.message(id: "m1")?.status == "SUCCESS")
        #expect(try await h.webhook("m1", "SUCCESS", id: "wh-crash") == .duplicate(eventID: "wh-crash"))
        // The timer set before the crash fires after it, and TTLs still run out.
        await h.engine.advance(by: 3600)
        #expect(await h.state("r")["fired"] == .integer(1))
        #expect(await h.state("r")["short"] == nil)
    }

    @Test func shutdownWritesASnapshotAndEmptiesTheJournal() async throws {
        let h = try EngineHarness()
        try h.rule("r", Self.rule)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        try await h.engine.shutdown()
        let journal = try Data(contentsOf: URL(fileURLWithPath: h.dataFolder + "/journal.jsonl"))
        #expect(journal.isEmpty)
        let snapshot = try String(contentsOfFile: h.dataFolder + "/snapshot.json", encoding: .utf8)
        #expect(snapshot.hasPrefix("{\"format\":1,"))
        try await h.start()
        #expect(await h.state("r")["greeting"] == "hello")
        #expect(await h.engine.pendingTimers().count == 1)
        #expect(await h.engine.messages().count == 1)
    }

    @Test func aSnapshotTakenUnderWayKeepsLaterRecords() async throws {
        let h = try EngineHarness()
        try h.rule("r", #"on("hook.go", function(ev) state.incr("n") end)"#)
        try await h.start()
        for _ in 0..<3 { _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain") }
        await h.engine.settle()
        await h.engine.takeSnapshot()
        for _ in 0..<2 { _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain") }
        await h.engine.settle()
        try await h.start()
        #expect(await h.state("r")["n"] == .integer(5))
    }

    @Test func aRunMakingMoreChangesThanOneRecordHoldsIsJournaledInPieces() async throws {
        let h = try EngineHarness()
        h.configuration.limits.instructionsPerRun = 50_000_000
        try h.rule("r", #"on("hook.go", function(ev) for i = 1, 25000 do state.set("k" .. i, i) end state.set("last", true) end)"#)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        let lines = try String(contentsOfFile: h.dataFolder + "/journal.jsonl", encoding: .utf8).split(separator: "\n")
        // The hook's acceptance, then pieces of at most 10,000 changes, the last with the completion.
        let pieces = lines.filter { $0.contains(#""op":"batch""#) && $0.contains("state.set") }
        #expect(pieces.count == 3)
        #expect(pieces.last?.contains("event.done") == true)
        #expect(lines.allSatisfy { $0.utf8.count < 1 << 20 })
        try await h.start()
        let state = await h.state("r")
        #expect(state.count == 25_001)
        #expect(state["k25000"] == .integer(25000))
    }

    @Test func aTornLastJournalLineIsTolerated() async throws {
        let h = try EngineHarness()
        try h.rule("r", #"on("hook.go", function(ev) state.incr("n") end)"#)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: h.dataFolder + "/journal.jsonl"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"op":"state.set","rule":"r","ke"#.utf8))
        try handle.close()
        try await h.start()
        #expect(await h.state("r")["n"] == .integer(1))
        #expect(FileManager.default.fileExists(atPath: h.dataFolder + "/journal.jsonl.torn"))
    }

    @Test func aCorruptJournalLineIsRefusedNamingFileAndLine() async throws {
        let h = try EngineHarness()
        try h.rule("r", #"on("hook.go", function(ev) state.incr("n") end)"#)
        try await h.start()
        _ = try await h.engine.acceptHook(name: "go", body: [], contentType: "text/plain")
        await h.engine.settle()
        let path = h.dataFolder + "/journal.jsonl"
        var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        lines[0] = "{not json"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            try await h.start()
            Issue.record("started on a corrupt journal")
        } catch let error as EngineError {
            #expect(error.description.contains("journal.jsonl:1:"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func aCorruptSnapshotIsRefusedAndLeftByteIdentical() async throws {
        let h = try EngineHarness()
        try h.rule("r", #"on("hook.go", function(ev) state.incr("n") end)"#)
        try await h.start()
        try await h.engine.shutdown()
        let path = h.dataFolder + "/snapshot.json"
        let corrupt = Data(#"{"format":1,"sequence":"#.utf8)
        try corrupt.write(to: URL(fileURLWithPath: path))
        do {
            try await h.start()
            Issue.record("started on a corrupt snapshot")
        } catch let error as EngineError {
            #expect(error.description.contains("snapshot.json: corrupt snapshot"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == corrupt)
    }
}
