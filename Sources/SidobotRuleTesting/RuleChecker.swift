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
        public var ok: Bool { folderError == nil && checks.allSatisfy(\.loaded) }
        public var text: String { RuleChecker.render(self) }
    }

    /// Checks the rules of `folder`; schedules are listed from `now`.
    public static func check(folder: String, now: UnixTime = UnixTime(Date())) async -> Report {
        let clock = VirtualClock(start: now)
        let engine = Engine(configuration: EngineConfiguration(rulesFolder: folder, dataFolder: nil),
                            sidobe: TestSidobe(now: { clock.now().date }), clock: clock)
        switch await engine.describeRules() {
        case .failure(let error):
            return Report(checks: [], folderError: error)
        case .success(let rules):
            return Report(checks: rules.map { name, path, rule in
                switch rule {
                case .success(let description): RuleCheck(description, now: now)
                case .failure(let error): RuleCheck(name: name, path: path, error: error)
                }
            }, folderError: nil)
        }
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
        for check in report.checks {
            if let error = check.error {
                lines.append("ERROR \(error.description)")
                if let hint = check.hint { lines.append("      hint: \(hint)") }
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
        }
        let loaded = report.checks.filter(\.loaded).count
        let failed = report.checks.count - loaded
        if report.checks.isEmpty && report.folderError == nil { lines.append("no *.lua rules found") }
        lines.append("")
        lines.append("\(loaded) rule\(loaded == 1 ? "" : "s") loaded, \(failed) failed")
        return lines.joined(separator: "\n")
    }
}
