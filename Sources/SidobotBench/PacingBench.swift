import Foundation
import Logging
import LuaSandbox
import Sidobe
import SidobeSimulator
import SidobotEngine
import Synchronization

/// `pacing`: sends through the engine's outbox against the simulator limited to N requests/s
/// (token bucket, 429 beyond it): the rate achieved and the 429s, with the engine configured at the
/// limit and, to see the adaptive rate, at twice the limit.
enum PacingBench {
    static let known = [
        "limit": "the simulator's requests per second (default 50)",
        "burst": "the simulator's burst (default 10)",
        "sends": "messages per scenario (default 500)",
        "fsync": "the journal's fsync policy: everysec (default), always (one fsync per send's intent) or no",
    ]

    static let rule = #"""
        on("hook.blast", function(ev)
          for i = 1, ev.body.count do
            sidobe.send { phone = string.format("+62811%07d", ev.body.base + i), message = "reminder " .. i }
          end
        end)
        on("hook.one", function(ev)
          sidobe.send { phone = ev.body.phone, message = "page" }
        end)
        """#

    static func main(_ args: [String]) async -> Int32 {
        await runBench(args, mode: "pacing", known: known) { options in
            let limit = try options.double("limit", 50)
            let burst = try options.int("burst", 10)
            let sends = try options.int("sends", 500)
            let fsyncText = options.string("fsync") ?? FsyncPolicy.everysec.rawValue
            guard let fsync = FsyncPolicy(rawValue: fsyncText) else {
                throw BenchUsageError(mode: "pacing", known: known, problem: "--fsync wants everysec, always or no, got \(fsyncText)")
            }
            var table = Table(header: ["scenario", "engine rate", "sends", "achieved", "of limit", "429s", "retried by client"])
            for (name, factor, concurrent) in [("one handler, sends in a loop", 1.0, false), ("one handler per send (concurrent)", 1.0, true),
                                               ("one handler per send, engine at 2× the limit", 2.0, true)] {
                let result = try await scenario(limit: limit, burst: burst, sends: sends, engineRate: limit * factor, concurrent: concurrent, fsync: fsync)
                table.rows.append([name, "\(Format.int(limit * factor))/s", "\(result.sent)", String(format: "%.1f/s", result.rate),
                                   String(format: "%.0f%%", result.rate / limit * 100), "\(result.rateLimited)", "\(result.clientRetries)"])
            }
            print("pacing: simulator limited to \(Format.int(limit)) requests/s (burst \(burst)); engine burst the default (\(Format.int(EngineConfiguration(rulesFolder: "", dataFolder: nil).sendBurst))); recipient gap off; journal fsync \(fsync)")
            print(table.render())
            print("target: ≥ 95% of the limit with no avoidable 429 (engine configured at the limit)")
        }
    }

    struct Result {
        var sent: Int
        var rate: Double
        var rateLimited: Int
        var clientRetries: Int
    }

    static func scenario(limit: Double, burst: Int, sends: Int, engineRate: Double, concurrent: Bool, fsync: FsyncPolicy) async throws -> Result {
        let key = SecretKey("bench-pacing-key")
        var faults = FaultInjection()
        faults.rateLimit = RateLimit(requestsPerSecond: limit, burst: burst)
        var configuration = SimulatorConfiguration(secretKey: key, webhookURL: nil)
        configuration.faults = faults
        var quiet = Logger(label: "bench.simulator")
        quiet.logLevel = .warning
        let simulator = SidobeSimulator(configuration: configuration, logger: quiet)
        try await simulator.start(host: "127.0.0.1", port: 0)
        defer { Task { await simulator.stop() } }
        let retries = RetryCounter()
        let feedback = RateLimitFeedback()
        var clientConfiguration = SidobeClient.Configuration(baseURL: simulator.baseURL, secretKey: key)
        clientConfiguration.onRateLimited = { retryAfter in
            retries.increment()
            feedback.rateLimited(retryAfter: retryAfter)
        }
        let client = SidobeClient(configuration: clientConfiguration, logger: quiet)
        let harness = try await EngineHarness.start(label: "pacing", rules: ["pacing": rule], journal: fsync, sidobe: client) {
            $0.sendRate = engineRate  // the operator's --send-rate; the burst stays the default
            $0.recipientGap = 0
            $0.limits.timePerRun = .seconds(600)
        }
        defer { harness.folder.remove() }
        feedback.attach(harness.engine)
        if concurrent {
            for i in 1...sends {
                _ = try await harness.engine.acceptHook(name: "one", body: Array(#"{"phone":"+62812\#(String(format: "%07d", i))"}"#.utf8),
                                                        contentType: "application/json")
            }
        } else {
            _ = try await harness.engine.acceptHook(name: "blast", body: Array(#"{"count":\#(sends),"base":0}"#.utf8), contentType: "application/json")
        }
        await harness.engine.settle()
        let messages = await simulator.messages()
        let times = messages.map { $0.acceptedAt.timeIntervalSince1970 }.sorted()
        let rate = times.count > 1 ? Double(times.count - 1) / (times.last! - times.first!) : 0
        let counts = await simulator.answerCounts()
        await harness.stop()
        return Result(sent: messages.count, rate: rate, rateLimited: counts[429] ?? 0, clientRetries: retries.value)
    }
}

/// Counts the 429s the client saw (each one it retried or gave up on).
final class RetryCounter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
