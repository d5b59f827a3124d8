import Foundation
import LuaSandbox

/// Loads one rule file into a fresh sandboxed state: the Lua API installed, the file's top level
/// run (which registers handlers and schedules), what it registered kept.
struct RuleLoader {
    private let limits: LuaLimits
    /// The engine executor's count of waiting jobs, which every rule's runs give way to.
    private let waitingWork: LuaWaitingWork
    private let clock: any EngineClock
    private let runs: RunTable
    private let api: LuaAPI

    init(limits: LuaLimits, waitingWork: LuaWaitingWork, clock: any EngineClock, runs: RunTable, api: LuaAPI) {
        self.limits = limits
        self.waitingWork = waitingWork
        self.clock = clock
        self.runs = runs
        self.api = api
    }

    /// Reads and loads `path` as rule `name`.
    func load(name: String, path: String) async throws(RuleLoadError) -> LoadedRule {
        let source: String
        do {
            source = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RuleLoadError(path: RuleFiles.displayPath(path), line: nil, message: "cannot read the file: \(error.localizedDescription)")
        }
        return try await load(name: name, path: RuleFiles.displayPath(path), source: source)
    }

    /// Loads `source` as rule `name`, shown as `path` in errors and traces.
    func load(name: String, path: String, source: String) async throws(RuleLoadError) -> LoadedRule {
        let state: LuaState
        do {
            state = try LuaState(limits: limits)
            state.waitingWork = waitingWork
        } catch {
            throw RuleLoadError(path: path, line: nil, message: "cannot create a Lua state: \(error)")
        }
        let loading = RuleLoading()
        let tag = runs.beginLoading(rule: name)
        defer {
            loading.close()
            runs.end(tag)
        }
        do {
            try api.install(in: state, rule: name, loading: loading)
            _ = try await state.execute(source, chunkName: path, tag: tag)
        } catch {
            state.close()
            throw RuleLoadError(luaError: error, path: path)
        }
        // The file's own CPU limit applies from its first handler run.
        if let cpu = loading.registration.cpuLimit { state.limits.cpuPerRun = cpu }
        return LoadedRule(name: name, displayPath: path, source: source, state: state, registration: loading.registration,
                          loadedAt: clock.now())
    }
}

/// What a rule registers while its file loads; the registration functions (`rule`, `on`,
/// `every`, `cron`) write here, and refuse once the load is over.
final class RuleLoading {
    private(set) var registration = RuleRegistration()
    private(set) var isOpen = true

    func close() { isOpen = false }

    /// Changes the registration; only while the file loads.
    func update(_ body: (inout RuleRegistration) -> Void) {
        guard isOpen else { return }
        body(&registration)
    }
}
