import Foundation

/// Fire times of a cron expression in an IANA time zone.
///
/// ## The rule: each matching local wall-clock minute fires exactly once
///
/// A cron expression names local wall-clock minutes ("02:30 every day in Europe/Berlin").
/// Daylight-saving transitions make some wall times happen zero times or twice; the engine maps
/// every matching wall time to exactly one instant:
///
/// - **Exists once** (nearly always): at that instant.
/// - **Does not exist** (spring-forward gap): at the first instant after the gap, i.e. the
///   transition itself. Europe/Berlin 2026-03-29 `30 2 * * *` fires at 03:00 CEST = 01:00 UTC.
///   Several skipped minutes coalesce into that one run, together with the minute right after
///   the gap if it matches too: `*/15 * * * *` fires 01:45 CET, 03:00 CEST, 03:15 CEST: its
///   15-minute rhythm in real time is kept and nothing runs twice.
/// - **Exists twice** (fall-back overlap): at the first occurrence only. Europe/Berlin
///   2026-10-25 `30 2 * * *` fires at 02:30 CEST = 00:30 UTC, not again at 02:30 CET.
///   The same holds for `*`, stepped minutes and hours: `*/15 * * * *` fires 02:00, 02:15,
///   02:30, 02:45 CEST, then nothing during the repeated 02:00–02:59 CET, then 03:00 CET;
///   `0 * * * *` fires 02:00 CEST then 03:00 CET (two real hours apart).
///
/// Why one rule for all jobs (rather than cronie's "wildcard jobs follow real time" exception):
/// a cron rule sends WhatsApp messages tied to a local time; sending the 02:15 reminder twice is
/// a visible fault, while a pause of one night-time hour once a year is not. One rule is also
/// one thing for ops people to predict and for `sidobot check` to print. A rule that needs a
/// strict real-time rhythm through DST uses `every("15m", ...)`, which ignores wall clocks.
///
/// ## Instants and resolution
/// Instants are `UnixTime` (milliseconds); cron fire times are whole minutes of local time, so
/// whole seconds in UTC (whole minutes too, except in zones with odd historical offsets).
/// `nextFire(after:)` is strictly after its argument; `previousFire(atOrBefore:)` is at or before.
///
/// ## Cost
/// The search walks the calendar field by field (month, day, hour, minute bit masks), so the next
/// fire of `0 0 29 2 *` eight years away costs about a hundred cheap steps, not four million
/// minutes. Each candidate costs two `TimeZone` offset look-ups (more only near a transition).
extension CronExpression {
    /// The first fire time strictly after `instant`, in `zone`. Nil only if there is none in the
    /// next 400 years, which parse-time validation makes impossible for ordinary instants.
    public func nextFire(after instant: UnixTime, in zone: TimeZone) -> UnixTime? {
        let mapping = ZoneMapping(zone: zone)
        let after = instant.seconds
        // No wall time earlier than the current one can fire after `instant` (its first
        // occurrence, or the gap it fell into, is already past), so start at the current minute.
        var from = mapping.wall(at: after)
        while let wall = nextWallMinute(atOrAfter: from) {
            let fire = mapping.fireInstant(forWall: wall)
            if fire > after { return UnixTime(seconds: fire) }
            // In the repeated hour after a fall-back: this wall time already fired, the first time.
            from = wall + 60
        }
        return nil
    }

    /// The last fire time at or before `instant`, in `zone` (for catch-up after downtime).
    public func previousFire(atOrBefore instant: UnixTime, in zone: TimeZone) -> UnixTime? {
        let mapping = ZoneMapping(zone: zone)
        let atOrBefore = instant.seconds
        // After a fall-back, wall times up to one transition's worth ahead of the current one
        // have already had their first occurrence: start from the larger of the two offsets.
        let offset = max(
            mapping.offset(at: atOrBefore),
            mapping.offset(at: atOrBefore - ZoneMapping.window))
        var from = atOrBefore + offset
        while let wall = previousWallMinute(atOrBefore: from) {
            let fire = mapping.fireInstant(forWall: wall)
            if fire <= atOrBefore { return UnixTime(seconds: fire) }
            from = wall - 60
        }
        return nil
    }

    /// Fire times strictly after `start` and at or before `end`, oldest first, at most `limit`
    /// of them (catch-up counting; `sidobot check` printing the next three).
    public func fireTimes(after start: UnixTime, through end: UnixTime, in zone: TimeZone, limit: Int = 1000) -> [UnixTime] {
        var times: [UnixTime] = []
        var cursor = start
        while times.count < limit, let next = nextFire(after: cursor, in: zone), next <= end {
            times.append(next)
            cursor = next
        }
        return times
    }

    // MARK: Wall-clock search (no time zone involved)

