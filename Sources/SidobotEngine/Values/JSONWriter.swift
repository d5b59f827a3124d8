import LuaSandbox

/// Writes one JSON object field by field, straight into bytes: how the journal's hot records
/// (events, state writes, timers, completions) are written, without building a ``LuaValue`` tree
/// and sorting its keys first (``JSONCodec/encode(_:into:)`` does both, for any value).
///
/// ```swift
/// try JSONObjectWriter.write(into: &bytes) { w throws(JSONCodec.Error) in
///     w.string("op", "event.done")
///     w.string("id", id)
/// }
/// ```
struct JSONObjectWriter {
    /// The bytes being written: the caller's buffer, moved in (never copied) for the duration.
    private var out: [UInt8] = []
    private var first = true

    private init() {}

    /// Appends one object to `buffer`, its fields written by `body`.
    static func write(into buffer: inout [UInt8], _ body: (inout JSONObjectWriter) throws(JSONCodec.Error) -> Void) throws(JSONCodec.Error) {
        var writer = JSONObjectWriter()
        swap(&writer.out, &buffer)
        defer { swap(&writer.out, &buffer) }
        writer.out.append(UInt8(ascii: "{"))
        try body(&writer)
        writer.out.append(UInt8(ascii: "}"))
    }

    private mutating func key(_ name: StaticString) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        out.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(UInt8(ascii: "\""))
        out.append(UInt8(ascii: ":"))
    }

    mutating func string(_ name: StaticString, _ value: String) {
        key(name)
        JSONCodec.appendString(value, to: &out)
    }

    mutating func integer(_ name: StaticString, _ value: Int64) {
        key(name)
        JSONCodec.appendInteger(value, to: &out)
    }

    mutating func bool(_ name: StaticString, _ value: Bool) {
        key(name)
        out.append(contentsOf: value ? Self.trueBytes : Self.falseBytes)
    }

    /// Any value. A `null` is written as `null`, where ``JSONCodec`` would leave the field out: the
    /// readers treat both alike.
    mutating func value(_ name: StaticString, _ value: LuaValue) throws(JSONCodec.Error) {
        key(name)
        try JSONCodec.encode(value, into: &out)
    }

    /// A field whose value is JSON text already (a timer's payload).
    mutating func json(_ name: StaticString, _ text: UnsafeBufferPointer<UInt8>) {
        key(name)
        if text.isEmpty {
            out.append(contentsOf: Self.nullBytes)
        } else {
            out.append(contentsOf: text)
        }
    }

    /// A field whose name is only known at run time.
    mutating func value(name: String, _ value: LuaValue) throws(JSONCodec.Error) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        JSONCodec.appendString(name, to: &out)
        out.append(UInt8(ascii: ":"))
        try JSONCodec.encode(value, into: &out)
    }

    /// A nested object whose fields `body` writes.
    mutating func object(_ name: StaticString, _ body: (inout JSONObjectWriter) throws(JSONCodec.Error) -> Void) throws(JSONCodec.Error) {
        key(name)
        try nested(body)
    }

    /// An array of objects, one per element, whose fields `body` writes.
    mutating func array<Element>(_ name: StaticString, _ elements: [Element],
                                 _ body: (inout JSONObjectWriter, Element) throws(JSONCodec.Error) -> Void) throws(JSONCodec.Error) {
        key(name)
        out.append(UInt8(ascii: "["))
        for (index, element) in elements.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            try nested { (w) throws(JSONCodec.Error) in try body(&w, element) }
        }
        out.append(UInt8(ascii: "]"))
    }

    private mutating func nested(_ body: (inout JSONObjectWriter) throws(JSONCodec.Error) -> Void) throws(JSONCodec.Error) {
        out.append(UInt8(ascii: "{"))
        first = true
        try body(&self)
        out.append(UInt8(ascii: "}"))
        first = false
    }

    private static let trueBytes = Array("true".utf8)
    private static let falseBytes = Array("false".utf8)
    private static let nullBytes = Array("null".utf8)
}
