@testable import LuaSandbox

/// The `LuaError` thrown by `op`, or nil if it succeeds.
func caught<T>(_ op: () async throws -> T) async -> LuaError? {
    do {
        _ = try await op()
        return nil
    } catch {
        return error as? LuaError
    }
}

/// The `LuaError` thrown by `op`, or nil if it succeeds.
func caughtSync<T>(_ op: () throws -> T) -> LuaError? {
    do {
        _ = try op()
        return nil
    } catch {
        return error as? LuaError
    }
}

extension LuaError {
    var scriptError: LuaScriptError? {
        if case .script(let e) = self { return e }
        return nil
    }
    var limitError: LuaLimitError? {
        if case .limitExceeded(let e) = self { return e }
        return nil
    }
    var conversionError: LuaConversionError? {
        if case .conversion(let e) = self { return e }
        return nil
    }
}
