@testable import SidobotEngine
import Testing

@Suite("Message ledger")
struct MessageLedgerTests {
    func record(_ id: String, key: String? = nil, rule: String = "retry", status: LedgerStatus = "PENDING", at time: Double = 0) -> MessageRecord {
        MessageRecord(id: id, phone: "+628123123123", message: "hi", imageURL: nil, documentURL: nil, documentName: nil,
                      messageType: "TEXT", rule: rule, key: key, attempt: 1, resendOf: nil, status: status, sentAt: time, source: "send")
    }

    @Test func statusMovesOneWay() {
        var ledger = MessageLedger()
        ledger.insert(record("m1"))
        #expect(ledger.apply(status: "PENDING", to: "m1", at: 1, source: "webhook") == .stale(current: "PENDING"))
        #expect(ledger.apply(status: "SUCCESS", to: "m1", at: 2, source: "webhook") == .advanced(from: "PENDING", to: "SUCCESS"))
        #expect(ledger.apply(status: "FAILED", to: "m1", at: 3, source: "webhook") == .stale(current: "SUCCESS"))
        #expect(ledger.apply(status: "SUCCESS", to: "m1", at: 4, source: "webhook") == .stale(current: "SUCCESS"))
        #expect(ledger.apply(status: "PENDING", to: "m1", at: 5, source: "webhook") == .stale(current: "SUCCESS"))
        #expect(ledger["m1"]?.history.map(\.status) == ["PENDING", "SUCCESS"])
        #expect(ledger.apply(status: "SUCCESS", to: "nope", at: 1, source: "webhook") == .unknownMessage)
    }

    @Test func finalAndDryRunStatusesNeverMove() {
        var ledger = MessageLedger()
        ledger.insert(record("f", status: "FAILED"))
        ledger.insert(record("d", status: "DRY_RUN"))
        #expect(ledger.apply(status: "SUCCESS", to: "f", at: 1, source: "webhook") == .stale(current: "FAILED"))
        #expect(ledger.apply(status: "SUCCESS", to: "d", at: 1, source: "webhook") == .stale(current: "DRY_RUN"))
    }

    @Test func idempotencyKeysArePerRule() {
        var ledger = MessageLedger()
        ledger.insert(record("m1", key: "order-42", rule: "a"))
        #expect(ledger.message(rule: "a", key: "order-42")?.id == "m1")
        #expect(ledger.message(rule: "b", key: "order-42") == nil)
    }

    @Test func pruningDropsOldMessagesAndTheirKeys() {
        var ledger = MessageLedger()
        ledger.insert(record("old", key: "k1", at: 10))
        ledger.insert(record("new", key: "k2", at: 100))
        #expect(ledger.prune(sentBefore: 50) == 1)
        #expect(ledger["old"] == nil)
        #expect(ledger.message(rule: "retry", key: "k1") == nil)
        #expect(ledger.message(rule: "retry", key: "k2")?.id == "new")
        #expect(ledger.count == 1)
    }
}
