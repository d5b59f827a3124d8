import Foundation
import LuaSandbox
@testable import SidobotEngine
import Testing

@Suite("RetryPlanner")
struct RetryPlannerTests {
    static func failed(attempt: Int, _ plan: LuaValue?) throws -> MessageRecord {
        var record = MessageRecord(id: "m1", phone: "+628123123123", message: "hi", imageURL: nil, documentURL: nil, documentName: nil,
                                   messageType: .text, rule: "r", key: nil, attempt: attempt, resendOf: nil, status: .failed, sentAt: 0,
                                   source: .send)
        if let plan { record.retry = try RetryPlan(luaValue: plan, functionName: "sidobe.send") }
        return record
    }

    @Test("exponential backoff from the base, jitter between half and all of the wait")
    func backoff() throws {
        let plan: LuaValue = .object(["max": .integer(3), "base": .string("1m"), "jitter": .bool(false)])
        #expect(RetryPlanner.decide(after: try Self.failed(attempt: 1, plan), alreadyHandled: false, random: { 0 }) == .resend(afterMilliseconds: 60_000))
        #expect(RetryPlanner.decide(after: try Self.failed(attempt: 3, plan), alreadyHandled: false, random: { 0 }) == .resend(afterMilliseconds: 240_000))
        let jittered: LuaValue = .object(["max": .integer(3), "base": .string("1m")])
        #expect(RetryPlanner.decide(after: try Self.failed(attempt: 1, jittered), alreadyHandled: false, random: { 0 }) == .resend(afterMilliseconds: 30_000))
        #expect(RetryPlanner.decide(after: try Self.failed(attempt: 1, jittered), alreadyHandled: false, random: { 0.5 }) == .resend(afterMilliseconds: 45_000))
    }

    @Test("once the resends are used up: escalate when told where, else give up")
    func usedUp() throws {
        let escalating: LuaValue = .object(["max": .integer(2), "escalate_to": .string("+62811000111")])
        #expect(RetryPlanner.decide(after: try Self.failed(attempt: 3, escalating), alreadyHandled: false, random: { 0 }) == .escalate(phone: "+62811000111"))
        let plain: LuaValue = .object(["max": .integer(2)])
        #expect(RetryPlanner.decide(after: try Self.failed(attempt: 3, plain), alreadyHandled: false, random: { 0 }) == .exhausted(reason: "failed 3 times"))
    }

    @Test("nothing for a message without a policy, one that did not fail, or a failure already planned for")
    func nothing() throws {
        let plan: LuaValue = .object(["max": .integer(2)])
        #expect(RetryPlanner.decide(after: try Self.failed(attempt: 1, nil), alreadyHandled: false, random: { 0 }) == .none)
        var succeeded = try Self.failed(attempt: 1, plan)
        succeeded.status = .success
        #expect(RetryPlanner.decide(after: succeeded, alreadyHandled: false, random: { 0 }) == .none)
        #expect(RetryPlanner.decide(after: try Self.failed(attempt: 1, plan), alreadyHandled: true, random: { 0 }) == .none)
    }
}
