-- Tests of alert_page.lua (with escalate.lua for the escalation path).

local ON_CALL = "+628555000111"

local function alertmanager(status, fingerprint, name)
  return {
    status = status, receiver = "whatsapp",
    alerts = { {
      status = status, fingerprint = fingerprint, startsAt = "2026-01-01T00:00:00Z",
      labels = { alertname = name or "DiskFull", severity = "critical", instance = "db-1" },
      annotations = { summary = "disk 95% full on db-1" },
    } },
  }
end

test("a firing alert pages the on-call number", function(t)
  t.hook("alertmanager", alertmanager("firing", "3f2a"))
  t.eq(#t.sends(), 1)
  t.match(t.sends()[1], { phone = ON_CALL, message = "[CRITICAL] DiskFull: disk 95% full on db-1" })
end)

test("deduplicated by fingerprint until resolved", function(t)
  t.hook("alertmanager", alertmanager("firing", "3f2a"))
  t.hook("alertmanager", alertmanager("firing", "3f2a")) -- Alertmanager repeats
  t.hook("alertmanager", alertmanager("firing", "77bb", "HighLatency"))
  t.eq(#t.sends(), 2)
  t.hook("alertmanager", alertmanager("resolved", "3f2a"))
  t.hook("alertmanager", alertmanager("firing", "3f2a"))
  t.eq(#t.sends(), 3, "fires again after it resolved")
end)

test("pages again after 4 hours if still firing", function(t)
  t.hook("alertmanager", alertmanager("firing", "3f2a"))
  t.advance("4h")
  t.hook("alertmanager", alertmanager("firing", "3f2a"))
  t.eq(#t.sends(), 2)
end)

test("the on-call number is set by a hook", function(t)
  t.hook("oncall", { phone = "+628666000222" })
  t.hook("alertmanager", alertmanager("firing", "3f2a"))
  t.eq(t.sends()[1].phone, "+628666000222")
end)

test("a FAILED page is escalated to the on-call's second number", function(t)
  t.load("alert_page", "escalate")
  t.hook("second_number", { phone = ON_CALL, second = "+628555000999" })
  t.sidobe.answer { status = "FAILED" }
  t.hook("alertmanager", alertmanager("firing", "3f2a"))
  t.eq(#t.sends(), 2)
  t.match(t.sends()[2], { phone = "+628555000999" })
  t.contains(t.sends()[2].message, "(page FAILED)")
  t.advance("10m")
  t.eq(#t.sends(), 2, "escalated once, not again by the delivery check")
end)

test("a page still PENDING after 5 minutes is escalated", function(t)
  t.load("alert_page", "escalate")
  t.hook("second_number", { phone = ON_CALL, second = "+628555000999" })
  t.sidobe.answer { status = "PENDING" }
  t.hook("alertmanager", alertmanager("firing", "3f2a"))
  t.advance("4m59s")
  t.eq(#t.sends(), 1)
  t.advance("1s")
  t.eq(#t.sends(), 2)
  t.contains(t.sends()[2].message, "not delivered within 5m")
end)

test("a page delivered late but within 5 minutes is not escalated", function(t)
  t.sidobe.answer { status = "PENDING" }
  t.hook("alertmanager", alertmanager("firing", "3f2a"))
  t.advance("3m")
  t.webhook { status = "SUCCESS" }
  t.advance("10m")
  t.eq(#t.sends(), 1)
end)

test("a payload that is not Alertmanager's is logged and ignored", function(t)
  t.hook("alertmanager", "not json")
  t.eq(#t.sends(), 0)
  t.contains(t.logs("alert_page"), { level = "warn" })
end)
