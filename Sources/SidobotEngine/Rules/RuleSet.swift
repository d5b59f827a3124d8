import Foundation
import Logging
import LuaSandbox

/// What a reload did.
public struct RuleReloadReport: Sendable, CustomStringConvertible {
    /// Rules loaded for the first time or whose file changed, now running the new version.
    public var loaded: [String] = []
    /// Rules whose file did not change.
    public var unchanged: [String] = []
    /// Rules whose file is gone: their handlers are removed (their pending timers stay, and fire into
    /// nothing unless the file comes back).
    public var removed: [String] = []
    /// Files that failed to load: the previous version (if any) keeps running.
    public var failed: [RuleLoadError] = []

    public var description: String {
        var parts: [String] = []
        if !loaded.isEmpty { parts.append("loaded \(loaded.joined(separator: ", "))") }
        if !removed.isEmpty { parts.append("removed \(removed.joined(separator: ", "))") }
        if !failed.isEmpty { parts.append("failed: \(failed.map(\.description).joined(separator: "; "))") }
        return parts.isEmpty ? "no changes" : parts.joined(separator: "; ")
    }
}

/// A rule file whose current content failed to load, kept until the file loads or goes: the
/// admin API, the status page and `sidobot_rules_failing_to_load` show it, not only the log.
public struct RuleLoadFailure: Sendable, Hashable {
    /// The rule's name (its file's stem).
    public var rule: String
    public var error: RuleLoadError
    /// When the reload that found it ran.
    public var at: UnixTime
    /// Whether a previous version of the rule keeps running (false for a new file).
    public var previousVersionRuns: Bool
}

/// The last reload of the rules folder (not the load at start-up, which fails the start instead).
public struct RuleReloadState: Sendable, Hashable {
    public var at: UnixTime
    /// Every file of the folder loaded (or was unchanged) and the folder could be read.
    public var successful: Bool
    /// The folder could not be read, if so (nothing was reloaded).
    public var folderError: RuleLoadError?
}

/// The rules folder, loaded: one ``LoadedRule`` per file, swapped atomically when a file changes.
///
/// A changed file is loaded and checked before it replaces the running version (whose runs
/// already going finish in the old state); a broken edit keeps the previous version and is
/// reported; a deleted file's handlers go. Timers live in the store, not in Lua, so a rule's
/// pending timers survive its reload and fire into the new version.
///
/// Owned by the engine actor.
final class RuleSet {
    private(set) var rules: [String: LoadedRule] = [:]
    /// Files whose current content failed to load, by rule name; cleared when the file loads
    /// (or is back to the running version's source) or is removed.
    private(set) var loadFailures: [String: RuleLoadFailure] = [:]
    private(set) var lastReload: RuleReloadState?
    /// The folder as last loaded (file → modification time and size), to notice edits.
    private var fingerprint: [String: String] = [:]
    private let folder: String
    private let loader: RuleLoader
    private let logger: Logger

    init(folder: String, loader: RuleLoader, logger: Logger) {
        self.folder = folder
        self.loader = loader
        self.logger = logger
    }

    subscript(name: String) -> LoadedRule? { rules[name] }

    /// The rules in name order.
    var sorted: [LoadedRule] { rules.values.sorted { $0.name < $1.name } }

    /// Loads every rule file (start-up). Throws every file that failed, naming file and line.
    func loadAll() async throws(EngineError) {
        fingerprint = currentFingerprint()
        var failures: [RuleLoadError] = []
        for (_, result) in try await loadEach() {
            switch result {
            case .success(let rule): rules[rule.name] = rule
            case .failure(let error): failures.append(error)
            }
        }
        if !failures.isEmpty { throw .rules(failures) }
    }

    /// Loads every rule file of the folder, each on its own (for `sidobot check`: nothing is kept).
    func loadEach() async throws(EngineError) -> [(file: (name: String, path: String), result: Result<LoadedRule, RuleLoadError>)] {
        let files: [(name: String, path: String)]
        do {
            files = try RuleFiles.list(in: folder)
        } catch {
            throw .rules([error])
        }
        var loaded: [(file: (name: String, path: String), result: Result<LoadedRule, RuleLoadError>)] = []
        for file in files {
            do {
                loaded.append((file, .success(try await loader.load(name: file.name, path: file.path))))
            } catch {
                loaded.append((file, .failure(error)))
            }
        }
        return loaded
    }

