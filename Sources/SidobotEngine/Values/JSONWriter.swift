import LuaSandbox

/// Writes one JSON object field by field, straight into bytes: how the journal's hot records
/// (events, state writes, timers, completions) are written, without building a ``LuaValue`` tree
/// and sorting its keys first (``JSONCodec/encode(_:into:)`` does both, for any value).
struct JSONObjectWriter: ~Copyable {
    private(set) var out: [UInt8]
    private var first = true

    init(into out: consuming [UInt8]) {
        self.out = out
        self.out.append(UInt8(ascii: "{"))
    }

    private mutating func key(_ name: StaticString) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        out.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(UInt8(ascii: "\""))
        out.append(UInt8(ascii: ":"))
    }

    /// A field whose name is only known at run time.
    mutating func value(name: String, _ value: LuaValue) throws(JSONCodec.Error) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        JSONCodec.appendString(name, to: &out)
        out.append(UInt8(ascii: ":"))
        try JSONCodec.encode(value, into: &out)
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

    /// Any value (`null` fields are written as `null`, unlike inside ``JSONCodec`` objects: the
    /// readers treat a `null` field as absent).
    mutating func value(_ name: StaticString, _ value: LuaValue) throws(JSONCodec.Error) {
        key(name)
        try JSONCodec.encode(value, into: &out)
    }

    /// A nested object written by `body`.
    mutating func object(_ name: StaticString, _ body: (inout JSONObjectWriter) throws(JSONCodec.Error) -> Void) throws(JSONCodec.Error) {
        key(name)
        var nested = JSONObjectWriter(into: out)
        out = []
        try body(&nested)
        out = nested.finish()
    }

    /// An array of objects written by `body`, one call per element.
    mutating func array<Element>(_ name: StaticString, _ elements: [Element],
                                 _ body: (inout JSONObjectWriter, Element) throws(JSONCodec.Error) -> Void) throws(JSONCodec.Error) {
        key(name)
        out.append(UInt8(ascii: "["))
        for (index, element) in elements.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            var nested = JSONObjectWriter(into: out)
            out = []
            try body(&nested, element)
            out = nested.finish()
        }
        out.append(UInt8(ascii: "]"))
    }

    consuming func finish() -> [UInt8] {
        out.append(UInt8(ascii: "}"))
        return out
    }

    private static let trueBytes = Array("true".utf8)
    private static let falseBytes = Array("false".utf8)
}
