/// Reads a webhook body in one pass: a strict JSON reader (RFC 8259) that keeps only the fields a
/// webhook has and checks the syntax of everything else.
///
/// It replaces Foundation's `JSONDecoder` on the ingress path, which cost about 8 µs per webhook
/// (measured in docs/PERFORMANCE.md), and it reports the top-level `id` as soon as the body is valid
/// JSON, so a receiver can check the signature (computed over the id) before it reports which
/// field is malformed, with one parse instead of two.
struct WebhookBodyParser {
    /// Nesting deeper than this is refused (a hostile body must not exhaust the stack).
    static let maxDepth = 64

    struct Malformed: Error {}

    /// A top-level or `data` member as far as the decoder cares: a string, `null`, or something else.
    enum Member {
        case string(String)
        case null
        case other
    }

    /// The `data` member: an object's members of interest, or what it was instead.
    enum DataValue {
        case object(DataMembers)
        case other(Member)
    }

    /// The members of interest, last occurrence wins (as with duplicate keys in `JSONDecoder`).
    /// Fixed fields, not a dictionary: keys are matched as bytes, and only the values kept become strings.
    struct Members {
        var id: Member?
        var event: Member?
        var createdAt: Member?
        var data: DataValue?
        /// Where the `data` value's bytes are in the body (for an event type not interpreted).
        var dataRange: Range<Int>?
    }

    struct DataMembers {
        var whatsappMessageID: Member?
        var status: Member?
        var sendAt: Member?
        var messageType: Member?
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// The members, or `nil` when the body is not valid JSON; `isObject` is false when it is valid
    /// JSON but not an object.
    static func members(of bytes: UnsafeBufferPointer<UInt8>) -> (members: Members, isObject: Bool)? {
        var parser = WebhookBodyParser(bytes)
        do {
            parser.skipWhitespace()
            guard parser.peek() == UInt8(ascii: "{") else {
                try parser.skipValue(depth: 0)
                try parser.expectEnd()
                return (Members(), false)
            }
            var members = Members()
            try parser.readObject(depth: 0) { parser, key throws(Malformed) in
                if key.is("id") {
                    members.id = try parser.readMember(depth: 1)
                } else if key.is("event") {
                    members.event = try parser.readMember(depth: 1)
                } else if key.is("created_at") {
                    members.createdAt = try parser.readMember(depth: 1)
                } else if key.is("data") {
                    let start = parser.index
                    defer { members.dataRange = start..<parser.index }
                    if parser.peek() == UInt8(ascii: "{") {
                        var data = DataMembers()
                        try parser.readObject(depth: 1) { parser, key throws(Malformed) in
                            if key.is("whatsapp_message_id") {
                                data.whatsappMessageID = try parser.readMember(depth: 2)
                            } else if key.is("status") {
                                data.status = try parser.readMember(depth: 2)
                            } else if key.is("send_at") {
                                data.sendAt = try parser.readMember(depth: 2)
                            } else if key.is("message_type") {
                                data.messageType = try parser.readMember(depth: 2)
                            } else {
                                try parser.skipValue(depth: 2)
                            }
                        }
                        members.data = .object(data)
                    } else {
                        members.data = .other(try parser.readMember(depth: 1))
                    }
                } else {
                    try parser.skipValue(depth: 1)
                }
            }
            try parser.expectEnd()
            return (members, true)
        } catch {
            return nil
        }
    }

    /// An object key as read: its bytes, decoded only if it held escapes.
    struct Key {
        let raw: UnsafeBufferPointer<UInt8>?
        let decoded: [UInt8]

        func `is`(_ name: StaticString) -> Bool {
            name.withUTF8Buffer { expected in
                if let raw { return raw.elementsEqual(expected) }
                return decoded.elementsEqual(expected)
            }
        }
    }

    // MARK: Reading

    private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8) throws(Malformed) {
        guard index < bytes.count, bytes[index] == byte else { throw Malformed() }
        index += 1
    }

    private mutating func expectEnd() throws(Malformed) {
        skipWhitespace()
        guard index == bytes.count else { throw Malformed() }
    }

