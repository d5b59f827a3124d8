import Testing

@testable import LuaSandbox

@Suite(.timeLimit(.minutes(2)))
struct LimitAndErrorTests {
    // MARK: errors

    @Test func runtimeErrorsCarryChunkLineAndTraceback() async throws {
        let s = try LuaState()
        let source = """
            local function check(ev)
              return ev.message.id   -- line 2: ev.message is nil
            end
            function handle(ev)
              local r = check(ev)
              return r
            end
            local r = handle({})
            return r
            """
        do {
            let e = try #require(await caught { try await s.execute(source, chunkName: "rules/retry.lua") }?.scriptError)
            #expect(e.kind == .runtime)
            #expect(e.message == "rules/retry.lua:2: attempt to index a nil value (field 'message')")
            #expect(e.chunk == "rules/retry.lua")
            #expect(e.line == 2)
            #expect(e.traceback.hasPrefix("stack traceback:"))
            #expect(e.traceback.contains("rules/retry.lua:2: in upvalue 'check'"))
            #expect(e.traceback.contains("rules/retry.lua:5: in function 'handle'"))
            #expect(e.description.contains("rules/retry.lua:2:"))
        }
        // The state stays usable after a script error.
        #expect(try await s.execute("return 1", chunkName: "x.lua") == [1])
        #expect(!s.needsRebuild)
    }

    @Test func errorWithLevelZeroUsesTheFrameLine() async throws {
        let s = try LuaState()
        do {
            let e = try #require(await caught { try await s.execute("local x = 1\nerror('plain', 0)", chunkName: "rules/e.lua") }?.scriptError)
            #expect(e.message == "plain")
            #expect(e.chunk == "rules/e.lua")
            #expect(e.line == 2)
        }
    }

    @Test func syntaxErrorsNameChunkAndLine() throws {
        let s = try LuaState()
        do {
            let e = try #require(caughtSync { try s.load("local x = 1\nlocal = 2", chunkName: "rules/broken.lua") }?.scriptError)
            #expect(e.kind == .syntax)
            #expect(e.message.hasPrefix("rules/broken.lua:2:"))
            #expect(e.line == 2)
            #expect(e.chunk == "rules/broken.lua")
        }
    }

