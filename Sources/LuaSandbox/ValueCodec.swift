import CLuaShims

/// Internal: a conversion failure found on the Swift side, with the path
/// built while unwinding.
struct EncodeFailure: Error {
    var problem: LuaConversionError.Problem
    var detail: String
    var path: [PathStep] = []

    enum PathStep {
        case key(String)
        case index(Int)
    }

    func error(context: String) -> LuaConversionError {
        var s = "$"
        for step in path.reversed() {
            switch step {
            case .index(let i): s += "[\(i)]"
            case .key(let k): s += EncodeFailure.render(key: k)
            }
        }
        return LuaConversionError(problem: problem, path: s, context: context, detail: detail)
    }

    static func render(key k: String) -> String {
        let isIdent =
            !k.isEmpty && k.utf8.count <= 40
            && k.utf8.enumerated().allSatisfy { i, c in
                c == UInt8(ascii: "_") || (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (i > 0 && c >= 48 && c <= 57)
            }
        if isIdent { return "." + k }
        var shown = ""
        for ch in k.prefix(32) {
            if ch == "\\" || ch == "\"" { shown.append("\\") }
            shown.append(ch)
        }
        return "[\"" + shown + (k.count > 32 ? "..." : "") + "\"]"
    }
}

/// Writes ``LuaValue``s into a C-owned buffer in the CLuaShims format.
struct ValueWriter {
    let buf: UnsafeMutablePointer<SBBuffer>
    let maxDepth: Int
    let maxElements: Int
    var nodes = 0
    // A cached cursor into the C buffer; `append` publishes `len` back.
    private var base: UnsafeMutableRawPointer?
    private var len = 0
    private var cap: Int
    /// Set when a write fails (the write functions return false).
    private var failure: EncodeFailure?

    init(buffer: UnsafeMutablePointer<SBBuffer>, maxDepth: Int, maxElements: Int) {
        self.buf = buffer
        self.maxDepth = maxDepth
        self.maxElements = maxElements
        buffer.pointee.len = 0
        self.base = buffer.pointee.data.map { UnsafeMutableRawPointer($0) }
        self.cap = buffer.pointee.cap
    }

    /// Appends one value and publishes the new length to the C buffer.
    mutating func append(_ value: LuaValue) throws(EncodeFailure) {
        let ok = write(value, depth: 0)
        buf.pointee.len = len
        if !ok { throw failure ?? EncodeFailure(problem: .hostMemory, detail: "") }
    }

    /// Appends one table given as distinct string keys and values, in order (no dictionary to build).
    mutating func appendObject(_ fields: [(String, LuaValue)]) throws(EncodeFailure) {
        nodes += 1
        var ok = tagged(SB_TAG_OBJECT, UInt32(fields.count))
        if ok {
            for (k, v) in fields {
                if !bytes(k) || !write(v, depth: 1) {
                    failure?.path.append(.key(k))
                    ok = false
                    break
                }
            }
        }
        buf.pointee.len = len
        if !ok { throw failure ?? EncodeFailure(problem: .hostMemory, detail: "") }
    }

    private mutating func fail(_ problem: LuaConversionError.Problem, _ detail: String) -> Bool {
        failure = EncodeFailure(problem: problem, detail: detail)
        return false
    }

    @inline(never)
    private mutating func grow(_ n: Int) -> Bool {
        buf.pointee.len = len
        if sb_buffer_reserve(buf, n) == 0 { return fail(.hostMemory, "") }
        base = UnsafeMutableRawPointer(buf.pointee.data!)
        cap = buf.pointee.cap
        return true
    }

    /// Room for `n` more bytes at the cursor, or nil (failure recorded).
    @inline(__always)
    private mutating func reserve(_ n: Int) -> UnsafeMutableRawPointer? {
        if len + n > cap, !grow(n) { return nil }
        return base.unsafelyUnwrapped.advanced(by: len)
    }

    @inline(__always)
    private mutating func tag(_ t: Int) -> Bool {
        guard let p = reserve(1) else { return false }
        p.storeBytes(of: UInt8(truncatingIfNeeded: t), as: UInt8.self)
        len += 1
        return true
    }

    @inline(__always)
    private mutating func tagged<T: BitwiseCopyable>(_ t: Int, _ v: T) -> Bool {
        let size = MemoryLayout<T>.size
        guard let p = reserve(1 + size) else { return false }
        p.storeBytes(of: UInt8(truncatingIfNeeded: t), as: UInt8.self)
        p.storeBytes(of: v, toByteOffset: 1, as: T.self)
        len += 1 + size
        return true
    }

