import CLuaShims

/// Values converted once into the sandbox's wire format.
///
/// The engine delivers one event to every handler (and every rule) that
/// listens for it: packing the event once and passing the packed form to
/// ``LuaState/run(_:packed:)`` skips the Swift-side conversion for each
/// delivery. The conversion rules and errors are those of ``LuaValue``.
public struct LuaPackedValues: Sendable {
    let bytes: [UInt8]
    /// How many values are packed.
    public let count: Int

    /// Packs `values`, checking them against `limits`
    /// (``LuaLimits/maxValueDepth``, ``LuaLimits/maxValueElements``).
    public init(_ values: [LuaValue], limits: LuaLimits = .default) throws(LuaConversionError) {
        bytes = try Self.pack(limits: limits) { (w) throws(LuaConversionError) in
            for (i, v) in values.enumerated() {
                do throws(EncodeFailure) { try w.append(v) } catch { throw error.error(context: "argument #\(i + 1)") }
            }
        }
        count = values.count
    }

    /// Packs one argument, a table with these fields (distinct keys), without building a
    /// `[String: LuaValue]` first: what an event table costs when it is made for one delivery.
    public init(table fields: [(String, LuaValue)], limits: LuaLimits = .default) throws(LuaConversionError) {
        bytes = try Self.pack(limits: limits) { (w) throws(LuaConversionError) in
            do throws(EncodeFailure) { try w.appendObject(fields) } catch { throw error.error(context: "argument #1") }
        }
        count = 1
    }

    /// Runs `write` on a writer over a scratch C buffer and returns what it wrote.
    private static func pack(limits: LuaLimits, _ write: (inout ValueWriter) throws(LuaConversionError) -> Void) throws(LuaConversionError) -> [UInt8] {
        let b = UnsafeMutablePointer<SBBuffer>.allocate(capacity: 1)
        b.initialize(to: SBBuffer(data: nil, len: 0, cap: 0))
        defer {
            sb_buffer_free(b)
            b.deallocate()
        }
        var w = ValueWriter(
            buffer: b, maxDepth: min(max(1, limits.maxValueDepth), 512), maxElements: max(1, limits.maxValueElements))
        try write(&w)
        guard let d = b.pointee.data else { return [] }
        return Array(UnsafeBufferPointer(start: d, count: b.pointee.len))
    }

    /// Copies the packed bytes into a C buffer (replacing its contents).
    func copy(into buffer: UnsafeMutablePointer<SBBuffer>) -> Bool {
        buffer.pointee.len = 0
        guard sb_buffer_reserve(buffer, bytes.count) != 0 else { return false }
        bytes.withUnsafeBytes { src in
            if let base = src.baseAddress, !src.isEmpty {
                UnsafeMutableRawPointer(buffer.pointee.data!).copyMemory(from: base, byteCount: src.count)
            }
        }
        buffer.pointee.len = bytes.count
        return true
    }
}
