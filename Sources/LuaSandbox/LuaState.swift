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

    private let S: OpaquePointer
    private let stateID: UInt64
    private var nextHandleID: Int64 = 1
    private var hostFunctions: [HostEntry] = []
    private var pendingAsync: PendingAsync?

    /// Called synchronously when a run suspends in an async host function, with the run's tag,
    /// before the host function starts and before anything else can run on the state's executor.
    /// A host that batches a run's effects uses it to make them durable at the last moment they
    /// are known to be complete. It must not call into this state.
    public var onSuspend: ((_ runTag: Int) -> Void)?
    private var chunkNames: Set<String> = []
    /// Plain fields read and written on every run. Kept behind a pointer the
    /// class owns: no dynamic exclusivity check on the hot path (the class is
    /// confined to one executor, so there is no concurrent access to check).
    private let hot: UnsafeMutablePointer<Hot>

    private struct Hot {
        var inHostCall = false
        var closeRequested = false
        var activeRuns = 0
        var runTimeNs: UInt64 = 0
        var runInstructions: Int64 = 0
        var valueDepth = 100
        var valueElements = 1_000_000
    }

    private var inHostCall: Bool {
        get { hot.pointee.inHostCall }
        set { hot.pointee.inHostCall = newValue }
    }

    /// The limits. Changing ``LuaLimits/memoryBytes`` applies at once; the
    /// other limits apply from the next run.
    public var limits: LuaLimits {
        didSet { applyLimits() }
    }

    /// Number of runs started and not finished (suspended ones included).
    public var activeRuns: Int { hot.pointee.activeRuns }

    private enum HostEntry {
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
    private var currentRunTag = 0

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
        default: return nil
        }
    }

    private func checkUsable() throws(LuaError) {
        if inHostCall { throw .reentrantCall }
        if sb_is_closed(S) != 0 { throw .unusable(.closed) }
        if let l = abortedLimit { throw .unusable(.aborted(l)) }
    }

    /// The status an entry point of CLuaShims returned, mapped the one way every caller maps it:
    /// `SB_OK` and `expected` (the one code a caller handles itself) come back, `SB_ABORT` throws
    /// the limit error, anything else throws ``LuaError/host(_:)`` with `failure`.
    @inline(__always)
    private func status(
        _ rc: Int32, expecting expected: Int32 = Int32(SB_OK), else failure: @autoclosure () -> String
    ) throws(LuaError) -> Int32 {
        if rc == SB_OK || rc == expected { return rc }
        if rc == SB_ABORT { throw limitError() }
        throw .host(failure())
    }

    private func limitError() -> LuaError {
        let limit = abortedLimit ?? .memory
        let src = String(cString: sb_abort_source(S))
        let line = Int(sb_abort_line(S))
        return .limitExceeded(
            LuaLimitError(limit: limit, chunk: src.isEmpty ? nil : src, line: line > 0 ? line : nil))
    }

    private func cConversionError(context: String) -> LuaError {
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
    private func writer() -> ValueWriter {
        ValueWriter(buffer: sb_inbuf(S), maxDepth: hot.pointee.valueDepth, maxElements: hot.pointee.valueElements)
    }

    private func handle(_ f: LuaFunction) throws(LuaError) {
        if f.stateID != stateID { throw .invalidHandle }
    }

    private func allocateHandleID() -> Int64 {
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

    // MARK: - Globals and host functions

    /// Sets global `name` to `value` (raw set).
    public func setGlobal(_ name: String, _ value: LuaValue) throws(LuaError) {
        try checkUsable()
        var w = writer()
        do { try w.append(value) } catch { throw .conversion(error.error(context: "global '\(name)'")) }
        _ = try status(sb_set_global(S, name), else: "cannot set global '\(name)'")
    }

    /// Reads global `name` with raw access (never runs `__index`).
    public func global(_ name: String) throws(LuaError) -> LuaValue {
        try checkUsable()
        if try status(sb_get_global(S, name), expecting: Int32(SB_CONVERSION), else: "cannot read global '\(name)'")
            == SB_CONVERSION
        {
            throw cConversionError(context: "global '\(name)'")
        }
        var r = ValueReader(buffer: sb_outbuf(S))
        return r.value()
    }

    /// A handle to the function stored in global `name` (raw access), or nil
    /// when that global is not a function. Release it with ``release(_:)``.
    public func function(named name: String) throws(LuaError) -> LuaFunction? {
        try checkUsable()
        let id = allocateHandleID()
        let rc = try status(sb_ref_global(S, name, id), expecting: Int32(SB_BAD_HANDLE), else: "cannot read global '\(name)'")
        return rc == SB_BAD_HANDLE ? nil : LuaFunction(stateID: stateID, id: id)
    }

    /// Registers a synchronous host function as global `name`, or as
    /// `table.name` when `table` is given (the table is created if needed).
    ///
    /// Arguments are converted with ``LuaValue``'s rules; an argument that
    /// cannot be converted raises `bad argument #n to 'name' (...)` in Lua
    /// before `body` runs. A function argument arrives as
    /// ``LuaArgument/function``.
    public func register(_ name: String, in table: String? = nil, _ body: @escaping LuaHostFunction) throws(LuaError)
    {
        try addHost(.sync(LuaState.qualified(name, table), body), name: name, table: table, async: false)
    }

    /// Registers an asynchronous host function (see ``LuaAsyncHostFunction``).
    /// It may only be called from code running in a run's coroutine (or in a
    /// coroutine created by it); elsewhere (a metamethod or sort comparator
    /// called from C, or ``call(_:arguments:)``) it raises a Lua error.
    public func registerAsync(
        _ name: String, in table: String? = nil, _ body: @escaping LuaAsyncHostFunction
    ) throws(LuaError) {
        try addHost(.async(LuaState.qualified(name, table), body), name: name, table: table, async: true)
    }

    private static func qualified(_ name: String, _ table: String?) -> String {
        table.map { "\($0).\(name)" } ?? name
    }

    private func addHost(_ entry: HostEntry, name: String, table: String?, async: Bool) throws(LuaError) {
        try checkUsable()
        let id = hostFunctions.count
        let rc: Int32
        if let table {
            rc = sb_register(S, table, name, Int32(id), async ? 1 : 0)
        } else {
            rc = sb_register(S, nil, name, Int32(id), async ? 1 : 0)
        }
        _ = try status(rc, else: "cannot register '\(entry.name)'")
        hostFunctions.append(entry)
    }

    /// Called by the C trampoline (through `sb_set_host`).
    private func hostCall(id: Int, nargs: Int, nresults: UnsafeMutablePointer<Int32>) -> Int32 {
        guard id >= 0, id < hostFunctions.count else {
            writer().writeMessageReturning("unknown host function")
            return Int32(SB_HOST_RESULT_ERROR)
        }
        let entry = hostFunctions[id]
        var reader = ValueReader(buffer: sb_outbuf(S))
        var args: [LuaArgument] = []
        args.reserveCapacity(nargs)
        for _ in 0..<nargs { args.append(reader.argument()) }
        let arguments = LuaArguments(functionName: entry.name, all: args)
        switch entry {
        case .async(let name, let body):
            pendingAsync = PendingAsync(name: name, body: body, arguments: arguments, runTag: currentRunTag)
            return Int32(SB_HOST_RESULT_YIELD)
        case .sync(_, let body):
            var call = LuaHostCall(arguments: arguments, state: self, runTag: currentRunTag)
            inHostCall = true
            defer { inHostCall = false }
            let results: [LuaValue]
            do {
                results = try body(&call)
            } catch let e as LuaHostError {
                writer().writeMessageReturning(e.message)
                return Int32(SB_HOST_RESULT_ERROR)
            } catch {
                writer().writeMessageReturning(String(describing: error))
                return Int32(SB_HOST_RESULT_ERROR)
            }
            return encodeHostResults(results, name: entry.name, nresults: nresults)
        }
    }

    private func encodeHostResults(
        _ results: [LuaValue], name: String, nresults: UnsafeMutablePointer<Int32>
    ) -> Int32 {
        var w = writer()
        for (i, v) in results.enumerated() {
            do { try w.append(v) } catch {
                let e = error.error(context: "result #\(i + 1) of '\(name)'")
                writer().writeMessageReturning(e.description)
                return Int32(SB_HOST_RESULT_ERROR)
            }
        }
        nresults.pointee = Int32(clamping: results.count)
        return Int32(SB_HOST_RESULT_OK)
    }

    /// Used by ``LuaHostCall/retainFunction(at:)``.
    func retainArgument(at index: Int) -> LuaFunction {
        let id = allocateHandleID()
        sb_retain_slots(S)[index] = id
        return LuaFunction(stateID: stateID, id: id)
    }

    // MARK: - Runs

    struct Run {
        var co: OpaquePointer
        var ref: Int32
        var budget: SBBudget
        var nargs: Int32
        var tag = 0
    }

    private enum Step {
        case finished([LuaValue])
        case failed(LuaError)
        case awaitHost(PendingAsync)
    }

    private func startRun(_ function: LuaFunction, _ arguments: [LuaValue]) throws(LuaError) -> Run {
        try checkUsable()
        try handle(function)
        var w = writer()
        for (i, v) in arguments.enumerated() {
            do { try w.append(v) } catch { throw .conversion(error.error(context: "argument #\(i + 1)")) }
        }
        return try startPrepared(function, count: arguments.count)
    }

    private func startRun(_ function: LuaFunction, _ packed: LuaPackedValues) throws(LuaError) -> Run {
        try checkUsable()
        try handle(function)
        guard packed.copy(into: sb_inbuf(S)) else { throw .host("out of memory") }
        return try startPrepared(function, count: packed.count)
    }

    private func startPrepared(_ function: LuaFunction, count: Int) throws(LuaError) -> Run {
        var co: OpaquePointer?
        var ref: Int32 = 0
        let rc = sb_run_prepare(S, function.id, Int32(clamping: count), &co, &ref)
        if try status(rc, expecting: Int32(SB_BAD_HANDLE), else: "cannot start a run") == SB_BAD_HANDLE {
            throw .invalidHandle
        }
        let deadline = sb_now_ns() &+ hot.pointee.runTimeNs
        hot.pointee.activeRuns += 1
        // the first resume passes the function to run (sb_boot's argument)
        return Run(co: co!, ref: ref, budget: SBBudget(remaining: hot.pointee.runInstructions, deadline_ns: deadline), nargs: 1)
    }

    private func finish(_ run: Run, reusable: Bool) {
        hot.pointee.activeRuns -= 1
        sb_run_finish(S, run.co, run.ref, reusable ? 1 : 0)
    }

    private func step(_ run: inout Run) -> Step {
        var nres: Int32 = 0
        if pendingAsync != nil { pendingAsync = nil }
        let outerTag = currentRunTag
        currentRunTag = run.tag
        let rc = sb_run_resume(S, run.co, run.nargs, &run.budget, &nres)
        currentRunTag = outerTag
        run.nargs = 0
        if hot.pointee.closeRequested {
            hot.pointee.closeRequested = false
            hot.pointee.activeRuns -= 1
            close()
            return .failed(.unusable(.closed))
        }
        switch Int(rc) {
        case Int(SB_OK):
            if Int(sb_run_results(S, run.co, nres)) != SB_OK {
                let e = cConversionError(context: "result")
                finish(run, reusable: true)
                return .failed(e)
            }
            var r = ValueReader(buffer: sb_outbuf(S))
            var values: [LuaValue] = []
            if nres > 0 {
                values.reserveCapacity(Int(nres))
                for _ in 0..<nres { values.append(r.value()) }
            }
            finish(run, reusable: true)
            return .finished(values)
        case Int(SB_HOST_YIELD):
            guard let p = pendingAsync else {
                finish(run, reusable: false)
                return .failed(.host("async host call lost"))
            }
            pendingAsync = nil
            onSuspend?(run.tag)
            return .awaitHost(p)
        case Int(SB_PLAIN_YIELD):
            let e = LuaError.script(
                LuaScriptError(
                    kind: .runtime,
                    message: "attempt to yield from outside a coroutine (coroutine.yield in a run's main function)",
                    chunk: nil, line: nil, traceback: ""))
            finish(run, reusable: false)
            return .failed(e)
        case Int(SB_ERROR):
            let e = scriptError(run.co)
            finish(run, reusable: false)
            return .failed(e)
        case Int(SB_ABORT):
            finish(run, reusable: false)
            return .failed(limitError())
        default:
            if sb_is_closed(S) != 0 { return .failed(.unusable(.closed)) }
            finish(run, reusable: false)
            return .failed(.host("resume failed"))
        }
    }

    private func scriptError(_ co: OpaquePointer) -> LuaError {
        guard Int(sb_error_info(S, co)) == SB_OK else {
            if let l = abortedLimit { return limitError().withLimit(l) }
            return .script(
                LuaScriptError(kind: .runtime, message: "unknown error", chunk: nil, line: nil, traceback: ""))
        }
        var r = ValueReader(buffer: sb_outbuf(S))
        let message = r.value().stringValue ?? "unknown error"
        let traceback = r.value().stringValue ?? ""
        let frameChunk = r.value().stringValue
        let frameLine = r.value().int64Value.map { Int($0) }
        var (chunk, line) = LuaState.position(in: message, knownChunks: chunkNames)
        if chunk == nil {
            chunk = frameChunk
            line = frameLine
        }
        return .script(
            LuaScriptError(kind: .runtime, message: message, chunk: chunk, line: line, traceback: traceback))
    }

    /// Parses `chunk:line:` at the start of a message when chunk is known.
    static func position(in message: String, knownChunks: Set<String>) -> (String?, Int?) {
        for chunk in knownChunks where message.hasPrefix(chunk + ":") {
            let rest = message.dropFirst(chunk.count + 1)
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            if !digits.isEmpty, rest.dropFirst(digits.count).first == ":", let line = Int(digits) {
                return (chunk, line)
            }
        }
        return (nil, nil)
    }

    /// Runs `function` in a new coroutine with `arguments` and returns its
    /// results.
    ///
    /// Async host functions called by the run suspend it: the coroutine
    /// yields, the host function runs in its own task, and the coroutine is
    /// resumed with its results. Other runs of the same state can proceed in
    /// the meantime (actor reentrancy). The instruction budget and the
    /// deadline of ``limits`` cover the whole run, suspensions included.
    ///
    /// - Throws: ``LuaError/script(_:)`` (the state stays usable),
    ///   ``LuaError/limitExceeded(_:)`` (the state must be rebuilt),
    ///   ``LuaError/conversion(_:)`` (an argument or a result),
    ///   ``LuaError/unusable(_:)``, ``LuaError/invalidHandle``,
    ///   ``LuaError/cancelled``.
    ///
    /// `tag` is yours: host functions called by this run see it as
    /// ``LuaHostCall/runTag`` / ``LuaAsyncHostCall/runTag``, so a host can tell
    /// which of several interleaved runs (say, which event's handler) called it.
    public func run(_ function: LuaFunction, arguments: [LuaValue] = [], tag: Int = 0) async throws(LuaError) -> [LuaValue] {
        var run = try startRun(function, arguments)
        run.tag = tag
        // Fast path: most handlers never suspend.
        switch step(&run) {
        case .finished(let values): return values
        case .failed(let error): throw error
        case .awaitHost(let pending): return try await continueRun(run, pending)
        }
    }

    /// ``run(_:arguments:)`` with arguments packed beforehand (see
    /// ``LuaPackedValues``).
    public func run(_ function: LuaFunction, packed: LuaPackedValues, tag: Int = 0) async throws(LuaError) -> [LuaValue] {
        var run = try startRun(function, packed)
        run.tag = tag
        switch step(&run) {
        case .finished(let values): return values
        case .failed(let error): throw error
        case .awaitHost(let pending): return try await continueRun(run, pending)
        }
    }

    /// Starts `function` in a new coroutine with `packed` arguments and runs it synchronously as far
    /// as it goes: to its end (``LuaRunStart/finished(_:)``), or to its first async host function
    /// call (``LuaRunStart/suspended(_:)``), to be continued with ``resume(_:)``.
    ///
    /// The same as ``run(_:packed:tag:)``, for a host that runs many handlers of which most never
    /// suspend: those cost no task and no `await`. Limits, errors and the `tag` are as for
    /// ``run(_:arguments:tag:)``.
    public func start(_ function: LuaFunction, packed: LuaPackedValues, tag: Int = 0) throws(LuaError) -> LuaRunStart {
        var run = try startRun(function, packed)
        run.tag = tag
        return try begin(&run)
    }

    /// ``start(_:packed:tag:)`` with one argument, a table of these fields (distinct keys), written
    /// straight into the state's argument buffer: for an event that goes to one handler, packing it
    /// first would only add a copy.
    public func start(_ function: LuaFunction, table fields: [(String, LuaValue)], tag: Int = 0) throws(LuaError) -> LuaRunStart {
        try checkUsable()
        try handle(function)
        var w = writer()
        do { try w.appendObject(fields) } catch { throw .conversion(error.error(context: "argument #1")) }
        var run = try startPrepared(function, count: 1)
        run.tag = tag
        return try begin(&run)
    }

    /// ``start(_:packed:tag:)`` with arguments converted from ``LuaValue``s.
    public func start(_ function: LuaFunction, arguments: [LuaValue] = [], tag: Int = 0) throws(LuaError) -> LuaRunStart {
        var run = try startRun(function, arguments)
        run.tag = tag
        return try begin(&run)
    }

    private func begin(_ run: inout Run) throws(LuaError) -> LuaRunStart {
        switch step(&run) {
        case .finished(let values): return .finished(values)
        case .failed(let error): throw error
        case .awaitHost(let pending): return .suspended(LuaSuspendedRun(run: run, pending: pending, stateID: stateID))
        }
    }

    /// Continues a run that ``start(_:packed:tag:)`` left suspended: performs its async host call,
    /// resumes it, and so on until it ends. Returns its results, or throws as ``run(_:arguments:tag:)``.
    /// A suspended run must be resumed exactly once, on this state.
    public func resume(_ suspended: LuaSuspendedRun) async throws(LuaError) -> [LuaValue] {
        guard suspended.stateID == stateID else { throw .invalidHandle }
        return try await continueRun(suspended.run, suspended.pending)
    }

    private func continueRun(_ started: Run, _ first: PendingAsync) async throws(LuaError) -> [LuaValue] {
        var run = started
        var next: Step = .awaitHost(first)
        while true {
            switch next {
            case .finished(let values):
                return values
            case .failed(let error):
                throw error
            case .awaitHost(let pending):
                let remaining = run.budget.deadline_ns &- sb_now_ns()
                let deadline =
                    ContinuousClock.now
                    + .nanoseconds(Int64(clamping: run.budget.deadline_ns > sb_now_ns() ? remaining : 0))
                let outcome = await LuaState.perform(
                    pending, deadline: deadline, deadlineNs: run.budget.deadline_ns)
                try deliver(outcome, pending: pending, run: run)
                next = step(&run)
            }
        }
    }

    /// Runs `function` synchronously (same rules as ``run(_:arguments:)``).
    /// An async host function called during the run raises a Lua error
    /// instead of suspending.
    public func call(_ function: LuaFunction, arguments: [LuaValue] = []) throws(LuaError) -> [LuaValue] {
        var run = try startRun(function, arguments)
        return try callLoop(&run)
    }

    /// ``call(_:arguments:)`` with arguments packed beforehand.
    public func call(_ function: LuaFunction, packed: LuaPackedValues) throws(LuaError) -> [LuaValue] {
        var run = try startRun(function, packed)
        return try callLoop(&run)
    }

    private func callLoop(_ run: inout Run) throws(LuaError) -> [LuaValue] {
        while true {
            switch step(&run) {
            case .finished(let values):
                return values
            case .failed(let error):
                throw error
            case .awaitHost(let pending):
                writer().writeMessageReturning(
                    "async host function '\(pending.name)' cannot be called from a synchronous call")
                sb_set_host_result(S, Int32(SB_HOST_RESULT_REJECT), 0)
            }
        }
    }

    private func deliver(_ outcome: HostOutcome, pending: PendingAsync, run: Run) throws(LuaError) {
        if sb_is_closed(S) != 0 {
            hot.pointee.activeRuns -= 1
            throw .unusable(.closed)
        }
        if let l = abortedLimit {
            finish(run, reusable: false)
            throw .unusable(.aborted(l))
        }
        var outcome = outcome
        if case .values = outcome, sb_now_ns() >= run.budget.deadline_ns { outcome = .timedOut }
        if case .failure = outcome, sb_now_ns() >= run.budget.deadline_ns { outcome = .timedOut }
        switch outcome {
        case .values(let values):
            var nres: Int32 = 0
            let rc = encodeHostResults(values, name: pending.name, nresults: &nres)
            sb_set_host_result(S, rc, nres)
        case .failure(let message):
            writer().writeMessageReturning(message)
            sb_set_host_result(S, Int32(SB_HOST_RESULT_ERROR), 0)
        case .timedOut:
            sb_mark_abort(S, run.co, Int32(SB_ABORT_DEADLINE))
            let e = limitError()
            finish(run, reusable: false)
            throw e
        case .cancelled:
            finish(run, reusable: false)
            throw .cancelled
        }
    }

    /// Runs an async host function in its own task, racing the deadline and
    /// the caller's cancellation. The first of the three wins; the others
    /// are cancelled and never waited for, so a host function that ignores
    /// cancellation cannot hold the run past its deadline.
    private static func perform(
        _ pending: PendingAsync, deadline: ContinuousClock.Instant, deadlineNs: UInt64
    ) async -> HostOutcome {
        if sb_now_ns() >= deadlineNs { return .timedOut }
        let body = pending.body
        let call = LuaAsyncHostCall(arguments: pending.arguments, deadline: deadline, runTag: pending.runTag)
        let race = HostRace()
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<HostOutcome, Never>) in
                race.start(continuation)
                let work = Task.detached {
                    let r: HostOutcome
                    do {
                        r = .values(try await body(call))
                    } catch let e as LuaHostError {
                        r = .failure(e.message)
                    } catch is CancellationError {
                        r = .cancelled
                    } catch {
                        r = .failure(String(describing: error))
                    }
                    race.finish(r)
                }
                let timer = Task.detached {
                    do {
                        try await Task.sleep(until: deadline, clock: .continuous)
                        race.finish(.timedOut)
                    } catch {}
                }
                race.track(work, timer)
            }
        } onCancel: {
            race.finish(.cancelled)
        }
        if case .cancelled = outcome, sb_now_ns() >= deadlineNs { return .timedOut }
        return outcome
    }
}

