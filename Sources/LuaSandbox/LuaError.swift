/// Everything that can go wrong when using a ``LuaState``.
public enum LuaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The script raised an error (runtime) or could not be compiled (syntax).
    case script(LuaScriptError)
    /// The run exceeded a limit and was aborted. The state can no longer be
    /// used (``LuaState/needsRebuild`` is `true`): close it and build a new
    /// one from the source.
    case limitExceeded(LuaLimitError)
    /// A value could not cross the Swift ⇄ Lua boundary.
    case conversion(LuaConversionError)
    /// The state cannot run anything any more: it hit a limit earlier (in this
    /// or another run) or it was closed.
    case unusable(LuaUnusableReason)
    /// The ``LuaFunction`` handle was released, or belongs to another state.
    case invalidHandle
    /// A ``LuaState`` method was called from inside one of its own host
    /// functions (the state is busy).
    case reentrantCall
    /// The task running the run was cancelled while the run was suspended in
    /// an async host function. The run is dropped; the state stays usable.
    case cancelled
    /// The host itself failed (out of C memory, invalid configuration, ...).
    case host(String)

    /// A readable rendering of the value, for logs and error reports.
    public var description: String {
        switch self {
        case .script(let e): return e.description
        case .limitExceeded(let e): return e.description
        case .conversion(let e): return e.description
        case .unusable(let r): return r.description
        case .invalidHandle: return "invalid Lua function handle (released, or from another state)"
        case .reentrantCall: return "the Lua state was used from inside one of its own host functions"
        case .cancelled: return "the run was cancelled"
        case .host(let m): return "Lua host failure: \(m)"
        }
    }
}

/// An error raised by a script, or a syntax error found while loading one.
public struct LuaScriptError: Sendable, Equatable, CustomStringConvertible {
    /// Runtime error or syntax error.
    public enum Kind: String, Sendable, Equatable {
        case runtime
        case syntax
    }

    /// Runtime or syntax.
    public var kind: Kind
    /// The error message exactly as Lua produced it, usually prefixed with the
    /// position (`rules/retry.lua:12: attempt to index a nil value`). An error
    /// object that is not a string or number is described, never converted
    /// with `__tostring`: `(error object is a table value)`.
    public var message: String
    /// The chunk name (`rules/retry.lua`) where the error happened, when known.
    public var chunk: String?
    /// The 1-based line where the error happened, when known.
    public var line: Int?
    /// A Lua traceback of the failed coroutine (empty for syntax errors).
    public var traceback: String

    /// Creates a script error (normally made by ``LuaState``).
    public init(kind: Kind, message: String, chunk: String?, line: Int?, traceback: String) {
        self.kind = kind
        self.message = message
        self.chunk = chunk
        self.line = line
        self.traceback = traceback
    }

    /// A readable rendering of the value, for logs and error reports.
    public var description: String {
        var s = kind == .syntax ? "Lua syntax error: \(message)" : "Lua error: \(message)"
        if let chunk, let line, !message.hasPrefix("\(chunk):\(line):") {
            s += " (at \(chunk):\(line))"
        }
        if !traceback.isEmpty { s += "\n" + traceback }
        return s
    }
}

/// The limits a run can exceed.
public enum LuaLimit: String, Sendable, Equatable, CustomStringConvertible {
    /// The state's memory ceiling (``LuaLimits/memoryBytes``).
    case memory
    /// The run's instruction budget (``LuaLimits/instructionsPerRun``),
    /// pattern-matching steps included.
    case instructions
    /// The run's wall-clock deadline (``LuaLimits/timePerRun``), time spent
    /// suspended in async host functions included.
    case deadline
    /// The run's CPU time (``LuaLimits/cpuPerRun``): what it spent running,
    /// not suspended.
    case cpu

    /// A readable rendering of the value, for logs and error reports.
    public var description: String {
        switch self {
        case .memory: return "memory limit"
        case .instructions: return "instruction limit"
        case .deadline: return "time limit"
        case .cpu: return "CPU time limit"
        }
    }
}

