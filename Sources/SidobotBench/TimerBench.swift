import CoreMetrics
import Foundation
import LuaSandbox
import SidobotEngine
import Synchronization

/// `timers`: (1) a rule schedules 1M timers in one handler run (timer.after, journal under
/// everysec): time and the process's RSS growth; (2) on the real clock, timers due at 10k/s for a
/// few seconds fire into a trivial handler: how late, from the engine's own lateness metric.
enum TimerBench {
    static let known = [
        "timers": "timers scheduled in part 1 (default 1000000)",
        "rate": "fires per second in part 2 (default 10000)",
        "seconds": "seconds of firing in part 2 (default 5)",
        "only": "schedule | store | fire",
    ]

    static let scheduleRule = #"""
        on("hook.schedule", function(ev)
          for i = 1, ev.body.count do
            timer.after(86400 + i % 3600, "later", { n = i })
          end
        end)
        on("timer.later", function(ev) end)
        """#

    static let fireRule = #"""
        on("hook.arm", function(ev)
          local start, rate = ev.body.start, ev.body.rate
          for i = 0, ev.body.count - 1 do
            timer.at(start + i / rate, "fire")
          end
        end)
        on("timer.fire", function(ev) end)
        """#

    static func main(_ args: [String]) async -> Int32 {
        await runBench(args, mode: "timers", known: known) { options in
            LatenessCapture.bootstrap()
            let only = options.string("only")
            if only == nil || only == "schedule" { try await schedule(count: try options.int("timers", 1_000_000)) }
            if only == nil || only == "store" { store(count: try options.int("timers", 1_000_000)) }
            if only == nil || only == "fire" {
                try await fire(rate: try options.int("rate", 10_000), seconds: try options.int("seconds", 5))
            }
        }
    }

    /// One run schedules them all: no budget, CPU or wall-clock limit may end it first (the CPU
    /// limit's 1 s default did, silently, until the bench checked what was pending).
    static func generousLimits(_ configuration: inout EngineConfiguration) {
        configuration.limits.instructionsPerRun = 4_000_000_000
        configuration.limits.cpuPerRun = .seconds(600)
        configuration.limits.timePerRun = .seconds(600)
    }

    static func schedule(count: Int) async throws {
        let harness = try await EngineHarness.start(label: "timers", rules: ["timers": scheduleRule], journal: .everysec,
                                                    configure: generousLimits)
        defer { harness.folder.remove() }
        ProcessMemory.trim()
        let before = ProcessMemory.residentBytes()
        let start = BenchClock.nanos()
        _ = try await harness.engine.acceptHook(name: "schedule", body: Array(#"{"count":\#(count)}"#.utf8), contentType: "application/json")
        await harness.engine.settle()
        let seconds = BenchClock.seconds(since: start)
        ProcessMemory.trim()
        let after = ProcessMemory.residentBytes()
        let pending = await harness.engine.pendingTimerCount
        guard pending == count else {
            let reason = await harness.engine.deadLetters().last?.error ?? "no dead letter"
            throw BenchFailure("the scheduling run ended early, \(pending) of \(count) timers pending: \(reason)")
        }
        let journal = (try? FileManager.default.attributesOfItem(atPath: harness.dataFolder! + "/journal.jsonl")[.size] as? Int) ?? 0
        print("timers: schedule \(Format.int(Double(count))) with timer.after in one handler run (journal everysec)")
        var table = Table(header: ["figure", "value", "target"])
        table.rows.append(["time to schedule", String(format: "%.2f s", seconds), "≤ 2 s"])
        table.rows.append(["rate", Format.int(Double(count) / seconds) + " timers/s", ""])
        table.rows.append(["pending afterwards", Format.int(Double(pending)), ""])
        table.rows.append(["process RSS before → after", "\(Format.mib(before)) → \(Format.mib(after))", ""])
        table.rows.append(["RSS growth", Format.mib(after - before), "≤ 300 MB"])
        table.rows.append(["RSS growth per timer", "\(Int(Double(after - before) / Double(max(1, count)))) B", ""])
        table.rows.append(["journal written", Format.mib(journal), ""])
        print(table.render())
        await harness.stop()
    }

    /// The timer store alone (the records' persistent map and the due-time queue), as the engine
    /// fills it: the floor under the Lua path above.
    static func store(count: Int) {
        ProcessMemory.trim()
        let before = ProcessMemory.residentBytes()
        let start = BenchClock.nanos()
        var timers = TimerStore()
        let now = UnixTime(seconds: 1_767_225_600)
        for i in 0..<count {
            let id = timers.allocateID()
            timers.add(try! TimerRecord(id: id, rule: "timers", name: "later", payload: .object(["n": .integer(Int64(i))]),
                                        due: now + .seconds(86_400 + Int64(i % 3600)), createdAt: now, late: TimerLatePolicy()))
        }
        let seconds = BenchClock.seconds(since: start)
        ProcessMemory.trim()
        let after = ProcessMemory.residentBytes()
        print("timers: the store alone, \(Format.int(Double(count))) TimerStore.add (records + due-time queue), no Lua, no journal")
        var table = Table(header: ["figure", "value"])
        table.rows.append(["time", String(format: "%.2f s (%.0f ns each)", seconds, seconds / Double(count) * 1e9)])
        table.rows.append(["RSS growth", "\(Format.mib(after - before)) (\(Int(Double(after - before) / Double(max(1, count)))) B per timer)"])
        print(table.render())
        withExtendedLifetime(timers) {}
    }

    static func fire(rate: Int, seconds: Int) async throws {
        let harness = try await EngineHarness.start(label: "timers-fire", rules: ["timers": fireRule], journal: .everysec,
                                                    configure: generousLimits)
        defer { harness.folder.remove() }
        let count = rate * seconds
        let start = Date().timeIntervalSince1970 + 2
        LatenessCapture.reset()
        _ = try await harness.engine.acceptHook(
            name: "arm", body: Array(#"{"start":\#(start),"rate":\#(rate),"count":\#(count)}"#.utf8), contentType: "application/json")
        await harness.engine.settle()
        let armed = Date().timeIntervalSince1970
        guard armed < start else { throw BenchFailure("arming \(count) timers took longer than the 2 s lead; lower --rate or --seconds") }
        // Wait (real time) until the last one is due, then for the stragglers.
        let waitUntil = start + Double(count) / Double(rate)
        while Date().timeIntervalSince1970 < waitUntil { try await Task.sleep(for: .milliseconds(100)) }
        var waited = 0
        while LatenessCapture.count < count && waited < 100 {
            try await Task.sleep(for: .milliseconds(100))
            waited += 1
        }
        let lateness = LatenessCapture.values().map { Double($0) / 1e6 }
        print("timers: \(Format.int(Double(count))) timers due at \(Format.int(Double(rate)))/s for \(seconds) s on the real clock, trivial handler (journal everysec)")
        var table = Table(header: ["figure", "value", "target"])
        table.rows.append(["fired", "\(Format.int(Double(lateness.count))) of \(Format.int(Double(count)))", ""])
        table.rows.append(["lateness p50", String(format: "%.1f ms", Percentiles.of(lateness, 50)), ""])
        table.rows.append(["lateness p99", String(format: "%.1f ms", Percentiles.of(lateness, 99)), "≤ 10 ms"])
        table.rows.append(["lateness max", String(format: "%.1f ms", lateness.max() ?? 0), ""])
        print(table.render())
        print("(lateness is the engine's sidobot_timer_lateness_seconds: fire time − due time, in whole milliseconds)")
        await harness.stop()
    }
}

/// Keeps every `sidobot_timer_lateness_seconds` recording (nanoseconds), through swift-metrics.
enum LatenessCapture {
    static let recorded = Mutex<[Int64]>([])

    static func bootstrap() {
        MetricsSystem.bootstrap(Factory())
    }

    static func reset() { recorded.withLock { $0.removeAll(keepingCapacity: true) } }
    static var count: Int { recorded.withLock { $0.count } }
    static func values() -> [Int64] { recorded.withLock { $0 } }

    final class Handler: TimerHandler {
        func recordNanoseconds(_ duration: Int64) { LatenessCapture.recorded.withLock { $0.append(duration) } }
    }

    struct Factory: MetricsFactory {
        func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { NOOPMetricsHandler.instance }
        func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { NOOPMetricsHandler.instance }
        func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
            label == "sidobot_timer_lateness_seconds" ? Handler() : NOOPMetricsHandler.instance
        }
        func destroyCounter(_ handler: any CounterHandler) {}
        func destroyRecorder(_ handler: any RecorderHandler) {}
        func destroyTimer(_ handler: any TimerHandler) {}
    }
}
