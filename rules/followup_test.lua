-- Tests of followup.lua.

local PHONE = "+628123123123"

test("a follow-up 4 hours after the first delivered message", function(t)
  t.hook("conversation", { phone = PHONE, conversation = "order-42", text = "Thanks!", followup = "How did it go?", id = "1" })
  t.advance("4h")
  t.eq(#t.sends(), 2)
  t.match(t.sends()[2], { phone = PHONE, message = "How did it go?" })
  t.eq(t.sends()[2].at - t.sends()[1].at, 4 * 3600)
end)

test("once per conversation key", function(t)
  t.hook("conversation", { phone = PHONE, conversation = "order-42", text = "one", id = "1" })
  t.advance("1h")
  t.hook("conversation", { phone = PHONE, conversation = "order-42", text = "two", id = "2" })
  t.hook("conversation", { phone = PHONE, conversation = "order-43", text = "other", id = "3" })
  t.advance("1d")
  local followups = 0
  for _, s in ipairs(t.sends()) do
    if s.message == "Just checking in: is everything all right?" then followups = followups + 1 end
  end
  t.eq(followups, 2, "one for order-42, one for order-43")
end)

test("no follow-up before a SUCCESS, nor after a FAILED", function(t)
  t.hook("conversation", { phone = PHONE, conversation = "c1", text = "hi", id = "1" })
  t.webhook { status = "SUCCESS" } -- stale: the sync send already was SUCCESS
  t.eq(#t.timers(), 1)
  t.sidobe.answer { status = "FAILED" }
  t.hook("conversation", { phone = PHONE, conversation = "c2", text = "hi", id = "1" })
  t.eq(#t.timers(), 1, "c2 failed: no follow-up")
end)

test("the scheduled follow-up survives a restart", function(t)
  t.hook("conversation", { phone = PHONE, conversation = "c1", text = "hi" })
  t.restart()
  t.advance("4h")
  t.eq(#t.sends(), 2)
end)

test("the hook can choose how long to wait (the demo uses seconds)", function(t)
  t.hook("conversation", { phone = PHONE, conversation = "demo", text = "hi", followup = "And?", after = "20s", id = "1" })
  t.advance("19s")
  t.eq(#t.sends(), 1)
  t.advance("1s")
  t.match(t.sends()[2], { phone = PHONE, message = "And?" })
end)
