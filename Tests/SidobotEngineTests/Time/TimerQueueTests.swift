import Testing
@testable import SidobotEngine

private func at(_ milliseconds: Int64) -> UnixTime { UnixTime(milliseconds: milliseconds) }
private func id(_ raw: UInt64) -> TimerID { TimerID(raw) }
private let forever = UnixTime(milliseconds: .max)

@Suite("TimerQueue")
struct TimerQueueTests {
    @Test("pops in due order, ties in insertion order")
    func ordering() {
        var queue = TimerQueue()
        queue.schedule(id(1), due: at(300))
        queue.schedule(id(2), due: at(100))
        queue.schedule(id(9), due: at(200))
        queue.schedule(id(5), due: at(200))
        queue.schedule(id(3), due: at(200))
        queue.schedule(id(4), due: at(100))
        #expect(queue.count == 6)
        #expect(queue.next == TimerQueue.Entry(id: id(2), due: at(100)))
        #expect(queue.popAll(dueBy: forever).map(\.id.rawValue) == [2, 4, 9, 5, 3, 1])
        #expect(queue.isEmpty)
        #expect(queue.next == nil)
    }

    @Test("popNext and popAll take only what is due by now")
    func dueByNow() {
        var queue = TimerQueue()
        for raw in 1...5 { queue.schedule(id(UInt64(raw)), due: at(Int64(raw) * 1000)) }
        #expect(queue.popNext(dueBy: at(999)) == nil)
        #expect(queue.popNext(dueBy: at(1000)) == TimerQueue.Entry(id: id(1), due: at(1000)))
        #expect(queue.popAll(dueBy: at(3500)).map(\.id) == [id(2), id(3)])
        #expect(queue.popAll(dueBy: at(3500)).isEmpty)
        #expect(queue.count == 2)
        #expect(queue.contains(id(4)) && !queue.contains(id(3)))
        #expect(queue.next?.due == at(4000))
    }

    @Test("cancel: true once, then false; the next timer moves up")
    func cancel() {
        var queue = TimerQueue()
        queue.schedule(id(1), due: at(10))
        queue.schedule(id(2), due: at(20))
        queue.schedule(id(3), due: at(30))
        let cancelledOnce = queue.cancel(id(2))
        #expect(cancelledOnce)
        let cancelledTwice = queue.cancel(id(2))
        #expect(!cancelledTwice)
        let cancelledUnknown = queue.cancel(id(99))
        #expect(!cancelledUnknown)
        #expect(!queue.contains(id(2)))
        #expect(queue.count == 2)
        let cancelledHead = queue.cancel(id(1))
        #expect(cancelledHead)          // the head
        #expect(queue.next == TimerQueue.Entry(id: id(3), due: at(30)))
        #expect(queue.popAll(dueBy: forever).map(\.id) == [id(3)])
        let cancelledFired = queue.cancel(id(3))
        #expect(!cancelledFired)         // already fired
        #expect(queue.storageCount == 0)
    }

    @Test("the head is never a cancelled timer")
    func headIsLive() {
        var queue = TimerQueue()
        for raw in 1...10 { queue.schedule(id(UInt64(raw)), due: at(Int64(raw))) }
        for raw in [2, 3, 4] { queue.cancel(id(UInt64(raw))) }
        queue.cancel(id(1))
        #expect(queue.next?.id == id(5))
        #expect(queue.storageCount == 6)
    }

    @Test("re-scheduling an id replaces it and puts it behind equal due times")
    func reschedule() {
        var queue = TimerQueue()
        let replacedNew = queue.schedule(id(1), due: at(100))
        #expect(!replacedNew)
        queue.schedule(id(2), due: at(100))
        let replacedPending = queue.schedule(id(1), due: at(100))
        #expect(replacedPending)
        #expect(queue.count == 2)
        #expect(queue.popAll(dueBy: forever).map(\.id) == [id(2), id(1)])

        queue.schedule(id(7), due: at(50))
        queue.schedule(id(8), due: at(60))
        queue.schedule(id(7), due: at(70))
        #expect(queue.sortedEntries() == [TimerQueue.Entry(id: id(8), due: at(60)), TimerQueue.Entry(id: id(7), due: at(70))])
    }

