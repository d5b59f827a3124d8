import ArgumentParser
import Sidobe

/// `sidobot sign --id ID`: prints the `X-Webhook-Signature` Sidobe would send for a webhook id.
struct SignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Print only the X-Webhook-Signature for a webhook id (secret from SIDOBE_SECRET_KEY).",
        discussion: "The signature is hex(sha256(secretKey + \"|\" + id)), as Sidobe computes it. Handy for replaying a webhook with curl."
    )

    @Option(name: .long, help: "The webhook event id (the `id` field of the webhook body).")
    var id: String

    func run() async throws {
        try await runReportingConfigurationErrors {
            let key = try Environment.secretKey(neededFor: "sign")
            print(WebhookSignature.sign(id: id, secretKey: key))
        }
    }
}
