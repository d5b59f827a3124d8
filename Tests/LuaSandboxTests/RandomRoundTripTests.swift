import Testing

@testable import LuaSandbox

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random values in the bridge's round-trippable subset: no nulls inside
/// arrays or objects (holes and absent keys are covered elsewhere), finite
/// doubles, valid UTF-8 (Swift strings always are).
func randomValue(_ g: inout SplitMix64, depth: Int = 0) -> LuaValue {
    let pick = Int(g.next() % (depth > 3 ? 5 : 7))
    switch pick {
    case 0: return .bool(g.next() % 2 == 0)
    case 1: return .integer(Int64(bitPattern: g.next()) >> Int64(g.next() % 64))
    case 2:
        let d = Double(bitPattern: g.next())
        return .double(d.isFinite ? d : 0.25)
    case 3, 4:
        let alphabet: [String] = ["a", "Z", "0", " ", "é", "✓", "😀", "\0", "\n", "\"", "\\", "ü"]
        let n = Int(g.next() % 12)
        return .string((0..<n).map { _ in alphabet[Int(g.next() % UInt64(alphabet.count))] }.joined())
    case 5:
        let n = Int(g.next() % 6)
        return .array((0..<n).map { _ in randomValue(&g, depth: depth + 1) })
    default:
        let n = Int(g.next() % 6)
        var o: [String: LuaValue] = [:]
        for i in 0..<n { o["k\(i)_\(g.next() % 100)"] = randomValue(&g, depth: depth + 1) }
        return .object(o)
    }
}

@Suite struct RandomRoundTripTests {
    @Test(arguments: 0..<20)
    func randomValuesRoundTrip(seed: Int) throws {
        var g = SplitMix64(state: UInt64(seed) &* 7919)
        let s = try LuaState()
        let f = try s.load("return ...", chunkName: "rt.lua")
        // Lua-side deep copy too: proves the table built in Lua is a faithful one.
        let copy = try s.load(
            """
            local function copy(v)
              if type(v) ~= "table" then return v end
              local t = {}
              for k, x in pairs(v) do t[k] = copy(x) end
              return t
            end
            local out = {}
            for i = 1, select("#", ...) do out[i] = copy((select(i, ...))) end
            return table.unpack(out, 1, select("#", ...))
            """, chunkName: "copy.lua")
        for _ in 0..<50 {
            let values = (0..<3).map { _ in randomValue(&g) }
            let back = try s.call(f, arguments: values)
            #expect(back == values)
            let copied = try s.call(copy, arguments: values)
            // a copied empty array is a fresh Lua table: it reads as an object
            #expect(copied.map(normalizeEmptyArrays) == values.map(normalizeEmptyArrays))
            let packed = try LuaPackedValues(values)
            #expect(try s.call(f, packed: packed) == values)
        }
        s.close()
        #expect(s.memoryInUse == 0)
    }
}

func normalizeEmptyArrays(_ v: LuaValue) -> LuaValue {
    switch v {
    case .array(let a) where a.isEmpty: return .object([:])
    case .array(let a): return .array(a.map(normalizeEmptyArrays))
    case .object(let o): return .object(o.mapValues(normalizeEmptyArrays))
    default: return v
    }
}
