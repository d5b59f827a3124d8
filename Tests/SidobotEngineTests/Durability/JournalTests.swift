import Foundation
@testable import SidobotEngine
import Testing

@Suite("Journal and snapshot files")
struct JournalTests {
    let folder: String

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sidobot-journal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    func lines(_ contents: JournalReader.Contents) -> [String] {
        contents.lines.map { String(decoding: $0.bytes, as: UTF8.self) }
    }

    @Test(arguments: FsyncPolicy.allCases)
    func appendedRecordsReadBackInOrder(policy: FsyncPolicy) throws {
        let path = folder + "/journal.jsonl"
        let writer = try JournalWriter(path: path, policy: policy)
        for i in 1...100 { try writer.append(Array(#"{"n":\#(i)}"#.utf8)) }
        try writer.close()
        let contents = try JournalReader.read(path: path)
        #expect(lines(contents) == (1...100).map { #"{"n":\#($0)}"# })
        #expect(contents.lines.last?.number == 100)
        #expect(contents.tornTail == nil)
    }

    @Test func aCompactionInTwoHalvesKeepsWhatWasWrittenBetweenThem() throws {
        let path = folder + "/journal.jsonl"
        let writer = try JournalWriter(path: path, policy: .everysec)
        try writer.append(Array(#"{"n":1}"#.utf8))
        let offset = writer.byteCount
        try writer.append(Array(#"{"n":2}"#.utf8))
        // The first half runs off the engine, the second on it after more records were written.
        let copied = try writer.tail.copy(from: offset, into: path + ".compacting")
        try writer.append(Array(#"{"n":3}"#.utf8))
        try writer.finishCompaction(temp: path + ".compacting", copiedUpTo: copied)
        try writer.append(Array(#"{"n":4}"#.utf8))
        try writer.close()
        #expect(lines(try JournalReader.read(path: path)) == [#"{"n":2}"#, #"{"n":3}"#, #"{"n":4}"#])
        #expect(!FileManager.default.fileExists(atPath: path + ".compacting"))
        #expect(writer.tail.writtenBytes == writer.byteCount)
    }

    @Test func theEverysecFsyncIsHandedOverOnlyWhenSomethingIsPending() throws {
        let writer = try JournalWriter(path: folder + "/journal.jsonl", policy: .everysec)
        #expect(writer.takeSyncDescriptor() == nil)
        try writer.append(Array(#"{"n":1}"#.utf8))
        let descriptor = try #require(writer.takeSyncDescriptor())
        #expect(fsync(descriptor) == 0)
        close(descriptor)
        #expect(writer.takeSyncDescriptor() == nil)
    }

    @Test func aTornLastLineIsSetAsideAndAppendsContinueCleanly() throws {
        let path = folder + "/journal.jsonl"
        try Data("{\"n\":1}\n{\"n\":2}\n{\"n\":3, \"par".utf8).write(to: URL(fileURLWithPath: path))
        let contents = try JournalReader.read(path: path)
        #expect(lines(contents) == [#"{"n":1}"#, #"{"n":2}"#])
        #expect(contents.tornTail.map { String(decoding: $0, as: UTF8.self) } == #"{"n":3, "par"#)
        #expect(try String(contentsOfFile: path + ".torn", encoding: .utf8) == #"{"n":3, "par"#)
        let writer = try JournalWriter(path: path, policy: .always)
        try writer.append(Array(#"{"n":4}"#.utf8))
        try writer.close()
        #expect(lines(try JournalReader.read(path: path)) == [#"{"n":1}"#, #"{"n":2}"#, #"{"n":4}"#])
    }

    @Test func missingJournalReadsEmpty() throws {
        let contents = try JournalReader.read(path: folder + "/none.jsonl")
        #expect(contents.lines.isEmpty)
    }

    @Test func discardKeepsOnlyTheTailAfterTheOffset() throws {
        let path = folder + "/journal.jsonl"
        let writer = try JournalWriter(path: path, policy: .everysec)
        try writer.append(Array("{\"n\":1}".utf8))
        try writer.append(Array("{\"n\":2}".utf8))
        let covered = writer.byteCount
        try writer.append(Array("{\"n\":3}".utf8))
        try writer.discard(before: covered)
        try writer.append(Array("{\"n\":4}".utf8))
        try writer.close()
        #expect(lines(try JournalReader.read(path: path)) == ["{\"n\":3}", "{\"n\":4}"])
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
    }

    @Test func snapshotWriteIsAtomicAndLeavesNoTempFile() throws {
        let path = folder + "/snapshot.json"
        #expect(try SnapshotFile.read(path: path) == nil)
        try SnapshotFile.write(Data("{\"v\":1}".utf8), to: path)
        try SnapshotFile.write(Data("{\"v\":2}".utf8), to: path)
        #expect(try SnapshotFile.read(path: path) == Data("{\"v\":2}".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["snapshot.json"])
    }

    @Test func unreadableFilesNameThePath() throws {
        let path = folder + "/snapshot.json"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        #expect(throws: DurabilityError.self) { try SnapshotFile.read(path: path) }
        do {
            _ = try JournalWriter(path: folder + "/missing-folder/journal.jsonl", policy: .always)
            Issue.record("opened a journal in a missing folder")
        } catch {
            #expect(error.description.hasPrefix(folder + "/missing-folder/journal.jsonl: cannot open for writing"))
        }
    }
}
