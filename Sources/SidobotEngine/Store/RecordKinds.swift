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
    case unknown(String)

    public static let wireValues: [(Self, String)] = [
        (.pending, "PENDING"), (.success, "SUCCESS"), (.failed, "FAILED"), (.dryRun, "DRY_RUN"),
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
    case unknown(String)

    public static let wireValues: [(Self, String)] = [(.send, "send"), (.webhook, "webhook"), (.confirmed, "confirmed"), (.dryRun, "dry-run")]

    public var unknownValue: String? {
        if case .unknown(let value) = self { return value }
        return nil
    }
}
