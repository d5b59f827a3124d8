import CLuaShims
import LuaSandbox

/// `lua-dispatch [--calls N] [--rounds R]`: a trivial handler receiving a
/// 5-field event table, called through LuaSandbox (async `run` and sync
/// `call`) and through a direct C-API loop (lua_createtable + 5 setfield +
/// lua_pcall) against the same liblua, in the same process.
enum LuaDispatchBench {
    static let handlerBody = "function(ev) local s = ev.status end"

    static let fields: [(String, LuaValue)] = [
        ("event_id", "evt_01HZX3K9"),
        ("message_id", "msg_7f3a9c"),
        ("status", "FAILED"),
        ("message_type", "text"),
        ("send_at", .integer(1_767_000_000)),
    ]

    static func main(_ args: [String]) async -> Int32 {
        var calls = 300_000
        var rounds = 5
        var only: String?
        var i = 0
        while i < args.count {
            switch args[i] {
            case "--calls" where i + 1 < args.count: calls = Int(args[i + 1]) ?? calls; i += 1
            case "--rounds" where i + 1 < args.count: rounds = Int(args[i + 1]) ?? rounds; i += 1
            case "--only" where i + 1 < args.count: only = args[i + 1]; i += 1
            default:
                print("lua-dispatch: unknown option \(args[i]) (options: --calls N --rounds R --only direct|direct-swift|run|call|packed)")
                return 2
            }
            i += 1
        }

        do {
            var directSwift: Double = 0
            var direct: Double = 0, sandboxRun: Double = 0, sandboxCall: Double = 0, sandboxPacked: Double = 0
            let d = try DirectLoop()
            let s = try SandboxLoop()
            // Warm up, then interleave rounds so both see the same machine state.
            _ = d.measure(calls: calls / 10)
            _ = try await s.measureRun(calls: calls / 10)
            for _ in 0..<rounds {
                if only == nil || only == "direct" { direct = max(direct, d.measure(calls: calls)) }
                if only == nil || only == "direct-swift" {
                    directSwift = max(directSwift, d.measureFromSwift(calls: calls, event: s.event))
                }
                if only == nil || only == "run" { sandboxRun = max(sandboxRun, try await s.measureRun(calls: calls)) }
                if only == nil || only == "packed" {
                    sandboxPacked = max(sandboxPacked, try await s.measurePacked(calls: calls))
                }
                if only == nil || only == "call" { sandboxCall = max(sandboxCall, try s.measureCall(calls: calls)) }
            }
            func fmt(_ x: Double) -> String {
                let v = String(Int(x.rounded()))
                return String(repeating: " ", count: max(0, 9 - v.count)) + v
            }
            func ratio(_ x: Double, _ base: Double) -> String {
                guard base > 0 else { return "  -  " }
                let r = String((x / base * 100).rounded() / 100)
                return r + String(repeating: " ", count: max(0, 5 - r.count))
            }
            func line(_ name: String, _ x: Double) {
                let pad = String(repeating: " ", count: max(0, 52 - name.count))
                print("  \(name)\(pad)\(fmt(x)) calls/s   \(ratio(x, direct))   \(ratio(x, directSwift))")
            }
            print("lua-dispatch: trivial handler, 5-field event table; \(calls) calls per round, best of \(rounds) rounds")
            print("  variant" + String(repeating: " ", count: 45) + "     rate            vs (1)  vs (2)")
            line("(1) direct C API, constant C strings", direct)
            line("(2) direct C API, table built from the LuaValue", directSwift)
            line("(3) LuaSandbox run (async), LuaValue argument", sandboxRun)
            line("(4) LuaSandbox call (sync), LuaValue argument", sandboxCall)
            line("(5) LuaSandbox run, argument packed once", sandboxPacked)
            print("  sandbox memory in use: \(s.state.memoryInUse) bytes")
            let n = 2000
            let start = ContinuousClock.now
            for _ in 0..<n {
                let fresh = try LuaState()
                _ = try fresh.call(try fresh.load("handler = " + LuaDispatchBench.handlerBody, chunkName: "bench.lua"))
                fresh.close()
            }
            let perState = seconds(ContinuousClock.now - start) / Double(n) * 1e6
            print("  new sandboxed state + load a small rule + close: \(Int(perState.rounded())) µs")
            return 0
        } catch {
            print("lua-dispatch: \(error)")
            return 1
        }
    }

    /// The baseline: a plain state (default allocator, no hook), the handler
    /// kept in the registry, the event table built with the raw C API.
    final class DirectLoop {
        let L: OpaquePointer
        let ref: Int32
        let keys: [[CChar]]
        let strings: [[CChar]?]
        let integers: [lua_Integer]

