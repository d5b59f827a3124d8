// sidobot-bench: benchmarks for Sidobot components (not tests: no assertions).
//
//   swift run -c release sidobot-bench <mode> [options]
//
// Modes are dispatched on the first argument. scripts/bench builds in release mode and runs them
// all; docs/PERFORMANCE.md records the figures and how they were taken.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct BenchMode {
    let name: String
    let summary: String
    let run: ([String]) async -> Int32
}

let modes: [BenchMode] = [
    BenchMode(
        name: "lua-dispatch",
        summary: "calls/s of a trivial Lua handler receiving a 5-field table: LuaSandbox vs a direct C-API loop",
        run: LuaDispatchBench.main),
    BenchMode(
        name: "ingress",
        summary: "wrk against POST /webhooks/sidobe of sidobot run (full path) and of a bare Hummingbird route, in one run",
        run: IngressBench.main),
    BenchMode(
        name: "dispatch",
        summary: "events/s through the engine's dispatcher into a trivial Lua handler, beside a direct C-API loop",
        run: DispatchBench.main),
    BenchMode(
        name: "timers",
        summary: "1M timers scheduled by a rule (time, RSS); 10k fires/s on the real clock (lateness p50/p99)",
        run: TimerBench.main),
    BenchMode(
        name: "snapshot",
        summary: "1M state keys: snapshot time, the longest acceptance stall during one, restore time",
        run: SnapshotBench.main),
    BenchMode(
        name: "memory",
        summary: "bytes per record of each long-lived store (dedupe id, ledger message, timer, state key), as RSS growth",
        run: MemoryBench.main),
    BenchMode(
        name: "ttl",
        summary: "1M state keys with a TTL: setting them, then sweeping them once expired (the expiry heap)",
        run: TTLBench.main),
    BenchMode(
        name: "pacing",
        summary: "sends against the simulator limited to 50 requests/s: achieved rate and 429s",
        run: PacingBench.main),
    BenchMode(
        name: "startup",
        summary: "time to ready with 100 rules, in process and as sidobot run",
        run: StartupBench.main),
    BenchMode(
        name: "bare-server",
        summary: "(used by ingress) a Hummingbird route that answers 200 and does nothing else",
        run: BareServer.main),
]

@MainActor func usage() {
    print("usage: sidobot-bench <mode> [options]\n\nmodes:")
    for m in modes { print("  \(m.name)\t\(m.summary)") }
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let modeName = arguments.first, !["-h", "--help", "help"].contains(modeName) else {
    usage()
    exit(arguments.isEmpty ? 2 : 0)
}
guard let mode = modes.first(where: { $0.name == modeName }) else {
    print("sidobot-bench: unknown mode '\(modeName)'")
    usage()
    exit(2)
}
exit(await mode.run(Array(arguments.dropFirst())))
