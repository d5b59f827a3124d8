/// How long the engine has held its executor in one stretch of delivering events.
///
/// Handler runs start synchronously on the engine's executor, and each may run for up to a slice
/// (``LuaSandbox/LuaLimits/slice``) before it pauses. A stretch that delivers many events in a row
/// (a drain of the inbox, a burst of due timers) would still hold the executor for one slice per
/// event; past one slice in all, the stretch yields (`Task.yield()`), so that paused runs, runs
/// whose Sidobe answer came, and the admin API go first. What keeps acknowledgements fast is the
/// intake, which never needs this executor; this keeps the rules fair to each other.
struct ExecutorTurn {
    private let slice: Duration
    private var began: ContinuousClock.Instant

    init(slice: Duration) {
        self.slice = slice
        began = .now
    }

    /// Yields when the stretch has lasted a slice, then starts a new one.
    mutating func yieldIfSpent() async {
        guard slice > .zero, ContinuousClock.now - began >= slice else { return }
        await Task.yield()
        began = .now
    }
}
