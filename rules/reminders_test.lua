-- Tests of reminders.lua. The virtual clock starts at 2026-01-01T00:00:00Z (07:00 in Jakarta).

local PHONE = "+628123123123"

test("a reminder is sent at its local time", function(t)
  t.hook("remind", { id = "r1", phone = PHONE, text = "Dentist at 10:00", at = "2026-01-01 09:00", tz = "Asia/Jakarta" })
  t.eq(#t.timers(), 1)
  t.eq(t.timers()[1].due, t.time("2026-01-01T09:00:00+07:00"))
  t.advance_to(t.time("2026-01-01T08:59:59+07:00"))
  t.eq(#t.sends(), 0)
  t.advance("1s")
  t.eq(#t.sends(), 1)
  t.match(t.sends()[1], { phone = PHONE, message = "Dentist at 10:00" })
end)

test("offsets and unix seconds work too", function(t)
  t.hook("remind", { id = "a", phone = PHONE, text = "a", at = "2026-01-01 10:00", tz = "+09:00" })
  t.hook("remind", { id = "b", phone = PHONE, text = "b", at = t.now() + 30 })
  t.eq(t.timers()[1].due, t.now() + 30)
  t.eq(t.timers()[2].due, t.time("2026-01-01T01:00:00Z"))
end)

test("registering an id again replaces the reminder", function(t)
  t.hook("remind", { id = "r1", phone = PHONE, text = "old", at = t.now() + 60 })
  t.hook("remind", { id = "r1", phone = PHONE, text = "new", at = t.now() + 120 })
  t.eq(#t.timers(), 1)
  t.advance("5m")
  t.eq(#t.sends(), 1)
  t.eq(t.sends()[1].message, "new")
end)

test("paced: at most 20 a minute, the rest in the next minute", function(t)
  for i = 1, 25 do
    t.hook("remind", { id = "r" .. i, phone = "+6281234500" .. string.format("%02d", i), text = "hi", at = t.now() + 60 })
  end
  t.advance("60s")
  t.eq(#t.sends(), 20)
  t.advance("60s")
  t.eq(#t.sends(), 25)
end)

test("re-sent once, 5 minutes after a FAILED delivery", function(t)
  t.sidobe.default { status = "FAILED" }
  t.hook("remind", { id = "r1", phone = PHONE, text = "hi", at = t.now() + 60 })
  t.advance("1m")
  t.eq(#t.sends(), 1)
  t.advance("5m")
  t.eq(#t.sends(), 2, "one re-send")
  t.advance("1h")
  t.eq(#t.sends(), 2, "not more")
  t.contains(t.logs(), { text = "reminder failed twice; giving up" })
end)

test("a reminder more than an hour late is dropped, not sent stale", function(t)
  t.hook("remind", { id = "r1", phone = PHONE, text = "hi", at = t.now() + 60 })
  t.restart { down = "2h" } -- the engine was down for two hours; the clock moved on
  t.advance("1s")
  t.eq(#t.sends(), 0)
  t.eq(#t.timers(), 0)
end)

test("a reminder less than an hour late is still sent", function(t)
  t.hook("remind", { id = "r1", phone = PHONE, text = "hi", at = t.now() + 60 })
  t.restart { down = "30m" }
  t.advance("1s")
  t.eq(#t.sends(), 1)
end)

test("a wall time in a zone with daylight saving is read with it", function(t)
  t.hook("remind", { id = "s", phone = PHONE, text = "summer", at = "2026-07-01 09:00", tz = "Europe/Berlin" })
  t.hook("remind", { id = "w", phone = PHONE, text = "winter", at = "2026-12-01 09:00", tz = "Europe/Berlin" })
  t.eq(t.timers()[1].due, t.time("2026-07-01T09:00:00+02:00"))
  t.eq(t.timers()[2].due, t.time("2026-12-01T09:00:00+01:00"))
end)

test("bad input is refused with a log line", function(t)
  t.hook("remind", { id = "r1", phone = PHONE, text = "hi", at = "tomorrow" })
  t.hook("remind", { id = "r2", phone = PHONE, text = "hi", at = "2026-01-01 09:00", tz = "Mars/Olympus" })
  t.eq(#t.timers(), 0)
  t.eq(#t.logs("reminders"), 2)
  t.contains(t.logs("reminders")[2].text, 'unknown time zone "Mars/Olympus"')
end)

test("the daily summary runs at 08:00 Jakarta time", function(t)
  t.hook("remind", { id = "r1", phone = PHONE, text = "hi", at = "2026-01-03 09:00", tz = "Asia/Jakarta" })
  t.advance_to(t.time("2026-01-01T08:00:00+07:00"))
  t.contains(t.logs(), { text = "reminders pending", fields = { count = "1" } })
end)
