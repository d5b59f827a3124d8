import Foundation
import Hummingbird
import SidobotEngine

// The status page (`GET /ui`) and the two admin endpoints it needs beyond the admin API of docs/OPERATING.md:
// `GET /api/overview` (the numbers at the top of the page) and `GET /api/messages?limit=N&status=S`
// (recent messages with their status history; `status=UNKNOWN` lists the sends in doubt). The page is static: it holds no data and no
// secret, so it is served without the token; everything it shows comes from `/api/…` with the
// token the person typed (kept in the tab's sessionStorage), and from `/metrics`.

/// `GET /api/overview`.
public struct OverviewBody: Codable, Sendable, Hashable {
    /// The engine's clock, so the page can show "due in 40 s" without trusting the browser's clock.
    public var now: String
    /// Sends waiting for their turn (pacing: global rate and per-recipient gap).
    public var outboxDepth: Int
    /// Handler runs going on now.
    public var activeRuns: Int
    public var timersPending: Int
    public var rules: Int
    public var rulesQuarantined: Int
    /// Sums over the loaded rules (since each rule was loaded).
    public var handlerRuns: Int
    public var handlerErrors: Int
    public var handlerAborts: Int
    public var deadLetters: Int
    /// Messages in the ledger (kept 30 days), and how many are in each current status.
    public var messages: Int
    public var messagesByStatus: [String: Int]
    /// Messages sent (ledger `sent_at`) in the last 60 s and the last 5 minutes.
    public var sentLastMinute: Int
    public var sentLast5Minutes: Int
    /// Each long-lived store: its records and estimated bytes (records × the measured per-record
    /// cost; null where none is known).
    public var stores: [String: StoreInfo]
    /// The process's resident memory, and `--memory-budget` (null when not set).
    public var residentBytes: Int?
    public var memoryBudgetBytes: Int?

    public struct StoreInfo: Codable, Sendable, Hashable {
        public var records: Int
        public var estimatedBytes: Int?

        enum CodingKeys: String, CodingKey {
            case records
            case estimatedBytes = "estimated_bytes"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(records, forKey: .records)
            try container.encode(estimatedBytes, forKey: .estimatedBytes)
        }
    }

    enum CodingKeys: String, CodingKey {
        case now, rules, messages
        case outboxDepth = "outbox_depth", activeRuns = "active_runs", timersPending = "timers_pending"
        case rulesQuarantined = "rules_quarantined", handlerRuns = "handler_runs", handlerErrors = "handler_errors"
        case handlerAborts = "handler_aborts", deadLetters = "dead_letters", messagesByStatus = "messages_by_status"
        case sentLastMinute = "sent_last_minute", sentLast5Minutes = "sent_last_5_minutes"
        case stores, residentBytes = "resident_bytes", memoryBudgetBytes = "memory_budget_bytes"
    }

    /// Every field present, `resident_bytes` and `memory_budget_bytes` null when unknown or unset.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(now, forKey: .now)
        try c.encode(outboxDepth, forKey: .outboxDepth)
        try c.encode(activeRuns, forKey: .activeRuns)
        try c.encode(timersPending, forKey: .timersPending)
        try c.encode(rules, forKey: .rules)
        try c.encode(rulesQuarantined, forKey: .rulesQuarantined)
        try c.encode(handlerRuns, forKey: .handlerRuns)
        try c.encode(handlerErrors, forKey: .handlerErrors)
        try c.encode(handlerAborts, forKey: .handlerAborts)
        try c.encode(deadLetters, forKey: .deadLetters)
        try c.encode(messages, forKey: .messages)
        try c.encode(messagesByStatus, forKey: .messagesByStatus)
        try c.encode(sentLastMinute, forKey: .sentLastMinute)
        try c.encode(sentLast5Minutes, forKey: .sentLast5Minutes)
        try c.encode(stores, forKey: .stores)
        try c.encode(residentBytes, forKey: .residentBytes)
        try c.encode(memoryBudgetBytes, forKey: .memoryBudgetBytes)
    }
}

/// `GET /api/messages?limit=N&status=S`: the most recent messages (of that status), newest first.
public struct MessagesBody: Codable, Sendable, Hashable {
    public var messages: [MessageInfo]
}

extension SidobotHTTPServer {
    /// `/ui` and its assets, `/api/overview` and `/api/messages`.
    func addStatusPageRoutes(to router: RouteTable) {
        // Also answers `/ui/`: the router ignores a trailing slash (registering both traps).
        router.get("/ui") { _, _ in Self.asset(StatusPageAssets.html, type: "text/html; charset=utf-8") }
        router.get("/ui/app.css") { _, _ in Self.asset(StatusPageAssets.css, type: "text/css; charset=utf-8") }
        router.get("/ui/app.js") { _, _ in Self.asset(StatusPageAssets.javascript, type: "text/javascript; charset=utf-8") }
        router.get("/api/overview") { request, _ in
            await self.admin(request) { engine in Self.json(await Self.overview(of: engine)) }
        }
        router.get("/api/messages") { request, _ in
            let status: String? = request.uri.queryParameters.get("status").map { String($0) }
            return await self.admin(request) { engine in
                switch Self.limit(of: request) {
                case .failure(let refusal):
                    return refusal
                case .success(let limit):
                    let recent = await engine.messages().reversed().lazy.filter { status == nil || $0.status.rawValue == status }
                    return Self.json(MessagesBody(messages: recent.prefix(limit).map(MessageInfo.init)))
                }
            }
        }
    }

    static func overview(of engine: Engine) async -> OverviewBody {
        let rules = await engine.ruleSummaries()
        let messages = await engine.messages()
        let now = await engine.now()
        let memory = await engine.memoryReport()
        let nowSeconds = Double(now.milliseconds) / 1000
        var byStatus: [String: Int] = [:]
        var lastMinute = 0
        var last5Minutes = 0
        for message in messages {
            byStatus[message.status.rawValue, default: 0] += 1
            let age = nowSeconds - message.sentAt
            if age <= 60 { lastMinute += 1 }
            if age <= 300 { last5Minutes += 1 }
        }
        return OverviewBody(
            now: now.description, outboxDepth: await engine.outboxDepth, activeRuns: await engine.activeRunCount,
            timersPending: await engine.pendingTimers().count, rules: rules.count,
            rulesQuarantined: rules.count(where: \.quarantined), handlerRuns: rules.reduce(0) { $0 + $1.runs },
            handlerErrors: rules.reduce(0) { $0 + $1.errors }, handlerAborts: rules.reduce(0) { $0 + $1.aborts },
            deadLetters: await engine.deadLetters().count, messages: messages.count, messagesByStatus: byStatus,
            sentLastMinute: lastMinute, sentLast5Minutes: last5Minutes,
            stores: Dictionary(uniqueKeysWithValues: memory.stores.map { ($0.name, OverviewBody.StoreInfo(records: $0.records, estimatedBytes: $0.estimatedBytes)) }),
            residentBytes: memory.residentBytes, memoryBudgetBytes: memory.budgetBytes)
    }

    /// The page's Content-Security-Policy: nothing but this origin; no inline script or style.
    static let statusPageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        + "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static func asset(_ text: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.contentSecurityPolicy] = statusPageCSP
        headers[.cacheControl] = "no-store"
        headers[HTTPFields.Element.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPFields.Element.Name("Referrer-Policy")!] = "no-referrer"
        headers[HTTPFields.Element.Name("X-Frame-Options")!] = "DENY"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
