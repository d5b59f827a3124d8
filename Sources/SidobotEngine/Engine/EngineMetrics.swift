import CoreMetrics
import Foundation

/// The engine's metrics, through swift-metrics (the server bootstraps a Prometheus backend; without
/// one they cost next to nothing). Handles are made once per engine: making one is a registry
/// lookup. The outbox and the sends keep their own (`sidobot_outbox_depth`, `sidobot_send_rate`,
/// `sidobot_sends_total`, `sidobot_sends_in_doubt_total`), each rule its run counters; every
/// family is listed, with its help text, in ``families``.
public struct EngineMetrics {
    let timersPending = Gauge(label: "sidobot_timers_pending")
    let timerLateness = CoreMetrics.Timer(label: "sidobot_timer_lateness_seconds", preferredDisplayUnit: .seconds)
    let journalFsync = CoreMetrics.Timer(label: "sidobot_journal_fsync_seconds", preferredDisplayUnit: .seconds)
    let snapshot = CoreMetrics.Timer(label: "sidobot_snapshot_seconds", preferredDisplayUnit: .seconds)
    let storeRecords = Dictionary(uniqueKeysWithValues: StoreName.allCases.map {
        ($0, Gauge(label: "sidobot_store_records", dimensions: [("store", $0.rawValue)]))
    })
    let traceBytes = Gauge(label: "sidobot_trace_bytes")
    let residentBytes = Gauge(label: "sidobot_resident_memory_bytes")
    let memoryBudget = Gauge(label: "sidobot_memory_budget_bytes")
    let storeBytesEstimated = Dictionary(uniqueKeysWithValues: StoreName.allCases.filter { $0.bytesPerRecord != nil }.map {
        ($0, Gauge(label: "sidobot_store_bytes_estimated", dimensions: [("store", $0.rawValue)]))
    })
    let lastReloadSuccessful = Gauge(label: "sidobot_rules_last_reload_successful")
    let rulesFailingToLoad = Gauge(label: "sidobot_rules_failing_to_load")

    /// The engine's long-lived stores, as `sidobot_store_records{store}` names them.
    enum StoreName: String, CaseIterable {
        case dedupe, ledger, timers, state, traces
        case deadLetters = "dead_letters"

        /// Memory per record as `sidobot-bench memory` measured it (docs/PERFORMANCE.md, "Memory
        /// per record"): an estimate for `sidobot_store_bytes_estimated`, to be measured again
        /// when a store's layout changes. Traces count their own bytes; dead letters are capped.
        var bytesPerRecord: Int? {
            switch self {
            case .dedupe: 79
            case .ledger: 730
            case .timers: 213
            case .state: 335
            case .traces, .deadLetters: nil
            }
        }
    }

    /// `sidobot_handler_runs_total{rule, outcome}`; each ``LoadedRule`` keeps its own, so counting a
    /// run is a lookup by the outcome only.
    static func handlerRunCounter(rule: String, outcome: String) -> Counter {
        Counter(label: "sidobot_handler_runs_total", dimensions: [("rule", rule), ("outcome", outcome)])
    }

    /// Every family the engine records, with the help text `/metrics` shows for it.
    public static let families: [MetricFamily] = [
        MetricFamily("sidobot_handler_runs_total", .counter,
                     "Lua handler runs, by rule and outcome (ran, error, aborted by a limit, cancelled by a reload or shutdown)."),
        MetricFamily("sidobot_sends_total", .counter,
                     "Sends to Sidobe, by the status Sidobe answered (PENDING, SUCCESS, FAILED, DRY_RUN) or error, and the error code."),
        MetricFamily("sidobot_sends_in_doubt_total", .counter,
                     "Sends whose request went out and whose answer never came (timeout, lost connection, restart): UNKNOWN in the ledger, not sent again."),
        MetricFamily("sidobot_outbox_depth", .gauge, "Sends waiting for their turn in the outbox."),
        MetricFamily("sidobot_send_rate", .gauge,
                     "The send rate in force, in sends per second: the configured rate, lower for a while after Sidobe answered 429."),
        MetricFamily("sidobot_timers_pending", .gauge, "Timers waiting to fire."),
        MetricFamily("sidobot_timer_lateness_seconds", .histogram, "How late timers fired: the fire time minus the due time."),
        MetricFamily("sidobot_journal_fsync_seconds", .histogram, "How long one fsync of the journal took."),
        MetricFamily("sidobot_snapshot_seconds", .histogram,
                     "How long one snapshot took: copy, encode, write, fsync and journal compaction."),
        MetricFamily("sidobot_store_records", .gauge,
                     "Records the engine keeps in memory, by store: dedupe (webhook ids remembered), ledger (messages), timers, state (keys), traces, dead_letters."),
        MetricFamily("sidobot_trace_bytes", .gauge, "The estimated size of the kept traces in bytes (capped by the trace budget)."),
        MetricFamily("sidobot_store_bytes_estimated", .gauge,
                     "Estimated memory of each store in bytes: its records times the per-record cost sidobot-bench memory measured (docs/PERFORMANCE.md)."),
        MetricFamily("sidobot_resident_memory_bytes", .gauge, "The process's resident memory (RSS) in bytes, read once a second."),
        MetricFamily("sidobot_memory_budget_bytes", .gauge, "The --memory-budget the engine warns against (0 when none is set)."),
        MetricFamily("sidobot_rules_last_reload_successful", .gauge,
                     "1 when the last reload of the rules folder loaded every file, 0 when a file failed (its previous version, if any, keeps running)."),
        MetricFamily("sidobot_rules_failing_to_load", .gauge,
                     "Rule files whose current content failed to load: the previous version keeps running, or none for a new file."),
    ]
}
