import CoreMetrics
import Foundation

/// The engine's metrics, through swift-metrics (the server bootstraps a Prometheus backend; without
/// one they cost next to nothing). Handles are made once per engine: making one is a registry
/// lookup. The outbox and the sends keep their own (`sidobot_outbox_depth`, `sidobot_send_rate`,
/// `sidobot_sends_total`), each rule its run counters.
///
/// | name | kind | labels |
/// |---|---|---|
/// | `sidobot_handler_runs_total` | counter | `rule`, `outcome` (ran, error, aborted, cancelled) |
/// | `sidobot_sends_total` | counter | `status` (PENDING, SUCCESS, FAILED, DRY_RUN, error), `code` |
/// | `sidobot_outbox_depth` | gauge | sends waiting for their turn |
/// | `sidobot_send_rate` | gauge | the send rate in force (sends/s): the configured one, lower after 429s |
/// | `sidobot_timers_pending` | gauge | |
/// | `sidobot_timer_lateness_seconds` | histogram | how late timers fired |
/// | `sidobot_journal_fsync_seconds` | histogram | |
/// | `sidobot_snapshot_seconds` | histogram | |
struct EngineMetrics {
    let timersPending = Gauge(label: "sidobot_timers_pending")
    let timerLateness = CoreMetrics.Timer(label: "sidobot_timer_lateness_seconds", preferredDisplayUnit: .seconds)
    let journalFsync = CoreMetrics.Timer(label: "sidobot_journal_fsync_seconds", preferredDisplayUnit: .seconds)
    let snapshot = CoreMetrics.Timer(label: "sidobot_snapshot_seconds", preferredDisplayUnit: .seconds)

    /// `sidobot_handler_runs_total{rule, outcome}`; each ``LoadedRule`` keeps its own, so counting a
    /// run is a lookup by the outcome only.
    static func handlerRunCounter(rule: String, outcome: String) -> Counter {
        Counter(label: "sidobot_handler_runs_total", dimensions: [("rule", rule), ("outcome", outcome)])
    }
}
