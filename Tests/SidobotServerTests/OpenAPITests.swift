import Foundation
import SidobotServer
import Testing

/// `GET /openapi.json` describes exactly the routes the server registers, and is the document
/// kept in the repository (docs/openapi.json).
@Suite("OpenAPI: the document and the routes")
struct OpenAPITests {
    static let repositoryCopy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/openapi.json")

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteExists() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        let answer = try await http(.GET, h.base + "/openapi.json")
        #expect(answer.status == 200)
        #expect(answer.headers["content-type"] == "application/json")
        let document = try #require(answer.object)
        #expect(document["openapi"] as? String == "3.1.0")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var documented = Set<String>()
        for (path, operations) in paths {
            for method in operations.keys where ["get", "post", "put", "delete", "patch"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        // The router's catch-all (`/api/traces/**`: event ids may contain `/`) is one parameter in OpenAPI.
        let registered = Set(h.server.routeList().map { $0.replacingOccurrences(of: "/**", with: "/{id}") })
        #expect(registered.subtracting(documented).isEmpty, "routes missing from the document: \(registered.subtracting(documented).sorted())")
        #expect(documented.subtracting(registered).isEmpty, "documented routes the server does not have: \(documented.subtracting(registered).sorted())")
        #expect(registered.count >= 20)

        // Every $ref points at a schema that exists.
        let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
        let text = answer.text
        for match in text.matches(of: /"\$ref": "#\/components\/schemas\/([A-Za-z]+)"/) {
            #expect(schemas[String(match.1)] != nil, "missing schema \(match.1)")
        }

        // The repository's copy is the served document.
        let copy = try Data(contentsOf: Self.repositoryCopy)
        let served = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? NSDictionary
        let kept = try JSONSerialization.jsonObject(with: copy) as? NSDictionary
        #expect(served == kept, "docs/openapi.json differs from what GET /openapi.json serves (Sources/SidobotServer/OpenAPIDocument.swift)")
        await h.stop()
    }

    /// What schemathesis (scripts/check-api) found and the server now does: a method a path does
    /// not have is 405 with `Allow`, not 404; a listing's limit out of range is 400, not ignored.
    @Test func undeclaredMethodsAre405AndBadLimitsAre400() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        let put = try await http(.PUT, h.base + "/api/rules", headers: bearer)
        #expect(put.status == 405)
        #expect(put.headers["allow"] == "GET")
        #expect(put.object?["error"] as? String == "PUT is not allowed here; use GET")
        #expect(try await http(.GET, h.base + "/webhooks/sidobe").headers["allow"] == "POST")
        #expect(try await http(.GET, h.base + "/nowhere").status == 404)
        for limit in ["0", "1001", "2.5", "x"] {
            let answer = try await http(.GET, h.base + "/api/traces?limit=\(limit)", headers: bearer)
            #expect(answer.status == 400, "limit=\(limit)")
            #expect(answer.object?["error"] as? String == "limit must be one whole number from 1 to 1000")
        }
        #expect(try await http(.GET, h.base + "/api/messages?limit=1000", headers: bearer).status == 200)
        await h.stop()
    }
}
