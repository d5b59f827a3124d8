import HashTreeCollections
import LuaSandbox
import Sidobe

/// An event accepted or produced but not yet fully handled, in acceptance order.
struct InflightEvent: Sendable, Hashable {
    /// Its place in acceptance order (``StoreData/acceptedEvents`` when it was accepted).
    var order: UInt64
    var event: EngineEvent
    /// Rules whose runs for this event have all ended: after a restart the event goes only to the others.
    var doneRules: Set<String> = []
}

/// Everything the engine remembers, as plain values, but for the ids of accepted webhooks: the
/// ``Intake`` keeps those (``DedupeSet``), so that it can acknowledge without the engine.
///
/// Copying a `StoreData` is cheap (its big parts are persistent or copy-on-write collections),
/// which is how a snapshot takes a consistent picture without stopping the engine.
struct StoreData: Sendable {
    var state = RuleStateStore()
    var timers = TimerStore()
    var ledger = MessageLedger()
    var inflight: TreeDictionary<String, InflightEvent> = [:]
    /// Last fire time of each schedule, by `rule/handler`, for catch-up after downtime.
    var schedules: [String: UnixTime] = [:]
    var deadLetters: DeadLetterList
    /// Events accepted so far, counted per event: the order of the inflight ones (one
    /// group-committed record accepts several events at once).
    var acceptedEvents: UInt64 = 0
    /// Pending resend timers of declarative retry policies, by message id (derived from the timers,
    /// so it needs no record of its own): lets a retry be planned exactly once per failure.
    var retryTimers: [String: TimerID] = [:]
    /// Sends whose request may be out, by the ledger's key index (``SendIntent``).
    var intents: TreeDictionary<String, SendIntent> = [:]

    init(deadLetterCapacity: Int) {
        deadLetters = DeadLetterList(capacity: deadLetterCapacity)
    }

    /// Applies one change, live or in replay.
    mutating func apply(_ mutation: Mutation) {
        switch mutation {
        case .batch(let mutations):
            for change in mutations { apply(change) }
        case .stateSet(let rule, let key, let entry):
            state.set(rule: rule, key: key, entry: entry)
        case .stateDelete(let rule, let key):
            state.delete(rule: rule, key: key)
        case .timerAdded(let timer):
            timers.add(timer)
            if let messageID = Self.retryMessageID(timer) { retryTimers[messageID] = timer.id }
        case .timerRemoved(let id, _):
            if let timer = timers.remove(id), let messageID = Self.retryMessageID(timer) { retryTimers[messageID] = nil }
        case .messageAdded(let record):
            ledger.insert(record)
            if let key = record.sendKey { intents.removeValue(forKey: MessageLedger.keyIndex(rule: record.rule, key)) }
        case .sendIntended(let intent):
            intents[intent.index] = intent
        case .sendClosed(let rule, let key):
            intents.removeValue(forKey: MessageLedger.keyIndex(rule: rule, key))
        case .eventAccepted(let event, _, let movesLedger):
            acceptedEvents += 1
            inflight[event.id] = InflightEvent(order: acceptedEvents, event: event)
            switch event.kind {
            case .timer(let timer):
                timers.remove(timer.id)
                if let messageID = Self.retryMessageID(timer) { retryTimers[messageID] = nil }
            case .messageStatus(let status) where !status.stale && movesLedger:
                // The status moves with the event's acceptance, in the same record, so a crash can
                // never leave an accepted status unapplied.
                _ = ledger.apply(status: LedgerStatus(status.status), to: status.messageID, at: event.at.secondsValue,
                                 source: StatusSource(ofEvent: event.id), event: event.id)
            default:
                break
            }
        case .statusApplied(let messageID, let status, let at, let source, let event):
            _ = ledger.apply(status: status, to: messageID, at: at, source: source, event: event)
        case .eventDone(let id):
            inflight.removeValue(forKey: id)
        case .ruleDone(let id, let rule):
            inflight[id]?.doneRules.insert(rule)
        case .scheduleFired(let key, let at):
            schedules[key] = at
        case .deadLetterAdded(let letter):
            deadLetters.add(letter)
        case .deadLetterRemoved(let id):
            deadLetters.remove(id: id)
        }
    }

    static func retryMessageID(_ timer: TimerRecord) -> String? {
        guard timer.name == RetryPlanner.timerName, case .string(let id)? = timer.payload["message_id"] else { return nil }
        return id
    }

    /// What a snapshot needs, copied in O(1): the persistent maps, shared with the live store until
    /// either changes them, and none of the indexes (timer queue, age orders, TTL heap, retry
    /// timers) the live store rebuilds from them at start-up. A copy that kept those would make the
    /// first write after it copy them whole (a stall proportional to the store).
    var snapshotCopy: StoreData {
        var copy = self
        copy.state = state.snapshotCopy
        copy.timers = timers.snapshotCopy
        copy.ledger = ledger.snapshotCopy
        copy.retryTimers = [:]
        return copy
    }

    /// The inflight events in the order they were accepted.
    var inflightInOrder: [InflightEvent] {
        inflight.values.sorted { $0.order < $1.order }
    }
}
