import CLuaShims
import Synchronization

/// A sandboxed Lua 5.4 state: one per rule.
///
/// `LuaState` is deliberately not `Sendable`: it owns a `lua_State`, which must
/// only ever be used from one serial executor. Keep it inside the actor that
/// runs the rule. Its async methods are `nonisolated(nonsending)` (the
/// package's default), so they run on that actor, and the actor's reentrancy
/// lets many runs be suspended in async host functions at once.
///
/// ```swift
/// actor Rule {
///     final class Handlers { var byEvent: [String: [LuaFunction]] = [:] }
///     let lua: LuaState
///     let handlers = Handlers()
///
///     init(source: String) async throws {
///         lua = try LuaState()
///         let handlers = self.handlers
///         try lua.register("on") { call in   // on("message.failed", function(ev) ... end)
///             let name = try call.arguments.string(at: 0)
///             handlers.byEvent[name, default: []].append(try call.retainFunction(at: 1))
///             return []
///         }
///         _ = try await lua.execute(source, chunkName: "rules/retry.lua")
///     }
///
///     func deliver(_ event: String, _ payload: LuaValue) async throws(LuaError) {
///         for fn in handlers.byEvent[event] ?? [] {
///             _ = try await lua.run(fn, arguments: [payload])
///         }
///     }
/// }
/// ```
///
/// What a script can reach, the limits, the value rules and the errors are
/// described in `docs/LUASANDBOX.md`.
public final class LuaState {
    private static let counter = Atomic<UInt64>(0)

    let S: OpaquePointer
    let stateID: UInt64
    private var nextHandleID: Int64 = 1
    var hostFunctions: [HostEntry] = []
    var pendingAsync: PendingAsync?

    /// Called synchronously when a run suspends in an async host function, with the run's tag,
    /// before the host function starts and before anything else can run on the state's executor.
    /// A host that batches a run's effects uses it to make them durable at the last moment they
    /// are known to be complete. It must not call into this state.
    public var onSuspend: ((_ runTag: Int) -> Void)?
    var chunkNames: Set<String> = []
    /// Plain fields read and written on every run. Kept behind a pointer the
    /// class owns: no dynamic exclusivity check on the hot path (the class is
    /// confined to one executor, so there is no concurrent access to check).
    let hot: UnsafeMutablePointer<Hot>

    struct Hot {
        var inHostCall = false
        var closeRequested = false
        var activeRuns = 0
        var runTimeNs: UInt64 = 0
        var runInstructions: Int64 = 0
        var runCPUNs: UInt64 = 0
        var sliceNs: UInt64 = 0
        var valueDepth = 100
        var valueElements = 1_000_000
    }

    var inHostCall: Bool {
        get { hot.pointee.inHostCall }
        set { hot.pointee.inHostCall = newValue }
    }

    /// Work waiting for the executor this state's runs use: a sliced run gives way to it after
    /// its shortest slice instead of at the end of its slice (``LuaWaitingWork``). `nil` (the
    /// default): runs pause only at the end of a slice. States that share an executor share one.
    public var waitingWork: LuaWaitingWork? {
        didSet { sb_set_waiting_work(S, waitingWork?.pointer) }
    }

    /// The limits. Changing ``LuaLimits/memoryBytes`` applies at once; the
    /// other limits apply from the next run.
    public var limits: LuaLimits {
        didSet { applyLimits() }
    }

    /// Number of runs started and not finished (suspended ones included).
    public var activeRuns: Int { hot.pointee.activeRuns }

    enum HostEntry {
        case sync(String, LuaHostFunction)
        case async(String, LuaAsyncHostFunction)

        var name: String {
            switch self {
            case .sync(let n, _), .async(let n, _): return n
            }
        }
    }

    struct PendingAsync {
        let name: String
        let body: LuaAsyncHostFunction
        let arguments: LuaArguments
        let runTag: Int
    }

    /// The tag of the run being stepped now (0 outside runs); host calls report it.
    var currentRunTag = 0

