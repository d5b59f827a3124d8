import Synchronization
import Testing

@testable import LuaSandbox

/// The shape the engine will use: an actor owns the state; handlers are
/// registered by `on(name, fn)` and run later as coroutines.
actor RuleHost {
    /// Non-Sendable state of the actor, shared with the host closures.
    final class Handlers {
        var byEvent: [String: [LuaFunction]] = [:]
    }

    let lua: LuaState
    let handlers = Handlers()

    init(source: String, limits: LuaLimits = .default, asyncFunctions: [String: LuaAsyncHostFunction] = [:])
        async throws
    {
        lua = try LuaState(limits: limits)
        let handlers = self.handlers
        try lua.register("on") { call in
            let name = try call.arguments.string(at: 0)
            let fn = try call.retainFunction(at: 1)
            handlers.byEvent[name, default: []].append(fn)
            return []
        }
        for (name, body) in asyncFunctions {
            let parts = name.split(separator: ".").map(String.init)
            try lua.registerAsync(parts.last!, in: parts.count > 1 ? parts[0] : nil, body)
        }
        _ = try await lua.execute(source, chunkName: "rules/test.lua")
    }

    func fire(_ event: String, _ payload: LuaValue) async throws(LuaError) -> [LuaValue] {
        var all: [LuaValue] = []
        for fn in handlers.byEvent[event] ?? [] {
            all += try await lua.run(fn, arguments: [payload])
        }
        return all
    }

    var memory: Int { lua.memoryInUse }
    var activeRuns: Int { lua.activeRuns }

    func global(_ name: String) throws(LuaError) -> LuaValue { try lua.global(name) }
}

