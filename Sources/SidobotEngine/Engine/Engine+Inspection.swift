import LuaSandbox

/// A rule as the admin API and `sidobot check` show it.
public struct RuleSummary: Sendable, Hashable {
    public var name: String
    public var path: String
    public var description: String?
    /// Event names it listens for, in registration order.
    public var events: [String]
    /// Its schedules with their next fire time.
    public var schedules: [(key: String, next: UnixTime?)]
    public var runs: Int
    public var errors: Int
    public var aborts: Int
    /// Aborts by limit: `instructions`, `cpu`, `memory`, `deadline` (the limits that stopped a run).
    public var limitHits: [String: Int]
    public var quarantined: Bool
    public var lastError: String?
    /// When the running version was loaded.
    public var loadedAt: UnixTime
    public var memoryBytes: Int
    /// Why the file's current content did not load (the version shown keeps running), if so.
    public var loadFailure: RuleLoadFailure?

    public static func == (a: RuleSummary, b: RuleSummary) -> Bool { a.name == b.name && a.loadedAt == b.loadedAt }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }
}

/// Read-only views for the admin API, the status page and tests.
extension Engine {
    public func ruleSummaries() -> [RuleSummary] {
        rules.sorted.map { rule in
            RuleSummary(name: rule.name, path: rule.displayPath, description: rule.registration.description,
                        events: rule.registration.eventNames,
                        schedules: rule.registration.schedules.map { ($0.key, scheduler.nextFire(rule: rule.name, key: $0.key)) },
                        runs: rule.stats.runs, errors: rule.stats.errors, aborts: rule.stats.aborts,
                        limitHits: Dictionary(uniqueKeysWithValues: rule.stats.limitHits.map { ($0.key.rawValue, $0.value) }),
                        quarantined: rule.stats.quarantined, lastError: rule.stats.lastError, loadedAt: rule.loadedAt,
                        memoryBytes: rule.state.memoryInUse, loadFailure: rules.loadFailures[rule.name])
        }
    }

    /// Every file whose current content failed to load, by rule name (running or not).
    public func ruleLoadFailures() -> [RuleLoadFailure] { rules.loadFailures.values.sorted { $0.rule < $1.rule } }

    /// Each long-lived store's records and estimated bytes (records × the measured per-record
    /// cost; traces their own count), and the process's resident memory and budget.
    public func memoryReport() -> MemoryReport {
        MemoryReport(stores: storeSizes(), residentBytes: ProcessMemory.residentBytes(), budgetBytes: configuration.memoryBudget)
    }

    /// Each store's records (counts the stores keep: no scans) and estimated bytes.
    func storeSizes() -> [MemoryReport.Store] {
        let counts: [(EngineMetrics.StoreName, Int)] = [
            (.dedupe, intake.rememberedCount), (.ledger, store.data.ledger.count), (.timers, store.data.timers.count),
            (.state, store.data.state.count), (.traces, traces.count), (.deadLetters, store.data.deadLetters.entries.count),
        ]
        return counts.map { name, count in
            MemoryReport.Store(name: name, records: count,
                               estimatedBytes: name == .traces ? traces.byteCount : name.bytesPerRecord.map { $0 * count })
        }
    }

    /// The last reload of the rules folder; nil before the first.
    public var lastRuleReload: RuleReloadState? { rules.lastReload }

    /// A rule's live state keys and values.
    public func stateOf(rule: String) -> [String: LuaValue] { store.data.state.all(rule: rule, now: clock.now()) }

    /// Every pending timer, by due time.
    public func pendingTimers() -> [TimerRecord] {
        store.data.timers.all.sorted { ($0.due, $0.id) < ($1.due, $1.id) }
    }

    /// A message from the ledger.
    public func message(id: String) -> MessageRecord? { store.data.ledger[id] }

    /// Every message in the ledger, oldest first.
    public func messages() -> [MessageRecord] { store.data.ledger.records.values.sorted { $0.sentAt < $1.sentAt } }

    /// The traces of an event id, or of every event that concerned a message id.
    public func traces(for id: String) -> [Trace] { traces.find(id) }

    /// The most recent traces, newest first.
    public func recentTraces(limit: Int = 100) -> [Trace] { traces.recent(limit: limit) }

    /// The dead letters, oldest first.
    public func deadLetters() -> [DeadLetter] { Array(store.data.deadLetters.entries) }

    /// Sends waiting for their turn (the outbox depth).
    public var outboxDepth: Int { outbox.depth }

    /// How many timers are pending (without listing them).
    public var pendingTimerCount: Int { store.data.timers.count }

    /// How many keys a rule's state holds (expired ones not yet swept included).
    public func stateKeyCount(rule: String) -> Int { store.data.state.rules[rule]?.count ?? 0 }

    /// Handler runs going on now.
    public var activeRunCount: Int { runs.count }

    /// The current time on the engine's clock.
    public func now() -> UnixTime { clock.now() }
}

/// What the engine's memory holds, for `/api/overview` and the status pages.
public struct MemoryReport: Sendable, Hashable {
    public struct Store: Sendable, Hashable {
        let store: EngineMetrics.StoreName
        public var name: String { store.rawValue }
        public var records: Int
        /// Records × the per-record cost `sidobot-bench memory` measured (traces: their own
        /// count); nil where none is known.
        public var estimatedBytes: Int?

        init(name: EngineMetrics.StoreName, records: Int, estimatedBytes: Int?) {
            store = name
            self.records = records
            self.estimatedBytes = estimatedBytes
        }
    }

    public var stores: [Store]
    public var residentBytes: Int?
    public var budgetBytes: Int?
}