    /// Creates a sandboxed state with the standard sandbox (see
    /// `docs/LUASANDBOX.md`) and no host functions.
    ///
    /// Throws ``LuaError/host(_:)`` if the state cannot even be created
    /// within ``LuaLimits/memoryBytes``.
    public init(limits: LuaLimits = .default) throws(LuaError) {
        self.limits = limits
        self.stateID = LuaState.counter.add(1, ordering: .relaxed).newValue
        self.hot = UnsafeMutablePointer<Hot>.allocate(capacity: 1)
        hot.initialize(to: Hot())
        guard
            let s = sb_open(
                max(0, limits.memoryBytes), UInt32(clamping: max(1, limits.hookInterval)), nil, nil)
        else {
            hot.deinitialize(count: 1)
            hot.deallocate()
            throw .host("cannot create a Lua state within \(limits.memoryBytes) bytes")
        }
        self.S = s
        sb_set_host(
            s, Unmanaged.passUnretained(self).toOpaque(),
            { ctx, id, nargs, nresults in
                let me = Unmanaged<LuaState>.fromOpaque(ctx!).takeUnretainedValue()
                return me.hostCall(id: Int(id), nargs: Int(nargs), nresults: nresults!)
            })
        applyLimits()
    }

    deinit {
        sb_free(S)
        hot.deinitialize(count: 1)
        hot.deallocate()
    }

    private func applyLimits() {
        hot.pointee.runTimeNs = limits.timeNanoseconds
        hot.pointee.runInstructions = Int64(clamping: limits.instructionsPerRun)
        hot.pointee.runCPUNs = limits.cpuNanoseconds
        hot.pointee.sliceNs = limits.sliceNanoseconds
        hot.pointee.valueDepth = min(max(1, limits.maxValueDepth), 512)
        hot.pointee.valueElements = max(1, limits.maxValueElements)
        sb_set_memory_limit(S, max(0, limits.memoryBytes))
        sb_set_hook_interval(S, UInt32(clamping: max(1, limits.hookInterval)))
        sb_set_conv_limits(
            S,
            SBConvLimits(
                max_depth: UInt32(clamping: max(1, limits.maxValueDepth)),
                max_nodes: UInt64(clamping: max(1, limits.maxValueElements)),
                max_bytes: UInt64(clamping: max(1, limits.maxValueBytes))))
    }

    // MARK: - State

    /// Bytes currently allocated by the state (0 once closed).
    public var memoryInUse: Int { Int(sb_memory_used(S)) }

    /// The most bytes the state ever held.
    public var peakMemory: Int { Int(sb_memory_peak(S)) }

    /// `true` once ``close()`` was called.
    public var isClosed: Bool { sb_is_closed(S) != 0 }

    /// The limit that aborted a run of this state, if any. Such a state
    /// refuses further work: close it and build a new one.
    public var abortedLimit: LuaLimit? {
        LuaState.limit(fromAbort: sb_abort_reason(S))
    }

    /// `true` when the state hit a limit and must be discarded and rebuilt.
    public var needsRebuild: Bool { abortedLimit != nil }

    /// Closes the Lua state and frees its memory. Suspended runs fail with
    /// ``LuaUnusableReason/closed`` when they wake up. Idempotent. Called
    /// from one of the state's own host functions, the close happens when
    /// the current run returns or suspends (the run then fails with
    /// ``LuaUnusableReason/closed``).
    public func close() {
        if inHostCall {
            hot.pointee.closeRequested = true
            return
        }
        sb_close(S)
        pendingAsync = nil
    }

    private static func limit(fromAbort reason: Int32) -> LuaLimit? {
        switch Int(reason) {
        case Int(SB_ABORT_MEMORY): return .memory
        case Int(SB_ABORT_INSTRUCTIONS): return .instructions
        case Int(SB_ABORT_DEADLINE): return .deadline
        case Int(SB_ABORT_CPU): return .cpu
        default: return nil
        }
    }

    /// See ``LuaHostCall/charge(bytes:)``.
    func charge(bytes: Int) {
        sb_charge_host(S, Int64(max(0, bytes) / 16))
    }

    func checkUsable() throws(LuaError) {
        if inHostCall { throw .reentrantCall }
        if sb_is_closed(S) != 0 { throw .unusable(.closed) }
        if let l = abortedLimit { throw .unusable(.aborted(l)) }
    }