    /// The first matching wall minute at or after `wall` (seconds of local wall time counted like
    /// Unix seconds), as wall seconds; nil if none within 400 years.
    func nextWallMinute(atOrAfter wall: Int64) -> Int64? {
        let startMinute = (wall + 59).floorDivided(by: 60)
        var date = CivilDate(days: startMinute.floorDivided(by: 1440))
        let minuteOfDay = Int(startMinute.floorModulo(1440))
        var hour = minuteOfDay / 60
        var minute = minuteOfDay % 60
        let lastYear = date.year + 401

        while date.year <= lastYear {
            if !months.hasBit(date.month) {
                if let next = months.nextBit(atOrAfter: date.month + 1) {
                    date.month = next
                } else {
                    date.year += 1
                    date.month = months.nextBit(atOrAfter: 1) ?? 1
                }
                date.day = 1; hour = 0; minute = 0
                continue
            }
            if date.day > CivilDate.daysInMonth(year: date.year, month: date.month) {
                date.month += 1
                if date.month > 12 { date.month = 1; date.year += 1 }
                date.day = 1; hour = 0; minute = 0
                continue
            }
            if !matchesDay(year: date.year, month: date.month, day: date.day) {
                date.day += 1; hour = 0; minute = 0
                continue
            }
            guard let nextHour = hours.nextBit(atOrAfter: hour) else {
                date.day += 1; hour = 0; minute = 0
                continue
            }
            if nextHour != hour { hour = nextHour; minute = 0 }
            guard let nextMinute = minutes.nextBit(atOrAfter: minute) else {
                hour += 1; minute = 0
                if hour > 23 { date.day += 1; hour = 0 }
                continue
            }
            return ((date.days * 24 + Int64(hour)) * 60 + Int64(nextMinute)) * 60
        }
        return nil
    }

    /// The last matching wall minute at or before `wall`; nil if none within 400 years.
    func previousWallMinute(atOrBefore wall: Int64) -> Int64? {
        let startMinute = wall.floorDivided(by: 60)
        var date = CivilDate(days: startMinute.floorDivided(by: 1440))
        let minuteOfDay = Int(startMinute.floorModulo(1440))
        var hour = minuteOfDay / 60
        var minute = minuteOfDay % 60
        let firstYear = date.year - 401

        while date.year >= firstYear {
            if date.day < 1 {
                date.month -= 1
                if date.month < 1 { date.month = 12; date.year -= 1 }
                date.day = CivilDate.daysInMonth(year: date.year, month: date.month)
                hour = 23; minute = 59
                continue
            }
            if !months.hasBit(date.month) {
                if let previous = months.previousBit(atOrBefore: date.month - 1) {
                    date.month = previous
                } else {
                    date.year -= 1
                    date.month = months.previousBit(atOrBefore: 12) ?? 12
                }
                date.day = CivilDate.daysInMonth(year: date.year, month: date.month)
                hour = 23; minute = 59
                continue
            }
            if !matchesDay(year: date.year, month: date.month, day: date.day) {
                date.day -= 1; hour = 23; minute = 59
                continue
            }
            guard let previousHour = hours.previousBit(atOrBefore: hour) else {
                date.day -= 1; hour = 23; minute = 59
                continue
            }
            if previousHour != hour { hour = previousHour; minute = 59 }
            guard let previousMinute = minutes.previousBit(atOrBefore: minute) else {
                hour -= 1; minute = 59
                if hour < 0 { date.day -= 1; hour = 23 }
                continue
            }
            return ((date.days * 24 + Int64(hour)) * 60 + Int64(previousMinute)) * 60
        }
        return nil
    }
}

/// Local wall time ↔ instant in one zone, with the engine's DST rules (see `CronExpression`).
///
/// Wall times are counted like Unix seconds ("seconds since 1970-01-01 00:00 local").
/// Assumption, true of every zone in the tz database since 1900 as far as cron is concerned:
/// at most one UTC-offset change within `window` of any instant. Offsets come from Foundation's
/// `TimeZone`, i.e. the system's IANA tz data.
struct ZoneMapping {
    let zone: TimeZone

    /// Covers every offset in the tz database (−12:00…+14:00, and historical local mean times)
    /// on both sides of a wall time.
    static let window: Int64 = 30 * 3600

    func offset(at instant: Int64) -> Int64 {
        zone.offsetSeconds(atUnixSeconds: instant)
    }

    func wall(at instant: Int64) -> Int64 {
        instant + offset(at: instant)
    }

    /// The one instant at which wall time `wall` fires: its only occurrence, the first of two,
    /// or, when a spring-forward gap skips it, the transition instant ending the gap.
    func fireInstant(forWall wall: Int64) -> Int64 {
        let before = offset(at: wall - ZoneMapping.window)
        let after = offset(at: wall + ZoneMapping.window)
        if before == after { return wall - before }

        // Find the transition: the first second whose offset differs from `before`.
        var low = wall - ZoneMapping.window   // offset == before
        var high = wall + ZoneMapping.window  // offset != before
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if offset(at: middle) == before { low = middle } else { high = middle }
        }
        let transition = high
        let first = wall - before
        if first < transition { return first }       // before the change (the first of two in an overlap)
        let second = wall - offset(at: transition)
        if second >= transition { return second }    // after the change
        return transition                            // in the gap: the first instant after it
    }
}
