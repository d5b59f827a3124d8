import Foundation
import LuaSandbox
import Sidobe
@_spi(Benchmarks) import SidobotEngine

/// `dispatch`: events/s from acceptance through the dispatcher into one trivial Lua handler, in
/// process, beside the direct C-API loop of `lua-dispatch` in the same run.
enum DispatchBench {
    static let known = [
        "events": "events per round (default 200000)",
        "rounds": "rounds; the best of each variant is reported (default 3)",
        "only": "dispatcher | batch-memory | batch-journal | one-hop (for profiling one variant)",
    ]

    static let rule = #"on("message.status", function(ev) local s = ev.status end)"#

    static func main(_ args: [String]) async -> Int32 {
        await runBench(args, mode: "dispatch", known: known) { options in
            let events = try options.int("events", 200_000)
            let rounds = try options.int("rounds", 3)
            let direct = try LuaDispatchBench.DirectLoop()
            _ = direct.measure(calls: events / 10)
            var best: [String: Double] = [:]
            let keys = ["dispatcher": "dispatcher only", "batch-memory": "batch, memory", "batch-journal": "batch, journal",
                        "one-hop": "one hop each, memory"]
            var variants = ["dispatcher only", "batch, memory", "batch, journal", "one hop each, memory"]
            if let only = options.string("only") {
                guard let variant = keys[only] else { throw BenchUsageError(mode: "dispatch", known: known, problem: "--only \(only)?") }
                variants = [variant]
            }
            for round in 1...max(1, rounds) {
                best["direct", default: 0] = max(best["direct", default: 0], direct.measure(calls: events))
                for variant in variants {
                    let rate = try await measure(variant: variant, events: events, round: round)
                    best[variant, default: 0] = max(best[variant, default: 0], rate)
                }
            }
            let base = best["direct"] ?? 1
            var table = Table(header: ["variant", "events/s", "vs direct C loop"])
            table.rows.append(["direct C API loop (lua-dispatch (1)): table + pcall", Format.int(base), "1.00"])
            let names = [
                "dispatcher only": "engine: dispatcher alone (route, trace, run, finish)",
                "batch, memory": "engine: acceptWebhooks(batch), in-memory store",
                "batch, journal": "engine: acceptWebhooks(batch), journal (everysec)",
                "one hop each, memory": "engine: await acceptWebhook per event, in-memory",
            ]
            for variant in variants {
                let rate = best[variant] ?? 0
                guard rate > 0 else { continue }
                table.rows.append([names[variant]!, Format.int(rate), Format.fixed(rate / base)])
            }
            print("dispatch: \(events) events per round, best of \(rounds); each event: dedupe, route, trace, one Lua run, done")
            print(table.render())
            print("target: ≥ 0.50 of the direct loop")
        }
    }

    static func measure(variant: String, events: Int, round: Int) async throws -> Double {
        let harness = try await EngineHarness.start(label: "dispatch", rules: ["trivial": rule],
                                                    journal: variant.contains("journal") ? .everysec : nil)
        defer { harness.folder.remove() }
        let batch = Webhooks.make(events, prefix: "r\(round)-\(variant.hashValue & 0xffff)")
        let engine = harness.engine
        let start = BenchClock.nanos()
        if variant.hasPrefix("one hop") {
            for webhook in batch { _ = try await engine.acceptWebhook(webhook) }
        } else if variant.hasPrefix("dispatcher") {
            var index = 0
            while index < batch.count {
                let end = min(batch.count, index + 1024)
                await engine.dispatchWithoutAcceptance(Array(batch[index..<end]))
                index = end
            }
        } else {
            // In chunks, as an ingress batching concurrent requests would hand them over.
            var index = 0
            while index < batch.count {
                let end = min(batch.count, index + 1024)
                _ = try await engine.acceptWebhooks(Array(batch[index..<end]))
                index = end
            }
        }
        await engine.settle()
        let seconds = BenchClock.seconds(since: start)
        try? await engine.shutdown(deadline: 5)
        return Double(events) / seconds
    }
}
