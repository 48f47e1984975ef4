//! What offhours-scaler tells the team: `scale.down`, `scale.up` and `scale.skipped`
//! (docs/reference.md §4), composed from the facts `lib.rs` decided on, and the
//! saving estimate they carry. Nothing here calls AWS.

use serde_json::json;

use menotime_shared::config::OffhoursConfig;
use menotime_shared::domain::deploy::RevisionSummary;
use menotime_shared::domain::offhours::{Capacity, SkipReason, Snapshot};
use menotime_shared::domain::pricing::{
    self, cpu_units, memory_mib, PRICE_GB_HOUR, PRICE_VCPU_HOUR,
};
use menotime_shared::notify::{dedup_key, EventType, Notification};
use menotime_shared::{runbook, tags, Error};

use crate::{CapacityView, Run};

/// The saving of one night, as far as it could be known.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub usd: Option<f64>,
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
            line: "none: nothing was changed".to_owned(),
            cpu: None,
            memory: None,
            tasks: 0,
        }
    }

    /// The saving of `tasks` fewer tasks of the revision `td` for `hours`; `td` is
    /// `None` when no task count changes (nothing was read), or the error that kept it
    /// from being read (the capacity was changed all the same).
    pub fn of(td: Option<Result<RevisionSummary, Error>>, tasks: i32, hours: f64) -> Estimate {
        let unknown = |why: String| Estimate {
            usd: None,
            line: format!("unknown ({why})"),
            cpu: None,
            memory: None,
            tasks,
        };
        let td = match td {
            _ if tasks <= 0 => {
                return Estimate {
                    usd: Some(0.0),
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
        let usd = pricing::nightly_saving(cpu_u, mem, tasks, hours);
        Estimate {
            usd: Some(usd),
            line: format!(
                "USD {usd:.2} per night: {tasks} task(s) of {} vCPU and {} GB ({}) for {hours} h, at the manual's Fargate prices (USD {}/vCPU-hour, {}/GB-hour)",
                f64::from(cpu_u) / 1024.0,
                f64::from(mem) / 1024.0,
                td.short(),
                PRICE_VCPU_HOUR,
                PRICE_GB_HOUR
            ),
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

/// Every scaler notification: the action, before and after.
pub fn note(
    cfg: &OffhoursConfig,
    event_type: EventType,
    run: &Run,
    summary: &str,
    before: &Capacity,
    after: &Capacity,
) -> Notification {
    let c = &cfg.common;
    Notification::new(
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
            "{}{}",
            run.action.as_str(),
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
    )
    .with_console(runbook::service_console(c))
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
        .with_detail("reason", reason)
        .with_detail("before", json!(CapacityView::from(before)))
        .with_detail("after", json!(CapacityView::from(after)))
        .with_detail("snapshot", snapshot.map(str::to_owned))
        .with_detail("estimated_saving_usd", estimate.usd)
        .with_detail("night_hours", cfg.night_hours)
        .with_detail("tasks_changed", estimate.tasks)
        .with_detail("task_cpu", estimate.cpu.clone())
        .with_detail("task_memory", estimate.memory.clone())
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
    if run.dry_run {
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
    }
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
    if let Some(f) = function_name {
        n = n.with_step(runbook::invoke_scale_up(c, f));
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
    if run.dry_run {
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
    }
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
    if run.dry_run {
        n = n.with_fact(
            "Dry run",
            "nothing was registered, updated or untagged (DRY_RUN or \"dry_run\": true)",
        );
    }
    n.with_step(runbook::describe_scalable_target(c))
        .with_step(runbook::task_counts(c))
        .with_detail("notes", notes.to_vec())
}

/// (summary, reason, the skip reason's key) of a skipped run.
pub fn skip_reason(
    cfg: &OffhoursConfig,
    run: &Run,
    current: &Capacity,
    why: SkipReason,
    snapshot: Option<&str>,
) -> (String, String) {
    let c = &cfg.common;
    let short = match why {
        SkipReason::Excluded => "is excluded by menotime:offhours=skip",
        SkipReason::AlreadyDown => "is already at its off-hours capacity",
        SkipReason::NothingSaved => "has no snapshot saved",
    };
    let mut reason = format!("{why}; {} was left at {current}", c.service);
    if why == SkipReason::AlreadyDown {
        if let Some(s) = snapshot {
            reason.push_str(&format!(" (the snapshot {s} is kept for the morning)"));
        }
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

/// `scale.skipped`: left alone (excluded, already down, nothing saved).
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
        // Excluded while a night capacity is in place: the scaler will not restore it.
        n = n.with_fact(
            "Warning",
            format!(
                "{} carries the snapshot {raw} but is excluded: the scaler will not restore it. Restore it by hand with the commands below, or remove menotime:offhours to let the next scale-up do it",
                c.service
            ),
        );
        n = runbook::restore_snapshot(c, service_arn, read)
            .into_iter()
            .fold(n, Notification::with_step);
    }
    n.with_step(runbook::show_offhours_tags(c, service_arn))
        .with_step(runbook::describe_scalable_target(c))
        .with_fact("Estimated saving", &Estimate::none().line)
        .with_detail(
            "skip_reason",
            match why {
                SkipReason::Excluded => "excluded",
                SkipReason::AlreadyDown => "already_down",
                SkipReason::NothingSaved => "nothing_saved",
            },
        )
}

/// Why a run is held: a rollout postpones it, an unreadable snapshot stops it.
pub enum Held {
    Deploying,
    UnreadableSnapshot,
}

/// `scale.skipped` for a run that cannot be carried out now (a rollout in progress) or
/// at all (a snapshot nobody can read); `e` is the error the invocation ends with.
pub fn held(
    cfg: &OffhoursConfig,
    run: &Run,
    current: &Capacity,
    held: Held,
    e: &Error,
    snapshot: Option<&str>,
    service_arn: &str,
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
        Held::UnreadableSnapshot => (
            format!(
                "Off-hours {} held: the snapshot tag of {} cannot be read",
                run.action.as_str(),
                c.service
            ),
            "unreadable_snapshot",
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
    .with_fact("Reason", e.to_string())
    .with_step(runbook::describe_deployments(c))
    .with_step(runbook::show_offhours_tags(c, service_arn))
    .with_step(runbook::describe_scalable_target(c))
    .with_detail("skip_reason", key)
    .with_detail("action", run.action.as_str())
    .with_detail("reason", e.to_string())
    .with_detail("dry_run", run.dry_run)
    .with_detail("before", json!(CapacityView::from(current)))
    .with_detail("after", json!(CapacityView::from(current)));
    if let Some(s) = snapshot {
        n = n.with_detail("snapshot", s.to_owned());
    }
    n
}
