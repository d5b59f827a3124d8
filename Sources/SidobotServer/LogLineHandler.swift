#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import Synchronization

/// How log lines are written: `text` for people and logfmt parsers, `json` for log shippers.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-12-01T09:00:00.123Z info sidobot.server: event=… outcome=accepted [SidobotServer] webhook accepted`
    case text
    /// One JSON object a line: `time`, `level`, `label`, `source`, `message`, then the fields.
    case json
}

/// swift-log lines on standard error, laid out like `StreamLogHandler`'s (UTC, milliseconds) —
/// `2026-12-01T09:00:00.123Z info sidobot.server: event=… outcome=accepted [SidobotServer] webhook accepted` —
/// at a fraction of the cost: a busy engine logs a line per webhook, and `StreamLogHandler`
/// formats the local time with `strftime` (and looks up the time zone) and builds several
/// strings for each (docs/PERFORMANCE.md measured a third of the ingress throughput).
///
/// One event is one line, whatever its fields hold: a log shipper splits on newlines, and a Lua
/// traceback in `error=` would otherwise scatter one event over several. In `text`, a value with a
/// space, a quote, an `=` or a control character is quoted logfmt-style (`error="rules/a.lua:3:
/// boom\nstack traceback:\n..."`), and newlines in the message are written `\n`; `json` escapes
/// as JSON does. Times are UTC with milliseconds. Each line is one `write(2)`, so lines from
/// several threads never interleave; nothing is buffered, so nothing is lost when the process dies.
public struct LogLineHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let descriptor: Int32
    private let format: LogFormat

    /// - Parameters:
    ///   - label: The logger's label, written after the level.
    ///   - level: The lowest level written.
    ///   - format: Text (logfmt fields) or JSON lines.
    ///   - descriptor: Where lines go (standard error by default).
    public init(label: String, level: Logger.Level = .info, format: LogFormat = .text, descriptor: Int32 = 2,
                metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        logLevel = level
        self.format = format
        self.descriptor = descriptor
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty { fields.merge(provided) { _, new in new } }
        if let explicit = event.metadata, !explicit.isEmpty { fields.merge(explicit) { _, new in new } }
        if let error = event.error {
            fields["error.message"] = "\(error)"
            fields["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        var line: [UInt8] = []
        line.reserveCapacity(256)
        switch format {
        case .text: textLine(event, fields, into: &line)
        case .json: jsonLine(event, fields, into: &line)
        }
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

    private func textLine(_ event: LogEvent, _ fields: Logger.Metadata, into line: inout [UInt8]) {
        UTCStamp.append(to: &line)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: event.level.rawValue.utf8)
        if !label.isEmpty {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: label.utf8)
        }
        line.append(UInt8(ascii: ":"))
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: key.utf8)
            line.append(UInt8(ascii: "="))
            LogText.appendValue(Self.text(value), to: &line)
        }
        line.append(contentsOf: " [".utf8)
        line.append(contentsOf: event.source.utf8)
        line.append(contentsOf: "] ".utf8)
        LogText.appendMessage(event.message.description, to: &line)
    }

    /// `{"time":…,"level":…,"label":…,"source":…,"message":…,` then the fields, sorted; a field
    /// named like one of the first five is written `field.NAME` so those keys stay stable.
    private func jsonLine(_ event: LogEvent, _ fields: Logger.Metadata, into line: inout [UInt8]) {
        line.append(contentsOf: #"{"time":""#.utf8)
        UTCStamp.append(to: &line)
        line.append(contentsOf: #"","level":"#.utf8)
        LogJSON.appendString(event.level.rawValue, to: &line)
        line.append(contentsOf: #","label":"#.utf8)
        LogJSON.appendString(label, to: &line)
        line.append(contentsOf: #","source":"#.utf8)
        LogJSON.appendString(event.source, to: &line)
        line.append(contentsOf: #","message":"#.utf8)
        LogJSON.appendString(event.message.description, to: &line)
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            line.append(UInt8(ascii: ","))
            LogJSON.appendString(LogJSON.reserved.contains(key) ? "field." + key : key, to: &line)
            line.append(UInt8(ascii: ":"))
            LogJSON.append(value, to: &line)
        }
        line.append(UInt8(ascii: "}"))
    }

    private static func text(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array, .dictionary: value.description
        }
    }
}

/// logfmt quoting for the text format.
enum LogText {
    /// The value as is when it is a plain word, else in quotes with `\`, `"` and control
    /// characters escaped; an empty value is `""`.
    static func appendValue(_ value: String, to line: inout [UInt8]) {
        let needsQuotes = value.isEmpty || value.utf8.contains { $0 <= 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "=") || $0 == 0x7F }
        guard needsQuotes else {
            line.append(contentsOf: value.utf8)
            return
        }
        line.append(UInt8(ascii: "\""))
        for byte in value.utf8 { appendEscaped(byte, quote: true, to: &line) }
        line.append(UInt8(ascii: "\""))
    }

    /// The message, last on the line: kept as is but for control characters.
    static func appendMessage(_ message: String, to line: inout [UInt8]) {
        for byte in message.utf8 { appendEscaped(byte, quote: false, to: &line) }
    }

    private static func appendEscaped(_ byte: UInt8, quote: Bool, to line: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\n"): line.append(contentsOf: #"\n"#.utf8)
        case UInt8(ascii: "\r"): line.append(contentsOf: #"\r"#.utf8)
        case UInt8(ascii: "\t"): line.append(contentsOf: #"\t"#.utf8)
        case UInt8(ascii: "\"") where quote: line.append(contentsOf: #"\""#.utf8)
        case UInt8(ascii: "\\") where quote: line.append(contentsOf: #"\\"#.utf8)
        case 0..<0x20, 0x7F: line.append(contentsOf: "\\x\(String(byte, radix: 16, uppercase: false).leftPadded(2))".utf8)
        default: line.append(byte)
        }
    }
}

/// JSON encoding for the json format (no Foundation encoder: a line per webhook).
enum LogJSON {
    static let reserved: Set<String> = ["time", "level", "label", "source", "message"]

    static func append(_ value: Logger.MetadataValue, to line: inout [UInt8]) {
        switch value {
        case .string(let text): appendString(text, to: &line)
        case .stringConvertible(let convertible): appendString(convertible.description, to: &line)
        case .array(let values):
            line.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                append(element, to: &line)
            }
            line.append(UInt8(ascii: "]"))
        case .dictionary(let entries):
            line.append(UInt8(ascii: "{"))
            for (index, (key, element)) in entries.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                appendString(key, to: &line)
                line.append(UInt8(ascii: ":"))
                append(element, to: &line)
            }
            line.append(UInt8(ascii: "}"))
        }
    }

    static func appendString(_ text: String, to line: inout [UInt8]) {
        line.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): line.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): line.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): line.append(contentsOf: #"\n"#.utf8)
            case UInt8(ascii: "\r"): line.append(contentsOf: #"\r"#.utf8)
            case UInt8(ascii: "\t"): line.append(contentsOf: #"\t"#.utf8)
            case 0..<0x20: line.append(contentsOf: "\\u00\(String(byte, radix: 16).leftPadded(2))".utf8)
            default: line.append(byte)
            }
        }
        line.append(UInt8(ascii: "\""))
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
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