    @Test("an id cancelled and scheduled again fires once, at its new time")
    func cancelThenReuse() {
        var queue = TimerQueue()
        queue.schedule(id(1), due: at(10))
        queue.schedule(id(2), due: at(20))
        queue.schedule(id(3), due: at(30))
        queue.cancel(id(2))                  // dead node stays in the heap (not at the top)
        queue.schedule(id(2), due: at(40))
        #expect(queue.storageCount == 3)
        #expect(queue.popAll(dueBy: forever) == [
            TimerQueue.Entry(id: id(1), due: at(10)),
            TimerQueue.Entry(id: id(3), due: at(30)),
            TimerQueue.Entry(id: id(2), due: at(40)),
        ])
    }

    @Test("lazy deletion does not leak: dead nodes stay bounded by the live ones")
    func noLeak() {
        var queue = TimerQueue()
        // Far-future keepers at the top of the heap keep cancelled nodes from being popped off.
        for raw in 0..<100 { queue.schedule(id(UInt64(raw)), due: at(0)) }
        var next: UInt64 = 1000
        for round in 0..<200 {
            for _ in 0..<500 {
                queue.schedule(id(next), due: at(1_000_000 + Int64(next)))
                next += 1
            }
            for raw in (next - 500)..<next { queue.cancel(id(raw)) }
            #expect(queue.count == 100)
            #expect(queue.storageCount <= 2 * queue.count + 1024 + 1, "round \(round): \(queue.storageCount) nodes")
        }
        #expect(queue.popAll(dueBy: forever).count == 100)
        #expect(queue.storageCount == 0)
        #expect(queue.approximateMemoryBytes < 200_000)
    }

    @Test("memory is given back after a burst drains")
    func shrinks() {
        var queue = TimerQueue()
        for raw in 0..<100_000 { queue.schedule(id(UInt64(raw)), due: at(Int64(raw))) }
        let peak = queue.approximateMemoryBytes
        #expect(peak < 100 * 100_000)
        _ = queue.popAll(dueBy: at(99_900))
        #expect(queue.count == 99)
        #expect(queue.approximateMemoryBytes < peak / 8)
        #expect(queue.popAll(dueBy: forever).map(\.id.rawValue) == Array(99_901..<100_000))
    }

    @Test("TimerID as rules see it: t-42")
    func timerIDs() {
        #expect(TimerID(42).description == "t-42")
        #expect(TimerID("t-42") == TimerID(42))
        #expect(TimerID("t-18446744073709551615") == TimerID(.max))
        for bad in ["", "t-", "42", "t42", "t-+1", "t--1", "t-1.5", "T-1", "t-18446744073709551616", " t-1"] {
            #expect(TimerID(bad) == nil, "\(bad)")
        }
        #expect(TimerID(1) < TimerID(2))
    }

    /// Random operations against a plain sorted array, with a fixed seed.
    @Test("behaves like a sorted array (seeded random operations)", arguments: [1, 2, 3] as [UInt64])
    func modelCheck(seed: UInt64) {
        struct ModelTimer: Equatable {
            var id: UInt64
            var due: Int64
            var sequence: Int
        }
        var random = TimeTestRandom(seed: seed)
        var queue = TimerQueue()
        var model: [ModelTimer] = []   // kept sorted by (due, sequence)
        var sequence = 0
        var nextID: UInt64 = 1
        var now: Int64 = 0

        func insertIntoModel(_ timer: ModelTimer) {
            let index = model.firstIndex { ($0.due, $0.sequence) > (timer.due, timer.sequence) } ?? model.count
            model.insert(timer, at: index)
        }

        for step in 0..<20_000 {
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<45:
                // New timer; small due range so ties are common.
                let due = now + Int64.random(in: 0..<200, using: &random)
                let raw = nextID
                nextID += 1
                let replaced = queue.schedule(TimerID(raw), due: UnixTime(milliseconds: due))
                #expect(!replaced)
                insertIntoModel(ModelTimer(id: raw, due: due, sequence: sequence))
                sequence += 1
            case 45..<50:
                // Re-schedule an id: pending, or one seen before (fired or cancelled), or never seen.
                let raw = UInt64.random(in: 1...(nextID + 2), using: &random)
                let due = now + Int64.random(in: 0..<200, using: &random)
                let wasPending = model.contains { $0.id == raw }
                model.removeAll { $0.id == raw }
                let replaced = queue.schedule(TimerID(raw), due: UnixTime(milliseconds: due))
                #expect(replaced == wasPending, "step \(step)")
                insertIntoModel(ModelTimer(id: raw, due: due, sequence: sequence))
                sequence += 1
                nextID = max(nextID, raw + 1)
            case 50..<75:
                let raw = UInt64.random(in: 1...max(1, nextID), using: &random)
                let wasPending = model.contains { $0.id == raw }
                model.removeAll { $0.id == raw }
                let cancelled = queue.cancel(TimerID(raw))
                #expect(cancelled == wasPending, "step \(step)")
            case 75..<90:
                now += Int64.random(in: 0..<40, using: &random)
                let expected = model.prefix { $0.due <= now }
                model.removeFirst(expected.count)
                let popped = queue.popAll(dueBy: UnixTime(milliseconds: now))
                #expect(popped.map(\.id.rawValue) == expected.map(\.id), "step \(step)")
                #expect(popped.map(\.due.milliseconds) == expected.map(\.due), "step \(step)")
            default:
                if let entry = queue.popNext(dueBy: UnixTime(milliseconds: now)) {
                    let first = model.removeFirst()
                    #expect(entry.id.rawValue == first.id && entry.due.milliseconds == first.due, "step \(step)")
                } else {
                    #expect(model.first.map { $0.due > now } ?? true, "step \(step)")
                }
            }
            #expect(queue.count == model.count)
            #expect(queue.next?.id.rawValue == model.first?.id)
            #expect(queue.next?.due.milliseconds == model.first?.due)
            #expect(queue.storageCount <= 2 * queue.count + 1025)
            if step % 1000 == 0 {
                #expect(queue.sortedEntries().map(\.id.rawValue) == model.map(\.id))
                for timer in model.prefix(20) { #expect(queue.contains(TimerID(timer.id))) }
            }
        }
        #expect(queue.popAll(dueBy: forever).map(\.id.rawValue) == model.map(\.id))
    }
}
