import Foundation
import Logging
import LuaSandbox
@testable import SidobotEngine
import Testing

/// A run's transaction: what it changes is applied at once and journaled when it gives up the
/// engine, with its completion.
@Suite("RunTable")
struct RunTableTests {
    static func table(_ contents: MemoryJournal.Contents) -> (RunTable, Store) {
        let store = Store(deadLetterCapacity: 10, durability: .inMemory(contents))
        return (RunTable(store: store, logger: Logger(label: "test")), store)
    }

    static func set(_ key: String) -> Mutation {
        .stateSet(rule: "r", key: key, entry: StateEntry(value: .integer(1), expiresAt: nil))
    }

    @Test("a run's changes are applied at once and written as one record with its completion when it ends")
    func oneRecordPerRun() throws {
        let contents = MemoryJournal.Contents()
        let (runs, store) = Self.table(contents)
        let count = DispatchCount(eventID: "e1", journaled: true, rules: ["r"])
        let tag = runs.beginHandler(rule: "r", eventID: "e1", count: count, trace: 0)
        try runs.record(Self.set("a"), run: tag)
        try runs.record(Self.set("b"), run: tag)
        #expect(store.data.state.get(rule: "r", key: "a", now: .epoch) == .integer(1))
        #expect(contents.lines.isEmpty)
        runs.end(tag)
        #expect(contents.lines.count == 1)
        #expect(contents.lines[0].contains(#""op":"batch""#) && contents.lines[0].contains(#""op":"event.done""#))
        #expect(runs.isIdle)
    }

    @Test("a run that suspends writes what it changed before its request goes out")
    func suspension() throws {
        let contents = MemoryJournal.Contents()
        let (runs, _) = Self.table(contents)
        let tag = runs.beginHandler(rule: "r", eventID: "e1", count: DispatchCount(eventID: "e1", journaled: true, rules: ["r"]), trace: 0)
        try runs.record(Self.set("a"), run: tag)
        runs.suspended(tag)
        #expect(contents.lines.count == 1 && contents.lines[0].contains(#""key":"a""#))
        runs.end(tag)
        #expect(contents.lines.count == 2 && contents.lines[1].contains(#""op":"event.done""#))
    }

    @Test("a run that changed nothing only queues its completion; the last run of each rule marks the rule done")
    func completionMarks() throws {
        let contents = MemoryJournal.Contents()
        let (runs, store) = Self.table(contents)
        let count = DispatchCount(eventID: "e1", journaled: true, rules: ["a", "a", "b"])
        let first = runs.beginHandler(rule: "a", eventID: "e1", count: count, trace: 0)
        let second = runs.beginHandler(rule: "a", eventID: "e1", count: count, trace: 0)
        let third = runs.beginHandler(rule: "b", eventID: "e1", count: count, trace: 0)
        runs.end(first)
        runs.end(second)
        #expect(contents.lines.isEmpty)
        try store.commit(.eventDone(id: "other"))
        #expect(contents.lines.first?.contains(#""op":"event.rule_done""#) == true)
        runs.end(third)
        try store.commit(.eventDone(id: "another"))
        #expect(contents.lines.contains { $0.contains(#""op":"event.done","id":"e1""#) || ($0.contains("event.done") && $0.contains("\"e1\"")) })
    }

    @Test("outside a handler run (a rule loading, the engine's own work) a change is written at once")
    func outsideHandlers() throws {
        let contents = MemoryJournal.Contents()
        let (runs, _) = Self.table(contents)
        let loading = runs.beginLoading(rule: "r")
        try runs.record(Self.set("a"), run: loading)
        #expect(contents.lines.count == 1)
        #expect(runs.eventID(of: loading) == nil && runs.rule(of: loading) == "r")
        runs.end(loading)
        #expect(runs.isIdle)
    }
}
