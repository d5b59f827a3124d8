-- retry_failed: retry a FAILED delivery with exponential backoff, by hand (timers + the ledger),
-- then ask for an escalation.
--
-- Hook:  POST /hooks/order {"phone": "+628123123123", "text": "Order 42 has shipped", "order_id": "42", "async": false}
--        sends the text; with order_id the send is idempotent (key "order:<order_id>"), and an
--        optional "retry_base" (seconds, with order_id) replaces BASE_SECONDS for that order
--        (the demo uses 15).
-- Retry: when a message this rule sent FAILS, it is resent after 1m, 2m, 4m (MAX_RETRIES = 3);
--        when the last resend fails too, it emits
--        escalation.needed { phone, text, message_id, first_message_id, attempts, reason }.
-- State: "first:<message_id>" = the id of the first message of its retry chain (1 day TTL);
--        "base:<key>" = an order's own retry_base, "chain_base:<first id>" = the base of a chain (1 day TTL).

rule { description = "retry failed deliveries with exponential backoff, then escalate" }

local MAX_RETRIES = 3
local BASE_SECONDS = 60 -- the n-th resend waits BASE_SECONDS * 2^(n-1)

on("hook.order", function(ev)
  local body = ev.body
  if type(body) ~= "table" or type(body.phone) ~= "string" or type(body.text) ~= "string" then
    log.warn("hook.order needs a JSON body with phone and text", { body = json.encode(ev.body) })
    return
  end
  local key = body.order_id and ("order:" .. tostring(body.order_id)) or nil
  if key and tonumber(body.retry_base) then state.set("base:" .. key, tonumber(body.retry_base), 86400) end
  local msg, err = sidobe.send { phone = body.phone, message = body.text, key = key, async = body.async == true }
  if not msg then
    -- Refused before delivery (bad number, device problem, Sidobe down after the client's retries).
    log.error("order message not sent", { phone = body.phone, code = err.code, error = err.message })
  end
end)

on("message.failed", function(ev)
  local m = ev.message
  if not m or m.rule ~= "retry_failed" then return end -- only messages this rule sent
  -- The ledger knows the chain: attempt counts sends of the same content, resend_of links them.
  local first = ev.message_id
  if m.resend_of then first = state.get("first:" .. m.resend_of) or m.resend_of end
  state.set("first:" .. ev.message_id, first, 86400)
  local retries = m.attempt - 1
  if retries >= MAX_RETRIES then
    emit("escalation.needed", {
      phone = m.phone, text = m.message, message_id = ev.message_id, first_message_id = first,
      attempts = m.attempt, reason = "FAILED " .. m.attempt .. " times",
    })
    return
  end
  -- The order's key (and so its retry_base) is on the first message of the chain; resends carry none.
  local base
  if m.key then
    base = state.get("base:" .. m.key) or BASE_SECONDS
    state.set("chain_base:" .. first, base, 86400)
  else
    base = state.get("chain_base:" .. first) or BASE_SECONDS
  end
  local delay = base * (1 << retries) -- 60, 120, 240 by default: integer seconds
  timer.after(delay, "retry", { message_id = ev.message_id })
  log.info("delivery failed; resending later", { message_id = ev.message_id, in_seconds = delay })
end)

on("timer.retry", function(ev)
  local msg, err = sidobe.resend(ev.payload.message_id)
  if not msg then
    log.error("resend refused", { message_id = ev.payload.message_id, code = err.code })
  end
end)
