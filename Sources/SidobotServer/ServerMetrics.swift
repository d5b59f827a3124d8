import CoreMetrics
import Foundation
import Metrics
import Prometheus
import SidobotEngine

/// The process-wide Prometheus registry behind `/metrics`.
///
/// swift-metrics can be bootstrapped once per process: ``bootstrap()`` does it the first time it
/// is called (with a ``HelpfulMetricsFactory`` over ``registry``) and does nothing afterwards, so
/// several servers in one process (tests) share one registry.
public enum SidobotMetrics {
    /// Every family of the process: the engine's and the server's, with their help text.
    public static let families: [MetricFamily] = EngineMetrics.families + ServerMetrics.families

    /// The registry every swift-metrics metric of this process lands in once ``bootstrap()`` ran.
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(HelpfulMetricsFactory(registry: registry, families: families))
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
        case accepted, duplicate
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

/// The server's own families (the engine's are in `EngineMetrics.families`).
enum ServerMetrics {
    static let families: [MetricFamily] = [
        MetricFamily(IngressCounters.name, .counter,
                     "Webhooks from Sidobe and hooks from other tools received, by type (webhook, hook) and outcome "
                     + "(accepted, duplicate, rejected_signature, unauthorized, malformed, too_large)."),
    ]
}

/// swift-metrics' Prometheus backend with each family's help text: `PrometheusMetricsFactory`
/// makes every family without one (swift-metrics has no place for it), and the registry refuses
/// a family made twice with different help, so the text is looked up by name when a family is
/// first made, not added afterwards. Otherwise it does what `PrometheusMetricsFactory` does with
/// its default buckets.
struct HelpfulMetricsFactory: CoreMetrics.MetricsFactory {
    private let registry: PrometheusCollectorRegistry
    private let help: [String: String]
    private let durationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]
    private let valueBuckets: [Double] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

    init(registry: PrometheusCollectorRegistry, families: [MetricFamily]) {
        self.registry = registry
        help = Dictionary(families.map { ($0.name, $0.help) }, uniquingKeysWith: { first, _ in first })
    }

    /// The label as the whole name (no namespace or unit added), with its help text.
    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: help[label] ?? "")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions, buckets: valueBuckets)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: durationBuckets)
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
