// sidobot-bench: benchmarks for Sidobot components (not tests: no assertions).
//
//   swift run -c release sidobot-bench <mode> [options]
//
// Modes are dispatched on the first argument; later issues add more.

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
        run: LuaDispatchBench.main)
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