    @Test func deeplyNestedSourceIsASyntaxErrorNotACrash() throws {
        let s = try LuaState()
        let e = try #require(
            caughtSync { try s.load(String(repeating: "(", count: 200_000) + "1", chunkName: "rules/deep.lua") }?.scriptError)
        #expect(e.kind == .syntax)
        #expect(e.chunk == "rules/deep.lua")
    }

    @Test func errorObjectsAreReadRawNeverThroughTostring() async throws {
        let s = try LuaState()
        do {
            let e = try #require(await caught { try await s.execute(
                "error(setmetatable({}, {__tostring = function() while true do end end}))", chunkName: "rules/t.lua") }?.scriptError)
            #expect(e.message == "(error object is a table value)")
            #expect(e.line == 1)
        }
        do {
            let e = try #require(await caught { try await s.execute("error(42)", chunkName: "rules/t.lua") }?.scriptError)
            #expect(e.message == "42")
        }
        do {
            let e = try #require(await caught { try await s.execute("error()", chunkName: "rules/t.lua") }?.scriptError)
            #expect(e.message == "nil")
        }
    }

    @Test func plainYieldFromARunIsAnError() async throws {
        let s = try LuaState()
        await #expect(throws: LuaError.self) {
            _ = try await s.execute("coroutine.yield(1)", chunkName: "rules/y.lua")
        }
        #expect(try await s.execute("return 2", chunkName: "rules/y.lua") == [2])
    }

    // MARK: limits

    @Test func instructionAbortNamesTheLine() async throws {
        let s = try LuaState(limits: LuaLimits(instructionsPerRun: 100_000))
        do {
            let e = try #require(await caught { try await s.execute("local x = 0\nwhile true do\n  x = x + 1\nend", chunkName: "rules/loop.lua") }?.limitError)
            #expect(e.limit == .instructions)
            #expect(e.chunk == "rules/loop.lua")
            #expect([2, 3].contains(e.line ?? 0))
            #expect(e.description.contains("instruction limit exceeded at rules/loop.lua:"))
        }
        #expect(s.needsRebuild)
        #expect(s.abortedLimit == .instructions)
        #expect(throws: LuaError.unusable(.aborted(.instructions))) {
            _ = try s.load("return 1", chunkName: "x.lua")
        }
    }

    @Test func budgetIsPerRun() async throws {
        let s = try LuaState(limits: LuaLimits(instructionsPerRun: 50_000))
        let f = try s.load("for i = 1, 5000 do end return 'ok'", chunkName: "rules/b.lua")
        // Each run is well under budget; together they are far over it.
        for _ in 0..<50 {
            #expect(try await s.run(f) == ["ok"])
        }
    }

    @Test func wallClockDeadlineAbortsPureLuaLoops() async throws {
        let s = try LuaState(limits: LuaLimits(instructionsPerRun: .max, timePerRun: .milliseconds(50)))
        do {
            let e = try #require(await caught { try await s.execute("while true do end", chunkName: "rules/d.lua") }?.limitError)
            #expect(e.limit == .deadline)
            #expect(e.line == 1)
        }
    }

    @Test func memoryAbortAndAccountingReturnsToZero() async throws {
        let s = try LuaState(limits: LuaLimits(memoryBytes: 4 << 20))
        let base = s.memoryInUse
        #expect(base > 0 && base < 200_000)
        do {
            let e = try #require(await caught { try await s.execute("local t = {} for i = 1, 1e8 do t[i] = i end", chunkName: "rules/m.lua") }?.limitError)
            #expect(e.limit == .memory)
        }
        #expect(s.memoryInUse <= 4 << 20)
        #expect(s.peakMemory <= 4 << 20)
        s.close()
        #expect(s.memoryInUse == 0)
        #expect(s.isClosed)
        await #expect(throws: LuaError.unusable(.closed)) { _ = try await s.execute("return 1", chunkName: "x.lua") }
    }

    @Test func accountingReturnsToZeroAfterHeavyUse() async throws {
        let s = try LuaState()
        _ = try await s.execute(
            """
            local t = {}
            for i = 1, 10000 do t[i] = {tostring(i), string.rep("x", i % 100)} end
            big = table.concat({}, ",")
            cos = {}
            for i = 1, 100 do cos[i] = coroutine.create(function() coroutine.yield() end) coroutine.resume(cos[i]) end
            """, chunkName: "rules/heavy.lua")
        #expect(s.memoryInUse > 100_000)
        s.close()
        #expect(s.memoryInUse == 0)
    }

    @Test func outOfMemoryWhileBuildingAnEventTableIsAnAbort() async throws {
        let s = try LuaState(limits: LuaLimits(memoryBytes: 1 << 20))
        let f = try s.load("local ev = ... return ev.n", chunkName: "rules/ev.lua")
        // An event far larger than the ceiling: the C builder fails mid-table.
        var big: [String: LuaValue] = [:]
        for i in 0..<20_000 { big["field_\(i)"] = .string(String(repeating: "v", count: 64)) }
        do {
            let e = try #require(await caught { try await s.run(f, arguments: [.object(big)]) }?.limitError)
            #expect(e.limit == .memory)
        }
        #expect(s.needsRebuild)
        #expect(s.memoryInUse <= 1 << 20)
        s.close()
        #expect(s.memoryInUse == 0)
    }

    @Test func outOfMemoryWhileBuildingHostResultsIsAnAbort() async throws {
        let s = try LuaState(limits: LuaLimits(memoryBytes: 1 << 20))
        try s.register("huge") { _ in [.array(Array(repeating: .string(String(repeating: "x", count: 100)), count: 50_000))] }
        try s.registerAsync("hugeAsync") { _ in
            [.array(Array(repeating: .string(String(repeating: "y", count: 100)), count: 50_000))]
        }
        do {
            let e = try #require(await caught { try await s.execute("return pcall(huge)", chunkName: "rules/h.lua") }?.limitError)
            #expect(e.limit == .memory)
        }
        let t = try LuaState(limits: LuaLimits(memoryBytes: 1 << 20))
        try t.registerAsync("hugeAsync") { _ in
            [.array(Array(repeating: .string(String(repeating: "y", count: 100)), count: 50_000))]
        }
        do {
            let e = try #require(await caught { try await t.execute("return pcall(hugeAsync)", chunkName: "rules/h.lua") }?.limitError)
            #expect(e.limit == .memory)
        }
    }

    @Test func stateTooSmallToOpenIsAHostError() {
        #expect(throws: LuaError.self) { _ = try LuaState(limits: LuaLimits(memoryBytes: 1024)) }
    }

    @Test func rebuildingAfterAnAbortIsCheap() async throws {
        let source = "on = nil count = 0 function handle(n) count = count + n return count end"
        let broken = try LuaState(limits: LuaLimits(instructionsPerRun: 10_000))
        _ = try await broken.execute(source, chunkName: "rules/r.lua")
        await #expect(throws: LuaError.self) {
            _ = try await broken.execute("while true do end", chunkName: "rules/r.lua")
        }
        #expect(broken.needsRebuild)
        broken.close()
        #expect(broken.memoryInUse == 0)
        // A fresh state from the same source: memory small, works at once.
        let fresh = try LuaState(limits: broken.limits)
        _ = try await fresh.execute(source, chunkName: "rules/r.lua")
        #expect(fresh.memoryInUse < 100_000)
        let f = try fresh.load("return handle(5)", chunkName: "rules/r.lua")
        #expect(try await fresh.run(f) == [5])
    }

    @Test func memoryLimitCanBeLoweredLive() async throws {
        let s = try LuaState()
        s.limits.memoryBytes = s.memoryInUse + 64 * 1024
        await #expect(throws: LuaError.limitExceeded(LuaLimitError(limit: .memory, chunk: "rules/l.lua", line: 1))) {
            _ = try await s.execute("local s = string.rep('x', 1 << 20)", chunkName: "rules/l.lua")
        }
    }

    @Test func patternMatchingStillWorks() async throws {
        let s = try LuaState()
        let r = try await s.execute(
            """
            local a = {string.find("hello world", "o w")}
            local b = {string.find("hello world", "(o)%s(w)")}
            local c = string.match("key=value", "(%w+)=(%w+)")
            local d, n = string.gsub("hello world", "o", "0")
            local e = {}
            for k, v in string.gmatch("a=1, b=2", "(%w+)=(%w+)") do e[#e + 1] = k .. v end
            local f = string.gsub("abc", "%w", {a = "A", b = false})
            local g = string.gsub("abc", "%w", function(x) return x:upper() end)
            local h = ("x"):rep(3)
            local i = string.find("a.b", ".", 1, true)
            local j = {string.find("THE (quick) fox", "%((%a+)%)")}
            local k = string.match("  trim  ", "^%s*(.-)%s*$")
            local l = string.match("[[x]]", "%b[]")
            local m = string.gsub("THE (quick) fox", "%f[%a]%a+", "W")
            return a[1], a[2], b[3], b[4], c, d, n, table.concat(e, ","), f, g, h, i, j[3], k, l, m
            """, chunkName: "rules/p.lua")
        #expect(r == [5, 7, "o", "w", "key", "hell0 w0rld", 2, "a1,b2", "Abc", "ABC", "xxx", 2, "quick", "trim",
            "[[x]]", "W (W) W"])
    }

    @Test func tableFunctionsStillWork() async throws {
        let s = try LuaState()
        let r = try await s.execute(
            """
            local t = {1, 2, 3}
            table.insert(t, 4); table.insert(t, 1, 0)
            local removed = table.remove(t, 1)
            local m = table.move({1, 2, 3}, 1, 3, 2, {})
            local sorted = {5, 3, 9, 1}
            table.sort(sorted)
            local desc = {5, 3, 9, 1}
            table.sort(desc, function(a, b) return a > b end)
            return table.concat(t, ","), removed, m[2], m[4], table.concat(sorted, ","), table.concat(desc, ",")
            """, chunkName: "rules/t.lua")
        #expect(r == ["1,2,3,4", 0, 1, 3, "1,3,5,9", "9,5,3,1"])
    }
}
