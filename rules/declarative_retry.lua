-- declarative_retry: retry_failed.lua in one send option. The engine resends a FAILED message
-- durably (by timers, across restarts) with exponential backoff and jitter, then escalates to
-- escalate_to (or raises message.exhausted).
--
-- Hook:  POST /hooks/invoice {"phone": "+628123123123", "text": "Invoice 7 is due", "invoice_id": "7"}
-- Event: message.exhausted: counted in state "exhausted" and logged.

rule { description = "declarative retry: retry = { max, backoff, base, jitter, escalate_to }" }

local ESCALATE_TO = "+628999000111"

on("hook.invoice", function(ev)
  local b = ev.body
  if type(b) ~= "table" or type(b.phone) ~= "string" or type(b.text) ~= "string" then
    log.warn("hook.invoice needs {phone, text, invoice_id}")
    return
  end
  local msg, err = sidobe.send {
    phone = b.phone, message = b.text,
    key = b.invoice_id and ("invoice:" .. tostring(b.invoice_id)) or nil,
    retry = { max = 3, backoff = "exp", base = "1m", jitter = true, escalate_to = ESCALATE_TO },
  }
  if not msg then log.error("invoice message not sent", { code = err.code }) end
end)

on("message.exhausted", function(ev)
  state.incr("exhausted")
  log.warn("invoice delivery exhausted its retries", { message_id = ev.message_id })
end)
