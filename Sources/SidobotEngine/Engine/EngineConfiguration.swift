import LuaSandbox

/// How an engine runs. The defaults are the documented ones (docs/ENGINE.md, docs/LUASANDBOX.md).
public struct EngineConfiguration: Sendable {
    /// The folder of `*.lua` rules.
    public var rulesFolder: String
    /// The data folder (`journal.jsonl`, `snapshot.json`); `nil` keeps everything in memory only.
    public var dataFolder: String?
    /// When the journal is forced to disk.
    public var fsync: FsyncPolicy = .everysec
    /// Record sends in the ledger as `DRY_RUN` instead of performing them.
    public var dryRun = false
    /// Per-rule Lua limits (memory, instructions and wall time per handler run).
    public var limits: LuaLimits = .default
    /// Consecutive aborts (limit hits) after which a rule is quarantined until it is reloaded.
    public var quarantineAfter = 5
    /// Sends per second across all rules (token bucket; halves on a 429 and recovers).
    public var sendRate: Double = 20
    /// How many sends may go at once before the rate applies. 1 (the default) paces every send
    /// `1/sendRate` apart: a provider whose own burst is smaller than ours would answer the
    /// excess with 429s, each of which halves the rate (docs/PERFORMANCE.md, pacing).
    public var sendBurst: Double = 1
    /// Minimum seconds between two sends to the same recipient (0: off).
    public var recipientGap: Double = 1
    /// A send that has waited this long for its turn is dropped and reported as `EXPIRED`.
    public var sendTimeToLive: Double = 600
    /// How long accepted webhook ids are remembered for deduplication.
    public var dedupeRetention: Double = 7 * 86_400
    /// How long sent messages stay in the ledger.
    public var ledgerRetention: Double = 30 * 86_400
    /// How many dead letters are kept (oldest dropped first).
    public var deadLetterCapacity = 10_000
    /// How long traces are kept, and how many bytes of them at most.
    public var traceRetention: Double = 86_400
    public var traceBudgetBytes = 64 << 20
    /// Seconds between checks of the rules folder for edits (hot reload); 0 turns watching off.
    public var reloadPollInterval: Double = 1
    /// Seconds between snapshots.
    public var snapshotInterval: Double = 300
    /// Resident memory (bytes) the engine should stay under: a warning is logged at 80 %, 95 %
    /// and 100 % of it (``MemoryBudget``). Nil: not watched.
    public var memoryBudget: Int?
    /// Uniform random numbers in `0..<1`, for retry jitter. Tests fix it for repeatable timings.
    public var random: @Sendable () -> Double = { Double.random(in: 0..<1) }
    /// How late a timer may fire and still count as on time under the `skip` policy.
    public var timerGrace: Duration = TimerLatePolicy.defaultGrace

    public init(rulesFolder: String, dataFolder: String?) {
        self.rulesFolder = rulesFolder
        self.dataFolder = dataFolder
    }
}
