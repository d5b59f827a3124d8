import Foundation
@testable import SidobotRuleTesting
import Testing

/// `time.localtime`, `time.at`, `phone.normalize` and `sidobe.valid_phone`, as a rule calls them,
/// through `sidobot test`: across DST in Europe/Berlin and America/New_York, compared with the
/// engine's own cron fires on those days; and a table of phone inputs.
@Suite("rule helpers: time.localtime, time.at, phone.normalize")
struct TimeAndPhoneHelperTests {
    /// A rule that evaluates what a test sends it, and two crons at 02:30 (a time the spring
    /// DST change skips in both zones, and that occurs twice in New York in the autumn at 01:30).
    static let rule = """
        on("hook.eval", function(ev)
          local results = { pcall(load("return " .. ev.body.expr, "=expr", "t")) }
          state.set("ok", results[1])
          state.set("r", results[2])
          state.set("r2", results[3])
        end)
        cron("30 2 * * *", function(ev) state.set("berlin:" .. os.date("!%Y-%m-%d", ev.fired_at), ev.fired_at) end, { tz = "Europe/Berlin" })
        cron("30 1 * * *", function(ev) state.set("newyork:" .. os.date("!%Y-%m-%d", ev.fired_at), ev.fired_at) end, { tz = "America/New_York" })
        """

    static let tests = """
        local function eval(t, expr)
          t.hook("eval", { expr = expr })
          local s = t.state()
          if not s.ok then error("evaluating " .. expr .. ": " .. tostring(s.r), 2) end
          return s.r, s.r2
        end

        test("time.at and time.localtime around Berlin's DST changes, as cron fires", function(t)
          -- 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
          t.eq(eval(t, 'time.at("Europe/Berlin", { year = 2026, month = 3, day = 29, hour = 2, min = 30 })'), t.time("2026-03-29T03:00:00+02:00"))
          t.eq(eval(t, 'time.at("Europe/Berlin", { year = 2026, month = 3, day = 28, hour = 9 })'), t.time("2026-03-28T09:00:00+01:00"))
          t.eq(eval(t, 'time.at("Europe/Berlin", { year = 2026, month = 3, day = 30, hour = 9 })'), t.time("2026-03-30T09:00:00+02:00"))
          -- 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 occurs twice, the first is taken.
          t.eq(eval(t, 'time.at("Europe/Berlin", { year = 2026, month = 10, day = 25, hour = 2, min = 30 })'), t.time("2026-10-25T02:30:00+02:00"))
          t.match(eval(t, 'time.localtime(' .. t.time("2026-10-25T02:30:00+01:00") .. ', "Europe/Berlin")'),
                  { year = 2026, month = 10, day = 25, hour = 2, min = 30, sec = 0, wday = 1, offset = 3600 })
          t.match(eval(t, 'time.localtime(' .. t.time("2026-07-01T12:00:00Z") .. ', "Europe/Berlin")'), { hour = 14, offset = 7200, wday = 4 })
          -- The engine's cron at 02:30 Berlin on those days fired at the same instants.
          t.advance_to(t.time("2026-03-27T00:00:00Z"))
          t.advance_to(t.time("2026-03-31T00:00:00Z"))
          t.eq(t.state()["berlin:2026-03-29"], t.time("2026-03-29T03:00:00+02:00"))
          t.advance_to(t.time("2026-10-27T00:00:00Z"))
          t.eq(t.state()["berlin:2026-10-25"], eval(t, 'time.at("Europe/Berlin", { year = 2026, month = 10, day = 25, hour = 2, min = 30 })'))
        end)

        test("time.at and time.localtime around New York's DST changes, as cron fires", function(t)
          -- 2026-03-08: 02:00 EST becomes 03:00 EDT.
          t.eq(eval(t, 'time.at("America/New_York", { year = 2026, month = 3, day = 8, hour = 2, min = 30 })'), t.time("2026-03-08T03:00:00-04:00"))
          -- 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 occurs twice, the first (EDT) is taken.
          t.eq(eval(t, 'time.at("America/New_York", { year = 2026, month = 11, day = 1, hour = 1, min = 30 })'), t.time("2026-11-01T01:30:00-04:00"))
          t.match(eval(t, 'time.localtime(' .. t.time("2026-11-01T01:30:00-05:00") .. ', "America/New_York")'), { hour = 1, min = 30, offset = -18000 })
          t.advance_to(t.time("2026-10-30T00:00:00Z"))
          t.advance_to(t.time("2026-11-03T00:00:00Z"))
          t.eq(t.state()["newyork:2026-11-01"], t.time("2026-11-01T01:30:00-04:00"), "cron fires the first 01:30 only")
          t.eq(t.state()["newyork:2026-11-02"], t.time("2026-11-02T01:30:00-05:00"))
        end)

        test("time.at refuses what is not a date, and unknown zones", function(t)
          t.hook("eval", { expr = 'time.at("Mars/Olympus", { year = 2026, month = 1, day = 1 })' })
          t.eq(t.state().ok, false)
          t.contains(t.state().r, 'unknown time zone "Mars/Olympus"')
          t.hook("eval", { expr = 'time.at("UTC", { year = 2026, month = 2, day = 30 })' })
          t.contains(t.state().r, "2026-2 has no day 30")
        end)

        test("phone.normalize and sidobe.valid_phone", function(t)
          local cases = {
            { "0812-3123-123", "62", "+628123123123" },
            { "(0812) 3123 123", "62", "+628123123123" },
            { "+62 812 3123 123", nil, "+628123123123" },
            { "0062 812 3123 123", nil, "+628123123123" },
            { "628123123123", "62", "+628123123123" },
            { "8123123123", "62", "+628123123123" },
            { "030 1234567", "49", "+49301234567" },
            { "+1 (212) 555-0100", nil, "+12125550100" },
          }
          for _, c in ipairs(cases) do
            local phone, err = eval(t, string.format("phone.normalize(%q, %s)", c[1], c[2] and string.format("%q", c[2]) or "nil"))
            t.eq(phone, c[3], c[1])
            t.eq(err, nil, c[1])
          end
          local phone, err = eval(t, 'phone.normalize("0812 3123 123")')
          t.eq(phone, nil)
          t.match(err, { code = "INVALID_PHONE" })
          t.contains(err.message, "no country code")
          local _, bad = eval(t, 'phone.normalize("call me", "62")')
          t.contains(bad.message, "is not a phone number")
          local _, short = eval(t, 'phone.normalize("0812", "62")')
          t.contains(short.message, "8 to 15 digits")
          t.eq(eval(t, 'sidobe.valid_phone("+628123123123")'), true)
          local ok, why = eval(t, 'sidobe.valid_phone("08123123123")')
          t.eq(ok, false)
          t.contains(why, "E.164")
        end)
        """

    @Test func theHelpersBehaveAsDocumentedAndAgreeWithCron() async throws {
        let rules = try TempRules()
        try rules.write("clock.lua", Self.rule)
        try rules.write("clock_test.lua", Self.tests)
        let (summary, lines) = await runRuleTests(in: rules.folder)
        #expect(summary.failed == 0 && summary.passed == 4, "\(lines.text)")
    }
}
