import Foundation
import Hummingbird
import LuaSandbox
import SidobotEngine

extension SidobotHTTPServer {
    /// `/api/...` (docs/OPERATING.md), behind `Authorization: Bearer SIDOBOT_ADMIN_TOKEN`.
    func addAdminRoutes(to router: RouteTable) {
        router.get("/api/rules") { request, _ in
            await self.admin(request) { engine in
                Self.json(RulesBody(rules: await engine.ruleSummaries().map(RuleInfo.init),
                                    reload: ReloadStateInfo(last: await engine.lastRuleReload, failures: await engine.ruleLoadFailures())))
            }
        }
        router.post("/api/rules/reload") { request, _ in
            await self.admin(request) { engine in
                let report = await engine.reloadRules()
                self.logger.info("rules reloaded on request", metadata: ["reload": "\(report)"])
                return Self.json(ReloadBody(report), status: report.failed.isEmpty ? .ok : .unprocessableContent)
            }
        }
        router.get("/api/timers") { request, _ in
            await self.admin(request) { engine in
                Self.json(TimersBody(timers: await engine.pendingTimers().map(TimerInfo.init)))
            }
        }
        router.post("/api/messages/{id}/resolve") { request, context in
            let id = context.parameters.get("id") ?? ""
            let body = try? await request.body.collect(upTo: 4096)
            return await self.admin(request) { engine in
                let status = body.flatMap { try? JSONSerialization.jsonObject(with: Data(buffer: $0)) as? [String: Any] }?["status"] as? String
                guard let status, status == "SUCCESS" || status == "FAILED" else {
                    return Self.error(.badRequest, #"the body must be {"status":"SUCCESS"} (it was delivered) or {"status":"FAILED"} (it was not)"#)
                }
                do throws(ResolutionError) {
                    let record = try await engine.resolveInDoubt(id: id, delivered: status == "SUCCESS")
                    self.logger.info("message in doubt resolved on request", metadata: ["message": "\(id)", "status": "\(status)"])
                    return Self.json(MessageInfo(record))
                } catch .notFound {
                    return Self.error(.notFound, "no message '\(id)' in the ledger")
                } catch .notInDoubt(let current) {
                    return Self.error(.conflict, "message '\(id)' is not in doubt: it is \(current.rawValue), which only Sidobe's statuses move")
                } catch {
                    return Self.error(.internalServerError, "\(error)")
                }
            }
        }
        router.get("/api/messages/{id}") { request, context in
            let id = context.parameters.get("id") ?? ""
            return await self.admin(request) { engine in
                guard let record = await engine.message(id: id) else {
                    return Self.error(.notFound, "no message '\(id)' in the ledger")
                }
                return Self.json(MessageInfo(record))
            }
        }
        router.get("/api/state/{rule}") { request, context in
            let rule = context.parameters.get("rule") ?? ""
            return await self.admin(request) { engine in
                let values = await engine.stateOf(rule: rule)
                if values.isEmpty, await !engine.ruleSummaries().contains(where: { $0.name == rule }) {
                    return Self.error(.notFound, "no rule '\(rule)'")
                }
                return Self.json(JSONValue(.object(values)))
            }
        }
        router.get("/api/traces") { request, _ in
            await self.admin(request) { engine in
                switch Self.limit(of: request) {
                case .failure(let refusal): refusal
                case .success(let limit): Self.json(TracesBody(traces: await engine.recentTraces(limit: limit).map(TraceInfo.init)))
                }
            }
        }
        // Event ids may hold '/' (schedule ticks: `rule/handler@time`), so the id is the rest of the path.
        router.get("/api/traces/**") { request, context in
            let id = context.parameters.getCatchAll().joined(separator: "/")
            return await self.admin(request) { engine in
                let traces = await engine.traces(for: id)
                guard !traces.isEmpty else {
                    return Self.error(.notFound, "no trace for '\(id)' (an event id or a message id; traces are kept by age and size)")
                }
                return Self.json(TracesBody(traces: traces.map(TraceInfo.init)))
            }
        }
        router.get("/api/dead-letters") { request, _ in
            await self.admin(request) { engine in
                Self.json(DeadLettersBody(deadLetters: await engine.deadLetters().map(DeadLetterInfo.init)))
            }
        }
        router.post("/api/dead-letters/{id}/replay") { request, context in
            let id = context.parameters.get("id") ?? ""
            return await self.admin(request) { engine in
                do {
                    guard try await engine.replayDeadLetter(id: id) else {
                        return Self.error(.notFound, "no dead letter '\(id)'")
                    }
                } catch {
                    return Self.error(.internalServerError, "replay not journaled: \(error)")
                }
                self.logger.info("dead letter replayed", metadata: ["dead_letter": "\(id)"])
                return Self.json(["replayed": id], status: .accepted)
            }
        }
    }

    /// `?limit=N` of a listing: 1…1000, 50 when absent; anything else is refused with 400 (not
    /// silently replaced by the default).
    static func limit(of request: Request) -> ListingLimit {
        let values = request.uri.queryParameters.getAll("limit")
        guard let text = values.first else { return .success(50) }
        guard values.count == 1, let limit = Int(text), (1...1000).contains(limit) else {
            return .failure(error(.badRequest, "limit must be one whole number from 1 to 1000"))
        }
        return .success(limit)
    }

    enum ListingLimit {
        case success(Int)
        case failure(Response)
    }

    /// Runs an admin handler once the token checked out: as a bearer token, or also (`allowingBasic`,
    /// `/ui/plain` only) as the password of HTTP Basic, which a refusal then asks for.
    func admin(_ request: Request, allowingBasic: Bool = false, _ body: (Engine) async -> Response) async -> Response {
        switch token.check(authorization: request.headers[.authorization], allowingBasic: allowingBasic) {
        case .ok:
            guard state.isReady else { return Self.error(.serviceUnavailable, "starting: not ready yet") }
            return await body(engine)
        case .disabled:
            return Self.error(.forbidden, "the admin API is disabled: start sidobot with SIDOBOT_ADMIN_TOKEN set")
        case .missing, .wrong:
            logger.info(allowingBasic ? "admin request refused: bad or missing token" : "admin request refused: bad or missing bearer token",
                        metadata: ["path": "\(request.uri.path)"])
            if allowingBasic {
                return Self.error(.unauthorized, "the admin token is needed: as the password (any user name) or as Authorization: Bearer",
                                  headers: [.wwwAuthenticate: #"Basic realm="sidobot admin", charset="UTF-8""#])
            }
            return Self.error(.unauthorized, "missing or wrong Authorization: Bearer token", headers: [.wwwAuthenticate: "Bearer"])
        }
    }
}
