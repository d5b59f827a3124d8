/// An enumeration whose wire form is a string and whose set of values is open: a value this
/// version does not know is kept as ``unknown(_:)`` instead of failing, so a value Sidobe (or a
/// later Sidobot) adds cannot break a reader.
///
/// A conforming enum lists its known cases and their wire values once, in ``wireValues``, and
/// declares `case unknown(String)`; the raw value, the string-literal form, `Codable` and
/// `description` come from here.
///
/// ```swift
/// public enum MessageType: OpenEnum {
///     case text, image, docs
///     case unknown(String)
///     public static let wireValues: [(Self, String)] = [(.text, "TEXT"), (.image, "IMAGE"), (.docs, "DOCS")]
///     public var unknownValue: String? { if case .unknown(let v) = self { v } else { nil } }
/// }
/// ```
public protocol OpenEnum: Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// Every known case with its wire value, in the order documentation lists them.
    static var wireValues: [(Self, String)] { get }
    /// A value this version does not know, kept as received.
    static func unknown(_ rawValue: String) -> Self
    /// The value as received when this is ``unknown(_:)``, else nil.
    var unknownValue: String? { get }
    /// The case with this wire value, or ``unknown(_:)`` (never nil: the set is open).
    init(rawValue: String)
    /// The wire value.
    var rawValue: String { get }
}

// Inlinable: specialized in the modules that use them, these cost a few comparisons; called
// through the generic protocol witness they looked up tuple metadata at every call (3-6 % of the
// dispatcher's time, docs/PERFORMANCE.md).
extension OpenEnum {
    /// The case with this wire value, or ``unknown(_:)``.
    @inlinable
    public init(rawValue: String) {
        // A linear search: these enums have a handful of cases, and the common ones come first.
        for (value, wire) in Self.wireValues where wire == rawValue {
            self = value
            return
        }
        self = .unknown(rawValue)
    }

    /// The wire value (for ``unknown(_:)``, the value as received).
    @inlinable
    public var rawValue: String {
        if let unknownValue { return unknownValue }
        for (value, wire) in Self.wireValues where value == self { return wire }
        preconditionFailure("\(Self.self): a case is missing from wireValues")
    }

    @inlinable
    public init(stringLiteral value: String) { self.init(rawValue: value) }

    @inlinable
    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
