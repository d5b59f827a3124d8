import Foundation
import LuaSandbox

/// What a host function call is part of: the rule, and the handler run (if any).
struct RunContext {
    let rule: String
    let eventID: String
    /// Changes the run made since it last gave up the engine, applied and waiting to be journaled
    /// together (see ``Engine/record(_:tag:)``).
    var staged: [Mutation] = []
    /// Whether part of the run's work is journaled already: it suspended in a `sidobe.*` call, or
    /// made more changes than one record holds. Its completion is then written, never deferred.
    var journaledBefore = false
    /// The event's run counter (nil outside handler runs).
    var dispatch: DispatchCount?
    /// Where the event's trace is.
    var tracePosition: TraceStore.Position?

    /// A handler run for an event (not a rule's top level while it loads, nor the engine's own work).
    var isHandlerRun: Bool { !eventID.isEmpty }
}


extension Engine {
    /// Loads a rule file into a fresh sandboxed state: installs the Lua API, runs the file's top
    /// level (which registers handlers), and checks what it registered.
    func loadRule(name: String, path: String) async throws(RuleLoadError) -> LoadedRule {
        let source: String
        do {
            source = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RuleLoadError(path: path, line: nil, message: "cannot read the file: \(error.localizedDescription)")
        }
        return try await loadRule(name: name, path: Self.displayPath(path), source: source)
    }

    /// How a rule file is named in errors and traces: its folder's name and the file name
    /// (`rules/retry.lua`), short enough that Lua never abbreviates it.
    static func displayPath(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().lastPathComponent
        return folder.isEmpty || folder == "/" ? url.lastPathComponent : "\(folder)/\(url.lastPathComponent)"
    }

    func loadRule(name: String, path: String, source: String) async throws(RuleLoadError) -> LoadedRule {
        let state: LuaState
        do {
            state = try LuaState(limits: configuration.limits)
        } catch {
            throw RuleLoadError(path: path, line: nil, message: "cannot create a Lua state: \(error)")
        }
        let rule = LoadedRule(name: name, displayPath: path, source: source, state: state,
                              registration: RuleRegistration(), loadedAt: clock.now())
        let loadingTag = allocateRunTag()
        runs[loadingTag] = RunContext(rule: name, eventID: "")
        defer { runs[loadingTag] = nil }
        do {
            try installAPI(in: state, rule: name)
            registering[name] = RuleRegistration()
            defer { registering[name] = nil }
            _ = try await state.execute(source, chunkName: path, tag: loadingTag)
            rule.registration = registering[name] ?? RuleRegistration()
        } catch {
            state.close()
            throw RuleLoadError(luaError: error, path: path)
        }
        let now = clock.now()
        for index in rule.registration.schedules.indices {
            rule.registration.schedules[index].next = rule.registration.schedules[index].schedule.nextFire(after: now)
        }
        return rule
    }

    func allocateRunTag() -> Int {
        defer { nextRunTag += 1 }
        return nextRunTag
    }
}

extension RuleLoadError {
    init(luaError error: LuaError, path: String) {
        switch error {
        case .script(let script):
            self.init(path: script.chunk ?? path, line: script.line, message: script.message)
        case .limitExceeded(let limit):
            self.init(path: path, line: limit.line, message: "the rule's top level hit the \(limit.limit) while loading: \(limit)")
        default:
            self.init(path: path, line: nil, message: error.description)
        }
    }
}
