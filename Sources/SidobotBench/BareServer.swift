import Foundation
import Hummingbird
import Logging

/// `bare-server [--port P]`: the ingress benchmark's ceiling. A Hummingbird application configured
/// like `sidobot run`'s, whose `POST /webhooks/sidobe` answers 200 with a small JSON body and does
/// nothing else. Prints `listening on port P` once bound; stops on SIGTERM/SIGINT.
enum BareServer {
    static func main(_ args: [String]) async -> Int32 {
        do {
            let options = try BenchOptions(args, mode: "bare-server", known: [
                "port": "port to listen on (default 0: any free port)",
                "collect!": "read the whole request body before answering (as every real webhook receiver must)",
            ])
            let port = try options.int("port", 0)
            let collect = options.flag("collect")
            let router = Router(context: BasicRequestContext.self)
            let answer = ByteBuffer(string: #"{"event_id":"-","status":"accepted"}"#)
            router.post("/webhooks/sidobe") { request, _ in
                if collect {
                    var request = request
                    _ = try await request.collectBody(upTo: 1 << 20)
                }
                return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: answer))
            }
            var logger = Logger(label: "bare-server")
            logger.logLevel = .warning
            let app = Application(
                router: router,
                configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: port), serverName: "sidobot"),
                onServerRunning: { channel in
                    FileHandle.standardOutput.write(Data("listening on port \(channel.localAddress?.port ?? port)\n".utf8))
                },
                logger: logger
            )
            try await app.runService()
            return 0
        } catch let error as BenchUsageError {
            print(error)
            return 2
        } catch {
            print("bare-server: \(error)")
            return 1
        }
    }
}
