import Foundation

/// `sidobot types`: LuaLS annotations (`---@meta`) of the rule API and the test API, for an
/// editor's completion and checks. One entry per registered function, keyed by its name in the
/// sandbox (`sidobe.send`); `LuaTypesTests` fails when the sandbox has a function without one, or
/// an entry names a function the sandbox does not have.
public enum LuaTypes {
    /// The names of the standard library the sandbox keeps: LuaLS knows them already.
    static let standardLibrary: Set<String> = [
        "_G", "_VERSION", "assert", "collectgarbage", "coroutine", "error", "getmetatable", "ipairs", "load", "math", "next", "os",
        "pairs", "pcall", "rawequal", "rawget", "rawlen", "rawset", "select", "setmetatable", "string", "table", "tonumber",
        "tostring", "type", "utf8", "xpcall",
    ]

    /// The API's tables (declared before their functions).
    static let tables = ["sidobe", "timer", "state", "log", "json", "time", "phone"]

    /// Classes shared by the entries.
    static let classes = """
        ---@alias Duration number|string seconds, or text such as "30s", "5m", "2h", "1d", "1w"

        ---@class SidobeError
        ---@field code string API_VALIDATION_ERROR, INVALID_API_KEY, INVALID_REQUEST, INVALID_DEVICE_WHATSAPP, RATE_LIMITED, UNAVAILABLE, TIMEOUT, NOT_FOUND, UNEXPECTED_STATUS, BAD_RESPONSE, EXPIRED, IN_DOUBT or JOURNAL
        ---@field message string
        ---@field http_status? integer
        ---@field field? string
        ---@field may_have_been_delivered? boolean
        ---@field id? string the UNKNOWN message in the ledger when the send is in doubt

        ---@class SentMessage
        ---@field id string
        ---@field status "PENDING"|"SUCCESS"|"FAILED"|"DRY_RUN"|"UNKNOWN"
        ---@field message_type string
        ---@field is_async boolean
        ---@field attempt integer
        ---@field key? string

        ---@class RetryPolicy
        ---@field max? integer
        ---@field backoff? "exp"|"fixed"
        ---@field base? Duration
        ---@field jitter? boolean
        ---@field escalate_to? string

        ---@class SendOptions
        ---@field phone string E.164, +62...
        ---@field message? string
        ---@field async? boolean
        ---@field key? string dedupe key (across events and rules)
        ---@field retry? RetryPolicy

        ---@class PendingTimer
        ---@field id string
        ---@field name string
        ---@field payload any
        ---@field due number

        ---@class Event
        ---@field event_id string
        ---@field name? string
        ---@field message_id? string
        ---@field status? string
        ---@field message? table the ledger record, when this engine sent the message
        ---@field body? any a hook's body
        ---@field payload? any a timer's or a custom event's payload
        ---@field [string] any
        """

