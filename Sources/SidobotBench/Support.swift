#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Foundation

/// Small helpers shared by the benchmark modes: option parsing, clocks, percentiles, RSS,
/// temp folders, child processes. Nothing here asserts: benchmarks measure and print.

/// `--name value` options and `--flag`s, with a usage line for mistakes.
struct BenchOptions {
    private var values: [String: String] = [:]
    private var flags: Set<String> = []
    let mode: String
    let known: [String: String]

    /// `known` maps each option name (without `--`) to its help; names ending in `!` are flags.
    init(_ args: [String], mode: String, known: [String: String]) throws(BenchUsageError) {
        self.mode = mode
        self.known = known
        var i = 0
        while i < args.count {
            let arg = args[i]
            guard arg.hasPrefix("--") else { throw BenchUsageError(mode: mode, known: known, problem: "unexpected argument \(arg)") }
            let name = String(arg.dropFirst(2))
            if known[name + "!"] != nil {
                flags.insert(name)
            } else if known[name] != nil, i + 1 < args.count {
                values[name] = args[i + 1]
                i += 1
            } else {
                throw BenchUsageError(mode: mode, known: known, problem: "unknown option or missing value: \(arg)")
            }
            i += 1
        }
    }

    func int(_ name: String, _ fallback: Int) throws(BenchUsageError) -> Int {
        guard let text = values[name] else { return fallback }
        guard let value = Int(text.replacingOccurrences(of: "_", with: "")) else {
            throw BenchUsageError(mode: mode, known: known, problem: "--\(name) wants a whole number, got \(text)")
        }
        return value
    }

    func double(_ name: String, _ fallback: Double) throws(BenchUsageError) -> Double {
        guard let text = values[name] else { return fallback }
        guard let value = Double(text) else {
            throw BenchUsageError(mode: mode, known: known, problem: "--\(name) wants a number, got \(text)")
        }
        return value
    }

    func string(_ name: String) -> String? { values[name] }
    func flag(_ name: String) -> Bool { flags.contains(name) }
}

struct BenchUsageError: Error, CustomStringConvertible {
    let mode: String
    let known: [String: String]
    let problem: String
    var description: String {
        var text = "\(mode): \(problem)\noptions:"
        for (name, help) in known.sorted(by: { $0.key < $1.key }) {
            text += name.hasSuffix("!") ? "\n  --\(name.dropLast())\t\(help)" : "\n  --\(name) N\t\(help)"
        }
        return text
    }
}

/// A failure that stops a benchmark (a child that would not start, a tool that is missing).
struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum BenchClock {
    /// Monotonic nanoseconds.
    static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    static func seconds(since start: UInt64) -> Double { Double(nanos() &- start) / 1e9 }
}

enum Percentiles {
    /// The `p`-th percentile (0...100) of `values` by nearest rank; 0 for no values.
    static func of(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return nearestRank(sorted, p)
    }

    static func nearestRank(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count - 1, max(0, rank - 1))]
    }
}

enum ProcessMemory {
    /// The resident set size of this process in bytes (`VmRSS` in /proc/self/status), or 0 off Linux.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let digits = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            return digits * 1024
        }
        return 0
    }

    /// Gives freed memory back to the system so RSS readings mean "live", not "once touched".
    static func trim() {
        // glibc's malloc_trim is not in the Glibc module; look it up (absent elsewhere: nothing to do).
        typealias Trim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }
}

/// A folder under /tmp, removed when the benchmark ends (unless kept for inspection).
final class TempFolder {
    let path: String
    init(_ label: String) throws(BenchFailure) {
        var template = Array("/tmp/sidobot-bench-\(label)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw BenchFailure("cannot create a temp folder: \(String(cString: strerror(errno)))")
        }
        path = String(cString: made)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ text: String) throws(BenchFailure) {
        do {
            try text.write(toFile: file(name), atomically: true, encoding: .utf8)
        } catch {
            throw BenchFailure("cannot write \(file(name)): \(error)")
        }
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

enum BenchPaths {
    /// The folder this executable is in: `sidobot` is built beside it.
    static var executableFolder: String {
        let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (link as NSString).deletingLastPathComponent
    }

    /// The `sidobot` binary beside this one.
    static func sidobot() throws(BenchFailure) -> String {
        let path = executableFolder + "/sidobot"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw BenchFailure("\(path) is missing: build it first (swift build -c release --product sidobot), or use scripts/bench")
        }
        return path
    }

    /// A program on PATH, or nil.
    static func tool(_ name: String) -> String? {
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}

/// A child process with its output collected to files (so a chatty server cannot block on a full pipe).
final class ChildProcess {
    let process = Process()
    let outputPath: String
    let errorPath: String

    init(executable: String, arguments: [String], environment: [String: String] = [:], folder: TempFolder, label: String) throws(BenchFailure) {
        outputPath = folder.file("\(label).out")
        errorPath = folder.file("\(label).err")
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        do {
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
            try process.run()
        } catch {
            throw BenchFailure("cannot start \(executable): \(error)")
        }
    }

    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
    var errors: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

    /// Waits (polling the output, up to `timeout` seconds) for a line containing `marker`; returns that line.
    func waitForLine(containing marker: String, inErrors: Bool = false, timeout: Double) throws(BenchFailure) -> String {
        let start = BenchClock.nanos()
        while BenchClock.seconds(since: start) < timeout {
            let text = inErrors ? errors : output
            if let line = text.split(separator: "\n").first(where: { $0.contains(marker) }) { return String(line) }
            if !process.isRunning {
                throw BenchFailure("\(process.executableURL?.lastPathComponent ?? "child") exited (\(process.terminationStatus)) before printing '\(marker)':\n\(errors.suffix(2000))")
            }
            usleep(5_000)
        }
        throw BenchFailure("timed out waiting for '\(marker)' from \(process.executableURL?.lastPathComponent ?? "child")")
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}

/// Fixed-width table output.
struct Table {
    var header: [String]
    var rows: [[String]] = []

    func render() -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                i == 0 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  ")
        }
        return ([line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line)).joined(separator: "\n")
    }
}

enum Format {
    static func int(_ value: Double) -> String {
        let digits = String(Int(value.rounded()))
        var out = ""
        for (i, ch) in digits.reversed().enumerated() {
            if i > 0 && i % 3 == 0 && ch != "-" { out.append(",") }
            out.append(ch)
        }
        return String(out.reversed())
    }

    static func fixed(_ value: Double, _ places: Int = 2) -> String { String(format: "%.\(places)f", value) }
    static func ms(_ seconds: Double) -> String { String(format: "%.2f ms", seconds * 1000) }
    static func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
}

/// A mode's entry point: parses its options, runs it, and turns what it throws into the exit status
/// (2 with the usage for a bad option, 1 with the failure otherwise).
func runBench(_ args: [String], mode: String, known: [String: String], _ body: (BenchOptions) async throws -> Void) async -> Int32 {
    if args.contains("--help") || args.contains("-h") {
        print(BenchUsageError(mode: mode, known: known, problem: "measures what PERFORMANCE.md describes for this mode"))
        return 0
    }
    do {
        let options = try BenchOptions(args, mode: mode, known: known)
        try await body(options)
        return 0
    } catch let error as BenchUsageError {
        print(error)
        return 2
    } catch {
        print("\(mode): \(error)")
        return 1
    }
}
