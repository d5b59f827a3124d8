-- Tests of declarative_retry.lua: the engine's retry = {...} send option (DESIGN §3).
-- Jitter makes the exact times vary, so the tests advance generously.

local PHONE = "+628123123123"
local ESCALATE_TO = "+628999000111"

local function sends_to(t, phone)
  local n = 0
  for _, s in ipairs(t.sends()) do if s.phone == phone then n = n + 1 end end
  return n
end

test("a delivered invoice is not retried", function(t)
  t.hook("invoice", { phone = PHONE, text = "Invoice 7 is due", invoice_id = "7" })
  t.advance("1h")
  t.eq(#t.sends(), 1)
end)

test("one FAILED delivery is resent once", function(t)
  t.sidobe.answer { status = "FAILED" }
  t.hook("invoice", { phone = PHONE, text = "Invoice 7 is due", invoice_id = "7" })
  t.advance("1h")
  t.eq(sends_to(t, PHONE), 2)
  t.eq(sends_to(t, ESCALATE_TO), 0)
end)

test("after max = 3 resends, it escalates to escalate_to", function(t)
  t.sidobe.default { status = "FAILED" }
  t.hook("invoice", { phone = PHONE, text = "Invoice 7 is due", invoice_id = "7" })
  t.advance("2h")
  t.eq(sends_to(t, PHONE), 4, "the first send and 3 resends")
  t.ok(sends_to(t, ESCALATE_TO) >= 1, "escalated")
  t.dead_letters() -- an exhausted send may be kept as a dead letter: expected here
end)

test("the retry is durable across a crash", function(t)
  t.sidobe.answer { status = "FAILED" }
  t.hook("invoice", { phone = PHONE, text = "Invoice 7 is due", invoice_id = "7" })
  t.restart()
  t.advance("1h")
  t.eq(sends_to(t, PHONE), 2)
end)
