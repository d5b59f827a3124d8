import CLuaShims
import Synchronization

/// Runs: a function started as a coroutine, stepped until it ends or awaits an async host call.
extension LuaState {
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
        /// The run used up its slice (``LuaLimits/slice``) and paused.
        case paused
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
        let budget = SBBudget(remaining: hot.pointee.runInstructions, deadline_ns: deadline, cpu_limit_ns: hot.pointee.runCPUNs,
                              cpu_used_ns: 0, slice_ns: hot.pointee.sliceNs)
        return Run(co: co!, ref: ref, budget: budget, nargs: 1)
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
        case Int(SB_SLICE_YIELD):
            return .paused
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
        case .paused: return try await continueRun(run, nil)
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
        case .paused: return try await continueRun(run, nil)
        }
    }

    /// Starts `function` in a new coroutine with `packed` arguments and runs it synchronously as far
    /// as it goes: to its end (``LuaRunStart/finished(_:)``), or to its first async host function
    /// call or the end of its first slice (``LuaRunStart/suspended(_:)``), to be continued with
    /// ``resume(_:gate:)``. A run paused at the end of a slice takes its next slice when the
    /// ``LuaSliceGate`` given to `resume` lets it, or after the work already waiting on the caller's
    /// executor (`Task.yield()`).
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
        case .paused: return .suspended(LuaSuspendedRun(run: run, pending: nil, stateID: stateID))
        }
    }

    /// Continues a run that ``start(_:packed:tag:)`` left suspended: performs its async host call,
    /// resumes it, and so on until it ends. Returns its results, or throws as ``run(_:arguments:tag:)``.
    /// A suspended run must be resumed exactly once, on this state.
    ///
    /// - Parameter gate: decides when a run paused at the end of a slice takes its next one
    ///   (``LuaSliceGate``); without one, after `Task.yield()`.
    public func resume(_ suspended: LuaSuspendedRun, gate: (any LuaSliceGate)? = nil) async throws(LuaError) -> [LuaValue] {
        guard suspended.stateID == stateID else { throw .invalidHandle }
        return try await continueRun(suspended.run, suspended.pending, gate: gate)
    }

    private func continueRun(_ started: Run, _ first: PendingAsync?, gate: (any LuaSliceGate)? = nil) async throws(LuaError) -> [LuaValue] {
        var run = started
        var next: Step = first.map { .awaitHost($0) } ?? .paused
        while true {
            switch next {
            case .finished(let values):
                return values
            case .failed(let error):
                throw error
            case .paused:
                // Behind whatever waits on this executor: other runs, other events.
                if let gate { await gate.nextSlice() } else { await Task.yield() }
                if sb_is_closed(S) != 0 {
                    hot.pointee.activeRuns -= 1
                    throw .unusable(.closed)
                }
                if Task.isCancelled {
                    finish(run, reusable: false)
                    throw .cancelled
                }
                next = step(&run)
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
        // A synchronous call cannot let others go: never paused.
        run.budget.slice_ns = 0
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
            case .paused:
                continue
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
    func withLimit(_ l: LuaLimit) -> LuaError {
        if case .limitExceeded(var e) = self {
            e.limit = l
            return .limitExceeded(e)
        }
        return self
    }
}

extension ValueWriter {
    /// Resets the buffer and writes one string value.
    func writeMessageReturning(_ message: String) {
        var w = self
        w.writeMessage(message)
    }
}

/// How ``LuaState/start(_:packed:tag:)`` left a run.
public enum LuaRunStart {
    /// The run ended without suspending; these are its results.
    case finished([LuaValue])
    /// The run called an async host function, or used up its slice: continue it with
    /// ``LuaState/resume(_:gate:)``.
    case suspended(LuaSuspendedRun)
}

/// A run waiting at its first async host function call or paused at the end of its first slice.
/// Not `Sendable`: it belongs to its state.
public struct LuaSuspendedRun {
    let run: LuaState.Run
    let pending: LuaState.PendingAsync?
    let stateID: UInt64

    /// Whether the run paused at the end of its slice (not in an async host call).
    public var isPaused: Bool { pending == nil }
}

/// Decides when a run paused at the end of its slice (``LuaLimits/slice``) takes the next one.
///
/// `Task.yield()` puts a paused run at the back of its executor's queue, behind every other paused
/// run: with twenty CPU-bound runs, anything else that comes waits for twenty slices. A host that
/// wants other work to wait for about one slice hands out slices itself, one at a time.
/// `nextSlice()` runs on the caller's executor (the one `resume` runs on).
public protocol LuaSliceGate: AnyObject {
    /// Returns when the paused run may run its next slice.
    func nextSlice() async
}
