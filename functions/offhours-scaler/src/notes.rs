//! What offhours-scaler tells the team: `scale.down`, `scale.up`, `scale.skipped`, and
//! `scale.failed` with its resolve (docs/reference.md §4), composed from the facts
//! `lib.rs` decided on, and the saving estimate they carry. Nothing here calls AWS.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use menotime_shared::config::OffhoursConfig;
use menotime_shared::domain::deploy::RevisionSummary;
use menotime_shared::domain::offhours::{utc_second, Capacity, SkipReason, Snapshot};
use menotime_shared::domain::pricing::{
    self, cpu_units, memory_mib, PRICE_GB_HOUR, PRICE_VCPU_HOUR,
};
use menotime_shared::domain::reconcile::{Leave, Moment};
use menotime_shared::domain::schedule::Action;
use menotime_shared::domain::service::ServiceState;
use menotime_shared::domain::uptime::Window;
use menotime_shared::domain::wake::Wake;
use menotime_shared::notify::{dedup_key, delivery, Action as PageAction, EventType, Notification};
use menotime_shared::{runbook, tags, Error};

use crate::{CapacityView, Run};

/// How long the night lasts that an estimate is for, and where that comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Night {
    pub hours: f64,
    /// e.g. `until Mon 2026-01-12 07:00 America/Los_Angeles, when the window's day
    /// begins`.
    pub why: String,
}

impl Night {
    pub fn between(from: DateTime<Utc>, to: DateTime<Utc>, why: String) -> Night {
        let hours = (to - from).num_seconds().max(0) as f64 / 3600.0;
        Night {
            hours: (hours * 100.0).round() / 100.0,
            why,
        }
    }
}

/// The saving of one night, as far as it could be known.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub usd: Option<f64>,
    /// USD per hour the tasks removed cost, when the task size is known.
    pub usd_per_hour: Option<f64>,
    pub hours: Option<f64>,
    /// For people: the figure and how it was computed, or why it is unknown.
    pub line: String,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub tasks: i32,
}

impl Estimate {
    /// Nothing changed, so nothing is saved.
    pub fn none() -> Estimate {
        Estimate {
            usd: None,
            usd_per_hour: None,
            hours: None,
            line: "none: nothing was changed".to_owned(),
            cpu: None,
            memory: None,
            tasks: 0,
        }
    }

    /// The saving of `tasks` fewer tasks of the revision `td` for the `night`; `td` is
    /// `None` when no task count changes (nothing was read), or the error that kept it
    /// from being read (the capacity was changed all the same). Without a night (no
    /// window, or a scale-down in the day) the figure is per hour.
    pub fn of(
        td: Option<Result<RevisionSummary, Error>>,
        tasks: i32,
        night: Option<&Night>,
    ) -> Estimate {
        let unknown = |why: String| Estimate {
            usd: None,
            usd_per_hour: None,
            hours: night.map(|n| n.hours),
            line: format!("unknown ({why})"),
            cpu: None,
            memory: None,
            tasks,
        };
        let td = match td {
            _ if tasks <= 0 => {
                return Estimate {
                    usd: Some(0.0),
                    usd_per_hour: Some(0.0),
                    hours: night.map(|n| n.hours),
                    line: "USD 0.00: the task count does not change".to_owned(),
                    cpu: None,
                    memory: None,
                    tasks: 0,
                }
            }
            None => return unknown("the task definition was not read".into()),
            Some(Err(e)) => return unknown(format!("the task definition could not be read: {e}")),
            Some(Ok(td)) => td,
        };
        let (Some(cpu_u), Some(mem)) = (
            td.cpu.as_deref().and_then(cpu_units),
            td.memory.as_deref().and_then(memory_mib),
        ) else {
            return unknown(format!(
                "{} sets no task-level cpu and memory (cpu {:?}, memory {:?})",
                td.short(),
                td.cpu,
                td.memory
            ));
        };
        let per_hour = pricing::hourly_cost(cpu_u, mem, tasks);
        let what = format!(
            "{tasks} task(s) of {} vCPU and {} GB ({}) at the manual's Fargate prices (USD {}/vCPU-hour, {}/GB-hour)",
            f64::from(cpu_u) / 1024.0,
            f64::from(mem) / 1024.0,
            td.short(),
            PRICE_VCPU_HOUR,
            PRICE_GB_HOUR
        );
        let (usd, line) = match night {
            Some(n) => {
                let usd = pricing::saving(cpu_u, mem, tasks, n.hours);
                (
                    Some(usd),
                    format!(
                        "USD {usd:.2} for this night of {} h ({}): {what}",
                        n.hours, n.why
                    ),
                )
            }
            None => (
                None,
                format!(
                    "USD {per_hour:.4} per hour of night; the night's length is unknown without \
                     OFFHOURS_UPTIME: {what}"
                ),
            ),
        };
        Estimate {
            usd,
            usd_per_hour: Some(per_hour),
            hours: night.map(|n| n.hours),
            line,
            cpu: td.cpu.clone(),
            memory: td.memory.clone(),
            tasks,
        }
    }
}

