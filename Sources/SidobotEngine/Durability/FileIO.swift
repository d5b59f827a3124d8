#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Thin, checked wrappers over the POSIX calls the durability layer needs (open, write, fsync,
/// rename, directory fsync). Foundation's FileHandle hides errors and cannot fsync a directory.
enum FileIO {
    static func closeDescriptor(_ fd: Int32) { _ = close(fd) }

    static func errorText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// Opens `path` for appending, creating it with mode 0600 if needed.
    static func openForAppend(_ path: String) throws(DurabilityError) -> Int32 {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 { throw DurabilityError(path: path, reason: "cannot open for writing: \(errorText())") }
        return fd
    }

    /// Writes all of `bytes`, retrying short writes and EINTR.
    static func writeAll<Bytes: ContiguousBytes>(_ fd: Int32, _ bytes: Bytes, path: String) throws(DurabilityError) {
        let failure: Int32? = bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
        if let failure { throw DurabilityError(path: path, reason: "write failed: \(errorText(failure))") }
    }

    static func fsyncFile(_ fd: Int32, path: String) throws(DurabilityError) {
        if fsync(fd) != 0 { throw DurabilityError(path: path, reason: "fsync failed: \(errorText())") }
    }

    /// fsyncs a directory so a rename or a new file in it survives a crash of the machine.
    static func fsyncDirectory(_ path: String) throws(DurabilityError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw DurabilityError(path: path, reason: "cannot open folder to fsync: \(errorText())") }
        defer { close(fd) }
        if fsync(fd) != 0 { throw DurabilityError(path: path, reason: "fsync of folder failed: \(errorText())") }
    }

    /// Writes `data` to `path` atomically: a temp file beside it, fsync, rename, fsync of the folder.
    static func writeAtomically(_ data: some ContiguousBytes, to path: String) throws(DurabilityError) {
        let temp = path + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 { throw DurabilityError(path: temp, reason: "cannot create: \(errorText())") }
        do {
            // A big file goes to disk in steps, as Redis does with its RDB (incremental fsync): one
            // fsync of 80 MB at the end makes the file system hold other writers (the journal) for
            // tens of milliseconds; steps of 8 MB each hold them for less than one.
            let step = 8 << 20
            let written: Result<Void, DurabilityError> = data.withUnsafeBytes { raw in
                Result { () throws(DurabilityError) in
                    var offset = 0
                    repeat {
                        let end = min(raw.count, offset + step)
                        try writeAll(fd, UnsafeRawBufferPointer(rebasing: raw[offset..<end]), path: temp)
                        offset = end
                        if offset < raw.count { try fsyncFile(fd, path: temp) }
                    } while offset < raw.count
                }
            }
            try written.get()
            try fsyncFile(fd, path: temp)
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
        close(fd)
        if rename(temp, path) != 0 {
            let reason = errorText()
            unlink(temp)
            throw DurabilityError(path: path, reason: "cannot replace with \(temp): \(reason)")
        }
        try fsyncDirectory((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent)
    }
}
