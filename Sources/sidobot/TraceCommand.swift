import ArgumentParser
import AsyncHTTPClient
import Foundation
import Sidobe
import SidobotServer

/// `sidobot trace ID`: asks a running engine why a rule did (or didn't) fire.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Print the trace of an event or a message from a running engine (GET /api/traces/{id}).",
        discussion: """
            The token comes from SIDOBOT_ADMIN_TOKEN. For each event: its name, id and time, then each rule \
            that matched with its outcome (ran, error, aborted, skipped), what it did, and errors with file:line. \
            Exit status: 0 found, 1 not found or the engine answered an error or could not be reached, \
            2 bad configuration (no SIDOBOT_ADMIN_TOKEN, bad --url).
            """
    )

    @Argument(help: "An event id (webhook id, hook event id, t-42 for a timer) or a message id.")
    var id: String

    @Option(name: .long, help: "The engine's base URL.")
    var url = "http://127.0.0.1:8080"

    @Flag(name: .long, help: "Print the JSON answer as is.")
    var json = false

    func run() async throws {
        var request: HTTPClientRequest?
        try await runReportingConfigurationErrors {
            guard let token = Environment.value("SIDOBOT_ADMIN_TOKEN") else {
                throw ConfigurationError("SIDOBOT_ADMIN_TOKEN is not set; the admin API needs it (the same token the engine runs with)")
            }
            var base = url
            while base.hasSuffix("/") { base.removeLast() }
            let escaped = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id
            guard base.hasPrefix("http://") || base.hasPrefix("https://"), URL(string: "\(base)/api/traces/\(escaped)") != nil else {
                throw ConfigurationError("bad --url '\(url)': expected e.g. http://127.0.0.1:8080")
            }
            var built = HTTPClientRequest(url: "\(base)/api/traces/\(escaped)")
            built.headers.add(name: "Authorization", value: "Bearer \(token)")
            request = built
        }
        guard let request else { return }
        let data: Data
        let status: Int
        do {
            let response = try await SidobeClient.defaultHTTPClient.execute(request, timeout: .seconds(10))
            data = Data(buffer: try await response.body.collect(upTo: 64 << 20))
            status = Int(response.status.code)
        } catch {
            printError("error: cannot reach the engine at \(url): \(error)")
            throw ExitCode.failure
        }
        guard status == 200 else {
            let message = (try? JSONDecoder().decode(APIErrorBody.self, from: data))?.error ?? String(decoding: data, as: UTF8.self)
            printError("error: \(message) (HTTP \(status))")
            throw ExitCode.failure
        }
        if json {
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let body: TracesBody
        do {
            body = try JSONDecoder().decode(TracesBody.self, from: data)
        } catch {
            printError("error: unexpected answer from the engine: \(error)")
            throw ExitCode.failure
        }
        print(body.traces.map(\.text).joined(separator: "\n\n"))
    }
}
