//! The decisions of `offhours-scaler`: lower one ECS service for the night and restore
//! it exactly in the morning, as pure functions over plain snapshots of ECS and
//! Application Auto Scaling.
//!
//! The only state is the `menotime:offhours-snapshot` tag on the service (docs/reference.md §3):
//! scale-down writes what the service had before lowering it, scale-up restores that
//! and removes the tag. Because the tag is written *before* anything is lowered and
//! never overwritten, a run that dies half-way is finished by the next one, and a
//! second scale-down can never save the night capacity as if it were the day's.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

use super::service::{Rollout, Tagged};
use crate::tags;

/// Which of the scalable target's scaling activities are suspended (Application Auto
/// Scaling `SuspendedState`). Kept so that the morning gives back exactly what an
/// operator had set, e.g. scale-in suspended during an incident.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Suspended {
    /// `DynamicScalingInSuspended`
    pub dynamic_in: bool,
    /// `DynamicScalingOutSuspended`
    pub dynamic_out: bool,
    /// `ScheduledScalingSuspended`
    pub scheduled: bool,
}

impl Suspended {
    /// Nothing suspended: the autoscaler works normally.
    pub const NONE: Suspended = Suspended {
        dynamic_in: false,
        dynamic_out: false,
        scheduled: false,
    };

    pub fn is_none(&self) -> bool {
        *self == Self::NONE
    }

    /// `none`, or the suspended activities joined with `+` in the fixed order `in`,
    /// `out`, `scheduled` (e.g. `in+scheduled`). `+` is allowed in ECS tag values, a
    /// comma is not.
    pub fn render(&self) -> String {
        let flags: Vec<&str> = [
            (self.dynamic_in, "in"),
            (self.dynamic_out, "out"),
            (self.scheduled, "scheduled"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect();
        if flags.is_empty() {
            "none".to_owned()
        } else {
            flags.join("+")
        }
    }

    /// The inverse of [`Suspended::render`]; flags in any order, each at most once.
    pub fn parse(s: &str) -> Result<Suspended, String> {
        if s == "none" {
            return Ok(Self::NONE);
        }
        let mut out = Self::NONE;
        for flag in s.split('+') {
            let slot = match flag {
                "in" => &mut out.dynamic_in,
                "out" => &mut out.dynamic_out,
                "scheduled" => &mut out.scheduled,
                "" => return Err(format!("suspended=`{s}` has an empty flag")),
                other => {
                    return Err(format!(
                        "suspended=`{s}` has an unknown flag `{other}` (expected `none`, or \
                         `in`, `out`, `scheduled` joined with `+`)"
                    ))
                }
            };
            if *slot {
                return Err(format!("suspended=`{s}` names `{flag}` twice"));
            }
            *slot = true;
        }
        Ok(out)
    }
}

/// The service's Application Auto Scaling target (`ecs:service:DesiredCount`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalableTarget {
    pub min: i32,
    pub max: i32,
    pub suspended: Suspended,
}

/// What the scaler reads and writes: the scalable target, if the service has one, and
/// the service's desired count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// `None` for a service scaled by hand (dev): only the desired count exists.
    pub target: Option<ScalableTarget>,
    pub desired: i32,
}

/// `min=2 max=4 desired=2`, or `desired=1 (no scalable target)`; suspended activities,
/// if any, are added in parentheses. Used in notifications.
impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(t) => {
                write!(f, "min={} max={} desired={}", t.min, t.max, self.desired)?;
                if !t.suspended.is_none() {
                    write!(f, " (suspended: {})", t.suspended.render())?;
                }
                Ok(())
            }
            None => write!(f, "desired={} (no scalable target)", self.desired),
        }
    }
}

/// The scalable target as the snapshot recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedTarget {
    pub min: i32,
    pub max: i32,
    /// `None` when the tag does not say (an operator wrote `min=2 max=4 desired=2` by
    /// hand, as in docs/reference.md §3.5): scale-up then leaves the suspended state as it is.
    pub suspended: Option<Suspended>,
}

/// The capacity saved at scale-down, kept in the `menotime:offhours-snapshot` tag as
/// `min=2 max=4 desired=2 suspended=none saved=2026-01-05T20:00:00Z`, or `desired=1`
/// for a service without a scalable target.
///
/// A value that [`Snapshot::parse`] accepts (numbers not negative, `min <= max`)
/// renders back to an equal snapshot: `parse(render(s)) == s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub target: Option<SavedTarget>,
    pub desired: i32,
    /// When the scale-down saved it; optional, for the humans reading the tag.
    pub saved: Option<DateTime<Utc>>,
}

const SNAPSHOT_KEYS: &str = "min, max, desired, suspended, saved";

impl Snapshot {
    /// Everything of `current`, suspended state included. `saved` is left empty; the
    /// caller stamps it with [`Snapshot::saved_at`].
    pub fn of(current: &Capacity) -> Snapshot {
        Snapshot {
            target: current.target.map(|t| SavedTarget {
                min: t.min,
                max: t.max,
                suspended: Some(t.suspended),
            }),
            desired: current.desired,
            saved: None,
        }
    }

    pub fn saved_at(self, at: DateTime<Utc>) -> Snapshot {
        Snapshot {
            saved: Some(at),
            ..self
        }
    }

    /// The tag value. Only letters, digits, spaces and `= + - . :` occur, and it stays far
    /// below the 256 characters ECS allows.
    pub fn render(&self) -> String {
        let mut fields = Vec::with_capacity(5);
        if let Some(t) = &self.target {
            fields.push(format!("min={}", t.min));
            fields.push(format!("max={}", t.max));
        }
        fields.push(format!("desired={}", self.desired));
        if let Some(s) = self.target.and_then(|t| t.suspended) {
            fields.push(format!("suspended={}", s.render()));
        }
        if let Some(at) = self.saved {
            fields.push(format!(
                "saved={}",
                at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            ));
        }
        fields.join(" ")
    }

