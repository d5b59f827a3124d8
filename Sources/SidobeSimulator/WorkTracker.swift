import Foundation

/// Runs the simulator's background work (async deliveries, webhook attempts) as tasks,
/// counts what is pending, and lets callers wait until nothing is.
final class WorkTracker: Sendable {
    private struct State {
        var nextID = 0
        var tasks: [Int: Task<Void, Never>] = [:]
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var cancelledWaiters: Set<Int> = []
    }

    private let state = Locked(State())

    /// How many tasks are pending.
    var pendingCount: Int { state.withLock { $0.tasks.count } }

    /// Starts `operation` in a task counted as pending until it returns.
    func spawn(_ operation: @escaping @Sendable () async -> Void) {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            // Created under the lock, so the task's own `finish` (which takes the lock) always finds it.
            state.tasks[id] = Task {
                await operation()
                self.finish(id)
            }
        }
    }

    private func finish(_ id: Int) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.tasks[id] = nil
            guard state.tasks.isEmpty else { return [] }
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Cancels every pending task; they finish promptly (their sleeps throw) and are then no longer pending.
    func cancelAll() {
        let tasks = state.withLock { Array($0.tasks.values) }
        for task in tasks { task.cancel() }
    }

    /// Returns once no task is pending, or throws ``SimulatorError/idleTimeout(pending:timeout:)``
    /// after `timeout` (measured on the real clock).
    func waitForIdle(timeout: Duration) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.idle() }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw SimulatorError.idleTimeout(pending: self.pendingCount, timeout: timeout)
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// Suspends until no task is pending; returns early when cancelled.
    private func idle() async {
        let id = state.withLock { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.tasks.isEmpty || state.cancelledWaiters.remove(id) != nil { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                state.cancelledWaiters.insert(id)
                return nil
            }
            waiter?.resume()
        }
    }
}
