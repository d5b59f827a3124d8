import LuaSandbox

/// `rule`, `on`, `every`, `cron`: what a rule file registers at its top level, while it loads
/// (``RuleLoading``); called later, inside a handler, they are errors.
enum RegistrationModule {
    static func install(in state: LuaState, rule: String, loading: RuleLoading) throws(LuaError) {
        try state.register("rule") { call in
            try requireLoading(loading, "rule")
            let fields = try call.arguments.object(at: 0)
            if let description = fields["description"] {
                guard case .string(let text) = description else { throw call.arguments.argumentError(at: 0, "description must be a string") }
                loading.update { $0.description = text }
            }
            if let limit = fields["cpu_limit"] {
                guard let cpu = try? LuaArguments.duration(limit) else {
                    throw call.arguments.argumentError(at: 0, "cpu_limit must be a duration such as \"2s\" or \"500ms\" (seconds as a number also work)")
                }
                guard cpu > .zero, cpu <= .seconds(60) else {
                    throw call.arguments.argumentError(at: 0, "cpu_limit must be more than 0 and at most 60s")
                }
                loading.update { $0.cpuLimit = cpu }
            }
            return []
        }
        try state.register("on") { call in
            try requireLoading(loading, "on")
            let function = try call.retainFunction(at: 1)
            let name = try call.arguments.string(at: 0)
            try validateEventName(name, arguments: call.arguments)
            loading.update { $0.add(handler: function, for: name) }
            return []
        }
        try state.register("every") { call in
            try requireLoading(loading, "every")
            let function = try call.retainFunction(at: 1)
            let arguments = call.arguments
            let period = try arguments.duration(at: 0)
            guard let schedule = IntervalSchedule(every: period) else {
                throw arguments.argumentError(at: 0, "the period must be at least one second")
            }
            let options = try arguments.options(at: 2)
            loading.update {
                $0.add(schedule: schedule, key: "every \(DurationText.format(period))", function: function,
                       catchUp: options["catch_up"]?.boolValue ?? false)
            }
            return []
        }
        try state.register("cron") { call in
            try requireLoading(loading, "cron")
            let function = try call.retainFunction(at: 1)
            let arguments = call.arguments
            let expression = try arguments.string(at: 0)
            let options = try arguments.options(at: 2)
            let zone: String
            switch options["tz"] {
            case nil, .null?: zone = "UTC"
            case .string(let z)?: zone = z
            default: throw arguments.argumentError(at: 2, "tz must be a time zone name such as \"Asia/Jakarta\"")
            }
            let schedule: CronSchedule
            do {
                schedule = try CronSchedule(expression, timeZoneIdentifier: zone)
            } catch {
                throw LuaHostError("\(error)")
            }
            loading.update {
                $0.add(schedule: schedule, key: "cron \(expression) \(zone)", function: function,
                       catchUp: options["catch_up"]?.boolValue ?? false)
            }
            return []
        }
    }

    static func requireLoading(_ loading: RuleLoading, _ function: String) throws(LuaHostError) {
        guard loading.isOpen else {
            throw LuaHostError("\(function)() registers a handler and can only be called when the rule loads, not inside a handler")
        }
    }

    /// The events the engine raises itself.
    static let builtinEvents: Set<String> = [
        "message.failed", "message.success", "message.pending", "message.status", "message.exhausted", "engine.start",
    ]

    static func validateEventName(_ name: String, arguments: LuaArguments) throws(LuaHostError) {
        if builtinEvents.contains(name) { return }
        if name.hasPrefix("message.") {
            throw arguments.argumentError(at: 0, "unknown message event '\(name)' (message.failed, message.success, message.pending, message.status or message.exhausted)")
        }
        if (name.hasPrefix("timer.") || name.hasPrefix("hook.")) && name.split(separator: ".", maxSplits: 1).count == 2 { return }
        if name.isEmpty || name.hasPrefix(".") || name.hasSuffix(".") || name.contains(" ") {
            throw arguments.argumentError(at: 0, "'\(name)' is not an event name (like \"message.failed\", \"timer.retry\", \"hook.alertmanager\")")
        }
        // Any other dotted name is a custom event, raised by emit().
    }
}
