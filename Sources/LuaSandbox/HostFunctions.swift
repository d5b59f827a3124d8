/// A reference to a Lua function kept by the host: a chunk loaded with
/// ``LuaState/load(_:chunkName:)`` or a function a script passed to a host
/// function and the host kept with ``LuaHostCall/retainFunction(at:)``.
///
/// A handle is a plain value (two integers): it is `Sendable` and can be
/// stored anywhere, but it only means something to the state that made it;
/// any other state answers ``LuaError/invalidHandle``. Ids are never reused, so
/// a released handle stays invalid. Release handles you no longer need with
/// ``LuaState/release(_:)`` (closing the state releases everything).
public struct LuaFunction: Hashable, Sendable, CustomStringConvertible {
    let stateID: UInt64
    let id: Int64

    /// A readable rendering of the value, for logs and error reports.
    public var description: String { "LuaFunction(state: \(stateID), id: \(id))" }
}

/// One argument of a host-function call.
public enum LuaArgument: Sendable, Equatable {
    /// A plain value, converted with ``LuaValue``'s rules.
    case value(LuaValue)
    /// A Lua function. A synchronous host function can keep it with
    /// ``LuaHostCall/retainFunction(at:)``.
    case function
}

/// The arguments of a host-function call, converted to Swift.
///
/// Indices are 0-based (`arguments[0]` is Lua's argument #1); reading past
/// the end gives `nil` (`.value(.null)`), as in Lua. Missing trailing
/// arguments and explicit `nil`s are indistinguishable, as in Lua. The typed
/// accessors throw ``LuaHostError``s worded like Lua's own
/// (`bad argument #1 to 'sidobe.send' (table expected, got nil)`), so a host
/// function can simply let them propagate.
public struct LuaArguments: Sendable, Equatable, RandomAccessCollection {
    /// The qualified name the function was called as (`sidobe.send`).
    public let functionName: String
    /// The arguments as passed.
    public let all: [LuaArgument]

    /// Arguments as passed to the host function named `functionName`.
    public init(functionName: String, all: [LuaArgument]) {
        self.functionName = functionName
        self.all = all
    }

    /// Always 0.
    public var startIndex: Int { 0 }
    /// The number of arguments passed.
    public var endIndex: Int { all.count }

    /// The argument at 0-based `index`; `.value(.null)` past the end.
    public subscript(index: Int) -> LuaArgument {
        index >= 0 && index < all.count ? all[index] : .value(.null)
    }

    /// The plain value at `index` (`.null` past the end or for a function).
    public func value(at index: Int) -> LuaValue {
        if case .value(let v) = self[index] { return v }
        return .null
    }

    /// `true` if the argument at `index` is a Lua function.
    public func isFunction(at index: Int) -> Bool {
        if case .function = self[index] { return true }
        return false
    }

    /// A ``LuaHostError`` worded like Lua's `luaL_argerror`.
    public func argumentError(at index: Int, _ message: String) -> LuaHostError {
        LuaHostError("bad argument #\(index + 1) to '\(functionName)' (\(message))")
    }

    private func typeName(at index: Int) -> String {
        switch self[index] {
        case .function: return "function"
        case .value(let v): return index >= all.count ? "no value" : v.luaTypeName
        }
    }

    private func expected(_ what: String, at index: Int) -> LuaHostError {
        argumentError(at: index, "\(what) expected, got \(typeName(at: index))")
    }

    /// The string at `index` (a number is not converted).
    public func string(at index: Int) throws(LuaHostError) -> String {
        if case .string(let s) = value(at: index), !isFunction(at: index) { return s }
        throw expected("string", at: index)
    }

    /// The string at `index`, or nil when the argument is nil/absent.
    public func optionalString(at index: Int) throws(LuaHostError) -> String? {
        if !isFunction(at: index), case .null = value(at: index) { return nil }
        return try string(at: index)
    }

    /// The integer at `index` (a float with an integral value is accepted).
    public func integer(at index: Int) throws(LuaHostError) -> Int64 {
        let v = value(at: index)
        if !isFunction(at: index), let i = v.int64Value { return i }
        if case .double = v { throw argumentError(at: index, "number has no integer representation") }
        throw expected("integer", at: index)
    }

