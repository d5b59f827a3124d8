import Testing

@testable import LuaSandbox

/// What a hostile script must end in.
enum HostileOutcome: Sendable {
    /// A Lua error (the escape is refused); the message must contain this.
    case refused(String)
    /// The run is aborted by this limit.
    case aborted(LuaLimit)
    /// Either a Lua error containing the text or an abort by the limit
    /// (deep recursion: the stack limit or the memory ceiling, whichever first).
    case refusedOrAborted(String, LuaLimit)
    /// Harmless: the script completes and returns these values.
    case returns([LuaValue])
}

struct Hostile: Sendable, CustomStringConvertible {
    let name: String
    let source: String
    let outcome: HostileOutcome
    var description: String { name }

    init(_ name: String, _ source: String, _ outcome: HostileOutcome) {
        self.name = name
        self.source = source
        self.outcome = outcome
    }
}

/// Limits small enough that every attack ends fast, large enough for
/// ordinary code.
let hostileLimits = LuaLimits(memoryBytes: 16 << 20, instructionsPerRun: 5_000_000, timePerRun: .seconds(20))

let hostileScripts: [Hostile] = [
    // MARK: escapes: libraries that must not exist
    Hostile("io.open", #"return io.open("/etc/passwd"):read("a")"#, .refused("attempt to index a nil value (global 'io')")),
    Hostile("io.popen", #"return io.popen("id")"#, .refused("global 'io'")),
    Hostile("os.execute", #"return os.execute("id")"#, .refused("field 'execute'")),
    Hostile("os.exit", #"os.exit(1)"#, .refused("field 'exit'")),
    Hostile("os.getenv", #"return os.getenv("HOME")"#, .refused("field 'getenv'")),
    Hostile("os.remove", #"return os.remove("/tmp/x")"#, .refused("field 'remove'")),
    Hostile("os.rename/tmpname", #"return os.rename("a", "b") or os.tmpname()"#, .refused("field 'rename'")),
    Hostile("require", #"return require("io")"#, .refused("global 'require'")),
    Hostile("package.loadlib", #"return package.loadlib("libc.so.6", "system")"#, .refused("global 'package'")),
    Hostile("debug.sethook", #"debug.sethook()"#, .refused("global 'debug'")),
    Hostile("debug.getregistry", #"return debug.getregistry()"#, .refused("global 'debug'")),
    Hostile("dofile", #"dofile("/etc/passwd")"#, .refused("global 'dofile'")),
    Hostile("loadfile", #"return loadfile("/etc/passwd")"#, .refused("global 'loadfile'")),
    Hostile("print", #"print("hello")"#, .refused("global 'print'")),
    Hostile("string.dump", #"return string.dump(function() end)"#, .refused("field 'dump'")),
    Hostile("method dump", #"local f = function() end; return ("").dump(f)"#, .refused("field 'dump'")),
    Hostile(
        "binary chunk through load",
        #"return assert(load("\27Lua\84\0\25\147\13\10\26\10\4\8\8\120\86\0\0\0\0\0\0\0\0\0\0\0\40\119\64\1"))"#,
        .refused("attempt to load a binary chunk")),
    Hostile(
        "binary chunk with explicit mode b",
        #"return assert(load("\27Lua\84\0", "x", "b"))"#, .refused("attempt to load a binary chunk")),
    Hostile(
        "_ENV swap does not reveal io",
        #"local _ENV = setmetatable({}, {__index = _G}); return io == nil, os.execute == nil, debug == nil"#,
        .returns([true, true, true])),
    Hostile(
        "load with custom env sees only it",
        #"return load("return io, x", "chunk", "t", {x = 42})()"#, .returns([.null, 42])),
    Hostile("_G lookups", #"return _G.io, _G.debug, _G.package, _G.require"#, .returns([.null, .null, .null, .null])),
    Hostile("string metatable protected", #"return getmetatable("")"#, .returns([false])),
    Hostile("string metatable patch", #"getmetatable("").__index = function() return "pwned" end"#, .refused("boolean value")),
    Hostile(
        "string metatable via setmetatable", #"setmetatable(getmetatable(""), {})"#,
        .refused("bad argument #1 to 'setmetatable'")),
    Hostile(
        "rawset on the string metatable", #"rawset(getmetatable(""), "__index", {})"#,
        .refused("bad argument #1 to 'rawset'")),
    Hostile(
        "metatables of basic types are all absent",
        #"return getmetatable(1) == nil and getmetatable(nil) == nil and getmetatable(true) == nil and getmetatable(error) == nil"#,
        .returns([true])),
    Hostile("collectgarbage collect", #"collectgarbage()"#, .refused("not allowed in the sandbox")),
    Hostile("collectgarbage stop", #"collectgarbage("stop")"#, .refused("not allowed in the sandbox")),
    Hostile("collectgarbage count ok", #"return type(collectgarbage("count"))"#, .returns(["number"])),
    Hostile(
        "looping __gc", #"setmetatable({}, {__gc = function() while true do end end})"#,
        .refused("__gc metamethods are not allowed")),
    Hostile("__gc = true", #"setmetatable({}, {__gc = true})"#, .refused("__gc metamethods are not allowed")),
    Hostile(
        "host coroutine cannot be resumed",
        #"local co = coroutine.running(); local ok, err = coroutine.resume(co); return ok, err"#,
        .returns([false, "cannot resume a coroutine owned by the host"])),

    // MARK: resource attacks: CPU
    Hostile("infinite loop", "while true do end", .aborted(.instructions)),
    Hostile("repeat loop", "local i = 0 repeat i = i + 1 until false", .aborted(.instructions)),
    Hostile("goto loop", "::top:: goto top", .aborted(.instructions)),
    Hostile("loop inside pcall", "local ok = pcall(function() while true do end end) return ok", .aborted(.instructions)),
    Hostile(
        "loop in pcall inside pcall",
        "return pcall(pcall, function() while true do end end)", .aborted(.instructions)),
    Hostile(
        "loop inside xpcall body", "return xpcall(function() while true do end end, function(m) return m end)",
        .aborted(.instructions)),
    Hostile(
        "loop inside xpcall message handler", "return xpcall(error, function() while true do end end)",
        .aborted(.instructions)),
    Hostile(
        "looping message handler after an abort",
        "return xpcall(function() while true do end end, function() while true do end end)", .aborted(.instructions)),
    Hostile(
        "loop inside coroutine.resume",
        "local co = coroutine.create(function() while true do end end) return coroutine.resume(co)",
        .aborted(.instructions)),
    Hostile(
        "loop inside coroutine.wrap", "return coroutine.wrap(function() while true do end end)()",
        .aborted(.instructions)),
    Hostile(
        "loop in nested coroutines",
        """
        return coroutine.wrap(function()
          return coroutine.resume(coroutine.create(function() return pcall(function() while true do end end) end))
        end)()
        """, .aborted(.instructions)),
    Hostile("tail call loop", "local function f() return f() end return f()", .aborted(.instructions)),
    Hostile(
        "mutual tail calls", "local g local function f() return g() end function g() return f() end return f()",
        .aborted(.instructions)),
    Hostile(
        "loop in __index", "return setmetatable({}, {__index = function() while true do end end}).x",
        .aborted(.instructions)),
    Hostile(
        "loop in __tostring", "return tostring(setmetatable({}, {__tostring = function() while true do end end}))",
        .aborted(.instructions)),
    Hostile(
        "loop in __close", "do local x <close> = setmetatable({}, {__close = function() while true do end end}) end",
        .aborted(.instructions)),
    Hostile(
        "__close loop while aborting",
        "do local x <close> = setmetatable({}, {__close = function() while true do end end}) while true do end end",
        .aborted(.instructions)),
    Hostile(
        "coroutine.close with looping __close",
        """
        local co = coroutine.create(function()
          local x <close> = setmetatable({}, {__close = function() while true do end end})
          coroutine.yield()
        end)
        coroutine.resume(co)
        return coroutine.close(co)
        """, .aborted(.instructions)),
    Hostile(
        "coroutine.close with a memory bomb in __close",
        """
        local co = coroutine.create(function()
          local x <close> = setmetatable({}, {__close = function() local t = {} for i = 1, 1e9 do t[i] = i end end})
          coroutine.yield()
        end)
        coroutine.resume(co)
        return coroutine.close(co)
        """, .aborted(.memory)),
    Hostile(
        "coroutine.close still works",
        """
        local closed = false
        local co = coroutine.create(function()
          local x <close> = setmetatable({}, {__close = function() closed = true end})
          coroutine.yield()
        end)
        coroutine.resume(co)
        local ok = coroutine.close(co)
        local ok2, err = pcall(coroutine.close, coroutine.running())
        return ok, closed, coroutine.status(co), ok2, err
        """, .returns([true, true, "dead", false, "owned by the host"])),
    Hostile("load reader that loops", "return load(function() while true do end end)", .aborted(.instructions)),
    Hostile(
        "gsub callback loops", #"return string.gsub("aaa", "a", function() while true do end end)"#,
        .aborted(.instructions)),
    Hostile("sort comparator loops", "table.sort({3, 2, 1}, function() while true do end end)", .aborted(.instructions)),
    Hostile(
        "sort of a huge virtual table",
        """
        local t = setmetatable({}, {__len = function() return 2^31 - 2 end,
          __index = function(_, i) return -i end, __newindex = function() end})
        table.sort(t)
        """, .aborted(.instructions)),
    Hostile(
        "pattern backtracking (find)", #"return string.find(string.rep("a", 5000), string.rep(".-", 20) .. "b")"#,
        .aborted(.instructions)),
    Hostile(
        "pattern backtracking (match)", #"return string.match(string.rep("a", 5000), string.rep("a*", 20) .. "b")"#,
        .aborted(.instructions)),
    Hostile(
        "pattern backtracking (gsub)", #"return string.gsub(string.rep("a", 5000), string.rep(".-", 20) .. "b", "")"#,
        .aborted(.instructions)),
    Hostile(
        "pattern backtracking (gmatch)",
        #"for m in string.gmatch(string.rep("a", 5000), string.rep(".-", 20) .. "b") do end"#, .aborted(.instructions)),
    Hostile(
        "pattern backtracking inside pcall",
        #"return pcall(string.find, string.rep("a", 5000), string.rep(".-", 20) .. "b")"#, .aborted(.instructions)),
    Hostile(
        "plain find n*m", #"return string.find(string.rep("a", 1 << 22), string.rep("a", 1 << 20) .. "b", 1, true)"#,
        .aborted(.instructions)),
    Hostile("table.move over 2^62 slots", "table.move({}, 1, 1 << 62, 2)", .aborted(.instructions)),
    Hostile(
        "table.insert with a huge __len",
        "table.insert(setmetatable({}, {__len = function() return math.maxinteger - 1 end}), 1, 'x')",
        .aborted(.instructions)),
    Hostile(
        "table.remove with a huge __len",
        "table.remove(setmetatable({}, {__len = function() return math.maxinteger - 1 end}), 1)",
        .aborted(.instructions)),
    Hostile(
        "nested pcall recursion ends", "local n = 0 local function f() n = n + 1 pcall(f) end f() return n > 100",
        .returns([true])),
    Hostile(
        "deep recursion", "local function f(n) return 1 + f(n + 1) end return f(1)",
        .refusedOrAborted("stack overflow", .memory)),
    Hostile(
        "deep recursion in pcall", "local function f(n) return 1 + f(n + 1) end return pcall(f, 1)",
        .refusedOrAborted("stack overflow", .memory)),

    Hostile(
        "parser nesting bomb",
        #"local f, err = load(string.rep("(", 100000) .. "1" .. string.rep(")", 100000)) return f == nil, err"#,
        .returns([true, "overflow"])),
    Hostile(
        "table constructor nesting bomb",
        #"local f, err = load("return " .. string.rep("{", 100000) .. string.rep("}", 100000)) return f == nil, err"#,
        .returns([true, "overflow"])),
    Hostile(
        "__tostring recursion",
        "local t = setmetatable({}, {__tostring = function(s) return tostring(s) end}) return tostring(t)",
        .refusedOrAborted("stack overflow", .memory)),
    Hostile(
        "__index chain loop", "local t = {} setmetatable(t, {__index = t}) return t.x",
        .refused("'__index' chain too long")),

    // MARK: resource attacks: memory
    Hostile("string.rep bomb", #"local s = string.rep("x", 1 << 30) return #s"#, .aborted(.memory)),
    Hostile("method rep bomb", #"local s = ("x"):rep(1 << 28) return #s"#, .aborted(.memory)),
    Hostile("table growth", "local t = {} for i = 1, 1e9 do t[i] = i end", .aborted(.memory)),
    Hostile("hash growth", "local t = {} for i = 1, 1e9 do t['k' .. i] = i end", .aborted(.memory)),
    Hostile("concat doubling", #"local s = "x" while true do s = s .. s end"#, .aborted(.memory)),
    Hostile(
        "table.concat bomb",
        #"local t = {} for i = 1, 64 do t[i] = string.rep("x", 1 << 20) end local u = {} for i = 1, 64 do u[i] = table.concat(t) end"#,
        .aborted(.memory)),
    Hostile("memory bomb inside pcall", #"return pcall(string.rep, "x", 1 << 30)"#, .aborted(.memory)),
    Hostile(
        "memory bomb inside coroutine",
        "return coroutine.resume(coroutine.create(function() local t = {} for i = 1, 1e9 do t[i] = {} end end))",
        .aborted(.memory)),
    Hostile(
        "format bomb via __tostring",
        #"return string.format("%s", setmetatable({}, {__tostring = function() return string.rep("x", 1 << 30) end}))"#,
        .aborted(.memory)),
    Hostile("rep with separator bomb", #"return #string.rep("x", 1 << 20, string.rep("y", 1 << 10))"#, .aborted(.memory)),
    Hostile("unpack bomb", "return select('#', table.unpack({}, 1, 1e8))", .refused("too many results to unpack")),
    Hostile(
        "coroutine bomb", "local t = {} for i = 1, 1e9 do t[i] = coroutine.create(print or error) end",
        .aborted(.memory)),
]

@Suite(.timeLimit(.minutes(2)))
struct HostileScriptTests {
    @Test func batteryHasAtLeastFortyScripts() {
        #expect(hostileScripts.count >= 40)
    }

    @Test(arguments: hostileScripts)
    func hostileScript(_ h: Hostile) async throws {
        // A bystander state, loaded before the attack, must be unaffected.
        let bystander = try LuaState(limits: hostileLimits)
        _ = try await bystander.execute("counter = 41", chunkName: "bystander.lua")

        let state = try LuaState(limits: hostileLimits)
        let result: Result<[LuaValue], LuaError>
        do {
            result = .success(try await state.execute(h.source, chunkName: "hostile.lua"))
        } catch {
            result = .failure(error)
        }

        switch (h.outcome, result) {
        case (.refused(let text), .failure(.script(let e))):
            #expect(e.message.contains(text), "\(h.name): \(e.message)")
            #expect(!state.needsRebuild)
        case (.aborted(let limit), .failure(.limitExceeded(let e))):
            #expect(e.limit == limit, "\(h.name): \(e)")
            #expect(state.needsRebuild)
            #expect(state.abortedLimit == limit)
            // The state refuses further work.
            await #expect(throws: LuaError.unusable(.aborted(limit))) {
                _ = try await state.execute("return 1", chunkName: "after.lua")
            }
        case (.refusedOrAborted(let text, _), .failure(.script(let e))):
            #expect(e.message.contains(text), "\(h.name): \(e.message)")
        case (.refusedOrAborted(_, let limit), .failure(.limitExceeded(let e))):
            #expect(e.limit == limit, "\(h.name): \(e)")
        case (.returns(let expected), .success(let values)):
            #expect(values.count == expected.count, "\(h.name): \(values)")
            for (v, x) in zip(values, expected) {
                if case .string(let xs) = x, case .string(let vs) = v {
                    #expect(vs.contains(xs), "\(h.name): \(vs)")
                } else {
                    #expect(v == x, "\(h.name): \(values)")
                }
            }
        default:
            Issue.record("\(h.name): expected \(h.outcome), got \(result)")
        }

        // Closing returns every byte, even after an abort.
        state.close()
        #expect(state.memoryInUse == 0)

        // The bystander still works and kept its own globals only.
        let after = try await bystander.execute(
            "counter = counter + 1 return counter, leaked", chunkName: "bystander.lua")
        #expect(after == [42, .null])
    }

    @Test func globalsDoNotLeakBetweenStates() async throws {
        let a = try LuaState()
        let b = try LuaState()
        _ = try await a.execute("secret = 'a-only'; string.secret = 1; _G.x = 2", chunkName: "a.lua")
        let r = try await b.execute("return secret, string.secret, x, rawget(_G, 'secret')", chunkName: "b.lua")
        #expect(r == [.null, .null, .null, .null])
        #expect(try a.global("secret") == "a-only")
        #expect(try b.global("secret") == .null)
    }

    @Test func sandboxContentsAreExactlyTheAllowedOnes() async throws {
        let s = try LuaState()
        let r = try await s.execute(
            """
            local g = {}
            for k in pairs(_G) do g[#g + 1] = k end
            table.sort(g)
            local o = {}
            for k in pairs(os) do o[#o + 1] = k end
            table.sort(o)
            return table.concat(g, " "), table.concat(o, " ")
            """, chunkName: "contents.lua")
        #expect(
            r[0]
                == "_G _VERSION assert collectgarbage coroutine error getmetatable ipairs load math next os pairs pcall rawequal rawget rawlen rawset select setmetatable string table tonumber tostring type utf8 xpcall"
        )
        #expect(r[1] == "clock date time")
    }
}
