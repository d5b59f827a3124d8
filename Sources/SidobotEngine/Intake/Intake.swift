import Foundation
import Logging
import LuaSandbox
import Sidobe
import Synchronization

/// Told by the ``Intake`` that it journaled events, from any thread.
protocol IntakeListener: AnyObject, Sendable {
    func intakeHasEvents()
}

/// What became of an inbound webhook.
public enum WebhookAcceptance: Sendable, Hashable {
    /// Journaled; rules will see it (a type Sidobot does not interpret as `sidobe.TYPE`). Answer 200.
    case accepted(eventID: String)
    /// Seen before (a redelivery): not processed again. Answer 200.
    case duplicate(eventID: String)
}

/// Takes inputs in: verified webhooks and hooks are deduplicated, journaled, acknowledged, and
/// handed to the engine, which runs the rules afterwards.
///
/// The acknowledgement path never waits for a Lua run: the intake is not the engine's executor
/// but a lock of its own (and ``Durability``'s, for the write), taken from whatever thread the
/// request arrived on. The engine learns of accepted events through ``takeAccepted()``, and
/// decides there what a status means for its ledger (which only it reads).
///
/// Group commit: inputs that arrive while a write is under way are admitted at once and written
/// together by the next one, one `write(2)` (and one fsync under `always`) for all of them. An
/// input is answered once the write that holds it returned; a duplicate, once everything admitted
/// before it is written (its first delivery among it). A failed write answers its inputs with
/// ``EngineError/journal(_:)`` (the sender delivers again); their records stay queued in
/// ``Durability`` for the next write, and their events still reach the engine.
public final class Intake: Sendable {
    typealias Completion = @Sendable (Result<Void, DurabilityError>) -> Void

    private struct State {
        var dedupe: DedupeSet
        /// Admitted and not yet handed to the journal, in admission order.
        var pending: [EngineEvent] = []
        var pendingRecords: [Mutation] = []
        /// The admission ticket of each pending record.
        var pendingTickets: [UInt64] = []
        /// Whether a flush is writing (its caller is the leader of the group commit).
        var flushing = false
        /// One ticket per admission call; `written` is the last whose write finished.
        var admitted: UInt64 = 0
        var written: UInt64 = 0
        var waiters: [(ticket: UInt64, completion: Completion)] = []
        /// Journaled, for the engine to take, in journal order.
        var accepted: [EngineEvent] = []
        /// A write failed and its records wait in ``Durability``'s queue for the next write.
        var unwrittenRecords = false
    }

    private let state: Mutex<State>
    private let durability: Durability
    private let clock: any EngineClock
    private let logger: Logger
    /// Where the group commit's writes (and the answers they release) run when they wait for the
    /// disk (an fsync under `always`) and the caller is an event loop, which must not stop reading
    /// for an fsync: a thread of the intake's own. When a write is one `write(2)`, the caller's
    /// event loop does it at the end of its turn (``submit(_:writeOn:completion:)``).
    private let writer = DispatchQueue(label: "sidobot.intake.writer")
    /// Who takes the events (the engine). Held weakly, as an object and not a closure: a closure
    /// kept in a `Mutex` is re-wrapped in a reabstraction thunk at every `withLock`, and calling it
    /// after a million acceptances would go through a million thunks.
    private let listener = Mutex(Listener())

    private struct Listener {
        weak var taker: (any IntakeListener)?
    }

    init(durability: Durability, clock: any EngineClock, dedupeRetention: Double, logger: Logger) {
        state = Mutex(State(dedupe: DedupeSet(retention: dedupeRetention)))
        self.durability = durability
        self.clock = clock
        self.logger = logger
    }

    /// Who is told when events were accepted (the engine, to come and take them).
    func notify(_ taker: any IntakeListener) { listener.withLock { $0.taker = taker } }

    // MARK: Inputs

    /// Accepts a verified webhook: deduplicates it by id, journals it (fsynced under `always`), and
    /// hands it to the engine. Returning acknowledges it; rules run after.
    public func acceptWebhook(_ webhook: WebhookEvent) async throws(EngineError) -> WebhookAcceptance {
        try await acceptWebhooks([webhook])[0]
    }

