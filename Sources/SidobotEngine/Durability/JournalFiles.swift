#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// The append-only journal file, `DATA/journal.jsonl`: one JSON record per line.
///
/// Records are written with one `write(2)` each before the change is acknowledged, so a crash of the
/// process never loses an acknowledged change; ``FsyncPolicy`` decides what a crash of the machine can.
/// Owned by one serial executor (the engine); not thread-safe by itself.
public final class JournalWriter {
    /// The journal's path.
    public let path: String
    /// The fsync policy.
    public let policy: FsyncPolicy
    private var fd: Int32
    private var size: Int {
        didSet { tail.written.store(size, ordering: .releasing) }
    }
    /// What another thread may read of the journal (for the first half of a compaction).
    public let tail: JournalTail
    private var unsynced = false
    private var buffer: [UInt8] = []

    /// Opens (creating if needed) the journal for appending. Call ``JournalReader/read(path:)`` first:
    /// it truncates a torn last line, which appending after would otherwise corrupt.
    public init(path: String, policy: FsyncPolicy) throws(DurabilityError) {
        self.path = path
        self.policy = policy
        fd = try FileIO.openForAppend(path)
        let end = Int(lseek(fd, 0, SEEK_END))
        tail = JournalTail(path: path, written: end)
        size = end
    }

    deinit { if fd >= 0 { FileIO.closeDescriptor(fd) } }

    /// The journal's size in bytes: the position the next record starts at.
    public var byteCount: Int { size }

    /// Appends one record (a JSON object without newline) and, under `always`, fsyncs it.
    public func append(_ record: some Collection<UInt8>) throws(DurabilityError) {
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: record)
        buffer.append(UInt8(ascii: "\n"))
        try appendLines(buffer)
    }

    /// Appends complete records (each a JSON object ending in a newline) with one `write(2)` and,
    /// under `always`, fsyncs them. A write that fails part-way (a full disk) is cut back off, so
    /// the journal never holds half a record followed by later ones.
    public func appendLines(_ lines: [UInt8]) throws(DurabilityError) {
        do {
            try FileIO.writeAll(fd, lines, path: path)
        } catch {
            _ = ftruncate(fd, off_t(size))
            throw error
        }
        size += lines.count
        if policy == .always {
            try FileIO.fsyncFile(fd, path: path)
        } else {
            unsynced = true
        }
    }

    /// Forces written records to disk if any are pending (the `everysec` tick, and shutdown).
    public func sync() throws(DurabilityError) {
        guard unsynced else { return }
        try FileIO.fsyncFile(fd, path: path)
        unsynced = false
    }

    /// Hands the pending fsync to the caller, to run off the journal's executor (the `everysec`
    /// tick: fsyncing a second of writes can take milliseconds, which the engine must not wait for).
    /// Returns a duplicate of the descriptor to fsync and close, or nil if nothing is pending.
    /// Writes made after this are covered by the next tick.
    public func takeSyncDescriptor() -> Int32? {
        guard unsynced, fd >= 0 else { return nil }
        let duplicate = dup(fd)
        guard duplicate >= 0 else { return nil }
        unsynced = false
        return duplicate
    }

    /// Compaction, second half, on the journal's executor: appends what was written since
    /// ``JournalTail/copy(from:into:)`` to `temp` and puts it in place of the journal (rename), so
    /// the journal holds exactly the records after the snapshot. The engine waits only for the
    /// bytes written meanwhile.
    ///
    /// Under `always` the swap is made durable here (fsync of the file and of the folder). Under
    /// `everysec` and `no` it is left to ``syncFolderAfterSwap()``, run off the executor, and to
    /// the next tick: until then a crash of the machine finds either journal, and both agree with
    /// the snapshot (the old one holds more records, which replay skips).
    public func finishCompaction(temp: String, copiedUpTo copied: Int) throws(DurabilityError) {
        precondition(copied <= size, "cannot keep records past the end of the journal")
        guard fd >= 0 else {
            unlink(temp)
            throw DurabilityError(path: path, reason: "the journal was closed before its compaction could finish")
        }
        let out = open(temp, O_WRONLY | O_APPEND | O_CLOEXEC)
        if out < 0 { throw DurabilityError(path: temp, reason: "cannot reopen: \(FileIO.errorText())") }
        let kept: Int
        do {
            try JournalTail.copy(path, range: copied..<size, to: out, tempPath: temp)
            if policy == .always && copied < size { try FileIO.fsyncFile(out, path: temp) }
            kept = Int(lseek(out, 0, SEEK_END))
        } catch {
            FileIO.closeDescriptor(out)
            unlink(temp)
            throw error
        }
        FileIO.closeDescriptor(out)
        if rename(temp, path) != 0 {
            let reason = FileIO.errorText()
            unlink(temp)
            throw DurabilityError(path: path, reason: "cannot replace with \(temp): \(reason)")
        }
        if policy == .always { try syncFolderAfterSwap() }
        // The old journal is gone from the folder; closing its last descriptor frees its blocks,
        // which for a journal of 100 MB takes the file system ~20 ms: not on the engine.
        let old = fd
        fd = -1
        fd = try FileIO.openForAppend(path)
        Self.closeQueue.async { FileIO.closeDescriptor(old) }
        size = kept
        unsynced = policy != .always && copied < kept
    }

    private static let closeQueue = DispatchQueue(label: "sidobot.journal.close")

    /// fsyncs the journal's folder, making a swap by ``finishCompaction(temp:copiedUpTo:)`` durable.
    /// Safe from any thread.
    public func syncFolderAfterSwap() throws(DurabilityError) {
        try FileIO.fsyncDirectory(Self.folder(of: path))
    }

    static func folder(of path: String) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        return folder.isEmpty ? "." : folder
    }

    /// Drops every record before byte `offset` (they are covered by a snapshot), keeping the rest:
    /// the kept tail goes to a temp file that replaces the journal atomically.
    public func discard(before offset: Int) throws(DurabilityError) {
        precondition(offset <= size, "cannot discard past the end of the journal")
        try sync()
        let readFD = open(path, O_RDONLY | O_CLOEXEC)
        if readFD < 0 { throw DurabilityError(path: path, reason: "cannot reopen to compact: \(FileIO.errorText())") }
        var tail = [UInt8](repeating: 0, count: size - offset)
        let read = tail.withUnsafeMutableBytes { pread(readFD, $0.baseAddress, $0.count, off_t(offset)) }
        FileIO.closeDescriptor(readFD)
        guard read == tail.count else {
            throw DurabilityError(path: path, reason: "short read while compacting (\(read) of \(tail.count) bytes)")
        }
        try FileIO.writeAtomically(Data(tail), to: path)
        FileIO.closeDescriptor(fd)
        fd = -1
        fd = try FileIO.openForAppend(path)
        size = tail.count
        unsynced = false
    }

    /// fsyncs and closes the journal.
    public func close() throws(DurabilityError) {
        guard fd >= 0 else { return }
        try sync()
        FileIO.closeDescriptor(fd)
        fd = -1
    }
}

