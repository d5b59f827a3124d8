/// A JSON-compatible value exchanged between Swift and a sandboxed Lua state.
///
/// ## Swift → Lua
/// - ``null`` → `nil`. Inside an ``object`` a `null` value means "key absent";
///   inside an ``array`` it leaves a hole (`{1, nil, 3}`).
/// - ``bool`` → boolean; ``integer`` → Lua integer (`math.type(x) == "integer"`);
///   ``double`` → Lua float, even when integral (`3.0` stays a float).
///   A non-finite double (NaN, ±infinity) is refused with
///   ``LuaConversionError/Problem-swift.enum/nonFiniteNumber``.
/// - ``string`` → a Lua string holding the UTF-8 bytes.
/// - ``array`` → a table with keys `1...n`. An *empty* array becomes an empty
///   table that the state remembers as an array (see below), so it round-trips.
/// - ``object`` → a table with string keys.
///
/// ## Lua → Swift (raw access only: no metamethod ever runs)
/// - `nil` → ``null``; booleans → ``bool``; integers → ``integer``;
///   floats → ``double``; NaN and ±inf are refused.
/// - strings → ``string``; bytes that are not valid UTF-8 are replaced by
///   U+FFFD (never an error). Embedded zero bytes are kept.
/// - a table whose keys are all strings → ``object``.
/// - a table whose keys are all integers ≥ 1 → ``array`` of length *m* (the
///   highest key), holes become ``null``, provided the table is not
///   excessively sparse: with *n* entries, *m* must be ≤ max(2·*n*, 10).
/// - an empty table → ``object`` (`[:]`), unless it is an empty array that
///   came from Swift → ``array`` (`[]`).
/// - refused, with the path of the offending value (`$.items[3].cb`):
///   functions, userdata, coroutines, tables containing themselves (a cycle;
///   a table shared twice without a cycle is copied twice), keys of other types
///   (booleans, floats, integers ≤ 0, tables), tables mixing integer and string
///   keys, excessively sparse arrays, nesting deeper than
///   ``LuaLimits/maxValueDepth``, more than ``LuaLimits/maxValueElements``
///   values or more than ``LuaLimits/maxValueBytes`` encoded bytes.
/// - metatables are ignored: a table is converted from its raw contents.
///
/// Equality is exact: `.integer(1) != .double(1.0)`.
public enum LuaValue: Sendable, Hashable {
    /// Lua `nil` (JSON `null`).
    case null
    /// A boolean.
    case bool(Bool)
    /// A Lua integer (64-bit).
    case integer(Int64)
    /// A Lua float. Must be finite to cross into Lua.
    case double(Double)
    /// A string (UTF-8).
    case string(String)
    /// A sequence: a Lua table with keys `1...n`.
    case array([LuaValue])
    /// A string-keyed Lua table.
    case object([String: LuaValue])
}

extension LuaValue {
    /// `true` for ``null``.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The boolean, if this is a ``bool``.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The integer, if this is an ``integer``, or a ``double`` with an exact
    /// integral value that fits in `Int64`.
    public var int64Value: Int64? {
        switch self {
        case .integer(let i): return i
        case .double(let d):
            guard d.isFinite, d.rounded() == d, let i = Int64(exactly: d) else { return nil }
            return i
        default: return nil
        }
    }

    /// The number as a `Double`, if this is an ``integer`` or a ``double``.
    public var doubleValue: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// The string, if this is a ``string``.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The elements, if this is an ``array``.
    public var arrayValue: [LuaValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The members, if this is an ``object``.
    public var objectValue: [String: LuaValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The member `key` of an ``object`` (nil when absent or not an object).
    public subscript(key: String) -> LuaValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// The element at the 0-based `index` of an ``array`` (nil when out of
    /// range or not an array).
    public subscript(index: Int) -> LuaValue? {
        if case .array(let a) = self, a.indices.contains(index) { return a[index] }
        return nil
    }

    /// The Lua type name this value has once in Lua (`"nil"`, `"boolean"`,
    /// `"number"`, `"string"`, `"table"`).
    public var luaTypeName: String {
        switch self {
        case .null: return "nil"
        case .bool: return "boolean"
        case .integer, .double: return "number"
        case .string: return "string"
        case .array, .object: return "table"
        }
    }
}

extension LuaValue: ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    /// `true`/`false` → ``LuaValue/bool(_:)``.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// An integer literal → ``LuaValue/integer(_:)``.
    public init(integerLiteral value: Int64) { self = .integer(value) }
    /// A float literal → ``LuaValue/double(_:)``.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// A string literal → ``LuaValue/string(_:)``.
    public init(stringLiteral value: String) { self = .string(value) }
    /// An array literal → ``LuaValue/array(_:)``.
    public init(arrayLiteral elements: LuaValue...) { self = .array(elements) }
    /// A dictionary literal → ``LuaValue/object(_:)`` (a repeated key keeps the last value).
    public init(dictionaryLiteral elements: (String, LuaValue)...) {
        var o: [String: LuaValue] = [:]
        o.reserveCapacity(elements.count)
        for (k, v) in elements { o[k] = v }
        self = .object(o)
    }
}

extension LuaValue: CustomStringConvertible {
    /// A compact JSON-like rendering (object keys sorted), for logs and tests.
    public var description: String {
        var out = ""
        render(into: &out)
        return out
    }

    private func render(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .integer(let i): out += String(i)
        case .double(let d): out += d.description
        case .string(let s): LuaValue.quote(s, into: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                v.render(into: &out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                LuaValue.quote(k, into: &out)
                out += ":"
                o[k]!.render(into: &out)
            }
            out += "}"
        }
    }

    private static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}
