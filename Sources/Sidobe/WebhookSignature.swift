import Crypto

/// Sidobe's webhook signature: `hex(sha256(secretKey + "|" + webhookID))`, sent as `X-Webhook-Signature`.
///
/// The signature covers the event id only, not the body: a receiver that must trust the
/// status can confirm it with ``SidobeClient/message(id:)``.
public enum WebhookSignature {
    /// The name of the header that carries the signature.
    public static let headerName = "X-Webhook-Signature"

    /// The lowercase hex signature of a webhook id under a secret key.
    public static func sign(id: String, secretKey: SecretKey) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(secretKey.reveal().utf8))
        hasher.update(data: [UInt8(ascii: "|")])
        hasher.update(data: Array(id.utf8))
        return hex(hasher.finalize())
    }

    /// Whether `signature` is the signature of `id`, compared in constant time.
    ///
    /// Upper-case hex is accepted. Anything that is not 64 hex digits is rejected;
    /// the time taken does not depend on where a well-formed signature first differs.
    public static func verify(signature: String, id: String, secretKey: SecretKey) -> Bool {
        let expected = Array(sign(id: id, secretKey: secretKey).utf8)
        let received = Array(signature.utf8)
        guard received.count == expected.count, received.allSatisfy(isHexDigit) else { return false }
        var difference: UInt8 = 0
        for index in 0..<expected.count {
            // ASCII letters: OR-ing 0x20 lower-cases them and leaves digits alone.
            difference |= (received[index] | 0x20) ^ expected[index]
        }
        return difference == 0
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
    }

    private static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
