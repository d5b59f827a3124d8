#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Sidobe
import SidobotServer
import Testing

/// The webhook fast path sits in the channel pipeline ahead of Hummingbird: these tests talk raw
/// HTTP/1.1 on one connection to check what a client library would not show: answers stay in
/// order when requests are pipelined, whichever path takes each, and `Connection: close` closes.
@Suite("webhook fast path: one connection, raw HTTP/1.1")
struct WebhookFastPathTests {
    /// A blocking TCP connection to the server. Its reads block a thread, so tests run them off the
    /// concurrency pool (``responses(_:)`` async), whose few threads the server under test needs.
    final class Connection: Sendable {
        let fd: Int32

        init(port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        }

        deinit { close(fd) }

        func send(_ text: [UInt8]) {
            var offset = 0
            while offset < text.count {
                let n = text.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, text.count - offset, 0) }
                guard n > 0 else { return }
                offset += n
            }
        }

        /// ``readResponses(_:)`` on a thread outside the concurrency pool.
        func responses(_ count: Int) async -> (answers: [(status: Int, body: String)], closed: Bool) {
            await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: self.readResponses(count)) }
            }
        }

        /// Reads until `count` complete responses arrived (or the peer closed); returns them in order
        /// as (status, body), and whether the connection was closed by the server.
        func readResponses(_ count: Int) -> (answers: [(status: Int, body: String)], closed: Bool) {
            var data: [UInt8] = []
            var answers: [(Int, String)] = []
            var closed = false
            var buffer = [UInt8](repeating: 0, count: 65536)
            while answers.count < count {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    closed = true
                    break
                }
                data.append(contentsOf: buffer[0..<n])
                answers = Self.parse(data)
            }
            if answers.count == count {
                // Did the server close after the last one? A short look.
                var timeout = timeval(tv_sec: 0, tv_usec: 300_000)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                closed = recv(fd, &buffer, buffer.count, 0) == 0
            }
            return (answers, closed)
        }

        static func parse(_ data: [UInt8]) -> [(Int, String)] {
            var answers: [(Int, String)] = []
            var rest = data[...]
            let separator: [UInt8] = Array("\r\n\r\n".utf8)
            while let end = rest.firstRange(of: separator) {
                let head = String(decoding: rest[rest.startIndex..<end.lowerBound], as: UTF8.self)
                let lines = head.split(separator: "\r\n")
                let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
                let length = lines.compactMap { line -> Int? in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    return parts.count == 2 && parts[0].lowercased() == "content-length" ? Int(parts[1].trimmingCharacters(in: .whitespaces)) : nil
                }.first ?? 0
                let bodyStart = end.upperBound
                guard rest.distance(from: bodyStart, to: rest.endIndex) >= length else { break }
                let bodyEnd = rest.index(bodyStart, offsetBy: length)
                answers.append((status, String(decoding: rest[bodyStart..<bodyEnd], as: UTF8.self)))
                rest = rest[bodyEnd...]
            }
            return answers
        }
    }

    static func webhookRequest(id: String, signature: String? = nil, extraHeaders: String = "") -> [UInt8] {
        let body = webhookBody(id: id, messageID: "m-\(id)")
        let signature = signature ?? WebhookSignature.sign(id: id, secretKey: testKey)
        return Array("POST /webhooks/sidobe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Webhook-Signature: \(signature)\r\nContent-Length: \(body.count)\r\n\(extraHeaders)\r\n".utf8) + body
    }

    @Test func pipelinedRequestsAreAnsweredInOrderWhicheverPathTakesThem() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        let connection = try Connection(port: h.port)
        // A webhook, a health check behind it (held while the webhook is with the engine), a webhook
        // behind that (it goes to Hummingbird, behind the passed request), a refused one, another good one.
        var pipelined = Self.webhookRequest(id: "p-1")
        pipelined += Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        pipelined += Self.webhookRequest(id: "p-2")
        pipelined += Self.webhookRequest(id: "p-3", signature: String(repeating: "0", count: 64))
        pipelined += Self.webhookRequest(id: "p-1")
        pipelined += Self.webhookRequest(id: "p-4")
        connection.send(pipelined)
        let (answers, closed) = await connection.responses(6)
        #expect(!closed)
        #expect(answers.map(\.status) == [200, 200, 200, 401, 200, 200])
        #expect(answers[0].body.contains(#""event_id":"p-1""#) && answers[0].body.contains("accepted"))
        #expect(answers[1].body.contains("ok"))
        #expect(answers[2].body.contains(#""event_id":"p-2""#))
        #expect(answers[3].body.contains("bad X-Webhook-Signature"))
        #expect(answers[4].body.contains("duplicate"))
        #expect(answers[5].body.contains(#""event_id":"p-4""#))
        #expect(try await eventually { (try await h.state()["failed"] as? Int) == 3 })
        #expect(await h.stop() == nil)
    }

    @Test func aChunkedBodyOverTheLimitIs413AndConnectionCloseCloses() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        let connection = try Connection(port: h.port)
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 600_000)
        var request = Array("POST /webhooks/sidobe HTTP/1.1\r\nHost: x\r\nX-Webhook-Signature: \(String(repeating: "0", count: 64))\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        for _ in 0..<2 { request += Array(String(chunk.count, radix: 16).utf8) + Array("\r\n".utf8) + chunk + Array("\r\n".utf8) }
        request += Array("0\r\n\r\n".utf8)
        request += Self.webhookRequest(id: "c-1", extraHeaders: "Connection: close\r\n")
        connection.send(request)
        let (answers, closed) = await connection.responses(2)
        #expect(answers.map(\.status) == [413, 200])
        #expect(answers.first?.body.contains("larger than") == true)
        #expect(closed)
        #expect(await h.stop() == nil)
    }
}
