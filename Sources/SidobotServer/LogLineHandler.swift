#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import Synchronization

/// swift-log lines on standard error, laid out like `StreamLogHandler`'s (UTC, milliseconds) —
/// `2026-12-01T09:00:00.123Z info sidobot.server: event=… outcome=accepted [SidobotServer] webhook accepted` —
/// at a fraction of the cost: a busy engine logs a line per webhook, and `StreamLogHandler`
/// formats the local time with `strftime` (and looks up the time zone) and builds several
/// strings for each (docs/PERFORMANCE.md measured a third of the ingress throughput).
///
/// Times are UTC with milliseconds. Each line is one `write(2)`, so lines from several threads never
/// interleave; nothing is buffered, so nothing is lost when the process dies.
public struct LogLineHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let descriptor: Int32

    /// - Parameters:
    ///   - label: The logger's label, written after the level.
    ///   - level: The lowest level written.
    ///   - descriptor: Where lines go (standard error by default).
    public init(label: String, level: Logger.Level = .info, descriptor: Int32 = 2,
                metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        logLevel = level
        self.descriptor = descriptor
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        UTCStamp.append(to: &line)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: event.level.rawValue.utf8)
        if !label.isEmpty {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: label.utf8)
        }
        line.append(UInt8(ascii: ":"))
        var fields = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty { fields.merge(provided) { _, new in new } }
        if let explicit = event.metadata, !explicit.isEmpty { fields.merge(explicit) { _, new in new } }
        if let error = event.error {
            fields["error.message"] = "\(error)"
            fields["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: key.utf8)
            line.append(UInt8(ascii: "="))
            Self.append(value, to: &line)
        }
        line.append(contentsOf: " [".utf8)
        line.append(contentsOf: event.source.utf8)
        line.append(contentsOf: "] ".utf8)
        line.append(contentsOf: event.message.description.utf8)
        line.append(UInt8(ascii: "\n"))
        line.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }

    private static func append(_ value: Logger.MetadataValue, to line: inout [UInt8]) {
        switch value {
        case .string(let text): line.append(contentsOf: text.utf8)
        case .stringConvertible(let convertible): line.append(contentsOf: convertible.description.utf8)
        case .array, .dictionary: line.append(contentsOf: value.description.utf8)
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, with the part up to the seconds made once per second.
enum UTCStamp {
    private static let cache = Mutex<(second: Int, text: [UInt8])>((-1, []))

    static func append(to line: inout [UInt8]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let second = Int(now.tv_sec)
        let prefix = cache.withLock { cache -> [UInt8] in
            if cache.second != second {
                var time = time_t(second)
                var parts = tm()
                gmtime_r(&time, &parts)
                var text: [UInt8] = []
                func two(_ n: Int32) { text.append(UInt8(48 + n / 10)); text.append(UInt8(48 + n % 10)) }
                let year = Int(parts.tm_year) + 1900
                text.append(contentsOf: String(year).utf8)
                text.append(UInt8(ascii: "-")); two(parts.tm_mon + 1)
                text.append(UInt8(ascii: "-")); two(parts.tm_mday)
                text.append(UInt8(ascii: "T")); two(parts.tm_hour)
                text.append(UInt8(ascii: ":")); two(parts.tm_min)
                text.append(UInt8(ascii: ":")); two(parts.tm_sec)
                cache = (second, text)
            }
            return cache.text
        }
        line.append(contentsOf: prefix)
        let millis = Int(now.tv_nsec) / 1_000_000
        line.append(UInt8(ascii: "."))
        line.append(UInt8(48 + millis / 100))
        line.append(UInt8(48 + millis / 10 % 10))
        line.append(UInt8(48 + millis % 10))
        line.append(UInt8(ascii: "Z"))
    }
}
