import Foundation
import Logging
import LuaSandbox
import Sidobe
import Synchronization

/// The Sidobot engine: rules, events, timers and schedules, the store and its durability, sends.
///
/// It composes components that each own their state (docs/ARCHITECTURE.md): the ``Intake`` takes
/// webhooks and hooks in and acknowledges them on its own lock, never on this actor; the rest
/// runs on this actor, which owns every rule's Lua state: the ``RuleSet``, the ``Dispatcher``
/// with its ``RunTable``, the ``Scheduler``, the ``Outbox`` and the sends, the ``Store`` with its
/// ``Durability``. The engine's own code is the flow between them: an event taken in goes through
/// the ledger and the outbox's checks to the dispatcher; a run that suspends is continued here.
///
/// Handler runs are coroutines: a `sidobe.*` call suspends its run while the request is out, and
/// other events keep flowing. Inputs are journaled before they are acknowledged, and every event
/// is marked done only when all its handler runs finished, so nothing acknowledged is lost.
public actor Engine: IntakeListener {
    /// Where the engine is in its life; each step once, in order.
    private enum Lifecycle {
        case created, starting, running, stopping, stopped
    }

    let configuration: EngineConfiguration
    let clock: any EngineClock
    let logger: Logger
    /// Takes webhooks and hooks in, without this actor.
    public nonisolated let intake: Intake
    let durability: Durability
    let store: Store
    let runs: RunTable
    let traces: TraceStore
    let inbox: EventInbox
    let alarm: Alarm
    let services: RunServices
    let outbox: Outbox
    let sender: MessageSender
    let retries: Retries
    let rules: RuleSet
    let scheduler: Scheduler
    let dispatcher: Dispatcher
    /// When runs paused at the end of their slice continue.
    let slices: SliceTurns
    let metrics = EngineMetrics()
    /// Runs this actor's jobs and counts those waiting (``EngineExecutor``).
    private nonisolated let executor: EngineExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private var lifecycle = Lifecycle.created
    private var maintenanceTask: Task<Void, Never>?
    private var watcherTask: Task<Void, Never>?
    /// Set by the intake when it has events for the engine, cleared when they are taken: one
    /// hop onto the engine for everything accepted meanwhile.
    private nonisolated let intakeSignalled = Atomic<Bool>(false)
    var snapshot = SnapshotState()
    /// `--memory-budget`, watched once a second by the maintenance tick.
    var memoryBudget: MemoryBudget?

    /// Creates an engine. Nothing is read or loaded until ``start()``.
    public init(configuration: EngineConfiguration, sidobe: any SidobeAPI, clock: any EngineClock = SystemClock(),
                logger: Logger = Logger(label: "sidobot.engine")) {
        let durability = Durability()
        let store = Store(deadLetterCapacity: configuration.deadLetterCapacity, durability: durability)
        let runs = RunTable(store: store, logger: logger)
        let traces = TraceStore(retention: configuration.traceRetention, budgetBytes: configuration.traceBudgetBytes)
        memoryBudget = configuration.memoryBudget.map(MemoryBudget.init(budget:))
        metrics.memoryBudget.record(configuration.memoryBudget ?? 0)
        let inbox = EventInbox()
        let executor = EngineExecutor()
        let slices = SliceTurns(waiting: executor.waiting)
        let alarm = Alarm(clock: clock)
        let intake = Intake(durability: durability, clock: clock, dedupeRetention: configuration.dedupeRetention, logger: logger)
        let services = RunServices(clock: clock, store: store, runs: runs, traces: traces, inbox: inbox, alarm: alarm, logger: logger)
        let outbox = Outbox(client: sidobe, clock: clock, configuration: configuration, logger: logger)
        let sender = MessageSender(outbox: outbox, store: store, services: services, inbox: inbox, clock: clock,
                                   dryRun: configuration.dryRun, logger: logger)
        let relay = SendRelay()
        let api = LuaAPI(host: services, sends: relay, client: sidobe, runs: runs)
        let rules = RuleSet(folder: configuration.rulesFolder,
                            loader: RuleLoader(limits: configuration.limits, waitingWork: executor.waiting, clock: clock, runs: runs, api: api), logger: logger)
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.intake = intake
        self.durability = durability
        self.store = store
        self.runs = runs
        self.traces = traces
        self.inbox = inbox
        self.slices = slices
        self.executor = executor
        self.alarm = alarm
        self.services = services
        self.outbox = outbox
        self.sender = sender
        self.rules = rules
        retries = Retries(store: store, intake: intake, sender: sender, services: services, traces: traces, inbox: inbox,
                          clock: clock, random: configuration.random, logger: logger)
        scheduler = Scheduler(timers: store, grace: configuration.timerGrace, logger: logger)
        dispatcher = Dispatcher(rules: rules, runs: runs, traces: traces, store: store, services: services, clock: clock,
                                limits: configuration.limits, quarantineAfter: configuration.quarantineAfter, logger: logger)
        relay.attach(self)
        inbox.attach(self)
        slices.attach(self)
        intake.notify(self)
    }

    var isVirtualTime: Bool { clock is VirtualClock }

    // MARK: Lifecycle

    /// Recovers the store from the data folder, loads every rule, catches up schedules, re-dispatches
    /// events a crash interrupted, fires `engine.start`, and (on the real clock) starts the scheduler.
    /// - Throws: ``EngineError`` naming the file (and line) at fault.
    public func start() async throws(EngineError) {
        precondition(lifecycle == .created, "an engine starts once")
        lifecycle = .starting
        try recover()
        // Before anything is dispatched again: a run that makes an interrupted send again finds it in doubt.
        sender.recordInterruptedSends()
        try await rules.loadAll()
        // Every file loaded (or the start failed): the reload gauges start at "all well".
        metrics.lastReloadSuccessful.record(1)
        metrics.rulesFailingToLoad.record(0)
        dispatcher.rulesChanged()
        lifecycle = .running
        let now = clock.now()
        for rule in rules.sorted { registerSchedules(of: rule, now: now) }
        let interrupted = store.data.inflightInOrder
        if !interrupted.isEmpty {
            logger.info("re-dispatching events interrupted by the last stop", metadata: ["events": "\(interrupted.count)"])
        }
        for inflight in interrupted {
            let note = inflight.doneRules.isEmpty ? "dispatched again after a restart"
                : "dispatched again after a restart, except to \(inflight.doneRules.sorted().joined(separator: ", ")) (done with it before the stop)"
            deliver(inflight.event, note: note, exceptRules: inflight.doneRules)
        }
        deliver(EngineEvent(id: "engine.start@\(now.milliseconds)", kind: .engineStart, at: now), journaled: false)
        logger.info("engine started", metadata: ["rules": "\(rules.rules.count)", "timers": "\(store.data.timers.count)"])
        if !isVirtualTime { startBackgroundTasks() }
    }

    /// Reads the data folder into the store and the intake, and opens the journal.
    private func recover() throws(EngineError) {
        guard let folder = configuration.dataFolder else { return }
        var recovery = Recovery(data: StoreData(deadLetterCapacity: configuration.deadLetterCapacity),
                                dedupe: DedupeSet(retention: configuration.dedupeRetention))
        var report = Recovery.Report()
        do {
            let (policy, fsyncTimer, logger) = (configuration.fsync, metrics.journalFsync, logger)
            try durability.open({ () throws(DurabilityError) in
                try FileJournal(folder: folder, policy: policy, fsyncTimer: fsyncTimer, logger: logger)
            }, recover: { (journal) throws(DurabilityError) in
                report = try recovery.recover(from: journal)
                return report.lastSequence
            })
            store.restore(recovery.data)
            intake.restore(recovery.dedupe)
            if report.replayedRecords > 0 || report.snapshotSequence != nil {
                logger.info("restored state from the data folder", metadata: [
                    "snapshot_sequence": "\(report.snapshotSequence.map(String.init) ?? "none")",
                    "journal_records": "\(report.replayedRecords)",
                ])
            }
            if let torn = report.tornTail {
                logger.warning("the journal ended with a partly written record (the machine stopped mid-write); it was set aside in journal.jsonl.torn",
                               metadata: ["bytes": "\(torn)"])
            }
        } catch {
            throw .data(error)
        }
    }

    private func startBackgroundTasks() {
        alarm.arm(for: self, next: scheduler.nextDue())
        maintenanceTask = Task { await self.maintenanceLoop() }
        if configuration.reloadPollInterval > 0 {
            watcherTask = Task { await self.watchRules() }
        }
    }

    /// Stops the scheduler, waits for in-flight handler runs (up to `deadline` seconds), writes the
    /// final snapshot and closes the journal.
    public func shutdown(deadline: Double = 10) async throws(EngineError) {
        lifecycle = .stopping
        alarm.disarm()
        maintenanceTask?.cancel()
        watcherTask?.cancel()
        let waited = await waitUntilIdle(timeout: deadline)
        if !waited {
            logger.warning("handler runs still going at shutdown; their events will be dispatched again at the next start",
                           metadata: ["runs": "\(runs.count)"])
        }
        await snapshotFinished()
        do {
            try snapshotNow()
            try store.flushQueued()
            try durability.close()
        } catch {
            throw .data(error)
        }
        rules.closeAll()
        lifecycle = .stopped
        logger.info("engine stopped")
    }

    /// Whether the engine is stopping (background loops end).
    var isStopping: Bool { lifecycle == .stopping || lifecycle == .stopped }

    /// Suspends until no handler run is going (or `timeout` seconds of real time passed). Returns
    /// whether the engine became idle.
    @discardableResult
    public func waitUntilIdle(timeout: Double? = nil) async -> Bool {
        if runs.isIdle { return true }
        guard let timeout else {
            await withCheckedContinuation { runs.whenIdle($0) }
            return true
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(Int64(timeout * 1000)))
            await self?.stopWaitingForIdle()
        }
        await withCheckedContinuation { runs.whenIdle($0) }
        timer.cancel()
        return runs.isIdle
    }

    private func stopWaitingForIdle() { runs.releaseIdleWaiters() }

    /// One paused run takes its next slice (``SliceTurns``).
    func takeSliceTurn() { slices.takeTurn() }

    // MARK: Inputs, through the intake

    /// Accepts a verified webhook (see ``Intake/acceptWebhook(_:)``): returning acknowledges it.
    public nonisolated func acceptWebhook(_ webhook: WebhookEvent) async throws(EngineError) -> WebhookAcceptance {
        try await intake.acceptWebhook(webhook)
    }

    /// Accepts several verified webhooks in one write (see ``Intake/acceptWebhooks(_:)``).
    public nonisolated func acceptWebhooks(_ webhooks: [WebhookEvent]) async throws(EngineError) -> [WebhookAcceptance] {
        try await intake.acceptWebhooks(webhooks)
    }

    /// Accepts `POST /hooks/{name}` (see ``Intake/acceptHook(name:body:contentType:)``).
    public nonisolated func acceptHook(name: String, body: [UInt8], contentType: String) async throws(EngineError) -> String {
        try await intake.acceptHook(name: name, body: body, contentType: contentType)
    }

    /// The intake journaled events: come and take them (once for everything accepted meanwhile).
    nonisolated func intakeHasEvents() {
        guard !intakeSignalled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // Started on the engine's own thread, not on the pool to hop there (EngineExecutor).
        Task(executorPreference: executor) { await self.drainInbox() }
    }

    /// Takes what the intake journaled into the store and the inbox, in journal order.
    func takeFromIntake() {
        intakeSignalled.store(false, ordering: .releasing)
        for event in intake.takeAccepted() {
            store.take(event)
            inbox.append(event)
        }
    }

    /// Tells the engine that Sidobe answered 429 (from any executor). Connect it to the client with
    /// ``RateLimitFeedback``, so sends slow down at the first 429 the client sees, not only when a
    /// send's retries ran out.
    public nonisolated func sidobeRateLimited(retryAfter: Duration?) {
        // On the engine's own thread at once, not through the pool: the sends already on their
        // way are the ones a late reaction lets through to another 429.
        Task(executorPreference: executor) { await self.throttleSends(retryAfter: retryAfter) }
    }

    private func throttleSends(retryAfter: Duration?) { outbox.throttle(retryAfter: retryAfter) }
}

