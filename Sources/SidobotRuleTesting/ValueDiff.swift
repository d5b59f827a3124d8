import Foundation
import LuaSandbox

/// Equality, rendering and differences of values for the assertions of `sidobot test`.
///
/// Numbers compare by value (`1 == 1.0`, as in Lua); an empty array equals an empty table.
enum ValueDiff {
    static func same(_ a: LuaValue, _ b: LuaValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.integer, .double), (.double, .integer), (.double, .double):
            return a.doubleValue == b.doubleValue
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { key, value in y[key].map { same(value, $0) } ?? false }
        case (.array(let x), .object(let y)), (.object(let y), .array(let x)):
            return x.isEmpty && y.isEmpty
        default: return false
        }
    }

    /// Whether `actual` has everything `partial` has: for tables, every key of `partial` matches
    /// (recursively); anything else must be the same.
    static func matches(_ actual: LuaValue, _ partial: LuaValue) -> Bool {
        switch (actual, partial) {
        case (.object(let a), .object(let p)):
            return p.allSatisfy { key, value in a[key].map { matches($0, value) } ?? value.isNull }
        case (.array(let a), .array(let p)):
            return a.count == p.count && zip(a, p).allSatisfy { matches($0, $1) }
        default:
            return same(actual, partial)
        }
    }

    /// A Lua-like rendering: `{ phone = "+62…", attempt = 2 }`, keys sorted, long output cut.
    static func render(_ value: LuaValue, limit: Int = 400) -> String {
        let text = renderFull(value)
        return text.count > limit ? String(text.prefix(limit - 1)) + "…" : text
    }

    private static func renderFull(_ value: LuaValue) -> String {
        switch value {
        case .null: return "nil"
        case .bool(let b): return b ? "true" : "false"
        case .integer(let i): return String(i)
        case .double(let d): return d == d.rounded() && abs(d) < 1e15 ? String(format: "%.1f", d) : String(d)
        case .string(let s): return quote(s)
        case .array(let items): return items.isEmpty ? "{}" : "{ " + items.map(renderFull).joined(separator: ", ") + " }"
        case .object(let fields):
            if fields.isEmpty { return "{}" }
            return "{ " + fields.keys.sorted().map { "\(keyText($0)) = \(renderFull(fields[$0]!))" }.joined(separator: ", ") + " }"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for c in s {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.append(c)
            }
        }
        return out + "\""
    }

    private static func keyText(_ key: String) -> String {
        let isName = !key.isEmpty && key.first.map { $0.isLetter || $0 == "_" } == true
            && key.allSatisfy { ($0.isLetter || $0.isNumber || $0 == "_") && $0.isASCII }
        return isName ? key : "[\(quote(key))]"
    }

    /// Path-by-path differences, at most `limit` lines: `.phone: expected "+62…", got "+63…"`.
    static func differences(actual: LuaValue, expected: LuaValue, limit: Int = 12) -> [String] {
        var lines: [String] = []
        walk(actual, expected, path: "", into: &lines, limit: limit)
        return lines
    }

    private static func walk(_ actual: LuaValue, _ expected: LuaValue, path: String, into lines: inout [String], limit: Int) {
        guard lines.count < limit, !same(actual, expected) else { return }
        let here = path.isEmpty ? "(value)" : path
        switch (actual, expected) {
        case (.object(let a), .object(let e)):
            for key in Set(a.keys).union(e.keys).sorted() {
                let sub = path + (keyText(key).hasPrefix("[") ? keyText(key) : "." + key)
                switch (a[key], e[key]) {
                case (nil, let ev?): if lines.count < limit { lines.append("\(sub): missing, expected \(render(ev, limit: 120))") }
                case (let av?, nil): if lines.count < limit { lines.append("\(sub): unexpected \(render(av, limit: 120))") }
                case (let av?, let ev?): walk(av, ev, path: sub, into: &lines, limit: limit)
                default: break
                }
            }
        case (.array(let a), .array(let e)):
            for index in 0..<max(a.count, e.count) {
                let sub = path + "[\(index + 1)]"
                if index >= a.count {
                    if lines.count < limit { lines.append("\(sub): missing, expected \(render(e[index], limit: 120))") }
                } else if index >= e.count {
                    if lines.count < limit { lines.append("\(sub): unexpected \(render(a[index], limit: 120))") }
                } else {
                    walk(a[index], e[index], path: sub, into: &lines, limit: limit)
                }
            }
        default:
            lines.append("\(here): expected \(render(expected, limit: 120)), got \(render(actual, limit: 120))")
        }
    }

    static func isTable(_ value: LuaValue) -> Bool {
        switch value {
        case .array, .object: true
        default: false
        }
    }
}
