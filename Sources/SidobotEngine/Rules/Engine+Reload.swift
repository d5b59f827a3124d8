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

extension Engine {
    /// Reloads the rules folder: a changed file is loaded and checked before it is swapped in (its
    /// handler runs already going finish in the old version); a broken edit keeps the previous
    /// version running and is reported; a deleted file's handlers are removed. Timers live in the
    /// store, not in the Lua state, so a rule's pending timers survive its reload and fire into the
    /// new version. Reloading a quarantined rule releases it.
    public func reloadRules() async -> RuleReloadReport {
        var report = RuleReloadReport()
        // Taken before the files are read, so an edit made while they load is noticed next time.
        rulesFingerprint = rulesFolderFingerprint()
        let files: [(name: String, path: String)]
        do {
            files = try RuleFiles.list(in: configuration.rulesFolder)
        } catch {
            report.failed.append(error)
            logger.error("rules not reloaded", metadata: ["error": "\(error)"])
            return report
        }
        let now = clock.now()
        for file in files {
            let source: String
            do {
                source = try String(contentsOfFile: file.path, encoding: .utf8)
            } catch {
                report.failed.append(RuleLoadError(path: Self.displayPath(file.path), line: nil, message: "cannot read the file: \(error.localizedDescription)"))
                continue
            }
            let existing = rules[file.name]
            if let existing, existing.source == source, !existing.stats.quarantined {
                report.unchanged.append(file.name)
                continue
            }
            do {
                let fresh = try await loadRule(name: file.name, path: Self.displayPath(file.path), source: source)
                if let existing {
                    fresh.stats = existing.stats
                    fresh.stats.quarantined = false
                    fresh.stats.consecutiveAborts = 0
                }
                rules[file.name] = fresh
                catchUpSchedules(of: fresh, now: now)
                report.loaded.append(file.name)
                logger.info(existing == nil ? "rule loaded" : "rule reloaded", metadata: ["rule": "\(file.name)"])
            } catch {
                report.failed.append(error)
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
        if !isVirtualTime { restartScheduler() }
        return report
    }

    /// The rules folder's `*.lua` files with their modification time and size, to notice edits.
    func rulesFolderFingerprint() -> [String: String] {
        guard let files = try? RuleFiles.list(in: configuration.rulesFolder) else { return [:] }
        var fingerprint: [String: String] = [:]
        for file in files {
            let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
            fingerprint[file.name] = "\(modified)/\(size)"
        }
        return fingerprint
    }

    /// Polls the rules folder and reloads when a file changed, appeared or disappeared.
    /// Polling (not inotify) so it works the same on every file system, bind mounts included.
    func watchRules() async {
        while !stopping && !Task.isCancelled {
            do {
                try await Task.sleep(for: .milliseconds(Int64(configuration.reloadPollInterval * 1000)))
            } catch {
                return
            }
            let current = rulesFolderFingerprint()
            if current != rulesFingerprint {
                rulesFingerprint = current
                let report = await reloadRules()
                logger.info("rules folder changed", metadata: ["reload": "\(report)"])
            }
        }
    }
}
