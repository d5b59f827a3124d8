#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import Sidobe

/// `ingress`: wrk on loopback POSTing signed `SEND_MESSAGE_STATUS` webhooks, each with its own id,
/// first to a bare Hummingbird route that answers 200 (the ceiling: `sidobot-bench bare-server`),
/// then through `sidobot run`'s full path (signature, dedupe, journal under `everysec`, dispatch to
/// one trivial Lua rule). The servers are pinned to one core and wrk to the other.
enum IngressBench {
    static let known = [
        "duration": "seconds of load per measured run (default 10)",
        "warmup": "seconds of load before each measured run (default 3)",
        "connections": "wrk connections (default 64)",
        "threads": "wrk threads (default 1)",
        "requests": "distinct signed webhooks prepared per measured run (default 400000)",
        "server-cpu": "the core the server is pinned to (default 0)",
        "client-cpu": "the core wrk is pinned to (default 1)",
        "rounds": "measured runs of each server, alternating (default 2); the best is reported",
        "only": "bare | bare-body | sidobot",
        "log-level": "SIDOBOT_LOG_LEVEL for sidobot run (default info, as in production)",
        "fsync": "sidobot run --fsync (default everysec)",
        "keep!": "keep the temp folder (requests, logs, data) for inspection",
        "sidobot": "the sidobot binary to measure (default: the one beside sidobot-bench), e.g. an older build",
    ]

    static let secret = SecretKey("bench-secret-key-0123456789")

    struct WrkResult {
        var requests: Int
        var seconds: Double
        var p50: Double
        var p99: Double
        var max: Double
        var non2xx: Int
        var socketErrors: Int
        var wrapped: Int
        var rate: Double { Double(requests) / seconds }
    }

    static func main(_ args: [String]) async -> Int32 {
        await runBench(args, mode: "ingress", known: known) { options in try await run(options) }
    }

    static func run(_ options: BenchOptions) async throws {
        guard let wrk = BenchPaths.tool("wrk") else { throw BenchFailure("wrk is not installed (apt-get install wrk; scripts/bench does it)") }
        guard let taskset = BenchPaths.tool("taskset") else { throw BenchFailure("taskset is not installed (util-linux)") }
        let duration = try options.int("duration", 10)
        let warmup = try options.int("warmup", 3)
        let connections = try options.int("connections", 64)
        let threads = try options.int("threads", 1)
        let requests = try options.int("requests", 400_000)
        let serverCPU = try options.int("server-cpu", 0)
        let clientCPU = try options.int("client-cpu", 1)
        let rounds = try options.int("rounds", 2)
        let only = options.string("only")
        let logLevel = options.string("log-level") ?? "info"
        let fsync = options.string("fsync") ?? "everysec"
        let folder = try TempFolder("ingress")
        defer { if !options.flag("keep") { folder.remove() } else { print("kept \(folder.path)") } }

        let script = folder.file("webhooks.lua")
        try folder.write("webhooks.lua", wrkScript)
        print("ingress: preparing signed webhooks (\(Format.int(Double(requests))) per measured run)…")
        var batch = 0
        func prepare(_ count: Int) throws(BenchFailure) -> String {
            batch += 1
            let name = "requests-\(batch).tsv"
            try writeRequests(count: count, batch: batch, to: folder.file(name))
            return folder.file(name)
        }

        let sidobot = try options.string("sidobot") ?? BenchPaths.sidobot()
        let bench = BenchPaths.executableFolder + "/sidobot-bench"
        try folder.write("trivial.lua", #"on("message.status", function(ev) local s = ev.status end)"# + "\n")
        try FileManager.default.createDirectory(atPath: folder.file("rules"), withIntermediateDirectories: true)
        try? FileManager.default.moveItem(atPath: folder.file("trivial.lua"), toPath: folder.file("rules/trivial.lua"))

        func load(port: Int, requestsFile: String, seconds: Int) throws -> WrkResult {
            let out = folder.file("wrk.out")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: taskset)
            process.arguments = ["-c", "\(clientCPU)", wrk, "-t\(threads)", "-c\(connections)", "-d\(seconds)s", "--timeout", "10s",
                                 "-s", script, "http://127.0.0.1:\(port)/webhooks/sidobe", "--", requestsFile, "\(threads)"]
            _ = FileManager.default.createFile(atPath: out, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
            process.standardError = process.standardOutput
            try process.run()
            process.waitUntilExit()
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("BENCH ") }) else {
                throw BenchFailure("wrk printed no result:\n\(text)")
            }
            var fields: [String: Double] = [:]
            for pair in line.dropFirst(6).split(separator: " ") {
                let kv = pair.split(separator: "=")
                if kv.count == 2 { fields[String(kv[0])] = Double(kv[1]) }
            }
            return WrkResult(requests: Int(fields["requests"] ?? 0), seconds: (fields["duration_us"] ?? 1) / 1e6,
                             p50: (fields["p50_us"] ?? 0) / 1e6, p99: (fields["p99_us"] ?? 0) / 1e6, max: (fields["max_us"] ?? 0) / 1e6,
                             non2xx: Int(fields["non2xx"] ?? 0), socketErrors: Int(fields["errors"] ?? 0), wrapped: Int(fields["wrapped"] ?? 0))
        }

