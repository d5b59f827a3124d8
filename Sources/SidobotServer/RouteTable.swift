import Hummingbird

/// The server's routes, registered through here so that they can be listed: Hummingbird's router
/// does not enumerate its routes, and `GET /openapi.json` must describe exactly these
/// (`OpenAPITests` compares the two).
final class RouteTable {
    let router: Router<BasicRequestContext>
    /// In registration order; a `{name}` parameter as in OpenAPI, `**` as is.
    private var registered: [(method: HTTPRequest.Method, path: String)] = []

    /// `GET /api/rules`, … in registration order.
    var routes: [String] { registered.map { "\($0.method.rawValue) \($0.path)" } }

    init(router: Router<BasicRequestContext>) {
        self.router = router
    }

    func get(_ path: String, use handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> some ResponseGenerator) {
        registered.append((.get, path))
        router.get(RouterPath(path), use: handler)
    }

    /// Answers every method a registered path does not have with 405 and `Allow` (Hummingbird
    /// alone answers 404, which tells a client the path is wrong when the method is). Call once,
    /// after the last route.
    func answerOtherMethodsWith405() {
        var paths: [String] = []
        for route in registered where !paths.contains(route.path) { paths.append(route.path) }
        // QUERY: the safe-query method of the HTTP working group's draft, which clients send already.
        let all: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .options, .trace, .connect, HTTPRequest.Method("QUERY")!]
        for path in paths {
            let allowed = registered.filter { $0.path == path }.map(\.method)
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            for method in all where !allowed.contains(method) {
                router.on(RouterPath(path), method: method) { _, _ in
                    SidobotHTTPServer.error(.methodNotAllowed, "\(method.rawValue) is not allowed here; use \(allow)", headers: [.allow: allow])
                }
            }
        }
    }

    func post(_ path: String, use handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> some ResponseGenerator) {
        registered.append((.post, path))
        router.post(RouterPath(path), use: handler)
    }
}