/// The part of a journal another thread may use while the engine appends to it: its path, and how
/// far it is written (every byte below ``writtenBytes`` is).
public final class JournalTail: Sendable {
    public let path: String
    let written: Atomic<Int>

    init(path: String, written: Int) {
        self.path = path
        self.written = Atomic(written)
    }

    /// How many bytes are written.
    public var writtenBytes: Int { written.load(ordering: .acquiring) }

    /// Compaction, first half, from any thread: copies the journal from byte `offset` (the part a
    /// new snapshot does not cover) up to what is written now into `temp`, and fsyncs it. Returns
    /// the end of what was copied, for ``JournalWriter/finishCompaction(temp:copiedUpTo:)``.
    public func copy(from offset: Int, into temp: String) throws(DurabilityError) -> Int {
        let end = writtenBytes
        precondition(offset <= end, "cannot keep records past the end of the journal")
        let out = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if out < 0 { throw DurabilityError(path: temp, reason: "cannot create: \(FileIO.errorText())") }
        defer { FileIO.closeDescriptor(out) }
        try Self.copy(path, range: offset..<end, to: out, tempPath: temp)
        try FileIO.fsyncFile(out, path: temp)
        return end
    }

    /// Copies `range` of the file at `path` to `out` (read through a descriptor of its own).
    static func copy(_ path: String, range: Range<Int>, to out: Int32, tempPath: String) throws(DurabilityError) {
        guard !range.isEmpty else { return }
        let input = open(path, O_RDONLY | O_CLOEXEC)
        if input < 0 { throw DurabilityError(path: path, reason: "cannot reopen to compact: \(FileIO.errorText())") }
        defer { FileIO.closeDescriptor(input) }
        var chunk = [UInt8](repeating: 0, count: min(range.count, 1 << 20))
        var position = range.lowerBound
        while position < range.upperBound {
            let want = min(chunk.count, range.upperBound - position)
            let read = chunk.withUnsafeMutableBytes { pread(input, $0.baseAddress, want, off_t(position)) }
            guard read > 0 else {
                throw DurabilityError(path: path, reason: "short read while compacting (at byte \(position) of \(range.upperBound))")
            }
            try FileIO.writeAll(out, chunk[0..<read], path: tempPath)
            position += read
        }
    }
}

/// Reads a journal back at start-up.
public enum JournalReader {
    /// One complete line of the journal.
    public struct Line {
        /// 1-based line number, for error messages.
        public var number: Int
        /// The record's bytes, without the newline.
        public var bytes: ArraySlice<UInt8>
    }

    /// What was read.
    public struct Contents {
        /// Every complete (newline-terminated) line, in order; empty lines are skipped.
        public var lines: [Line]
        /// The bytes of a torn last line (written partly when the machine stopped), if there was one.
        /// It has been moved aside to `journal.jsonl.torn` and cut from the journal.
        public var tornTail: [UInt8]?
    }

    /// Reads every complete line. A last line without its newline is a torn write: it is saved beside
    /// the journal as `<path>.torn` for inspection and cut off, so appends continue on a clean line.
    /// A missing journal reads as empty.
    public static func read(path: String) throws(DurabilityError) -> Contents {
        guard FileManager.default.fileExists(atPath: path) else { return Contents(lines: [], tornTail: nil) }
        let data: [UInt8]
        do {
            data = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw DurabilityError(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        var lines: [Line] = []
        var start = 0
        var number = 0
        for index in data.indices where data[index] == UInt8(ascii: "\n") {
            number += 1
            if index > start { lines.append(Line(number: number, bytes: data[start..<index])) }
            start = index + 1
        }
        var torn: [UInt8]?
        if start < data.count {
            let tail = Array(data[start...])
            torn = tail
            try FileIO.writeAtomically(Data(tail), to: path + ".torn")
            if truncate(path, off_t(start)) != 0 {
                throw DurabilityError(path: path, reason: "cannot cut the torn last line: \(FileIO.errorText())")
            }
        }
        return Contents(lines: lines, tornTail: torn)
    }
}
