import Foundation
import Testing

/// ISSUE 15, through the real binary on loopback: no rule can hold the engine. CPU-bound rules
/// run while another rule's hooks and Sidobe's webhooks are acknowledged and handled.
///
/// These assert latencies, so they run on their own, not beside the rest of the suite (whose
/// tests would compete for the two cores): `SIDOBOT_TIMING_TESTS=1 swift test --filter
/// IsolationTests`; scripts/test runs them so after the rest of the suite. "Handler done" is the
/// time until the admin API shows the handler's state change after its send: an upper bound.
@Suite("isolation: busy rules do not hold the engine (sidobot run)", .serialized,
       .enabled(if: ProcessInfo.processInfo.environment["SIDOBOT_TIMING_TESTS"] == "1",
                "timing acceptance tests: run alone by scripts/test with SIDOBOT_TIMING_TESTS=1"))
struct IsolationTests {
    /// The attack of the issue: a few VM instructions a turn, megabytes copied in C.
    static let attack = """
        on("hook.hog", function(ev)
          local parts = {}
          for i = 1, 64 do parts[i] = string.rep("y", 16384) end
          for i = 1, 1e12 do local a = string.rep("x", 1536 * 1024); local b = table.concat(parts) end
        end)
        """

    /// The attack on demand: a hook with `{"attack": true}` runs it, one without returns at once.
    /// With a plain hook before each attack, the rule never aborts five times in a row, so it is
    /// not quarantined while the others are measured.
    static let attackOnDemand = """
        on("hook.hog", function(ev)
          if not ev.body.attack then return end
          local parts = {}
          for i = 1, 64 do parts[i] = string.rep("y", 16384) end
          for i = 1, 1e12 do local a = string.rep("x", 1536 * 1024); local b = table.concat(parts) end
        end)
        """

    /// A legitimate CPU-bound handler: about 7.5M of its 10M instructions, tens of milliseconds.
    static func busy(_ name: String) -> String {
        """
        on("hook.\(name)", function(ev)
          local x = 0
          for i = 1, 2500000 do x = x + i end
          state.incr("runs")
        end)
        """
    }

    static let benign = """
        on("hook.ping", function(ev)
          local msg, err = sidobe.send { phone = "+62812" .. (100000 + ev.body.i) .. "7", message = "ping " .. ev.body.i }
          state.set("sent:" .. ev.body.i, true)
          if msg then state.incr("delivered") end
        end)
        """

    final class Engine {  // one `sidobot run` child process
        let folder: String
        let child: ProcessTests.Child
        let base: String

        init(rules: [String: String]) async throws {
            folder = try makeTempFolder("isolation")
            let rulesFolder = folder + "/rules"
            try FileManager.default.createDirectory(atPath: rulesFolder, withIntermediateDirectories: true)
            for (name, source) in rules { try source.write(toFile: rulesFolder + "/\(name).lua", atomically: true, encoding: .utf8) }
            // Sends are not paced here (the latency of the handler is measured, not the outbox's).
            let arguments = ["run", "--simulate", "--rules", rulesFolder, "--data", folder + "/data", "--listen", "127.0.0.1:0",
                             "--send-rate", "100000", "--send-burst", "1000", "--recipient-gap", "0", "--sim-rate-limit", "100000"]
            let environment = ["SIDOBE_SECRET_KEY": testKey.reveal(), "SIDOBOT_ADMIN_TOKEN": adminToken, "SIDOBOT_LOG_LEVEL": "info"]
            child = try ProcessTests.Child(arguments: arguments, environment: environment, logURL: URL(fileURLWithPath: folder + "/log"))
            let port = try #require(try await child.port(after: 0), "no listening line:\n\(child.log)")
            base = "http://127.0.0.1:\(port)"
            _ = try await eventually { (try? await http(.GET, base + "/readyz"))?.status == 200 }
        }