    /// `{ "key": value, ... }`: calls `member` positioned at each value (after skipping whitespace).
    private mutating func readObject(depth: Int, _ member: (inout WebhookBodyParser, Key) throws(Malformed) -> Void) throws(Malformed) {
        guard depth < Self.maxDepth else { throw Malformed() }
        try expect(UInt8(ascii: "{"))
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            let key = try readKey()
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            try member(&self, key)
            skipWhitespace()
            guard let next = peek() else { throw Malformed() }
            index += 1
            if next == UInt8(ascii: "}") { return }
            guard next == UInt8(ascii: ",") else { throw Malformed() }
        }
    }

    /// A value kept as a ``Member``: a string's text, `null`, or only that it was something else
    /// (checked and skipped).
    private mutating func readMember(depth: Int) throws(Malformed) -> Member {
        if peek() == UInt8(ascii: "\"") { return .string(try readString()) }
        let isNull = peek() == UInt8(ascii: "n")
        try skipValue(depth: depth)
        return isNull ? .null : .other
    }

    /// Checks and skips any value.
    private mutating func skipValue(depth: Int) throws(Malformed) {
        guard depth < Self.maxDepth, let first = peek() else { throw Malformed() }
        switch first {
        case UInt8(ascii: "\""):
            try skipString()
        case UInt8(ascii: "{"):
            try readObject(depth: depth) { parser, _ throws(Malformed) in try parser.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            index += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "]") {
                index += 1
                return
            }
            while true {
                skipWhitespace()
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard let next = peek() else { throw Malformed() }
                index += 1
                if next == UInt8(ascii: "]") { return }
                guard next == UInt8(ascii: ",") else { throw Malformed() }
            }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: try skipNumber()
        }
    }

    private mutating func literal(_ word: StaticString) throws(Malformed) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { throw Malformed() }
        let start = word.utf8Start
        for offset in 0..<count where bytes[index + offset] != start[offset] { throw Malformed() }
        index += count
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func skipNumber() throws(Malformed) {
        func digits(_ parser: inout WebhookBodyParser) -> Int {
            let start = parser.index
            while let byte = parser.peek(), byte >= 0x30, byte <= 0x39 { parser.index += 1 }
            return parser.index - start
        }
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let lead = peek(), lead >= 0x30, lead <= 0x39 else { throw Malformed() }
        if lead == 0x30 {
            index += 1
        } else {
            _ = digits(&self)
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard digits(&self) > 0 else { throw Malformed() }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard digits(&self) > 0 else { throw Malformed() }
        }
    }

    /// A key: its raw bytes when it has no escapes (almost always), checked like any string.
    private mutating func readKey() throws(Malformed) -> Key {
        guard peek() == UInt8(ascii: "\"") else { throw Malformed() }
        let start = index + 1
        var end = start
        while end < bytes.count {
            let byte = bytes[end]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: bytes[start..<end])
                guard Self.validatedUTF8(raw) else { throw Malformed() }
                index = end + 1
                return Key(raw: raw, decoded: [])
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            end += 1
        }
        return Key(raw: nil, decoded: Array(try readString().utf8))
    }

    private mutating func skipString() throws(Malformed) {
        // Validating costs the same as reading; the text is simply not kept.
        _ = try readString(keep: false)
    }

    /// A string's text. Plain runs are copied as they are (after UTF-8 validation); escapes are
    /// decoded, `\u` surrogate pairs joined; a lone surrogate or a raw control character is malformed.
    private mutating func readString(keep: Bool = true) throws(Malformed) -> String {
        try expect(UInt8(ascii: "\""))
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let run = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                if !keep {
                    guard Self.validatedUTF8(run) else { throw Malformed() }
                    return ""
                }
                guard let text = String(validating: run, as: UTF8.self) else { throw Malformed() }
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw Malformed() }
            index += 1
        }
        var out: [UInt8] = Array(bytes[start..<index])
        while true {
            guard index < bytes.count else { throw Malformed() }
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: out, as: UTF8.self) else { throw Malformed() }
                return keep ? text : ""
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw Malformed() }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else { throw Malformed() }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw Malformed() }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw Malformed()
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw Malformed() }
                    UTF8.encode(unicode) { out.append($0) }
                default:
                    throw Malformed()
                }
            default:
                if byte < 0x20 { throw Malformed() }
                out.append(byte)
            }
        }
    }

    private mutating func hex4() throws(Malformed) -> UInt32 {
        guard bytes.count - index >= 4 else { throw Malformed() }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            index += 1
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte - 0x30
            case 0x41...0x46: digit = byte - 0x41 + 10
            case 0x61...0x66: digit = byte - 0x61 + 10
            default: throw Malformed()
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    private static func validatedUTF8(_ run: UnsafeBufferPointer<UInt8>) -> Bool {
        // ASCII is the common case and needs no decoding.
        if run.allSatisfy({ $0 < 0x80 }) { return true }
        return String(validating: run, as: UTF8.self) != nil
    }
}