    /// Reads a tag value: `key=value` fields separated by spaces, in any order. `desired`
    /// is required; `min` and `max` go together; `suspended` needs them (there is nothing
    /// to suspend without a scalable target); `saved` is optional. Unknown keys, repeated
    /// keys, negative numbers and `min > max` are refused, because restoring a guess
    /// would be worse than asking a human. The error says what is wrong.
    pub fn parse(s: &str) -> Result<Snapshot, String> {
        let mut seen = BTreeSet::new();
        let (mut min, mut max, mut desired, mut suspended, mut saved) =
            (None, None, None, None, None);
        for field in s.split_whitespace() {
            let Some((key, value)) = field.split_once('=') else {
                return Err(format!(
                    "`{field}` is not a key=value field (keys: {SNAPSHOT_KEYS})"
                ));
            };
            if !seen.insert(key) {
                return Err(format!("`{key}` is given twice"));
            }
            match key {
                "min" => min = Some(count(key, value)?),
                "max" => max = Some(count(key, value)?),
                "desired" => desired = Some(count(key, value)?),
                "suspended" => suspended = Some(Suspended::parse(value)?),
                "saved" => {
                    saved = Some(
                        DateTime::parse_from_rfc3339(value)
                            .map_err(|e| format!("saved=`{value}` is not an RFC 3339 time ({e})"))?
                            .with_timezone(&Utc),
                    )
                }
                other => return Err(format!("unknown key `{other}` (keys: {SNAPSHOT_KEYS})")),
            }
        }
        let Some(desired) = desired else {
            return Err("`desired` is missing".to_owned());
        };
        let target = match (min, max) {
            (Some(min), Some(max)) if min > max => {
                return Err(format!("min={min} is greater than max={max}"))
            }
            (Some(min), Some(max)) => Some(SavedTarget {
                min,
                max,
                suspended,
            }),
            (Some(_), None) => return Err("`min` is given without `max`".to_owned()),
            (None, Some(_)) => return Err("`max` is given without `min`".to_owned()),
            (None, None) if suspended.is_some() => {
                return Err(
                    "`suspended` is given without `min` and `max` (a service without a \
                     scalable target has nothing to suspend)"
                        .to_owned(),
                )
            }
            (None, None) => None,
        };
        Ok(Snapshot {
            target,
            desired,
            saved,
        })
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// A task count: plain decimal digits. `i32::from_str` alone would also take `+2`.
fn count(key: &str, value: &str) -> Result<i32, String> {
    if value.is_empty() {
        return Err(format!("`{key}` has no value"));
    }
    if let Some(rest) = value.strip_prefix('-') {
        if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{key}={value} is negative"));
        }
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{key}=`{value}` is not a number"));
    }
    value
        .parse()
        .map_err(|_| format!("{key}={value} is too large"))
}

/// The night capacity: `OFFHOURS_MIN_CAPACITY` and `OFFHOURS_DESIRED_COUNT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    pub min_capacity: i32,
    pub desired_count: i32,
}

/// Why the scaler does nothing. Not an error: the notification says so and the
/// invocation succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The service carries `menotime:offhours=skip`.
    Excluded,
    /// The service carries `menotime:offhours=skip-until=<until>`, a hold that has not
    /// ended: it stays at full capacity.
    Held { until: DateTime<Utc> },
    /// The service is already at or below the night capacity.
    AlreadyDown,
    /// No snapshot: the service was not scaled down (or was already restored).
    NothingSaved,
    /// A `scale-down` that arrived during uptime (late, or redriven) without
    /// `"force": true`. `scheduled` is the input's `scheduledTime`.
    Stale { scheduled: Option<DateTime<Utc>> },
}

impl SkipReason {
    /// The key of `details.skip_reason` (docs/reference.md §4.7).
    pub fn key(&self) -> &'static str {
        match self {
            Self::Excluded => "excluded",
            Self::Held { .. } => "held",
            Self::AlreadyDown => "already_down",
            Self::NothingSaved => "nothing_saved",
            Self::Stale { .. } => "stale",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Excluded => f.write_str("the service is tagged menotime:offhours=skip"),
            Self::Held { until } => write!(
                f,
                "the service is held at full capacity until {} ({}={})",
                utc_second(*until),
                tags::OFFHOURS,
                OffhoursTag::SkipUntil(*until).render()
            ),
            Self::AlreadyDown => {
                f.write_str("the service is already at or below its off-hours capacity")
            }
            Self::NothingSaved => f.write_str(
                "no off-hours snapshot is saved on the service (not scaled down, or already restored)",
            ),
            Self::Stale { scheduled: Some(at) } => write!(
                f,
                "the scale-down scheduled for {} arrived during uptime, too late to lower the \
                 service (a late or redriven delivery); \"force\": true lowers it anyway",
                utc_second(*at)
            ),
            Self::Stale { scheduled: None } => f.write_str(
                "a scale-down arrived during uptime; \"force\": true lowers the service anyway",
            ),
        }
    }
}

/// `2026-12-01T18:00:00Z`: RFC 3339 in UTC, to the second unless the instant has a
/// fraction.
pub fn utc_second(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The value of the `menotime:offhours` tag, set by an operator (or by
/// `menotime-ops offhours hold`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffhoursTag {
    /// `skip`: the scaler leaves the service alone, except that a service excluded while
    /// scaled down is restored when its day begins, or by a scale-up.
    Skip,
    /// `skip-until=<UTC time>`: the service is held at full capacity until then (a
    /// service held while scaled down is restored at once); after it the hold means
    /// nothing and the scaler removes the tag.
    SkipUntil(DateTime<Utc>),
}

const OFFHOURS_VALUES: &str = "`skip` excludes the service; `skip-until=<UTC time>`, e.g. \
                               `skip-until=2026-12-01T18:00:00Z`, holds it at full capacity \
                               until then";

impl OffhoursTag {
    /// `skip`, or `skip-until=<RFC 3339 time>` (an offset other than `Z` is read as
    /// the same instant); the words in any case, spaces around them ignored. Anything
    /// else is refused with what the scaler accepts.
    pub fn parse(s: &str) -> Result<OffhoursTag, String> {
        let v = s.trim();
        if v.eq_ignore_ascii_case("skip") {
            return Ok(OffhoursTag::Skip);
        }
        match v.split_once('=') {
            Some((key, time)) if key.trim().eq_ignore_ascii_case("skip-until") => {
                let time = time.trim();
                DateTime::parse_from_rfc3339(time)
                    .map(|t| OffhoursTag::SkipUntil(t.with_timezone(&Utc)))
                    .map_err(|e| {
                        format!(
                            "`{time}` in `{v}` is not an RFC 3339 time such as \
                             2026-12-01T18:00:00Z ({e})"
                        )
                    })
            }
            _ => Err(format!(
                "`{v}` is not a value the scaler knows: {OFFHOURS_VALUES}"
            )),
        }
    }

    /// The tag value: `skip`, or `skip-until=2026-12-01T18:00:00Z` (UTC).
    /// `parse(render(t)) == t`.
    pub fn render(&self) -> String {
        match self {
            OffhoursTag::Skip => "skip".to_owned(),
            OffhoursTag::SkipUntil(t) => format!("skip-until={}", utc_second(*t)),
        }
    }
}

impl fmt::Display for OffhoursTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// What the `menotime:offhours` tag means at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exclusion {
    /// No tag: the window decides.
    None,
    /// `skip`.
    Skip,
    /// A hold that has not ended: full capacity until `until`.
    Held { until: DateTime<Utc> },
    /// A hold that has ended: it means nothing, and the tag is removed.
    Expired { until: DateTime<Utc> },
    /// A value that cannot be read. The scaler never lowers the service while it is
    /// there (it may be a hold written wrong); restoring at day is still done.
    Unreadable { value: String, problem: String },
}

