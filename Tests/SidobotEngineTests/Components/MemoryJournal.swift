import Foundation
import Synchronization
@testable import SidobotEngine

/// A journal in memory, for the durability layer's tests: it keeps the lines appended, can be
/// told to fail the next append, and stores snapshots. Shares its contents through a box so a
/// test can look while ``Durability`` owns the journal.
final class MemoryJournal: Journal {
    final class Contents: Sendable {
        private let state = Mutex<(lines: [String], snapshot: [UInt8]?, failNext: Bool, appends: Int)>(([], nil, false, 0))
        var lines: [String] { state.withLock { $0.lines } }
        var snapshot: [UInt8]? { state.withLock { $0.snapshot } }
        /// How many appends (batches) the journal took.
        var appends: Int { state.withLock { $0.appends } }
        func failNextAppend() { state.withLock { $0.failNext = true } }
        /// The sequence numbers of the lines, in order.
        var sequences: [UInt64] { lines.compactMap { FileJournal.sequencePrefix(ArraySlice($0.utf8)) } }

        fileprivate func append(_ text: String) throws(DurabilityError) {
            try state.withLock { (state) throws(DurabilityError) in
                if state.failNext {
                    state.failNext = false
                    throw DurabilityError(path: "memory", reason: "disk full (on purpose)")
                }
                state.appends += 1
                state.lines += text.split(separator: "\n").map(String.init)
            }
        }

        fileprivate func store(_ snapshot: [UInt8], dropping covered: UInt64) {
            state.withLock { state in
                state.snapshot = snapshot
                state.lines.removeAll { (FileJournal.sequencePrefix(ArraySlice($0.utf8)) ?? 0) <= covered }
            }
        }
    }

    struct Writer: SnapshotWriter {
        let sequence: UInt64
        let contents: Contents
        func write(_ snapshot: [UInt8]) throws(DurabilityError) { contents.store(snapshot, dropping: sequence) }
    }

    let contents: Contents
    private var last: UInt64 = 0

    init(_ contents: Contents = Contents()) { self.contents = contents }

    var location: String { "memory" }
    var durableThrough: UInt64 { last }
    var syncsEachAppend: Bool { false }
    func readSnapshot() throws(DurabilityError) -> [UInt8]? { contents.snapshot }

    func readRecords(after sequence: UInt64, _ body: (JournalLine) throws(DurabilityError) -> Void) throws(DurabilityError) -> [UInt8]? {
        for (index, line) in contents.lines.enumerated() {
            if let seq = FileJournal.sequencePrefix(ArraySlice(line.utf8)), seq <= sequence { continue }
            try body(JournalLine(number: index + 1, bytes: ArraySlice(line.utf8)))
        }
        return nil
    }

    func append(_ lines: [UInt8], through sequence: UInt64) throws(DurabilityError) {
        try contents.append(String(decoding: lines, as: UTF8.self))
        last = sequence
    }

    func syncInBackground(through sequence: UInt64) {}
    func beginSnapshot(through sequence: UInt64) -> (any SnapshotWriter)? { Writer(sequence: sequence, contents: contents) }
    func finishSnapshot(_ writer: any SnapshotWriter) throws(DurabilityError) {}
    func abandonSnapshot(_ writer: any SnapshotWriter) {}
    func close() throws(DurabilityError) {}
}

extension Durability {
    /// A durability layer over a fresh memory journal (nothing to recover).
    static func inMemory(_ contents: MemoryJournal.Contents = MemoryJournal.Contents()) -> Durability {
        let durability = Durability()
        try! durability.open({ MemoryJournal(contents) }, recover: { _ in 0 })
        return durability
    }
}
