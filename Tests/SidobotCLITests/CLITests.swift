import Foundation
import Sidobe
import SidobeSimulator
import Testing

/// Runs the built `sidobot` binary as a person would, and checks what it prints and how it exits.
struct SidobotProcess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `sidobot` executable beside the test bundle in the build folder.
    static var executable: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("sidobot")
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["SIDOBE_SECRET_KEY"] = nil
        for (key, value) in environment { env[key] = value }
        process.environment = env
        // Files, not pipes: a chatty child can never block on a full pipe.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sidobot-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outURL = folder.appendingPathComponent("stdout"), errURL = folder.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus,
            stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self)
        )
    }
}

@Suite("sidobot command line")
struct CLITests {
    @Test func signPrintsOnlyTheSignature() throws {
        let result = try SidobotProcess.run(
            ["sign", "--id", "816332ca-b91a-469d-b4f6-9a17f440c05e"], environment: ["SIDOBE_SECRET_KEY": "sk_test_123"])
        #expect(result.status == 0)
        // printf '%s' 'sk_test_123|816332ca-b91a-469d-b4f6-9a17f440c05e' | sha256sum
        #expect(result.stdout == "64df2d9443ced18f85c11e6af5d2e28eb1b533778365bd272d5fb84b49f4d453\n")
        #expect(result.stderr.isEmpty)
    }

    @Test func signWithoutKeyIsOneLineAndExitTwo() throws {
        let result = try SidobotProcess.run(["sign", "--id", "x"])
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(result.stderr.contains("SIDOBE_SECRET_KEY is not set"))
    }

    @Test func sendWithoutKeyIsExitTwo() throws {
        let result = try SidobotProcess.run(["send", "--phone", "+628123123123", "--message", "hi"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("SIDOBE_SECRET_KEY"))
    }

    @Test func sendRejectsABadPhoneBeforeAnyRequest() throws {
        // The API base points nowhere: validation must fail first.
        let result = try SidobotProcess.run(
            ["send", "--phone", "0812-3123", "--message", "hi", "--api-base", "http://127.0.0.1:1/wa/v1"],
            environment: ["SIDOBE_SECRET_KEY": "k"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("invalid phone: must be in E.164 format"))
    }

    @Test func sendUsageErrors() throws {
        let result = try SidobotProcess.run(
            ["send", "--phone", "+628123123123", "--document-url", "https://x.test/a.pdf"], environment: ["SIDOBE_SECRET_KEY": "k"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("--document-url and --document-name go together"))
    }

    @Test func sendThroughTheSimulator() async throws {
        let simulator = SidobeSimulator(configuration: SimulatorConfiguration(secretKey: SecretKey("sk_cli")))
        _ = try await simulator.start(host: "127.0.0.1", port: 0)
        defer { Task { await simulator.stop() } }
        let ok = try SidobotProcess.run(
            ["send", "--phone", "+628123123123", "--message", "hello from the CLI", "--api-base", simulator.baseURL, "--json"],
            environment: ["SIDOBE_SECRET_KEY": "sk_cli"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let sent = try JSONDecoder().decode(SentMessage.self, from: Data(ok.stdout.utf8))
        #expect(sent.status == .success)
        let recorded = await simulator.messages()
        #expect(recorded.map(\.id) == [sent.id])

        let denied = try SidobotProcess.run(
            ["send", "--phone", "+628123123123", "--message", "x", "--api-base", simulator.baseURL],
            environment: ["SIDOBE_SECRET_KEY": "wrong-key"])
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("INVALID_API_KEY (HTTP 401)"))
        #expect(!denied.stderr.contains("wrong-key"))
        await simulator.stop()
    }

    /// `sidobot trace` takes the engine's address from SIDOBOT_URL and says in words why it
    /// could not reach it, naming where the address came from.
    @Test func traceUsesSidobotURLAndSaysWhyItCannotConnect() throws {
        let refused = try SidobotProcess.run(["trace", "ev-1"], environment: ["SIDOBOT_ADMIN_TOKEN": "t", "SIDOBOT_URL": "http://127.0.0.1:1"])
        #expect(refused.status == 1)
        #expect(refused.stderr == "error: cannot reach the engine at http://127.0.0.1:1 (SIDOBOT_URL): connection refused; "
                + "is `sidobot run` listening there? Set --url or SIDOBOT_URL to its address\n", "\(refused.stderr)")
        let flag = try SidobotProcess.run(["trace", "ev-1", "--url", "http://127.0.0.1:1/"], environment: ["SIDOBOT_ADMIN_TOKEN": "t", "SIDOBOT_URL": "nonsense"])
        #expect(flag.status == 1, "--url wins over SIDOBOT_URL")
        #expect(flag.stderr.contains("(--url): connection refused"), "\(flag.stderr)")
        let bad = try SidobotProcess.run(["trace", "ev-1"], environment: ["SIDOBOT_ADMIN_TOKEN": "t", "SIDOBOT_URL": "127.0.0.1:8080"])
        #expect(bad.status == 2)
        #expect(bad.stderr == "error: bad SIDOBOT_URL '127.0.0.1:8080': expected e.g. http://127.0.0.1:8080\n")
    }

    @Test func simulatorRejectsABadListenAddress() throws {
        let result = try SidobotProcess.run(["simulator", "--listen", "localhost"], environment: ["SIDOBE_SECRET_KEY": "k"])
        #expect(result.status == 2)
        #expect(result.stderr == "error: bad listen address 'localhost': expected HOST:PORT, e.g. 127.0.0.1:8080\n")
    }
}
