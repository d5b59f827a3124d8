import Foundation
import LuaSandbox
@testable import SidobotEngine
import Testing

/// The journal's hot records are written field by field (`appendJournalRecord`); replay reads them
/// through `JSONCodec` and `Mutation(journalValue:)`. These tests hold the two forms together.
@Suite("Journal records written directly")
struct JournalRecordTests {
    /// A small deterministic generator (SplitMix64), so a failure names its seed.
    struct Seeded {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
        mutating func text() -> String {
            let pieces = ["a", "é", "\"", "\\", "\n", "\u{1}", "😀", "x y", "/", "\t"]
            return (0..<int(5)).map { _ in pieces[int(pieces.count)] }.joined()
        }
        mutating func value(depth: Int = 0) -> LuaValue {
            switch int(depth > 2 ? 5 : 7) {
            case 0: return .bool(int(2) == 0)
            case 1: return .integer(Int64(bitPattern: next()) >> Int64(int(60)))
            case 2: return .double(Double(int(100_000)) / 64 - 700)
            case 3, 4: return .string(text())
            case 5: return .array((0..<int(3)).map { _ in value(depth: depth + 1) })
            default:
                var fields: [String: LuaValue] = [:]
                for _ in 0..<int(4) { fields["k" + text()] = value(depth: depth + 1) }
                return .object(fields)
            }
        }
    }

    static func mutation(_ g: inout Seeded) -> Mutation {
        let at = UnixTime(milliseconds: Int64(g.int(2_000_000_000_000)))
        let timer = try! TimerRecord(id: TimerID(UInt64(g.int(1_000_000) + 1)), rule: "r" + g.text(), name: "t" + g.text(), payload: g.value(),
                                due: at, createdAt: at, late: TimerLatePolicy(mode: g.int(2) == 0 ? .fire : .skip))
        let events: [EngineEvent.Kind] = [
            .messageStatus(MessageStatusEvent(messageID: g.text(), status: .failed, messageType: .text, sendAt: g.text(), createdAt: g.text(),
                                              stale: g.int(2) == 0)),
            .hook(name: "h" + g.text(), body: g.value(), contentType: g.text()),
            .timer(timer),
            .schedule(rule: g.text(), handler: g.text(), scheduledAt: at),
            .custom(name: "c." + g.text(), payload: g.value(), fromRule: g.int(2) == 0 ? nil : g.text()),
            .sidobe(type: "T" + g.text(), data: g.value(), createdAt: g.text()),
        ]
        switch g.int(10) {
        case 0: return .stateSet(rule: g.text(), key: "k" + g.text(), entry: StateEntry(value: g.value(), expiresAt: g.int(2) == 0 ? nil : at))
        case 1: return .stateDelete(rule: g.text(), key: g.text())
        case 2: return .timerAdded(timer)
        case 3: return .timerRemoved(timer.id, how: g.int(2) == 0 ? .cancelled : .skipped)
        case 4: return .eventAccepted(EngineEvent(id: "e" + g.text(), kind: events[g.int(events.count)], at: at), dedupe: g.int(2) == 0,
                                      movesLedger: g.int(2) == 0)
        case 8: return .statusApplied(messageID: g.text(), status: g.int(2) == 0 ? .failed : .success, at: Double(g.int(2_000_000_000)) + 0.5,
                                      source: g.int(2) == 0 ? .webhook : .send, event: g.text())
        case 5: return .eventDone(id: g.text())
        case 6: return .ruleDone(id: g.text(), rule: g.text())
        case 7: return .scheduleFired(key: g.text(), at: at)
        default: return .batch((0..<g.int(4)).map { _ in .eventDone(id: g.text()) } + [.stateDelete(rule: "r", key: g.text())])
        }
    }

    @Test(arguments: 0..<400)
    func aDirectlyWrittenRecordReadsBackAsItsJournalValue(seed: Int) throws {
        var g = Seeded(state: UInt64(seed))
        let mutation = Self.mutation(&g)
        var bytes: [UInt8] = []
        try mutation.appendJournalRecord(sequence: 42, to: &bytes)
        let decoded = try JSONCodec.decode(bytes: bytes)
        guard case .object(var expected) = mutation.journalValue else { Issue.record("not an object"); return }
        expected["seq"] = .integer(42)
        // What JSONCodec.encode would have written, read back the same way.
        let reference = try JSONCodec.decode(try JSONCodec.encode(.object(expected)))
        #expect(decoded == reference, "seed \(seed): \(String(decoding: bytes, as: UTF8.self))")
        #expect(String(describing: try Mutation(journalValue: decoded)) == String(describing: try Mutation(journalValue: reference)))
    }
}
