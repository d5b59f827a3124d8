import LuaSandbox

/// `state.get`, `state.set`, `state.incr`, `state.del`, `state.keys`: one key space per rule,
/// durable; values are nil, booleans, numbers, strings and tables of them.
enum StateModule {
    static func install(in state: LuaState, rule: String, host: some StateHost) throws(LuaError) {
        try state.register("get", in: "state") { call in
            [host.ruleStates.get(rule: rule, key: try call.arguments.stateKey(), now: host.now) ?? .null]
        }
        try state.register("set", in: "state") { call in
            let arguments = call.arguments
            let key = try arguments.stateKey()
            var ttl: Duration?
            if !arguments.value(at: 2).isNull { ttl = try arguments.duration(at: 2) }
            try set(rule: rule, key: key, value: try arguments.data(at: 1), ttl: ttl, run: call.runTag, host: host)
            return []
        }
        try state.register("incr", in: "state") { call in
            let arguments = call.arguments
            let key = try arguments.stateKey()
            let by = arguments.value(at: 1).isNull ? 1 : try arguments.integer(at: 1)
            return try increment(rule: rule, key: key, by: by, run: call.runTag, host: host)
        }
        try state.register("del", in: "state") { call in
            try set(rule: rule, key: try call.arguments.stateKey(), value: .null, ttl: nil, run: call.runTag, host: host)
            return []
        }
        try state.register("keys", in: "state") { call in
            let prefix = try call.arguments.optionalString(at: 0) ?? ""
            return [.array(host.ruleStates.keys(rule: rule, prefix: prefix, now: host.now).map(LuaValue.string))]
        }
    }

    private static func set(rule: String, key: String, value: LuaValue, ttl: Duration?, run: RunTable.Tag,
                            host: some StateHost) throws(LuaHostError) {
        let mutation: Mutation
        if value.isNull {
            guard host.ruleStates.get(rule: rule, key: key, now: host.now) != nil else { return }
            mutation = .stateDelete(rule: rule, key: key)
        } else {
            mutation = .stateSet(rule: rule, key: key, entry: StateEntry(value: value, expiresAt: ttl.map { host.now + $0 }))
        }
        do {
            try host.record(mutation, run: run)
        } catch {
            throw LuaHostError("state not saved: \(error)")
        }
        host.note(run: run, value.isNull ? "state \(key) deleted" : "state \(key) = \(value.preview)")
    }

    private static func increment(rule: String, key: String, by: Int64, run: RunTable.Tag, host: some StateHost) throws(LuaHostError) -> [LuaValue] {
        let now = host.now
        let current = host.ruleStates.get(rule: rule, key: key, now: now)
        var expiry: UnixTime?
        if current != nil, let entry = host.ruleStates.rules[rule]?[key] { expiry = entry.expiresAt }
        let base: Int64
        switch current {
        case nil, .null?: base = 0
        case .integer(let n)?: base = n
        case .double(let d)? where d == d.rounded() && abs(d) < 9e15: base = Int64(d)
        case let other?: throw LuaHostError("state.incr: '\(key)' holds a \(other.luaTypeName), not a number")
        }
        let (sum, overflow) = base.addingReportingOverflow(by)
        if overflow { throw LuaHostError("state.incr: '\(key)' would overflow") }
        do {
            try host.record(.stateSet(rule: rule, key: key, entry: StateEntry(value: .integer(sum), expiresAt: expiry)), run: run)
        } catch {
            throw LuaHostError("state not saved: \(error)")
        }
        host.note(run: run, "state \(key) = \(sum)")
        return [.integer(sum)]
    }
}
