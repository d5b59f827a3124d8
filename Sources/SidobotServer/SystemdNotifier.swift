#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Synchronization
import ServiceLifecycle
import SidobotEngine

/// systemd's notification protocol (`sd_notify(3)`), spoken without libsystemd: one datagram of
/// `KEY=VALUE` lines to the `AF_UNIX` socket named by `NOTIFY_SOCKET` (a path, or `@name` for the
/// abstract namespace). Under `Type=notify` the unit is "started" once `READY=1` arrives.
public struct SystemdNotifier: Sendable {
    private let address: [UInt8]

    /// Nil when `NOTIFY_SOCKET` is unset or empty (not started by systemd, or not `Type=notify`).
    public init?(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let socket = environment["NOTIFY_SOCKET"], !socket.isEmpty, socket.utf8.count < 108 else { return nil }
        var bytes = Array(socket.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // the abstract namespace
        address = bytes
    }

    /// Sends one notification (`READY=1`, `STATUS=…`, several joined by newlines). Returns
    /// whether it was sent; a failure is the caller's to log, never fatal.
    @discardableResult
    public func notify(_ message: String) -> Bool {
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var target = sockaddr_un()
        target.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &target.sun_path) { path in
            for (index, byte) in address.enumerated() { path[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.count)
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &target) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                sendto(descriptor, bytes, bytes.count, Int32(MSG_NOSIGNAL), address, length)
            }
        }
        return sent == bytes.count
    }

    /// Half of `WATCHDOG_USEC` (systemd's advice for the keep-alive interval), when the watchdog
    /// is on for this process (`WATCHDOG_PID` unset or ours).
    public static func watchdogInterval(environment: [String: String] = ProcessInfo.processInfo.environment) -> Duration? {
        guard let text = environment["WATCHDOG_USEC"], let microseconds = UInt64(text), microseconds > 0 else { return nil }
        if let pid = environment["WATCHDOG_PID"], let owner = Int32(pid), owner != getpid() { return nil }
        return .microseconds(Int64(microseconds / 2))
    }
}

/// Tells systemd how `sidobot run` is doing: `READY=1` once the engine is ready and the port is
/// bound, `WATCHDOG=1` every half `WatchdogSec` for as long as the engine's own thread answers
/// (a rule or a C call holding it makes systemd restart the process), `STATUS=` with a short
/// summary, and `STOPPING=1` when a graceful shutdown begins. Last in the service group, so it
/// is told of the shutdown first.
public struct SystemdNotifyService: Service {
    let notifier: SystemdNotifier
    let engine: Engine
    let isReady: @Sendable () -> Bool
    let watchdog: Duration?
    let logger: Logger

    public init(notifier: SystemdNotifier, engine: Engine, isReady: @escaping @Sendable () -> Bool,
                watchdog: Duration? = SystemdNotifier.watchdogInterval(), logger: Logger) {
        self.notifier = notifier
        self.engine = engine
        self.isReady = isReady
        self.watchdog = watchdog
        self.logger = logger
    }

    public func run() async throws {
        let notifier = notifier
        // Ends at the graceful shutdown (the group waits for this service before it stops the
        // next ones), after STOPPING=1 went out.
        await withGracefulShutdownHandler {
            try? await cancelWhenGracefulShutdown { try await notifyWhileRunning() }
        } onGracefulShutdown: {
            notifier.notify("STOPPING=1\nSTATUS=shutting down: finishing handler runs, then writing the final snapshot")
        }
    }

    private func notifyWhileRunning() async throws {
        while !isReady() {
            try await Task.sleep(for: .milliseconds(20))
        }
        if !notifier.notify("READY=1\nSTATUS=\(await summary())") {
            logger.warning("could not tell systemd the engine is ready (NOTIFY_SOCKET)")
        }
        let interval = watchdog ?? .seconds(10)
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            // The engine answering is the liveness: its thread is the one a stuck run would hold.
            guard let status = await answerWithin(interval) else {
                logger.error("the engine did not answer within the watchdog interval; systemd will restart sidobot if it stays so",
                             metadata: ["interval": "\(interval)"])
                continue
            }
            notifier.notify(watchdog == nil ? "STATUS=\(status)" : "WATCHDOG=1\nSTATUS=\(status)")
        }
    }

    /// The summary, if the engine produced it within `limit`. Not a task group: a group waits for
    /// its children, and the child asking a stuck engine would never end.
    private func answerWithin(_ limit: Duration) async -> String? {
        let first = FirstAnswer()
        return await withCheckedContinuation { continuation in
            first.set(continuation)
            Task { first.give(await summary()) }
            Task {
                try? await Task.sleep(for: limit)
                first.give(nil)
            }
        }
    }

    private func summary() async -> String {
        let rules = await engine.ruleSummaries()
        let failing = await engine.ruleLoadFailures().count
        var parts = ["\(rules.count) rules", "\(await engine.pendingTimerCount) timers pending", "outbox \(await engine.outboxDepth)"]
        if failing > 0 { parts.append("\(failing) rule files failing to load") }
        return "ready: " + parts.joined(separator: ", ")
    }
}

/// Resumes a continuation with the first answer given; later ones are dropped.
private final class FirstAnswer: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<String?, Never>?, done: Bool)>((nil, false))

    func set(_ continuation: CheckedContinuation<String?, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    func give(_ answer: String?) {
        let continuation = state.withLock { state -> CheckedContinuation<String?, Never>? in
            guard !state.done else { return nil }
            state.done = true
            return state.continuation
        }
        continuation?.resume(returning: answer)
    }
}
