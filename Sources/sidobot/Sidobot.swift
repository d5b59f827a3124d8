import ArgumentParser

/// The `sidobot` command line: one subcommand per job (docs/OPERATING.md).
@main
struct Sidobot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sidobot",
        abstract: "Automate WhatsApp messaging through the Sidobe API v1 with small Lua rules.",
        discussion: """
            Environment: SIDOBE_SECRET_KEY is the secret key from the Sidobe dashboard \
            (Developer Tools → Credential). SIDOBOT_LOG_LEVEL sets the log level (trace, debug, info, notice, warning, error).
            """,
        subcommands: [SendCommand.self, SimulatorCommand.self, SignCommand.self, RunCommand.self, TraceCommand.self, CheckCommand.self, TestCommand.self, TypesCommand.self, InitCommand.self]
    )
}