/// A failure to start or run the engine, naming the file at fault.
public enum EngineError: Error, Sendable, CustomStringConvertible {
    /// The data folder holds something unreadable or corrupt.
    case data(DurabilityError)
    /// Rules failed to load.
    case rules([RuleLoadError])
    /// A journal write failed: the change was not acknowledged.
    case journal(DurabilityError)

    public var description: String {
        switch self {
        case .data(let error): "data folder: \(error)"
        case .rules(let errors): errors.map(\.description).joined(separator: "\n")
        case .journal(let error): "journal write failed: \(error)"
        }
    }
}

/// Carries `sidobe.send*` and `sidobe.resend` calls from rules' states to the engine. The Lua API
/// is made before the engine it calls, so the link is made once the engine exists.
final class SendRelay: SendHost {
    private struct Link {
        weak var engine: Engine?
    }

    private let link = Mutex(Link())

    func attach(_ engine: Engine) { link.withLock { $0.engine = engine } }

    private var engine: Engine? { link.withLock { $0.engine } }

    func send(_ message: OutgoingMessage, rule: String, key: String?, retry: RetryPlan?, run: RunTable.Tag) async -> [LuaValue] {
        guard let engine else { return [.null, SidobeModule.errorValue(code: "UNAVAILABLE", message: "the engine is stopping")] }
        return await engine.send(message, rule: rule, key: key, retry: retry, run: run)
    }

    func resend(_ id: String, phone: String?, isAsync: Bool?, rule: String, run: RunTable.Tag) async -> [LuaValue] {
        guard let engine else { return [.null, SidobeModule.errorValue(code: "UNAVAILABLE", message: "the engine is stopping")] }
        return await engine.resend(id, phone: phone, isAsync: isAsync, rule: rule, run: run)
    }
}