/// What changed, for a subject: the desired count, else the minimum, else the whole
/// capacity (a retry that only removes the snapshot).
pub fn change(before: &Capacity, after: &Capacity) -> String {
    if before.desired != after.desired {
        return format!("desired {} -> {}", before.desired, after.desired);
    }
    match (before.target, after.target) {
        (Some(b), Some(a)) if b.min != a.min => format!("min {} -> {}", b.min, a.min),
        _ => after.to_string(),
    }
}

/// `Thu 2026-11-26 20:00 America/Los_Angeles`, or the instant in UTC without a window.
pub fn local(cfg: &OffhoursConfig, at: DateTime<Utc>) -> String {
    match &cfg.window {
        Some(w) => w.local_time(at),
        None => utc_second(at),
    }
}

/// `day until Thu 2026-11-26 20:00 America/Los_Angeles`, or `night (holiday 2026-11-26)
/// until ...`: what the window says now.
pub fn now_line(cfg: &OffhoursConfig, moment: &Moment) -> String {
    let phase = match (moment.up, moment.holiday) {
        (true, _) => "day".to_owned(),
        (false, Some(h)) => format!("night (holiday {})", h.format("%Y-%m-%d")),
        (false, None) => "night".to_owned(),
    };
    match moment.next_change {
        Some(at) => format!("{phase} until {}", local(cfg, at)),
        None => format!("{phase}, with no change within a year"),
    }
}

/// Every scaler notification: the action, before and after, and the window.
pub fn note(
    cfg: &OffhoursConfig,
    event_type: EventType,
    run: &Run,
    summary: &str,
    before: &Capacity,
    after: &Capacity,
) -> Notification {
    let c = &cfg.common;
    let mut n = Notification::new(
        event_type,
        c,
        summary,
        run.occurred_at,
        &run.event_id,
        dedup_key(c.environment, &c.service, "offhours"),
    )
    .with_fact(
        "Action",
        format!(
            "{}{}{}",
            run.action.as_str(),
            if run.force { " (forced)" } else { "" },
            if run.dry_run { " (dry run)" } else { "" }
        ),
    )
    .with_fact("Before", before.to_string())
    .with_fact(
        if run.dry_run && before != after {
            "Would be"
        } else {
            "After"
        },
        after.to_string(),
    );
    if let (Some(w), Some(m)) = (&cfg.window, &run.moment) {
        n = n
            .with_fact("Window", window_line(w))
            .with_fact("Now", now_line(cfg, m));
    }
    n.with_console(runbook::service_console(c))
}

/// `Mon-Fri 07:00-20:00 America/Los_Angeles; holidays 2026-11-26`.
pub fn window_line(w: &Window) -> String {
    if w.holidays.is_empty() {
        w.uptime.render()
    } else {
        format!("{}; holidays {}", w.uptime.render(), w.holidays.render())
    }
}

/// The window as the machine payload and the invocation result show it.
pub fn window_details(cfg: &OffhoursConfig, run: &Run) -> Value {
    match (&cfg.window, &run.moment) {
        (Some(w), Some(m)) => json!({
            "uptime": w.uptime.render(),
            "holidays": w.holidays.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect::<Vec<_>>(),
            "up": m.up,
            "holiday": m.holiday.map(|d| d.format("%Y-%m-%d").to_string()),
            "next_change": m.next_change.map(utc_second),
        }),
        _ => Value::Null,
    }
}

