import Foundation
import HeapModule
import LuaSandbox
import SidobotEngine

/// `ttl`: the state store's expiry index alone: keys set with a TTL (each an entry in the expiry
/// heap), then swept once they expired (each sweep costs what expired). The best of `rounds`.
/// Then the heap alone against the hand-written binary heap it replaced (issue 14 asked for the
/// comparison): the same expiries pushed and popped through each.
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

        let entries = (0..<keys).map { Expiry(at: expiries[$0], rule: "r", key: keyNames[$0]) }
        var library = (push: Double.infinity, pop: Double.infinity), handWritten = library
        for _ in 0..<max(1, rounds) {
            var heap = Heap<Expiry>()
            var start = BenchClock.nanos()
            for entry in entries { heap.insert(entry) }
            library.push = min(library.push, BenchClock.seconds(since: start))
            start = BenchClock.nanos()
            var last = Int64.min
            while let top = heap.popMin() { precondition(top.at >= last); last = top.at }
            library.pop = min(library.pop, BenchClock.seconds(since: start))

            var binary = HandWrittenHeap()
            start = BenchClock.nanos()
            for entry in entries { binary.push(entry) }
            handWritten.push = min(handWritten.push, BenchClock.seconds(since: start))
            start = BenchClock.nanos()
            last = Int64.min
            while let top = binary.top { precondition(top.at >= last); last = top.at; binary.pop() }
            handWritten.pop = min(handWritten.pop, BenchClock.seconds(since: start))
        }
        func ms(_ seconds: Double) -> String { String(format: "%.0f ms", seconds * 1000) }
        print("ttl: the heap alone, \(Format.int(Double(keys))) expiries pushed then popped: swift-collections Heap "
              + "\(ms(library.push)) + \(ms(library.pop)); the hand-written binary heap of e757ba3 \(ms(handWritten.push)) + \(ms(handWritten.pop)), best of \(rounds)")
    }

    /// The element of the store's expiry heap (`Expiry` in SidobotEngine), restated: ordered by time.
    struct Expiry: Comparable {
        var at: Int64
        var rule: String
        var key: String
        static func < (a: Expiry, b: Expiry) -> Bool { a.at < b.at }
        static func == (a: Expiry, b: Expiry) -> Bool { a.at == b.at }
    }

    /// The binary min-heap the store used before swift-collections' `Heap` (e757ba3's
    /// `ExpiryHeap`), kept here only to compare the two.
    struct HandWrittenHeap {
        private var items: [Expiry] = []
        var top: Expiry? { items.first }

        mutating func push(_ entry: Expiry) {
            items.append(entry)
            var child = items.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard items[child].at < items[parent].at else { break }
                items.swapAt(child, parent)
                child = parent
            }
        }

        mutating func pop() {
            guard !items.isEmpty else { return }
            items.swapAt(0, items.count - 1)
            items.removeLast()
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count, items[left].at < items[smallest].at { smallest = left }
                if right < items.count, items[right].at < items[smallest].at { smallest = right }
                guard smallest != parent else { return }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
    }
}
