import Foundation
import Logging
import LuaSandbox
import Sidobe

/// The Sidobot engine: rules, events, timers and schedules, the store and its durability, sends.
///
/// Everything runs on this actor: each rule's Lua state, the store, the scheduler. Handler runs are
/// coroutines: a `sidobe.*` call suspends its run while the request is in flight, and other events
/// keep flowing. Inputs (webhooks, hooks) are journaled before they are acknowledged, and every
/// event is marked done only when all its handler runs finished, so nothing acknowledged is lost.
public actor Engine {
    let configuration: EngineConfiguration
    let clock: any EngineClock
    let sidobe: any SidobeAPI
    let logger: Logger
    let store: EngineStore

    var rules: [String: LoadedRule] = [:] {
        didSet {
            routeCache.removeAll()
            statusRouteCache.removeAll()
        }
    }
    /// Event name → the rules and handlers that listen, in order; see ``listeners(for:)``.
    var routeCache: [String: [RouteEntry]] = [:]
    /// The same for message statuses (with `message.status`); see ``listeners(forStatus:)``.
    var statusRouteCache: [String: [RouteEntry]] = [:]
    /// What each rule registers while its file loads (present only during the load).
    var registering: [String: RuleRegistration] = [:]
    /// Accepted inputs waiting to be dispatched, in arrival order (dispatch happens after the acknowledgement).
    var inbox: [EngineEvent] = []
    var inboxScheduled = false
    /// When the real-clock scheduler is sleeping until.
    var schedulerTarget: UnixTime?
    /// Run tag → what the run is doing; host functions find their run by the tag LuaSandbox gives them.
    var runs: [Int: RunContext] = [:]
    var nextRunTag = 1
    var traces: TraceStore
    var deadLetterCounter = 0
    var bucket: TokenBucket
    var pacing: RecipientPacing
    /// Sends whose request is out, and status events held for them.
    var sendsInFlight = SendsInFlight()
    var waitingSends = 0 {
        didSet { metrics.outboxDepth.record(waitingSends) }
    }
    var metrics = EngineMetrics()

    var idleWaiters: [CheckedContinuation<Void, Never>] = []
    /// Acknowledgements waiting for the journal write that covers them (``journalBarrier()``).
    var barrierWaiters: [CheckedContinuation<Result<Void, DurabilityError>, Never>] = []
    var flushScheduled = false
    /// Waiting for a snapshot under way to end (shutdown writes its own after it).
    var snapshotWaiters: [CheckedContinuation<Void, Never>] = []
    var started = false
    var stopping = false
    var schedulerTask: Task<Void, Never>?
    var maintenanceTask: Task<Void, Never>?
    var watcherTask: Task<Void, Never>?
    /// The rules folder as last loaded (file → modification time and size), for the watcher.
    var rulesFingerprint: [String: String] = [:]
    var lastSnapshot: UnixTime

    /// Creates an engine. Nothing is read or loaded until ``start()``.
    public init(configuration: EngineConfiguration, sidobe: any SidobeAPI, clock: any EngineClock = SystemClock(),
                logger: Logger = Logger(label: "sidobot.engine")) {
        self.configuration = configuration
        self.clock = clock
        self.sidobe = sidobe
        self.logger = logger
        store = EngineStore(dataFolder: configuration.dataFolder, fsync: configuration.fsync,
                            dedupeRetention: configuration.dedupeRetention, deadLetterCapacity: configuration.deadLetterCapacity)
        traces = TraceStore(retention: configuration.traceRetention, budgetBytes: configuration.traceBudgetBytes)
        let now = clock.now()
        bucket = TokenBucket(rate: configuration.sendRate, burst: configuration.sendBurst, now: now.secondsValue)
        pacing = RecipientPacing(minimumGap: configuration.recipientGap)
        lastSnapshot = now
    }

    var isVirtualTime: Bool { clock is VirtualClock }

    // MARK: Lifecycle

    /// Recovers the store from the data folder, loads every rule, catches up schedules, re-dispatches
    /// events a crash interrupted, fires `engine.start`, and (on the real clock) starts the scheduler.
    /// - Throws: ``EngineError`` naming the file (and line) at fault.
    public func start() async throws(EngineError) {
        precondition(!started, "an engine starts once")
        let report: EngineStore.RecoveryReport
        do {
            report = try store.recover()
        } catch {
            throw .data(error)
        }
        if report.replayedRecords > 0 || report.snapshotSequence != nil {
            logger.info("restored state from the data folder", metadata: [
                "snapshot_sequence": "\(report.snapshotSequence.map(String.init) ?? "none")",
                "journal_records": "\(report.replayedRecords)",
            ])
        }
        if let torn = report.tornTail {
            logger.warning("the journal ended with a partly written record (the machine stopped mid-write); it was set aside in journal.jsonl.torn", metadata: ["bytes": "\(torn)"])
        }
        let files: [(name: String, path: String)]
        rulesFingerprint = rulesFolderFingerprint()
        do {
            files = try RuleFiles.list(in: configuration.rulesFolder)
        } catch {
            throw .rules([error])
        }
        var failures: [RuleLoadError] = []
        for file in files {
            do {
                let rule = try await loadRule(name: file.name, path: file.path)
                rules[rule.name] = rule
            } catch {
                failures.append(error)
            }
        }
        if !failures.isEmpty { throw .rules(failures) }
        started = true
        let now = clock.now()
        for rule in rules.values { catchUpSchedules(of: rule, now: now) }
        let interrupted = store.data.inflightInOrder
        if !interrupted.isEmpty {
            logger.info("re-dispatching events interrupted by the last stop", metadata: ["events": "\(interrupted.count)"])
        }
        for inflight in interrupted {
            let note = inflight.doneRules.isEmpty ? "dispatched again after a restart"
                : "dispatched again after a restart, except to \(inflight.doneRules.sorted().joined(separator: ", ")) (done with it before the stop)"
            dispatch(inflight.event, note: note, exceptRules: inflight.doneRules)
        }
        dispatch(EngineEvent(id: "engine.start@\(now.milliseconds)", kind: .engineStart, at: now), journaled: false)
        logger.info("engine started", metadata: ["rules": "\(rules.count)", "timers": "\(store.data.timers.count)"])
        if !isVirtualTime { startBackgroundTasks() }
    }

    /// Stops the scheduler, waits for in-flight handler runs (up to `deadline` seconds), writes the
    /// final snapshot and closes the journal.
    public func shutdown(deadline: Double = 10) async throws(EngineError) {
        stopping = true
        schedulerTask?.cancel()
        maintenanceTask?.cancel()
        watcherTask?.cancel()
        let waited = await waitUntilIdle(timeout: deadline)
        if !waited {
            logger.warning("handler runs still going at shutdown; their events will be dispatched again at the next start",
                           metadata: ["runs": "\(runs.count)"])
        }
        if store.snapshotInProgress {
            await withCheckedContinuation { snapshotWaiters.append($0) }
        }
        do {
            try store.snapshotNow(at: clock.now())
            try store.close()
        } catch {
            throw .data(error)
        }
        for rule in rules.values { rule.state.close() }
        logger.info("engine stopped")
    }

    /// Suspends until no handler run is going (or `timeout` seconds of real time passed). Returns
    /// whether the engine became idle.
    @discardableResult
    public func waitUntilIdle(timeout: Double? = nil) async -> Bool {
        if runs.isEmpty { return true }
        guard let timeout else {
            await withCheckedContinuation { idleWaiters.append($0) }
            return true
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(Int64(timeout * 1000)))
            await self?.releaseIdleWaiters()
        }
        await withCheckedContinuation { idleWaiters.append($0) }
        timer.cancel()
        return runs.isEmpty
    }

    func releaseIdleWaiters() {
        let waiters = idleWaiters
        idleWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }

    func checkIdle() {
        if runs.isEmpty { releaseIdleWaiters() }
    }
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

/// Lists the rule files of a folder.
enum RuleFiles {
    /// `*.lua` files that are not tests (`*_test.lua`), sorted by name, as `(stem, path)`.
    static func list(in folder: String) throws(RuleLoadError) -> [(name: String, path: String)] {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw RuleLoadError(path: folder, line: nil, message: "cannot read the rules folder: \(error.localizedDescription)")
        }
        return entries.filter { $0.hasSuffix(".lua") && !$0.hasSuffix("_test.lua") && !$0.hasPrefix(".") }
            .sorted()
            .map { (String($0.dropLast(4)), folder.hasSuffix("/") ? folder + $0 : folder + "/" + $0) }
    }
}