/// The details every scaler notification carries for machines.
#[allow(clippy::too_many_arguments)]
pub fn with_details(
    cfg: &OffhoursConfig,
    n: Notification,
    run: &Run,
    reason: &str,
    before: &Capacity,
    after: &Capacity,
    snapshot: Option<&str>,
    estimate: &Estimate,
) -> Notification {
    n.with_detail("action", run.action.as_str())
        .with_detail("dry_run", run.dry_run)
        .with_detail("forced", run.force)
        .with_detail("reason", reason)
        .with_detail("before", json!(CapacityView::from(before)))
        .with_detail("after", json!(CapacityView::from(after)))
        .with_detail("snapshot", snapshot.map(str::to_owned))
        .with_detail("estimated_saving_usd", estimate.usd)
        .with_detail("saving_usd_per_hour", estimate.usd_per_hour)
        .with_detail("night_hours", estimate.hours)
        .with_detail("tasks_changed", estimate.tasks)
        .with_detail("task_cpu", estimate.cpu.clone())
        .with_detail("task_memory", estimate.memory.clone())
        .with_detail("window", window_details(cfg, run))
        .with_detail("scheduled_time", run.scheduled.map(utc_second))
}

/// An ended hold this run removed: said in every notification of the run.
pub fn with_expired_hold(
    n: Notification,
    ended: Option<DateTime<Utc>>,
    dry_run: bool,
) -> Notification {
    match ended {
        None => n.with_detail("hold_removed", false),
        Some(at) => n
            .with_fact(
                "Hold",
                format!(
                    "{}=skip-until={} ended; {}",
                    tags::OFFHOURS,
                    utc_second(at),
                    if dry_run {
                        "the tag would be removed (dry run)"
                    } else {
                        "the tag was removed and the window decides again"
                    }
                ),
            )
            .with_detail("hold_removed", !dry_run),
    }
}

/// What a scale-down did, or would do.
pub struct Lowered<'a> {
    pub before: &'a Capacity,
    pub to: &'a Capacity,
    /// The snapshot this run saved (`None`: an earlier run's is kept).
    pub saved: bool,
    /// The snapshot tag's value, saved or kept.
    pub snapshot: &'a str,
}

/// (summary, reason) of a scale-down.
pub fn down_reason(cfg: &OffhoursConfig, run: &Run, l: &Lowered<'_>) -> (String, String) {
    let c = &cfg.common;
    let (current, to, snapshot_line) = (l.before, l.to, l.snapshot);
    let (summary, mut reason) = if run.dry_run {
        (
            format!("dry run: would scale {} down for the night", c.service),
            format!(
                "dry run: would {}lower {} from {current} to {to}; nothing was changed",
                if l.saved {
                    format!("save {snapshot_line} in {} and ", tags::OFFHOURS_SNAPSHOT)
                } else {
                    String::new()
                },
                c.service
            ),
        )
    } else {
        (
            format!(
                "Scaled {} down for the night: {}",
                c.service,
                change(current, to)
            ),
            if l.saved {
                format!(
                    "saved {snapshot_line} in {} and lowered {} from {current} to {to}",
                    tags::OFFHOURS_SNAPSHOT,
                    c.service
                )
            } else {
                format!(
                    "lowered {} from {current} to {to}; kept the snapshot an earlier run saved ({snapshot_line}), which is never overwritten",
                    c.service
                )
            },
        )
    };
    if let Some(m) = &run.moment {
        if m.up {
            reason.push_str(
                " although it is uptime (\"force\": true); the next reconcile restores it",
            );
        } else if run.action == Action::Reconcile {
            reason.push_str(&format!(" ({})", now_line(cfg, m)));
        }
    }
    (summary, reason)
}

