/// The operations of the Sidobe API, as a protocol so that an engine can be driven by the real
/// client, by the simulator's in-process core, or by a test double.
public protocol SidobeAPI: Sendable {
    /// Sends a message. See ``SidobeClient/send(_:)``.
    func send(_ message: OutgoingMessage) async throws(SidobeError) -> SentMessage
    /// The details of a message. See ``SidobeClient/message(id:)``.
    func message(id: String) async throws(SidobeError) -> MessageDetail
    /// Whether a number is on WhatsApp. See ``SidobeClient/checkNumber(_:)``.
    func checkNumber(_ phone: String) async throws(SidobeError) -> Bool
}

extension SidobeClient: SidobeAPI {}
