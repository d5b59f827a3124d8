import Dispatch
import LuaSandbox

/// The engine actor's executor: a serial queue that counts the jobs waiting on it, so that a
/// computing rule's run gives way to them after its shortest slice (``LuaWaitingWork``).
///
/// Everything that crosses onto the engine is a job here: the intake's wake-up, a `sidobe.send`
/// arriving from its run, the answer Sidobe gave, an admin request, a due timer. Without the count
/// each waited for the rest of a computing run's 10 ms slice, and a hook whose handler sends
/// crosses four or five times (measured with one CPU-bound rule: 40 ms from the hook's `202` to
/// its handler's send being recorded). A job is counted from when it is queued until it starts.
final class EngineExecutor: SerialExecutor, @unchecked Sendable {
    // A serial dispatch queue is the whole of the state; `waiting` is atomic.
    private let queue = DispatchQueue(label: "sidobot.engine")
    /// The jobs queued and not yet started, watched by every rule's Lua state.
    let waiting = LuaWaitingWork()

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        waiting.arrived()
        queue.async { [self] in
            waiting.began()
            job.runSynchronously(on: asUnownedSerialExecutor())
        }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    func checkIsolated() {
        dispatchPrecondition(condition: .onQueue(queue))
    }
}
