//! The times operators type: `--until` of `offhours hold`.

use chrono::{DateTime, Duration, SecondsFormat, SubsecRound, Utc};

/// The longest hold: a longer exclusion is `menotime:offhours=skip`, set on purpose,
/// not a typo in a year.
pub const MAX_HOLD_DAYS: i64 = 30;

/// Reads `--until`: an RFC 3339 time with its offset (`2026-12-01T18:00:00Z`,
/// `2026-12-01T10:00:00-08:00`) or a duration from `now` (`+2h`, `+90m`, `+1d`,
/// `+1h30m`, units `d`, `h`, `m`). The result is in UTC, to the second, after `now`
/// and at most [`MAX_HOLD_DAYS`] ahead. The error is one sentence saying what is
/// accepted.
pub fn parse_until(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    let at = match s.strip_prefix('+') {
        Some(rel) => now + relative(rel).ok_or_else(|| malformed(s))?,
        None => DateTime::parse_from_rfc3339(s)
            .map_err(|_| malformed(s))?
            .with_timezone(&Utc),
    }
    .trunc_subsecs(0);
    if at <= now {
        return Err(format!(
            "--until {s} is not in the future (it is {} now)",
            utc(now)
        ));
    }
    if at > now + Duration::days(MAX_HOLD_DAYS) {
        return Err(format!(
            "--until {s} ({}) is more than {MAX_HOLD_DAYS} days ahead; to exclude the service for longer, tag it menotime:offhours=skip on purpose",
            utc(at)
        ));
    }
    Ok(at)
}

fn malformed(s: &str) -> String {
    format!(
        "--until {s:?} is not a time: give an RFC 3339 time with its offset (2026-12-01T18:00:00Z) or a duration from now (+2h, +90m, +1d, +1h30m)"
    )
}

/// `2h`, `90m`, `1d`, `1h30m`: at least one part, each unit at most once, in the
/// order d, h, m.
fn relative(s: &str) -> Option<Duration> {
    let mut total = Duration::zero();
    let mut rest = s;
    let mut last_unit = 0; // d=3, h=2, m=1: units must come in decreasing order
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 6 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let (rank, part) = match unit {
            'd' => (3, Duration::days(n)),
            'h' => (2, Duration::hours(n)),
            'm' => (1, Duration::minutes(n)),
            _ => return None,
        };
        if last_unit != 0 && rank >= last_unit {
            return None;
        }
        last_unit = rank;
        total += part;
        rest = &rest[digits + 1..];
    }
    (total > Duration::zero()).then_some(total)
}

/// `2026-12-01T18:00:00Z`: UTC, to the second, as the state tags keep times.
pub fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `in 1h 59m`, `2d 3h ago`: how far `t` is from `now`, for people.
pub fn from_now(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = t.signed_duration_since(now);
    let (future, d) = if d >= Duration::zero() {
        (true, d)
    } else {
        (false, -d)
    };
    let (days, hours, minutes) = (d.num_days(), d.num_hours() % 24, d.num_minutes() % 60);
    let span = if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m")
    } else {
        return "now".to_owned();
    };
    if future {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const NOW: &str = "2026-11-26T10:30:12.600Z";

    #[test]
    fn rfc3339_times_become_utc_to_the_second() {
        let now = t(NOW);
        assert_eq!(
            parse_until("2026-12-01T18:00:00Z", now).unwrap(),
            t("2026-12-01T18:00:00Z")
        );
        assert_eq!(
            parse_until("2026-11-26T10:00:00-08:00", now).unwrap(),
            t("2026-11-26T18:00:00Z")
        );
        assert_eq!(
            parse_until(" 2026-11-26T18:00:00.999+00:00 ", now).unwrap(),
            t("2026-11-26T18:00:00Z")
        );
    }

    #[test]
    fn relative_durations_count_from_now() {
        let now = t(NOW);
        assert_eq!(parse_until("+2h", now).unwrap(), t("2026-11-26T12:30:12Z"));
        assert_eq!(parse_until("+90m", now).unwrap(), t("2026-11-26T12:00:12Z"));
        assert_eq!(parse_until("+1d", now).unwrap(), t("2026-11-27T10:30:12Z"));
        assert_eq!(
            parse_until("+1h30m", now).unwrap(),
            t("2026-11-26T12:00:12Z")
        );
        assert_eq!(
            parse_until("+1d2h3m", now).unwrap(),
            t("2026-11-27T12:33:12Z")
        );
    }

    #[test]
    fn malformed_past_and_far_times_are_refused() {
        let now = t(NOW);
        for bad in [
            "",
            "+",
            "+2",
            "+h",
            "+2x",
            "+-2h",
            "+0h",
            "+30m2h",
            "+2h2h",
            "tomorrow",
            "18:00",
            "2026-12-01",
            "2026-12-01 18:00",
            "2026-12-01T18:00:00",
            "+9999999h",
        ] {
            let e = parse_until(bad, now).unwrap_err();
            assert!(e.contains("is not a time"), "{bad:?}: {e}");
        }
        let e = parse_until("2026-11-26T10:00:00Z", now).unwrap_err();
        assert!(e.contains("not in the future"), "{e}");
        let e = parse_until("2027-11-26T10:00:00Z", now).unwrap_err();
        assert!(e.contains("more than 30 days"), "{e}");
        assert!(parse_until("+30d", now).is_ok());
        assert!(parse_until("+31d", now).is_err());
    }

    #[test]
    fn distances_for_people() {
        let now = t("2026-11-26T10:00:00Z");
        assert_eq!(from_now(t("2026-11-26T11:59:00Z"), now), "in 1h 59m");
        assert_eq!(from_now(t("2026-11-24T07:00:00Z"), now), "2d 3h ago");
        assert_eq!(from_now(t("2026-11-26T10:05:00Z"), now), "in 5m");
        assert_eq!(from_now(now, now), "now");
        assert_eq!(utc(t(NOW)), "2026-11-26T10:30:12Z");
    }
}