        init() throws {
            guard let L = luaL_newstate() else { throw BenchError("luaL_newstate failed") }
            self.L = L
            luaL_openlibs(L)
            guard luaL_loadstring(L, "return " + LuaDispatchBench.handlerBody) == LUA_OK, sbm_pcall(L, 0, 1, 0) == LUA_OK,
                sbm_isfunction(L, -1) != 0
            else { throw BenchError("cannot load the handler") }
            ref = luaL_ref(L, sbm_registryindex())
            keys = LuaDispatchBench.fields.map { Array($0.0.utf8CString) }
            strings = LuaDispatchBench.fields.map { $0.1.stringValue.map { Array($0.utf8CString) } }
            integers = LuaDispatchBench.fields.map { $0.1.int64Value ?? 0 }
        }

        deinit { lua_close(L) }

        /// The same loop, starting from the same Swift `LuaValue` event as the
        /// sandbox (walk the dictionary, push keys and values from Swift strings).
        func measureFromSwift(calls: Int, event: LuaValue) -> Double {
            guard case .object(let fields) = event else { return 0 }
            let start = ContinuousClock.now
            for _ in 0..<calls {
                lua_rawgeti(L, sbm_registryindex(), lua_Integer(ref))
                lua_createtable(L, 0, Int32(fields.count))
                for (k, v) in fields {
                    switch v {
                    case .string(let str):
                        var str = str
                        str.withUTF8 { u in
                            u.withMemoryRebound(to: CChar.self) { _ = lua_pushlstring(L, $0.baseAddress, $0.count) }
                        }
                    case .integer(let i): lua_pushinteger(L, i)
                    default: lua_pushnil(L)
                    }
                    k.withCString { lua_setfield(L, -2, $0) }
                }
                if sbm_pcall(L, 1, 0, 0) != LUA_OK { sbm_pop(L, 1) }
            }
            return Double(calls) / LuaDispatchBench.seconds(ContinuousClock.now - start)
        }

        func measure(calls: Int) -> Double {
            let start = ContinuousClock.now
            for _ in 0..<calls {
                lua_rawgeti(L, sbm_registryindex(), lua_Integer(ref))
                lua_createtable(L, 0, 5)
                for f in 0..<5 {
                    if let s = strings[f] {
                        s.withUnsafeBufferPointer { _ = lua_pushlstring(L, $0.baseAddress, $0.count - 1) }
                    } else {
                        lua_pushinteger(L, integers[f])
                    }
                    keys[f].withUnsafeBufferPointer { lua_setfield(L, -2, $0.baseAddress) }
                }
                if sbm_pcall(L, 1, 0, 0) != LUA_OK { sbm_pop(L, 1) }
            }
            return Double(calls) / LuaDispatchBench.seconds(ContinuousClock.now - start)
        }
    }

    /// The same through LuaSandbox: limits on (memory ceiling, count hook,
    /// deadline), the handler run as a coroutine with a LuaValue argument.
    final class SandboxLoop {
        let state: LuaState
        let handler: LuaFunction
        let event: LuaValue

        init() throws {
            state = try LuaState()
            _ = try state.call(try state.load("handler = " + LuaDispatchBench.handlerBody, chunkName: "bench.lua"))
            guard let h = try state.function(named: "handler") else { throw BenchError("handler not defined") }
            handler = h
            event = .object(Dictionary(uniqueKeysWithValues: LuaDispatchBench.fields))
        }

        func measureRun(calls: Int) async throws -> Double {
            let args = [event]
            let start = ContinuousClock.now
            for _ in 0..<calls {
                _ = try await state.run(handler, arguments: args)
            }
            return Double(calls) / LuaDispatchBench.seconds(ContinuousClock.now - start)
        }

        func measurePacked(calls: Int) async throws -> Double {
            let packed = try LuaPackedValues([event])
            let start = ContinuousClock.now
            for _ in 0..<calls {
                _ = try await state.run(handler, packed: packed)
            }
            return Double(calls) / LuaDispatchBench.seconds(ContinuousClock.now - start)
        }

        func measureCall(calls: Int) throws -> Double {
            let args = [event]
            let start = ContinuousClock.now
            for _ in 0..<calls {
                _ = try state.call(handler, arguments: args)
            }
            return Double(calls) / LuaDispatchBench.seconds(ContinuousClock.now - start)
        }
    }

    static func seconds(_ d: Duration) -> Double {
        let c = d.components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
