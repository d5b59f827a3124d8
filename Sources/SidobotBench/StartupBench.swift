import Foundation
import SidobotEngine

/// `startup`: time to ready with 100 rules (the six example rules copied under distinct names): an
/// engine started in process (rules loaded, journal replayed, schedules set), and `sidobot run` as a
/// process, from spawn until `/readyz` answers 200.
enum StartupBench {
    static let known = [
        "rules": "rule files (default 100)",
        "rounds": "rounds of each (default 5)",
        "examples": "the folder of example rules to copy (default rules)",
    ]

    static func main(_ args: [String]) async -> Int32 {
        await runBench(args, mode: "startup", known: known) { options in
            try await run(count: try options.int("rules", 100), rounds: try options.int("rounds", 5), examples: options.string("examples") ?? "rules")
        }
    }

    static func run(count: Int, rounds: Int, examples: String) async throws {
        let sources = try FileManager.default.contentsOfDirectory(atPath: examples)
            .filter { $0.hasSuffix(".lua") && !$0.hasSuffix("_test.lua") }.sorted()
            .map { try String(contentsOfFile: examples + "/" + $0, encoding: .utf8) }
        guard !sources.isEmpty else { throw BenchFailure("no example rules in \(examples) (run from the repository root, or pass --examples)") }
        var rules: [String: String] = [:]
        for i in 0..<count { rules[String(format: "rule_%03d", i)] = sources[i % sources.count] }
        let bytes = rules.values.reduce(0) { $0 + $1.utf8.count }

        var inProcess: [Double] = []
        for _ in 0..<rounds {
            let start = BenchClock.nanos()
            let harness = try await EngineHarness.start(label: "startup", rules: rules, journal: .everysec)
            inProcess.append(BenchClock.seconds(since: start))
            await harness.stop()
        }

        let sidobot = try BenchPaths.sidobot()
        let folder = try TempFolder("startup-run")
        defer { folder.remove() }
        try FileManager.default.createDirectory(atPath: folder.file("rules"), withIntermediateDirectories: true)
        for (name, source) in rules { try folder.write("rules/\(name).lua", source) }
        var process: [Double] = []
        for round in 0..<rounds {
            let start = BenchClock.nanos()
            let child = try ChildProcess(executable: sidobot, arguments: ["run", "--rules", folder.file("rules"), "--data", folder.file("data-\(round)"),
                                                                     "--listen", "127.0.0.1:0", "--api-base", "http://127.0.0.1:9/wa/v1"],
                                         environment: ["SIDOBE_SECRET_KEY": "bench-startup-key", "SIDOBOT_LOG_LEVEL": "info"],
                                         folder: folder, label: "run-\(round)")
            let line = try child.waitForLine(containing: "sidobot listening on http://", inErrors: true, timeout: 60)
            guard let range = line.range(of: #"listening on http://127\.0\.0\.1:\d+"#, options: .regularExpression),
                  let port = Int(line[range].split(separator: ":").last ?? "") else { throw BenchFailure("cannot read the port from '\(line)'") }
            while HTTPProbe.status(port: port, path: "/readyz") != 200 {
                guard BenchClock.seconds(since: start) < 60 else { throw BenchFailure("sidobot run was not ready within 60 s") }
                usleep(1_000)
            }
            process.append(BenchClock.seconds(since: start))
            child.stop()
        }
        print("startup: \(count) rules (\(sources.count) example rules copied; \(Format.int(Double(bytes))) bytes of Lua), fresh data folder, \(rounds) rounds")
        var table = Table(header: ["what", "best", "median", "worst", "target"])
        for (name, values) in [("engine.start() in process", inProcess), ("sidobot run: spawn → /readyz 200", process)] {
            let sorted = values.sorted()
            table.rows.append([name, Format.ms(sorted.first ?? 0), Format.ms(Percentiles.nearestRank(sorted, 50)), Format.ms(sorted.last ?? 0), "≤ 500 ms"])
        }
        print(table.render())
    }
}
