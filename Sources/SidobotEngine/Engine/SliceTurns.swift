import DequeModule
import LuaSandbox

/// Hands out slices to runs paused at the end of theirs, one run at a time, so that whatever else
/// comes to the engine waits for about one slice, however many rules are computing.
///
/// With `Task.yield()` every paused run sits in the engine actor's queue (which is first in,
/// first out: task priorities do not reorder it) and a hook's dispatch, a Sidobe answer or an admin
/// request waits behind all of them: twenty CPU-bound rules held a benign handler for over a second.
/// Here paused runs wait in a line of their own, and one *turn* at a time goes through the actor's
/// queue: a turn resumes the first run in line, which takes its slice, and the next turn, enqueued
/// behind it, comes after everything that arrived meanwhile. Runs take their slices in turn (a
/// rule that keeps computing cannot starve another), and the engine's other work goes between them.
///
/// Owned by the engine actor.
final class SliceTurns: LuaSliceGate {
    private var line: Deque<CheckedContinuation<Void, Never>> = []
    /// Whether a turn is on its way through the actor's queue.
    private var turnScheduled = false
    private weak var engine: Engine?
    /// The engine executor's count of waiting jobs, in which a turn on its way is not work that
    /// should pause the run computing now.
    private let waitingWork: LuaWaitingWork

    init(waiting: LuaWaitingWork) { waitingWork = waiting }

    /// Who runs the turns.
    func attach(_ engine: Engine) { self.engine = engine }

    /// Runs paused and waiting for their next slice.
    var waiting: Int { line.count }

    func nextSlice() async {
        await withCheckedContinuation { continuation in
            line.append(continuation)
            scheduleTurn()
        }
    }

    /// A turn: the first run in line continues (it is enqueued on the engine now and runs its
    /// slice next), and if more wait, the next turn goes behind it and whatever came meanwhile.
    func takeTurn() {
        turnScheduled = false
        waitingWork.ignore(-1)
        guard let first = line.popFirst() else { return }
        first.resume()
        if !line.isEmpty { scheduleTurn() }
    }

    private func scheduleTurn() {
        guard !turnScheduled else { return }
        turnScheduled = true
        waitingWork.ignore(1)
        Task { [weak engine] in await engine?.takeSliceTurn() }
    }
}