    /// Writes `[tag] uint64 length, bytes, '\0'`.
    @inline(__always)
    private mutating func bytes(_ s: String, tag: Int = -1) -> Bool {
        let utf8 = s.utf8
        let n = utf8.count
        let t = tag < 0 ? 0 : 1
        guard let p0 = reserve(t + 9 + n) else { return false }
        if t == 1 { p0.storeBytes(of: UInt8(truncatingIfNeeded: tag), as: UInt8.self) }
        let p = p0.advanced(by: t)
        p.storeBytes(of: UInt64(n), as: UInt64.self)
        let copied: Void? = utf8.withContiguousStorageIfAvailable { u in
            guard let src = u.baseAddress, n > 0 else { return }
            p.advanced(by: 8).copyMemory(from: src, byteCount: n)
        }
        if copied == nil {
            var i = 8
            for c in utf8 {
                p.storeBytes(of: c, toByteOffset: i, as: UInt8.self)
                i += 1
            }
        }
        p.storeBytes(of: 0, toByteOffset: 8 + n, as: UInt8.self)
        len += t + 9 + n
        return true
    }

    private mutating func write(_ value: LuaValue, depth: Int) -> Bool {
        nodes += 1
        if nodes > maxElements { return fail(.tooLarge, "more than \(maxElements) values") }
        switch value {
        case .null: return tag(SB_TAG_NIL)
        case .bool(let b): return tag(b ? SB_TAG_TRUE : SB_TAG_FALSE)
        case .integer(let i): return tagged(SB_TAG_INT, i)
        case .double(let d):
            guard d.isFinite else { return fail(.nonFiniteNumber, d.isNaN ? "nan" : (d > 0 ? "inf" : "-inf")) }
            return tagged(SB_TAG_FLOAT, d)
        case .string(let s):
            return bytes(s, tag: SB_TAG_STRING)
        case .array(let a):
            guard depth < maxDepth else { return fail(.tooDeep, "limit \(maxDepth)") }
            guard a.count <= Int(UInt32.max) else { return fail(.tooLarge, "array length") }
            guard tagged(SB_TAG_ARRAY, UInt32(a.count)) else { return false }
            var i = 0
            for v in a {
                i += 1
                if !write(v, depth: depth + 1) {
                    failure?.path.append(.index(i))
                    return false
                }
            }
            return true
        case .object(let o):
            guard depth < maxDepth else { return fail(.tooDeep, "limit \(maxDepth)") }
            guard o.count <= Int(UInt32.max) else { return fail(.tooLarge, "object size") }
            guard tagged(SB_TAG_OBJECT, UInt32(o.count)) else { return false }
            for (k, v) in o {
                if !bytes(k) || !write(v, depth: depth + 1) {
                    failure?.path.append(.key(k))
                    return false
                }
            }
            return true
        }
    }

    /// Replaces the buffer's contents with one string value (an error message).
    mutating func writeMessage(_ message: String) {
        len = 0
        if !bytes(message, tag: SB_TAG_STRING) { len = 0 }
        buf.pointee.len = len
    }
}

/// Reads values written by the C encoder.
struct ValueReader {
    private var p: UnsafeRawPointer
    private let end: UnsafeRawPointer

    init(buffer: UnsafeMutablePointer<SBBuffer>) {
        if let d = buffer.pointee.data {
            p = UnsafeRawPointer(d)
            end = p.advanced(by: buffer.pointee.len)
        } else {
            p = UnsafeRawPointer(bitPattern: 1)!
            end = p
        }
    }

    private var remaining: Int { end - p }

    private mutating func u8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        let v = p.load(as: UInt8.self)
        p += 1
        return v
    }

    private mutating func load<T: BitwiseCopyable>(_: T.Type) -> T? {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { return nil }
        let v = p.loadUnaligned(as: T.self)
        p += n
        return v
    }

    private mutating func string() -> String? {
        guard let n64 = load(UInt64.self), n64 < UInt64(remaining) else { return nil }
        let n = Int(n64)
        let s = String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
        p += n + 1
        return s
    }

    /// The next value; a top-level function tag reads as `nil` and sets
    /// `isFunction`.
    mutating func argument() -> LuaArgument {
        if remaining >= 1, p.load(as: UInt8.self) == UInt8(SB_TAG_FUNCTION) {
            p += 1
            return .function
        }
        return .value(value())
    }

    mutating func value() -> LuaValue {
        guard let t = u8() else { return .null }
        switch Int(t) {
        case SB_TAG_NIL: return .null
        case SB_TAG_FALSE: return .bool(false)
        case SB_TAG_TRUE: return .bool(true)
        case SB_TAG_INT: return load(Int64.self).map(LuaValue.integer) ?? .null
        case SB_TAG_FLOAT: return load(Double.self).map(LuaValue.double) ?? .null
        case SB_TAG_STRING: return string().map(LuaValue.string) ?? .null
        case SB_TAG_ARRAY:
            guard let n = load(UInt32.self) else { return .null }
            var a: [LuaValue] = []
            a.reserveCapacity(Int(min(n, 1 << 20)))
            for _ in 0..<n { a.append(value()) }
            return .array(a)
        case SB_TAG_OBJECT:
            guard let n = load(UInt32.self) else { return .null }
            var o: [String: LuaValue] = [:]
            o.reserveCapacity(Int(min(n, 1 << 20)))
            for _ in 0..<n {
                guard let k = string() else { break }
                o[k] = value()
            }
            return .object(o)
        default:
            return .null
        }
    }
}
