import CoreMetrics
import Foundation

/// The engine's metrics, through swift-metrics (the server bootstraps a Prometheus backend; without
/// one they cost next to nothing). Handles are cached: creating a metric is a registry lookup.
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
    private var sends: [String: Counter] = [:]
    let outboxDepth = Gauge(label: "sidobot_outbox_depth")
    let sendRate = Gauge(label: "sidobot_send_rate")
    let timersPending = Gauge(label: "sidobot_timers_pending")
    let timerLateness = CoreMetrics.Timer(label: "sidobot_timer_lateness_seconds", preferredDisplayUnit: .seconds)
    let journalFsync = CoreMetrics.Timer(label: "sidobot_journal_fsync_seconds", preferredDisplayUnit: .seconds)
    let snapshot = CoreMetrics.Timer(label: "sidobot_snapshot_seconds", preferredDisplayUnit: .seconds)

    /// `sidobot_handler_runs_total{rule, outcome}`; each ``LoadedRule`` keeps its own, so counting a
    /// run is a lookup by the outcome only.
    static func handlerRunCounter(rule: String, outcome: String) -> Counter {
        Counter(label: "sidobot_handler_runs_total", dimensions: [("rule", rule), ("outcome", outcome)])
    }

    mutating func send(status: String, code: String) {
        let key = status + "\u{0}" + code
        if let counter = sends[key] { counter.increment(); return }
        let counter = Counter(label: "sidobot_sends_total", dimensions: [("status", status), ("code", code)])
        sends[key] = counter
        counter.increment()
    }

    /// Times `body` into `timer`.
    static func measure<T, E: Error>(_ timer: CoreMetrics.Timer, _ body: () throws(E) -> T) throws(E) -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { timer.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start)) }
        return try body()
    }
}
