import LuaSandbox

/// `now()`: unix seconds on the engine's clock (virtual under test).
enum TimeModule {
    static func install(in state: LuaState, host: some LuaAPIHost) throws(LuaError) {
        try state.register("now") { _ in [.integer(host.now.seconds)] }
    }
}
