-- alert_page: an Alertmanager (or Grafana) webhook becomes a WhatsApp page to the on-call number,
-- deduplicated by alert fingerprint, escalated if not delivered.
--
-- Hook:  POST /hooks/alertmanager  the Alertmanager/Grafana webhook payload:
--        {"status": "firing", "alerts": [{"status": "firing", "fingerprint": "3f2a...",
--          "labels": {"alertname": "DiskFull", "severity": "critical"},
--          "annotations": {"summary": "disk 95% full on db-1"}, "startsAt": "2026-01-01T00:00:00Z"}]}
-- Hook:  POST /hooks/oncall {"phone": "+628555000111"} sets the on-call number (default ON_CALL).
-- Paging: each firing alert pages once per fingerprint (again after REPAGE_AFTER if still open);
--        a resolved alert closes it. A page that FAILS, or is not delivered within CONFIRM_WITHIN,
--        emits escalation.needed { phone, text, message_id, reason } (escalate.lua routes it).
-- State: "open:<fp>", "delivered:<fp>", "escalated:<fp>", "pages:<fp>" (page count, in the send key), "oncall".

rule { description = "Alertmanager/Grafana alerts paged to on-call by WhatsApp, deduplicated, escalated" }

local ON_CALL = "+628555000111"
local REPAGE_AFTER = 4 * 3600
local CONFIRM_WITHIN = "5m"

on("hook.oncall", function(ev)
  if type(ev.body) == "table" and type(ev.body.phone) == "string" then state.set("oncall", ev.body.phone) end
end)

local function escalate(fp, phone, text, message_id, reason)
  if state.get("escalated:" .. fp) then return end
  state.set("escalated:" .. fp, true, REPAGE_AFTER)
  emit("escalation.needed", { phone = phone, text = text, message_id = message_id, reason = reason })
end

local function page(alert)
  local fp = alert.fingerprint
  if type(fp) ~= "string" or fp == "" then
    log.warn("alert without a fingerprint ignored")
    return
  end
  if state.get("open:" .. fp) then return end -- already paged
  state.set("open:" .. fp, { since = now() }, REPAGE_AFTER)
  state.del("delivered:" .. fp)
  state.del("escalated:" .. fp)
  local labels, notes = alert.labels or {}, alert.annotations or {}
  local text = string.format("[%s] %s: %s", string.upper(labels.severity or "alert"),
    labels.alertname or "alert", notes.summary or notes.description or "")
  local phone = state.get("oncall") or ON_CALL
  local msg, err = sidobe.send { phone = phone, message = text, key = "page:" .. fp .. ":" .. state.incr("pages:" .. fp) }
  if not msg then
    escalate(fp, phone, text, nil, "page not sent: " .. err.code)
    return
  end
  timer.after(CONFIRM_WITHIN, "page_check", { fp = fp, phone = phone, text = text, message_id = msg.id })
end

on("hook.alertmanager", function(ev)
  local body = ev.body
  if type(body) ~= "table" or type(body.alerts) ~= "table" then
    log.warn("hook.alertmanager: not an Alertmanager payload")
    return
  end
  for _, alert in ipairs(body.alerts) do
    local status = alert.status or body.status
    if status == "firing" then
      page(alert)
    elseif status == "resolved" and alert.fingerprint then
      state.del("open:" .. alert.fingerprint)
    end
  end
end)

local function fingerprint(ev)
  local m = ev.message
  if not m or m.rule ~= "alert_page" or not m.key then return nil end
  return m.key:match("^page:([^:]+):")
end

on("message.success", function(ev)
  local fp = fingerprint(ev)
  if fp then state.set("delivered:" .. fp, true, REPAGE_AFTER) end
end)

on("message.failed", function(ev)
  local fp = fingerprint(ev)
  if fp then escalate(fp, ev.message.phone, ev.message.message, ev.message_id, "page FAILED") end
end)

on("timer.page_check", function(ev)
  local p = ev.payload
  if state.get("delivered:" .. p.fp) then return end
  escalate(p.fp, p.phone, p.text, p.message_id, "page not delivered within " .. CONFIRM_WITHIN)
end)
