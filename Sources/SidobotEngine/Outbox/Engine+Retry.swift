import Foundation
import Logging
import LuaSandbox
import Sidobe

/// The declarative retry policy (`retry = {...}` on a send): the engine resends failed messages by
/// itself, durably, then escalates or raises `message.exhausted`.
extension Engine {
    /// The reserved timer name of the engine's own resend timers.
    static let retryTimerName = "__retry"

    /// Called when a message's status moved to FAILED: schedules its resend, or, when its resends
    /// are used up, escalates or raises `message.exhausted`. Journaled like everything else, so a
    /// restart in between loses nothing.
    func planRetry(afterFailureOf messageID: String) {
        guard let record = store.data.ledger[messageID], let plan = record.retry, record.status == "FAILED" else { return }
        // Once per failure: not if a resend timer is pending, a resend was sent, or it was given up on.
        guard store.data.retryTimers[messageID] == nil, store.data.ledger.resend(of: messageID) == nil,
              !store.data.dedupe.contains("x-\(messageID)"), store.data.inflight["x-\(messageID)"] == nil else { return }
        let resendsSoFar = record.attempt - 1
        if resendsSoFar < plan.max {
            var delay = plan.delayMilliseconds(forResend: resendsSoFar + 1)
            if plan.jitter { delay = Int64(Double(delay) * (0.5 + 0.5 * configuration.random())) }
            let now = clock.now()
            // The payload is one string: it always has a JSON form.
            guard let timer = try? TimerRecord(id: TimerID(store.data.timers.nextID), rule: record.rule, name: Self.retryTimerName,
                                               payload: .object(["message_id": .string(messageID)]), due: now + .milliseconds(delay),
                                               createdAt: now, late: TimerLatePolicy(mode: .fire)) else { return }
            do {
                try store.commit(.timerAdded(timer))
            } catch {
                logJournalFailure(error)
                return
            }
            logger.info("failed message will be resent by its retry policy", metadata: [
                "rule": "\(record.rule)", "message": "\(messageID)", "resend": "\(resendsSoFar + 1)/\(plan.max)",
                "in": "\(DurationText.format(milliseconds: delay))",
            ])
            timersChanged()
        } else if let escalateTo = plan.escalateTo {
            startInternalWork { engine in
                await engine.escalate(record, to: escalateTo)
            }
        } else {
            raiseExhausted(record, reason: "failed \(record.attempt) times")
        }
    }

    /// Runs one of the engine's own asynchronous jobs (a resend), counted like a handler run so
    /// `settle()`/shutdown wait for it.
    func startInternalWork(eventID: String? = nil, _ work: @escaping @Sendable (isolated Engine) async -> Void) {
        let tag = allocateRunTag()
        runs[tag] = RunContext(rule: "", eventID: "")
        Task.immediate {
            await work(self)
            self.runs[tag] = nil
            if let eventID { self.finishEvent(eventID) }
            self.checkIdle()
        }
    }

    /// The resend timer fired: send the same content again (with the same policy), unless the
    /// message succeeded meanwhile.
    func performRetry(_ event: EngineEvent, timer: TimerRecord) {
        var trace = Trace(event: event, eventName: "retry")
        guard case .string(let messageID)? = timer.payload["message_id"], let record = store.data.ledger[messageID], let plan = record.retry else {
            trace.notes.append("the message to resend is no longer in the ledger")
            traces.begin(trace, messageID: nil)
            finishEvent(event.id)
            return
        }
        guard record.status == "FAILED" else {
            trace.notes.append("not resent: the message is now \(record.status)")
            traces.begin(trace, messageID: messageID)
            finishEvent(event.id)
            return
        }
        trace.notes.append("resend \(record.attempt)/\(plan.max) of \(messageID) by its retry policy")
        let position = traces.begin(trace, messageID: messageID)
        startInternalWork(eventID: event.id) { engine in
            let result = await engine.send(engine.resendMessage(of: record), rule: record.rule, key: nil, attempt: record.attempt + 1,
                                           resendOf: record.id, retry: plan, tag: 0)
            engine.noteOutcome(of: result, inTraceAt: position, what: "resend of \(messageID)")
            if result.first?.isNull ?? true {
                // The resend itself could not be made: count it as a failed attempt.
                engine.raiseExhausted(record, reason: "the resend could not be sent: \(Self.preview(result.dropFirst().first ?? .null))")
            }
        }
    }

    func escalate(_ record: MessageRecord, to phone: String) async {
        var message = resendMessage(of: record)
        message.phone = phone
        let result = await send(message, rule: record.rule, key: nil, attempt: record.attempt + 1, resendOf: record.id, retry: nil, tag: 0)
        logger.info("retries used up; escalated", metadata: ["rule": "\(record.rule)", "message": "\(record.id)"])
        if result.first?.isNull ?? true {
            raiseExhausted(record, reason: "escalation to \(phone) could not be sent: \(Self.preview(result.dropFirst().first ?? .null))")
        }
    }

    func resendMessage(of record: MessageRecord) -> OutgoingMessage {
        let content: OutgoingMessage.Content
        switch record.messageType {
        case "IMAGE": content = .image(url: record.imageURL ?? "", caption: record.message)
        case "DOCS": content = .document(url: record.documentURL ?? "", name: record.documentName ?? "", caption: record.message)
        default: content = .text(record.message ?? "")
        }
        return OutgoingMessage(phone: record.phone, content: content, isAsync: record.isAsync)
    }

    /// Raises `message.exhausted` for every rule that listens: `ev.message_id`, `ev.attempts`,
    /// `ev.reason`, `ev.message` (the ledger record).
    func raiseExhausted(_ record: MessageRecord, reason: String) {
        let payload: LuaValue = .object([
            "message_id": .string(record.id), "attempts": .integer(Int64(record.attempt)),
            "reason": .string(reason), "message": record.luaValue,
        ])
        let event = EngineEvent(id: "x-\(record.id)", kind: .custom(name: "message.exhausted", payload: payload, fromRule: nil), at: clock.now())
        guard !store.data.dedupe.contains(event.id), store.data.inflight[event.id] == nil else { return }
        do {
            // Remembered like a webhook id, so it is raised once even if the failure is replayed.
            try store.commit(.eventAccepted(event, dedupe: true))
        } catch {
            logJournalFailure(error)
            return
        }
        logger.warning("message retries exhausted", metadata: ["rule": "\(record.rule)", "message": "\(record.id)", "reason": "\(reason)"])
        enqueue(event)
    }

    /// Notes a resend's result in its trace (found by position: no search of the trace store).
    func noteOutcome(of result: [LuaValue], inTraceAt position: TraceStore.Position, what: String) {
        let sentID = result.first?["id"]?.stringValue
        let text = sentID.map { "\(what): sent as \($0)" } ?? "\(what) failed: \(Self.preview(result.dropFirst().first ?? .null))"
        traces.update(position) { trace in
            if let sentID { trace.link(messageID: sentID) }
            trace.notes.append(text)
        }
    }
}
