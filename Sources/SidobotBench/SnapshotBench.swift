import Foundation
import LuaSandbox
import Sidobe
import SidobotEngine

/// `snapshot`: 1M state keys (written by a rule, journal under everysec), then: the time to take a
/// snapshot, the longest webhook acceptance while one is taken under load, and the time a new
/// engine takes to restore from the data folder.
enum SnapshotBench {
    static let known = [
        "keys": "state keys (default 1000000)",
        "load-seconds": "seconds of webhook load around the timed snapshot (default 1)",
        "load-rate": "webhooks a second of that load (default 0: back to back, as fast as they are accepted)",
    ]

    static let rule = #"""
        on("hook.fill", function(ev)
          for i = ev.body.from, ev.body.to do
            state.set("customer:" .. i, { n = i, name = "customer number " .. i, vip = i % 7 == 0 })
          end
        end)
        """#

    static func main(_ args: [String]) async -> Int32 {
        await runBench(args, mode: "snapshot", known: known) { options in
            try await run(keys: try options.int("keys", 1_000_000), loadSeconds: try options.double("load-seconds", 1),
                          loadRate: try options.double("load-rate", 0))
        }
    }

    static func run(keys: Int, loadSeconds: Double, loadRate: Double) async throws {
        let folder = try TempFolder("snapshot")
        defer { folder.remove() }
        let harness = try await EngineHarness.start(label: "snapshot", rules: ["fill": rule], journal: .everysec, folder: folder,
                                                    configure: TimerBench.generousLimits)
        let engine = harness.engine
        print("snapshot: filling \(Format.int(Double(keys))) state keys through state.set (journal everysec)…")
        let fillStart = BenchClock.nanos()
        var from = 1
        while from <= keys {
            let to = min(keys, from + 99_999)
            _ = try await engine.acceptHook(name: "fill", body: Array(#"{"from":\#(from),"to":\#(to)}"#.utf8), contentType: "application/json")
            await engine.settle()
            from = to + 1
        }
        let fillSeconds = BenchClock.seconds(since: fillStart)
        let stored = await engine.stateKeyCount(rule: "fill")

        // 1. A snapshot with nothing else going on.
        let quietStart = BenchClock.nanos()
        await engine.takeSnapshot()
        let quietSeconds = BenchClock.seconds(since: quietStart)
        let snapshotBytes = (try? FileManager.default.attributesOfItem(atPath: harness.dataFolder! + "/snapshot.json")[.size] as? Int) ?? 0

        // 2. A snapshot under load: webhooks accepted back to back, each acceptance timed.
        let load = Task.detached { () -> [(start: UInt64, latency: UInt64)] in
            var samples: [(start: UInt64, latency: UInt64)] = []
            samples.reserveCapacity(1 << 20)
            var n = 0
            let begin = BenchClock.nanos()
            let until = begin + UInt64((loadSeconds * 2 + 0.5) * 1e9)
            while BenchClock.nanos() < until && !Task.isCancelled {
                // Paced: the same webhooks a second whichever build accepts them, so builds that
                // accept at different speeds are compared under the same load.
                if loadRate > 0, Double(n) >= loadRate * Double(BenchClock.nanos() - begin) / 1e9 {
                    try? await Task.sleep(for: .microseconds(100))
                    continue
                }
                let webhook = Webhooks.make(1, prefix: "load-\(n)")[0]
                n += 1
                let t0 = BenchClock.nanos()
                _ = try? await engine.acceptWebhook(webhook)
                samples.append((t0, BenchClock.nanos() - t0))
            }
            return samples
        }
        try await Task.sleep(for: .milliseconds(Int(loadSeconds * 1000)))
        let loadedStart = BenchClock.nanos()
        await engine.takeSnapshot()
        let loadedEnd = BenchClock.nanos()
        let samples = await load.value
        let during = samples.filter { $0.start + $0.latency >= loadedStart && $0.start <= loadedEnd }.map(\.latency)
        let outside = samples.filter { $0.start + $0.latency < loadedStart || $0.start > loadedEnd }.map(\.latency)
        let stall = Double(during.max() ?? 0) / 1e6
        let duringMs = during.map { Double($0) / 1e6 }
        let over10 = duringMs.filter { $0 > 10 }.count
        let baseline = Double(outside.max() ?? 0) / 1e6
        let p99Outside = Percentiles.of(outside.map { Double($0) / 1e6 }, 99)

        // 3. Restore: a new engine on the same data folder (after a clean stop, which snapshots too).
        try await engine.shutdown(deadline: 5)
        let restoreStart = BenchClock.nanos()
        let restored = try await EngineHarness.start(label: "snapshot", rules: ["fill": rule], journal: .everysec, folder: folder,
                                                     configure: TimerBench.generousLimits)
        let restoreSeconds = BenchClock.seconds(since: restoreStart)
        let restoredKeys = await restored.engine.stateKeyCount(rule: "fill")
        try await restored.engine.shutdown(deadline: 5)

        print("snapshot: \(Format.int(Double(stored))) state keys (filled in \(String(format: "%.1f", fillSeconds)) s), snapshot.json \(Format.mib(snapshotBytes))")
        var table = Table(header: ["figure", "value", "target"])
        table.rows.append(["snapshot (copy, encode, write, fsync, compact journal)", String(format: "%.2f s", quietSeconds), "≤ 2 s"])
        table.rows.append(["snapshot under load", String(format: "%.2f s", Double(loadedEnd - loadedStart) / 1e9), ""])
        table.rows.append(["longest acceptance during it (stall)", String(format: "%.2f ms", stall), "≤ 10 ms"])
        table.rows.append(["acceptances during it: p99, p99.9, over 10 ms",
                           String(format: "%.3f ms, %.3f ms, %d", Percentiles.of(duringMs, 99), Percentiles.of(duringMs, 99.9), over10), ""])
        table.rows.append(["longest acceptance outside it", String(format: "%.2f ms (p99 %.3f ms)", baseline, p99Outside), ""])
        table.rows.append(["webhooks accepted during it", Format.int(Double(during.count)), ""])
        table.rows.append(["restore (new engine: snapshot + journal + rules)", String(format: "%.2f s", restoreSeconds), "≤ 3 s"])
        table.rows.append(["keys after restore", Format.int(Double(restoredKeys)), ""])
        print(table.render())
    }
}
