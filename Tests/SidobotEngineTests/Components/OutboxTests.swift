import Foundation
import Logging
import Sidobe
import SidobeTesting
@testable import SidobotEngine
import Testing

/// The outbox alone: sends out through a test Sidobe, and the status events held while one is out.
@Suite("Outbox")
struct OutboxTests {
    static func outbox(_ sidobe: TestSidobe) -> Outbox {
        Outbox(client: sidobe, clock: VirtualClock(), configuration: EngineConfiguration(rulesFolder: "", dataFolder: nil),
               logger: Logger(label: "test"))
    }

    static func status(_ id: String) -> EngineEvent {
        EngineEvent(id: id, kind: .messageStatus(MessageStatusEvent(messageID: "m-\(id)", status: .failed, messageType: .text,
                                                                   sendAt: "", createdAt: "")), at: UnixTime(seconds: 0))
    }

    @Test("a status that arrives while a send is out is held until the send lands, then released in arrival order")
    func holds() async throws {
        let sidobe = TestSidobe()
        let outbox = Self.outbox(sidobe)
        #expect(!outbox.holdIfSendsOut(Self.status("early")), "nothing is out: nothing to wait for")
        let message = OutgoingMessage(phone: "+628123123123", content: .text("hi"), isAsync: false)
        let (result, flight) = await outbox.transmit(message)
        guard case .success(let sent) = result else {
            Issue.record("the send failed: \(result)")
            return
        }
        #expect(sent.id == "m1" && outbox.hasSendsOut)
        #expect(outbox.holdIfSendsOut(Self.status("a")))
        #expect(outbox.holdIfSendsOut(Self.status("b")))
        #expect(outbox.land(flight).map(\.id) == ["a", "b"])
        #expect(!outbox.hasSendsOut)
        #expect(outbox.land(nil).isEmpty)
    }

    @Test("Sidobe's refusal comes back as the failure, and the flight still lands")
    func refusals() async throws {
        let sidobe = TestSidobe()
        sidobe.failNext(try #require(TestSidobe.error(code: "INVALID_DEVICE_WHATSAPP")))
        let outbox = Self.outbox(sidobe)
        let (result, flight) = await outbox.transmit(OutgoingMessage(phone: "+628123123123", content: .text("hi"), isAsync: false))
        guard case .failure(.sidobe(let error)) = result else {
            Issue.record("expected Sidobe's refusal, got \(result)")
            return
        }
        #expect(error.code == "INVALID_DEVICE_WHATSAPP")
        #expect(outbox.hasSendsOut)
        _ = outbox.land(flight)
        #expect(!outbox.hasSendsOut && outbox.depth == 0)
    }
}