/// Opens when `count` parties have arrived: proves they were all suspended
/// at the same time.
actor Gate {
    let count: Int
    var arrived = 0
    var waiters: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { self.count = count }

    func arrive() async {
        arrived += 1
        if arrived == count {
            for w in waiters { w.resume() }
            waiters.removeAll()
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }
}

@Suite(.timeLimit(.minutes(2)))
struct HostFunctionTests {
    @Test func syncHostFunctionsInGlobalsAndTables() async throws {
        let s = try LuaState()
        try s.register("add") { call in
            [.integer(try call.arguments.integer(at: 0) + call.arguments.integer(at: 1))]
        }
        try s.register("info", in: "log") { call in
            [.string("logged: " + (try call.arguments.string(at: 0))), .object(try call.arguments.object(at: 1))]
        }
        let r = try await s.execute(
            "local a = add(2, 3) local m, f = log.info('hi', {k = 1}) return a, m, f.k, type(log)",
            chunkName: "host.lua")
        #expect(r == [5, "logged: hi", 1, "table"])
    }

    @Test func hostErrorsAreRaisedWithThePosition() async throws {
        let s = try LuaState()
        try s.register("send", in: "sidobe") { call in
            _ = try call.arguments.object(at: 0)
            throw LuaHostError("phone is required")
        }
        do {
            let e = try #require(await caught { try await s.execute("\n\nsidobe.send({})", chunkName: "rules/retry.lua") }?.scriptError)
            #expect(e.message == "rules/retry.lua:3: phone is required")
            #expect(e.chunk == "rules/retry.lua")
            #expect(e.line == 3)
        }
        // Argument errors are worded like Lua's.
        do {
            let e = try #require(await caught { try await s.execute("sidobe.send('x')", chunkName: "rules/retry.lua") }?.scriptError)
            #expect(e.message == "rules/retry.lua:1: bad argument #1 to 'sidobe.send' (table expected, got string)")
        }
        // Host errors can be caught by pcall (they are ordinary errors).
        let r = try await s.execute("return pcall(sidobe.send, {})", chunkName: "rules/retry.lua")
        #expect(r.first == false)
    }

    @Test func unconvertibleArgumentsAreRefusedBeforeTheHostRuns() async throws {
        let s = try LuaState()
        let ran = Mutex(false)
        try s.register("send", in: "sidobe") { _ in
            ran.withLock { $0 = true }
            return []
        }
        do {
            let e = try #require(await caught { try await s.execute("sidobe.send({phone = '1', cb = print or error})", chunkName: "r.lua") }?.scriptError)
            #expect(
                e.message
                    == "r.lua:1: bad argument #1 to 'sidobe.send' (a function value cannot be converted at $.cb)")
        }
        #expect(ran.withLock { $0 } == false)
    }

    @Test func unconvertibleHostResultsBecomeLuaErrors() async throws {
        let s = try LuaState()
        try s.register("bad") { _ in [.double(.nan)] }
        let r = try await s.execute("return pcall(bad)", chunkName: "r.lua")
        #expect(r.first == false)
        #expect(r.last?.stringValue?.contains("NaN and infinities cannot be converted") == true)
    }

    @Test func handlersRegisteredByOnRunLaterWithEventTables() async throws {
        let host = try await RuleHost(
            source: """
                seen = 0
                on("message.failed", function(ev)
                  seen = seen + 1
                  return ev.message_id, ev.status, seen, ev.message.attempt
                end)
                """)
        let event: LuaValue = [
            "event_id": "e1", "message_id": "m1", "status": "FAILED", "message": ["attempt": 2],
        ]
        #expect(try await host.fire("message.failed", event) == ["m1", "FAILED", 1, 2])
        #expect(try await host.fire("message.failed", event) == ["m1", "FAILED", 2, 2])
    }

    @Test func packedArgumentsAndGlobalFunctions() async throws {
        let s = try LuaState()
        _ = try await s.execute("function handle(ev, n) return ev.status .. '/' .. n end", chunkName: "rules/g.lua")
        let f = try #require(try s.function(named: "handle"))
        #expect(try s.function(named: "missing") == nil)
        let packed = try LuaPackedValues([["status": "FAILED"], 7])
        #expect(packed.count == 2)
        #expect(try await s.run(f, packed: packed) == ["FAILED/7"])
        #expect(try s.call(f, packed: packed) == ["FAILED/7"])
        // One packed event, many states.
        let other = try LuaState()
        _ = try await other.execute("function handle(ev, n) return n * 2 end", chunkName: "rules/h.lua")
        #expect(try await other.run(try #require(try other.function(named: "handle")), packed: packed) == [14])
        #expect(throws: LuaConversionError.self) { _ = try LuaPackedValues([.double(.nan)]) }
    }

    @Test func retainedFunctionsCanBeReleased() async throws {
        let s = try LuaState()
        let kept = Mutex<[LuaFunction]>([])
        try s.register("keep") { call in
            let f = try call.retainFunction(at: 0)
            kept.withLock { $0.append(f) }
            return []
        }
        _ = try await s.execute("keep(function(x) return x * 2 end)", chunkName: "k.lua")
        let f = kept.withLock { $0[0] }
        #expect(try await s.run(f, arguments: [21]) == [42])
        s.release(f)
        await #expect(throws: LuaError.invalidHandle) { _ = try await s.run(f) }
        // A handle of another state is refused.
        let other = try LuaState()
        let g = try other.load("return 1", chunkName: "o.lua")
        await #expect(throws: LuaError.invalidHandle) { _ = try await s.run(g) }
        // Retaining a non-function is a Lua-worded error.
        do {
            let e = try #require(await caught { try await s.execute("keep(1)", chunkName: "k.lua") }?.scriptError)
            #expect(e.message.contains("bad argument #1 to 'keep' (function expected, got number)"))
        }
    }

    @Test func reentrantUseIsRefused() async throws {
        let s = try LuaState()
        let seen = Mutex<LuaError?>(nil)
        try s.register("evil") { [unowned s] _ in
            do { _ = try s.global("x") } catch { seen.withLock { $0 = error as? LuaError } }
            return []
        }
        _ = try await s.execute("evil()", chunkName: "e.lua")
        #expect(seen.withLock { $0 } == .reentrantCall)
    }

    @Test func asyncHostFunctionSuspendsAndResumes() async throws {
        let s = try LuaState()
        try s.registerAsync("send", in: "sidobe") { call in
            let phone = try call.arguments.object(at: 0)["phone"]?.stringValue ?? "?"
            await Task.yield()
            return [["id": "msg-1", "status": "PENDING", "phone": .string(phone)]]
        }
        let r = try await s.execute(
            """
            local msg, err = sidobe.send { phone = "+628123", message = "hi" }
            return msg.id, msg.status, msg.phone, err
            """, chunkName: "rules/send.lua")
        #expect(r == ["msg-1", "PENDING", "+628123", .null])
    }

    @Test func asyncHostErrorsAreRaisedInTheCoroutine() async throws {
        let s = try LuaState()
        try s.registerAsync("fail") { _ in throw LuaHostError("upstream timeout") }
        let r = try await s.execute(
            "local ok, err = pcall(function() return (fail()) end) return ok, err", chunkName: "rules/a.lua")
        #expect(r == [false, "rules/a.lua:1: upstream timeout"])
    }

    @Test func asyncCallsFromNestedCoroutinesPropagate() async throws {
        let s = try LuaState()
        try s.registerAsync("fetch") { call in
            await Task.yield()
            return [.integer(try call.arguments.integer(at: 0) * 10)]
        }
        let r = try await s.execute(
            """
            local co = coroutine.wrap(function(a)
              local x = fetch(a)            -- suspends the whole run, not just this coroutine
              local y = coroutine.yield(x)  -- a script-level yield still goes to the script
              return x + y + fetch(3)
            end)
            local first = co(1)
            local inner = coroutine.create(function() return pcall(fetch, 2) end)
            local ok, pok, v = coroutine.resume(inner)
            return first, co(5), ok, pok, v
            """, chunkName: "rules/nested.lua")
        #expect(r == [10, 45, true, true, 20])
    }

    @Test func asyncCallsWhereTheRunCannotYieldAreErrors() async throws {
        let s = try LuaState()
        try s.registerAsync("fetch") { _ in [1] }
        let r = try await s.execute(
            """
            local ok1, e1 = pcall(table.sort, {2, 1}, function(a, b) fetch() return a < b end)
            local ok2, e2 = pcall(string.gsub, "a", "a", function()
              return coroutine.wrap(function() return fetch() end)()
            end)
            -- metamethods called by the VM can yield in Lua 5.4: allowed
            local ok3, v3 = pcall(function()
              return setmetatable({}, {__index = function() return coroutine.wrap(function() return fetch() end)() end}).x
            end)
            return ok1, e1, ok2, e2, ok3, v3
            """, chunkName: "rules/c.lua")
        #expect(r[0] == false)
        #expect(r[1].stringValue?.contains("cannot be called here") == true)
        #expect(r[2] == false)
        #expect(r[3].stringValue?.contains("cannot be called here") == true)
        #expect(r[4] == true)
        #expect(r[5] == 1)
        // The synchronous call API refuses async host functions.
        let f = try s.load("return pcall(fetch)", chunkName: "rules/c.lua")
        let sync = try s.call(f)
        #expect(sync[0] == false)
        #expect(sync[1].stringValue?.contains("cannot be called from a synchronous call") == true)
    }

    @Test func thousandRunsSuspendedAtOnceInOneState() async throws {
        let n = 1000
        let gate = Gate(count: n)
        let host = try await RuleHost(
            source: """
                total = 0
                on("tick", function(ev)
                  local before = total
                  local r = wait_all(ev.i)
                  total = total + 1
                  return ev.i, r.echo, r.squared
                end)
                """,
            asyncFunctions: [
                "wait_all": { call in
                    let i = try call.arguments.integer(at: 0)
                    await gate.arrive()
                    return [["echo": .integer(i), "squared": .integer(i * i)]]
                }
            ])
        let results = try await withThrowingTaskGroup(of: (Int, [LuaValue]).self) { group in
            for i in 0..<n {
                group.addTask {
                    (i, try await host.fire("tick", ["i": .integer(Int64(i))]))
                }
            }
            var all: [Int: [LuaValue]] = [:]
            for try await (i, r) in group { all[i] = r }
            return all
        }
        #expect(results.count == n)
        for i in 0..<n {
            let x = Int64(i)
            #expect(results[i] == [.integer(x), .integer(x), .integer(x * x)])
        }
        #expect(await gate.arrived == n)
        let total = try await host.global("total")
        #expect(total == .integer(Int64(n)))
        #expect(await host.activeRuns == 0)
    }

    @Test func deadlineIncludesTimeSuspendedInHostCalls() async throws {
        let s = try LuaState(limits: LuaLimits(timePerRun: .milliseconds(100)))
        try s.registerAsync("slow") { _ in
            try await Task.sleep(for: .seconds(60))
            return []
        }
        do {
            let e = try #require(await caught { try await s.execute("\nslow()", chunkName: "rules/slow.lua") }?.limitError)
            #expect(e.limit == .deadline)
            #expect(e.chunk == "rules/slow.lua")
            #expect(e.line == 2)
        }
        #expect(s.needsRebuild)
    }

    @Test func instructionBudgetKeepsCountingAcrossSuspensions() async throws {
        let s = try LuaState(limits: LuaLimits(instructionsPerRun: 200_000))
        try s.registerAsync("tick") { _ in [] }
        // ~4,000 instructions between suspensions: only the sum exceeds the budget.
        do {
            let e = try #require(await caught { try await s.execute("while true do for i = 1, 1000 do end tick() end", chunkName: "rules/t.lua") }?.limitError)
            #expect(e.limit == .instructions)
        }
    }

    @Test func suspendedCoroutinesCannotBeHijackedByOtherRuns() async throws {
        let gate = Gate(count: 2)
        let s = try LuaState()
        try s.registerAsync("wait") { _ in
            await gate.arrive()
            return ["done"]
        }
        let a = try s.load(
            """
            shared = coroutine.create(function() return wait() end)
            return coroutine.resume(shared)
            """, chunkName: "rules/a.lua")
        let b = try s.load(
            """
            local ok, err = coroutine.resume(shared)
            local ok2, err2 = pcall(coroutine.close, shared)
            return ok, err, ok2, err2, coroutine.status(shared)
            """, chunkName: "rules/b.lua")
        let owner = StateBox(s)
        let first = Task { try await owner.run(a) }
        await owner.waitUntilActive()
        let second = try await owner.run(b)
        #expect(second[0] == false)
        #expect(second[1] == "cannot resume a coroutine owned by the host")
        #expect(second[2] == false)
        #expect(second[3].stringValue?.contains("cannot close a coroutine owned by the host") == true)
        #expect(second[4] == "suspended")
        await gate.arrive()
        #expect(try await first.value == [true, "done"])
    }

    @Test func anAbortMakesOtherSuspendedRunsFailCleanly() async throws {
        let gate = Gate(count: 2)
        let s = try LuaState(limits: LuaLimits(instructionsPerRun: 100_000))
        try s.registerAsync("wait") { _ in
            await gate.arrive()
            return []
        }
        let waiting = try s.load("wait() return 'resumed'", chunkName: "rules/w.lua")
        let looping = try s.load("while true do end", chunkName: "rules/l.lua")
        let owner = StateBox(s)
        let first = Task { try await owner.run(waiting) }
        await owner.waitUntilActive()
        await #expect(throws: LuaError.self) { _ = try await owner.run(looping) }
        await gate.arrive()
        let r = await first.result
        #expect(throws: LuaError.unusable(.aborted(.instructions))) { try r.get() }
        #expect(await owner.activeRuns == 0)
    }

    @Test func closingWhileRunsAreSuspended() async throws {
        let gate = Gate(count: 2)
        let s = try LuaState()
        try s.registerAsync("wait") { _ in
            await gate.arrive()
            return []
        }
        let f = try s.load("wait() return 1", chunkName: "rules/c.lua")
        let owner = StateBox(s)
        let first = Task { try await owner.run(f) }
        await owner.waitUntilActive()
        await owner.close()
        await gate.arrive()
        let r = await first.result
        #expect(throws: LuaError.unusable(.closed)) { try r.get() }
        #expect(await owner.memory == 0)
    }

    @Test func hostFunctionsIgnoringCancellationCannotHoldTheRun() async throws {
        let gate = Gate(count: 2)
        let s = try LuaState(limits: LuaLimits(timePerRun: .milliseconds(100)))
        try s.registerAsync("stuck") { _ in
            await gate.arrive()  // not cancellable: only the test releases it
            return []
        }
        let e = try #require(await caught { try await s.execute("stuck()", chunkName: "rules/s.lua") }?.limitError)
        #expect(e.limit == .deadline)
        await gate.arrive()
    }

    @Test func closingFromInsideAHostFunction() async throws {
        let s = try LuaState()
        try s.register("shutdown") { [unowned s] _ in
            s.close()
            return []
        }
        await #expect(throws: LuaError.unusable(.closed)) {
            _ = try await s.execute("shutdown() return 1", chunkName: "rules/x.lua")
        }
        #expect(s.isClosed)
        #expect(s.memoryInUse == 0)
        #expect(s.activeRuns == 0)
    }

    @Test func cancellingTheTaskDropsTheRun() async throws {
        let s = try LuaState()
        try s.registerAsync("forever") { _ in
            try await Task.sleep(for: .seconds(3600))
            return []
        }
        let f = try s.load("forever()", chunkName: "rules/f.lua")
        let owner = StateBox(s)
        let task = Task { try await owner.run(f) }
        await owner.waitUntilActive()
        task.cancel()
        let result = await task.result
        #expect(throws: LuaError.cancelled) { try result.get() }
        #expect(await owner.isUsable)
    }
}

/// An actor owning a state, for tests that need to share it with tasks.
actor StateBox {
    let state: LuaState
    init(_ s: LuaState) { state = s }

    func run(_ f: LuaFunction) async throws(LuaError) -> [LuaValue] {
        try await state.run(f)
    }

    func waitUntilActive() async {
        while state.activeRuns == 0 { await Task.yield() }
    }

    var isUsable: Bool { !state.needsRebuild && !state.isClosed && state.activeRuns == 0 }
    var activeRuns: Int { state.activeRuns }
    var memory: Int { state.memoryInUse }
    func close() { state.close() }
}
