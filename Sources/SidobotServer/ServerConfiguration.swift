import Foundation
import Synchronization
import Sidobe

/// How the HTTP service runs (docs/OPERATING.md).
public struct ServerConfiguration: Sendable {
    /// The address to listen on; port 0 picks a free port.
    public var host: String
    public var port: Int
    /// The Sidobe secret key webhooks are signed with.
    public var secretKey: SecretKey
    /// `SIDOBOT_ADMIN_TOKEN`: enables hooks and the admin API (`Authorization: Bearer TOKEN`).
    /// `nil` or empty: both answer 403.
    public var adminToken: String?
    /// The largest body accepted on `/webhooks/sidobe` and `/hooks/{name}` (413 above).
    public var maxBodyBytes = 1 << 20
    /// How long in-flight handler runs may go on at shutdown before the final snapshot is written.
    public var shutdownDeadline: Double = 10
    /// `--confirm-status`: before a FAILED webhook is accepted, its status is confirmed with
    /// `GET whatsapp-messages/:id` (Sidobe's signature does not cover the body).
    public var confirmFailedStatus = false

    public init(host: String = "127.0.0.1", port: Int = 8080, secretKey: SecretKey, adminToken: String? = nil) {
        self.host = host
        self.port = port
        self.secretKey = secretKey
        self.adminToken = adminToken
    }
}

/// Readiness shared by the engine service and the HTTP handlers.
final class ServerState: Sendable {
    private let flags = Mutex((ready: false, stopping: false))

    var isReady: Bool { flags.withLock { $0.ready && !$0.stopping } }
    var isStopping: Bool { flags.withLock { $0.stopping } }

    func markReady() { flags.withLock { $0.ready = true } }
    func markStopping() { flags.withLock { $0.stopping = true } }
}

/// Checks `Authorization: Bearer TOKEN` against the configured admin token in constant time.
struct BearerToken: Sendable {
    private let expected: [UInt8]?

    init(_ token: String?) {
        if let token, !token.isEmpty { expected = Array(token.utf8) } else { expected = nil }
    }

    var isConfigured: Bool { expected != nil }

    enum Verdict { case ok, disabled, missing, wrong }

    /// Compares the presented token with the expected one. The time taken depends only on the
    /// expected token's length, never on where the two first differ.
    ///
    /// `allowingBasic` also takes HTTP Basic with the token as the password (any user name): only
    /// `/ui/plain` does, for terminal browsers that cannot send a bearer token. The admin API does
    /// not, so a browser never caches credentials that work there.
    func check(authorization: String?, allowingBasic: Bool = false) -> Verdict {
        guard let expected else { return .disabled }
        guard let authorization else { return .missing }
        if allowingBasic, authorization.count > 6, authorization.prefix(6).lowercased() == "basic " {
            guard let decoded = Data(base64Encoded: String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
                  let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return .wrong }
            return compare(Array(decoded[decoded.index(after: colon)...]), expected)
        }
        let prefix = "bearer "
        guard authorization.utf8.count > prefix.utf8.count,
              authorization.prefix(prefix.count).lowercased() == prefix else { return .missing }
        return compare(Array(authorization.utf8.dropFirst(prefix.utf8.count)), expected)
    }

    private func compare(_ presented: [UInt8], _ expected: [UInt8]) -> Verdict {
        var difference = UInt8(presented.count == expected.count ? 0 : 1)
        for index in 0..<expected.count {
            let byte = index < presented.count ? presented[index] : 0
            difference |= byte ^ expected[index]
        }
        return difference == 0 ? .ok : .wrong
    }
}
