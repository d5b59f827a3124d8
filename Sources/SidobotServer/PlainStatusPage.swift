import Foundation
import Hummingbird
import SidobotEngine

// `GET /ui/plain`: the status page rendered on the server, without JavaScript, for a terminal
// browser (w3m, lynx) or `curl -u :TOKEN`. It cannot hold a token in a tab as `/ui` does, so it
// accepts HTTP Basic (any user name, the admin token as the password) besides the bearer
// token, and asks for it with `WWW-Authenticate: Basic`: the browser prompts once. Read-only: the
// buttons of `/ui` (resolve a message in doubt, replay a dead letter) stay on the admin API.

extension SidobotHTTPServer {
    func addPlainStatusPageRoute(to router: RouteTable) {
        router.get("/ui/plain") { request, _ in
            await self.admin(request, allowingBasic: true) { engine in Self.plainPage(await PlainStatusPage.render(engine)) }
        }
    }

    static func plainPage(_ html: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.contentSecurityPolicy] = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        headers[.cacheControl] = "no-store"
        headers[HTTPFields.Element.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPFields.Element.Name("Referrer-Policy")!] = "no-referrer"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }
}

/// The HTML of `/ui/plain`: headings and tables, every value escaped, no script, no style.
enum PlainStatusPage {
    static let traceLimit = 30
    static let timerLimit = 100
    static let deadLetterLimit = 100

    static func render(_ engine: Engine) async -> String {
        let overview = await SidobotHTTPServer.overview(of: engine)
        let rules = await engine.ruleSummaries()
        let failures = await engine.ruleLoadFailures()
        let traces = await engine.recentTraces(limit: traceLimit)
        let timers = await engine.pendingTimers()
        let letters = await engine.deadLetters()
        let inDoubt = await engine.messages().filter { $0.status == .inDoubt }

        var page = HTMLText()
        page.raw("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sidobot status</title></head><body>\n")
        page.raw("<h1>Sidobot status</h1>\n<p>At ")
        page.text(overview.now)
        page.raw(". Reload the page for fresh figures; <a href=\"/ui\">the full page</a> needs JavaScript.</p>\n")

        page.raw("<h2>Overview</h2>\n<table>\n")
        let resident = overview.residentBytes.map { "\($0 >> 20) MiB" } ?? "unknown"
        let budget = overview.memoryBudgetBytes.map { " / \($0 >> 20) MiB" } ?? ""
        var rows: [(String, String)] = [
            ("rules loaded", "\(overview.rules) (\(overview.rulesQuarantined) quarantined)"),
            ("handler runs / errors / aborts", "\(overview.handlerRuns) / \(overview.handlerErrors) / \(overview.handlerAborts)"),
            ("handler runs going on", "\(overview.activeRuns)"),
            ("sends waiting in the outbox", "\(overview.outboxDepth)"),
            ("sent in the last minute / 5 minutes", "\(overview.sentLastMinute) / \(overview.sentLast5Minutes)"),
            ("messages in the ledger", "\(overview.messages): " + overview.messagesByStatus.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")),
            ("messages in doubt (UNKNOWN)", "\(inDoubt.count)"),
            ("timers pending", "\(overview.timersPending)"),
            ("dead letters", "\(overview.deadLetters)"),
            ("memory (RSS / budget)", resident + budget),
        ]
        for (name, store) in overview.stores.sorted(by: { $0.key < $1.key }) {
            let estimate = store.estimatedBytes.map { ", ~\($0 >> 20) MiB" } ?? ""
            rows.append(("store \(name)", "\(store.records) records" + estimate))
        }
        for (label, value) in rows {
            page.keyValue(label, value)
        }
        page.raw("</table>\n")

        page.raw("<h2>Rules (\(rules.count))</h2>\n")
        if !failures.isEmpty {
            page.raw("<p><strong>Files that failed to load at the last reload:</strong></p>\n<ul>\n")
            for failure in failures {
                page.raw("<li>")
                page.text(failure.error.description)
                page.text(failure.previousVersionRuns ? " (the previous version keeps running)" : " (not running)")
                page.raw("</li>\n")
            }
            page.raw("</ul>\n")
        }
        page.raw("<table>\n")
        page.row(["rule", "status", "loaded", "runs", "errors", "aborts", "last error"], header: true)
        for rule in rules {
            page.row([rule.name, rule.quarantined ? "quarantined" : (rule.loadFailure == nil ? "active" : "active, edit failed to load"),
                      rule.loadedAt.description, "\(rule.runs)", "\(rule.errors)", "\(rule.aborts)", rule.lastError ?? ""])
        }
        page.raw("</table>\n")

        page.raw("<h2>Recent events (\(traces.count))</h2>\n<table>\n")
        page.row(["at", "event", "id", "rules", "summary"], header: true)
        for trace in traces {
            let outcomes = trace.rules.isEmpty ? "no rule listens" : trace.rules.map { "\($0.rule): \($0.outcome.rawValue)" }.joined(separator: ", ")
            page.row([trace.at.description, trace.eventName, trace.eventID, outcomes, trace.summary])
        }
        page.raw("</table>\n<p>The whole trace of one: <code>sidobot trace ID</code>.</p>\n")

        page.raw("<h2>Timers (\(timers.count)\(timers.count > timerLimit ? ", the first \(timerLimit)" : ""))</h2>\n<table>\n")
        page.row(["due", "rule", "name", "id"], header: true)
        for timer in timers.prefix(timerLimit) {
            page.row([timer.due.description, timer.rule, timer.name, timer.id.description])
        }
        page.raw("</table>\n")

        page.raw("<h2>Dead letters (\(letters.count)\(letters.count > deadLetterLimit ? ", the newest \(deadLetterLimit)" : ""))</h2>\n<table>\n")
        page.row(["at", "rule", "event", "reason", "error", "id"], header: true)
        for letter in letters.suffix(deadLetterLimit).reversed() {
            page.row([letter.at.description, letter.rule, letter.event.displayName, letter.reason.rawValue, letter.error, letter.id])
        }
        page.raw("</table>\n</body></html>\n")
        return page.html
    }
}

/// HTML built by appending: markup as given, text escaped.
struct HTMLText {
    private(set) var html = ""

    mutating func raw(_ markup: String) { html += markup }

    mutating func text(_ text: String) {
        for character in text {
            switch character {
            case "&": html += "&amp;"
            case "<": html += "&lt;"
            case ">": html += "&gt;"
            case "\"": html += "&quot;"
            case "'": html += "&#39;"
            default: html.append(character)
            }
        }
    }

    /// A table row: header cells (`th`) or data cells.
    mutating func row(_ cells: [String], header: Bool = false) {
        let tag = header ? "th" : "td"
        html += "<tr>"
        for cell in cells {
            html += "<\(tag)>"
            text(cell)
            html += "</\(tag)>"
        }
        html += "</tr>\n"
    }

    /// A row of a two-column table: the label as its header.
    mutating func keyValue(_ label: String, _ value: String) {
        html += "<tr><th>"
        text(label)
        html += "</th><td>"
        text(value)
        html += "</td></tr>\n"
    }
}
