import Foundation

/// When and how long the client waits before repeating a failed request.
///
/// Retried: 429 (rate limited), 503 (maintenance) and connection failures that happened
/// before the request was sent. Never retried: validation and auth errors, 404, 500, and a
/// send whose answer timed out after it was written (it may have been delivered; see
/// ``SidobeError/timeout(requestWritten:)``). Reads (message detail, check-number) are safe to
/// repeat, so for them a timeout after writing is retried too.
///
/// The wait before retry *n* (1-based) is drawn uniformly from `0 ... min(maxDelay, baseDelay · 2^(n-1))`
/// ("full jitter"), unless the server sent `Retry-After`: then the client waits exactly that long,
/// as long as it is no more than ``maxRetryAfter``; a longer one ends the retries and is returned in
/// ``SidobeError/rateLimited(_:retryAfter:)`` for the caller to schedule.
public struct RetryPolicy: Sendable, Hashable {
    /// Total attempts, the first included. `1` disables retries.
    public var maxAttempts: Int
    /// The backoff's starting ceiling.
    public var baseDelay: Duration
    /// The backoff's largest ceiling.
    public var maxDelay: Duration
    /// The longest `Retry-After` the client waits for by itself.
    public var maxRetryAfter: Duration

    public init(maxAttempts: Int = 4, baseDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(30), maxRetryAfter: Duration = .seconds(60)) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    /// Four attempts, backoff from 0.5 s up to 30 s, `Retry-After` honoured up to 60 s.
    public static let `default` = RetryPolicy()
    /// A single attempt.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// Whether `error`, after attempt `attempt` (1-based), deserves another attempt.
    public func shouldRetry(_ error: SidobeError, attempt: Int, idempotent: Bool) -> Bool {
        guard attempt < maxAttempts else { return false }
        switch error {
        case .rateLimited(_, let retryAfter):
            if let retryAfter, retryAfter > maxRetryAfter { return false }
            return true
        case .serverError(let failure): return failure.httpStatus == 503
        case .transport(_, let written), .timeout(let written): return !written || idempotent
        default: return false
        }
    }

    /// How long to wait before the attempt after `attempt` (1-based), given the error and a uniform random number in `0..<1`.
    public func delay(after attempt: Int, error: SidobeError, random: Double) -> Duration {
        if case .rateLimited(_, let retryAfter?) = error { return min(retryAfter, maxRetryAfter) }
        let exponent = min(attempt - 1, 30)
        let ceiling = min(maxDelay, baseDelay * (1 << exponent))
        return ceiling * min(max(random, 0), 1)
    }
}

/// Parses a `Retry-After` header value: delay-seconds, or an HTTP-date relative to `now` (seconds since 1970).
/// Returns `nil` when the value is of neither form.
public func parseRetryAfter(_ value: String, now: Double) -> Duration? {
    let trimmed = value.trimmingCharacters(in: .whitespaces)
    if let seconds = Int(trimmed), seconds >= 0 { return .seconds(seconds) }
    if let seconds = Double(trimmed), seconds >= 0, seconds.isFinite { return .milliseconds(Int64(seconds * 1000)) }
    guard let date = HTTPDate.parse(trimmed) else { return nil }
    return .milliseconds(Int64(max(0, date - now) * 1000))
}

/// The IMF-fixdate form of HTTP dates (`Sun, 06 Nov 1994 08:49:37 GMT`), as used by `Retry-After`.
enum HTTPDate {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Seconds since 1970, or `nil`.
    static func parse(_ text: String) -> Double? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT",
              let day = Int(parts[1]),
              let monthIndex = months.firstIndex(of: String(parts[2])),
              let year = Int(parts[3]) else { return nil }
        let clock = parts[4].split(separator: ":").compactMap { Int($0) }
        guard clock.count == 3 else { return nil }
        let days = ISO8601Timestamp.daysFromCivil(year: year, month: monthIndex + 1, day: day)
        return Double(days * 86_400 + clock[0] * 3600 + clock[1] * 60 + clock[2])
    }
}