/// `scale.down`.
pub fn down(
    cfg: &OffhoursConfig,
    run: &Run,
    l: &Lowered<'_>,
    summary: &str,
    estimate: &Estimate,
    service_arn: &str,
    function_name: Option<&str>,
) -> Notification {
    let c = &cfg.common;
    let mut n = note(cfg, EventType::ScaleDown, run, summary, l.before, l.to)
        .with_fact(
            "Snapshot",
            match l.saved {
                true if run.dry_run => format!("would save {}", l.snapshot),
                true => format!("saved {}", l.snapshot),
                false => format!("kept from an earlier run: {}", l.snapshot),
            },
        )
        .with_fact("Estimated saving", &estimate.line);
    if run.moment.as_ref().is_some_and(|m| m.up) {
        n = n.with_fact(
            "Warning",
            "It is uptime: the scale-down was forced, and the next reconcile (within 5 minutes) \
             restores the service. To keep it down for a whole day, add the date to \
             OFFHOURS_HOLIDAYS",
        );
    }
    if run.dry_run {
        n = n.with_fact(
            "Dry run",
            "nothing was tagged, registered or updated (DRY_RUN or \"dry_run\": true)",
        );
    }
    n = n
        .with_step(runbook::describe_scalable_target(c))
        .with_step(runbook::task_counts(c))
        .with_step(runbook::show_offhours_tags(c, service_arn));
    match (&run.moment, function_name) {
        // With a window, a scale-up is undone by the next reconcile: a hold is what
        // keeps the service up (until the next morning here, as an example).
        (Some(m), _) => {
            if let Some(morning) = m.next_change.filter(|_| !m.up) {
                n = n.with_step(runbook::hold(c, service_arn, morning));
            }
        }
        (None, Some(f)) => n = n.with_step(runbook::invoke_scale_up(c, f)),
        (None, None) => {}
    }
    n
}

/// (summary, reason) of a scale-up.
pub fn up_reason(
    cfg: &OffhoursConfig,
    run: &Run,
    current: &Capacity,
    to: &Capacity,
    snapshot: &Snapshot,
) -> (String, String) {
    let c = &cfg.common;
    let (summary, mut reason) = if run.dry_run {
        (
            format!("dry run: would restore {} for the day", c.service),
            format!(
                "dry run: would restore {} from {current} to {to} as saved in {} ({snapshot}) and remove the snapshot; nothing was changed",
                c.service,
                tags::OFFHOURS_SNAPSHOT
            ),
        )
    } else {
        (
            format!(
                "Restored {} for the day: {}",
                c.service,
                change(current, to)
            ),
            format!(
                "restored {} from {current} to {to} as saved in {} ({snapshot}) and removed the snapshot",
                c.service,
                tags::OFFHOURS_SNAPSHOT
            ),
        )
    };
    if let Some(m) = &run.moment {
        if run.action == Action::Reconcile {
            reason.push_str(&format!(" ({})", now_line(cfg, m)));
        }
    }
    (summary, reason)
}

/// `scale.up`.
#[allow(clippy::too_many_arguments)]
pub fn up(
    cfg: &OffhoursConfig,
    run: &Run,
    current: &Capacity,
    to: &Capacity,
    snapshot: &Snapshot,
    notes: &[String],
    summary: &str,
    estimate: &Estimate,
    held: bool,
    wake: Option<&Wake>,
    service_arn: &str,
) -> Notification {
    let c = &cfg.common;
    let mut n = note(cfg, EventType::ScaleUp, run, summary, current, to)
        .with_fact(
            "Snapshot",
            format!(
                "{}{snapshot}",
                if run.dry_run {
                    "would restore and remove "
                } else {
                    "restored and removed "
                }
            ),
        )
        .with_fact("Night's estimated saving", &estimate.line);
    for note in notes {
        n = n.with_fact("Note", note);
    }
    if let Some(w) = wake {
        n = n.with_fact(
            "Wake-up check",
            format!(
                "{} task(s) should run by {}; on-call hears if not ({}={w})",
                w.desired,
                local(cfg, w.deadline(cfg.wake_timeout())),
                tags::OFFHOURS_WAKE
            ),
        );
    }
    if let Some(m) = run.moment.as_ref().filter(|m| !m.up && !held) {
        n = n.with_fact(
            "Warning",
            format!(
                "It is night ({}): the next reconcile (within 5 minutes) lowers the service again. \
                 To keep it up, hold it with the command below",
                now_line(cfg, m)
            ),
        );
        if let Some(morning) = m.next_change {
            n = n.with_step(runbook::hold(c, service_arn, morning));
        }
    }
    if run.dry_run {
        n = n.with_fact(
            "Dry run",
            "nothing was registered, updated or untagged (DRY_RUN or \"dry_run\": true)",
        );
    }
    n.with_step(runbook::describe_scalable_target(c))
        .with_step(runbook::task_counts(c))
        .with_detail("notes", notes.to_vec())
        .with_detail("wake", wake.map(Wake::render))
}

