-- escalate: on escalation.needed, send to the second number configured for the recipient,
-- quoting the original message.
--
-- Event: escalation.needed { phone, text, message_id, reason } (emitted by retry_failed and alert_page).
-- Hook:  POST /hooks/second_number {"phone": "+628123123123", "second": "+628777000111"}
--        sets the recipient's second number (without "second": removes it).
-- State: "second:<phone>" = the second number (overrides SECOND below); "unroutable" counts
--        escalations for recipients without a second number.

rule { description = "escalate undeliverable messages to the recipient's second number" }

-- Second numbers known without the hook.
local SECOND = {
  ["+628123123123"] = "+628777000111",
}

on("hook.second_number", function(ev)
  local body = ev.body
  if type(body) ~= "table" or type(body.phone) ~= "string" then
    log.warn("hook.second_number needs {phone, second}")
    return
  end
  state.set("second:" .. body.phone, body.second) -- nil deletes
end)

local function quote(text)
  return "> " .. tostring(text or ""):gsub("\n", "\n> ")
end

on("escalation.needed", function(ev)
  local p = ev.payload or {}
  if type(p.phone) ~= "string" then return end
  local second = state.get("second:" .. p.phone) or SECOND[p.phone]
  if not second then
    log.warn("no second number to escalate to", { phone = p.phone, from = ev.from_rule })
    state.incr("unroutable")
    return
  end
  local text = string.format("Could not reach %s (%s). Original message:\n%s",
    p.phone, p.reason or "not delivered", quote(p.text))
  -- One escalation per message, even if the event is delivered twice (at-least-once).
  local msg, err = sidobe.send { phone = second, message = text, key = "escalate:" .. (p.message_id or p.phone) }
  if not msg then
    log.error("escalation not sent", { to = second, code = err.code })
  end
end)
