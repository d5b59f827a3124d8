import Foundation
import LuaSandbox
import SidobotEngine

/// `ttl`: the state store's expiry index alone: keys set with a TTL (each an entry in the expiry
/// heap), then swept once they expired (each sweep costs what expired). The best of `rounds`.
enum TTLBench {
    static let known = [
        "keys": "keys set with a TTL (default 1000000)",
        "rounds": "rounds, the best is printed (default 5)",
    ]

    static func main(_ args: [String]) async -> Int32 {
        await runBench(args, mode: "ttl", known: known) { options in
            run(keys: try options.int("keys", 1_000_000), rounds: try options.int("rounds", 5))
        }
    }

    static func run(keys: Int, rounds: Int) {
        var bestSet = Double.infinity, bestSweep = Double.infinity
        // Expiry times in a random order, as keys set by many events with different TTLs are.
        var generator = SystemRandomNumberGenerator()
        let expiries = (0..<keys).map { _ in Int64.random(in: 1...3_600_000, using: &generator) }
        let keyNames = (0..<keys).map { "k\($0)" }
        for _ in 0..<max(1, rounds) {
            var store = RuleStateStore()
            let setStart = BenchClock.nanos()
            for index in 0..<keys {
                store.set(rule: "r", key: keyNames[index], entry: StateEntry(value: .integer(1), expiresAt: UnixTime(milliseconds: expiries[index])))
            }
            bestSet = min(bestSet, BenchClock.seconds(since: setStart))
            let sweepStart = BenchClock.nanos()
            let removed = store.sweep(now: UnixTime(milliseconds: 3_600_001))
            bestSweep = min(bestSweep, BenchClock.seconds(since: sweepStart))
            precondition(removed == keys, "the sweep removed \(removed) of \(keys)")
        }
        print("ttl: \(Format.int(Double(keys))) keys with a TTL: set \(String(format: "%.0f", bestSet * 1000)) ms, "
              + "swept \(String(format: "%.0f", bestSweep * 1000)) ms (\(String(format: "%.0f", bestSweep / Double(keys) * 1e9)) ns a key), best of \(rounds)")
    }
}