/// (summary, reason) of a skipped run.
pub fn skip_reason(
    cfg: &OffhoursConfig,
    run: &Run,
    current: &Capacity,
    why: SkipReason,
    snapshot: Option<&str>,
) -> (String, String) {
    let c = &cfg.common;
    let short = match why {
        SkipReason::Excluded => "is excluded by menotime:offhours=skip".to_owned(),
        SkipReason::Held { until } => format!("is held until {}", local(cfg, until)),
        SkipReason::AlreadyDown => "is already at its off-hours capacity".to_owned(),
        SkipReason::NothingSaved => "has no snapshot saved".to_owned(),
        SkipReason::Stale { .. } => "arrived during uptime (stale)".to_owned(),
    };
    let mut reason = format!("{why}; {} was left at {current}", c.service);
    if why == SkipReason::AlreadyDown {
        if let Some(s) = snapshot {
            reason.push_str(&format!(" (the snapshot {s} is kept for the morning)"));
        }
    }
    if let (SkipReason::Stale { .. }, Some(m)) = (why, &run.moment) {
        reason.push_str(&format!(" (it is {})", now_line(cfg, m)));
    }
    (
        format!(
            "Off-hours {} skipped: {} {short}",
            run.action.as_str(),
            c.service
        ),
        reason,
    )
}

/// `scale.skipped`: left alone (excluded, held, already down, nothing saved, stale).
#[allow(clippy::too_many_arguments)]
pub fn skipped(
    cfg: &OffhoursConfig,
    run: &Run,
    current: &Capacity,
    why: SkipReason,
    summary: &str,
    reason: &str,
    snapshot: Option<(&str, Option<&Snapshot>)>,
    service_arn: &str,
) -> Notification {
    let c = &cfg.common;
    let mut n = note(cfg, EventType::ScaleSkipped, run, summary, current, current)
        .with_fact("Reason", reason);
    if let (SkipReason::Excluded, Some((raw, read))) = (why, snapshot) {
        // Excluded while a night capacity is in place: restored when the day begins.
        n = n.with_fact(
            "Note",
            format!(
                "{} carries the snapshot {raw} and is excluded: it is restored when its day \
                 begins, or by a scale-up. To restore it now by hand, the commands are below",
                c.service
            ),
        );
        n = runbook::restore_snapshot(c, service_arn, read)
            .into_iter()
            .fold(n, Notification::with_step);
    }
    if let SkipReason::Held { .. } = why {
        n = n.with_step(runbook::release_hold(c, service_arn));
    }
    if let SkipReason::Stale { scheduled } = why {
        n = n.with_fact(
            "Scheduled for",
            scheduled.map_or_else(|| "(no scheduledTime)".to_owned(), |t| local(cfg, t)),
        );
    }
    n.with_step(runbook::show_offhours_tags(c, service_arn))
        .with_step(runbook::describe_scalable_target(c))
        .with_fact("Estimated saving", &Estimate::none().line)
        .with_detail("skip_reason", why.key())
}

/// The invocation result's reason when reconcile has nothing to do (no notification).
pub fn leave_reason(cfg: &OffhoursConfig, run: &Run, leave: Leave) -> String {
    let c = &cfg.common;
    let now = run
        .moment
        .as_ref()
        .map(|m| now_line(cfg, m))
        .unwrap_or_default();
    match leave {
        Leave::Day => format!(
            "it is {now}, and nothing is saved: {} runs at its daytime capacity",
            c.service
        ),
        Leave::Excluded => format!(
            "{} is tagged {}=skip and has nothing to restore now (it is {now})",
            c.service,
            tags::OFFHOURS
        ),
        Leave::Held { until } => format!(
            "{} is held at full capacity until {} and has nothing to restore (it is {now})",
            c.service,
            local(cfg, until)
        ),
    }
}

