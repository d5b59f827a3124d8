import Foundation
import Logging
import LuaSandbox
import Sidobe
import SidobeTesting
import SidobotEngine
import SidobotServer

/// An engine started in this process over a temp rules folder (and a data folder, if asked), on the
/// real clock, with a Sidobe that refuses everything unless one is given.
struct EngineHarness {
    let engine: Engine
    let folder: TempFolder
    let dataFolder: String?

    /// - Parameters:
    ///   - rules: file stem → Lua source.
    ///   - journal: keep a data folder (journal + snapshots) under this fsync policy; nil: memory only.
    static func start(label: String, rules: [String: String], journal: FsyncPolicy?, sidobe: (any SidobeAPI)? = nil,
                      dataFolder: String? = nil, folder existing: TempFolder? = nil,
                      configure: (inout EngineConfiguration) -> Void = { _ in }) async throws -> EngineHarness {
        let folder = try existing ?? TempFolder(label)
        let rulesFolder = folder.file("rules")
        try FileManager.default.createDirectory(atPath: rulesFolder, withIntermediateDirectories: true)
        for (name, source) in rules { try folder.write("rules/\(name).lua", source) }
        let data = journal == nil ? nil : (dataFolder ?? folder.file("data"))
        var configuration = EngineConfiguration(rulesFolder: rulesFolder, dataFolder: data)
        if let journal { configuration.fsync = journal }
        configuration.reloadPollInterval = 0
        configuration.snapshotInterval = 1e9  // the benchmark takes snapshots itself
        configure(&configuration)
        let engine = Engine(configuration: configuration, sidobe: sidobe ?? TestSidobe(refusing: .transport("benchmark: no Sidobe", requestWritten: false)), logger: BenchLogging.logger("sidobot.engine"))
        try await engine.start()
        return EngineHarness(engine: engine, folder: folder, dataFolder: data)
    }

    func stop(removing: Bool = true) async {
        try? await engine.shutdown(deadline: 5)
        if removing { folder.remove() }
    }
}

enum BenchLogging {
    /// Engine logs go to stderr at `SIDOBOT_LOG_LEVEL` (default info, as `sidobot run`), so their
    /// cost is measured; scripts/bench sends stderr to a file.
    static let level: Logger.Level = ProcessInfo.processInfo.environment["SIDOBOT_LOG_LEVEL"].flatMap {
        Logger.Level(rawValue: $0.lowercased())
    } ?? .info

    static func logger(_ label: String) -> Logger {
        Logger(label: label) { label in LogLineHandler(label: label, level: level) }
    }
}

enum Webhooks {
    /// `count` distinct SEND_MESSAGE_STATUS webhooks for unknown messages (statuses cycling), ids prefixed by `prefix`.
    static func make(_ count: Int, prefix: String) -> [WebhookEvent] {
        let statuses: [MessageStatus] = [.success, .failed, .pending, .success]
        return (0..<count).map { n in
            WebhookEvent(id: "\(prefix)-\(n)", createdAt: "2026-12-01T09:00:00.000000+07:00", payload: .messageStatus(
                MessageStatusUpdate(whatsappMessageID: "m-\(prefix)-\(n)", status: statuses[n & 3],
                                    sendAt: "2026-12-01T09:00:00+07:00", messageType: .text)))
        }
    }
}
