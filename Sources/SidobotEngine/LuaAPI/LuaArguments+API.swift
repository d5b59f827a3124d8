import LuaSandbox

/// Reading the arguments of the Lua API, with errors worded for the rule author.
extension LuaArguments {
    /// A duration: seconds as a number, or text such as `"30s"`, `"5m"`, `"2h"`, `"1d"`.
    func duration(at index: Int) throws(LuaHostError) -> Duration {
        let value = value(at: index)
        do {
            guard let duration = try Self.duration(value) else {
                throw argumentError(at: index, "duration expected (seconds, or \"30s\", \"5m\", \"2h\", \"1d\"), got \(value.luaTypeName)")
            }
            return duration
        } catch let error as LuaHostError {
            throw error
        } catch {
            throw argumentError(at: index, "\(error)")
        }
    }

    /// A duration value (seconds as a number, or text such as `"30s"`); nil for another type.
    static func duration(_ value: LuaValue) throws(DurationTextError) -> Duration? {
        switch value {
        case .integer(let seconds): try DurationText.parse(wholeSeconds: seconds)
        case .double(let seconds): try DurationText.parse(seconds: seconds)
        case .string(let text): try DurationText.parse(text)
        default: nil
        }
    }

    /// A plain (JSON-like) argument. A function is refused: LuaSandbox hands it over as a marker,
    /// and reading it as a value would make it nil (`state.set(k, fn)` would delete `k`).
    func data(at index: Int) throws(LuaHostError) -> LuaValue {
        if isFunction(at: index) {
            throw argumentError(at: index, "a function cannot be stored or sent; use nil, booleans, numbers, strings and tables of them")
        }
        return value(at: index)
    }

    /// An options table (nil reads as none).
    func options(at index: Int) throws(LuaHostError) -> [String: LuaValue] {
        switch value(at: index) {
        case .null: return [:]
        case .object(let fields): return fields
        case .array(let items) where items.isEmpty: return [:]
        case let other: throw argumentError(at: index, "options table expected, got \(other.luaTypeName)")
        }
    }

    /// A state key: a non-empty string.
    func stateKey(at index: Int = 0) throws(LuaHostError) -> String {
        let key = try string(at: index)
        if key.isEmpty { throw argumentError(at: index, "the key must not be empty") }
        return key
    }
}

extension LuaValue {
    /// A short rendering for traces and logs.
    var preview: String {
        let text = (try? JSONCodec.encode(self)) ?? "\(self)"
        return text.count > 120 ? String(text.prefix(117)) + "…" : text
    }
}
