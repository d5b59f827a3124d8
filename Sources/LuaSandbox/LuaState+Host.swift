import CLuaShims

/// Globals and host functions: what the embedder puts in a state and how Lua calls back into Swift.
extension LuaState {
    /// Sets global `name` to `value` (raw set).
    public func setGlobal(_ name: String, _ value: LuaValue) throws(LuaError) {
        try checkUsable()
        var w = writer()
        do { try w.append(value) } catch { throw .conversion(error.error(context: "global '\(name)'")) }
        _ = try status(sb_set_global(S, name), else: "cannot set global '\(name)'")
    }

    /// Reads global `name` with raw access (never runs `__index`).
    public func global(_ name: String) throws(LuaError) -> LuaValue {
        try checkUsable()
        if try status(sb_get_global(S, name), expecting: Int32(SB_CONVERSION), else: "cannot read global '\(name)'")
            == SB_CONVERSION
        {
            throw cConversionError(context: "global '\(name)'")
        }
        var r = ValueReader(buffer: sb_outbuf(S))
        return r.value()
    }

    /// A handle to the function stored in global `name` (raw access), or nil
    /// when that global is not a function. Release it with ``release(_:)``.
    public func function(named name: String) throws(LuaError) -> LuaFunction? {
        try checkUsable()
        let id = allocateHandleID()
        let rc = try status(sb_ref_global(S, name, id), expecting: Int32(SB_BAD_HANDLE), else: "cannot read global '\(name)'")
        return rc == SB_BAD_HANDLE ? nil : LuaFunction(stateID: stateID, id: id)
    }

    /// Registers a synchronous host function as global `name`, or as
    /// `table.name` when `table` is given (the table is created if needed).
    ///
    /// Arguments are converted with ``LuaValue``'s rules; an argument that
    /// cannot be converted raises `bad argument #n to 'name' (...)` in Lua
    /// before `body` runs. A function argument arrives as
    /// ``LuaArgument/function``.
    public func register(_ name: String, in table: String? = nil, _ body: @escaping LuaHostFunction) throws(LuaError)
    {
        try addHost(.sync(LuaState.qualified(name, table), body), name: name, table: table, async: false)
    }

    /// Registers an asynchronous host function (see ``LuaAsyncHostFunction``).
    /// It may only be called from code running in a run's coroutine (or in a
    /// coroutine created by it); elsewhere (a metamethod or sort comparator
    /// called from C, or ``call(_:arguments:)``) it raises a Lua error.
    public func registerAsync(
        _ name: String, in table: String? = nil, _ body: @escaping LuaAsyncHostFunction
    ) throws(LuaError) {
        try addHost(.async(LuaState.qualified(name, table), body), name: name, table: table, async: true)
    }

    private static func qualified(_ name: String, _ table: String?) -> String {
        table.map { "\($0).\(name)" } ?? name
    }

    private func addHost(_ entry: HostEntry, name: String, table: String?, async: Bool) throws(LuaError) {
        try checkUsable()
        let id = hostFunctions.count
        let rc: Int32
        if let table {
            rc = sb_register(S, table, name, Int32(id), async ? 1 : 0)
        } else {
            rc = sb_register(S, nil, name, Int32(id), async ? 1 : 0)
        }
        _ = try status(rc, else: "cannot register '\(entry.name)'")
        hostFunctions.append(entry)
    }

    /// Called by the C trampoline (through `sb_set_host`).
    func hostCall(id: Int, nargs: Int, nresults: UnsafeMutablePointer<Int32>) -> Int32 {
        guard id >= 0, id < hostFunctions.count else {
            writer().writeMessageReturning("unknown host function")
            return Int32(SB_HOST_RESULT_ERROR)
        }
        let entry = hostFunctions[id]
        var reader = ValueReader(buffer: sb_outbuf(S))
        var args: [LuaArgument] = []
        args.reserveCapacity(nargs)
        for _ in 0..<nargs { args.append(reader.argument()) }
        let arguments = LuaArguments(functionName: entry.name, all: args)
        switch entry {
        case .async(let name, let body):
            pendingAsync = PendingAsync(name: name, body: body, arguments: arguments, runTag: currentRunTag)
            return Int32(SB_HOST_RESULT_YIELD)
        case .sync(_, let body):
            var call = LuaHostCall(arguments: arguments, state: self, runTag: currentRunTag)
            inHostCall = true
            defer { inHostCall = false }
            let results: [LuaValue]
            do {
                results = try body(&call)
            } catch let e as LuaHostError {
                writer().writeMessageReturning(e.message)
                return Int32(SB_HOST_RESULT_ERROR)
            } catch {
                writer().writeMessageReturning(String(describing: error))
                return Int32(SB_HOST_RESULT_ERROR)
            }
            return encodeHostResults(results, name: entry.name, nresults: nresults)
        }
    }

    func encodeHostResults(
        _ results: [LuaValue], name: String, nresults: UnsafeMutablePointer<Int32>
    ) -> Int32 {
        var w = writer()
        for (i, v) in results.enumerated() {
            do { try w.append(v) } catch {
                let e = error.error(context: "result #\(i + 1) of '\(name)'")
                writer().writeMessageReturning(e.description)
                return Int32(SB_HOST_RESULT_ERROR)
            }
        }
        nresults.pointee = Int32(clamping: results.count)
        return Int32(SB_HOST_RESULT_OK)
    }

    /// Used by ``LuaHostCall/retainFunction(at:)``.
    func retainArgument(at index: Int) -> LuaFunction {
        let id = allocateHandleID()
        sb_retain_slots(S)[index] = id
        return LuaFunction(stateID: stateID, id: id)
    }
}
