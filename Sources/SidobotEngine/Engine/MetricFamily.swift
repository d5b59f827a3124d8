/// One metric family as Prometheus shows it: its name, kind and help text.
///
/// swift-metrics, which the engine records through, carries no help text; the server's metrics
/// factory looks each family's up here when the family is first made, so `/metrics` has a `# HELP`
/// line for every one (`promtool check metrics` is clean). A family made without an entry here
/// has none, and `MetricsTests` fails.
public struct MetricFamily: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    public let name: String
    public let kind: Kind
    public let help: String

    public init(_ name: String, _ kind: Kind, _ help: String) {
        self.name = name
        self.kind = kind
        self.help = help
    }
}
