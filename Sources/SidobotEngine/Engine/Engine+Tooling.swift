import Foundation
import LuaSandbox

/// A rule file as it registered itself when loaded, for tooling (`sidobot check`).
public struct RuleDescription: Sendable {
    /// The file stem.
    public var name: String
    /// The path as errors show it (`rules/retry.lua`).
    public var path: String
    public var description: String?
    /// Event names it listens for, in registration order.
    public var events: [String]
    /// Its `every` and `cron` schedules, by key (`cron 0 9 * * 1-5 Asia/Jakarta`).
    public var schedules: [(key: String, schedule: any FireSchedule)]
}

/// What the rule tooling (`sidobot check`, `sidobot test`) asks of an engine beyond its public
/// face: loading rules without starting, and driving time and custom events in tests.
extension Engine {
    /// Loads every rule file of the rules folder in its sandbox without starting the engine (no data
    /// folder is read, nothing is sent) and describes what each registers, or why it did not load.
    /// Each rule's Lua state is closed afterwards. Fails only if the folder cannot be read.
    public func describeRules() async -> Result<[(name: String, path: String, rule: Result<RuleDescription, RuleLoadError>)], RuleLoadError> {
        let loaded: [(file: (name: String, path: String), result: Result<LoadedRule, RuleLoadError>)]
        do {
            loaded = try await rules.loadEach()
        } catch {
            guard case .rules(let errors) = error, let first = errors.first else {
                return .failure(RuleLoadError(path: configuration.rulesFolder, line: nil, message: "\(error)"))
            }
            return .failure(first)
        }
        return .success(loaded.map { file, result in
            (file.name, RuleFiles.displayPath(file.path), result.map { rule in
                defer { rule.state.close() }
                let registration = rule.registration
                return RuleDescription(name: rule.name, path: rule.displayPath, description: registration.description,
                                       events: registration.eventNames, schedules: registration.schedules.map { ($0.key, $0.schedule) })
            })
        })
    }

    /// Fires what fell due while no engine ran, at the current time (so late policies apply), as
    /// the real-clock scheduler does first thing after a start. For `sidobot test` after `t.restart`.
    @_spi(RuleTesting) public func fireOverdue() {
        fireDue(now: clock.now())
    }

    /// Raises a custom event as if a rule had called `emit(name, payload)` (`t.emit` in tests);
    /// `from_rule` is nil: it comes from the test.
    @_spi(RuleTesting) public func injectCustomEvent(name: String, payload: LuaValue) throws(EngineError) -> String {
        let event = EngineEvent(id: "e-\(UUID().uuidString.lowercased())", kind: .custom(name: name, payload: payload, fromRule: nil),
                                at: clock.now())
        do {
            try store.commit(.eventAccepted(event, dedupe: false, movesLedger: true))
        } catch {
            throw .journal(error)
        }
        inbox.append(event)
        return event.id
    }
}