/// The invocation result's reason when reconcile found nothing to lower or restore
/// after reading the capacity (no notification).
pub fn reconcile_skip_reason(
    cfg: &OffhoursConfig,
    run: &Run,
    why: SkipReason,
    snapshot: Option<&str>,
) -> String {
    let now = run
        .moment
        .as_ref()
        .map(|m| now_line(cfg, m))
        .unwrap_or_default();
    match (why, snapshot) {
        (SkipReason::AlreadyDown, Some(s)) => format!(
            "it is {now}, and {} is down for the night already (the snapshot {s} is kept for the morning)",
            cfg.common.service
        ),
        _ => format!("it is {now}: {why}"),
    }
}

/// `scale.skipped` for a reconcile whose only work was removing an ended hold.
pub fn hold_ended(
    cfg: &OffhoursConfig,
    run: &Run,
    current: &Capacity,
    reason: &str,
    service_arn: &str,
) -> Notification {
    let c = &cfg.common;
    note(
        cfg,
        EventType::ScaleSkipped,
        run,
        &format!(
            "Off-hours hold of {} ended: the window decides again",
            c.service
        ),
        current,
        current,
    )
    .with_fact("Reason", reason)
    .with_step(runbook::show_offhours_tags(c, service_arn))
    .with_detail("skip_reason", "hold_expired")
}

/// Why a run is held: a rollout postpones it, a tag nobody can read stops it.
pub enum Held {
    Deploying,
    /// The tag that cannot be read.
    Unreadable(&'static str),
}

/// `scale.skipped` for a run that cannot be carried out now (a rollout in progress) or
/// at all (a tag nobody can read); `why` is the error or the reason.
#[allow(clippy::too_many_arguments)]
pub fn held(
    cfg: &OffhoursConfig,
    run: &Run,
    current: &Capacity,
    held: Held,
    why: &str,
    snapshot: Option<&str>,
    service_arn: &str,
    reminder: bool,
) -> Notification {
    let c = &cfg.common;
    let (summary, key) = match held {
        Held::Deploying => (
            format!(
                "Off-hours {} postponed: {} is deploying, retried later",
                run.action.as_str(),
                c.service
            ),
            "deploying",
        ),
        Held::Unreadable(tag) if tag == tags::OFFHOURS_SNAPSHOT => (
            format!(
                "Off-hours {} held: the snapshot tag of {} cannot be read",
                run.action.as_str(),
                c.service
            ),
            "unreadable_snapshot",
        ),
        Held::Unreadable(_) => (
            format!(
                "Off-hours {} held: the {} tag of {} cannot be read",
                run.action.as_str(),
                tags::OFFHOURS,
                c.service
            ),
            "unreadable_offhours_tag",
        ),
    };
    let mut n = note(
        cfg,
        EventType::ScaleSkipped,
        run,
        &summary,
        current,
        current,
    )
    .with_fact("Reason", why);
    if reminder {
        n = n.with_fact(
            "Reminder",
            "reconcile changes nothing while this lasts; it says so again at the first run of \
             each hour",
        );
    }
    let mut n = n
        .with_step(runbook::describe_deployments(c))
        .with_step(runbook::show_offhours_tags(c, service_arn))
        .with_step(runbook::describe_scalable_target(c))
        .with_detail("skip_reason", key)
        .with_detail("action", run.action.as_str())
        .with_detail("reason", why)
        .with_detail("dry_run", run.dry_run)
        .with_detail("before", json!(CapacityView::from(current)))
        .with_detail("after", json!(CapacityView::from(current)))
        .with_detail("window", window_details(cfg, run));
    if let Some(s) = snapshot {
        n = n.with_detail("snapshot", s.to_owned());
    }
    n
}

/// The wake-up the check is about, for its page and its resolve.
pub struct Waking<'a> {
    pub wake: &'a Wake,
    pub service: &'a ServiceState,
    /// The count waited for.
    pub target: i32,
    pub deadline: DateTime<Utc>,
}

impl Waking<'_> {
    fn minutes_since(&self, now: DateTime<Utc>) -> i64 {
        (now - self.wake.since).num_minutes().max(0)
    }

    fn details(&self, n: Notification, cfg: &OffhoursConfig) -> Notification {
        let s = self.service;
        n.with_detail("wake", self.wake.render())
            .with_detail("since", utc_second(self.wake.since))
            .with_detail("deadline", utc_second(self.deadline))
            .with_detail("timeout_minutes", cfg.wake_timeout_minutes)
            .with_detail("target_count", self.target)
            .with_detail("desired_count", s.desired_count)
            .with_detail("running_count", s.running_count)
            .with_detail("pending_count", s.pending_count)
            .with_detail("scale_up_completed", s.desired_count >= self.target)
    }
}

