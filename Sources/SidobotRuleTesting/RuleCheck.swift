import Foundation
import LuaSandbox
import SidobotEngine

/// What `sidobot check` reports about one rule file.
public struct RuleCheck: Sendable, Hashable {
    /// A schedule (`every` or `cron`) with its next fire times in the rule's time zone.
    public struct Schedule: Sendable, Hashable {
        /// `every 5m`, `cron 0 9 * * 1-5 Asia/Jakarta`.
        public var key: String
        /// The zone its times are shown in (the cron `tz`, UTC for `every`).
        public var timeZone: String
        /// The next three fire times, formatted in `timeZone` with their offset.
        public var next: [String]
    }

    public var name: String
    public var path: String
    public var description: String?
    /// Event names it listens for (hooks excluded), in registration order.
    public var handlers: [String]
    /// Hook names (`on("hook.NAME")`), served at `POST /hooks/NAME`.
    public var hooks: [String]
    public var schedules: [Schedule]
    /// Why it did not load (nil when it loaded).
    public var error: RuleLoadError?
    /// A hint for the error, when one is known.
    public var hint: String?

    public var loaded: Bool { error == nil }

    /// The check of a rule that loaded: its schedules' next three fire times from `now`.
    init(_ rule: RuleDescription, now: UnixTime) {
        name = rule.name
        path = rule.path
        description = rule.description
        handlers = rule.events.filter { !$0.hasPrefix("hook.") }
        hooks = rule.events.filter { $0.hasPrefix("hook.") }.map { String($0.dropFirst(5)) }
        schedules = rule.schedules.map { key, schedule in
            let zone = (schedule as? CronSchedule)?.timeZone ?? TimeZone(identifier: "UTC")!
            var next: [String] = []
            var cursor = now
            while next.count < 3, let fire = schedule.nextFire(after: cursor) {
                next.append(fire.formatted(in: zone))
                cursor = fire
            }
            return Schedule(key: key, timeZone: zone.identifier, next: next)
        }
    }

    /// The check of a rule that did not load.
    init(name: String, path: String, error: RuleLoadError) {
        self.name = name
        self.path = path
        handlers = []
        hooks = []
        schedules = []
        self.error = error
        hint = RuleHints.hint(for: error.message)
    }
}

/// Hints for the errors rule authors meet most, keyed on the error text.
public enum RuleHints {
    public static func hint(for message: String) -> String? {
        let rules: [(String, String)] = [
            ("global 'print'", "print is not in the sandbox: use log.info(\"text\", { key = value })"),
            ("global 'require'", "a rule is one self-contained file: require, io and package are not in the sandbox"),
            ("global 'io'", "a rule is one self-contained file: require, io and package are not in the sandbox"),
            ("global 'sleep'", "there is no sleep: set a timer with timer.after(\"10m\", \"name\", payload) and handle on(\"timer.name\")"),
            ("timers cannot be set while the rule loads", "set timers in a handler, e.g. on(\"engine.start\", function() ... end)"),
            ("can only be called when the rule loads", "on, every, cron and rule register at the top level of the file, never inside a handler"),
            ("cannot be used while the rule loads", "emit in a handler, not at the top level"),
            ("unknown time zone", "use an IANA zone name such as \"Asia/Jakarta\" or \"UTC\""),
            ("time zone", "use an IANA zone name such as \"Asia/Jakarta\" or \"UTC\""),
            ("cron", "a cron expression has 5 fields: minute hour day-of-month month day-of-week, e.g. \"0 9 * * 1-5\""),
            ("duration", "durations are seconds (a number) or text such as \"30s\", \"5m\", \"2h\", \"1d\""),
            ("is not an event name", "event names look like \"message.failed\", \"timer.retry\", \"hook.order\" or \"escalation.needed\""),
            ("unknown message event", "message events are message.failed, message.success, message.pending, message.status and message.exhausted"),
            ("attempt to call a nil value (global", "that name is not defined: check the spelling; the API is rule, on, every, cron, timer.*, sidobe.*, state.*, emit, log.*, now, json.* (docs/RULES.md)"),
            ("attempt to call a nil value (field", "that function does not exist in its table: check the spelling against docs/RULES.md"),
            ("attempt to index a nil value", "a table is nil here; at load time only register handlers, and read events inside handlers"),
            ("'end' expected", "a block is not closed: look for a missing `end` above this line"),
            ("unexpected symbol", "a syntax error: look for a missing comma, bracket or quote on this line or the one above"),
            ("expected near", "a syntax error: look for a missing comma, bracket or quote on this line or the one above"),
            ("unfinished string", "a string is not closed: add the closing quote"),
            ("hit the", "the top level must only register handlers: move loops and work into handlers"),
        ]
        for (needle, hint) in rules where message.contains(needle) { return hint }
        return nil
    }
}
