import LuaSandbox
import Sidobe

/// `sidobe.send`, `send_image`, `send_doc`, `resend`, `message`, `check_number`: asynchronous, so
/// the handler's coroutine yields while the request is out and other events keep flowing.
/// Results are `msg` or `nil, err` (``SidobeModule/errorValue(_:)``); a call with bad arguments
/// raises a Lua error instead.
enum SidobeModule {
    /// The kind of `sidobe.send*` call.
    enum SendKind {
        case text, image, document

        var functionName: String {
            switch self {
            case .text: "sidobe.send"
            case .image: "sidobe.send_image"
            case .document: "sidobe.send_doc"
            }
        }
    }

    static func install(in state: LuaState, rule: String, sends: any SendHost, client: any SidobeAPI) throws(LuaError) {
        for (name, kind) in [("send", SendKind.text), ("send_image", .image), ("send_doc", .document)] {
            try state.registerAsync(name, in: "sidobe") { [weak sends] call in
                let (message, key, retry) = try outgoing(call.arguments, kind: kind)
                guard let sends else { throw LuaHostError("the engine is stopping") }
                return await sends.send(message, rule: rule, key: key, retry: retry, run: call.runTag)
            }
        }
        try state.registerAsync("resend", in: "sidobe") { [weak sends] call in
            let id = try call.arguments.string(at: 0)
            let options = try call.arguments.options(at: 1)
            var phone: String?
            if let other = options["phone"] {
                guard case .string(let text) = other else { throw LuaHostError("bad argument #2 to 'sidobe.resend' (phone must be a string)") }
                phone = text
            }
            guard let sends else { throw LuaHostError("the engine is stopping") }
            return await sends.resend(id, phone: phone, isAsync: options["async"]?.boolValue, rule: rule, run: call.runTag)
        }
        try state.registerAsync("message", in: "sidobe") { call in
            let id = try call.arguments.string(at: 0)
            do throws(SidobeError) {
                let detail = try await client.message(id: id)
                var fields: [String: LuaValue] = [
                    "id": .string(detail.id), "status": .string(detail.status.rawValue),
                    "message_type": .string(detail.messageType.rawValue), "is_async": .bool(detail.isAsync),
                ]
                if let device = detail.whatsappDevice {
                    fields["device"] = .object(["id": .string(device.id), "phone": .string(device.phone), "name": .string(device.name)])
                }
                return [.object(fields)]
            } catch {
                return [.null, errorValue(error)]
            }
        }
        try state.registerAsync("check_number", in: "sidobe") { call in
            let phone = try call.arguments.string(at: 0)
            do throws(SidobeError) {
                return [.bool(try await client.checkNumber(phone))]
            } catch {
                return [.null, errorValue(error)]
            }
        }
    }

    /// The message, idempotency key and retry policy of a `sidobe.send*` call.
    private static func outgoing(_ arguments: LuaArguments, kind: SendKind) throws -> (OutgoingMessage, String?, RetryPlan?) {
        let fields = try arguments.object(at: 0)
        func text(_ key: String, required: Bool = false) throws(LuaHostError) -> String? {
            switch fields[key] {
            case nil, .null?:
                if required { throw LuaHostError("bad argument #1 to '\(kind.functionName)' (field '\(key)' is required)") }
                return nil
            case .string(let s)?: return s
            case let other?: throw LuaHostError("bad argument #1 to '\(kind.functionName)' (field '\(key)' must be a string, got \(other.luaTypeName))")
            }
        }
        var retry: RetryPlan?
        if let plan = fields["retry"], !plan.isNull { retry = try RetryPlan(luaValue: plan, functionName: kind.functionName) }
        let phone = try text("phone", required: true) ?? ""
        let caption = try text("message")
        let isAsync = fields["async"]?.boolValue ?? false
        let key = try text("key")
        let content: OutgoingMessage.Content
        switch kind {
        case .text: content = .text(caption ?? "")
        case .image: content = .image(url: try text("image_url") ?? "", caption: caption)
        case .document: content = .document(url: try text("document_url") ?? "", name: try text("document_name") ?? "", caption: caption)
        }
        return (OutgoingMessage(phone: phone, content: content, isAsync: isAsync), key, retry)
    }

    /// The `err` table rules receive: `{ code, message, http_status, field, may_have_been_delivered }`.
    static func errorValue(_ error: SidobeError) -> LuaValue {
        var fields: [String: LuaValue] = ["code": .string(error.code), "message": .string(error.message)]
        if let status = error.httpStatus { fields["http_status"] = .integer(Int64(status)) }
        if case .invalidField(let field) = error { fields["field"] = .string(field.field) }
        if error.mayHaveBeenDelivered { fields["may_have_been_delivered"] = .bool(true) }
        return .object(fields)
    }

    /// An `err` table of the engine's own (`NOT_FOUND`, `EXPIRED`).
    static func errorValue(code: String, message: String) -> LuaValue {
        .object(["code": .string(code), "message": .string(message)])
    }
}