    /// Reloads the folder: changed and new files are loaded, deleted ones removed. Reloading a
    /// quarantined rule releases it.
    func reload(now: UnixTime) async -> RuleReloadReport {
        var report = RuleReloadReport()
        // Taken before the files are read, so an edit made while they load is noticed next time.
        fingerprint = currentFingerprint()
        let files: [(name: String, path: String)]
        do {
            files = try RuleFiles.list(in: folder)
        } catch {
            report.failed.append(error)
            lastReload = RuleReloadState(at: now, successful: false, folderError: error)
            logger.error("rules not reloaded", metadata: ["error": "\(error)"])
            return report
        }
        for file in files {
            let display = RuleFiles.displayPath(file.path)
            let existing = rules[file.name]
            let source: String
            do {
                source = try String(contentsOfFile: file.path, encoding: .utf8)
            } catch {
                let failure = RuleLoadError(path: display, line: nil, message: "cannot read the file: \(error.localizedDescription)")
                report.failed.append(failure)
                loadFailures[file.name] = RuleLoadFailure(rule: file.name, error: failure, at: now, previousVersionRuns: existing != nil)
                continue
            }
            if let existing, existing.source == source, !existing.stats.quarantined {
                report.unchanged.append(file.name)
                loadFailures[file.name] = nil
                continue
            }
            do {
                let fresh = try await loader.load(name: file.name, path: display, source: source)
                if let existing { fresh.inherit(existing, releasingQuarantine: true) }
                rules[file.name] = fresh
                loadFailures[file.name] = nil
                report.loaded.append(file.name)
                logger.info(existing == nil ? "rule loaded" : "rule reloaded", metadata: ["rule": "\(file.name)"])
            } catch {
                report.failed.append(error)
                loadFailures[file.name] = RuleLoadFailure(rule: file.name, error: error, at: now, previousVersionRuns: existing != nil)
                logger.error(existing == nil ? "new rule failed to load" : "rule edit failed to load; the previous version keeps running",
                             metadata: ["rule": "\(file.name)", "error": "\(error)"])
            }
        }
        let present = Set(files.map(\.name))
        for name in rules.keys.sorted() where !present.contains(name) {
            rules[name] = nil
            report.removed.append(name)
            logger.info("rule file removed; its handlers are gone", metadata: ["rule": "\(name)"])
        }
        for name in loadFailures.keys where !present.contains(name) { loadFailures[name] = nil }
        lastReload = RuleReloadState(at: now, successful: report.failed.isEmpty, folderError: nil)
        return report
    }

    /// Replaces a rule's Lua state after a limit abort: a state that hit a limit is discarded and
    /// the rule's current source loaded again. Returns whether the fresh state went in (not if the
    /// rule was reloaded or removed meanwhile).
    func rebuild(_ rule: LoadedRule) async -> Bool {
        do {
            let fresh = try await loader.load(name: rule.name, path: rule.displayPath, source: rule.source)
            guard rules[rule.name] === rule else {
                fresh.state.close()
                return false
            }
            fresh.inherit(rule, releasingQuarantine: false)
            rules[rule.name] = fresh
            return true
        } catch {
            logger.error("could not rebuild the rule after an abort", metadata: ["rule": "\(rule.name)", "error": "\(error)"])
            return false
        }
    }

    /// Whether a file changed, appeared or disappeared since the folder was last loaded.
    func folderChanged() -> Bool { currentFingerprint() != fingerprint }

    /// Closes every rule's state (shutdown).
    func closeAll() {
        for rule in rules.values { rule.state.close() }
    }

    /// The folder's rule files with their modification time and size.
    private func currentFingerprint() -> [String: String] {
        guard let files = try? RuleFiles.list(in: folder) else { return [:] }
        var fingerprint: [String: String] = [:]
        for file in files {
            let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
            fingerprint[file.name] = "\(modified)/\(size)"
        }
        return fingerprint
    }
}

/// The rule files of a folder.
public enum RuleFiles {
    /// How a rule file is named in errors and traces: its folder's name and the file name
    /// (`rules/retry.lua`), short enough that Lua never abbreviates it.
    public static func displayPath(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().lastPathComponent
        return folder.isEmpty || folder == "/" ? url.lastPathComponent : "\(folder)/\(url.lastPathComponent)"
    }

    /// `*.lua` files that are not tests (`*_test.lua`), sorted by name, as `(stem, path)`.
    public static func list(in folder: String) throws(RuleLoadError) -> [(name: String, path: String)] {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw RuleLoadError(path: folder, line: nil, message: "cannot read the rules folder: \(error.localizedDescription)")
        }
        return entries.filter { $0.hasSuffix(".lua") && !$0.hasSuffix("_test.lua") && !$0.hasPrefix(".") }
            .sorted()
            .map { (String($0.dropLast(4)), folder.hasSuffix("/") ? folder + $0 : folder + "/" + $0) }
    }
}
