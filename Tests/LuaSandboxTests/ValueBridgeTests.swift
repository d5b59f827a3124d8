import Testing

@testable import LuaSandbox

/// Round trips through Lua: Swift → Lua (argument) → Swift (result).
@Suite struct ValueBridgeTests {
    let state: LuaState
    let identity: LuaFunction

    init() throws {
        state = try LuaState()
        identity = try state.load("return ...", chunkName: "identity.lua")
    }

    func roundTrip(_ v: LuaValue) throws(LuaError) -> LuaValue {
        let r = try state.call(identity, arguments: [v])
        return r.first ?? .null
    }

    func lua(_ source: String, _ args: [LuaValue] = []) throws(LuaError) -> [LuaValue] {
        let f = try state.load(source, chunkName: "bridge.lua")
        defer { state.release(f) }
        return try state.call(f, arguments: args)
    }

    static let roundTripping: [LuaValue] = [
        .null, true, false, 0, 1, -1, .integer(.max), .integer(.min), 0.5, -0.0, 3.0, 1e308, -1e-308,
        .double(.leastNonzeroMagnitude), .double(.greatestFiniteMagnitude),
        "", "hello", "héllo wörld ✓ 😀", "with\0zero", .string(String(repeating: "x", count: 100_000)),
        [1, 2, 3], ["a", 1, true, 2.5, [1, [2, [3]]]], [], .object([:]),
        ["a": 1, "b": "two", "c": [1, 2], "d": ["e": ["f": false]]],
        ["": 1, "with space": 2, "1": "string key that looks numeric", "ü": 3],
        .array([.object([:]), .array([]), .object(["x": .array([])])]),
    ]

    @Test(arguments: roundTripping)
    func roundTrips(_ v: LuaValue) throws {
        #expect(try roundTrip(v) == v)
    }

    @Test func typesSeenByLua() throws {
        let r = try lua(
            "local a, b, c, d, e = ... return math.type(a), math.type(b), math.type(c), type(d), #e",
            [.integer(3), .double(3.0), .double(0.5), .string("x"), [1, 2, 3]])
        #expect(r == ["integer", "float", "float", "string", 3])
    }

