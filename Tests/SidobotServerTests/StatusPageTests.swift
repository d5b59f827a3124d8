import Foundation
import SidobotServer
import Testing

@Suite("status page (/ui) and its endpoints")
struct StatusPageTests {
    @Test func servesThePageAndItsAssetsWithAStrictPolicy() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        let assets = [("/ui", "text/html"), ("/ui/", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")]
        for (path, type) in assets {
            // No token needed: the page is static and holds no data.
            let answer = try await http(.GET, h.base + path)
            #expect(answer.status == 200, "\(path)")
            #expect(answer.headers["content-type"]?.hasPrefix(type) == true, "\(path)")
            let csp = try #require(answer.headers["content-security-policy"], "\(path)")
            #expect(csp.contains("default-src 'none'"))
            #expect(csp.contains("script-src 'self'"))
            #expect(csp.contains("connect-src 'self'"))
            #expect(!csp.contains("unsafe"))
            #expect(answer.headers["x-content-type-options"] == "nosniff")
            #expect(answer.headers["cache-control"] == "no-store")
            // Nothing from the network: no absolute or protocol-relative URL, no CSS import.
            for external in ["http://", "https://", "src=\"//", "href=\"//", "@import", "url("] {
                #expect(!answer.text.contains(external), "\(path) contains \(external)")
            }
            // The admin token is never in what is served.
            #expect(!answer.text.contains(adminToken))
        }

        let html = try await http(.GET, h.base + "/ui").text
        #expect(html.contains(#"<script src="/ui/app.js" defer></script>"#))
        #expect(html.contains(#"<link rel="stylesheet" href="/ui/app.css">"#))
        #expect(html.contains(#"name="viewport""#))
        // The CSP forbids inline script and style: none in the page.
        #expect(html.components(separatedBy: "<script").count == 2)
        #expect(!html.contains("<style"))
        #expect(!html.contains(" style="))
        for handler in ["onclick=", "onload=", "onsubmit=", "onchange=", "oninput=", "onerror="] {
            #expect(!html.lowercased().contains(handler), "inline handler \(handler)")
        }
        for section in ["overview", "rules", "events", "timers", "messages", "dead-letters", "metrics"] {
            #expect(html.contains(#"<section id="\#(section)">"#), "section \(section)")
        }

        let script = try await http(.GET, h.base + "/ui/app.js").text
        #expect(script.contains("sessionStorage"))
        #expect(!script.contains("localStorage"))
        #expect(!script.contains("innerHTML"))
        #expect(script.contains("token="))  // the fragment hand-off (/ui#token=...) used by scripts/check-ui

        #expect(try await http(.GET, h.base + "/ui/nope.js").status == 404)
        await h.stop()
    }

    @Test func overviewAndRecentMessages() async throws {
        let h = try await Harness.start()
        defer { h.cleanUp() }
        let api = h.base + "/api"
        #expect(try await http(.GET, api + "/overview").status == 401)
        #expect(try await http(.GET, api + "/messages").status == 401)
        #expect(try await http(.GET, api + "/messages", headers: [("Authorization", "Bearer wrong")]).status == 401)

        let empty = try await http(.GET, api + "/overview", headers: bearer)
        #expect(empty.status == 200)
        #expect(empty.headers["content-type"] == "application/json")
        let first = try empty.decode(OverviewBody.self)
        #expect(first.rules == 1)
        #expect(first.messages == 0)
        #expect(first.deadLetters == 0)
        #expect(try await http(.GET, api + "/messages", headers: bearer).decode(MessagesBody.self).messages.isEmpty)

        // Two sends (each gets PENDING, then SUCCESS by webhook), a timer, a dead letter.
        _ = try await http(.POST, h.base + "/hooks/send", headers: bearer, body: [])
        #expect(try await eventually { try await h.state()["sent"] is String })
        let firstID = try #require(try await h.state()["sent"] as? String)
        _ = try await http(.POST, h.base + "/hooks/send", headers: bearer, body: [])
        #expect(try await eventually { try await h.state()["sent"] as? String != firstID })
        _ = try await http(.POST, h.base + "/hooks/ping", headers: bearer, body: Array(#"{"n":1}"#.utf8))
        _ = try await http(.POST, h.base + "/hooks/boom", headers: bearer, body: [])
        #expect(try await eventually { try await h.state()["success"] as? Int == 2 })

        #expect(try await eventually { try await http(.GET, api + "/overview", headers: bearer).decode(OverviewBody.self).deadLetters == 1 })
        let overview = try await http(.GET, api + "/overview", headers: bearer).decode(OverviewBody.self)
        #expect(overview.messages == 2)
        #expect(overview.messagesByStatus == ["SUCCESS": 2])
        #expect(overview.sentLastMinute == 2)
        #expect(overview.sentLast5Minutes == 2)
        #expect(overview.timersPending == 1)
        #expect(overview.handlerErrors == 1)
        #expect(overview.handlerRuns >= 4)
        #expect(overview.rulesQuarantined == 0)
        #expect(overview.outboxDepth == 0)
        #expect(!overview.now.isEmpty)
        // snake_case keys on the wire.
        let raw = try #require(try await http(.GET, api + "/overview", headers: bearer).object)
        for key in ["outbox_depth", "timers_pending", "dead_letters", "messages_by_status", "sent_last_minute", "active_runs",
                    "stores", "resident_bytes", "memory_budget_bytes"] {
            #expect(raw[key] != nil, "\(key)")
        }
        // What memory holds, by store: records, and records × the measured per-record cost.
        let stores = try #require(raw["stores"] as? [String: [String: Any]])
        #expect(stores["timers"]?["records"] as? Int == 1)
        #expect(stores["timers"]?["estimated_bytes"] as? Int == 213)
        #expect(stores["ledger"]?["records"] as? Int == 2)
        #expect(stores["dead_letters"]?["estimated_bytes"] is NSNull)
        #expect((raw["resident_bytes"] as? Int ?? 0) > 1_048_576)
        #expect(raw["memory_budget_bytes"] is NSNull)

        // Newest first, with the status history; limit works.
        let messages = try await http(.GET, api + "/messages", headers: bearer).decode(MessagesBody.self).messages
        #expect(messages.count == 2)
        let secondID = try #require(try await h.state()["sent"] as? String)
        #expect(messages.map(\.id) == [secondID, firstID])
        #expect(messages.allSatisfy { $0.history.map(\.status) == ["PENDING", "SUCCESS"] })
        let limited = try await http(.GET, api + "/messages?limit=1", headers: bearer).decode(MessagesBody.self).messages
        #expect(limited.map(\.id) == [secondID])
        await h.stop()
    }

    /// `/ui/plain`: the page without JavaScript, for a terminal browser: HTTP Basic with the
    /// token as the password (the browser prompts on the 401), everything escaped, no script.
    @Test func thePlainViewNeedsNoJavaScript() async throws {
        let h = try await Harness.start(rule: testRule + """

            on("hook.angle", function(ev) error("<script>alert(1)</script> & more") end)
            """)
        defer { h.cleanUp() }
        let plain = h.base + "/ui/plain"
        let refused = try await http(.GET, plain)
        #expect(refused.status == 401)
        #expect(refused.headers["www-authenticate"]?.hasPrefix("Basic realm=") == true)
        let wrong = Data(":wrong".utf8).base64EncodedString()
        #expect(try await http(.GET, plain, headers: [("Authorization", "Basic \(wrong)")]).status == 401)
        // Basic works here only, never on the admin API.
        let basic = [("Authorization", "Basic " + Data("ops:\(adminToken)".utf8).base64EncodedString())]
        #expect(try await http(.GET, h.base + "/api/rules", headers: basic).status == 401)

        _ = try await http(.POST, h.base + "/hooks/ping", headers: bearer, body: Array(#"{"n":1}"#.utf8))
        _ = try await http(.POST, h.base + "/hooks/angle", headers: bearer, body: [])
        #expect(try await eventually { try await http(.GET, h.base + "/api/dead-letters", headers: bearer).decode(DeadLettersBody.self).deadLetters.count == 1 })
        #expect(try await eventually { try await http(.GET, h.base + "/api/timers", headers: bearer).decode(TimersBody.self).timers.count == 1 })

        for headers in [basic, bearer] {
            let page = try await http(.GET, plain, headers: headers)
            #expect(page.status == 200)
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            #expect(page.headers["content-security-policy"]?.contains("default-src 'none'") == true)
            let html = page.text
            #expect(!html.contains("<script"), "no script, and a rule's error is escaped")
            #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"))
            for heading in ["Overview", "Rules (1)", "Recent events", "Timers (1)", "Dead letters (1)"] {
                #expect(html.contains("<h2>\(heading)"), "\(heading)")
            }
            #expect(html.contains("<td>test</td><td>active</td>"))
            #expect(html.contains("<td>later</td>"), "the pending timer")
            #expect(html.contains("<tr><th>store timers</th><td>1 records, ~0 MiB</td></tr>"), "\(html)")
            #expect(html.contains("<td>hook.angle</td>"), "the dead letter's event")
            #expect(!html.contains(adminToken))
        }
        // The full page points there for a browser without JavaScript.
        #expect(try await http(.GET, h.base + "/ui").text.contains(#"<noscript><p class="banner">This page needs JavaScript. Without it: <a href="/ui/plain">"#))
        await h.stop()
    }

    @Test func theAdminEndpointsAreOffWithoutAToken() async throws {
        let h = try await Harness.start(token: nil)
        defer { h.cleanUp() }
        #expect(try await http(.GET, h.base + "/api/overview").status == 403)
        #expect(try await http(.GET, h.base + "/api/messages").status == 403)
        // The page itself still loads (and says the admin API is off once it asks).
        #expect(try await http(.GET, h.base + "/ui").status == 200)
        await h.stop()
    }
}
