#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import LuaSandbox
import Sidobe
import SidobotEngine

/// glibc's `malloc_trim(3)` (not in Swift's Glibc module): returns freed heap memory to the system.
@_silgen_name("malloc_trim")
private func mallocTrim(_ pad: Int) -> Int32

/// `memory`: what one record of each long-lived store costs, as RSS growth per record after
/// `malloc_trim`, for `count` records of each (default 1M), each store filled alone in a fresh
/// structure and kept alive while measured. One figure a line (`dedupe_bytes_per_id=N`, …), the
/// form issue 18 asks for, so that a change to a store's layout shows in one number.
enum MemoryBench {
    static let known = ["count": "records of each store (default 1000000)"]

    static func main(_ args: [String]) async -> Int32 {
        await runBench(args, mode: "memory", known: known) { options in
            run(count: try options.int("count", 1_000_000))
        }
    }

    /// Resident bytes now, after returning freed memory to the system.
    static func residentBytes() -> Int {
        _ = mallocTrim(0)
        return ProcessMemory.residentBytes() ?? 0
    }

    /// Bytes per record: RSS after `fill` (whose result is kept alive) minus RSS before, over `count`.
    static func measure<Kept>(_ count: Int, _ fill: () -> Kept) -> Int {
        let before = residentBytes()
        let kept = fill()
        let after = residentBytes()
        withExtendedLifetime(kept) {}
        return max(0, after - before) / max(1, count)
    }

    static func run(count: Int) {
        // Webhook ids as Sidobe sends them (UUIDs), remembered for the dedupe window.
        let ids = (0..<count).map { _ in UUID().uuidString.lowercased() }
        let dedupe = measure(count) { () -> DedupeSet in
            var set = DedupeSet(retention: 7 * 86_400)
            for (index, id) in ids.enumerated() { _ = set.insert(id, at: 1_780_000_000 + Double(index) / 1000) }
            return set
        }
        print("dedupe_bytes_per_id=\(dedupe)")

        // Ledger messages with a 60-byte text, sent and then delivered (two history entries).
        let text = String(repeating: "Your order 1234 has shipped and arrives tomorrow. Thanks!!", count: 1).padding(toLength: 60, withPad: ".", startingAt: 0)
        let ledger = measure(count) { () -> MessageLedger in
            var ledger = MessageLedger()
            for index in 0..<count {
                let id = ids[index]
                ledger.insert(MessageRecord(id: id, phone: "+6281\(String(format: "%08d", index))", message: text, imageURL: nil, documentURL: nil,
                                            documentName: nil, messageType: .text, rule: "orders", key: "order:\(index)", attempt: 1,
                                            resendOf: nil, status: .pending, sentAt: 1_780_000_000 + Double(index) / 100, source: .send))
                _ = ledger.apply(status: .success, to: id, at: 1_780_000_001 + Double(index) / 100, source: .webhook)
            }
            return ledger
        }
        print("ledger_bytes_per_message=\(ledger)")

        // Pending timers with a small payload, as `timer.after("1d", "followup", { phone = ... })` makes them.
        let timers = measure(count) { () -> TimerStore in
            var store = TimerStore()
            for index in 0..<count {
                let record = try! TimerRecord(id: store.allocateID(), rule: "followup", name: "followup",
                                              payload: .object(["phone": .string("+6281\(String(format: "%08d", index))")]),
                                              due: UnixTime(milliseconds: 1_780_000_000_000 + Int64(index)), createdAt: UnixTime(milliseconds: 1_780_000_000_000),
                                              late: .default)
                store.add(record)
            }
            return store
        }
        print("timer_bytes=\(timers)")

        // State keys with a small table value, as `state.set("customer:" .. i, { n = i, vip = ... })`.
        let state = measure(count) { () -> RuleStateStore in
            var store = RuleStateStore()
            for index in 0..<count {
                store.set(rule: "customers", key: "customer:\(index)",
                          entry: StateEntry(value: .object(["n": .integer(Int64(index)), "vip": .bool(index % 7 == 0)]), expiresAt: nil))
            }
            return store
        }
        print("state_bytes_per_key=\(state)")
        print("(RSS growth after malloc_trim per record, \(Format.int(Double(count))) records of each, each store alone; traces are capped by size: 64 MiB)")
    }
}
