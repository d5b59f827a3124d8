import Foundation
import Sidobe
import Testing

@Suite("Webhook signature")
struct WebhookSignatureTests {
    static let secret = SecretKey("sk_test_123")
    static let seedID = "816332ca-b91a-469d-b4f6-9a17f440c05e"
    /// `printf '%s' 'sk_test_123|816332ca-b91a-469d-b4f6-9a17f440c05e' | sha256sum`
    static let knownAnswer = "64df2d9443ced18f85c11e6af5d2e28eb1b533778365bd272d5fb84b49f4d453"

    @Test func signatureOfTheSeedExampleIsTheKnownAnswer() {
        #expect(WebhookSignature.sign(id: Self.seedID, secretKey: Self.secret) == Self.knownAnswer)
    }

    @Test func signatureMatchesSha256sumOfSecretPipeID() throws {
        let sha256sum = ["/usr/bin/sha256sum", "/bin/sha256sum"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let tool = try #require(sha256sum, "coreutils sha256sum is needed for this cross-check")
        for id in [Self.seedID, "a", "événement-ü", String(repeating: "x", count: 300)] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            let input = Pipe(), output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            input.fileHandleForWriting.write(Data("sk_test_123|\(id)".utf8))
            try input.fileHandleForWriting.close()
            let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            let expected = String(printed.prefix(64))
            #expect(WebhookSignature.sign(id: id, secretKey: Self.secret) == expected)
        }
    }

    @Test func verifyAcceptsTheRightSignatureInEitherCase() {
        #expect(WebhookSignature.verify(signature: Self.knownAnswer, id: Self.seedID, secretKey: Self.secret))
        #expect(WebhookSignature.verify(signature: Self.knownAnswer.uppercased(), id: Self.seedID, secretKey: Self.secret))
    }

    @Test func verifyRejectsAnyOneCharacterChange() {
        let characters = Array(Self.knownAnswer)
        for index in characters.indices {
            var changed = characters
            changed[index] = changed[index] == "0" ? "1" : "0"
            #expect(!WebhookSignature.verify(signature: String(changed), id: Self.seedID, secretKey: Self.secret), "position \(index)")
        }
        var id = Array(Self.seedID)
        id[0] = "9"
        #expect(!WebhookSignature.verify(signature: Self.knownAnswer, id: String(id), secretKey: Self.secret))
        #expect(!WebhookSignature.verify(signature: Self.knownAnswer, id: Self.seedID, secretKey: SecretKey("sk_test_124")))
    }

    @Test func verifyRejectsMalformedSignatures() {
        for bad in ["", "abc", Self.knownAnswer + "0", String(Self.knownAnswer.dropLast()), String(Self.knownAnswer.dropLast()) + "g",
                    String(Self.knownAnswer.dropLast()) + "\u{10}", String(repeating: " ", count: 64)] {
            #expect(!WebhookSignature.verify(signature: bad, id: Self.seedID, secretKey: Self.secret), "\(bad.debugDescription)")
        }
    }

    @Test func secretKeyNeverPrints() {
        let key = SecretKey("sk_live_very_secret")
        #expect(!"\(key)".contains("very_secret"))
        #expect(!String(reflecting: key).contains("very_secret"))
        #expect(key.reveal() == "sk_live_very_secret")
    }
}
