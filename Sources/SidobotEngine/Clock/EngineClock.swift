import Foundation
import Synchronization

/// Wall-clock time as the engine sees it.
///
/// Timers, cron schedules, TTLs and `now()` in rules all read time through an ``EngineClock``,
/// so tests replace the real clock with a ``VirtualClock`` and never sleep.
public protocol EngineClock: Sendable {
    /// The current time.
    func now() -> UnixTime
    /// Suspends until `now() >= deadline`, or throws `CancellationError` when the task is cancelled.
    func sleep(until deadline: UnixTime) async throws
}

/// The real clock.
public struct SystemClock: EngineClock {
    public init() {}

    public func now() -> UnixTime { UnixTime(Date()) }

    public func sleep(until deadline: UnixTime) async throws {
        let remaining = deadline.milliseconds - now().milliseconds
        if remaining > 0 { try await Task.sleep(for: .milliseconds(remaining)) }
        try Task.checkCancellation()
    }
}

/// A clock that moves only when told to.
///
/// The engine does not sleep on a virtual clock: under test, ``Engine/advance(by:)`` moves it
/// from one due timer or schedule to the next, firing each in order and waiting for its handlers,
/// so "every timer that falls due fires, in order", as at real time, but instantly.
/// Anything else sleeping on the clock is woken when time passes its deadline.
public final class VirtualClock: EngineClock {
    private struct State {
        var now: UnixTime
        var nextSleeper: UInt64 = 0
        var sleepers: [UInt64: (deadline: UnixTime, continuation: CheckedContinuation<Void, any Error>)] = [:]
    }

    private let state: Mutex<State>

    /// A clock that starts at `start` (default 2026-01-01T00:00:00Z).
    public init(start: UnixTime = UnixTime(seconds: 1_767_225_600)) {
        state = Mutex(State(now: start))
    }

    public func now() -> UnixTime { state.withLock { $0.now } }

    /// Sets the time (never backwards) and wakes every sleeper whose deadline has passed.
    public func set(_ time: UnixTime) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            if time > state.now { state.now = time }
            let due = state.sleepers.filter { $0.value.deadline <= state.now }
            for key in due.keys { state.sleepers[key] = nil }
            return due.sorted { $0.value.deadline < $1.value.deadline }.map(\.value.continuation)
        }
        for continuation in woken { continuation.resume() }
    }

    public func sleep(until deadline: UnixTime) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextSleeper += 1
            return state.nextSleeper
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> Bool in
                    if deadline <= state.now { return true }
                    state.sleepers[id] = (deadline, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }
}