    @Test func integersAndFloatsStayDistinct() throws {
        let r = try lua("return 1, 1.0, 2^53, 7 // 2, 7 / 2, math.maxinteger, math.mininteger, -0.0")
        #expect(r == [.integer(1), .double(1.0), .double(9007199254740992), .integer(3), .double(3.5),
            .integer(.max), .integer(.min), .double(-0.0)])
        #expect(r[7].doubleValue?.sign == .minus)
    }

    @Test func emptyTableFromLuaIsAnObject() throws {
        #expect(try lua("return {}") == [.object([:])])
    }

    @Test func emptyArrayFromSwiftStaysAnArray() throws {
        #expect(try roundTrip(.array([])) == .array([]))
        // ... until the script fills it; then normal rules apply.
        #expect(try lua("local t = ... t.k = 1 return t", [.array([])]) == [["k": 1]])
        #expect(try lua("local t = ... t[1] = 'x' return t", [.array([])]) == [["x"]])
    }

    @Test func nullsInArraysAndObjects() throws {
        // nulls inside arrays are holes; trailing ones vanish.
        #expect(try roundTrip([1, .null, 3]) == [1, .null, 3])
        #expect(try roundTrip([1, .null]) == [1])
        // nulls in objects are absent keys.
        #expect(try roundTrip(["a": 1, "b": .null]) == ["a": 1])
        #expect(try lua("local t = ... return t.b == nil, t.a", [["a": 1, "b": .null]]) == [true, 1])
    }

    @Test func arraysWithHolesFromLua() throws {
        #expect(try lua("return {1, nil, 3}") == [[1, .null, 3]])
        #expect(try lua("return {[2] = 'b'}") == [[.null, "b"]])
        #expect(try lua("return {[10] = 'j'}") == [.array(Array(repeating: .null, count: 9) + ["j"])])
    }

    @Test func excessivelySparseArraysAreRefused() throws {
        #expect {
            _ = try lua("return {[1] = 1, [1000] = 2}")
        } throws: { e in
            guard case LuaError.conversion(let c) = e else { return false }
            return c.problem == .sparseArray && c.path == "$" && c.context == "result"
        }
    }

    @Test func mixedKeysAreRefusedWithPath() throws {
        #expect {
            _ = try lua("return {items = {{ok = true}, {1, 2, x = 3}}}")
        } throws: { e in
            guard case LuaError.conversion(let c) = e else { return false }
            return c.problem == .mixedKeys && c.path == "$.items[2]"
        }
    }

    @Test(arguments: [
        ("return {[true] = 1}", "boolean key true"),
        ("return {[1.5] = 1}", "float key 1.5"),
        ("return {[0] = 'zero'}", "integer key 0"),
        ("return {[-1] = 'neg'}", "integer key -1"),
        ("return {[{}] = 1}", "table key"),
    ])
    func invalidKeysAreRefused(_ source: String, _ detail: String) throws {
        #expect {
            _ = try lua(source)
        } throws: { e in
            guard case LuaError.conversion(let c) = e else { return false }
            return c.problem == .invalidKey && c.detail == detail && c.path == "$"
        }
    }

    @Test func functionsUserdataAndCoroutinesAreRefusedWithPath() throws {
        #expect(throws: LuaError.self) { _ = try lua("return error") }
        do {
            let c = try #require(caughtSync { try lua("return {a = {b = {function() end}}}") }?.conversionError)
            #expect(c.problem == .function)
            #expect(c.path == "$.a.b[1]")
            #expect(c.description.contains("a function value cannot be converted at $.a.b[1]"))
        }
        do {
            let c = try #require(caughtSync { try lua("return {co = coroutine.create(function() end)}") }?.conversionError)
            #expect(c.problem == .coroutine)
            #expect(c.path == "$.co")
        }
        do {
            let c = try #require(caughtSync { try lua(#"return {["odd key"] = {error}}"#) }?.conversionError)
            #expect(c.path == #"$["odd key"][1]"#)
        }
    }

    @Test func cyclesAreRefusedButSharingIsCopied() throws {
        do {
            let c = try #require(caughtSync { try lua("local t = {} t.self = t return t") }?.conversionError)
            #expect(c.problem == .cycle)
            #expect(c.path == "$.self")
        }
        do {
            let c = try #require(caughtSync { try lua("local a = {} local b = {a} a[1] = b return {x = a}") }?.conversionError)
            #expect(c.problem == .cycle)
            #expect(c.path == "$.x[1][1]")
        }
        let shared = try lua("local s = {1} return {a = s, b = s}")
        #expect(shared == [["a": [1], "b": [1]]])
    }

    @Test func nonFiniteNumbersAreRefusedBothWays() throws {
        for (src, detail) in [("return 0/0", "nan"), ("return 1/0", "inf"), ("return {x = -1/0}", "-inf")] {
            do {
                let c = try #require(caughtSync { try lua(src) }?.conversionError)
                #expect(c.problem == .nonFiniteNumber)
                #expect(c.detail == detail)
            }
        }
        for v in [LuaValue.double(.nan), .double(.infinity), ["a": [.double(-.infinity)]]] {
            #expect {
                _ = try roundTrip(v)
            } throws: { e in
                guard case LuaError.conversion(let c) = e else { return false }
                return c.problem == .nonFiniteNumber && c.context == "argument #1"
            }
        }
    }

    @Test func invalidUTF8IsRepairedNotRefused() throws {
        let r = try lua(#"return "ok\xff\xfeend", {["k\xc3"] = "v"}, "\xe2\x82\xac""#)
        #expect(r[0] == .string("ok\u{FFFD}\u{FFFD}end"))
        #expect(r[1] == ["k\u{FFFD}": "v"])
        #expect(r[2] == "€")
    }

    @Test func bytesArePreservedIntoLua() throws {
        #expect(try lua("local s = ... return #s, s:byte(2)", ["é"]) == [2, 0xA9])
    }

    @Test func metatablesAreNeverRunWhileReading() throws {
        let r = try lua(
            """
            local hits = 0
            local mt = {__index = function() hits = hits + 1 return "meta" end,
                        __pairs = function() error("pairs ran") end,
                        __len = function() error("len ran") end,
                        __tostring = function() error("tostring ran") end}
            _G.hits = function() return hits end
            return setmetatable({a = 1}, mt), setmetatable({}, mt), setmetatable({10, 20}, mt)
            """)
        #expect(r == [["a": 1], .object([:]), [10, 20]])
        #expect(try lua("return hits()") == [0])
    }

    @Test func depthLimitBothWays() throws {
        let deep = try LuaState(limits: LuaLimits(maxValueDepth: 10))
        let f = try deep.load("return ...", chunkName: "deep.lua")
        var v: LuaValue = 1
        for _ in 0..<11 { v = [v] }
        #expect {
            _ = try deep.call(f, arguments: [v])
        } throws: { e in
            guard case LuaError.conversion(let c) = e else { return false }
            return c.problem == .tooDeep
        }
        let g = try deep.load("local t = {} local c = t for i = 1, 20 do c.n = {} c = c.n end return t", chunkName: "deep.lua")
        #expect {
            _ = try deep.call(g)
        } throws: { e in
            guard case LuaError.conversion(let c) = e else { return false }
            return c.problem == .tooDeep && c.path.hasPrefix("$.n.n.n")
        }
    }

    @Test func sizeLimitBothWays() throws {
        let small = try LuaState(limits: LuaLimits(maxValueElements: 100, maxValueBytes: 4096))
        let f = try small.load("return ...", chunkName: "size.lua")
        #expect(throws: LuaError.self) {
            _ = try small.call(f, arguments: [.array(Array(repeating: 1, count: 200))])
        }
        let g = try small.load("local t = {} for i = 1, 200 do t[i] = i end return t", chunkName: "size.lua")
        #expect {
            _ = try small.call(g)
        } throws: { e in
            guard case LuaError.conversion(let c) = e else { return false }
            return c.problem == .tooLarge
        }
        let h = try small.load("return string.rep('x', 10000)", chunkName: "size.lua")
        #expect {
            _ = try small.call(h)
        } throws: { e in
            guard case LuaError.conversion(let c) = e else { return false }
            return c.problem == .tooLarge
        }
    }

    @Test func globalsReadRawAndWrite() throws {
        try state.setGlobal("config", ["retries": 3, "numbers": ["+62811"]])
        #expect(try lua("return config.retries, config.numbers[1]") == [3, "+62811"])
        _ = try lua("proxy = setmetatable({}, {__index = function() error('ran') end})")
        #expect(try state.global("proxy") == .object([:]))
        #expect(try state.global("missing") == .null)
    }

    @Test func literalsAndAccessors() {
        let v: LuaValue = ["n": 1, "d": 2.5, "s": "x", "a": [true, false], "o": ["k": "v"]]
        #expect(v["n"]?.int64Value == 1)
        #expect(v["d"]?.doubleValue == 2.5)
        #expect(v["s"]?.stringValue == "x")
        #expect(v["a"]?[1]?.boolValue == false)
        #expect(v["o"]?["k"] == "v")
        #expect(v["missing"] == nil)
        #expect(LuaValue.double(3.0).int64Value == 3)
        #expect(LuaValue.double(3.5).int64Value == nil)
        #expect(v.description == #"{"a":[true,false],"d":2.5,"n":1,"o":{"k":"v"},"s":"x"}"#)
    }
}
