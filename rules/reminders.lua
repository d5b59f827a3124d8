-- reminders: reminders registered through a hook, sent on time, paced, re-sent once if FAILED.
--
-- Hook:  POST /hooks/remind {"id": "r-1", "phone": "+628123123123", "text": "Dentist at 10:00",
--                            "at": "2026-01-02 09:00", "tz": "Asia/Jakarta"}
--        "at" is a local wall time "YYYY-MM-DD HH:MM" in "tz" (an IANA zone such as Asia/Jakarta
--        or Europe/Berlin, daylight saving included, or an offset like "+07:00"), or unix
--        seconds. Registering an id
--        again replaces the reminder.
-- Timers: "remind" at the due time (late = "skip", max_lateness = "1h": a reminder more than an
--        hour late, e.g. after a long outage, is dropped rather than sent stale);
--        "remind_retry" 5 minutes after a FAILED delivery (once).
-- Pacing: at most PER_MINUTE reminders per minute; the rest move to the next minute.
-- Cron:  every day at 08:00 Jakarta time, logs how many reminders are pending.
-- State: "r:<id>" = { phone, text, at, timer } (kept until 2 days after it is due);
--        "minute:<n>" = reminders sent in minute n (2 min TTL).

rule { description = "reminders registered through a hook, sent on time, paced, re-sent once" }

local PER_MINUTE = 20
-- "+07:00" as seconds east of UTC; nil for anything else.
local function fixed_offset(tz)
  local sign, h, m = tostring(tz):match("^([+-])(%d%d):(%d%d)$")
  if not sign then return nil end
  local seconds = tonumber(h) * 3600 + tonumber(m) * 60
  return sign == "-" and -seconds or seconds
end

-- Unix seconds of "YYYY-MM-DD HH:MM" in tz (an IANA zone, daylight saving included, or a fixed
-- offset), or of a number; nil, why when it cannot be read.
local function due_time(at, tz)
  if type(at) == "number" then return math.floor(at) end
  local y, mo, d, h, mi = tostring(at):match("^(%d%d%d%d)-(%d%d)-(%d%d)[ T](%d%d):(%d%d)$")
  if not y then return nil, "at must be \"YYYY-MM-DD HH:MM\" or unix seconds" end
  local fields = { year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = tonumber(h), min = tonumber(mi) }
  local offset = fixed_offset(tz)
  if offset then return time.at("UTC", fields) - offset end
  local ok, due = pcall(time.at, tz or "UTC", fields)
  if not ok then return nil, tostring(due) end -- an unknown zone, or a date that does not exist
  return due
end

on("hook.remind", function(ev)
  local b = ev.body
  if type(b) ~= "table" or type(b.id) ~= "string" or type(b.phone) ~= "string" or type(b.text) ~= "string" then
    log.warn("hook.remind needs {id, phone, text, at, tz}")
    return
  end
  local due, why = due_time(b.at, b.tz)
  if not due then
    log.warn("reminder refused: " .. why, { id = b.id })
    return
  end
  if due < now() - 3600 then
    log.warn("reminder refused: it was due more than an hour ago", { id = b.id })
    return
  end
  local old = state.get("r:" .. b.id)
  if old then timer.cancel(old.timer) end
  local id = timer.at(due, "remind", { id = b.id }, { late = "skip", max_lateness = "1h" })
  state.set("r:" .. b.id, { phone = b.phone, text = b.text, at = due, timer = id }, due - now() + 2 * 86400)
end)

local function send(id, attempt)
  local r = state.get("r:" .. id)
  if not r then return end -- replaced or expired
  local msg, err = sidobe.send { phone = r.phone, message = r.text, key = "remind:" .. id .. ":" .. attempt }
  if not msg then log.error("reminder not sent", { id = id, code = err.code }) end
end

on("timer.remind", function(ev)
  local minute = now() // 60
  local sent = (state.get("minute:" .. minute) or 0) + 1
  if sent > PER_MINUTE then
    timer.after(60 - now() % 60, "remind", ev.payload) -- next minute
    return
  end
  state.set("minute:" .. minute, sent, 120)
  send(ev.payload.id, 1)
end)

on("message.failed", function(ev)
  local m = ev.message
  if not m or m.rule ~= "reminders" or not m.key then return end
  local id, attempt = m.key:match("^remind:(.*):(%d+)$")
  if attempt == "1" then
    timer.after("5m", "remind_retry", { id = id })
  else
    log.warn("reminder failed twice; giving up", { id = id })
  end
end)

on("timer.remind_retry", function(ev)
  send(ev.payload.id, 2)
end)

cron("0 8 * * *", function()
  log.info("reminders pending", { count = #timer.pending("remind") })
end, { tz = "Asia/Jakarta" })
