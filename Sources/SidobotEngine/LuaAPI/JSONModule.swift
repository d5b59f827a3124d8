import LuaSandbox

/// `json.encode(value)`, `json.decode(text)`: the engine's JSON, the same that journals values.
enum JSONModule {
    static func install(in state: LuaState) throws(LuaError) {
        try state.register("encode", in: "json") { call in
            do {
                return [.string(try JSONCodec.encode(try call.arguments.data(at: 0)))]
            } catch {
                throw LuaHostError("json.encode: \(error)")
            }
        }
        try state.register("decode", in: "json") { call in
            let text = try call.arguments.string(at: 0)
            do {
                return [try JSONCodec.decode(text)]
            } catch {
                return [.null, .string("json.decode: \(error)")]
            }
        }
    }
}