    /// Accepts several verified webhooks, each as ``acceptWebhook(_:)`` would, in order, in one write.
    public func acceptWebhooks(_ webhooks: [WebhookEvent]) async throws(EngineError) -> [WebhookAcceptance] {
        let result: Result<[WebhookAcceptance], EngineError> = await withCheckedContinuation { continuation in
            submit(webhooks, place: .here) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Schedules work at the end of the caller's current turn, on its own thread (an event loop's
    /// `execute`).
    public typealias TurnScheduler = @Sendable (@escaping @Sendable () -> Void) -> Void

    /// Accepts webhooks and calls `completion` once they are journaled, on no particular thread.
    /// Admission happens now, on the caller's thread. A write, if this call leads one, runs through
    /// `writeOn` (an event loop's `execute`: the webhooks the loop reads in one turn share one
    /// `write(2)`, on the thread that read them, with no thread to wake), or on the intake's writer
    /// thread when a write waits for an fsync.
    public func submit(_ webhooks: [WebhookEvent], writeOn: TurnScheduler? = nil,
                       completion: @escaping @Sendable (Result<[WebhookAcceptance], EngineError>) -> Void) {
        submit(webhooks, place: writeOn.map { .turn($0) } ?? .writer, completion: completion)
    }

    /// Where the leader of a group commit writes.
    private enum WritePlace {
        /// In the caller's task (it has one of its own).
        case here
        /// At the end of the caller's turn, on its thread (see ``Intake/TurnScheduler``).
        case turn(TurnScheduler)
        /// On the intake's writer thread.
        case writer
    }

    private func submit(_ webhooks: [WebhookEvent], place: WritePlace,
                        completion: @escaping @Sendable (Result<[WebhookAcceptance], EngineError>) -> Void) {
        let now = clock.now()
        let outcomes = admit(place: place, { state in webhooks.map { Self.admit($0, at: now, into: &state) } },
                             then: { outcomes, written in completion(written.map { outcomes }.mapError(EngineError.journal)) })
        // Logged outside the lock: a log line is a write(2).
        for outcome in outcomes {
            switch outcome {
            case .accepted: break
            case .duplicate(let id): logger.info("duplicate webhook acknowledged, not processed again", metadata: ["event": "\(id)"])
            }
        }
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
        let event = EngineEvent(id: "h-\(UUID().uuidString.lowercased())", kind: .hook(name: name, body: decoded, contentType: contentType),
                                at: clock.now())
        let result: Result<Void, DurabilityError> = await withCheckedContinuation { continuation in
            admit(place: .here, { state in
                state.pending.append(event)
                state.pendingRecords.append(.eventAccepted(event, dedupe: false, movesLedger: true))
                state.pendingTickets.append(state.admitted + 1)
            }, then: { _, written in continuation.resume(returning: written) })
        }
        try result.mapError(EngineError.journal).get()
        return event.id
    }

    private static func admit(_ webhook: WebhookEvent, at now: UnixTime, into state: inout State) -> WebhookAcceptance {
        guard !state.dedupe.contains(webhook.id) else { return .duplicate(eventID: webhook.id) }
        let kind: EngineEvent.Kind
        switch webhook.payload {
        case .messageStatus(let update):
            kind = .messageStatus(MessageStatusEvent(messageID: update.whatsappMessageID, status: update.status, messageType: update.messageType,
                                                     sendAt: update.sendAt, createdAt: webhook.createdAt))
        case .unknown(let type):
            // A type Sidobe added after this version: kept and dispatched as `sidobe.TYPE` with its
            // data as received (the parser checked it is JSON), so a rule can use it the day it comes.
            let data = webhook.rawData.flatMap { try? JSONCodec.decode(bytes: $0) } ?? .null
            kind = .sidobe(type: type, data: data, createdAt: webhook.createdAt)
        }
        let event = EngineEvent(id: webhook.id, kind: kind, at: now)
        // The ledger is the engine's: it records what the status did to it (a `message.status` record).
        let record = Mutation.eventAccepted(event, dedupe: true, movesLedger: false)
        state.dedupe.apply(record)
        state.pending.append(event)
        state.pendingRecords.append(record)
        state.pendingTickets.append(state.admitted + 1)
        return .accepted(eventID: webhook.id)
    }

    /// Admits under the lock, then waits for the write that covers the admission (leading it when
    /// no write is under way): `then` gets what `body` returned and how the write went.
    @discardableResult
    private func admit<Admitted: Sendable>(place: WritePlace, _ body: (inout State) -> Admitted,
                                          then: @escaping @Sendable (Admitted, Result<Void, DurabilityError>) -> Void) -> Admitted {
        let (admitted, lead): (Admitted, Bool?) = state.withLock { state in
            let admitted = body(&state)
            state.admitted += 1
            if state.pending.isEmpty && !state.flushing && !state.unwrittenRecords {
                state.written = state.admitted
                return (admitted, nil)
            }
            state.waiters.append((state.admitted, { then(admitted, $0) }))
            defer { state.flushing = true }
            return (admitted, !state.flushing)
        }
        switch (lead, place) {
        case (nil, _): then(admitted, .success(()))
        case (false?, _): break
        case (true?, .here): flush()
        case (true?, .turn(let schedule)) where !durability.writesWait: schedule { self.flush(onTurnsOf: schedule) }
        case (true?, _): writer.async { self.flush() }
        }
        return admitted
    }

    /// The group commit's leader: writes what is pending, answers the inputs it covered, and goes
    /// on until nothing is pending. On an event loop (`onTurnsOf`), one write a turn: the loop reads
    /// between them, and what it and the other loops admitted meanwhile goes in the next.
    private func flush(onTurnsOf schedule: TurnScheduler? = nil) {
        while true {
            let taken: (events: [EngineEvent], records: [Mutation], upTo: UInt64)?
            let idle: [Completion]
            let retry: Bool
            (taken, idle, retry) = state.withLock { state in
                guard !state.pending.isEmpty else {
                    // Done; left are admissions that added nothing (duplicates) after the last write.
                    state.flushing = false
                    state.written = state.admitted
                    return (nil, takeWaiters(&state), state.unwrittenRecords)
                }
                // At most one journal record's worth a round (a line of the journal stays bounded);
                // an admission split across rounds is answered after its last one.
                let count = min(state.pending.count, Durability.maxChangesPerRecord)
                guard count < state.pending.count else {
                    defer {
                        state.pending = []
                        state.pendingRecords = []
                        state.pendingTickets = []
                    }
                    return ((state.pending, state.pendingRecords, state.admitted), [], false)
                }
                let upTo = state.pendingTickets[count] - 1
                defer {
                    state.pending.removeFirst(count)
                    state.pendingRecords.removeFirst(count)
                    state.pendingTickets.removeFirst(count)
                }
                return ((Array(state.pending.prefix(count)), Array(state.pendingRecords.prefix(count)), upTo), [], false)
            }
            guard let taken else {
                // They wait only for a retry of records an earlier write failed to write.
                var result: Result<Void, DurabilityError> = .success(())
                if retry {
                    result = Result { () throws(DurabilityError) in try durability.flushQueued() }
                    if case .success = result { state.withLock { $0.unwrittenRecords = false } }
                }
                for waiter in idle { waiter(result) }
                return
            }
            let record = taken.records.count == 1 ? taken.records[0] : .batch(taken.records)
            let result = Result { () throws(DurabilityError) in try durability.write(record, keepOnFailure: true) }
            if case .failure(let error) = result {
                logger.error("journal write failed; the webhooks and hooks waiting for it are answered with an error and will be delivered again",
                             metadata: ["error": "\(error)", "events": "\(taken.events.count)"])
            }
            let waiters = state.withLock { state in
                state.written = taken.upTo
                state.accepted.append(contentsOf: taken.events)
                if case .failure = result { state.unwrittenRecords = true } else { state.unwrittenRecords = false }
                return takeWaiters(&state)
            }
            listener.withLock { $0.taker }?.intakeHasEvents()
            for waiter in waiters { waiter(result) }
            if let schedule {
                schedule { self.flush(onTurnsOf: schedule) }
                return
            }
        }
    }

    private func takeWaiters(_ state: inout State) -> [Completion] {
        // Waiters are in ticket order.
        let written = state.written
        let count = state.waiters.prefix { $0.ticket <= written }.count
        guard count > 0 else { return [] }
        defer { state.waiters.removeFirst(count) }
        return state.waiters.prefix(count).map(\.completion)
    }

    // MARK: The engine's side

    /// The events journaled since the last call, in journal order.
    func takeAccepted() -> [EngineEvent] {
        state.withLock { state in
            // Handed over whole: emptying it in place would copy the buffer the caller now shares.
            defer { state.accepted = [] }
            return state.accepted
        }
    }

    /// Whether events wait to be taken.
    var hasAccepted: Bool { state.withLock { !$0.accepted.isEmpty } }

    /// Whether an event with this id was accepted within the retention period.
    func hasSeen(_ id: String) -> Bool { state.withLock { $0.dedupe.contains(id) } }

    /// Remembers the id of an event the engine raises itself (`message.exhausted`), so it is raised
    /// once. Returns false if it was already remembered. The engine journals the event.
    func remember(_ event: EngineEvent) -> Bool {
        state.withLock { state in
            guard !state.dedupe.contains(event.id) else { return false }
            state.dedupe.apply(.eventAccepted(event, dedupe: true, movesLedger: true))
            return true
        }
    }

    /// Takes over the ids recovered at start-up.
    func restore(_ dedupe: DedupeSet) { state.withLock { $0.dedupe = dedupe } }

    /// Forgets ids past their retention (costs what expired).
    func prune(now: UnixTime) { state.withLock { $0.dedupe.prune(now: now.secondsValue) } }

    /// A copy of the remembered ids for a snapshot (O(1): a persistent map).
    func dedupeForSnapshot() -> DedupeSet { state.withLock { $0.dedupe.snapshotCopy } }

    /// How many ids are remembered.
    var rememberedCount: Int { state.withLock { $0.dedupe.count } }
}
