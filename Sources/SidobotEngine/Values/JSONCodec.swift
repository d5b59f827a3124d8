import LuaSandbox

/// JSON text ⇄ ``LuaValue``, for `json.encode`/`json.decode` in rules, the journal and snapshots.
///
/// Hand-written because it sits on hot paths (every state write is journaled) and because the
/// integer/float distinction must survive a round trip, which Foundation's JSONSerialization blurs:
/// - an integer encodes without a fraction (`3`); a float always with one or an exponent (`3.0`, `1e+100`);
/// - decoding, a number without fraction or exponent that fits in 64 bits is an integer, else a float;
/// - object keys are written sorted, so equal values encode to equal text;
/// - NaN and infinities cannot be encoded (JSON has no spelling for them).
public enum JSONCodec {
    /// Why a text is not JSON, or a value cannot be written as JSON.
    public struct Error: Swift.Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        /// The byte offset in the text, for decoding errors.
        public var offset: Int?
        public var description: String {
            if let offset { return "\(message) at byte \(offset + 1)" }
            return message
        }
    }

    /// Nesting deeper than this is refused, so hostile input cannot exhaust the stack.
    public static let maxDepth = 200

    // MARK: Encoding

    /// Encodes a value as compact JSON text.
    public static func encode(_ value: LuaValue) throws(Error) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        try encode(value, into: &out, depth: 0)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the JSON encoding of `value` to `out`.
    public static func encode(_ value: LuaValue, into out: inout [UInt8]) throws(Error) {
        try encode(value, into: &out, depth: 0)
    }

    private static func encode(_ value: LuaValue, into out: inout [UInt8], depth: Int) throws(Error) {
        guard depth <= maxDepth else { throw Error(message: "value nested deeper than \(maxDepth) levels") }
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .integer(let i): appendInteger(i, to: &out)
        case .double(let d):
            guard d.isFinite else { throw Error(message: "cannot encode \(d) as JSON (NaN and infinities have no JSON form)") }
            var text = "\(d)"
            if !text.contains(".") && !text.contains("e") && !text.contains("E") { text += ".0" }
            out.append(contentsOf: text.utf8)
        case .string(let s): appendString(s, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                try encode(item, into: &out, depth: depth + 1)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let fields):
            out.append(UInt8(ascii: "{"))
            var first = true
            for key in fields.keys.sorted() {
                guard let field = fields[key], !field.isNull else { continue }
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                try encode(field, into: &out, depth: depth + 1)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Appends the decimal digits of `value` (no `String` made).
    public static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        if value == 0 { return out.append(UInt8(ascii: "0")) }
        var magnitude = value.magnitude
        if value < 0 { out.append(UInt8(ascii: "-")) }
        let start = out.count
        while magnitude > 0 {
            out.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        }
        out[start...].reverse()
    }

    /// Appends `s` as a JSON string literal.
    public static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most strings need no escaping: copy them whole.
        let plain: Bool? = s.utf8.withContiguousStorageIfAvailable { bytes in
            guard !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else { return false }
            out.append(contentsOf: bytes)
            return true
        }
        if plain == true {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                        hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: Decoding

    /// Decodes JSON text. `null` decodes to ``LuaValue/null``; inside an object, a `null` field is
    /// dropped (Lua cannot store nil in a table).
    public static func decode(_ text: String) throws(Error) -> LuaValue {
        var copy = text
        let result = copy.withUTF8 { bytes in Result { () throws(Error) in try decode(bytes) } }
        return try result.get()
    }

    /// Decodes JSON from UTF-8 bytes.
    public static func decode(_ bytes: UnsafeBufferPointer<UInt8>) throws(Error) -> LuaValue {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw Error(message: "unexpected text after the JSON value", offset: parser.index) }
        return value
    }

    /// Decodes JSON from a byte collection.
    public static func decode(bytes: some Collection<UInt8>) throws(Error) -> LuaValue {
        let array = Array(bytes)
        let result = array.withUnsafeBufferPointer { buffer in Result { () throws(Error) in try decode(buffer) } }
        return try result.get()
    }

    struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        func fail(_ message: String) -> Error { Error(message: message, offset: index) }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func parseValue(depth: Int) throws(Error) -> LuaValue {
            guard depth <= JSONCodec.maxDepth else { throw fail("JSON nested deeper than \(JSONCodec.maxDepth) levels") }
            guard index < bytes.count else { throw fail("unexpected end of JSON") }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try parseObject(depth: depth)
            case UInt8(ascii: "["): return try parseArray(depth: depth)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw fail("unexpected character '\(Character(Unicode.Scalar(bytes[index])))'")
            }
        }

        mutating func literal(_ word: StaticString) throws(Error) {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count,
                  memcmpEqual(bytes.baseAddress! + index, word.utf8Start, count) else { throw fail("invalid literal") }
            index += count
        }

        private func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
            for i in 0..<count where a[i] != b[i] { return false }
            return true
        }

        mutating func parseObject(depth: Int) throws(Error) -> LuaValue {
            index += 1
            var fields: [String: LuaValue] = [:]
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(fields) }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try parseString()
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
                index += 1
                skipWhitespace()
                let value = try parseValue(depth: depth + 1)
                if !value.isNull { fields[key] = value }
                skipWhitespace()
                guard index < bytes.count else { throw fail("unexpected end of JSON in an object") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(fields) }
                throw fail("expected ',' or '}' in an object")
            }
        }

        /// Reads an object member by member without building it: `body` gets each key with the
        /// parser at its value, and must read (or skip) the value. For big documents (snapshots).
        /// JSON errors are reported as `Failure(json:)`, beside `body`'s own.
        mutating func forEachMember<Failure: JSONErrorConvertible>(depth: Int, _ body: (inout Parser, String) throws(Failure) -> Void) throws(Failure) {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { throw Failure(json: fail("expected an object")) }
            guard depth <= JSONCodec.maxDepth else { throw Failure(json: fail("JSON nested deeper than \(JSONCodec.maxDepth) levels")) }
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw Failure(json: fail("expected a string key")) }
                let key: String
                do { key = try parseString() } catch { throw Failure(json: error) }
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw Failure(json: fail("expected ':' after a key")) }
                index += 1
                skipWhitespace()
                try body(&self, key)
                skipWhitespace()
                guard index < bytes.count else { throw Failure(json: fail("unexpected end of JSON in an object")) }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return }
                throw Failure(json: fail("expected ',' or '}' in an object"))
            }
        }

        /// Reads an array element by element without building it (see ``forEachMember(depth:_:)``).
        mutating func forEachElement<Failure: JSONErrorConvertible>(depth: Int, _ body: (inout Parser) throws(Failure) -> Void) throws(Failure) {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else { throw Failure(json: fail("expected an array")) }
            guard depth <= JSONCodec.maxDepth else { throw Failure(json: fail("JSON nested deeper than \(JSONCodec.maxDepth) levels")) }
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return }
            while true {
                skipWhitespace()
                try body(&self)
                skipWhitespace()
                guard index < bytes.count else { throw Failure(json: fail("unexpected end of JSON in an array")) }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return }
                throw Failure(json: fail("expected ',' or ']' in an array"))
            }
        }

        /// One whole value, with JSON errors as `Failure(json:)`.
        mutating func value<Failure: JSONErrorConvertible>(depth: Int, as _: Failure.Type = Failure.self) throws(Failure) -> LuaValue {
            skipWhitespace()
            do { return try parseValue(depth: depth) } catch { throw Failure(json: error) }
        }

        mutating func parseArray(depth: Int) throws(Error) -> LuaValue {
            index += 1
            var items: [LuaValue] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard index < bytes.count else { throw fail("unexpected end of JSON in an array") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                throw fail("expected ',' or ']' in an array")
            }
        }

        mutating func parseString() throws(Error) -> String {
            index += 1
            let start = index
            // Fast path: no escapes.
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                    index += 1
                    return text
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { throw fail("control character in a string") }
                index += 1
            }
            var out = Array(bytes[start..<index])
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    return String(decoding: out, as: UTF8.self)
                }
                if byte < 0x20 { throw fail("control character in a string") }
                if byte != UInt8(ascii: "\\") {
                    out.append(byte)
                    index += 1
                    continue
                }
                index += 1
                guard index < bytes.count else { break }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by a low one.
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                            throw fail("unpaired surrogate in \\u escape")
                        }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw fail("unpaired surrogate in \\u escape")
                    }
                    out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
                default: throw fail("invalid escape")
                }
            }
            throw fail("unterminated string")
        }

        mutating func hex4() throws(Error) -> UInt32 {
            guard index + 4 <= bytes.count else { throw fail("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[index]
                let digit: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw fail("invalid hex digit in \\u escape")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        mutating func parseNumber() throws(Error) -> LuaValue {
            let start = index
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            func digits() -> Int {
                let from = index
                while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
                return index - from
            }
            let intStart = index
            let intDigits = digits()
            guard intDigits > 0 else { throw fail("invalid number") }
            if intDigits > 1, bytes[intStart] == UInt8(ascii: "0") { throw fail("leading zero in a number") }
            var isFloat = false
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                isFloat = true
                guard digits() > 0 else { throw fail("invalid number: digits expected after '.'") }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                isFloat = true
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { throw fail("invalid number: digits expected in the exponent") }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            if !isFloat, let integer = Int64(text) { return .integer(integer) }
            guard let double = Double(text), double.isFinite else { throw Error(message: "number out of range", offset: start) }
            return .double(double)
        }
    }
}

/// An error type that can carry a ``JSONCodec/Error`` (for the streaming reads of big documents).
protocol JSONErrorConvertible: Error {
    init(json: JSONCodec.Error)
}