/// A run was aborted because it exceeded a limit.
public struct LuaLimitError: Sendable, Equatable, CustomStringConvertible {
    /// Which limit.
    public var limit: LuaLimit
    /// The chunk that was running, when known.
    public var chunk: String?
    /// The 1-based line that was running, when known.
    public var line: Int?

    /// Creates a limit error (normally made by ``LuaState``).
    public init(limit: LuaLimit, chunk: String?, line: Int?) {
        self.limit = limit
        self.chunk = chunk
        self.line = line
    }

    /// A readable rendering of the value, for logs and error reports.
    public var description: String {
        var s = "Lua run aborted: \(limit) exceeded"
        if let chunk, let line { s += " at \(chunk):\(line)" }
        return s
    }
}

/// Why a state cannot be used any more.
public enum LuaUnusableReason: Sendable, Equatable, CustomStringConvertible {
    /// The state hit this limit earlier and must be rebuilt.
    case aborted(LuaLimit)
    /// ``LuaState/close()`` was called.
    case closed

    /// A readable rendering of the value, for logs and error reports.
    public var description: String {
        switch self {
        case .aborted(let l): return "the Lua state hit its \(l) earlier and must be rebuilt"
        case .closed: return "the Lua state is closed"
        }
    }
}

/// A value that cannot cross the Swift ⇄ Lua boundary.
public struct LuaConversionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong with the value.
    public enum Problem: String, Sendable, Equatable {
        /// A Lua function where a plain value is expected.
        case function
        /// A userdata value.
        case userdata
        /// A coroutine (thread) value.
        case coroutine
        /// A table that contains itself.
        case cycle
        /// Nesting deeper than ``LuaLimits/maxValueDepth``.
        case tooDeep
        /// More than ``LuaLimits/maxValueElements`` values or
        /// ``LuaLimits/maxValueBytes`` bytes.
        case tooLarge
        /// A key that is neither a string nor an integer ≥ 1.
        case invalidKey
        /// A table with both integer and string keys.
        case mixedKeys
        /// Integer keys too sparse to be an array.
        case sparseArray
        /// NaN or an infinity.
        case nonFiniteNumber
        /// The host ran out of memory while converting.
        case hostMemory
    }

    /// What is wrong.
    public var problem: Problem
    /// Where the value sits: `$` is the value itself, then `.name`,
    /// `["odd key"]` and `[3]` (Lua indices, 1-based) steps.
    public var path: String
    /// Which value: `argument #2 to 'sidobe.send'`, `result #1`, `global 'x'`,
    /// `argument #1` (of a run).
    public var context: String
    /// Extra detail (`boolean key true`, `nan`, `limit 100`), may be empty.
    public var detail: String

    /// Creates a conversion error (normally made by ``LuaState``).
    public init(problem: Problem, path: String, context: String, detail: String) {
        self.problem = problem
        self.path = path
        self.context = context
        self.detail = detail
    }

    /// A readable rendering of the value, for logs and error reports.
    public var description: String {
        let what: String
        switch problem {
        case .function: what = "a function value cannot be converted"
        case .userdata: what = "a userdata value cannot be converted"
        case .coroutine: what = "a coroutine value cannot be converted"
        case .cycle: what = "table cycle"
        case .tooDeep: what = "value nested too deeply"
        case .tooLarge: what = "value too large"
        case .invalidKey: what = "table key cannot be converted"
        case .mixedKeys: what = "table mixes array (integer) and object (string) keys"
        case .sparseArray: what = "array too sparse"
        case .nonFiniteNumber: what = "NaN and infinities cannot be converted"
        case .hostMemory: what = "host out of memory"
        }
        let d = detail.isEmpty ? "" : " (\(detail))"
        let c = context.isEmpty ? "" : "\(context): "
        return "\(c)\(what)\(d) at \(path)"
    }
}
