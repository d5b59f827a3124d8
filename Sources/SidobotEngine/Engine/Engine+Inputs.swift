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
    public func acceptWebhook(_ webhook: WebhookEvent) throws(EngineError) -> WebhookAcceptance {
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
        do {
            // Accepting the event also moves the ledger (one journal record for both).
            try store.commit(.eventAccepted(event, dedupe: true))
        } catch {
            throw .journal(error)
        }
        enqueue(event)
        return .accepted(eventID: webhook.id)
    }

    /// Accepts several verified webhooks in one call, each exactly as ``acceptWebhook(_:)`` would, in
    /// order: one hop onto the engine for the whole batch instead of one per webhook. The results are
    /// in the same order; a journal failure fails only its own webhook (and the ones after it, which
    /// cannot be journaled either), so each caller answers its sender as for a single webhook.
    public func acceptWebhooks(_ webhooks: [WebhookEvent]) -> [Result<WebhookAcceptance, EngineError>] {
        webhooks.map { webhook in Result { () throws(EngineError) in try acceptWebhook(webhook) } }
    }

    /// Accepts `POST /hooks/{name}`: the body is decoded as JSON when it is JSON, else kept as text.
    /// Returns the event id.
    public func acceptHook(name: String, body: [UInt8], contentType: String) throws(EngineError) -> String {
        let decoded: LuaValue
        if let value = try? JSONCodec.decode(bytes: body) {
            decoded = value
        } else {
            decoded = .string(String(decoding: body, as: UTF8.self))
        }
        let event = EngineEvent(id: "h-\(UUID().uuidString.lowercased())", kind: .hook(name: name, body: decoded, contentType: contentType), at: clock.now())
        do {
            try store.commit(.eventAccepted(event, dedupe: false))
        } catch {
            throw .journal(error)
        }
        enqueue(event)
        return event.id
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
