import ArgumentParser
import Foundation
import Logging
import Sidobe
import SidobeSimulator

/// `sidobot simulator`: a local Sidobe for development, demos and tests.
struct SimulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulator",
        abstract: "Run a local Sidobe API simulator (same endpoints under /wa/v1, signed webhooks, failure injection).",
        discussion: """
            The simulator's secret key comes from SIDOBE_SECRET_KEY, or --secret-key. Async sends answer PENDING \
            and the final status is POSTed to --webhook-url. No failures are injected unless asked; every knob \
            is deterministic for a given --seed. See docs/SIMULATOR.md.
            """
    )

    @Option(name: .long, help: "Where to listen, HOST:PORT.")
    var listen = "127.0.0.1:8090"

    @Option(name: .customLong("webhook-url"), help: "Where to POST status webhooks, e.g. http://127.0.0.1:8080/webhooks/sidobe.")
    var webhookURL: String?

    @Option(name: .customLong("secret-key"), help: "The key clients must send (default: SIDOBE_SECRET_KEY).")
    var secretKey: String?

    @OptionGroup(title: "Failure injection")
    var options: SimulatorOptions<PlainSimulatorNames>

    func run() async throws {
        bootstrapLogging()
        try await runReportingConfigurationErrors {
            let address = try ListenAddress(parsing: listen)
            let key: SecretKey
            if let secretKey, !secretKey.isEmpty {
                key = SecretKey(secretKey)
            } else {
                key = try Environment.secretKey(neededFor: "the simulator")
            }
            var configuration = SimulatorConfiguration(secretKey: key, webhookURL: webhookURL)
            try options.apply(to: &configuration)
            let simulator = SidobeSimulator(configuration: configuration)
            try await simulator.run(host: address.host, port: address.port) { port in
                let shown = address.host.contains(":") ? "[\(address.host)]" : address.host
                printError("simulator: listening on http://\(shown):\(port)/wa/v1 (inspection under /_simulator)")
            }
        }
    }
}
