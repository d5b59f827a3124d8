import LuaSandbox

/// `json.encode(value)`, `json.decode(text)`: the engine's JSON, the same that journals values.
/// Both are charged to the run's budget by the bytes of JSON they produce or read (a Swift host
/// function, where the count hook does not reach).
enum JSONModule {
    static func install(in state: LuaState) throws(LuaError) {
        try state.register("encode", in: "json") { call in
            do {
                let text = try JSONCodec.encode(try call.arguments.data(at: 0))
                call.charge(bytes: text.utf8.count)
                return [.string(text)]
            } catch {
                throw LuaHostError("json.encode: \(error)")
            }
        }
        try state.register("decode", in: "json") { call in
            let text = try call.arguments.string(at: 0)
            call.charge(bytes: text.utf8.count)
            do {
                return [try JSONCodec.decode(text)]
            } catch {
                return [.null, .string("json.decode: \(error)")]
            }
        }
    }
}
