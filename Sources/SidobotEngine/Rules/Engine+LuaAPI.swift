import Foundation
import Logging
import LuaSandbox

/// The Lua API v1 (DESIGN §3) as host functions.
///
/// Synchronous functions (`state.*`, `timer.*`, `emit`, `log.*`, `json.*`, `now`) run on the engine's
/// executor inside the Lua call; `sidobe.*` functions are asynchronous: the handler's coroutine
/// yields while the request is in flight. Each call finds its rule and handler run through the run
/// tag LuaSandbox passes along.
extension Engine {
    func installAPI(in state: LuaState, rule: String) throws(LuaError) {
        // A run's changes are journaled when it suspends in a sidobe.* call, before the request.
        state.onSuspend = Engine.suspensionObserver(self)
        /// Registers a synchronous function whose body runs isolated to the engine (it is called from
        /// inside a Lua run, which always runs on the engine's executor).
        func sync(_ name: String, in table: String? = nil,
                  _ body: @escaping @Sendable (isolated Engine, LuaArguments, Int) throws -> [LuaValue]) throws(LuaError) {
            try state.register(name, in: table, Engine.hostFunction(self, body))
        }
        /// Registers a function that keeps its Lua function argument at `functionIndex` (on, every, cron).
        func registering(_ name: String, functionIndex: Int,
                         _ body: @escaping @Sendable (isolated Engine, LuaArguments, LuaFunction) throws -> Void) throws(LuaError) {
            try state.register(name, Engine.registrationFunction(self, rule: rule, name: name, functionIndex: functionIndex, body))
        }

        // Registration (only while the file loads).
        try sync("rule") { engine, arguments, _ in try engine.apiRule(arguments, rule: rule) }
        try registering("on", functionIndex: 1) { engine, arguments, function in
            let name = try arguments.string(at: 0)
            try Engine.validateEventName(name, arguments: arguments)
            engine.registering[rule]?.add(handler: function, for: name)
        }
        try registering("every", functionIndex: 1) { engine, arguments, function in
            let period = try Engine.duration(arguments, at: 0)
            guard let schedule = IntervalSchedule(every: period) else {
                throw arguments.argumentError(at: 0, "the period must be at least one second")
            }
            let options = try Engine.options(arguments, at: 2)
            engine.addSchedule(rule: rule, key: "every \(DurationText.format(period))", schedule: schedule,
                               function: function, catchUp: options["catch_up"]?.boolValue ?? false)
        }
        try registering("cron", functionIndex: 1) { engine, arguments, function in
            let expression = try arguments.string(at: 0)
            let options = try Engine.options(arguments, at: 2)
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
            engine.addSchedule(rule: rule, key: "cron \(expression) \(zone)", schedule: schedule,
                               function: function, catchUp: options["catch_up"]?.boolValue ?? false)
        }

        // Time.
        try sync("now") { engine, _, _ in [.integer(engine.clock.now().seconds)] }

        // Timers.
        try sync("after", in: "timer") { engine, arguments, tag in
            let delay = try Engine.duration(arguments, at: 0)
            return try engine.apiScheduleTimer(arguments, rule: rule, due: engine.clock.now() + delay, tag: tag)
        }
        try sync("at", in: "timer") { engine, arguments, tag in
            let seconds = try arguments.number(at: 0)
            guard let due = UnixTime(secondsValue: seconds) else {
                throw arguments.argumentError(at: 0, "a time in unix seconds expected")
            }
            return try engine.apiScheduleTimer(arguments, rule: rule, due: due, tag: tag)
        }
        try sync("cancel", in: "timer") { engine, arguments, tag in
            try engine.apiCancelTimer(try arguments.string(at: 0), rule: rule, tag: tag)
        }
        try sync("pending", in: "timer") { engine, arguments, _ in
            let name = try arguments.optionalString(at: 0)
            return [.array(engine.store.data.timers.pending(rule: rule, name: name).map(engine.timerValue))]
        }

        // State.
        try sync("get", in: "state") { engine, arguments, _ in
            [engine.store.data.state.get(rule: rule, key: try Engine.stateKey(arguments), now: engine.clock.now()) ?? .null]
        }
        try sync("set", in: "state") { engine, arguments, tag in
            let key = try Engine.stateKey(arguments)
            var ttl: Duration?
            if !arguments.value(at: 2).isNull { ttl = try Engine.duration(arguments, at: 2) }
            try engine.apiStateSet(rule: rule, key: key, value: try Engine.data(arguments, at: 1), ttl: ttl, tag: tag)
            return []
        }
        try sync("incr", in: "state") { engine, arguments, tag in
            let key = try Engine.stateKey(arguments)
            let by = arguments.value(at: 1).isNull ? 1 : try arguments.integer(at: 1)
            return try engine.apiStateIncr(rule: rule, key: key, by: by, tag: tag)
        }
        try sync("del", in: "state") { engine, arguments, tag in
            try engine.apiStateSet(rule: rule, key: try Engine.stateKey(arguments), value: .null, ttl: nil, tag: tag)
            return []
        }
        try sync("keys", in: "state") { engine, arguments, _ in
            let prefix = try arguments.optionalString(at: 0) ?? ""
            return [.array(engine.store.data.state.keys(rule: rule, prefix: prefix, now: engine.clock.now()).map(LuaValue.string))]
        }

        // Events.
        try sync("emit") { engine, arguments, tag in
            try engine.apiEmit(name: try arguments.string(at: 0), payload: try Engine.data(arguments, at: 1), rule: rule, tag: tag)
            return []
        }

        // Logging.
        for (name, level) in [("debug", Logger.Level.debug), ("info", .info), ("warn", .warning), ("error", .error)] {
            try sync(name, in: "log") { engine, arguments, tag in
                let text = try arguments.string(at: 0)
                engine.apiLog(level: level, text: text, fields: arguments.value(at: 1).objectValue ?? [:], rule: rule, tag: tag)
                return []
            }
        }

        // JSON.
        try state.register("encode", in: "json") { call in
            do {
                return [.string(try JSONCodec.encode(try Engine.data(call.arguments, at: 0)))]
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

        // Sidobe: asynchronous; the handler's coroutine yields while the request is in flight.
        try state.registerAsync("send", in: "sidobe") { [weak self] call in
            guard let self else { throw LuaHostError("the engine is stopping") }
            return try await self.apiSend(call, rule: rule, kind: .text)
        }
        try state.registerAsync("send_image", in: "sidobe") { [weak self] call in
            guard let self else { throw LuaHostError("the engine is stopping") }
            return try await self.apiSend(call, rule: rule, kind: .image)
        }
        try state.registerAsync("send_doc", in: "sidobe") { [weak self] call in
            guard let self else { throw LuaHostError("the engine is stopping") }
            return try await self.apiSend(call, rule: rule, kind: .document)
        }
        try state.registerAsync("resend", in: "sidobe") { [weak self] call in
            guard let self else { throw LuaHostError("the engine is stopping") }
            return try await self.apiResend(call, rule: rule)
        }
        try state.registerAsync("message", in: "sidobe") { [weak self] call in
            guard let self else { throw LuaHostError("the engine is stopping") }
            return try await self.apiMessage(call, rule: rule)
        }
        try state.registerAsync("check_number", in: "sidobe") { [weak self] call in
            guard let self else { throw LuaHostError("the engine is stopping") }
            return try await self.apiCheckNumber(call, rule: rule)
        }
    }

    /// Wraps an engine-isolated body as a Lua host function. Built outside the actor's isolation on
    /// purpose: the closure is called by LuaSandbox from inside a run, which always runs on the
    /// engine's executor, and `assumeIsolated` states (and checks) exactly that.
    nonisolated static func hostFunction(
        _ engine: Engine, _ body: @escaping @Sendable (isolated Engine, LuaArguments, Int) throws -> [LuaValue]
    ) -> LuaHostFunction {
        { [unowned engine] call in
            let arguments = call.arguments
            let tag = call.runTag
            return try engine.assumeIsolated { engine in try body(engine, arguments, tag) }
        }
    }

    /// Tells the engine (isolated: LuaSandbox calls it from inside a run) that a run suspends.
    nonisolated static func suspensionObserver(_ engine: Engine) -> (Int) -> Void {
        { [unowned engine] tag in engine.assumeIsolated { $0.runSuspended(tag: tag) } }
    }

    /// Like ``hostFunction(_:_:)`` for `on`, `every` and `cron`: only while the rule loads, and keeps
    /// the Lua function argument.
    nonisolated static func registrationFunction(
        _ engine: Engine, rule: String, name: String, functionIndex: Int,
        _ body: @escaping @Sendable (isolated Engine, LuaArguments, LuaFunction) throws -> Void
    ) -> LuaHostFunction {
        { [unowned engine] call in
            let arguments = call.arguments
            try engine.assumeIsolated { engine in try engine.requireLoading(rule, name) }
            let function = try call.retainFunction(at: functionIndex)
            try engine.assumeIsolated { engine in try body(engine, arguments, function) }
            return []
        }
    }

    // MARK: Argument helpers

    static func duration(_ arguments: LuaArguments, at index: Int) throws(LuaHostError) -> Duration {
        do {
            switch arguments.value(at: index) {
            case .integer(let seconds): return try DurationText.parse(wholeSeconds: seconds)
            case .double(let seconds): return try DurationText.parse(seconds: seconds)
            case .string(let text): return try DurationText.parse(text)
            case let other:
                throw arguments.argumentError(at: index, "duration expected (seconds, or \"30s\", \"5m\", \"2h\", \"1d\"), got \(other.luaTypeName)")
            }
        } catch let error as LuaHostError {
            throw error
        } catch {
            throw arguments.argumentError(at: index, "\(error)")
        }
    }

    /// A plain (JSON-like) argument. A function is refused: LuaSandbox hands it over as a marker,
    /// and reading it as a value would make it nil (`state.set(k, fn)` would delete `k`).
    static func data(_ arguments: LuaArguments, at index: Int) throws(LuaHostError) -> LuaValue {
        if arguments.isFunction(at: index) {
            throw arguments.argumentError(at: index, "a function cannot be stored or sent; use nil, booleans, numbers, strings and tables of them")
        }
        return arguments.value(at: index)
    }

    static func options(_ arguments: LuaArguments, at index: Int) throws(LuaHostError) -> [String: LuaValue] {
        switch arguments.value(at: index) {
        case .null: return [:]
        case .object(let fields): return fields
        case .array(let items) where items.isEmpty: return [:]
        case let other: throw arguments.argumentError(at: index, "options table expected, got \(other.luaTypeName)")
        }
    }

    static func stateKey(_ arguments: LuaArguments) throws(LuaHostError) -> String {
        let key = try arguments.string(at: 0)
        if key.isEmpty { throw arguments.argumentError(at: 0, "the key must not be empty") }
        return key
    }

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

    // MARK: Synchronous API bodies

    func requireLoading(_ rule: String, _ function: String) throws(LuaHostError) {
        guard registering[rule] != nil else {
            throw LuaHostError("\(function)() registers a handler and can only be called when the rule loads, not inside a handler")
        }
    }

    func apiRule(_ arguments: LuaArguments, rule: String) throws(LuaHostError) -> [LuaValue] {
        try requireLoading(rule, "rule")
        let fields = try arguments.object(at: 0)
        if let description = fields["description"] {
            guard case .string(let text) = description else { throw arguments.argumentError(at: 0, "description must be a string") }
            registering[rule]?.description = text
        }
        return []
    }

    func addSchedule(rule: String, key: String, schedule: any FireSchedule, function: LuaFunction, catchUp: Bool) {
        guard var registration = registering[rule] else { return }
        var unique = key
        var n = 2
        while registration.schedules.contains(where: { $0.key == unique }) {
            unique = "\(key) #\(n)"
            n += 1
        }
        registration.schedules.append(RuleSchedule(key: unique, schedule: schedule, function: function, catchUp: catchUp, next: nil))
        registering[rule] = registration
    }

    func apiScheduleTimer(_ arguments: LuaArguments, rule: String, due: UnixTime, tag: Int) throws(LuaHostError) -> [LuaValue] {
        if registering[rule] != nil {
            throw LuaHostError("timers cannot be set while the rule loads (they would pile up at every reload); set them in a handler, e.g. on(\"engine.start\", ...)")
        }
        let name = try arguments.string(at: 1)
        if name.isEmpty { throw arguments.argumentError(at: 1, "the timer name must not be empty") }
        if name.hasPrefix("__") { throw arguments.argumentError(at: 1, "timer names starting with __ are reserved for the engine") }
        let payload = try Self.data(arguments, at: 2)
        let options = try Self.options(arguments, at: 3)
        var maxLateness: Duration?
        if let value = options["max_lateness"], !value.isNull {
            maxLateness = try Self.duration(LuaArguments(functionName: arguments.functionName, all: [.value(value)]), at: 0)
        }
        let late: TimerLatePolicy
        do {
            late = try TimerLatePolicy(late: options["late"]?.stringValue, maxLateness: maxLateness)
        } catch {
            throw arguments.argumentError(at: 3, error.description)
        }
        let now = clock.now()
        let id = store.data.timers.nextID
        let record: TimerRecord
        do {
            record = try TimerRecord(id: TimerID(id), rule: rule, name: name, payload: payload, due: due, createdAt: now, late: late)
        } catch {
            throw arguments.argumentError(at: 2, "the payload cannot be kept as JSON: \(error)")
        }
        do {
            try self.record(.timerAdded(record), tag: tag)
        } catch {
            throw LuaHostError("timer not set: \(error)")
        }
        note(tag: tag, "timer \(record.id) '\(name)' set for \(due)")
        timersChanged()
        return [.string(record.id.description)]
    }

    func apiCancelTimer(_ text: String, rule: String, tag: Int) throws(LuaHostError) -> [LuaValue] {
        guard let id = TimerID(text), let record = store.data.timers[id], record.rule == rule else { return [.bool(false)] }
        do {
            try self.record(.timerRemoved(id, how: "cancelled"), tag: tag)
        } catch {
            throw LuaHostError("timer not cancelled: \(error)")
        }
        note(tag: tag, "timer \(id) '\(record.name)' cancelled")
        return [.bool(true)]
    }

    func timerValue(_ record: TimerRecord) -> LuaValue {
        .object(["id": .string(record.id.description), "name": .string(record.name), "payload": record.payload,
                 "due": Self.seconds(record.due)])
    }

    /// Seconds since 1970 as rules see them: an integer when whole, else a float.
    static func seconds(_ time: UnixTime) -> LuaValue {
        time.milliseconds % 1000 == 0 ? .integer(time.seconds) : .double(time.secondsValue)
    }

    func apiStateSet(rule: String, key: String, value: LuaValue, ttl: Duration?, tag: Int) throws(LuaHostError) {
        let mutation: Mutation
        if value.isNull {
            guard store.data.state.get(rule: rule, key: key, now: clock.now()) != nil else { return }
            mutation = .stateDelete(rule: rule, key: key)
        } else {
            mutation = .stateSet(rule: rule, key: key, entry: StateEntry(value: value, expiresAt: ttl.map { clock.now() + $0 }))
        }
        do {
            try record(mutation, tag: tag)
        } catch {
            throw LuaHostError("state not saved: \(error)")
        }
        note(tag: tag, value.isNull ? "state \(key) deleted" : "state \(key) = \(Self.preview(value))")
    }

    func apiStateIncr(rule: String, key: String, by: Int64, tag: Int) throws(LuaHostError) -> [LuaValue] {
        let now = clock.now()
        let current = store.data.state.get(rule: rule, key: key, now: now)
        var expiry: UnixTime?
        if current != nil, let entry = store.data.state.rules[rule]?[key] { expiry = entry.expiresAt }
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
            try record(.stateSet(rule: rule, key: key, entry: StateEntry(value: .integer(sum), expiresAt: expiry)), tag: tag)
        } catch {
            throw LuaHostError("state not saved: \(error)")
        }
        note(tag: tag, "state \(key) = \(sum)")
        return [.integer(sum)]
    }

    func apiEmit(name: String, payload: LuaValue, rule: String, tag: Int) throws(LuaHostError) {
        if registering[rule] != nil { throw LuaHostError("emit() cannot be used while the rule loads; use it in a handler") }
        if Self.builtinEvents.contains(name) || name.hasPrefix("timer.") || name.hasPrefix("hook.") || name.hasPrefix("message.") {
            throw LuaHostError("emit: '\(name)' is reserved for the engine; choose your own name, like \"escalation.needed\"")
        }
        let event = EngineEvent(id: "e-\(UUID().uuidString.lowercased())", kind: .custom(name: name, payload: payload, fromRule: rule), at: clock.now())
        note(tag: tag, "emitted \(name) (\(event.id))")
        do {
            try record(.eventAccepted(event, dedupe: false), tag: tag)
        } catch {
            throw LuaHostError("event not emitted: \(error)")
        }
        // Dispatched once the emitting run gives up the engine (and its record, which holds this
        // event, is written): never nested inside the emitting handler.
        enqueue(event)
    }

    func apiLog(level: Logger.Level, text: String, fields: [String: LuaValue], rule: String, tag: Int) {
        var metadata: Logger.Metadata = ["rule": "\(rule)", "source": "rule"]
        if let run = runs[tag], !run.eventID.isEmpty { metadata["event"] = "\(run.eventID)" }
        for (key, value) in fields { metadata[key] = "\(Self.preview(value))" }
        logger.log(level: level, "\(text)", metadata: metadata)
        if level >= .warning { note(tag: tag, "log \(level): \(text)") }
    }

    /// A short rendering of a value for traces and logs.
    static func preview(_ value: LuaValue) -> String {
        let text = (try? JSONCodec.encode(value)) ?? "\(value)"
        return text.count > 120 ? String(text.prefix(117)) + "…" : text
    }
}
