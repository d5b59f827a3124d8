import DequeModule

/// Events waiting to be dispatched, in the order they were accepted or raised: emitted by a rule
/// (dispatched once the emitting run gives up the engine, never nested inside it), a sync send's
/// answer, a retry policy's `message.exhausted`, and the intake's events once the engine took them.
///
/// Appending schedules one drain of the engine (``Engine/drainInbox()``) if none is pending.
/// Owned by the engine actor.
final class EventInbox {
    /// An event to dispatch, with a note for its trace.
    struct Entry {
        var event: EngineEvent
        var note: String?
    }

    private var events: Deque<Entry> = []
    private var drainScheduled = false
    private weak var engine: Engine?

    /// Who drains the inbox.
    func attach(_ engine: Engine) { self.engine = engine }

    func append(_ event: EngineEvent, note: String? = nil) {
        events.append(Entry(event: event, note: note))
        scheduleDrain()
    }

    /// A status event held while sends were out, released now that they are answered.
    func appendReleased(_ event: EngineEvent) {
        append(event, note: "held until the sends in flight were answered: it could have been the status of one of them")
    }

    /// Schedules a drain (the intake has events for the engine, too).
    func scheduleDrain() {
        guard !drainScheduled else { return }
        drainScheduled = true
        Task { [weak engine] in await engine?.drainInbox() }
    }

    /// The next event to dispatch; the next append schedules a new drain. One at a time, so that a
    /// drain that yields (``ExecutorTurn``) and another that starts meanwhile still dispatch in order.
    func next() -> Entry? {
        drainScheduled = false
        return events.popFirst()
    }

    var isEmpty: Bool { events.isEmpty }
}
