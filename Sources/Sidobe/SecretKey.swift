/// A Sidobe secret key.
///
/// Wrapping the key keeps it out of logs and error messages by accident:
/// its `description` is redacted, and only ``reveal()`` gives the raw value,
/// for the `X-Secret-Key` header and for webhook signatures.
public struct SecretKey: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    private let value: String

    /// Wraps a raw key. An empty key is allowed here; callers that need one reject it.
    public init(_ value: String) { self.value = value }

    /// The raw key. Use only where the key itself must be sent or hashed.
    public func reveal() -> String { value }

    /// Whether the key is empty.
    public var isEmpty: Bool { value.isEmpty }

    public var description: String { "<redacted secret key>" }
    public var debugDescription: String { description }
}