extension WebhookEvent {
    /// A webhook body read once: its top-level `id` (when the body is valid JSON and the id is a
    /// string), and the event or why it could not be decoded.
    public struct Parsed: Sendable {
        /// The top-level `id`, which the signature covers; `nil` when the body is not valid JSON or
        /// has no string `id`.
        public var id: String?
        /// The decoded event, or the field at fault.
        public var result: Result<WebhookEvent, WebhookDecodingError>
    }

    /// Reads a webhook body once, for a receiver that checks the signature (over the id) before it
    /// reports which field is malformed. ``decode(_:)`` is the same without the id.
    public static func parse(_ body: some Collection<UInt8>) -> Parsed {
        if let parsed = body.withContiguousStorageIfAvailable({ parse(buffer: $0) }) { return parsed }
        return Array(body).withUnsafeBufferPointer { parse(buffer: $0) }
    }

    static func parse(buffer: UnsafeBufferPointer<UInt8>) -> Parsed {
        guard let (members, isObject) = WebhookBodyParser.members(of: buffer) else {
            return Parsed(id: nil, result: .failure(WebhookDecodingError(field: "body", reason: "body is not valid JSON")))
        }
        guard isObject else {
            return Parsed(id: nil, result: .failure(WebhookDecodingError(field: "body", reason: "body is not a JSON object")))
        }
        var id: String?
        if case .string(let text)? = members.id { id = text }
        return Parsed(id: id, result: Result { () throws(WebhookDecodingError) in try event(from: members, in: buffer) })
    }

    private static func event(from members: WebhookBodyParser.Members, in body: UnsafeBufferPointer<UInt8>) throws(WebhookDecodingError) -> WebhookEvent {
        func string(_ member: WebhookBodyParser.Member?, path: String) throws(WebhookDecodingError) -> String {
            switch member {
            case nil: throw WebhookDecodingError(field: path, reason: "is missing")
            case .string(let text)?: return text
            case .null?: throw WebhookDecodingError(field: path, reason: "is null, expected string")
            case .other?: throw WebhookDecodingError(field: path, reason: "must be a string")
            }
        }
        // The order JSONDecoder reported them in: id, created_at, event, then data.
        let id = try string(members.id, path: "id")
        let createdAt = try string(members.createdAt, path: "created_at")
        let type = try string(members.event, path: "event")
        guard type == sendMessageStatusType else {
            // Copied only for these: the status webhooks of the hot path never pay for it.
            return WebhookEvent(id: id, createdAt: createdAt, payload: .unknown(type: type), rawData: members.dataRange.map { Array(body[$0]) })
        }
        let data: WebhookBodyParser.DataMembers
        switch members.data {
        case .object(let members)?: data = members
        case nil: throw WebhookDecodingError(field: "data", reason: "is missing")
        case .other(.null)?: throw WebhookDecodingError(field: "data", reason: "is null, expected JSON object")
        case .other?: throw WebhookDecodingError(field: "data", reason: "must be a JSON object")
        }
        let update = MessageStatusUpdate(
            whatsappMessageID: try string(data.whatsappMessageID, path: "data.whatsapp_message_id"),
            status: MessageStatus(rawValue: try string(data.status, path: "data.status")),
            sendAt: try string(data.sendAt, path: "data.send_at"),
            messageType: MessageType(rawValue: try string(data.messageType, path: "data.message_type")))
        return WebhookEvent(id: id, createdAt: createdAt, payload: .messageStatus(update))
    }
}
