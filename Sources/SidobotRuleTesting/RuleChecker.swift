import Foundation
import LuaSandbox
import SidobeTesting
import SidobotEngine

/// `sidobot check`: loads every rule of a folder in the sandbox, without starting the engine
/// (no data folder, no network), and reports what each registers, or why it does not load.
public enum RuleChecker {
    /// The report, and whether every rule loaded.
    public struct Report: Sendable {
        public var checks: [RuleCheck]
        public var folderError: RuleLoadError?
        /// What the lint found, every rule's (luacheck's and the engine's cross-checks).
        public var findings: [LintFinding] = []
        /// Said once when luacheck is not installed (the rest of the checks ran).
        public var lintNote: String?
        public var ok: Bool { folderError == nil && checks.allSatisfy(\.loaded) && !findings.contains { $0.severity == .error } }
        public var text: String { RuleChecker.render(self) }
    }

    /// Checks the rules of `folder`; schedules are listed from `now`. `lint`: also run luacheck
    /// (when installed) and the engine's cross-checks on each file.
    public static func check(folder: String, now: UnixTime = UnixTime(Date()), lint: Bool = true) async -> Report {
        let clock = VirtualClock(start: now)
        let engine = Engine(configuration: EngineConfiguration(rulesFolder: folder, dataFolder: nil),
                            sidobe: TestSidobe(now: { clock.now().date }), clock: clock)
        var report: Report
        switch await engine.describeRules() {
        case .failure(let error):
            return Report(checks: [], folderError: error)
        case .success(let rules):
            report = Report(checks: rules.map { name, path, rule in
                switch rule {
                case .success(let description): RuleCheck(description, now: now)
                case .failure(let error): RuleCheck(name: name, path: path, error: error)
                }
            }, folderError: nil)
        }
        if lint { await addLint(to: &report, folder: folder) }
        return report
    }

    private static func addLint(to report: inout Report, folder: String) async {
        // The files the engine loads (the folder was readable: describing the rules needed it).
        let files = ((try? RuleFiles.list(in: folder)) ?? []).map { (path: $0.path, displayPath: RuleFiles.displayPath($0.path)) }
        let failedToLoad = Set(report.checks.filter { !$0.loaded }.map(\.path))
        let globals = await RuleLint.sandboxGlobals()
        if let found = RuleLint.luacheckFindings(files: files, globals: globals) {
            // A file that does not load has its load error to fix first (luacheck would say it
            // again, as a syntax error or an undefined `print`); it is linted once it loads.
            report.findings += found.filter { !failedToLoad.contains($0.path) }
        } else {
            report.lintNote = "luacheck is not installed (Debian: apt-get install lua-check): the rules were loaded and cross-checked, not linted"
        }
        for file in files where !failedToLoad.contains(file.displayPath) {
            guard let source = try? String(contentsOfFile: file.path, encoding: .utf8) else { continue }
            report.findings += RuleLint.crossChecks(path: file.displayPath, source: source)
        }
        report.findings.sort { ($0.path, $0.line, $0.column) < ($1.path, $1.line, $1.column) }
    }

    /// The report as printed:
    ///
    /// ```
    /// ok    rules/reminders.lua — reminders registered through a hook, sent on time
    ///       handlers:  timer.remind, message.failed
    ///       hooks:     POST /hooks/remind
    ///       schedules: cron 0 8 * * * Asia/Jakarta
    ///                    next 2026-01-02T08:00:00+07:00, 2026-01-03T08:00:00+07:00, 2026-01-04T08:00:00+07:00
    /// ERROR rules/broken.lua:3: attempt to call a nil value (global 'print')
    ///       hint: print is not in the sandbox: use log.info("text", { key = value })
    ///
    /// 1 rule loaded, 1 failed
    /// ```
    public static func render(_ report: Report) -> String {
        var lines: [String] = []
        if let error = report.folderError {
            lines.append("ERROR \(error.description)")
            lines.append("      hint: pass the folder of your *.lua rules: sidobot check DIR")
        }
        func findings(of path: String) {
            for finding in report.findings where finding.path == path {
                lines.append("      \(finding)")
                if let hint = finding.hint { lines.append("      hint: \(hint)") }
            }
        }
        for check in report.checks {
            if let error = check.error {
                lines.append("ERROR \(error.description)")
                if let hint = check.hint { lines.append("      hint: \(hint)") }
                findings(of: check.path)
                continue
            }
            lines.append("ok    \(check.path)" + (check.description.map { " — \($0)" } ?? ""))
            lines.append("      handlers:  " + (check.handlers.isEmpty ? "(none)" : check.handlers.joined(separator: ", ")))
            lines.append("      hooks:     " + (check.hooks.isEmpty ? "(none)" : check.hooks.map { "POST /hooks/\($0)" }.joined(separator: ", ")))
            if check.schedules.isEmpty {
                lines.append("      schedules: (none)")
            } else {
                for (index, schedule) in check.schedules.enumerated() {
                    lines.append((index == 0 ? "      schedules: " : "                 ") + schedule.key)
                    lines.append("                   next " + (schedule.next.isEmpty ? "(never fires again)" : schedule.next.joined(separator: ", ")))
                }
            }
            if check.handlers.isEmpty && check.hooks.isEmpty && check.schedules.isEmpty {
                lines.append("      warning: this rule registers nothing: it will never run")
            }
            findings(of: check.path)
        }
        let loaded = report.checks.filter(\.loaded).count
        let failed = report.checks.count - loaded
        if report.checks.isEmpty && report.folderError == nil { lines.append("no *.lua rules found") }
        if let note = report.lintNote { lines.append("note: \(note)") }
        lines.append("")
        let errors = report.findings.count { $0.severity == .error }, warnings = report.findings.count - errors
        var summary = "\(loaded) rule\(loaded == 1 ? "" : "s") loaded, \(failed) failed"
        if errors + warnings > 0 {
            summary += "; \(errors) lint error\(errors == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")"
        }
        lines.append(summary)
        return lines.joined(separator: "\n")
    }
}
