import Foundation
import Logging
import LuaSandbox
import Sidobe

/// What became of an inbound webhook.
public enum WebhookAcceptance: Sendable, Hashable {
    /// Journaled; rules will see it. Answer 200.
    case accepted(eventID: String)
    /// Seen before (a redelivery): not processed again. Answer 200.
    case duplicate(eventID: String)
    /// An event type Sidobot does not handle: acknowledged and ignored. Answer 200.
    case ignored(eventID: String, type: String)
}

extension Engine {
    /// Accepts a verified webhook: deduplicates it by id, journals it (fsynced under `always`), and
    /// queues it for the rules. Return only after this succeeded acknowledges the webhook; rules run
    /// after it returns.
    ///
    /// Webhooks arriving together share one journal write (group commit): each is applied and
    /// queued, and the caller waits until the queue is written. A duplicate, too, is answered only
    /// once its first delivery is written.
    public func acceptWebhook(_ webhook: WebhookEvent) async throws(EngineError) -> WebhookAcceptance {
        let acceptance = admitWebhook(webhook)
        try await journalBarrier()
        return acceptance
    }

    /// Accepts several verified webhooks in one call, each as ``acceptWebhook(_:)`` would, in order,
    /// with one hop onto the engine and one journal write for the batch.
    public func acceptWebhooks(_ webhooks: [WebhookEvent]) async throws(EngineError) -> [WebhookAcceptance] {
        let acceptances = webhooks.map(admitWebhook)
        try await journalBarrier()
        return acceptances
    }

    /// Deduplicates, applies and queues one webhook (its record is written by the next journal write).
    func admitWebhook(_ webhook: WebhookEvent) -> WebhookAcceptance {
        guard case .messageStatus(let update) = webhook.payload else {
            logger.info("webhook of an unknown type ignored", metadata: ["event": "\(webhook.id)", "type": "\(webhook.type)"])
            return .ignored(eventID: webhook.id, type: webhook.type)
        }
        if store.data.dedupe.contains(webhook.id) || store.data.inflight[webhook.id] != nil {
            logger.info("duplicate webhook acknowledged, not processed again", metadata: ["event": "\(webhook.id)"])
            return .duplicate(eventID: webhook.id)
        }
        let now = clock.now()
        let status = update.status.rawValue
        var stale = false
        if let record = store.data.ledger[update.whatsappMessageID] {
            stale = !MessageLedger.canMove(from: record.status, to: status)
        }
        let event = EngineEvent(id: webhook.id, kind: .messageStatus(MessageStatusEvent(
            messageID: update.whatsappMessageID, status: status, messageType: update.messageType.rawValue,
            sendAt: update.sendAt, createdAt: webhook.createdAt, stale: stale)), at: now)
        // Accepting the event also moves the ledger (one journal record for both).
        store.applyQueued(.eventAccepted(event, dedupe: true))
        enqueue(event)
        return .accepted(eventID: webhook.id)
    }

    /// Accepts `POST /hooks/{name}`: the body is decoded as JSON when it is JSON, else kept as text.
    /// Returns the event id once the event is journaled.
    public func acceptHook(name: String, body: [UInt8], contentType: String) async throws(EngineError) -> String {
        let decoded: LuaValue
        if let value = try? JSONCodec.decode(bytes: body) {
            decoded = value
        } else {
            decoded = .string(String(decoding: body, as: UTF8.self))
        }
        let event = EngineEvent(id: "h-\(UUID().uuidString.lowercased())", kind: .hook(name: name, body: decoded, contentType: contentType), at: clock.now())
        store.applyQueued(.eventAccepted(event, dedupe: false))
        enqueue(event)
        try await journalBarrier()
        return event.id
    }

    /// Waits until every change applied so far is journaled (fsynced under `always`): the group
    /// commit. The first caller schedules one flush; everyone who arrives before it runs shares it.
    /// If the write fails, every waiter fails (answer 500: the sender delivers again), and the
    /// records stay queued for the next write.
    func journalBarrier() async throws(EngineError) {
        guard store.hasUnwritten else { return }
        let result: Result<Void, DurabilityError> = await withCheckedContinuation { continuation in
            barrierWaiters.append(continuation)
            if !flushScheduled {
                flushScheduled = true
                Task { self.flushForBarrier() }
            }
        }
        if case .failure(let error) = result { throw .journal(error) }
    }

    func flushForBarrier() {
        flushScheduled = false
        let waiters = barrierWaiters
        barrierWaiters.removeAll()
        let result: Result<Void, DurabilityError>
        do {
            try store.flushUnwritten()
            result = .success(())
        } catch {
            logger.error("journal write failed; the webhooks and hooks waiting for it are answered with an error and will be delivered again",
                         metadata: ["error": "\(error)", "waiting": "\(waiters.count)"])
            result = .failure(error)
        }
        for waiter in waiters { waiter.resume(returning: result) }
    }

    /// Queues an accepted event; a task dispatches the queue in order once the caller has answered.
    func enqueue(_ event: EngineEvent) {
        inbox.append(event)
        guard !inboxScheduled else { return }
        inboxScheduled = true
        Task { await self.drainInbox() }
    }

    func drainInbox() async {
        while !inbox.isEmpty {
            let batch = inbox
            inbox.removeAll()
            for event in batch { dispatch(event) }
        }
        inboxScheduled = false
    }

    /// Dispatches an accepted event now and waits until every run it started (and every event they
    /// emitted) finished. For tests and `sidobot test`.
    public func settle() async {
        await drainInbox()
        await waitUntilIdle()
        while !inbox.isEmpty {
            await drainInbox()
            await waitUntilIdle()
        }
    }

    /// Replays a dead letter: its event goes again to the rule that failed on it, and the letter is removed.
    public func replayDeadLetter(id: String) throws(EngineError) -> Bool {
        guard let letter = store.data.deadLetters[id] else { return false }
        do {
            try store.commit(.deadLetterRemoved(id: id))
        } catch {
            throw .journal(error)
        }
        var event = letter.event
        event.id = "\(letter.event.id)/replay-\(clock.now().milliseconds)"
        do {
            try store.commit(.eventAccepted(event, dedupe: false))
        } catch {
            throw .journal(error)
        }
        dispatch(event, note: "replay of dead letter \(id)", onlyRule: letter.rule)
        return true
    }
}

extension Engine {
    /// The dispatcher alone, for `sidobot-bench dispatch`: each webhook becomes an event and is
    /// routed, traced and run as if accepted, without what acceptance adds (deduplication, the
    /// inflight set, the journal, completion marks). Not for use outside benchmarks.
    @_spi(Benchmarks) public func dispatchWithoutAcceptance(_ webhooks: [WebhookEvent]) async {
        let now = clock.now()
        for webhook in webhooks {
            guard case .messageStatus(let update) = webhook.payload else { continue }
            let event = EngineEvent(id: webhook.id, kind: .messageStatus(MessageStatusEvent(
                messageID: update.whatsappMessageID, status: update.status.rawValue, messageType: update.messageType.rawValue,
                sendAt: update.sendAt, createdAt: webhook.createdAt)), at: now)
            dispatch(event, journaled: false)
        }
        await waitUntilIdle()
    }
}