        func stop() {
            if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) }
            try? FileManager.default.removeItem(atPath: folder)
        }

        func hook(_ name: String, _ body: String = "{}") async throws -> Int {
            try await http(.POST, base + "/hooks/\(name)", headers: bearer + [("Content-Type", "application/json")], body: Array(body.utf8)).status
        }

        func state(_ rule: String) async throws -> [String: Any] {
            try await http(.GET, base + "/api/state/\(rule)", headers: bearer).object ?? [:]
        }
    }

    /// Keeps `names` busy: a hook to each, a round every `interval`, until cancelled. The rounds
    /// arrive faster than the rules' runs finish (each takes tens of milliseconds and runs one at a
    /// time), so every rule always has a run in progress or queued; pacing them keeps the load on
    /// the ingress a steady few hundred requests a second instead of as many as two cores can send,
    /// which would measure the ingress under a flood, not isolation from Lua.
    static func feed(_ engine: Engine, _ names: [String], every interval: Duration) -> Task<Void, Never> {
        let base = engine.base
        return Task {
            let clock = ContinuousClock()
            var next = clock.now
            while !Task.isCancelled {
                for name in names {
                    _ = try? await http(.POST, base + "/hooks/\(name)", headers: bearer + [("Content-Type", "application/json")], body: Array("{}".utf8))
                }
                next += interval
                try? await clock.sleep(until: next)
            }
        }
    }

    /// The aborts counted for `rule` in `/api/rules`, by every limit.
    static func limitsHit(_ base: String, _ rule: String) async throws -> Int {
        let rules = try await http(.GET, base + "/api/rules", headers: bearer).object?["rules"] as? [[String: Any]] ?? []
        let hits = rules.first { $0["name"] as? String == rule }?["limits_hit"] as? [String: Int] ?? [:]
        return hits.values.reduce(0, +)
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
    }

    /// Acknowledges 200 hooks of the benign rule one after another, each with its own `i`; returns
    /// the acknowledgement times and, for each, how long after it the handler's send was done.
    static func pings(_ engine: Engine, from first: Int) async throws -> (acks: [Double], handled: [Double]) {
        var acks: [Double] = [], handled: [Double] = []
        for i in first..<(first + 200) {
            let start = ContinuousClock.now
            #expect(try await engine.hook("ping", #"{"i":\#(i)}"#) == 202)
            acks.append(seconds(since: start))
            let acked = ContinuousClock.now
            // Watched through the admin API, which answers from the engine between runs: the time
            // seen is when the send was done or later.
            while try await engine.state("benign")["sent:\(i)"] as? Bool != true {
                if seconds(since: acked) > 10 { break }
            }
            handled.append(seconds(since: acked))
        }
        return (acks, handled)
    }

    @Test func theAttackRunningDoesNotDelayAcknowledgementsOrAnotherRulesHandler() async throws {
        let engine = try await Engine(rules: ["hog": Self.attackOnDemand, "benign": Self.benign])
        defer { engine.stop() }
        // One attack after another: the next is sent when the last was aborted by its budget, so
        // one is running all the time (each holds the engine's thread for tens of milliseconds of
        // slices before its abort). A hook without the attack between them keeps the rule from
        // being quarantined for five aborts in a row.
        let base = engine.base
        let feeder = Task {
            var aborted = 0
            while !Task.isCancelled {
                for body in ["{}", #"{"attack":true}"#] {
                    _ = try? await http(.POST, base + "/hooks/hog", headers: bearer + [("Content-Type", "application/json")], body: Array(body.utf8))
                }
                while !Task.isCancelled, (try? await Self.limitsHit(base, "hog")) ?? aborted <= aborted {}
                aborted = (try? await Self.limitsHit(base, "hog")) ?? aborted
            }
        }
        defer { feeder.cancel() }
        _ = try await eventually { try await Self.limitsHit(engine.base, "hog") >= 1 }

        let (acks, handled) = try await Self.pings(engine, from: 0)
        var webhookAcks: [Double] = []
        for i in 0..<200 {
            let start = ContinuousClock.now
            let answer = try await http(.POST, engine.base + "/webhooks/sidobe", headers: signed("iso-\(i)"),
                                        body: webhookBody(id: "iso-\(i)", messageID: "m-iso-\(i)"))
            #expect(answer.status == 200)
            webhookAcks.append(Self.seconds(since: start))
        }
        for path in ["/healthz", "/readyz"] { #expect(try await http(.GET, engine.base + path).status == 200) }
        #expect(try await http(.GET, engine.base + "/api/rules", headers: bearer).status == 200)
        let aborted = try await Self.limitsHit(engine.base, "hog")
        print("isolation, the attack running: hook ack p50 \(Self.percentile(acks, 0.5) * 1000) ms p99 \(Self.percentile(acks, 0.99) * 1000) ms; "
              + "webhook ack p99 \(Self.percentile(webhookAcks, 0.99) * 1000) ms; handler done after the ack p50 "
              + "\(Self.percentile(handled, 0.5) * 1000) ms p99 \(Self.percentile(handled, 0.99) * 1000) ms max \(handled.max()! * 1000) ms; "
              + "attacks aborted \(aborted)")
        #expect(Self.percentile(acks, 0.99) <= 0.010)
        #expect(Self.percentile(webhookAcks, 0.99) <= 0.010)
        // The attack runs few VM instructions between megabytes copied in C: without the count
        // hook armed by large allocations it was paused only every ~100 ms (p99 ~400 ms here).
        #expect(Self.percentile(handled, 0.99) <= 0.050)
        #expect(aborted >= 4, "the attack kept running meanwhile")
        let rules = try await http(.GET, engine.base + "/api/rules", headers: bearer).object?["rules"] as? [[String: Any]] ?? []
        #expect(rules.first { $0["name"] as? String == "hog" }?["quarantined"] as? Bool != true)
    }

    @Test func theAttackIsAbortedByTheBudgetWithinASecondWhileOthersAreAnswered() async throws {
        let engine = try await Engine(rules: ["hog": Self.attack, "benign": Self.benign])
        defer { engine.stop() }
        // Warm-up: the first hook of a process pays for what is set up lazily (the route, the
        // benign rule's first run), not for the attack; the acknowledgements below are ~20, so one
        // such outlier would be their p99.
        #expect(try await engine.hook("ping", #"{"i":-1}"#) == 202)
        let start = ContinuousClock.now
        #expect(try await engine.hook("hog") == 202)
        var acks: [Double] = []
        var letter: [String: Any]?
        for i in 0..<50 where letter == nil {
            let ack = ContinuousClock.now
            #expect(try await engine.hook("ping", #"{"i":\#(i)}"#) == 202)
            acks.append(Self.seconds(since: ack))
            let letters = try await http(.GET, engine.base + "/api/dead-letters", headers: bearer).object?["dead_letters"] as? [[String: Any]]
            letter = letters?.first { $0["rule"] as? String == "hog" }
        }
        if letter == nil {
            _ = try await eventually(timeout: 5) {
                let letters = try await http(.GET, engine.base + "/api/dead-letters", headers: bearer).object?["dead_letters"] as? [[String: Any]]
                letter = letters?.first { $0["rule"] as? String == "hog" }
                return letter != nil
            }
        }
        let took = Self.seconds(since: start)
        let error = try #require(letter?["error"] as? String, "no dead letter for the hog")
        #expect(letter?["reason"] as? String == "limit")
        #expect(error.contains("instruction limit") || error.contains("CPU time limit"), "\(error)")
        #expect(!error.contains("time limit exceeded") || error.contains("CPU"), "\(error)")
        #expect(took <= 1.0, "the attack was aborted after \(took) s")
        // The ~20 acknowledgements here are too few for a p99 (it is their maximum, and one
        // scheduler hiccup on a loaded CI machine is 11 ms): the p99 ≤ 10 ms contract is asserted
        // over 200 requests above. What this test adds is that none of them waited for the attack,
        // which runs for 0.4–0.5 s before the budget aborts it.
        #expect(acks.max() ?? 0 <= 0.100, "an acknowledgement took \((acks.max() ?? 0) * 1000) ms while the attack ran")
        let rules = try await http(.GET, engine.base + "/api/rules", headers: bearer).object?["rules"] as? [[String: Any]] ?? []
        let hog = rules.first { $0["name"] as? String == "hog" }
        let hits = hog?["limits_hit"] as? [String: Int] ?? [:]
        #expect((hits["instructions"] ?? 0) + (hits["cpu"] ?? 0) == 1, "\(String(describing: hog))")
    }

    @Test func twentyBusyRulesAllProgressAndABenignHandlerWaitsAtMostASliceForEach() async throws {
        var rules = ["benign": Self.benign]
        let names = (1...20).map { "busy\($0)" }
        for name in names { rules[name] = Self.busy(name) }
        let engine = try await Engine(rules: rules)
        defer { engine.stop() }
        // 200 hooks a second for rules that finish about 40 runs a second between them.
        let feeder = Self.feed(engine, names, every: .milliseconds(100))
        defer { feeder.cancel() }
        _ = try await eventually { (try await engine.state("busy20")["runs"] as? Int ?? 0) >= 2 }
        var before: [String: Int] = [:]
        for name in names { before[name] = try await engine.state(name)["runs"] as? Int ?? 0 }

        let (acks, handled) = try await Self.pings(engine, from: 1000)
        var progressed = 0
        for name in names where (try await engine.state(name)["runs"] as? Int ?? 0) > before[name]! { progressed += 1 }
        print("isolation, 20 busy rules: hook ack p99 \(Self.percentile(acks, 0.99) * 1000) ms; handler done after the ack p50 "
              + "\(Self.percentile(handled, 0.5) * 1000) ms p99 \(Self.percentile(handled, 0.99) * 1000) ms; \(progressed) of 20 progressed")
        #expect(Self.percentile(acks, 0.99) <= 0.010)
        #expect(progressed == 20)
        // One slice (10 ms) for each busy rule.
        #expect(Self.percentile(handled, 0.99) <= 0.010 * 20)
    }
}
