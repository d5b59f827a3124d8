/// When the journal is forced to disk, as in Redis's `appendfsync`.
///
/// Every record is written to the journal file (`write(2)`) before the change it records is
/// acknowledged, so a crash of the process alone never loses an acknowledged change under any
/// policy. The policy decides what a crash of the machine (power loss, kernel panic) can lose:
/// - `always`: fsync before each acknowledgement; nothing is lost; slowest.
/// - `everysec` (default): fsync once a second in the background; at most about one second of changes.
/// - `no`: never fsync explicitly; the operating system flushes when it likes (typically within 30 s).
public enum FsyncPolicy: String, Sendable, CaseIterable, CustomStringConvertible {
    case always
    case everysec
    case no

    public var description: String { rawValue }
}
