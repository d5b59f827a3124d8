-- Tests of escalate.lua (and of retry_failed + escalate together).

local PHONE = "+628123123123"

test("an escalation goes to the second number, quoting the original", function(t)
  t.emit("escalation.needed", { phone = PHONE, text = "Your code is 1234\nvalid 5 minutes", message_id = "m9", reason = "FAILED 4 times" })
  t.eq(#t.sends(), 1)
  t.eq(t.sends()[1].phone, "+628777000111")
  t.eq(t.sends()[1].message, "Could not reach +628123123123 (FAILED 4 times). Original message:\n> Your code is 1234\n> valid 5 minutes")
end)

test("the hook sets a second number, and escalations are sent once per message", function(t)
  t.hook("second_number", { phone = "+628100200300", second = "+628400500600" })
  t.eq(t.state()["second:+628100200300"], "+628400500600")
  t.emit("escalation.needed", { phone = "+628100200300", text = "x", message_id = "m1" })
  t.emit("escalation.needed", { phone = "+628100200300", text = "x", message_id = "m1" }) -- delivered twice
  t.eq(#t.sends(), 1)
  t.eq(t.sends()[1].phone, "+628400500600")
end)

test("no second number: nothing is sent, the escalation is counted", function(t)
  t.emit("escalation.needed", { phone = "+628100200399", text = "x" })
  t.eq(#t.sends(), 0)
  t.eq(t.state().unroutable, 1)
  t.contains(t.logs("escalate"), { level = "warn", text = "no second number to escalate to" })
end)

test("retry_failed and escalate together", function(t)
  t.load("retry_failed", "escalate")
  t.sidobe.default { status = "FAILED" }
  t.hook("order", { phone = PHONE, text = "Order 7 shipped" })
  t.advance("10m")
  local sends = t.sends()
  t.eq(#sends, 5, "4 attempts, then the escalation")
  t.eq(sends[5].phone, "+628777000111")
  t.contains(sends[5].message, "> Order 7 shipped")
end)
