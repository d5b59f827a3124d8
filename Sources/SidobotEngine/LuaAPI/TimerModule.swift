import LuaSandbox

/// `timer.after`, `timer.at`, `timer.cancel`, `timer.pending`: durable timers. A timer is a name
/// and a JSON payload, never a closure, so it survives restarts and reloads; it fires into the
/// rule's `on("timer.NAME")` handlers.
enum TimerModule {
    static func install(in state: LuaState, rule: String, loading: RuleLoading, host: some TimerHost) throws(LuaError) {
        try state.register("after", in: "timer") { call in
            let delay = try call.arguments.duration(at: 0)
            return try schedule(call.arguments, rule: rule, due: host.now + delay, run: call.runTag, loading: loading, host: host)
        }
        try state.register("at", in: "timer") { call in
            let seconds = try call.arguments.number(at: 0)
            guard let due = UnixTime(secondsValue: seconds) else {
                throw call.arguments.argumentError(at: 0, "a time in unix seconds expected")
            }
            return try schedule(call.arguments, rule: rule, due: due, run: call.runTag, loading: loading, host: host)
        }
        try state.register("cancel", in: "timer") { call in
            let text = try call.arguments.string(at: 0)
            guard let id = TimerID(text), let record = host.timers[id], record.rule == rule else { return [.bool(false)] }
            do {
                try host.record(.timerRemoved(id, how: .cancelled), run: call.runTag)
            } catch {
                throw LuaHostError("timer not cancelled: \(error)")
            }
            host.note(run: call.runTag, "timer \(id) '\(record.name)' cancelled")
            return [.bool(true)]
        }
        try state.register("pending", in: "timer") { call in
            let name = try call.arguments.optionalString(at: 0)
            return [.array(host.timers.pending(rule: rule, name: name).map(\.luaValue))]
        }
    }

    private static func schedule(_ arguments: LuaArguments, rule: String, due: UnixTime, run: RunTable.Tag, loading: RuleLoading,
                                 host: some TimerHost) throws(LuaHostError) -> [LuaValue] {
        if loading.isOpen {
            throw LuaHostError("timers cannot be set while the rule loads (they would pile up at every reload); set them in a handler, e.g. on(\"engine.start\", ...)")
        }
        let name = try arguments.string(at: 1)
        if name.isEmpty { throw arguments.argumentError(at: 1, "the timer name must not be empty") }
        if name.hasPrefix("__") { throw arguments.argumentError(at: 1, "timer names starting with __ are reserved for the engine") }
        let payload = try arguments.data(at: 2)
        let options = try arguments.options(at: 3)
        var maxLateness: Duration?
        if let value = options["max_lateness"], !value.isNull {
            maxLateness = try LuaArguments(functionName: arguments.functionName, all: [.value(value)]).duration(at: 0)
        }
        let late: TimerLatePolicy
        do {
            late = try TimerLatePolicy(late: options["late"]?.stringValue, maxLateness: maxLateness)
        } catch {
            throw arguments.argumentError(at: 3, error.description)
        }
        let record: TimerRecord
        do {
            record = try TimerRecord(id: TimerID(host.timers.nextID), rule: rule, name: name, payload: payload, due: due,
                                     createdAt: host.now, late: late)
        } catch {
            throw arguments.argumentError(at: 2, "the payload cannot be kept as JSON: \(error)")
        }
        do {
            try host.record(.timerAdded(record), run: run)
        } catch {
            throw LuaHostError("timer not set: \(error)")
        }
        host.note(run: run, "timer \(record.id) '\(name)' set for \(due)")
        host.timersChanged()
        return [.string(record.id.description)]
    }
}

extension TimerRecord {
    /// A pending timer as `timer.pending` lists it (and `t.timers` in rule tests).
    public var luaValue: LuaValue {
        .object(["id": .string(id.description), "name": .string(name), "payload": payload, "due": EventFields.seconds(due)])
    }
}
