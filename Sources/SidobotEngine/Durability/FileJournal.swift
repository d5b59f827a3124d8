#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CoreMetrics
import Foundation
import Logging
import Synchronization

/// The journal in the data folder: `journal.jsonl` (one record per line) and `snapshot.json`.
///
/// A batch is committed once its `write(2)` returned; ``FsyncPolicy`` decides when it is forced
/// to disk: before the acknowledgement (`always`), by the once-a-second tick on a thread of its
/// own (`everysec`), or when the operating system likes (`no`). A snapshot is written beside the
/// journal off the engine's executor, with the journal records it does not cover copied into a
/// temp file meanwhile; the engine then appends what came after and swaps the files.
final class FileJournal: Journal {
    let folder: String
    let policy: FsyncPolicy
    var journalPath: String { folder + "/journal.jsonl" }
    var snapshotPath: String { folder + "/snapshot.json" }
    var location: String { journalPath }

    private var writer: JournalWriter?
    /// How far fsyncs reached: written by the background fsync, read by anyone.
    private let durable = DurableMark()
    private var lastAppended: UInt64 = 0
    private var snapshotUnderWay = false
    private let fsyncTimer: CoreMetrics.Timer
    private let logger: Logger

    /// Opens the data folder, creating it if it does not exist.
    init(folder: String, policy: FsyncPolicy, fsyncTimer: CoreMetrics.Timer, logger: Logger) throws(DurabilityError) {
        self.folder = folder
        self.policy = policy
        self.fsyncTimer = fsyncTimer
        self.logger = logger
        var isFolder: ObjCBool = false
        if !FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw DurabilityError(path: folder, reason: "cannot create the data folder: \(error.localizedDescription)")
            }
        } else if !isFolder.boolValue {
            throw DurabilityError(path: folder, reason: "is not a folder")
        }
    }

    func readSnapshot() throws(DurabilityError) -> [UInt8]? {
        try SnapshotFile.read(path: snapshotPath).map { Array($0) }
    }

    func readRecords(after sequence: UInt64, _ body: (JournalLine) throws(DurabilityError) -> Void) throws(DurabilityError) -> [UInt8]? {
        let contents = try JournalReader.read(path: journalPath)
        for line in contents.lines {
            // Records covered by the snapshot are skipped by their `{"seq":N,` prefix, without parsing.
            if let seq = Self.sequencePrefix(line.bytes), seq <= sequence { continue }
            try body(JournalLine(number: line.number, bytes: line.bytes))
        }
        writer = try JournalWriter(path: journalPath, policy: policy)
        return contents.tornTail
    }

    /// The sequence number a record written by this engine starts with, if the line starts so.
    static func sequencePrefix(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        let prefix = Array(#"{"seq":"#.utf8)
        guard bytes.count > prefix.count, bytes.starts(with: prefix) else { return nil }
        var value: UInt64 = 0
        var index = bytes.startIndex + prefix.count
        var digits = 0
        while index < bytes.endIndex, bytes[index] >= 0x30, bytes[index] <= 0x39, digits < 19 {
            value = value * 10 + UInt64(bytes[index] - 0x30)
            index += 1
            digits += 1
        }
        return digits > 0 && index < bytes.endIndex && bytes[index] == UInt8(ascii: ",") ? value : nil
    }

    func append(_ lines: [UInt8], through sequence: UInt64) throws(DurabilityError) {
        guard let writer else { throw DurabilityError(path: journalPath, reason: "the journal is not open") }
        try writer.appendLines(lines)
        lastAppended = sequence
        if policy == .always { durable.advance(to: sequence) }
    }

    var durableThrough: UInt64 { durable.sequence }

    var syncsEachAppend: Bool { policy == .always }

    func syncInBackground(through sequence: UInt64) {
        guard policy == .everysec, let descriptor = writer?.takeSyncDescriptor() else { return }
        let timer = fsyncTimer, logger = logger, path = journalPath, durable = durable
        // Fsyncing a second of writes can take milliseconds; the engine goes on meanwhile (as Redis does).
        Self.fsyncQueue.async {
            let start = DispatchTime.now().uptimeNanoseconds
            let failed = fsync(descriptor) != 0 ? FileIO.errorText() : nil
            FileIO.closeDescriptor(descriptor)
            timer.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
            if let failed {
                logger.error("journal fsync failed", metadata: ["path": "\(path)", "error": "\(failed)"])
            } else {
                durable.advance(to: sequence)
            }
        }
    }

    static let fsyncQueue = DispatchQueue(label: "sidobot.journal.fsync")

    func beginSnapshot(through sequence: UInt64) -> (any SnapshotWriter)? {
        guard let writer, !snapshotUnderWay else { return nil }
        snapshotUnderWay = true
        return FileSnapshotWriter(sequence: sequence, snapshotPath: snapshotPath, tail: writer.tail, offset: writer.byteCount,
                                  temp: journalPath + ".compacting")
    }

    func finishSnapshot(_ snapshot: any SnapshotWriter) throws(DurabilityError) {
        snapshotUnderWay = false
        guard let snapshot = snapshot as? FileSnapshotWriter, let copied = snapshot.copiedUpTo, let writer else { return }
        try writer.finishCompaction(temp: snapshot.temp, copiedUpTo: copied)
        if policy != .always {
            let folder = JournalWriter.folder(of: journalPath), logger = logger
            Self.fsyncQueue.async {
                do { try FileIO.fsyncDirectory(folder) } catch { logger.error("journal folder fsync failed", metadata: ["error": "\(error)"]) }
            }
        }
    }

    func abandonSnapshot(_ snapshot: any SnapshotWriter) {
        snapshotUnderWay = false
        if let snapshot = snapshot as? FileSnapshotWriter { unlink(snapshot.temp) }
    }

    func close() throws(DurabilityError) {
        try writer?.close()
        durable.advance(to: lastAppended)
        writer = nil
    }
}

/// A sequence number that only moves forward, from any thread.
final class DurableMark: Sendable {
    private let value = Atomic<UInt64>(0)

    var sequence: UInt64 { value.load(ordering: .acquiring) }

    func advance(to sequence: UInt64) {
        var current = value.load(ordering: .relaxed)
        while current < sequence {
            let (exchanged, original) = value.compareExchange(expected: current, desired: sequence, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = original
        }
    }
}

/// A file snapshot's off-executor half: `snapshot.json` written atomically, then the journal's
/// records past the snapshot's position copied into the temp file that will replace the journal.
final class FileSnapshotWriter: SnapshotWriter {
    let sequence: UInt64
    let snapshotPath: String
    let tail: JournalTail
    let offset: Int
    let temp: String
    private let copied = Mutex<Int?>(nil)

    init(sequence: UInt64, snapshotPath: String, tail: JournalTail, offset: Int, temp: String) {
        self.sequence = sequence
        self.snapshotPath = snapshotPath
        self.tail = tail
        self.offset = offset
        self.temp = temp
    }

    /// How far the journal was copied, once ``write(_:)`` succeeded.
    var copiedUpTo: Int? { copied.withLock { $0 } }

    func write(_ snapshot: [UInt8]) throws(DurabilityError) {
        try SnapshotFile.write(snapshot, to: snapshotPath)
        let end = try tail.copy(from: offset, into: temp)
        copied.withLock { $0 = end }
    }
}