        func measure(_ name: String, start: () throws -> (ChildProcess, Int)) throws -> WrkResult {
            let warmupFile = try prepare(max(20_000, warmup * 30_000))
            let measuredFile = try prepare(requests)
            let (child, port) = try start()
            defer { child.stop() }
            _ = try load(port: port, requestsFile: warmupFile, seconds: warmup)
            let result = try load(port: port, requestsFile: measuredFile, seconds: duration)
            try? FileManager.default.removeItem(atPath: warmupFile)
            try? FileManager.default.removeItem(atPath: measuredFile)
            if result.wrapped > 0 {
                print("  warning: \(name): the prepared webhooks ran out and \(result.wrapped) were sent again (duplicates); raise --requests")
            }
            return result
        }

        func startBare(collecting: Bool) throws -> (ChildProcess, Int) {
            let child = try ChildProcess(executable: taskset, arguments: ["-c", "\(serverCPU)", bench, "bare-server", "--port", "0"]
                                            + (collecting ? ["--collect"] : []),
                                         folder: folder, label: collecting ? "bare-body" : "bare")
            do {
                let line = try child.waitForLine(containing: "listening on port", timeout: 30)
                guard let port = Int(line.split(separator: " ").last ?? "") else { throw BenchFailure("bare-server: cannot read the port from '\(line)'") }
                return (child, port)
            } catch {
                child.stop()
                throw error
            }
        }

        var round = 0
        func startSidobot() throws -> (ChildProcess, Int) {
            round += 1
            let data = folder.file("data-\(round)")
            let port = try HTTPProbe.freePort()
            let child = try ChildProcess(
                executable: taskset,
                arguments: ["-c", "\(serverCPU)", sidobot, "run", "--rules", folder.file("rules"), "--data", data,
                            "--listen", "127.0.0.1:\(port)", "--fsync", fsync, "--api-base", "http://127.0.0.1:9/wa/v1"],
                environment: ["SIDOBE_SECRET_KEY": secret.reveal(), "SIDOBOT_LOG_LEVEL": logLevel],
                folder: folder, label: "sidobot-\(round)")
            do {
                try waitReady(port: port)
            } catch {
                child.stop()
                throw error
            }
            return (child, port)
        }

        var bare: WrkResult?
        var bareBody: WrkResult?
        var full: WrkResult?
        func better(_ a: WrkResult?, _ b: WrkResult) -> WrkResult { a.map { $0.rate >= b.rate ? $0 : b } ?? b }
        for r in 1...max(1, rounds) {
            if only == nil || only == "bare" {
                print("ingress: round \(r): bare Hummingbird route (\(warmup) s warm-up, \(duration) s measured, \(connections) connections)…")
                bare = better(bare, try measure("bare") { try startBare(collecting: false) })
            }
            if only == nil || only == "bare-body" {
                print("ingress: round \(r): bare Hummingbird route reading the body (\(warmup) s warm-up, \(duration) s measured, \(connections) connections)…")
                bareBody = better(bareBody, try measure("bare-body") { try startBare(collecting: true) })
            }
            if only == nil || only == "sidobot" {
                print("ingress: round \(r): sidobot run, full webhook path (\(warmup) s warm-up, \(duration) s measured, \(connections) connections)…")
                full = better(full, try measure("sidobot", start: startSidobot))
            }
        }

