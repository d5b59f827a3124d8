import Logging
import LuaSandbox
import Sidobe

/// What every module of the Lua API may ask of the engine, for the run that calls it: the time,
/// to record a change (journaled with the run's others, see ``RunTable/record(_:run:)``), and a
/// line in the run's trace. Each module takes the protocol below that names what it needs on top,
/// never the engine itself.
protocol LuaAPIHost: AnyObject {
    /// The engine's clock.
    var now: UnixTime { get }
    /// A change made by the run with tag `run`.
    func record(_ mutation: Mutation, run: RunTable.Tag) throws(DurabilityError)
    /// Adds a line to the run's trace (built only if the trace keeps it).
    func note(run: RunTable.Tag, _ text: @autoclosure () -> String)
}

/// `state.*`: the rules' key spaces.
protocol StateHost: LuaAPIHost {
    var ruleStates: RuleStateStore { get }
}

/// `timer.*`: the pending timers, and the alarm to set earlier.
protocol TimerHost: LuaAPIHost {
    var timers: TimerStore { get }
    /// A timer was added: the real-clock alarm may have to ring earlier.
    func timersChanged()
}

/// `emit`: raising an event for every rule that listens.
protocol EventHost: LuaAPIHost {
    /// Queues `event` for dispatch once the emitting run gives up the engine (its record, which
    /// holds the event, is written by then).
    func raise(_ event: EngineEvent)
}

/// `log.*`: the engine's logger, and the event a run handles.
protocol LogHost: LuaAPIHost {
    var logger: Logger { get }
    func eventID(of run: RunTable.Tag) -> String?
}

/// `sidobe.send*` and `sidobe.resend`: asynchronous, on the engine's executor (the handler's
/// coroutine yields meanwhile). `sidobe.message` and `sidobe.check_number` only ask Sidobe, and go
/// to the client directly.
protocol SendHost: AnyObject, Sendable {
    /// Sends (or records, under `--dry-run`) a message on behalf of `rule`: `msg` or `nil, err`.
    func send(_ message: OutgoingMessage, rule: String, key: String?, retry: RetryPlan?, run: RunTable.Tag) async -> [LuaValue]
    /// Sends a ledger message's content again, optionally to another phone or in another mode.
    func resend(_ id: String, phone: String?, isAsync: Bool?, rule: String, run: RunTable.Tag) async -> [LuaValue]
}
