import ArgumentParser
import Foundation
import Logging
import Sidobe

/// `sidobot send`: one message through the Sidobe client, for trying an account or a number by hand.
struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send one WhatsApp message through Sidobe and print the result.",
        discussion: """
            Sends text, or an image with --image-url, or a document with --document-url and --document-name \
            (--message is then the caption). Exit status: 0 sent, 1 Sidobe refused or could not be reached, \
            2 bad configuration (no SIDOBE_SECRET_KEY). Invalid input is reported with the field at fault \
            before any request is made.
            """
    )

    @Option(name: .long, help: "The recipient in E.164 format, e.g. +628123123123.")
    var phone: String

    @Option(name: .long, help: "The text, or the caption of an image or document.")
    var message: String?

    @Option(name: .customLong("image-url"), help: "Send an image from this URL (jpg, jpeg or png).")
    var imageURL: String?

    @Option(name: .customLong("document-url"), help: "Send a document from this URL (pdf, doc, docx, ppt, pptx, xls, xlsx).")
    var documentURL: String?

    @Option(name: .customLong("document-name"), help: "The document's name as shown in the chat, without extension.")
    var documentName: String?

    @Flag(name: .customLong("async"), help: "Queue the message in Sidobe: the answer is PENDING and the final status arrives by webhook.")
    var isAsync = false

    @Option(name: .customLong("api-base"), help: "The Sidobe API base URL.")
    var apiBase = SidobeClient.Configuration.productionBaseURL

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if imageURL != nil && (documentURL != nil || documentName != nil) {
            throw ValidationError("--image-url cannot be combined with --document-url or --document-name")
        }
        if (documentURL == nil) != (documentName == nil) {
            throw ValidationError("--document-url and --document-name go together")
        }
        if imageURL == nil && documentURL == nil && message == nil {
            throw ValidationError("a text message needs --message")
        }
    }

    var outgoing: OutgoingMessage {
        if let imageURL {
            return .image(to: phone, url: imageURL, caption: message, isAsync: isAsync)
        }
        if let documentURL, let documentName {
            return .document(to: phone, url: documentURL, name: documentName, caption: message, isAsync: isAsync)
        }
        return .text(to: phone, message ?? "", isAsync: isAsync)
    }

    func run() async throws {
        bootstrapLogging()
        var key = SecretKey("")
        try await runReportingConfigurationErrors {
            key = try Environment.secretKey(neededFor: "send")
        }
        let client = SidobeClient(configuration: .init(baseURL: apiBase, secretKey: key))
        do {
            let sent = try await client.send(outgoing)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(sent), as: UTF8.self))
            } else {
                print("sent: id=\(sent.id) status=\(sent.status) type=\(sent.messageType) async=\(sent.isAsync)")
            }
        } catch {
            printError("error: \(error)")
            throw ExitStatus.requestFailed
        }
    }
}