    /// The status an entry point of CLuaShims returned, mapped the one way every caller maps it:
    /// `SB_OK` and `expected` (the one code a caller handles itself) come back, `SB_ABORT` throws
    /// the limit error, anything else throws ``LuaError/host(_:)`` with `failure`.
    @inline(__always)
    func status(
        _ rc: Int32, expecting expected: Int32 = Int32(SB_OK), else failure: @autoclosure () -> String
    ) throws(LuaError) -> Int32 {
        if rc == SB_OK || rc == expected { return rc }
        if rc == SB_ABORT { throw limitError() }
        throw .host(failure())
    }

    func limitError() -> LuaError {
        let limit = abortedLimit ?? .memory
        let src = String(cString: sb_abort_source(S))
        let line = Int(sb_abort_line(S))
        return .limitExceeded(
            LuaLimitError(limit: limit, chunk: src.isEmpty ? nil : src, line: line > 0 ? line : nil))
    }

    func cConversionError(context: String) -> LuaError {
        let problem: LuaConversionError.Problem
        switch Int(sb_conversion_code(S)) {
        case Int(SB_CONV_FUNCTION): problem = .function
        case Int(SB_CONV_USERDATA): problem = .userdata
        case Int(SB_CONV_THREAD): problem = .coroutine
        case Int(SB_CONV_CYCLE): problem = .cycle
        case Int(SB_CONV_DEPTH): problem = .tooDeep
        case Int(SB_CONV_TOO_LARGE): problem = .tooLarge
        case Int(SB_CONV_KEY): problem = .invalidKey
        case Int(SB_CONV_MIXED): problem = .mixedKeys
        case Int(SB_CONV_SPARSE): problem = .sparseArray
        case Int(SB_CONV_NONFINITE): problem = .nonFiniteNumber
        default: problem = .hostMemory
        }
        return .conversion(
            LuaConversionError(
                problem: problem, path: String(cString: sb_conversion_path(S)), context: context,
                detail: String(cString: sb_conversion_detail(S))))
    }

    @inline(__always)
    func writer() -> ValueWriter {
        ValueWriter(buffer: sb_inbuf(S), maxDepth: hot.pointee.valueDepth, maxElements: hot.pointee.valueElements)
    }

    func handle(_ f: LuaFunction) throws(LuaError) {
        if f.stateID != stateID { throw .invalidHandle }
    }

    func allocateHandleID() -> Int64 {
        defer { nextHandleID += 1 }
        return nextHandleID
    }

    // MARK: - Loading

    /// Compiles `source` (text only, never binary) as a chunk named
    /// `chunkName`, so that errors read `rules/retry.lua:12: ...`. The chunk
    /// runs in the state's globals. Returns a handle; run it with
    /// ``run(_:arguments:)`` (a rule's top level is usually run once).
    ///
    /// Throws ``LuaError/script(_:)`` with kind `.syntax` for a syntax error.
    public func load(_ source: String, chunkName: String) throws(LuaError) -> LuaFunction {
        try checkUsable()
        let id = allocateHandleID()
        var src = source
        let rc = src.withUTF8 { u in
            u.withMemoryRebound(to: CChar.self) { c in
                sb_load(S, c.baseAddress, c.count, chunkName, id)
            }
        }
        if try status(rc, expecting: Int32(SB_SYNTAX), else: "cannot load chunk '\(chunkName)'") == SB_SYNTAX {
            var r = ValueReader(buffer: sb_outbuf(S))
            let msg = r.value().stringValue ?? "syntax error"
            let (chunk, line) = LuaState.position(in: msg, knownChunks: [chunkName])
            throw .script(
                LuaScriptError(kind: .syntax, message: msg, chunk: chunk ?? chunkName, line: line, traceback: ""))
        }
        chunkNames.insert(chunkName)
        return LuaFunction(stateID: stateID, id: id)
    }

    /// Loads and runs `source` once (a rule's top level); returns what it
    /// returns. The chunk handle is released afterwards.
    public func execute(_ source: String, chunkName: String, tag: Int = 0) async throws(LuaError) -> [LuaValue] {
        let f = try load(source, chunkName: chunkName)
        defer { release(f) }
        return try await run(f, tag: tag)
    }

    /// Forgets a function handle. Running it afterwards throws
    /// ``LuaError/invalidHandle``. Unknown or foreign handles are ignored.
    public func release(_ function: LuaFunction) {
        guard function.stateID == stateID, !inHostCall else { return }
        _ = sb_release(S, function.id)
    }
}
