import LuaSandbox
import Sidobe

/// A declarative retry policy: `sidobe.send{ ..., retry = { max = 3, backoff = "exp", base = "1m",
/// jitter = true, escalate_to = "+62..." } }`.
///
/// When a message sent with it fails, the engine itself resends the same content, durably (the wait
/// is a timer in the store, so it survives restarts), up to `max` times; then it sends to
/// `escalate_to` if given, or raises `message.exhausted`.
public struct RetryPlan: Sendable, Hashable {
    public enum Backoff: String, Sendable, Hashable {
        /// `base`, `2·base`, `4·base`…
        case exponential = "exp"
        /// `base` every time.
        case fixed
    }

    /// Resends after the first failure (total sends at most `max + 1`).
    public var max: Int
    public var backoff: Backoff
    /// Milliseconds.
    public var baseMilliseconds: Int64
    /// Randomize each wait between half and all of it, so a burst of failures does not resend in lockstep.
    public var jitter: Bool
    /// Where to send once the resends are used up, instead of raising `message.exhausted`.
    public var escalateTo: String?

    /// The wait before resend number `n` (1-based), before jitter.
    func delayMilliseconds(forResend n: Int) -> Int64 {
        switch backoff {
        case .fixed: return baseMilliseconds
        case .exponential:
            let factor = Int64(1) << Int64(Swift.min(n - 1, 30))
            let (product, overflow) = baseMilliseconds.multipliedReportingOverflow(by: factor)
            return overflow ? .max / 2 : product
        }
    }

    /// Parses the `retry` table of a send, with errors worded for the rule author.
    init(luaValue value: LuaValue, functionName: String) throws(LuaHostError) {
        func fail(_ text: String) -> LuaHostError { LuaHostError("bad argument #1 to '\(functionName)' (retry.\(text))") }
        guard case .object(let fields) = value else { throw LuaHostError("bad argument #1 to '\(functionName)' (retry must be a table like { max = 3, base = \"1m\" })") }
        let known: Set<String> = ["max", "backoff", "base", "jitter", "escalate_to"]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw fail("\(unknown) is not a retry option (max, backoff, base, jitter, escalate_to)")
        }
        guard let max = fields["max"]?.int64Value, (1...20).contains(max) else { throw fail("max must be a whole number from 1 to 20") }
        self.max = Int(max)
        switch fields["backoff"]?.stringValue ?? "exp" {
        case "exp": backoff = .exponential
        case "fixed": backoff = .fixed
        case let other: throw fail("backoff must be \"exp\" or \"fixed\", got \"\(other)\"")
        }
        do {
            switch fields["base"] ?? .string("1m") {
            case .string(let text): baseMilliseconds = try DurationText.parseMilliseconds(text)
            case .integer(let seconds): baseMilliseconds = try DurationText.parse(wholeSeconds: seconds).clampedMilliseconds
            case .double(let seconds): baseMilliseconds = try DurationText.parse(seconds: seconds).clampedMilliseconds
            default: throw fail("base must be a duration like \"1m\"")
            }
        } catch let error as LuaHostError {
            throw error
        } catch {
            throw fail("base: \(error)")
        }
        if baseMilliseconds < 1000 { throw fail("base must be at least 1s") }
        jitter = fields["jitter"]?.boolValue ?? true
        if let target = fields["escalate_to"], !target.isNull {
            guard case .string(let phone) = target else { throw fail("escalate_to must be a phone number string") }
            if let problem = RequestValidation.phoneProblem(phone) { throw fail("escalate_to \(problem)") }
            escalateTo = phone
        }
    }

    var journalValue: LuaValue {
        var fields: [String: LuaValue] = ["max": .integer(Int64(max)), "backoff": .string(backoff.rawValue),
                                          "base_ms": .integer(baseMilliseconds), "jitter": .bool(jitter)]
        if let escalateTo { fields["escalate_to"] = .string(escalateTo) }
        return .object(fields)
    }

    init(journalValue value: LuaValue) throws(RecordError) {
        let r = RecordReader(value, what: "retry")
        max = Int(try r.integer("max"))
        backoff = Backoff(rawValue: try r.string("backoff")) ?? .exponential
        baseMilliseconds = try r.integer("base_ms")
        jitter = r.value("jitter").boolValue ?? true
        escalateTo = r.optionalString("escalate_to")
    }
}
