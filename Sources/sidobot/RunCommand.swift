import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Sidobe
import SidobeSimulator
import SidobotEngine
import SidobotServer
import Synchronization

/// `sidobot run`: the engine as a long-running HTTP service (docs/OPERATING.md).
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the engine: load the rules, serve webhooks, hooks, /metrics and the admin API.",
        discussion: """
            Environment: SIDOBE_SECRET_KEY (required unless --simulate), SIDOBOT_ADMIN_TOKEN (enables \
            POST /hooks/{name} and /api/...; both need Authorization: Bearer TOKEN). SIGTERM or SIGINT stop \
            it cleanly: no new requests, running handlers finish (up to --shutdown-deadline), a final \
            snapshot is written, exit 0. Exit 2 with one line on stderr for a configuration problem \
            (missing key, bad --listen, unreadable rules folder, a rule that fails to load, a corrupt data folder). \
            See docs/OPERATING.md.
            """
    )

    @Option(name: .long, help: "The folder of *.lua rules.")
    var rules = "rules"

    @Option(name: .long, help: "The data folder (journal.jsonl, snapshot.json); created if missing.")
    var data = "data"

    @Option(name: .long, help: "Where to listen, HOST:PORT (port 0 picks a free port).")
    var listen = "127.0.0.1:8080"

    @Option(name: .customLong("api-base"), help: "The Sidobe API base URL (ignored with --simulate).")
    var apiBase = SidobeClient.Configuration.productionBaseURL

    @Flag(name: .long, help: "Start the Sidobe simulator in-process and point the engine at it: no account, no network.")
    var simulate = false

    @Flag(name: .customLong("dry-run"), help: "Run everything but record sends in the ledger as DRY_RUN instead of performing them.")
    var dryRun = false

    @Option(name: .long, help: "When the journal is forced to disk: always, everysec or no.")
    var fsync = "everysec"

    @Option(name: .customLong("snapshot-interval"), help: "Seconds between periodic snapshots.")
    var snapshotInterval: Double = 300

    @Option(name: .customLong("shutdown-deadline"), help: "Seconds running handlers may take to finish at shutdown.")
    var shutdownDeadline: Double = 10

    @Option(name: .customLong("send-rate"), help: "Sends per second across all rules (halved on a 429, recovered when quiet).")
    var sendRate: Double = 20

    @Option(name: .customLong("send-burst"), help: "Sends that may go at once before the rate applies (1: every send paced).")
    var sendBurst: Double = 1

    @Option(name: .customLong("recipient-gap"), help: "Minimum seconds between two sends to the same phone (0: off).")
    var recipientGap: Double = 1

    @Option(name: .customLong("cpu-limit"), help: "CPU seconds a handler run may use (not counting time waiting for Sidobe); a rule can set its own with rule { cpu_limit = ... }.")
    var cpuLimit: Double = 1

    @Option(name: .customLong("slice"), help: "Milliseconds a handler run may hold the engine before it pauses to let other rules run (0: never paused).")
    var slice: Double = 10

    @Flag(name: .customLong("confirm-status"), help: "Confirm a FAILED webhook with GET whatsapp-messages/:id before accepting it (the signature does not cover the body).")
    var confirmStatus = false

    @Option(name: .customLong("memory-budget"), help: "Resident memory to stay under, e.g. 2GiB or 512MiB: a warning is logged at 80 %, 95 % and 100 % of it (default: not watched).")
    var memoryBudget: ByteSize?

    @Option(name: .customLong("log-format"), help: "Log lines as text (logfmt fields, for people) or json (one object a line, for log shippers).")
    var logFormat: LogFormat = .text

    @OptionGroup(title: "Simulator, with --simulate (docs/SIMULATOR.md)")
    var simulator: SimulatorOptions<PrefixedSimulatorNames>

    func validate() throws {
        if !(snapshotInterval > 0) { throw ValidationError("--snapshot-interval must be positive") }
        if !(shutdownDeadline >= 0) { throw ValidationError("--shutdown-deadline cannot be negative") }
        if !(sendRate > 0) { throw ValidationError("--send-rate must be positive (sends per second)") }
        if !(sendBurst >= 1) { throw ValidationError("--send-burst must be at least 1") }
        if !(recipientGap >= 0) { throw ValidationError("--recipient-gap cannot be negative") }
        if !(cpuLimit > 0 && cpuLimit <= 60) { throw ValidationError("--cpu-limit must be more than 0 and at most 60 seconds") }
        if !(slice >= 0 && slice <= 1000) { throw ValidationError("--slice must be between 0 and 1000 milliseconds") }
    }

    func run() async throws {
        bootstrapLogging(format: logFormat)
        SidobotMetrics.bootstrap()
        try await runReportingConfigurationErrors {
            try await serve()
        }
    }

    private func serve() async throws {
        let logger = Logger(label: "sidobot")
        let address = try ListenAddress(parsing: listen)
        guard let fsyncPolicy = FsyncPolicy(rawValue: fsync) else {
            throw ConfigurationError("bad --fsync '\(fsync)': expected always, everysec or no")
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: rules, isDirectory: &isFolder), isFolder.boolValue else {
            throw ConfigurationError("the rules folder '\(rules)' does not exist or is not a folder (--rules)")
        }
        guard FileManager.default.isReadableFile(atPath: rules) else {
            throw ConfigurationError("the rules folder '\(rules)' cannot be read (--rules)")
        }
        if !simulate && simulator.injectsFailures {
            throw ConfigurationError("--sim-* options need --simulate")
        }
        let key: SecretKey
        if simulate {
            key = Environment.value("SIDOBE_SECRET_KEY").map(SecretKey.init) ?? Self.generatedKey()
        } else {
            key = try Environment.secretKey(neededFor: "sidobot run (or use --simulate to run against the built-in simulator)")
        }

        var inProcess: SidobeSimulator?
        var baseURL = apiBase
        if simulate {
            var configuration = SimulatorConfiguration(secretKey: key, webhookURL: nil)
            try self.simulator.apply(to: &configuration)
            let started = SidobeSimulator(configuration: configuration, logger: Logger(label: "sidobe.simulator"))
            do {
                try await started.start(host: "127.0.0.1", port: 0)
            } catch {
                throw ConfigurationError("cannot start the simulator: \(error)")
            }
            inProcess = started
            baseURL = started.baseURL
        }

        // Every 429 the client sees slows the engine's sends down, not only a send whose retries ran out.
        let rateLimitFeedback = RateLimitFeedback()
        var clientConfiguration = SidobeClient.Configuration(baseURL: baseURL, secretKey: key)
        clientConfiguration.onRateLimited = { rateLimitFeedback.rateLimited(retryAfter: $0) }
        let client = SidobeClient(configuration: clientConfiguration)
        var engineConfiguration = EngineConfiguration(rulesFolder: rules, dataFolder: data)
        engineConfiguration.fsync = fsyncPolicy
        engineConfiguration.dryRun = dryRun
        engineConfiguration.snapshotInterval = snapshotInterval
        engineConfiguration.memoryBudget = memoryBudget?.bytes
        engineConfiguration.sendRate = sendRate
        engineConfiguration.sendBurst = sendBurst
        engineConfiguration.recipientGap = recipientGap
        engineConfiguration.limits.cpuPerRun = .milliseconds(Int64((cpuLimit * 1000).rounded()))
        engineConfiguration.limits.slice = .microseconds(Int64((slice * 1000).rounded()))
        let engine = Engine(configuration: engineConfiguration, sidobe: client, logger: Logger(label: "sidobot.engine"))
        rateLimitFeedback.attach(engine)

        var serverConfiguration = ServerConfiguration(host: address.host, port: address.port, secretKey: key,
                                                      adminToken: Environment.value("SIDOBOT_ADMIN_TOKEN"))
        serverConfiguration.shutdownDeadline = shutdownDeadline
        serverConfiguration.confirmFailedStatus = confirmStatus
        let server = SidobotHTTPServer(engine: engine, configuration: serverConfiguration, logger: Logger(label: "sidobot.server"),
                                       confirmStatus: { id in try await client.message(id: id).status })

        let webhookHost = Self.loopbackHost(for: address.host)
        let adminAPI = serverConfiguration.adminToken == nil ? "off (SIDOBOT_ADMIN_TOKEN not set)" : "on"
        let sidobeShown = simulate ? "simulator at \(baseURL)" : baseURL
        let inProcessSimulator = inProcess
        let listening = Atomic<Bool>(false)
        var services = server.services { port in
            listening.store(true, ordering: .releasing)
            let shown = address.host.contains(":") ? "[\(address.host)]" : address.host
            logger.info("sidobot listening on http://\(shown):\(port)", metadata: [
                "rules": "\(rules)", "data": "\(data)", "fsync": "\(fsyncPolicy)", "dry_run": "\(dryRun)",
                "admin_api": "\(adminAPI)",
                "sidobe": "\(sidobeShown)",
            ])
            if let simulator = inProcessSimulator {
                await simulator.setWebhookURL("http://\(webhookHost):\(port)/webhooks/sidobe")
            }
        }
        if let simulator = inProcess {
            // First in the group, so it stops last: after the engine wrote its final snapshot.
            services.insert(ShutdownHookService { await simulator.stop() }, at: 0)
        }
        if let notifier = SystemdNotifier() {
            // Last, so that a graceful shutdown reaches it first: STOPPING=1 before the engine stops.
            services.append(SystemdNotifyService(notifier: notifier, engine: engine,
                                                 isReady: { server.isReady && listening.load(ordering: .acquiring) },
                                                 logger: Logger(label: "sidobot.systemd")))
        }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        do {
            try await group.run()
        } catch let error as EngineStartError {
            await inProcess?.stop()
            throw ConfigurationError(error.description.replacingOccurrences(of: "\n", with: "; "))
        } catch {
            await inProcess?.stop()
            printError("error: \(error)")
            throw ExitCode.failure
        }
        logger.info("stopped")
    }

    /// Where the in-process simulator reaches the engine: loopback for a wildcard address.
    static func loopbackHost(for host: String) -> String {
        switch host {
        case "0.0.0.0", "": "127.0.0.1"
        case "::", "[::]": "[::1]"
        default: host.contains(":") ? "[\(host)]" : host
        }
    }

    static func generatedKey() -> SecretKey {
        var bytes = [UInt8](repeating: 0, count: 24)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        return SecretKey("sim-" + bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined())
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