    /// Each registered function's annotation and declaration.
    static let entries: [String: String] = [
        "rule": "---Optional metadata of the rule (top level only).\n---@param meta { description?: string, cpu_limit?: Duration }\nfunction rule(meta) end",
        "on": "---Runs `handler(ev)` for each event of that name (top level only).\n---@param event string message.failed, message.success, timer.NAME, hook.NAME, ...\n---@param handler fun(ev: Event)\nfunction on(event, handler) end",
        "every": "---A schedule on multiples of `period` since 1970 UTC (top level only).\n---@param period Duration\n---@param handler fun(ev: Event)\n---@param options? { catch_up?: boolean }\nfunction every(period, handler, options) end",
        "cron": "---A 5-field cron schedule, read in `tz` (top level only).\n---@param expression string\n---@param handler fun(ev: Event)\n---@param options? { tz?: string, catch_up?: boolean }\nfunction cron(expression, handler, options) end",
        "emit": "---A custom event to every rule listening for `name`.\n---@param name string\n---@param payload? any\nfunction emit(name, payload) end",
        "now": "---Unix seconds (virtual under test).\n---@return number\nfunction now() end",
        "sidobe.send": "---@param options SendOptions\n---@return SentMessage|nil\n---@return SidobeError|nil\nfunction sidobe.send(options) end",
        "sidobe.send_image": "---@param options SendOptions|{ image_url: string }\n---@return SentMessage|nil\n---@return SidobeError|nil\nfunction sidobe.send_image(options) end",
        "sidobe.send_doc": "---@param options SendOptions|{ document_url: string, document_name: string }\n---@return SentMessage|nil\n---@return SidobeError|nil\nfunction sidobe.send_doc(options) end",
        "sidobe.resend": "---The same content again (attempt + 1), optionally to another number.\n---@param message_id string\n---@param options? { phone?: string, async?: boolean }\n---@return SentMessage|nil\n---@return SidobeError|nil\nfunction sidobe.resend(message_id, options) end",
        "sidobe.message": "---A message's status from Sidobe.\n---@param id string\n---@return { id: string, status: string, message_type: string, is_async: boolean, device: string }|nil\n---@return SidobeError|nil\nfunction sidobe.message(id) end",
        "sidobe.check_number": "---Whether the number is on WhatsApp.\n---@param phone string\n---@return boolean|nil\n---@return SidobeError|nil\nfunction sidobe.check_number(phone) end",
        "timer.after": "---Fires `timer.NAME` in this rule after `delay`; returns the timer id.\n---@param delay Duration\n---@param name string\n---@param payload? any\n---@param options? { late?: \"fire\"|\"skip\", max_lateness?: Duration }\n---@return string\nfunction timer.after(delay, name, payload, options) end",
        "timer.at": "---Fires `timer.NAME` in this rule at `unix_seconds`; returns the timer id.\n---@param unix_seconds number\n---@param name string\n---@param payload? any\n---@param options? { late?: \"fire\"|\"skip\", max_lateness?: Duration }\n---@return string\nfunction timer.at(unix_seconds, name, payload, options) end",
        "timer.cancel": "---@param id string\n---@return boolean cancelled true if it was pending\nfunction timer.cancel(id) end",
        "timer.pending": "---@param name? string\n---@return PendingTimer[]\nfunction timer.pending(name) end",
        "state.get": "---@param key string\n---@return any\nfunction state.get(key) end",
        "state.set": "---Sets (or with nil deletes) a key of this rule's durable store.\n---@param key string\n---@param value any\n---@param ttl? Duration\nfunction state.set(key, value, ttl) end",
        "state.del": "---@param key string\nfunction state.del(key) end",
        "state.incr": "---Adds `by` (default 1) and returns the new number; keeps the key's TTL.\n---@param key string\n---@param by? number\n---@return number\nfunction state.incr(key, by) end",
        "state.keys": "---@param prefix? string\n---@return string[]\nfunction state.keys(prefix) end",
        "log.debug": "---@param text string\n---@param fields? table<string, any>\nfunction log.debug(text, fields) end",
        "log.info": "---@param text string\n---@param fields? table<string, any>\nfunction log.info(text, fields) end",
        "log.warn": "---@param text string\n---@param fields? table<string, any>\nfunction log.warn(text, fields) end",
        "log.error": "---@param text string\n---@param fields? table<string, any>\nfunction log.error(text, fields) end",
        "time.localtime": "---Wall time of `unix` in zone `tz` (IANA), wday 1 = Sunday; `offset` in seconds east of UTC.\n---@param unix number\n---@param tz string\n---@return { year: integer, month: integer, day: integer, hour: integer, min: integer, sec: integer, wday: integer, offset: integer }\nfunction time.localtime(unix, tz) end",
        "time.at": "---Unix seconds of a wall time in zone `tz`, as cron reads it: a time a DST gap skips is the first instant after the gap, a time that occurs twice is the first.\n---@param tz string\n---@param fields { year: integer, month: integer, day: integer, hour?: integer, min?: integer, sec?: integer }\n---@return integer\nfunction time.at(tz, fields) end",
        "phone.normalize": "---E.164 from a number as people type it (`0812-3123-123` with \"62\" → `+628123123123`).\n---@param text string\n---@param default_country_code? string\n---@return string|nil phone\n---@return { code: \"INVALID_PHONE\", message: string }|nil err\nfunction phone.normalize(text, default_country_code) end",
        "sidobe.valid_phone": "---Whether Sidobe accepts `phone` (E.164: +, 8 to 15 digits, no leading 0), and why not.\n---@param phone string\n---@return boolean\n---@return string|nil why\nfunction sidobe.valid_phone(phone) end",
        "json.encode": "---@param value any\n---@return string\nfunction json.encode(value) end",
        "json.decode": "---@param text string\n---@return any value\n---@return string|nil err\nfunction json.decode(text) end",
    ]

    /// The test API (`NAME_test.lua`): `test` and the fields of `t`.
    static let testEntries: [String: String] = [
        "test": "---Declares a test: `fn(t)` runs with a fresh engine, clock, fake Sidobe and data folder.\n---@param name string\n---@param fn fun(t: SidobotTest)\nfunction test(name, fn) end",
        "load": "---@field load fun(...: string)", "rule": "---@field rule fun(name: string, source: string)", "restart": "---@field restart fun()",
        "webhook": "---@field webhook fun(webhook: { message_id?: string, status?: string, id?: string, message_type?: string }): string",
        "hook": "---@field hook fun(name: string, body?: any, content_type?: string): string", "emit": "---@field emit fun(name: string, payload?: any)",
        "advance": "---@field advance fun(d: Duration): number", "advance_to": "---@field advance_to fun(unix_seconds: number): number",
        "now": "---@field now fun(): number", "time": "---@field time fun(iso8601: string): number",
        "sends": "---@field sends fun(): table[]", "state": "---@field state fun(rule?: string): table", "timers": "---@field timers fun(rule?: string): table[]",
        "message": "---@field message fun(id: string): table|nil", "messages": "---@field messages fun(): table[]",
        "dead_letters": "---@field dead_letters fun(): table[]", "logs": "---@field logs fun(rule?: string): table[]",
        "eq": "---@field eq fun(actual: any, expected: any, message?: string)", "ok": "---@field ok fun(value: any, message?: string)",
        "contains": "---@field contains fun(haystack: any, needle: any, message?: string)", "match": "---@field match fun(actual: table, partial: table, message?: string)",
        "fail": "---@field fail fun(message: string)",
        "sidobe": "---@field sidobe { answer: fun(o: { status: string, times?: integer }), default: fun(o: { status: string }), fail_next: fun(o: { code: string, message?: string, http_status?: integer, times?: integer }), number: fun(o: { phone: string, registered?: boolean }) }",
    ]

    /// The whole `---@meta` file.
    public static var meta: String {
        var lines = ["---@meta sidobot", "-- Generated by `sidobot types`: the Sidobot rule API and test API for LuaLS (docs/RULES.md).", "", classes, ""]
        for table in tables { lines.append("\(table) = {}") }
        lines.append("")
        for key in entries.keys.sorted() { lines.append(entries[key]!); lines.append("") }
        lines.append("---@class SidobotTest")
        for key in testEntries.keys.sorted() where key != "test" { lines.append(testEntries[key]!) }
        lines.append("")
        lines.append(testEntries["test"]!)
        return lines.joined(separator: "\n") + "\n"
    }
}
