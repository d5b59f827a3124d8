import Foundation
import LuaSandbox
import Sidobe
@testable import SidobotEngine
import Testing

/// Routing without Lua: handlers are plain strings.
@Suite("RouteTable")
struct RouteTableTests {
    typealias Rule = RouteTable<String>.Rule

    static let at = UnixTime(seconds: 1_767_225_600)

    static func table(_ rules: [Rule]) -> RouteTable<String> {
        var table = RouteTable<String>()
        table.setRules(rules)
        return table
    }

    static func status(_ status: MessageStatus = .failed, stale: Bool = false) -> EngineEvent {
        EngineEvent(id: "wh-1", kind: .messageStatus(MessageStatusEvent(messageID: "m1", status: status, messageType: .text,
                                                                       sendAt: "s", createdAt: "c", stale: stale)), at: at)
    }

    static let rules: [Rule] = [
        Rule(name: "b", handlers: ["message.status": ["b.status"], "message.failed": ["b.failed"]], schedules: [:], quarantinedAfter: nil),
        Rule(name: "a", handlers: ["message.failed": ["a.failed1", "a.failed2"], "hook.ping": ["a.ping"], "timer.retry": ["a.timer"]],
             schedules: ["every 5m": "a.every"], quarantinedAfter: nil),
        Rule(name: "c", handlers: ["message.failed": ["c.failed"]], schedules: [:], quarantinedAfter: 5),
    ]

    @Test("a fresh status reaches its own handlers, then message.status, rule by rule in name order; a quarantined rule is skipped with why")
    func freshStatus() {
        var table = Self.table(Self.rules)
        let routed = table.route(Self.status(), ledger: MessageLedger())
        #expect(routed.name == "message.failed")
        #expect(routed.targets.map(\.handler) == ["a.failed1", "a.failed2", "b.failed", "b.status"])
        #expect(routed.skipped.map(\.rule) == ["c"])
        #expect(routed.skipped.first?.reason == "quarantined after 5 consecutive aborts; fix the rule file to release it")
        #expect(routed.fields.first { $0.0 == "message_id" }?.1 == "m1")
        #expect(!routed.fields.contains { $0.0 == "message" }, "no ev.message for a message the ledger does not know")
    }

    @Test("a stale status reaches only message.status handlers, with ev.stale")
    func staleStatus() {
        var table = Self.table(Self.rules)
        let routed = table.route(Self.status(stale: true), ledger: MessageLedger())
        #expect(routed.name == "message.status")
        #expect(routed.targets.map(\.handler) == ["b.status"])
        #expect(routed.fields.contains { $0.0 == "stale" && $0.1 == .bool(true) })
    }

    @Test("a timer fires into the rule that set it only, and says why when it cannot")
    func timers() throws {
        var table = Self.table(Self.rules)
        func timer(_ rule: String, _ name: String) throws -> EngineEvent {
            EngineEvent(id: "t-1", kind: .timer(try TimerRecord(id: TimerID(1), rule: rule, name: name, payload: .null, due: Self.at,
                                                               createdAt: Self.at, late: .default)), at: Self.at)
        }
        #expect(table.route(try timer("a", "retry"), ledger: MessageLedger()).targets.map(\.handler) == ["a.timer"])
        #expect(table.route(try timer("b", "retry"), ledger: MessageLedger()).skipped.first?.reason
            == "the rule has no on(\"timer.retry\") handler (any more); the timer fired into nothing")
        #expect(table.route(try timer("gone", "retry"), ledger: MessageLedger()).skipped.first?.reason
            == "the rule that set this timer is no longer loaded")
        #expect(table.route(try timer("a", "retry"), exceptRules: ["a"], ledger: MessageLedger()).targets.isEmpty)
    }

    @Test("schedules go to their rule's handler by key; hooks by name; onlyRule and exceptRules narrow the targets")
    func schedulesHooksAndNarrowing() {
        var table = Self.table(Self.rules)
        let tick = EngineEvent(id: "a/every 5m@0", kind: .schedule(rule: "a", handler: "every 5m", scheduledAt: Self.at), at: Self.at)
        #expect(table.route(tick, ledger: MessageLedger()).targets.map(\.handler) == ["a.every"])
        let gone = EngineEvent(id: "a/x@0", kind: .schedule(rule: "a", handler: "cron x", scheduledAt: Self.at), at: Self.at)
        #expect(table.route(gone, ledger: MessageLedger()).skipped.first?.reason == "the schedule cron x is no longer registered")
        let ping = EngineEvent(id: "h-1", kind: .hook(name: "ping", body: .null, contentType: "text/plain"), at: Self.at)
        #expect(table.route(ping, ledger: MessageLedger()).targets.map(\.handler) == ["a.ping"])
        #expect(table.route(Self.status(), onlyRule: "b", ledger: MessageLedger()).targets.map(\.handler) == ["b.failed", "b.status"])
        #expect(table.route(Self.status(), exceptRules: ["a"], ledger: MessageLedger()).targets.map(\.handler) == ["b.failed", "b.status"])
    }

    @Test("listeners are kept until the rules change; quarantine and release take effect at once")
    func cachesAndQuarantine() {
        var table = Self.table(Self.rules)
        #expect(table.route(Self.status(), ledger: MessageLedger()).targets.count == 4)
        table.setQuarantine("a", after: 3)
        #expect(table.route(Self.status(), ledger: MessageLedger()).targets.map(\.handler) == ["b.failed", "b.status"])
        table.setQuarantine("a", after: nil)
        table.setQuarantine("c", after: nil)
        #expect(table.route(Self.status(), ledger: MessageLedger()).targets.count == 5)
        table.setRules([Rule(name: "z", handlers: ["message.status": ["z.status"]], schedules: [:], quarantinedAfter: nil)])
        #expect(table.route(Self.status(), ledger: MessageLedger()).targets.map(\.handler) == ["z.status"])
    }

    @Test("an unknown status Sidobe adds later routes as message.<lowercase>")
    func unknownStatus() {
        var table = Self.table([Rule(name: "r", handlers: ["message.read": ["r.read"]], schedules: [:], quarantinedAfter: nil)])
        #expect(table.route(Self.status(.unknown("READ")), ledger: MessageLedger()).targets.map(\.handler) == ["r.read"])
    }
}
