-- Tests of retry_failed.lua: `sidobot test rules --filter retry_failed`

local PHONE = "+628123123123"

-- Listens for escalations, so tests can see what retry_failed emitted.
local SPY = [[
on("escalation.needed", function(ev) state.set("last", ev.payload); state.incr("count") end)
]]

test("a delivered order message is not retried", function(t)
  t.hook("order", { phone = PHONE, text = "Order 42 has shipped", order_id = "42" })
  t.eq(#t.sends(), 1)
  t.match(t.sends()[1], { phone = PHONE, message = "Order 42 has shipped", status = "SUCCESS" })
  t.advance("1h")
  t.eq(#t.sends(), 1, "nothing is resent after a SUCCESS")
end)

test("the same order id sends once (idempotency key)", function(t)
  t.hook("order", { phone = PHONE, text = "Order 42 has shipped", order_id = "42" })
  t.hook("order", { phone = PHONE, text = "Order 42 has shipped", order_id = "42" })
  t.eq(#t.sends(), 1)
end)

test("a FAILED delivery is resent after 1 minute", function(t)
  t.sidobe.answer { status = "FAILED" } -- the first send fails, the next ones succeed
  t.hook("order", { phone = PHONE, text = "hi" })
  t.eq(#t.timers(), 1, "a retry timer is set")
  t.eq(t.timers()[1].in_seconds, 60)
  t.advance("59s")
  t.eq(#t.sends(), 1, "not yet")
  t.advance("1s")
  t.eq(#t.sends(), 2)
  t.match(t.sends()[2], { phone = PHONE, message = "hi", status = "SUCCESS" })
  t.eq(t.message(t.sends()[2].id).attempt, 2)
end)

test("an async message that FAILED by webhook is retried the same way", function(t)
  t.hook("order", { phone = PHONE, text = "hi", async = true })
  t.eq(t.sends()[1].status, "PENDING")
  t.eq(t.webhook { message_id = t.sends()[1].id, status = "FAILED" }, "accepted")
  t.advance("1m")
  t.eq(#t.sends(), 2)
end)

test("backoff doubles: 1m, 2m, 4m, then escalation.needed", function(t)
  t.rule("spy", SPY)
  t.load("retry_failed", "spy")
  t.sidobe.default { status = "FAILED" } -- every send fails
  local start = t.now()
  t.hook("order", { phone = PHONE, text = "Your code is 1234" })
  t.advance("10m")
  local at = {}
  for i, s in ipairs(t.sends()) do at[i] = s.at - start end
  t.eq(at, { 0, 60, 180, 420 }, "send times (seconds after the first)")
  t.eq(t.state("spy").count, 1, "one escalation")
  t.match(t.state("spy").last, {
    phone = PHONE, text = "Your code is 1234", attempts = 4,
    first_message_id = t.sends()[1].id, message_id = t.sends()[4].id,
  })
  t.eq(#t.timers(), 0)
end)

test("a retry timer survives a crash", function(t)
  t.sidobe.answer { status = "FAILED" }
  t.hook("order", { phone = PHONE, text = "hi" })
  t.restart() -- a new engine over the same data folder, as after a crash
  t.eq(#t.timers(), 1)
  t.advance("1m")
  t.eq(#t.sends(), 2)
end)

test("a duplicate FAILED webhook does not retry twice", function(t)
  t.hook("order", { phone = PHONE, text = "hi", async = true })
  t.webhook { status = "FAILED", id = "wh-1" }
  t.eq(t.webhook { status = "FAILED", id = "wh-1" }, "duplicate")
  t.webhook { status = "FAILED", id = "wh-2" } -- same status again, new id: stale
  t.eq(#t.timers(), 1)
end)

test("messages of other rules are left alone", function(t)
  t.rule("other", [[ on("hook.other", function(ev) sidobe.send { phone = ev.body.phone, message = "x" } end) ]])
  t.load("retry_failed", "other")
  t.sidobe.answer { status = "FAILED" }
  t.hook("other", { phone = PHONE })
  t.eq(#t.timers(), 0)
end)

test("an order can bring its own retry base (the demo uses seconds)", function(t)
  t.sidobe.answer { status = "FAILED", times = 2 }
  t.hook("order", { phone = "+628111000111", text = "Order 9", order_id = "9", retry_base = 15 })
  t.eq(t.timers()[1].in_seconds, 15)
  t.advance("15s")
  t.eq(#t.sends(), 2)
  t.eq(t.timers()[1].in_seconds, 30, "doubles from the order's base")
end)