        var table = Table(header: ["server (pinned to one core)", "req/s", "p50", "p99", "max", "non-2xx", "socket errors"])
        for (name, result) in [("bare Hummingbird route, answers 200", bare), ("bare route that reads the body first", bareBody),
                               ("sidobot run: verify, dedupe, journal, Lua rule", full)] {
            guard let result else { continue }
            table.rows.append([name, Format.int(result.rate), Format.ms(result.p50), Format.ms(result.p99), Format.ms(result.max),
                               "\(result.non2xx)", "\(result.socketErrors)"])
        }
        print("")
        print(table.render())
        if let bare, let full {
            print("ratio sidobot / bare: \(Format.fixed(full.rate / bare.rate)) (target ≥ 0.70); sidobot p99 \(Format.ms(full.p99)) (target ≤ 10 ms at 64 connections)")
        }
        if let bareBody, let full {
            print("ratio sidobot / bare route reading the body: \(Format.fixed(full.rate / bareBody.rate))")
        }
        print("wrk: \(threads) thread(s), \(connections) connections, pinned to core \(clientCPU); servers pinned to core \(serverCPU); fsync \(fsync); log level \(logLevel)")
    }

    /// Polls `/readyz` until the engine answers 200.
    static func waitReady(port: Int) throws(BenchFailure) {
        let start = BenchClock.nanos()
        while BenchClock.seconds(since: start) < 60 {
            if HTTPProbe.status(port: port, path: "/readyz") == 200 { return }
            usleep(10_000)
        }
        throw BenchFailure("sidobot run did not become ready within 60 s")
    }

    /// `SIGNATURE<TAB>BODY` lines: distinct webhook ids, statuses cycling SUCCESS, FAILED, PENDING, SUCCESS.
    static func writeRequests(count: Int, batch: Int, to path: String) throws(BenchFailure) {
        var out: [UInt8] = []
        out.reserveCapacity(count * 330)
        let statuses = ["SUCCESS", "FAILED", "PENDING", "SUCCESS"]
        let salt = UInt64(getpid()) << 20 | UInt64(batch)
        for n in 0..<count {
            let id = uuidLike(salt, UInt64(n), 0x5eed)
            let message = uuidLike(salt, UInt64(n), 0xbeef)
            let body = #"{"id":"\#(id)","event":"SEND_MESSAGE_STATUS","created_at":"2026-12-01T09:00:00.000000+07:00","data":{"whatsapp_message_id":"\#(message)","status":"\#(statuses[n & 3])","send_at":"2026-12-01T09:00:00+07:00","message_type":"TEXT"}}"#
            out.append(contentsOf: WebhookSignature.sign(id: id, secretKey: secret).utf8)
            out.append(9)
            out.append(contentsOf: body.utf8)
            out.append(10)
        }
        guard FileManager.default.createFile(atPath: path, contents: Data(out)) else {
            throw BenchFailure("cannot write \(path)")
        }
    }

    /// A UUID-shaped id, distinct for each (salt, n, tag).
    static func uuidLike(_ salt: UInt64, _ n: UInt64, _ tag: UInt64) -> String {
        var x = salt &* 0x9E37_79B9_7F4A_7C15 ^ n &* 0xBF58_476D_1CE4_E5B9 ^ tag
        func next() -> UInt64 {
            x ^= x >> 31
            x = x &* 0x94D0_49BB_1331_11EB
            x ^= x >> 29
            return x
        }
        let a = next(), b = next()
        let hex = String(a, radix: 16).leftPadded(16) + String(b ^ n, radix: 16).leftPadded(16)
        let c = Array(hex)
        return "\(String(c[0..<8]))-\(String(c[8..<12]))-\(String(c[12..<16]))-\(String(c[16..<20]))-\(String(c[20..<32]))"
    }

    /// The wrk script: loads its share of the prepared requests, sends each once (wrapping, and
    /// counting it, if they run out), and prints one machine-readable result line.
    static let wrkScript = #"""
        local threads = {}
        local requests = {}
        local index = 0
        wrapped = 0

        function setup(thread)
          thread:set("tid", #threads)
          table.insert(threads, thread)
        end

        function init(args)
          local path, count = args[1], tonumber(args[2])
          local i = 0
          for line in io.lines(path) do
            if i % count == tid then
              local tab = line:find("\t", 1, true)
              requests[#requests + 1] = wrk.format("POST", nil, {
                ["Content-Type"] = "application/json",
                ["X-Webhook-Signature"] = line:sub(1, tab - 1),
              }, line:sub(tab + 1))
            end
            i = i + 1
          end
        end

        function request()
          index = index + 1
          if index > #requests then
            index = 1
            wrapped = wrapped + #requests
          end
          return requests[index]
        end

        function done(summary, latency, _)
          local w = 0
          for _, t in ipairs(threads) do w = w + (t:get("wrapped") or 0) end
          local e = summary.errors
          io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d non2xx=%d errors=%d wrapped=%d\n",
            summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
            e.status, e.connect + e.read + e.write + e.timeout, w))
        end
        """#
}

private extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

/// A minimal blocking HTTP/1.1 GET over a socket, for readiness polls (no client library needed).
enum HTTPProbe {
    /// A port that was free a moment ago (bound to 127.0.0.1:0 and released), for a child to listen on.
    static func freePort() throws(BenchFailure) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchFailure("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw BenchFailure("cannot find a free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func status(port: Int, path: String) -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buffer, buffer.count, 0)
        guard n > 12 else { return nil }
        let head = String(decoding: buffer[0..<n], as: UTF8.self)
        let parts = head.split(separator: " ")
        return parts.count > 1 ? Int(parts[1]) : nil
    }
}
