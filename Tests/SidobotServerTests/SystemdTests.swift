#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// `sidobot run` under systemd's notification protocol, with a notify socket the test creates (as
/// systemd does for `Type=notify`), and the unit file of `deploy/` as `systemd-analyze` reads it.
@Suite("systemd: sd_notify and the unit file")
struct SystemdTests {
    /// A datagram socket bound to a path, as systemd's NOTIFY_SOCKET.
    final class NotifySocket: Sendable {
        let path: String
        let fd: Int32

        init(path: String) throws {
            self.path = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard fd >= 0, bound == 0 else { throw POSIXError(.EADDRINUSE) }
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit {
            close(fd)
            unlink(path)
        }

        /// The next datagram, or nil after 200 ms without one.
        func receive() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
        }

        /// Datagrams until one contains `wanted` (returned), for up to `seconds` (real time: the
        /// process's own start-up is what is waited for).
        func wait(for wanted: String, seconds: Double = 30) async -> String? {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let received = await Task.detached { self.receive() }.value
                if let received, received.contains(wanted) { return received }
            }
            return nil
        }
    }

    @Test func readyWatchdogStatusAndStoppingReachTheNotifySocket() async throws {
        let folder = try makeTempFolder("systemd")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let rules = folder + "/rules"
        try FileManager.default.createDirectory(atPath: rules, withIntermediateDirectories: true)
        try #"on("hook.ping", function(ev) end)"#.write(toFile: rules + "/ping.lua", atomically: true, encoding: .utf8)
        let notify = try NotifySocket(path: folder + "/notify")
        let arguments = ["run", "--simulate", "--rules", rules, "--data", folder + "/data", "--listen", "127.0.0.1:0"]
        // WATCHDOG_USEC of 0.4 s: a keep-alive every 0.2 s.
        let environment = ["SIDOBE_SECRET_KEY": testKey.reveal(), "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"]
        let child = try ProcessTests.Child(arguments: arguments, environment: environment, logURL: URL(fileURLWithPath: folder + "/log"))
        defer { if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }

        let ready = try #require(await notify.wait(for: "READY=1"), "no READY=1:\n\(child.log)")
        #expect(ready.contains("STATUS=ready: 1 rules, 0 timers pending, outbox 0"), "\(ready)")
        // READY=1 comes once the port is bound and the engine is ready.
        let port = try #require(try await child.port(after: 0))
        #expect(try await http(.GET, "http://127.0.0.1:\(port)/readyz").status == 200)
        let keepAlive = try #require(await notify.wait(for: "WATCHDOG=1", seconds: 5), "no WATCHDOG=1")
        #expect(keepAlive.contains("STATUS=ready:"))

        kill(child.process.processIdentifier, SIGTERM)
        let stopping = try #require(await notify.wait(for: "STOPPING=1", seconds: 10), "no STOPPING=1:\n\(child.log)")
        #expect(stopping.contains("STATUS=shutting down"))
        #expect(try await eventually(timeout: 20) { !child.process.isRunning }, "still running 20 s after SIGTERM")
        #expect(!child.process.isRunning && child.process.terminationStatus == 0)
    }

    @Test func withoutWatchdogUsecNoKeepAliveIsSent() async throws {
        let folder = try makeTempFolder("systemd-nowd")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let rules = folder + "/rules"
        try FileManager.default.createDirectory(atPath: rules, withIntermediateDirectories: true)
        let notify = try NotifySocket(path: folder + "/notify")
        let arguments = ["run", "--simulate", "--rules", rules, "--data", folder + "/data", "--listen", "127.0.0.1:0"]
        // WATCHDOG_PID names another process: the watchdog is not this one's.
        let environment = ["SIDOBE_SECRET_KEY": testKey.reveal(), "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"]
        let child = try ProcessTests.Child(arguments: arguments, environment: environment, logURL: URL(fileURLWithPath: folder + "/log"))
        defer { if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }
        #expect(await notify.wait(for: "READY=1") != nil, "no READY=1:\n\(child.log)")
        #expect(await notify.wait(for: "WATCHDOG=1", seconds: 1.5) == nil)
    }

    /// The unit of `deploy/`, as shipped but for where the binary is, passes `systemd-analyze verify`.
    @Test func theUnitFileVerifies() throws {
        let analyze = try #require(["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                   "systemd-analyze is not installed (Debian's systemd package)")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let unit = try String(contentsOf: root.appendingPathComponent("deploy/sidobot.service"), encoding: .utf8)
        #expect(unit.contains("Type=notify"))
        #expect(unit.contains("WatchdogSec="))
        for hardening in ["DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=sidobot", "NoNewPrivileges=yes"] {
            #expect(unit.contains(hardening), "\(hardening)")
        }
        let folder = try makeTempFolder("unit")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("sidobot").path
        let local = unit.replacingOccurrences(of: "/usr/local/bin/sidobot", with: binary)
        #expect(local != unit, "ExecStart names /usr/local/bin/sidobot")
        try local.write(toFile: folder + "/sidobot.service", atomically: true, encoding: .utf8)
        let verify = Process()
        verify.executableURL = URL(fileURLWithPath: analyze)
        verify.arguments = ["verify", folder + "/sidobot.service"]
        let output = Pipe()
        verify.standardOutput = output
        verify.standardError = output
        try verify.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        verify.waitUntilExit()
        #expect(verify.terminationStatus == 0 && text.isEmpty, "systemd-analyze verify:\n\(text)")
    }
}
