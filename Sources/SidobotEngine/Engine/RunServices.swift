import Logging
import LuaSandbox

/// What runs, and the engine's work on their behalf, may do beside the Lua state: record changes
/// (``RunTable``), note what they did in their event's trace (``TraceStore``), raise events
/// (``EventInbox``), keep dead letters, and set the alarm earlier. The Lua API's modules see it
/// through the narrow protocols of ``LuaAPIHost``; the dispatcher and the sends use it directly.
///
/// Owned by the engine actor.
final class RunServices: StateHost, TimerHost, EventHost, LogHost {
    let logger: Logger
    private let clock: any EngineClock
    private let store: Store
    private let runs: RunTable
    private let traces: TraceStore
    private let inbox: EventInbox
    private let alarm: Alarm
    private var deadLetterCounter = 0

    init(clock: any EngineClock, store: Store, runs: RunTable, traces: TraceStore, inbox: EventInbox, alarm: Alarm, logger: Logger) {
        self.clock = clock
        self.store = store
        self.runs = runs
        self.traces = traces
        self.inbox = inbox
        self.alarm = alarm
        self.logger = logger
    }

    var now: UnixTime { clock.now() }

    func record(_ mutation: Mutation, run: RunTable.Tag) throws(DurabilityError) {
        try runs.record(mutation, run: run)
    }

    /// See ``RunTable/commitNow(_:run:)``.
    func commitNow(_ mutation: Mutation, run: RunTable.Tag) throws(DurabilityError) {
        try runs.commitNow(mutation, run: run)
    }

    func note(run: RunTable.Tag, _ text: @autoclosure () -> String) {
        guard let target = runs.traceTarget(of: run) else { return }
        traces.noteAction(target.position, rule: target.rule, text)
    }

    /// Makes the trace of the run's event findable by a message id it sent.
    func link(run: RunTable.Tag, messageID: String) {
        if let position = runs.tracePosition(of: run) { traces.link(messageID: messageID, to: position) }
    }

    var ruleStates: RuleStateStore { store.data.state }

    var timers: TimerStore { store.data.timers }

    func timersChanged() { alarm.wakeBy(store.nextTimerDue) }

    func raise(_ event: EngineEvent) { inbox.append(event) }

    func eventID(of run: RunTable.Tag) -> String? { runs.eventID(of: run) }

    /// See ``RunTable/nextSend(of:)``.
    func nextSend(of run: RunTable.Tag) -> (eventID: String, ordinal: Int)? { runs.nextSend(of: run) }

    /// Keeps a failed input for replay. From a failed run (`run`), journaled with the run's changes.
    func addDeadLetter(rule: String, event: EngineEvent, reason: DeadLetterReason, error: String, run: RunTable.Tag = 0) {
        deadLetterCounter += 1
        let now = clock.now()
        let letter = DeadLetter(id: "dl-\(now.milliseconds)-\(deadLetterCounter)", rule: rule, event: event,
                                reason: reason, error: error, at: now)
        do {
            try runs.record(.deadLetterAdded(letter), run: run)
        } catch {
            logger.error("could not journal a dead letter", metadata: ["error": "\(error)"])
        }
    }
}
