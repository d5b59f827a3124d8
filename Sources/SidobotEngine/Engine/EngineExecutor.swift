import Foundation
import LuaSandbox

/// The engine actor's executor: one thread of its own, named `sidobot-engine`, that runs the
/// engine's jobs in order and counts those waiting, so that a computing rule's run gives way to
/// them after its shortest slice (``LuaWaitingWork``).
///
/// Everything that crosses onto the engine is a job here: the intake's wake-up, a `sidobe.send`
/// arriving from its run, the answer Sidobe gave, an admin request, a due timer. Without the count
/// each waited for the rest of a computing run's 10 ms slice, and a hook whose handler sends
/// crosses four or five times (measured with one CPU-bound rule: 40 ms from the hook's `202` to
/// its handler's send being recorded). A job is counted from when it is queued until it starts.
///
/// Why a thread of its own rather than a dispatch queue: Lua runs here, so this thread computes
/// for as long as rules compute, and an operator should be able to see that: `top -H` shows it
/// as `sidobot-engine`, its CPU apart from the event loops that verify, journal and acknowledge.
/// Its stack is set for Lua's C calls. (Running it at a lower priority than the event loops was
/// measured and did not help: acknowledgements stayed under 5 ms p99 with 20 busy rules either
/// way, see docs/PERFORMANCE.md.)
///
/// It is also a task executor, so that a task the engine starts for itself (the intake's wake-up)
/// begins on this thread instead of on the concurrency pool and hopping here: one thread switch
/// per batch of webhooks instead of two.
final class EngineExecutor: SerialExecutor, TaskExecutor, @unchecked Sendable {
    /// The jobs queued and not yet started, watched by every rule's Lua state.
    let waiting = LuaWaitingWork()
    private let jobs: JobQueue

    init() {
        jobs = JobQueue(waiting: waiting)
        let jobs = jobs
        let executor = asUnownedSerialExecutor()
        let taskExecutor = asUnownedTaskExecutor()
        let started = DispatchSemaphore(value: 0)
        let worker = Thread {
            jobs.thread = pthread_self()
            started.signal()
            // Named from inside: Foundation names only the current thread on Linux.
            Thread.current.name = "sidobot-engine"
            jobs.run(on: executor, taskExecutor: taskExecutor)
        }
        // Lua's C calls (pattern matching, json, nested pcall) run on this stack.
        worker.stackSize = 8 << 20
        worker.start()
        started.wait()
    }

    /// The engine is gone, so no job can arrive: the thread ends once it has run what is queued
    /// (tests create hundreds of engines in one process).
    deinit { jobs.stop() }

    func enqueue(_ job: consuming ExecutorJob) {
        waiting.arrived()
        jobs.append(UnownedJob(job))
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    func checkIsolated() {
        guard let thread = jobs.thread, pthread_equal(thread, pthread_self()) != 0 else {
            fatalError("engine state touched off the engine thread")
        }
    }
}

/// The engine thread's queue: what is queued, guarded by a condition the thread waits on.
private final class JobQueue: @unchecked Sendable {
    // `queued` and `stopped` are guarded by `condition`; `thread` is set once, before the first
    // job can be queued (the executor's initializer waits for the thread).
    private let condition = NSCondition()
    private var queued: [UnownedJob] = []
    private var stopped = false
    private let waiting: LuaWaitingWork
    nonisolated(unsafe) var thread: pthread_t?

    init(waiting: LuaWaitingWork) { self.waiting = waiting }

    func append(_ job: UnownedJob) {
        condition.lock()
        queued.append(job)
        let wasIdle = queued.count == 1
        condition.unlock()
        if wasIdle { condition.signal() }
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.unlock()
        condition.signal()
    }

    /// The thread's loop: take everything queued, run it in order, wait for more.
    func run(on executor: UnownedSerialExecutor, taskExecutor: UnownedTaskExecutor) {
        var batch: [UnownedJob] = []
        while true {
            condition.lock()
            while queued.isEmpty && !stopped { condition.wait() }
            if queued.isEmpty {
                condition.unlock()
                return
            }
            swap(&batch, &queued)
            condition.unlock()
            for job in batch {
                waiting.began()
                job.runSynchronously(isolatedTo: executor, taskExecutor: taskExecutor)
            }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
