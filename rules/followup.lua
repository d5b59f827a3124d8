-- followup: one follow-up message FOLLOWUP_AFTER after a conversation's first delivered message,
-- at most once per conversation key.
--
-- Hook:  POST /hooks/conversation {"phone": "+628123123123", "conversation": "order-42",
--                                  "text": "Thanks for your order!", "followup": "How did it go?", "id": "msg-1"}
--        sends text (key "conv:<conversation>:<id>"); "followup" is the follow-up text (optional);
--        "after" how long after the first SUCCESS to follow up (optional, default FOLLOWUP_AFTER;
--        the demo uses "20s").
-- Timer: "followup" fires that long after the first SUCCESS of the conversation.
-- State: "done:<conversation>" marks a conversation whose follow-up is scheduled (30 days TTL);
--        "text:<conversation>" its follow-up text.

rule { description = "a follow-up some hours after a delivered message, once per conversation" }

local FOLLOWUP_AFTER = "4h"
local DEFAULT_TEXT = "Just checking in: is everything all right?"
local KEEP = 30 * 86400

on("hook.conversation", function(ev)
  local b = ev.body
  if type(b) ~= "table" or type(b.phone) ~= "string" or type(b.conversation) ~= "string" then
    log.warn("hook.conversation needs {phone, conversation, text}")
    return
  end
  if b.followup then state.set("text:" .. b.conversation, b.followup, KEEP) end
  if b.after then state.set("after:" .. b.conversation, b.after, KEEP) end
  local msg, err = sidobe.send {
    phone = b.phone, message = b.text or "",
    key = "conv:" .. b.conversation .. ":" .. tostring(b.id or ev.event_id),
  }
  if not msg then log.error("conversation message not sent", { code = err.code }) end
end)

on("message.success", function(ev)
  local m = ev.message
  if not m or m.rule ~= "followup" or not m.key then return end
  -- The key carries the conversation: correlate with it, not with state written after the send.
  local conversation = m.key:match("^conv:(.*):[^:]*$")
  if not conversation or state.get("done:" .. conversation) then return end
  state.set("done:" .. conversation, true, KEEP)
  timer.after(state.get("after:" .. conversation) or FOLLOWUP_AFTER, "followup", { conversation = conversation, phone = m.phone })
end)

on("timer.followup", function(ev)
  local p = ev.payload
  local text = state.get("text:" .. p.conversation) or DEFAULT_TEXT
  local msg, err = sidobe.send { phone = p.phone, message = text, key = "followup:" .. p.conversation }
  if not msg then log.error("follow-up not sent", { code = err.code }) end
end)
