import Foundation
import Logging
import LuaSandbox
import Sidobe

/// What a declarative retry policy does after a failure.
enum RetryDecision: Equatable {
    /// Nothing: the failure was planned for already, or the message has no policy.
    case none
    /// Resend the same content after this many milliseconds (a timer in the store, so it survives restarts).
    case resend(afterMilliseconds: Int64)
    /// The resends are used up: send to this phone instead.
    case escalate(phone: String)
    /// The resends are used up and there is nowhere to escalate: raise `message.exhausted`.
    case exhausted(reason: String)
}

/// Decides what a retry policy (`retry = {...}` on a send) does when a message fails: pure, from
/// the ledger record and what was done about it already.
enum RetryPlanner {
    /// The reserved timer name of the engine's own resend timers.
    static let timerName = "__retry"

    /// - Parameters:
    ///   - alreadyHandled: a resend timer is pending, a resend was sent, or the message was given up on.
    ///   - random: uniform in `0..<1`, for the jitter.
    static func decide(after record: MessageRecord, alreadyHandled: Bool, random: () -> Double) -> RetryDecision {
        guard let plan = record.retry, record.status == .failed, !alreadyHandled else { return .none }
        let resendsSoFar = record.attempt - 1
        if resendsSoFar < plan.max {
            var delay = plan.delayMilliseconds(forResend: resendsSoFar + 1)
            if plan.jitter { delay = Int64(Double(delay) * (0.5 + 0.5 * random())) }
            return .resend(afterMilliseconds: delay)
        }
        if let phone = plan.escalateTo { return .escalate(phone: phone) }
        return .exhausted(reason: "failed \(record.attempt) times")
    }
}

/// Carries out retry policies: the engine resends failed messages by itself, durably, then
/// escalates or raises `message.exhausted`. Journaled like everything else, so a restart in
/// between loses nothing. Owned by the engine actor.
final class Retries {
    /// A send a policy makes, run by the engine as its own work.
    enum Job {
        case resend(MessageRecord, RetryPlan, trace: TraceStore.Position)
        case escalate(MessageRecord, phone: String)
    }

    private let store: Store
    private let intake: Intake
    private let sender: MessageSender
    private let services: RunServices
    private let traces: TraceStore
    private let inbox: EventInbox
    private let clock: any EngineClock
    private let random: @Sendable () -> Double
    private let logger: Logger

    init(store: Store, intake: Intake, sender: MessageSender, services: RunServices, traces: TraceStore, inbox: EventInbox,
         clock: any EngineClock, random: @escaping @Sendable () -> Double, logger: Logger) {
        self.store = store
        self.intake = intake
        self.sender = sender
        self.services = services
        self.traces = traces
        self.inbox = inbox
        self.clock = clock
        self.random = random
        self.logger = logger
    }

    /// A message's status moved to FAILED (its event is being dispatched): schedules its resend,
    /// or returns the escalation to make, or raises `message.exhausted`. Planned when the event is
    /// dispatched, not when it is accepted, so an event dispatched again after a crash plans it
    /// too; nothing happens if it was planned already.
    func afterFailure(of messageID: String) -> Job? {
        guard let record = store.data.ledger[messageID], record.retry != nil, record.status == .failed else { return nil }
        let handled = store.data.retryTimers[messageID] != nil || store.data.ledger.resend(of: messageID) != nil
            || intake.hasSeen(Self.exhaustedID(messageID)) || store.data.inflight[Self.exhaustedID(messageID)] != nil
        switch RetryPlanner.decide(after: record, alreadyHandled: handled, random: random) {
        case .none:
            return nil
        case .resend(let delay):
            let now = clock.now()
            // The payload is one string: it always has a JSON form.
            guard let timer = try? TimerRecord(id: TimerID(store.data.timers.nextID), rule: record.rule, name: RetryPlanner.timerName,
                                               payload: .object(["message_id": .string(messageID)]), due: now + .milliseconds(delay),
                                               createdAt: now, late: TimerLatePolicy(mode: .fire)) else { return nil }
            do {
                try store.commit(.timerAdded(timer))
            } catch {
                logger.error("journal write failed", metadata: ["error": "\(error)"])
                return nil
            }
            logger.info("failed message will be resent by its retry policy", metadata: [
                "rule": "\(record.rule)", "message": "\(messageID)", "resend": "\(record.attempt)/\(record.retry?.max ?? 0)",
                "in": "\(DurationText.format(milliseconds: delay))",
            ])
            services.timersChanged()
            return nil
        case .escalate(let phone):
            return .escalate(record, phone: phone)
        case .exhausted(let reason):
            raiseExhausted(record, reason: reason)
            return nil
        }
    }

