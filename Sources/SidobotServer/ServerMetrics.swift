import Foundation
import Metrics
import Prometheus

/// The process-wide Prometheus registry behind `/metrics`.
///
/// swift-metrics can be bootstrapped once per process: ``bootstrap()`` does it the first time it
/// is called (with a `PrometheusMetricsFactory` over ``registry``) and does nothing afterwards, so
/// several servers in one process (tests) share one registry.
public enum SidobotMetrics {
    /// The registry every swift-metrics metric of this process lands in once ``bootstrap()`` ran.
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    /// Bootstraps swift-metrics with Prometheus (once per process; later calls do nothing).
    public static func bootstrap() {
        _ = registry
    }

    /// The Prometheus text exposition of every metric.
    public static func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(8192)
        registry.emit(into: &buffer)
        return buffer
    }
}

/// `sidobot_events_received_total{type,outcome}`, created once so the ingress path does not look
/// counters up per request.
struct IngressCounters: Sendable {
    enum WebhookOutcome: String, CaseIterable, Sendable {
        case accepted, duplicate, ignored
        case rejectedSignature = "rejected_signature"
        case malformed
        case tooLarge = "too_large"
    }

    enum HookOutcome: String, CaseIterable, Sendable {
        case accepted, unauthorized, malformed
        case tooLarge = "too_large"
    }

    static let name = "sidobot_events_received_total"

    private let webhook: [WebhookOutcome: Metrics.Counter]
    private let hook: [HookOutcome: Metrics.Counter]

    init() {
        SidobotMetrics.bootstrap()
        var webhook: [WebhookOutcome: Metrics.Counter] = [:]
        for outcome in WebhookOutcome.allCases {
            webhook[outcome] = Metrics.Counter(label: Self.name, dimensions: [("type", "webhook"), ("outcome", outcome.rawValue)])
        }
        var hook: [HookOutcome: Metrics.Counter] = [:]
        for outcome in HookOutcome.allCases {
            hook[outcome] = Metrics.Counter(label: Self.name, dimensions: [("type", "hook"), ("outcome", outcome.rawValue)])
        }
        self.webhook = webhook
        self.hook = hook
    }

    func webhook(_ outcome: WebhookOutcome) { webhook[outcome]?.increment() }
    func hook(_ outcome: HookOutcome) { hook[outcome]?.increment() }
}
