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
            The token comes from SIDOBOT_ADMIN_TOKEN, the engine's URL from --url or SIDOBOT_URL (default \
            http://127.0.0.1:8080). For each event: its name, id and time, then each rule \
            that matched with its outcome (ran, error, aborted, skipped), what it did, and errors with file:line. \
            Exit status: 0 found, 1 not found or the engine answered an error or could not be reached, \
            2 bad configuration (no SIDOBOT_ADMIN_TOKEN, bad --url or SIDOBOT_URL).
            """
    )

    @Argument(help: "An event id (webhook id, hook event id, t-42 for a timer) or a message id.")
    var id: String

    @Option(name: .long, help: "The engine's base URL (default: SIDOBOT_URL, else http://127.0.0.1:8080).")
    var url: String?

    @Flag(name: .long, help: "Print the JSON answer as is.")
    var json = false

    func run() async throws {
        var request: HTTPClientRequest?
        let (url, origin) = url.map { ($0, "--url") } ?? Environment.value("SIDOBOT_URL").map { ($0, "SIDOBOT_URL") } ?? ("http://127.0.0.1:8080", "the default URL")
        try await runReportingConfigurationErrors {
            guard let token = Environment.value("SIDOBOT_ADMIN_TOKEN") else {
                throw ConfigurationError("SIDOBOT_ADMIN_TOKEN is not set; the admin API needs it (the same token the engine runs with)")
            }
            var base = url
            while base.hasSuffix("/") { base.removeLast() }
            let escaped = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? id
            guard base.hasPrefix("http://") || base.hasPrefix("https://"), URL(string: "\(base)/api/traces/\(escaped)") != nil else {
                throw ConfigurationError("bad \(origin == "the default URL" ? "URL" : origin) '\(url)': expected e.g. http://127.0.0.1:8080")
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
            printError("error: cannot reach the engine at \(url) (\(origin)): \(Self.reason(error)); "
                       + "is `sidobot run` listening there? Set --url or SIDOBOT_URL to its address")
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

    /// A connection failure in words (AsyncHTTPClient's errors print as nested type dumps).
    static func reason(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") || text.contains("errno: 111") { return "connection refused" }
        if text.localizedCaseInsensitiveContains("timeout") || text.contains("deadlineExceeded") { return "no answer within 10 seconds" }
        if text.contains("NIODNS") || text.contains("unknown host") || text.localizedCaseInsensitiveContains("resolv") { return "the host name does not resolve" }
        if text.contains("remoteConnectionClosed") || text.contains("Connection reset") { return "the connection was closed before an answer" }
        if text.contains("SSL") || text.contains("TLS") || text.contains("certificate") { return "TLS failed (\(type(of: error)))" }
        return "\(type(of: error))"
    }
}
