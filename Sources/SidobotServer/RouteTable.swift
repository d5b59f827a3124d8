import Hummingbird

/// The server's routes, registered through here so that they can be listed: Hummingbird's router
/// does not enumerate its routes, and `GET /openapi.json` must describe exactly these
/// (`OpenAPITests` compares the two).
final class RouteTable {
    let router: Router<BasicRequestContext>
    /// `GET /api/rules`, … in registration order; a `{name}` parameter as in OpenAPI, `**` as is.
    private(set) var routes: [String] = []

    init(router: Router<BasicRequestContext>) {
        self.router = router
    }

    func get(_ path: String, use handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> some ResponseGenerator) {
        routes.append("GET \(path)")
        router.get(RouterPath(path), use: handler)
    }

    /// Answers every method a registered path does not have with 405 and `Allow` (Hummingbird
    /// alone answers 404, which tells a client the path is wrong when the method is). Call once,
    /// after the last route.
    func answerOtherMethodsWith405() {
        var methods: [String: [String]] = [:]
        var order: [String] = []
        for route in routes {
            let parts = route.split(separator: " ", maxSplits: 1).map(String.init)
            if methods[parts[1]] == nil { order.append(parts[1]) }
            methods[parts[1], default: []].append(parts[0])
        }
        // QUERY: the safe-query method of the HTTP working group's draft, which clients send already.
        let all: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .options, .trace, .connect, HTTPRequest.Method("QUERY")!]
        for path in order {
            let allowed = methods[path] ?? []
            let allow = allowed.joined(separator: ", ")
            for method in all where !allowed.contains(method.rawValue) {
                router.on(RouterPath(path), method: method) { _, _ in
                    SidobotHTTPServer.error(.methodNotAllowed, "\(method.rawValue) is not allowed here; use \(allow)", headers: [.allow: allow])
                }
            }
        }
    }

    func post(_ path: String, use handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> some ResponseGenerator) {
        routes.append("POST \(path)")
        router.post(RouterPath(path), use: handler)
    }
}