    /// The number at `index` as a `Double`.
    public func number(at index: Int) throws(LuaHostError) -> Double {
        if !isFunction(at: index), let d = value(at: index).doubleValue { return d }
        throw expected("number", at: index)
    }

    /// The boolean at `index`; nil or absent reads as `false`, any other
    /// type is refused (Lua truthiness is not applied).
    public func bool(at index: Int) throws(LuaHostError) -> Bool {
        switch value(at: index) {
        case .bool(let b) where !isFunction(at: index): return b
        case .null where !isFunction(at: index): return false
        default: throw expected("boolean", at: index)
        }
    }

    /// The table at `index` as an object (an empty table reads as `[:]`).
    public func object(at index: Int) throws(LuaHostError) -> [String: LuaValue] {
        switch value(at: index) {
        case .object(let o) where !isFunction(at: index): return o
        case .array(let a) where a.isEmpty && !isFunction(at: index): return [:]
        default: throw expected("table", at: index)
        }
    }
}

/// An error a host function raises in Lua. The trampoline raises it on the
/// host's behalf with the caller's position, like `error(message)`:
/// `rules/x.lua:7: <message>`. Any other Swift error thrown by a host
/// function is raised the same way with `String(describing: error)`.
public struct LuaHostError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message raised in Lua.
    public var message: String

    /// An error raised in Lua with `message` (the caller's position is prepended).
    public init(_ message: String) { self.message = message }

    /// A readable rendering of the value, for logs and error reports.
    public var description: String { message }
}

/// The context of a synchronous host-function call.
///
/// Valid only during the call. Use ``retainFunction(at:)`` to keep a Lua
/// function argument beyond it (`on("message.failed", fn)`).
public struct LuaHostCall: ~Copyable {
    /// The converted arguments.
    public let arguments: LuaArguments
    /// The `tag` of the run that made this call (see ``LuaState/run(_:arguments:tag:)``); 0 outside tagged runs.
    public let runTag: Int
    let state: LuaState

    init(arguments: LuaArguments, state: LuaState, runTag: Int) {
        self.arguments = arguments
        self.state = state
        self.runTag = runTag
    }

    /// Keeps the Lua function passed as the argument at 0-based `index` and
    /// returns a handle to run it later with ``LuaState/run(_:arguments:)``.
    /// Throws a Lua-worded error if that argument is not a function.
    public mutating func retainFunction(at index: Int) throws(LuaHostError) -> LuaFunction {
        guard arguments.isFunction(at: index) else {
            throw arguments.argumentError(
                at: index, "function expected, got \(arguments.value(at: index).luaTypeName)")
        }
        return state.retainArgument(at: index)
    }

    /// Charges the run's instruction budget for work the host function did, by the bytes it
    /// produced or scanned (one instruction for every 16 bytes, as C functions of the state are
    /// charged). Never fails here: a run whose budget is spent is aborted at its next count hook.
    public func charge(bytes: Int) {
        state.charge(bytes: bytes)
    }
}

/// The context of an asynchronous host-function call.
public struct LuaAsyncHostCall: Sendable {
    /// The converted arguments. Lua functions cannot be kept by an async
    /// host function; they appear as ``LuaArgument/function``.
    public let arguments: LuaArguments
    /// When the calling run's deadline passes. The host function is cancelled
    /// then; it may also pass the deadline on (as an HTTP timeout, say).
    public let deadline: ContinuousClock.Instant
    /// The `tag` of the run that made this call (see ``LuaState/run(_:arguments:tag:)``).
    public let runTag: Int
}

/// A synchronous host function: runs on the state's executor, inside the
/// Lua call. It must not use the ``LuaState`` it belongs to (that throws
/// ``LuaError/reentrantCall``). Returned values become the Lua results;
/// a thrown error is raised in Lua.
public typealias LuaHostFunction = (inout LuaHostCall) throws -> [LuaValue]

/// An asynchronous host function: the calling coroutine yields, the function
/// runs in its own task while other runs of the state go on, and the
/// coroutine is resumed with its results (or its error raised). It is
/// cancelled when the run's deadline passes.
public typealias LuaAsyncHostFunction = @Sendable (LuaAsyncHostCall) async throws -> [LuaValue]
