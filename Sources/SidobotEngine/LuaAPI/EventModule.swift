import Foundation
import LuaSandbox

/// `emit(name, payload)`: a custom event for every rule that listens (`on(name, ...)`).
enum EventModule {
    static func install(in state: LuaState, rule: String, loading: RuleLoading, host: some EventHost) throws(LuaError) {
        try state.register("emit") { call in
            let arguments = call.arguments
            let name = try arguments.string(at: 0)
            let payload = try arguments.data(at: 1)
            if loading.isOpen { throw LuaHostError("emit() cannot be used while the rule loads; use it in a handler") }
            if RegistrationModule.builtinEvents.contains(name) || name.hasPrefix("timer.") || name.hasPrefix("hook.") || name.hasPrefix("message.") || name.hasPrefix("sidobe.") {
                throw LuaHostError("emit: '\(name)' is reserved for the engine; choose your own name, like \"escalation.needed\"")
            }
            let event = EngineEvent(id: "e-\(UUID().uuidString.lowercased())", kind: .custom(name: name, payload: payload, fromRule: rule),
                                    at: host.now)
            host.note(run: call.runTag, "emitted \(name) (\(event.id))")
            do {
                try host.record(.eventAccepted(event, dedupe: false, movesLedger: true), run: call.runTag)
            } catch {
                throw LuaHostError("event not emitted: \(error)")
            }
            host.raise(event)
            return []
        }
    }
}
