import Logging
import LuaSandbox

/// `log.debug`, `log.info`, `log.warn`, `log.error`: a line in the engine's log with the rule and
/// event as fields; warnings and errors also go into the run's trace.
enum LogModule {
    static func install(in state: LuaState, rule: String, host: some LogHost) throws(LuaError) {
        for (name, level) in [("debug", Logger.Level.debug), ("info", .info), ("warn", .warning), ("error", .error)] {
            try state.register(name, in: "log") { call in
                let text = try call.arguments.string(at: 0)
                let fields = call.arguments.value(at: 1).objectValue ?? [:]
                var metadata: Logger.Metadata = ["rule": "\(rule)", "source": "rule"]
                if let event = host.eventID(of: call.runTag) { metadata["event"] = "\(event)" }
                // A string as its text (the log line quotes it if it must); other values as JSON.
                for (key, value) in fields { metadata[key] = "\(value.stringValue ?? value.preview)" }
                host.logger.log(level: level, "\(text)", metadata: metadata)
                if level >= .warning { host.note(run: call.runTag, "log \(level): \(text)") }
                return []
            }
        }
    }
}
