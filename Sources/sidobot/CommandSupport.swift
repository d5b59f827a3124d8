import ArgumentParser
import Foundation
import Logging
import Sidobe
import SidobotServer

/// A problem with how sidobot was started (a missing key, a bad address): printed as one
/// line on standard error, exit status 2.
struct ConfigurationError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Exit statuses shared by the subcommands.
enum ExitStatus {
    /// Sidobe answered with an error, or could not be reached.
    static let requestFailed = ExitCode(1)
    /// Bad configuration: see ``ConfigurationError``.
    static let badConfiguration = ExitCode(2)
}

enum Environment {
    static func value(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }

    /// The secret key from `SIDOBE_SECRET_KEY`, or a configuration error saying what needs it.
    static func secretKey(neededFor purpose: String) throws -> SecretKey {
        guard let key = value("SIDOBE_SECRET_KEY") else {
            throw ConfigurationError("SIDOBE_SECRET_KEY is not set; \(purpose) needs the secret key from the Sidobe dashboard (Developer Tools → Credential)")
        }
        return SecretKey(key)
    }
}

/// Runs a subcommand body, turning a ``ConfigurationError`` into one line on stderr and exit 2.
func runReportingConfigurationErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ConfigurationError {
        printError("error: \(error.description)")
        throw ExitStatus.badConfiguration
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Sets up swift-log once: one line an event on stderr, level from `SIDOBOT_LOG_LEVEL` (default
/// info), format `text` (logfmt fields) or `json` lines.
func bootstrapLogging(format: LogFormat = .text) {
    let level = Environment.value("SIDOBOT_LOG_LEVEL").flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
    LoggingSystem.bootstrap { label in LogLineHandler(label: label, level: level, format: format) }
}

extension LogFormat: ExpressibleByArgument {}

/// A `HOST:PORT` to listen on: `127.0.0.1:8080`, `0.0.0.0:80`, `[::1]:8080`, `localhost:9000`.
struct ListenAddress: Equatable, CustomStringConvertible {
    var host: String
    var port: Int

    /// Parses `HOST:PORT`; the port is 0…65535 (0 picks a free port).
    init(parsing text: String) throws {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw ConfigurationError("bad listen address '\(text)': expected [IPv6]:PORT, e.g. [::1]:8080")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else {
                throw ConfigurationError("bad listen address '\(text)': expected HOST:PORT, e.g. 127.0.0.1:8080")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard !hostPart.isEmpty else {
            throw ConfigurationError("bad listen address '\(text)': the host is missing, e.g. 127.0.0.1:8080")
        }
        guard let port = Int(portPart), (0...65535).contains(port) else {
            throw ConfigurationError("bad listen address '\(text)': the port must be a number from 0 to 65535")
        }
        self.host = String(hostPart)
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A size in bytes as a person writes it: `2GiB`, `512MiB`, `1.5GB`, `800M`, `65536`. Binary
/// units (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones (kB, MB, GB, TB) powers of 1000;
/// a bare `K`, `M`, `G`, `T` is binary, as `free` and systemd's `MemoryMax=` read them.
struct ByteSize: ExpressibleByArgument, Equatable {
    var bytes: Int

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces)
        let number = text.prefix { $0.isNumber || $0 == "." }
        let unit = text.dropFirst(number.count).trimmingCharacters(in: .whitespaces)
        let kibi = 1024.0
        let factors: [String: Double] = [
            "": 1, "B": 1, "K": kibi, "KiB": kibi, "kB": 1e3, "KB": 1e3, "M": kibi * kibi, "MiB": kibi * kibi, "MB": 1e6,
            "G": kibi * kibi * kibi, "GiB": kibi * kibi * kibi, "GB": 1e9, "T": kibi * kibi * kibi * kibi, "TiB": kibi * kibi * kibi * kibi, "TB": 1e12,
        ]
        guard let value = Double(number), let factor = factors[unit], value > 0, value * factor < Double(Int.max) else { return nil }
        bytes = Int(value * factor)
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