impl Exclusion {
    /// The tag as read, at `at`: a hold holds while `at` is before its time.
    pub fn at(tag: Option<&Tagged<OffhoursTag>>, at: DateTime<Utc>) -> Exclusion {
        match tag {
            None => Exclusion::None,
            Some(Tagged::Read(OffhoursTag::Skip)) => Exclusion::Skip,
            Some(Tagged::Read(OffhoursTag::SkipUntil(until))) if at < *until => {
                Exclusion::Held { until: *until }
            }
            Some(Tagged::Read(OffhoursTag::SkipUntil(until))) => {
                Exclusion::Expired { until: *until }
            }
            Some(Tagged::Unreadable { value, problem }) => Exclusion::Unreadable {
                value: value.clone(),
                problem: problem.clone(),
            },
        }
    }

    /// The end of a hold that has ended (its tag is to be removed).
    pub fn expired(&self) -> Option<DateTime<Utc>> {
        match self {
            Exclusion::Expired { until } => Some(*until),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownPlan {
    Skip(SkipReason),
    /// A deployment is rolling out: lowering capacity under it would fight it. Nothing
    /// is changed; the scale-down is retried later.
    Postpone(Rollout),
    /// A tag cannot be read (`tag`: the snapshot, or the `menotime:offhours` tag that
    /// may be a hold written wrong): nothing is changed until a human fixes it.
    Hold {
        tag: &'static str,
        problem: String,
    },
    /// Write `save` to the snapshot tag first, if given (tag it with
    /// [`Snapshot::saved_at`] now), then lower the service to `to`. `save` is `None`
    /// when a snapshot is already there: it is never overwritten.
    Lower {
        save: Option<Snapshot>,
        to: Capacity,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpPlan {
    Skip(SkipReason),
    /// The snapshot tag cannot be read: nothing is changed until a human fixes it.
    Hold {
        tag: &'static str,
        problem: String,
    },
    /// Set the service to `to`, then remove the snapshot tag. `snapshot` is what was
    /// read from the tag; `notes` say what could not be restored as saved, for the
    /// notification.
    Restore {
        to: Capacity,
        snapshot: Snapshot,
        notes: Vec<String>,
    },
}

/// Why a snapshot that cannot be read stops the scaler, and what to do.
fn unreadable(value: &str, problem: &str, advice: &str) -> String {
    format!(
        "the service's tag {} has the value `{value}`, which cannot be read: {problem}. \
         The tag was left as it is and nothing was changed. {advice}",
        tags::OFFHOURS_SNAPSHOT
    )
}

/// Why an off-hours tag that cannot be read keeps the scaler from lowering the
/// service, and what to do.
pub fn unreadable_exclusion(value: &str, problem: &str) -> String {
    format!(
        "the service's tag {key} has the value `{value}`, which cannot be read: {problem}. \
         It may be a hold written wrong, so the scaler does not lower the service while it \
         is there (restoring it for the day is still done). Write `skip` or \
         `skip-until=<UTC time>`, or remove the tag (aws ecs untag-resource --resource-arn \
         <service ARN> --tag-keys {key})",
        key = tags::OFFHOURS
    )
}

/// Decide the night's scale-down.
///
/// `snapshot` is the `menotime:offhours-snapshot` tag as read, `exclusion` what the
/// `menotime:offhours` tag means now ([`Exclusion::at`]); `rollout` a deployment still
/// rolling out ([`ServiceState::rollout`](super::service::ServiceState::rollout));
/// `floor` the fewest tasks the environment may run (1 in prod), which raises targets
/// configured below it.
///
/// Rules, in order: an excluded or held service is skipped; an off-hours tag that
/// cannot be read holds it for a human (it may be a hold written wrong); a rollout
/// postpones it (lowering capacity under a deployment would fight it; it is tried
/// again later); an unreadable snapshot holds it for a human; a snapshot already present is kept (an earlier run
/// saved it and may have died before lowering: only the lowering is done); and a
/// service that would not change is skipped without saving anything, since there is
/// nothing to restore.
pub fn plan_down(
    current: &Capacity,
    snapshot: Option<&Tagged<Snapshot>>,
    exclusion: &Exclusion,
    rollout: Option<Rollout>,
    targets: Targets,
    floor: i32,
) -> DownPlan {
    match exclusion {
        Exclusion::Skip => return DownPlan::Skip(SkipReason::Excluded),
        Exclusion::Held { until } => return DownPlan::Skip(SkipReason::Held { until: *until }),
        Exclusion::Unreadable { value, problem } => {
            return DownPlan::Hold {
                tag: tags::OFFHOURS,
                problem: unreadable_exclusion(value, problem),
            }
        }
        Exclusion::None | Exclusion::Expired { .. } => {}
    }
    if let Some(rollout) = rollout {
        return DownPlan::Postpone(rollout);
    }
    let save = match snapshot {
        Some(Tagged::Unreadable { value, problem }) => {
            return DownPlan::Hold {
                tag: tags::OFFHOURS_SNAPSHOT,
                problem: unreadable(
                    value,
                    problem,
                    &format!(
                        "Fix it to the capacity the morning should restore (e.g. `min=2 max=4 \
                         desired=2`), or remove it (aws ecs untag-resource --resource-arn \
                         <service ARN> --tag-keys {}) if the service is at its daytime capacity",
                        tags::OFFHOURS_SNAPSHOT
                    ),
                ),
            }
        }
        Some(Tagged::Read(_)) => None,
        None => Some(Snapshot::of(current)),
    };
    let to = lowered(current, targets, floor);
    if to == *current {
        return DownPlan::Skip(SkipReason::AlreadyDown);
    }
    DownPlan::Lower { save, to }
}

/// At night, with a snapshot saved: finish a lowering that a run could not complete
/// (it saved the snapshot and died, or a call failed after it), and nothing else. A
/// scalable target whose minimum is still above the night's is lowered as
/// [`plan_down`] would; once the minimum is the night's, the desired count is the
/// autoscaler's to manage (a spike at night is absorbed up to the maximum, and reconcile
/// does not fight it). Without a scalable target nothing else lowers the count, so it is
/// lowered. A rollout postpones it, as it does a scale-down.
pub fn plan_keep_down(
    current: &Capacity,
    rollout: Option<Rollout>,
    targets: Targets,
    floor: i32,
) -> DownPlan {
    let to = lowered(current, targets, floor);
    let unfinished = match (current.target, to.target) {
        (Some(now), Some(night)) => now.min > night.min,
        _ => current.desired > to.desired,
    };
    match (unfinished, rollout) {
        (false, _) => DownPlan::Skip(SkipReason::AlreadyDown),
        (true, Some(rollout)) => DownPlan::Postpone(rollout),
        (true, None) => DownPlan::Lower { save: None, to },
    }
}

/// The night capacity for `current`: nothing is ever raised. The minimum drops to the
/// night minimum; the maximum stays, so the autoscaler can still absorb a spike at
/// night; the suspended state stays; the desired count drops to the night count, but
/// not below the lowered minimum (Application Auto Scaling would raise it again).
fn lowered(current: &Capacity, targets: Targets, floor: i32) -> Capacity {
    let floor = floor.max(0);
    let night_min = targets.min_capacity.max(floor);
    let night_desired = targets.desired_count.max(floor);
    let target = current.target.map(|t| ScalableTarget {
        min: t.min.min(night_min),
        ..t
    });
    let desired = if current.desired > night_desired {
        let lowest = target.map_or(night_desired, |t| night_desired.max(t.min));
        lowest.min(current.desired)
    } else {
        current.desired
    };
    Capacity { target, desired }
}

/// Decide the morning's scale-up (or a restore that reconcile wants).
///
/// Without a snapshot there is nothing to restore, so a second scale-up is a no-op
/// (`Excluded` for a service tagged `skip`, else `NothingSaved`). An unreadable snapshot
/// holds it for a human. A snapshot is restored whatever the `menotime:offhours` tag
/// says: a service excluded or held while scaled down gets its day back, and `notes`
/// says why.
///
/// Otherwise min, max and the suspended state are restored as saved (the suspended
/// state as it is now, if the snapshot does not record it), and the desired count
/// becomes the larger of the saved and the current one, kept within [min, max]: the
/// morning never scales in a service the autoscaler grew at night, and never leaves it
/// below its daytime minimum. A scalable target that appeared or disappeared since the
/// night is reported in `notes`, and only what still fits is restored.
pub fn plan_up(
    current: &Capacity,
    snapshot: Option<&Tagged<Snapshot>>,
    exclusion: &Exclusion,
) -> UpPlan {
    let snapshot = match snapshot {
        None if *exclusion == Exclusion::Skip => return UpPlan::Skip(SkipReason::Excluded),
        None => return UpPlan::Skip(SkipReason::NothingSaved),
        Some(Tagged::Unreadable { value, problem }) => {
            return UpPlan::Hold {
                tag: tags::OFFHOURS_SNAPSHOT,
                problem: unreadable(
                    value,
                    problem,
                    &format!(
                        "Fix it to the daytime capacity (e.g. `min=2 max=4 desired=2`) and run the \
                         scale-up again, or restore the service by hand and remove the tag (aws ecs \
                         untag-resource --resource-arn <service ARN> --tag-keys {})",
                        tags::OFFHOURS_SNAPSHOT
                    ),
                ),
            }
        }
        Some(Tagged::Read(s)) => *s,
    };
    let wanted = snapshot.desired.max(current.desired);
    let mut notes = Vec::new();
    match exclusion {
        Exclusion::Skip => notes.push(format!(
            "The service is tagged {}=skip but was scaled down when it was excluded: it gets \
             its daytime capacity back (an excluded service is restored when its day begins, \
             or by a scale-up) and is then left alone",
            tags::OFFHOURS
        )),
        Exclusion::Held { until } => notes.push(format!(
            "Held at full capacity until {} ({}={})",
            utc_second(*until),
            tags::OFFHOURS,
            OffhoursTag::SkipUntil(*until).render()
        )),
        Exclusion::Unreadable { value, .. } => notes.push(format!(
            "The tag {}=`{value}` cannot be read; the service is restored all the same, and \
             never lowered while the tag is there",
            tags::OFFHOURS
        )),
        Exclusion::None | Exclusion::Expired { .. } => {}
    }
    let to = match (snapshot.target, current.target) {
        (Some(saved), Some(now)) => Capacity {
            target: Some(ScalableTarget {
                min: saved.min,
                max: saved.max,
                suspended: saved.suspended.unwrap_or(now.suspended),
            }),
            desired: within(wanted, saved.min, saved.max),
        },
        (Some(saved), None) => {
            notes.push(format!(
                "The snapshot records a scalable target (min={} max={}) but the service has \
                 none now: only the desired count was restored. Register the target again \
                 (aws application-autoscaling register-scalable-target) if it should \
                 autoscale",
                saved.min, saved.max
            ));
            // No target, so no maximum to keep to: only the day's minimum counts.
            Capacity {
                target: None,
                desired: wanted.max(saved.min),
            }
        }
        (None, Some(now)) => {
            notes.push(format!(
                "The snapshot records no scalable target but the service has one now \
                 (min={} max={}): it was left as it is and only the desired count was restored",
                now.min, now.max
            ));
            Capacity {
                target: Some(now),
                desired: within(wanted, now.min, now.max),
            }
        }
        (None, None) => Capacity {
            target: None,
            desired: wanted,
        },
    };
    UpPlan::Restore {
        to,
        snapshot,
        notes,
    }
}

/// `n` kept within [min, max] (`i32::clamp` panics when min > max; this does not).
fn within(n: i32, min: i32, max: i32) -> i32 {
    n.min(max).max(min)
}

/// Tasks the scale-down removed: the drop of the desired count, never negative.
pub fn tasks_removed(before: &Capacity, after: &Capacity) -> i32 {
    before.desired.saturating_sub(after.desired).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROD: Targets = Targets {
        min_capacity: 1,
        desired_count: 1,
    };
    const DEV: Targets = Targets {
        min_capacity: 0,
        desired_count: 0,
    };

    fn cap(min: i32, max: i32, desired: i32) -> Capacity {
        Capacity {
            target: Some(ScalableTarget {
                min,
                max,
                suspended: Suspended::NONE,
            }),
            desired,
        }
    }

    fn manual(desired: i32) -> Capacity {
        Capacity {
            target: None,
            desired,
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The tags as the service carries them, read as the adapter reads them.
    fn snap(v: Option<&str>) -> Option<Tagged<Snapshot>> {
        v.map(|v| match Snapshot::parse(v) {
            Ok(s) => Tagged::Read(s),
            Err(problem) => Tagged::Unreadable {
                value: v.to_owned(),
                problem,
            },
        })
    }

    /// The instant the tests decide at.
    const NOW: &str = "2026-01-05T20:00:00Z";

    fn excl(v: Option<&str>) -> Exclusion {
        let tag = v.map(|v| match OffhoursTag::parse(v) {
            Ok(t) => Tagged::Read(t),
            Err(problem) => Tagged::Unreadable {
                value: v.to_owned(),
                problem,
            },
        });
        Exclusion::at(tag.as_ref(), t(NOW))
    }

    /// [`super::plan_down`] over raw tag values; the plans that change nothing and
    /// need a later run or a human are `Err`.
    fn plan_down(
        current: &Capacity,
        snapshot: Option<&str>,
        exclude: Option<&str>,
        rollout: Option<Rollout>,
        targets: Targets,
        floor: i32,
    ) -> Result<DownPlan, DownPlan> {
        match super::plan_down(
            current,
            snap(snapshot).as_ref(),
            &excl(exclude),
            rollout,
            targets,
            floor,
        ) {
            p @ (DownPlan::Postpone(_) | DownPlan::Hold { .. }) => Err(p),
            p => Ok(p),
        }
    }

    fn plan_up(
        current: &Capacity,
        snapshot: Option<&str>,
        exclude: Option<&str>,
    ) -> Result<UpPlan, UpPlan> {
        match super::plan_up(current, snap(snapshot).as_ref(), &excl(exclude)) {
            p @ UpPlan::Hold { .. } => Err(p),
            p => Ok(p),
        }
    }

    fn down(current: &Capacity, snapshot: Option<&str>) -> DownPlan {
        plan_down(current, snapshot, None, None, PROD, 1).unwrap()
    }

    fn restore(plan: UpPlan) -> (Capacity, Vec<String>) {
        match plan {
            UpPlan::Restore { to, notes, .. } => (to, notes),
            other => panic!("expected Restore, got {other:?}"),
        }
    }

    fn all_suspended() -> Vec<Suspended> {
        let mut out = Vec::new();
        for dynamic_in in [false, true] {
            for dynamic_out in [false, true] {
                for scheduled in [false, true] {
                    out.push(Suspended {
                        dynamic_in,
                        dynamic_out,
                        scheduled,
                    });
                }
            }
        }
        out
    }

    // --- the snapshot tag ---------------------------------------------------------

    #[test]
    fn snapshot_renders_the_documented_format() {
        let s = Snapshot::of(&cap(2, 4, 2));
        assert_eq!(s.render(), "min=2 max=4 desired=2 suspended=none");
        assert_eq!(
            s.saved_at(t("2026-01-05T20:00:00Z")).to_string(),
            "min=2 max=4 desired=2 suspended=none saved=2026-01-05T20:00:00Z"
        );
        assert_eq!(Snapshot::of(&manual(1)).render(), "desired=1");
        let mut c = cap(2, 4, 3);
        c.target.as_mut().unwrap().suspended = Suspended {
            dynamic_in: true,
            dynamic_out: false,
            scheduled: true,
        };
        assert_eq!(
            Snapshot::of(&c).render(),
            "min=2 max=4 desired=3 suspended=in+scheduled"
        );
    }

    #[test]
    fn the_documented_example_parses_without_suspended() {
        assert_eq!(
            Snapshot::parse("min=2 max=4 desired=2"),
            Ok(Snapshot {
                target: Some(SavedTarget {
                    min: 2,
                    max: 4,
                    suspended: None
                }),
                desired: 2,
                saved: None,
            })
        );
        assert_eq!(
            Snapshot::parse("  desired=2\tmax=4   min=2 "),
            Snapshot::parse("min=2 max=4 desired=2")
        );
        assert_eq!(
            Snapshot::parse("desired=0"),
            Ok(Snapshot {
                target: None,
                desired: 0,
                saved: None
            })
        );
        assert_eq!(
            Snapshot::parse("suspended=scheduled+in desired=1 max=1 min=1")
                .unwrap()
                .target
                .unwrap()
                .suspended,
            Some(Suspended {
                dynamic_in: true,
                dynamic_out: false,
                scheduled: true
            })
        );
        // Any offset is accepted and kept as UTC.
        assert_eq!(
            Snapshot::parse("desired=1 saved=2026-01-05T21:00:00+01:00")
                .unwrap()
                .saved,
            Some(t("2026-01-05T20:00:00Z"))
        );
    }

    #[test]
    fn malformed_snapshots_are_refused_with_the_reason() {
        for (value, needle) in [
            ("", "`desired` is missing"),
            ("min=2 max=4", "`desired` is missing"),
            ("min=2 max=4 desired=2 color=red", "unknown key `color`"),
            ("MIN=2 max=4 desired=2", "unknown key `MIN`"),
            (
                "min=2 max=4 desired=2 desired=3",
                "`desired` is given twice",
            ),
            ("min=-1 max=4 desired=2", "min=-1 is negative"),
            ("min=2 max=4 desired=-2", "desired=-2 is negative"),
            ("min=5 max=4 desired=2", "min=5 is greater than max=4"),
            ("min=2 desired=2", "`min` is given without `max`"),
            ("max=2 desired=2", "`max` is given without `min`"),
            ("min=two max=4 desired=2", "min=`two` is not a number"),
            ("min=+2 max=4 desired=2", "min=`+2` is not a number"),
            ("min=2.0 max=4 desired=2", "min=`2.0` is not a number"),
            ("min=- max=4 desired=2", "min=`-` is not a number"),
            ("min= max=4 desired=2", "`min` has no value"),
            ("desired=99999999999", "desired=99999999999 is too large"),
            (
                "min=2 max=4 desired=2 junk",
                "`junk` is not a key=value field",
            ),
            ("{\"min\":2}", "is not a key=value field"),
            (
                "min=2,max=4,desired=2",
                "min=`2,max=4,desired=2` is not a number",
            ),
            (
                "desired=1 suspended=none",
                "`suspended` is given without `min` and `max`",
            ),
            ("min=1 max=1 desired=1 suspended=all", "unknown flag `all`"),
            ("min=1 max=1 desired=1 suspended=in+in", "names `in` twice"),
            ("min=1 max=1 desired=1 suspended=in+", "empty flag"),
            (
                "min=1 max=1 desired=1 suspended=none+in",
                "unknown flag `none`",
            ),
            (
                "desired=1 saved=yesterday",
                "saved=`yesterday` is not an RFC 3339 time",
            ),
        ] {
            let err = Snapshot::parse(value).expect_err(value);
            assert!(
                err.contains(needle),
                "{value:?}: expected {needle:?} in {err:?}"
            );
        }
    }

    #[test]
    fn every_snapshot_round_trips_and_is_a_valid_tag_value() {
        let times = [
            None,
            Some(t("2026-01-05T20:00:00Z")),
            Some(t("2026-12-31T23:59:59.123456789Z")),
        ];
        let mut checked = 0;
        for saved in times {
            for desired in [0, 1, 2, 5, 100, i32::MAX] {
                let mut all = vec![Snapshot {
                    target: None,
                    desired,
                    saved,
                }];
                for (min, max) in [
                    (0, 0),
                    (0, 1),
                    (1, 1),
                    (1, 4),
                    (2, 4),
                    (3, 10),
                    (0, i32::MAX),
                ] {
                    let suspended =
                        std::iter::once(None).chain(all_suspended().into_iter().map(Some));
                    for suspended in suspended {
                        all.push(Snapshot {
                            target: Some(SavedTarget {
                                min,
                                max,
                                suspended,
                            }),
                            desired,
                            saved,
                        });
                    }
                }
                for s in all {
                    let text = s.render();
                    assert_eq!(Snapshot::parse(&text), Ok(s), "{text}");
                    assert_eq!(tags::value(&text), text, "not a valid tag value: {text}");
                    assert!(text.len() <= 256);
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 3 * 6 * (1 + 7 * 9));
    }

    #[test]
    fn suspended_state_round_trips() {
        for s in all_suspended() {
            assert_eq!(Suspended::parse(&s.render()), Ok(s));
        }
        assert_eq!(Suspended::NONE.render(), "none");
        assert_eq!(
            Suspended {
                dynamic_in: true,
                dynamic_out: true,
                scheduled: true
            }
            .render(),
            "in+out+scheduled"
        );
    }

    #[test]
    fn capacity_display() {
        assert_eq!(cap(2, 4, 2).to_string(), "min=2 max=4 desired=2");
        assert_eq!(manual(1).to_string(), "desired=1 (no scalable target)");
        let mut c = cap(1, 4, 1);
        c.target.as_mut().unwrap().suspended.dynamic_in = true;
        assert_eq!(c.to_string(), "min=1 max=4 desired=1 (suspended: in)");
    }

    // --- scale-down ---------------------------------------------------------------

    #[test]
    fn prod_is_saved_then_lowered_to_one_task() {
        let day = cap(2, 4, 2);
        assert_eq!(
            down(&day, None),
            DownPlan::Lower {
                save: Some(Snapshot::of(&day)),
                to: cap(1, 4, 1),
            }
        );
        // The maximum stays, so a spike at night is still absorbed.
        assert_eq!(
            down(&cap(2, 4, 3), None),
            DownPlan::Lower {
                save: Some(Snapshot::of(&cap(2, 4, 3))),
                to: cap(1, 4, 1),
            }
        );
    }

    #[test]
    fn targets_below_the_floor_are_raised_to_it() {
        let day = cap(2, 4, 2);
        let plan = plan_down(&day, None, None, None, DEV, 1).unwrap();
        assert_eq!(
            plan,
            DownPlan::Lower {
                save: Some(Snapshot::of(&day)),
                to: cap(1, 4, 1),
            }
        );
        // Outside prod the floor is 0.
        let plan = plan_down(&day, None, None, None, DEV, 0).unwrap();
        assert!(matches!(plan, DownPlan::Lower { to, .. } if to == cap(0, 4, 0)));
    }

    #[test]
    fn nothing_is_ever_raised() {
        // Already at the night capacity, or below it: nothing to do, nothing saved.
        assert_eq!(
            down(&cap(1, 4, 1), None),
            DownPlan::Skip(SkipReason::AlreadyDown)
        );
        assert_eq!(
            down(&cap(0, 4, 0), None),
            DownPlan::Skip(SkipReason::AlreadyDown)
        );
        assert_eq!(
            down(&manual(1), None),
            DownPlan::Skip(SkipReason::AlreadyDown)
        );
        // Only the desired count is above the night one.
        assert!(
            matches!(down(&cap(1, 4, 3), None), DownPlan::Lower { to, .. } if to == cap(1, 4, 1))
        );
        // Only the minimum is.
        assert!(
            matches!(down(&cap(2, 4, 1), None), DownPlan::Lower { to, .. } if to == cap(1, 4, 1))
        );
        // The desired count never drops below the lowered minimum.
        let high_min = Targets {
            min_capacity: 2,
            desired_count: 1,
        };
        let plan = plan_down(&cap(3, 6, 5), None, None, None, high_min, 1).unwrap();
        assert!(matches!(plan, DownPlan::Lower { to, .. } if to == cap(2, 6, 2)));
        // A night desired count above the night minimum is kept.
        let busy_night = Targets {
            min_capacity: 1,
            desired_count: 2,
        };
        let plan = plan_down(&cap(2, 4, 4), None, None, None, busy_night, 1).unwrap();
        assert!(matches!(plan, DownPlan::Lower { to, .. } if to == cap(1, 4, 2)));
    }

    #[test]
    fn suspended_state_is_left_alone_at_night_and_saved() {
        let mut day = cap(2, 4, 2);
        day.target.as_mut().unwrap().suspended = Suspended {
            dynamic_in: true,
            dynamic_out: false,
            scheduled: false,
        };
        match down(&day, None) {
            DownPlan::Lower {
                save: Some(save),
                to,
            } => {
                assert_eq!(to.target.unwrap().suspended, day.target.unwrap().suspended);
                assert_eq!(save.render(), "min=2 max=4 desired=2 suspended=in");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dev_without_a_scalable_target_changes_only_the_desired_count() {
        let plan = plan_down(&manual(1), None, None, None, DEV, 0).unwrap();
        assert_eq!(
            plan,
            DownPlan::Lower {
                save: Some(Snapshot {
                    target: None,
                    desired: 1,
                    saved: None
                }),
                to: manual(0),
            }
        );
        assert_eq!(
            plan_down(&manual(0), None, None, None, DEV, 0).unwrap(),
            DownPlan::Skip(SkipReason::AlreadyDown)
        );
        // And the morning gives the task back.
        let (to, notes) = restore(plan_up(&manual(0), Some("desired=1"), None).unwrap());
        assert_eq!(to, manual(1));
        assert!(notes.is_empty());
    }

    #[test]
    fn a_second_scale_down_never_overwrites_the_snapshot() {
        // The night capacity with the day's snapshot: nothing to save, nothing to do.
        assert_eq!(
            down(&cap(1, 4, 1), Some("min=2 max=4 desired=2 suspended=none")),
            DownPlan::Skip(SkipReason::AlreadyDown)
        );
        // The autoscaler grew the service at night: lower it again, but keep the snapshot.
        assert_eq!(
            down(&cap(1, 4, 3), Some("min=2 max=4 desired=2 suspended=none")),
            DownPlan::Lower {
                save: None,
                to: cap(1, 4, 1)
            }
        );
    }

    #[test]
    fn keeping_the_night_finishes_a_lowering_but_leaves_the_autoscaler_alone() {
        // The run saved the snapshot and died: the minimum is still the day's.
        assert_eq!(
            plan_keep_down(&cap(2, 4, 2), None, PROD, 1),
            DownPlan::Lower {
                save: None,
                to: cap(1, 4, 1)
            }
        );
        // Lowered: nothing more, even when the autoscaler grew the count at night.
        assert_eq!(
            plan_keep_down(&cap(1, 4, 1), None, PROD, 1),
            DownPlan::Skip(SkipReason::AlreadyDown)
        );
        assert_eq!(
            plan_keep_down(&cap(1, 4, 3), None, PROD, 1),
            DownPlan::Skip(SkipReason::AlreadyDown)
        );
        // Without a scalable target nothing else lowers the count.
        assert_eq!(
            plan_keep_down(&manual(1), None, DEV, 0),
            DownPlan::Lower {
                save: None,
                to: manual(0)
            }
        );
        assert_eq!(
            plan_keep_down(&manual(0), None, DEV, 0),
            DownPlan::Skip(SkipReason::AlreadyDown)
        );
        // A rollout postpones what is left to do, and only that.
        let rollout = Rollout {
            deployment: "ecs-svc/1".into(),
            state: "IN_PROGRESS".into(),
        };
        assert_eq!(
            plan_keep_down(&cap(2, 4, 2), Some(rollout.clone()), PROD, 1),
            DownPlan::Postpone(rollout.clone())
        );
        assert_eq!(
            plan_keep_down(&cap(1, 4, 1), Some(rollout), PROD, 1),
            DownPlan::Skip(SkipReason::AlreadyDown)
        );
    }

    #[test]
    fn a_crash_between_save_and_lower_is_finished_by_the_next_run() {
        let day = cap(2, 4, 2);
        let DownPlan::Lower {
            save: Some(save),
            to,
        } = down(&day, None)
        else {
            panic!("expected a first scale-down")
        };
        let tag = save.saved_at(t("2026-01-05T20:00:00Z")).render();
        // The run died after tagging: the service is still at its day capacity.
        assert_eq!(down(&day, Some(&tag)), DownPlan::Lower { save: None, to });
        // The morning restores from that very tag.
        let (restored, _) = restore(plan_up(&to, Some(&tag), None).unwrap());
        assert_eq!(restored, day);
    }

    #[test]
    fn excluded_services_are_left_alone() {
        for value in ["skip", "SKIP", " Skip "] {
            assert_eq!(
                plan_down(&cap(2, 4, 2), None, Some(value), None, PROD, 1).unwrap(),
                DownPlan::Skip(SkipReason::Excluded)
            );
            assert_eq!(
                plan_up(&cap(2, 4, 2), None, Some(value)).unwrap(),
                UpPlan::Skip(SkipReason::Excluded)
            );
            // Excluded while scaled down: a scale-up gives the day back, and says why.
            let (to, notes) = restore(
                plan_up(&cap(1, 4, 1), Some("min=2 max=4 desired=2"), Some(value)).unwrap(),
            );
            assert_eq!(to, cap(2, 4, 2));
            assert!(
                notes[0].contains("excluded while scaled down")
                    || notes[0].contains("scaled down when it was excluded"),
                "{notes:?}"
            );
        }
        // Exclusion wins over everything else, even a rollout or a broken snapshot.
        let rollout = Some(Rollout {
            deployment: "ecs-svc/1".to_owned(),
            state: "IN_PROGRESS".to_owned(),
        });
        assert_eq!(
            plan_down(
                &cap(2, 4, 2),
                Some("garbage"),
                Some("skip"),
                rollout,
                PROD,
                1
            )
            .unwrap(),
            DownPlan::Skip(SkipReason::Excluded)
        );
        // Any other value may be a hold written wrong: the service is never lowered
        // while it is there, and the reason names the tag and what it accepts.
        for value in [
            "",
            "no",
            "skip please",
            "true",
            "skip-until=tomorrow",
            "skip-until=2026-12-01",
        ] {
            let Err(DownPlan::Hold { tag, problem }) =
                plan_down(&cap(2, 4, 2), None, Some(value), None, PROD, 1)
            else {
                panic!("{value:?} lowers the service")
            };
            assert_eq!(tag, "menotime:offhours");
            assert!(
                problem.contains(&format!("`{value}`")) || value.is_empty(),
                "{problem}"
            );
            assert!(problem.contains("skip-until=<UTC time>"), "{problem}");
            // ... but the day is still restored.
            let (to, notes) = restore(
                plan_up(&cap(1, 4, 1), Some("min=2 max=4 desired=2"), Some(value)).unwrap(),
            );
            assert_eq!(to, cap(2, 4, 2), "{value:?}");
            assert!(notes[0].contains("cannot be read"), "{notes:?}");
        }
    }

    #[test]
    fn a_hold_keeps_full_capacity_until_it_ends_then_means_nothing() {
        // NOW is 2026-01-05T20:00:00Z.
        let held = "skip-until=2026-01-06T06:00:00Z";
        assert_eq!(
            plan_down(&cap(2, 4, 2), None, Some(held), None, PROD, 1).unwrap(),
            DownPlan::Skip(SkipReason::Held {
                until: t("2026-01-06T06:00:00Z")
            })
        );
        // Held while scaled down: restored.
        let (to, notes) =
            restore(plan_up(&cap(1, 4, 1), Some("min=2 max=4 desired=2"), Some(held)).unwrap());
        assert_eq!(to, cap(2, 4, 2));
        assert!(
            notes[0].contains("Held at full capacity until 2026-01-06T06:00:00Z"),
            "{notes:?}"
        );
        assert_eq!(
            plan_up(&cap(2, 4, 2), None, Some(held)).unwrap(),
            UpPlan::Skip(SkipReason::NothingSaved)
        );
        // Ended (at its very second, or before): ignored, and reported as expired.
        for ended in [
            "skip-until=2026-01-05T20:00:00Z",
            "skip-until=2026-01-05T12:00:00-08:00",
            "SKIP-UNTIL = 2025-12-24T00:00:00Z",
        ] {
            assert!(
                matches!(
                    plan_down(&cap(2, 4, 2), None, Some(ended), None, PROD, 1),
                    Ok(DownPlan::Lower { .. })
                ),
                "{ended}"
            );
            assert!(excl(Some(ended)).expired().is_some(), "{ended}");
        }
        assert_eq!(excl(Some(held)).expired(), None);
        assert_eq!(excl(None), Exclusion::None);
    }

    #[test]
    fn offhours_tag_values_round_trip_and_are_valid_tag_values() {
        for (text, tag) in [
            ("skip", OffhoursTag::Skip),
            (
                "skip-until=2026-12-01T18:00:00Z",
                OffhoursTag::SkipUntil(t("2026-12-01T18:00:00Z")),
            ),
            (
                "skip-until=2026-12-01T18:00:00.500Z",
                OffhoursTag::SkipUntil(t("2026-12-01T18:00:00.500Z")),
            ),
        ] {
            assert_eq!(OffhoursTag::parse(text), Ok(tag));
            assert_eq!(tag.render(), text);
            assert_eq!(tags::value(text), text);
        }
        // Offsets are read as the same instant and rendered in UTC.
        assert_eq!(
            OffhoursTag::parse(" Skip-Until=2026-12-01T10:00:00-08:00 ").map(|t| t.render()),
            Ok("skip-until=2026-12-01T18:00:00Z".to_owned())
        );
        for bad in [
            "skip-until=",
            "skip-until=2026-12-01",
            "skip-until=18:00",
            "skip until 2026-12-01T18:00:00Z",
            "hold",
        ] {
            let e = OffhoursTag::parse(bad).unwrap_err();
            assert!(e.contains("2026-12-01T18:00:00Z"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_rollout_in_progress_is_not_now() {
        let rollout = Rollout {
            deployment: "ecs-svc/1234".to_owned(),
            state: "IN_PROGRESS".to_owned(),
        };
        let plan = plan_down(&cap(2, 4, 2), None, None, Some(rollout.clone()), PROD, 1);
        assert_eq!(plan, Err(DownPlan::Postpone(rollout)));
    }

    #[test]
    fn a_malformed_snapshot_is_never_overwritten_nor_restored() {
        let bad = "min=2,max=4";
        let Err(DownPlan::Hold { problem: text, .. }) =
            plan_down(&cap(2, 4, 2), Some(bad), None, None, PROD, 1)
        else {
            panic!("a malformed snapshot holds the scale-down")
        };
        assert!(text.contains("menotime:offhours-snapshot"), "{text}");
        assert!(text.contains(bad), "{text}");
        assert!(text.contains("untag-resource"), "{text}");

        let Err(UpPlan::Hold { problem: text, .. }) = plan_up(&cap(1, 4, 1), Some(bad), None)
        else {
            panic!("a malformed snapshot holds the scale-up")
        };
        assert!(text.contains("menotime:offhours-snapshot"), "{text}");
        assert!(text.contains(bad), "{text}");
        assert!(text.contains("remove the tag"), "{text}");
    }

    // --- scale-up -----------------------------------------------------------------

    #[test]
    fn prod_is_restored_exactly_and_a_second_scale_up_does_nothing() {
        let night = cap(1, 4, 1);
        let (to, notes) = restore(
            plan_up(
                &night,
                Some("min=2 max=4 desired=2 suspended=none saved=2026-01-05T20:00:00Z"),
                None,
            )
            .unwrap(),
        );
        assert_eq!(to, cap(2, 4, 2));
        assert!(notes.is_empty());
        assert_eq!(tasks_removed(&cap(2, 4, 2), &night), 1);
        // The caller removed the tag: the next scale-up finds nothing.
        assert_eq!(
            plan_up(&to, None, None).unwrap(),
            UpPlan::Skip(SkipReason::NothingSaved)
        );
    }

    #[test]
    fn the_snapshot_read_is_returned() {
        match plan_up(
            &cap(1, 4, 1),
            Some("min=2 max=4 desired=2 saved=2026-01-05T20:00:00Z"),
            None,
        )
        .unwrap()
        {
            UpPlan::Restore { snapshot, .. } => {
                assert_eq!(snapshot.saved, Some(t("2026-01-05T20:00:00Z")))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_morning_never_scales_in_and_stays_within_bounds() {
        // The autoscaler grew the service at night: keep the tasks.
        let (to, _) = restore(plan_up(&cap(1, 4, 3), Some("min=2 max=4 desired=2"), None).unwrap());
        assert_eq!(to, cap(2, 4, 3));
        // ... but never above the restored maximum.
        let (to, _) = restore(plan_up(&cap(1, 6, 6), Some("min=2 max=4 desired=2"), None).unwrap());
        assert_eq!(to, cap(2, 4, 4));
        // A saved desired count below the minimum is raised to it.
        let (to, _) = restore(plan_up(&cap(1, 4, 1), Some("min=3 max=4 desired=2"), None).unwrap());
        assert_eq!(to, cap(3, 4, 3));
    }

    #[test]
    fn suspended_state_is_restored_as_saved_or_kept_if_not_recorded() {
        let mut night = cap(1, 4, 1);
        night.target.as_mut().unwrap().suspended.scheduled = true;
        let (to, _) =
            restore(plan_up(&night, Some("min=2 max=4 desired=2 suspended=in+out"), None).unwrap());
        assert_eq!(
            to.target.unwrap().suspended,
            Suspended {
                dynamic_in: true,
                dynamic_out: true,
                scheduled: false
            }
        );
        let (to, _) = restore(plan_up(&night, Some("min=2 max=4 desired=2"), None).unwrap());
        assert_eq!(
            to.target.unwrap().suspended,
            night.target.unwrap().suspended
        );

        // Through a whole night, for every state.
        for s in all_suspended() {
            let mut day = cap(2, 4, 2);
            day.target.as_mut().unwrap().suspended = s;
            let DownPlan::Lower {
                save: Some(save),
                to: night,
            } = down(&day, None)
            else {
                panic!("expected a scale-down")
            };
            let (to, _) = restore(plan_up(&night, Some(&save.render()), None).unwrap());
            assert_eq!(to, day);
        }
    }

    #[test]
    fn a_scalable_target_that_came_or_went_is_reported() {
        // Saved with a target; the target was deregistered at night.
        let (to, notes) =
            restore(plan_up(&manual(1), Some("min=2 max=4 desired=2"), None).unwrap());
        assert_eq!(to, manual(2));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("has none now"), "{notes:?}");
        // Nothing enforces the saved maximum any more: a service someone raised by hand
        // keeps its tasks (found by the reconcile properties).
        let (to, _) = restore(plan_up(&manual(6), Some("min=0 max=0 desired=0"), None).unwrap());
        assert_eq!(to, manual(6));
        // Saved without one; one was registered at night: left as it is.
        let mut now = cap(1, 3, 1);
        now.target.as_mut().unwrap().suspended.dynamic_out = true;
        let (to, notes) = restore(plan_up(&now, Some("desired=5"), None).unwrap());
        assert_eq!(
            to,
            Capacity {
                target: now.target,
                desired: 3
            }
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("left as it is"), "{notes:?}");
    }

    #[test]
    fn tasks_removed_is_never_negative() {
        assert_eq!(tasks_removed(&cap(2, 4, 3), &cap(1, 4, 1)), 2);
        assert_eq!(tasks_removed(&manual(1), &manual(0)), 1);
        assert_eq!(tasks_removed(&cap(1, 4, 1), &cap(2, 4, 2)), 0);
    }
}
