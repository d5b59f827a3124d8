/// A problem with the data folder: which file, which line, what is wrong.
///
/// Start-up refuses to go on with a corrupt file rather than guess, and never overwrites a file it
/// could not read, so the operator can inspect or repair it.
public struct DurabilityError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file at fault.
    public var path: String
    /// The 1-based line, for the journal.
    public var line: Int?
    /// What is wrong, and what to do about it where that is known.
    public var reason: String

    public init(path: String, line: Int? = nil, reason: String) {
        self.path = path
        self.line = line
        self.reason = reason
    }

    public var description: String {
        if let line { return "\(path):\(line): \(reason)" }
        return "\(path): \(reason)"
    }
}