/// How an async host call ended.
private enum HostOutcome: Sendable {
    case values([LuaValue])
    case failure(String)
    case timedOut
    case cancelled
}

/// The first-wins race of an async host call: the host function, the
/// deadline timer and the caller's cancellation. The first result resumes
/// the waiting run; the tasks still running are cancelled.
private final class HostRace: Sendable {
    private struct State: ~Copyable {
        var continuation: CheckedContinuation<HostOutcome, Never>?
        var early: HostOutcome?
        var done = false
        var tasks: [Task<Void, Never>] = []
    }

    private let state = Mutex(State())

    func start(_ c: CheckedContinuation<HostOutcome, Never>) {
        let early: HostOutcome? = state.withLock { s in
            if let e = s.early {
                s.done = true
                return e
            }
            s.continuation = c
            return nil
        }
        if let early { c.resume(returning: early) }
    }

    func track(_ a: Task<Void, Never>, _ b: Task<Void, Never>) {
        let cancelNow = state.withLock { s in
            if s.done { return true }
            s.tasks = [a, b]
            return false
        }
        if cancelNow {
            a.cancel()
            b.cancel()
        }
    }

    func finish(_ r: HostOutcome) {
        let (c, tasks): (CheckedContinuation<HostOutcome, Never>?, [Task<Void, Never>]) = state.withLock { s in
            if s.done { return (nil, []) }
            guard let c = s.continuation else {
                if s.early == nil { s.early = r }
                return (nil, [])
            }
            s.done = true
            s.continuation = nil
            let t = s.tasks
            s.tasks = []
            return (c, t)
        }
        c?.resume(returning: r)
        for t in tasks { t.cancel() }
    }
}

extension LuaError {
    fileprivate func withLimit(_ l: LuaLimit) -> LuaError {
        if case .limitExceeded(var e) = self {
            e.limit = l
            return .limitExceeded(e)
        }
        return self
    }
}

extension ValueWriter {
    /// Resets the buffer and writes one string value.
    fileprivate func writeMessageReturning(_ message: String) {
        var w = self
        w.writeMessage(message)
    }
}

/// How ``LuaState/start(_:packed:tag:)`` left a run.
public enum LuaRunStart {
    /// The run ended without suspending; these are its results.
    case finished([LuaValue])
    /// The run called an async host function: continue it with ``LuaState/resume(_:)``.
    case suspended(LuaSuspendedRun)
}

/// A run waiting at its first async host function call. Not `Sendable`: it belongs to its state.
public struct LuaSuspendedRun {
    let run: LuaState.Run
    let pending: LuaState.PendingAsync
    let stateID: UInt64
}
