import Sidobe

/// Where a message stands in the ledger: Sidobe's delivery status, or `DRY_RUN` for a send that
/// `--dry-run` recorded instead of performing.
///
/// One way only: `PENDING`, then `SUCCESS` or `FAILED` (see ``MessageLedger/canMove(from:to:)``).
/// A status Sidobe adds later is kept as ``unknown(_:)``.
public enum LedgerStatus: OpenEnum {
    case pending
    case success
    case failed
    /// Recorded by `--dry-run`; never sent, never moves.
    case dryRun
    /// `UNKNOWN`: a restart interrupted the send while its request was out, so it may or may not
    /// have reached Sidobe. Never sent again by itself; an operator (or the rule) decides, and a
    /// resolution moves it to `SUCCESS` or `FAILED` like a status would.
    case inDoubt
    case unknown(String)

    public static let wireValues: [(Self, String)] = [
        (.pending, "PENDING"), (.success, "SUCCESS"), (.failed, "FAILED"), (.dryRun, "DRY_RUN"), (.inDoubt, "UNKNOWN"),
    ]

    public var unknownValue: String? {
        if case .unknown(let value) = self { return value }
        return nil
    }

    /// The ledger status for a status Sidobe reported.
    public init(_ status: MessageStatus) {
        switch status {
        case .pending: self = .pending
        case .success: self = .success
        case .failed: self = .failed
        case .unknown(let value): self = .unknown(value)
        }
    }
}

/// Why a dead letter was kept.
public enum DeadLetterReason: OpenEnum {
    /// The handler raised an error.
    case error
    /// The handler hit a limit (memory, instructions, time) and was aborted.
    case limit
    /// A send failed after the client's retries.
    case send
    case unknown(String)

    public static let wireValues: [(Self, String)] = [(.error, "error"), (.limit, "limit"), (.send, "send")]

    public var unknownValue: String? {
        if case .unknown(let value) = self { return value }
        return nil
    }
}

/// Why a pending timer was removed without firing (the `how` of a `timer.remove` record).
public enum TimerRemoval: OpenEnum {
    /// `timer.cancel(id)`.
    case cancelled
    /// It fell due while the engine was down and its late policy is `skip`.
    case skipped
    case unknown(String)

    public static let wireValues: [(Self, String)] = [(.cancelled, "cancelled"), (.skipped, "skipped")]

    public var unknownValue: String? {
        if case .unknown(let value) = self { return value }
        return nil
    }
}

/// What made a message's status change (a ledger history entry's `source`).
public enum StatusSource: OpenEnum {
    /// Sidobe's answer to the send.
    case send
    /// A delivery-status webhook.
    case webhook
    /// `--confirm-status`: Sidobe's answer to GET whatsapp-messages/:id.
    case confirmed
    /// Recorded by `--dry-run`.
    case dryRun
    /// The engine found the send interrupted by a restart while its request was out (`UNKNOWN`).
    case restart
    /// An operator decided what became of a message in doubt (admin API, status page).
    case `operator`
    case unknown(String)

    public static let wireValues: [(Self, String)] = [
        (.send, "send"), (.webhook, "webhook"), (.confirmed, "confirmed"), (.dryRun, "dry-run"), (.restart, "restart"), (.operator, "operator"),
    ]

    public var unknownValue: String? {
        if case .unknown(let value) = self { return value }
        return nil
    }
}

extension StatusSource {
    /// The source of a status carried by an event, told by the event's id: a sync send's answer
    /// (`s-MESSAGE`), an operator's resolution (`o-MESSAGE`), else a webhook.
    init(ofEvent id: String) {
        if id.hasPrefix("s-") {
            self = .send
        } else if id.hasPrefix("o-") {
            self = .operator
        } else {
            self = .webhook
        }
    }

    /// The id of the status event an operator's resolution of `messageID` raises.
    static func operatorEventID(of messageID: String) -> String { "o-\(messageID)" }
}

/// Why a message in doubt could not be resolved (``Engine/resolveInDoubt(id:delivered:)``).
public enum ResolutionError: Error, Sendable, CustomStringConvertible {
    /// No message with that id in the ledger.
    case notFound
    /// The message is not in doubt: it has this status, which only Sidobe moves.
    case notInDoubt(LedgerStatus)
    /// The resolution could not be journaled: nothing changed.
    case journal(DurabilityError)

    public var description: String {
        switch self {
        case .notFound: "no such message in the ledger"
        case .notInDoubt(let status): "the message is not in doubt: it is \(status.rawValue)"
        case .journal(let error): "the resolution was not journaled: \(error)"
        }
    }
}
