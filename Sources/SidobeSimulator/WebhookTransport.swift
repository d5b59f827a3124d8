import AsyncHTTPClient
import Foundation
import Sidobe

/// How the simulator delivers a webhook attempt. The default POSTs it over HTTP;
/// ``inProcess(_:)`` hands it to a function instead, for engine tests without a network.
public struct WebhookTransport: Sendable {
    /// One attempt to deliver one event.
    public struct Request: Sendable, Hashable {
        /// The configured webhook URL.
        public var url: String
        /// `Content-Type: application/json`, `X-Webhook-Signature`, `User-Agent`.
        public var headers: [String: String]
        /// The JSON body (the same bytes on every attempt of an event).
        public var body: [UInt8]
        /// How long the attempt may take.
        public var timeout: Duration

        /// Creates a request.
        public init(url: String, headers: [String: String], body: [UInt8], timeout: Duration) {
            self.url = url
            self.headers = headers
            self.body = body
            self.timeout = timeout
        }
    }

    /// How an attempt ended.
    public enum Outcome: Sendable, Hashable {
        /// The receiver answered with this HTTP status (2xx counts as delivered).
        case answered(status: Int)
        /// No answer: timeout, connection refused, and so on.
        case failed(String)
    }

    /// Performs one attempt. It must honour `timeout` and return (not throw) on failure.
    public var deliver: @Sendable (Request) async -> Outcome

    /// Creates a transport from a function.
    public init(deliver: @escaping @Sendable (Request) async -> Outcome) {
        self.deliver = deliver
    }

    /// POSTs each attempt with AsyncHTTPClient.
    /// - Parameter client: the HTTP client; the process-wide shared one by default.
    public static func http(client: HTTPClient = .shared) -> WebhookTransport {
        WebhookTransport { request in
            var outgoing = HTTPClientRequest(url: request.url)
            outgoing.method = .POST
            for (name, value) in request.headers.sorted(by: { $0.key < $1.key }) {
                outgoing.headers.add(name: name, value: value)
            }
            outgoing.body = .bytes(request.body)
            do {
                let response = try await client.execute(outgoing, timeout: .nanoseconds(request.timeout.clampedNanoseconds))
                // Read (and discard) a small answer so the connection can be reused.
                _ = try? await response.body.collect(upTo: 64 * 1024)
                return .answered(status: Int(response.status.code))
            } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
                return .failed("timed out after \(request.timeout)")
            } catch let error as HTTPClientError where error == .connectTimeout {
                return .failed("connect timed out")
            } catch {
                let text = String(describing: error)
                if text.contains("connectionRefused") || text.contains("Connection refused") {
                    return .failed("connection refused")
                }
                return .failed(text)
            }
        }
    }

    /// Hands each attempt to `receiver`, which returns the HTTP status a receiver would answer.
    ///
    /// The event is decoded for convenience; `request` carries the exact body and headers
    /// (including `X-Webhook-Signature`) an HTTP receiver would get.
    public static func inProcess(_ receiver: @escaping @Sendable (WebhookEvent, Request) async -> Int) -> WebhookTransport {
        WebhookTransport { request in
            do {
                let event = try WebhookEvent.decode(request.body)
                return .answered(status: await receiver(event, request))
            } catch {
                return .failed("the simulator produced an undecodable event: \(error)")
            }
        }
    }
}

extension Duration {
    /// The duration in nanoseconds, clamped to `0...Int64.max`.
    var clampedNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        let (sum, overflow2) = product.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? .max : sum
    }
}