/// `scale.failed` (a page in prod): the service did not reach the count of its
/// scale-up by the deadline.
pub fn wake_failed(
    cfg: &OffhoursConfig,
    run: &Run,
    w: &Waking<'_>,
    function_name: Option<&str>,
    resent: bool,
) -> Notification {
    let c = &cfg.common;
    let s = w.service;
    let minutes = w.minutes_since(run.now);
    let mut n = Notification::new(
        EventType::ScaleFailed,
        c,
        format!(
            "Wake-up failed: {} runs {} of {} tasks {minutes} min after the scale-up",
            c.service, s.running_count, w.target
        ),
        run.occurred_at,
        &run.event_id,
        dedup_key(c.environment, &c.service, "offhours-wake"),
    )
    .with_fact("Scale-up began", local(cfg, w.wake.since))
    .with_fact(
        "Deadline",
        format!(
            "{} (OFFHOURS_WAKE_TIMEOUT_MINUTES={})",
            local(cfg, w.deadline),
            cfg.wake_timeout_minutes
        ),
    )
    .with_fact("Tasks", s.tasks_line());
    n = if s.desired_count < w.target {
        n.with_fact(
            "Scale-up",
            format!(
                "NOT COMPLETED: the desired count is still {} of the {} it should be. The scaler \
                 retries at every reconcile; its errors are in its log",
                s.desired_count, w.target
            ),
        )
    } else {
        n.with_fact(
            "Scale-up",
            format!(
                "completed (desired {}), but ECS has not started the tasks",
                s.desired_count
            ),
        )
    };
    if s.events.is_empty() {
        n = n.with_fact("ECS events", "none reported");
    }
    for e in &s.events {
        n = n.with_fact(
            "ECS event",
            format!(
                "{} {}",
                e.at.map(utc_second).unwrap_or_else(|| "(no time)".into()),
                e.message
            ),
        );
    }
    n = n
        .with_fact(
            "Likely causes",
            "the manual's Task Won't Start: no Fargate capacity (vCPU) available, an image that \
             does not exist (a bad task definition), a security group blocking the task",
        )
        .with_step(runbook::service_events(c))
        .with_step(runbook::stopped_tasks(c))
        .with_step(runbook::tail_logs(c))
        .with_step(runbook::task_counts(c));
    if let Some(f) = function_name {
        n = n.with_step(runbook::function_logs(c, f));
    }
    if resent {
        n = n.with_fact(
            "Resent",
            "a retry of the invocation that paged; the pager groups both",
        );
    }
    w.details(n, cfg)
        .with_detail(
            "events",
            s.events
                .iter()
                .map(|e| json!({"at": e.at.map(utc_second), "message": e.message}))
                .collect::<Vec<_>>(),
        )
        .with_console(runbook::service_console(c))
}

/// The resolve of [`wake_failed`]: the count was reached. On-call's topic in prod, where
/// the page went; the team's elsewhere.
pub fn wake_resolved(cfg: &OffhoursConfig, run: &Run, w: &Waking<'_>) -> Notification {
    let c = &cfg.common;
    let s = w.service;
    let n = Notification::new(
        EventType::ScaleUp,
        c,
        format!(
            "Resolved: {} runs {} of {} tasks after the scale-up",
            c.service, s.running_count, w.target
        ),
        run.occurred_at,
        &run.event_id,
        dedup_key(c.environment, &c.service, "offhours-wake"),
    )
    .with_fact("Scale-up began", local(cfg, w.wake.since))
    .with_fact(
        "Reached",
        format!(
            "{} ({} min after the scale-up)",
            local(cfg, run.now),
            w.minutes_since(run.now)
        ),
    )
    .with_fact("Tasks", s.tasks_line())
    .with_step(runbook::task_counts(c))
    .with_console(runbook::service_console(c));
    let n = w.details(n, cfg);
    // Resolved where the page went: on-call's topic when scale.failed pages (prod).
    if delivery(EventType::ScaleFailed, c.environment).action == PageAction::Trigger {
        n.resolving()
    } else {
        n
    }
}