    /// A resend timer fired: the resend to make, unless the message succeeded meanwhile or is
    /// gone (then only its trace says so, and the caller finishes the event).
    func timerFired(_ event: EngineEvent, timer: TimerRecord) -> Job? {
        var trace = Trace(event: event, eventName: "retry")
        guard case .string(let messageID)? = timer.payload["message_id"], let record = store.data.ledger[messageID], let plan = record.retry else {
            trace.notes.append("the message to resend is no longer in the ledger")
            traces.begin(trace, messageID: nil)
            return nil
        }
        guard record.status == .failed else {
            trace.notes.append("not resent: the message is now \(record.status)")
            traces.begin(trace, messageID: messageID)
            return nil
        }
        trace.notes.append("resend \(record.attempt)/\(plan.max) of \(messageID) by its retry policy")
        return .resend(record, plan, trace: traces.begin(trace, messageID: messageID))
    }

    /// Makes a policy's send.
    func run(_ job: Job) async {
        switch job {
        case .resend(let record, let plan, let position):
            let result = await sender.send(MessageSender.content(of: record), rule: record.rule, key: nil,
                                           policyKey: .policy("resend", of: record.id), attempt: record.attempt + 1,
                                           resendOf: record.id, retry: plan, run: 0)
            noteOutcome(of: result, inTraceAt: position, what: "resend of \(record.id)")
            if Self.isInDoubt(result) {
                logger.warning("a policy's resend is in doubt since a restart; it is not made again", metadata: ["rule": "\(record.rule)", "message": "\(record.id)"])
            } else if result.first?.isNull ?? true {
                // The resend itself could not be made: count it as a failed attempt.
                raiseExhausted(record, reason: "the resend could not be sent: \((result.dropFirst().first ?? .null).preview)")
            }
        case .escalate(let record, let phone):
            var message = MessageSender.content(of: record)
            message.phone = phone
            let result = await sender.send(message, rule: record.rule, key: nil, policyKey: .policy("escalate", of: record.id),
                                           attempt: record.attempt + 1, resendOf: record.id, retry: nil, run: 0)
            if Self.isInDoubt(result) {
                logger.warning("a policy's escalation is in doubt since a restart; it is not made again", metadata: ["rule": "\(record.rule)", "message": "\(record.id)"])
                return
            }
            logger.info("retries used up; escalated", metadata: ["rule": "\(record.rule)", "message": "\(record.id)"])
            if result.first?.isNull ?? true {
                raiseExhausted(record, reason: "escalation to \(phone) could not be sent: \((result.dropFirst().first ?? .null).preview)")
            }
        }
    }

    static func exhaustedID(_ messageID: String) -> String { "x-\(messageID)" }

    /// Whether a send was not made because it is in doubt: an operator decides, the policy waits.
    private static func isInDoubt(_ result: [LuaValue]) -> Bool {
        result.dropFirst().first?["code"]?.stringValue == "IN_DOUBT"
    }

    /// Raises `message.exhausted` for every rule that listens: `ev.message_id`, `ev.attempts`,
    /// `ev.reason`, `ev.message` (the ledger record). Once per message: its id is remembered like
    /// a webhook's, so it is raised once even if the failure is replayed.
    private func raiseExhausted(_ record: MessageRecord, reason: String) {
        let payload: LuaValue = .object([
            "message_id": .string(record.id), "attempts": .integer(Int64(record.attempt)),
            "reason": .string(reason), "message": record.luaValue,
        ])
        let event = EngineEvent(id: Self.exhaustedID(record.id), kind: .custom(name: "message.exhausted", payload: payload, fromRule: nil),
                                at: clock.now())
        guard store.data.inflight[event.id] == nil, intake.remember(event) else { return }
        do {
            try store.commit(.eventAccepted(event, dedupe: true, movesLedger: true))
        } catch {
            logger.error("journal write failed", metadata: ["error": "\(error)"])
            return
        }
        logger.warning("message retries exhausted", metadata: ["rule": "\(record.rule)", "message": "\(record.id)", "reason": "\(reason)"])
        inbox.append(event)
    }

    /// Notes a resend's result in its trace (found by position: no search of the trace store).
    private func noteOutcome(of result: [LuaValue], inTraceAt position: TraceStore.Position, what: String) {
        let sentID = result.first?["id"]?.stringValue
        let text = sentID.map { "\(what): sent as \($0)" } ?? "\(what) failed: \((result.dropFirst().first ?? .null).preview)"
        traces.update(position) { trace in
            if let sentID { trace.link(messageID: sentID) }
            trace.notes.append(text)
        }
    }
}
