import LuaSandbox

/// The table a handler receives as `ev` (docs/RULES.md), one per event kind.
enum EventFields {
    static func fields(of event: EngineEvent, ledger: MessageLedger) -> [(String, LuaValue)] {
        switch event.kind {
        case .messageStatus(let m):
            var fields: [(String, LuaValue)] = [
                ("event_id", .string(event.id)), ("message_id", .string(m.messageID)), ("status", .string(m.status.rawValue)),
                ("message_type", .string(m.messageType.rawValue)), ("send_at", .string(m.sendAt)), ("created_at", .string(m.createdAt)),
            ]
            if let record = ledger[m.messageID] { fields.append(("message", record.luaValue)) }
            if m.stale { fields.append(("stale", .bool(true))) }
            return fields
        case .sidobe(let type, let data, let createdAt):
            return [("event_id", .string(event.id)), ("name", .string("sidobe." + type)), ("event", .string(type)), ("data", data),
                    ("created_at", .string(createdAt))]
        case .hook(let name, let body, let contentType):
            return [("event_id", .string(event.id)), ("name", .string(name)), ("body", body), ("content_type", .string(contentType))]
        case .timer(let timer):
            return [("timer_id", .string(timer.id.description)), ("name", .string(timer.name)), ("payload", timer.payload),
                    ("due", seconds(timer.due)), ("fired_at", seconds(event.at))]
        case .schedule(_, _, let scheduledAt):
            return [("scheduled_at", seconds(scheduledAt)), ("fired_at", seconds(event.at))]
        case .custom(let name, let payload, let fromRule):
            var fields: [(String, LuaValue)] = [("name", .string(name)), ("payload", payload), ("event_id", .string(event.id))]
            if name == "message.exhausted", case .object(let details) = payload {
                // Raised by the engine: its details are the event's own fields, like a message event's.
                for (key, value) in details.sorted(by: { $0.key < $1.key }) where !fields.contains(where: { $0.0 == key }) {
                    fields.append((key, value))
                }
            }
            if let fromRule { fields.append(("from_rule", .string(fromRule))) }
            return fields
        case .engineStart:
            return [("started_at", seconds(event.at))]
        }
    }

    /// Seconds since 1970 as rules see them: an integer when whole, else a float.
    static func seconds(_ time: UnixTime) -> LuaValue { time.luaSeconds }
}

extension UnixTime {
    /// Seconds since 1970 as rules see them (`now()`, `ev.due`): an integer when whole, else a float.
    public var luaSeconds: LuaValue {
        milliseconds % 1000 == 0 ? .integer(seconds) : .double(secondsValue)
    }
}
