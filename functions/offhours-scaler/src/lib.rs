//! offhours-scaler: lower the ECS service for the night, restore exactly what it had in
//! the morning.
//!
//! The whole story of one invocation, in order:
//!
//! 1. **Accept** the scheduler's input `{"action": "scale-down" | "scale-up"}`, with
//!    optional `"dry_run": true` (other fields are ignored, but `executionId` and
//!    `scheduledTime` are used when present). Anything else is rejected, 0 calls.
//! 2. **Read** the service (DescribeServices with tags: the snapshot, the
//!    `menotime:offhours` exclusion, the deployments, the desired count) and its
//!    scalable target (DescribeScalableTargets; none for a service scaled by hand).
//! 3. **Decide** with [`offhours::plan_down`] / [`offhours::plan_up`]: excluded, already
//!    down, or nothing saved → `skipped`; a rollout in progress at scale-down, or a
//!    snapshot that cannot be read → `scale.skipped` is sent and the invocation fails
//!    (retryable for the rollout), nothing changed.
//! 4. **Scale down**: TagResource with the snapshot *first* (only when none exists: a
//!    snapshot is never overwritten), then RegisterScalableTarget (lowered minimum, same
//!    maximum and suspended state) and UpdateService(desiredCount), each only when it
//!    changes something. A run that died after the tag is finished by the retry, which
//!    finds the snapshot and only lowers.
//!    **Scale up**: RegisterScalableTarget (the saved min, max, suspended state),
//!    UpdateService(desiredCount), each only when it changes something, then
//!    UntagResource of the snapshot *last*: a run that dies before it restores again,
//!    harmlessly, on the retry.
//! 5. **Estimate** the saving of one night (DescribeTaskDefinition for the task's CPU and
//!    memory, only when the task count changes; a failure there only loses the figure)
//!    and **notify** `scale.down`, `scale.up` or `scale.skipped`.
//!
//! With `DRY_RUN=true` or `"dry_run": true`: read, decide and notify; change nothing.
//!
//! AWS calls, Publish excluded: prod's scale-down 6 (DescribeServices,
//! DescribeScalableTargets, TagResource, RegisterScalableTarget, UpdateService,
//! DescribeTaskDefinition), a second one 2; prod's scale-up 6 (DescribeServices,
//! DescribeScalableTargets, RegisterScalableTarget, UpdateService, UntagResource,
//! DescribeTaskDefinition), a second one 2; excluded 2; dev (no scalable target) 5 each
//! way; a dry run 3 (the reads and DescribeTaskDefinition).

// Production code never panics on a missing value: every fallible step returns an
// Error that says what to do (tests may unwrap). Enforced by clippy in CI.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tracing::{info, warn};

use menotime_shared::aws::autoscaling::{resource_id, ScalingApi};
use menotime_shared::aws::ecs::ServiceOps;
use menotime_shared::config::OffhoursConfig;
use menotime_shared::domain::deploy::{self, ServiceState};
use menotime_shared::domain::offhours::{
    self, Capacity, DownPlan, SkipReason, Snapshot, Targets, UpPlan,
};
use menotime_shared::notify::{dedup_key, EventType, Notification, Publisher, Topics};
use menotime_shared::runbook::{self, Step};
use menotime_shared::{tags, Error};

/// What the scheduler asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    ScaleDown,
    ScaleUp,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ScaleDown => "scale-down",
            Action::ScaleUp => "scale-up",
        }
    }
}

/// What the scaler did (contract §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Lowered for the night (or, with `dry_run`, would have).
    ScaledDown,
    /// Restored from the snapshot (or, with `dry_run`, would have).
    ScaledUp,
    /// Left alone: excluded, already down, or nothing saved.
    Skipped,
}

/// A capacity as reported in the outcome: `min`, `max` and `suspended` are null for a
/// service without a scalable target; `suspended` is `none` or e.g. `in+scheduled`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CapacityView {
    pub min: Option<i32>,
    pub max: Option<i32>,
    pub desired: i32,
    pub suspended: Option<String>,
}

impl From<&Capacity> for CapacityView {
    fn from(c: &Capacity) -> Self {
        CapacityView {
            min: c.target.map(|t| t.min),
            max: c.target.map(|t| t.max),
            desired: c.desired,
            suspended: c.target.map(|t| t.suspended.render()),
        }
    }
}

/// One service's part of the outcome (there is one configured service).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceOutcome {
    pub service: String,
    pub cluster: String,
    pub before: CapacityView,
    /// What the service has after this invocation; in a dry run, what it would have.
    pub after: CapacityView,
    /// One sentence saying what was done and why.
    pub reason: String,
    /// The snapshot tag involved: written (first scale-down), kept (an earlier run's),
    /// or restored and removed (scale-up).
    pub snapshot: Option<String>,
    /// USD saved by one off-hours night at the manual's Fargate prices, when known.
    pub estimated_saving_usd: Option<f64>,
    /// The `event_type` published.
    pub notification: Option<&'static str>,
}

/// The invocation result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    pub outcome: Decision,
    pub action: Action,
    pub dry_run: bool,
    /// The service entry's reason, for the log line.
    pub reason: String,
    pub environment: String,
    pub source_event_id: String,
    pub services: Vec<ServiceOutcome>,
}

impl menotime_shared::lambda::Decided for Outcome {
    fn decision(&self) -> String {
        format!(
            "{} ({}{})",
            menotime_shared::lambda::decision_name(&self.outcome),
            self.action.as_str(),
            if self.dry_run { ", dry run" } else { "" }
        )
    }

    fn reason(&self) -> &str {
        &self.reason
    }
}

/// The scheduler's input, accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub action: Action,
    pub dry_run: bool,
    /// The scheduler's execution id, when the schedule passes it (`executionId`).
    pub execution_id: Option<String>,
    /// The scheduled time, when the schedule passes it (`scheduledTime`).
    pub scheduled_time: Option<DateTime<Utc>>,
}

const ACCEPTED: &str = r#"offhours-scaler accepts only the scheduler's input {"action": "scale-down"} or {"action": "scale-up"}, optionally with "dry_run": true"#;

/// A value for an error message: its JSON, cut to a readable length.
fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 80 {
        s
    } else {
        format!("{}...", s.chars().take(77).collect::<String>())
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The first non-empty string among `keys` (an execution id, a time).
fn string_field<'a>(o: &'a serde_json::Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .filter_map(|k| o.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .find(|s| !s.is_empty())
}

/// Accepts the scheduler's input (contract §5), strictly: `action` exactly `scale-down`
/// or `scale-up`, `dry_run` absent or a boolean; other fields are ignored.
pub fn parse_request(event: &Value) -> Result<Request, Error> {
    let Some(o) = event.as_object() else {
        return Err(Error::rejected(format!(
            "{ACCEPTED}; got a JSON {} ({})",
            kind(event),
            shown(event)
        )));
    };
    let action = match o.get("action") {
        Some(Value::String(a)) if a == "scale-down" => Action::ScaleDown,
        Some(Value::String(a)) if a == "scale-up" => Action::ScaleUp,
        Some(other) => {
            return Err(Error::rejected(format!(
                "unknown action {}: {ACCEPTED}",
                shown(other)
            )))
        }
        None if o.contains_key("detail-type") || o.contains_key("source") => {
            return Err(Error::rejected(format!(
                "got an EventBridge event (detail-type {}, source {}) without an action, such as the scheduler's default input; set the schedule's input to {{\"action\": \"scale-down\"}} or {{\"action\": \"scale-up\"}}. {ACCEPTED}",
                shown(o.get("detail-type").unwrap_or(&Value::Null)),
                shown(o.get("source").unwrap_or(&Value::Null)),
            )))
        }
        None => {
            return Err(Error::rejected(format!(
                "the input has no \"action\" ({}): {ACCEPTED}",
                shown(event)
            )))
        }
    };
    let dry_run = match o.get("dry_run") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(Error::rejected(format!(
                "\"dry_run\" must be true or false, not {}: {ACCEPTED}",
                shown(other)
            )))
        }
    };
    let execution_id = string_field(o, &["executionId", "execution_id"])
        .map(|s| s.chars().take(256).collect::<String>());
    let scheduled_time = string_field(o, &["scheduledTime", "scheduled_time"])
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(Request {
        action,
        dry_run,
        execution_id,
        scheduled_time,
    })
}

/// Task-level CPU as ECS reports it: units (`1024`), or `1 vCPU` / `0.5 vCPU`.
pub fn cpu_units(s: &str) -> Option<u32> {
    scaled(s, &["vcpu"], 1024.0)
}

/// Task-level memory as ECS reports it: MiB (`2048`), or `2 GB`.
pub fn memory_mib(s: &str) -> Option<u32> {
    scaled(s, &["gb"], 1024.0)
}

fn scaled(s: &str, units: &[&str], factor: f64) -> Option<u32> {
    let s = s.trim().to_ascii_lowercase();
    if let Ok(n) = s.parse::<u32>() {
        return Some(n);
    }
    let number = units
        .iter()
        .find_map(|u| s.strip_suffix(u))
        .map(str::trim)?;
    let v = number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)?
        * factor;
    (v <= f64::from(u32::MAX)).then(|| v.round() as u32)
}

/// The saving of one night, as far as it could be known.
#[derive(Clone, Debug, PartialEq)]
struct Estimate {
    usd: Option<f64>,
    /// For people: the figure and how it was computed, or why it is unknown.
    line: String,
    cpu: Option<String>,
    memory: Option<String>,
    tasks: i32,
}

/// One invocation's facts about itself.
struct Run {
    action: Action,
    dry_run: bool,
    event_id: String,
    occurred_at: DateTime<Utc>,
}

/// The handler, generic over its AWS dependencies so tests can drive it with fakes.
pub struct OffhoursScaler<E, A, P> {
    cfg: OffhoursConfig,
    topics: Topics,
    ecs: E,
    scaling: A,
    publisher: P,
    clock: fn() -> DateTime<Utc>,
    function_name: Option<String>,
}

impl<E: ServiceOps + Sync, A: ScalingApi + Sync, P: Publisher + Sync> OffhoursScaler<E, A, P> {
    pub fn new(cfg: OffhoursConfig, ecs: E, scaling: A, publisher: P) -> Self {
        let topics = Topics::from_config(&cfg.common);
        Self {
            cfg,
            topics,
            ecs,
            scaling,
            publisher,
            clock: Utc::now,
            function_name: None,
        }
    }

    /// Where "now" comes from (the snapshot's `saved=` time, and `occurred_at` when the
    /// input carries no scheduled time).
    pub fn with_clock(mut self, clock: fn() -> DateTime<Utc>) -> Self {
        self.clock = clock;
        self
    }

    /// The function's own name (`AWS_LAMBDA_FUNCTION_NAME`), for the "invoke the
    /// scale-up now" command in scale-down notifications.
    pub fn with_function_name(mut self, name: Option<String>) -> Self {
        self.function_name = name.filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
        self
    }

    pub fn config(&self) -> &OffhoursConfig {
        &self.cfg
    }

    pub async fn handle(&self, event: Value, request_id: &str) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        // 1. Accept.
        let req = parse_request(&event)?;
        let run = Run {
            action: req.action,
            dry_run: c.dry_run || req.dry_run,
            event_id: req
                .execution_id
                .clone()
                .unwrap_or_else(|| request_id.to_owned()),
            occurred_at: req.scheduled_time.unwrap_or_else(self.clock),
        };
        info!(action = run.action.as_str(), dry_run = run.dry_run, event_id = %run.event_id, "off-hours request");

        // 2. Read.
        let service = self.ecs.describe_service(&c.cluster, &c.service).await?;
        let target = self.scaling.describe_target(&c.cluster, &c.service).await?;
        let current = Capacity {
            target,
            desired: service.desired_count,
        };
        info!(current = %current, snapshot = ?service.tags.get(tags::OFFHOURS_SNAPSHOT), exclude = ?service.tags.get(tags::OFFHOURS), "service read");

        // 3.-5. Decide, act, notify.
        let (decision, entry) = match run.action {
            Action::ScaleDown => self.scale_down(&run, &service, &current).await?,
            Action::ScaleUp => self.scale_up(&run, &service, &current).await?,
        };
        Ok(Outcome {
            outcome: decision,
            action: run.action,
            dry_run: run.dry_run,
            reason: entry.reason.clone(),
            environment: c.environment.as_str().to_owned(),
            source_event_id: run.event_id,
            services: vec![entry],
        })
    }

    async fn scale_down(
        &self,
        run: &Run,
        service: &ServiceState,
        current: &Capacity,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let c = &self.cfg.common;
        let snapshot = service
            .tags
            .get(tags::OFFHOURS_SNAPSHOT)
            .map(String::as_str);
        let plan = offhours::plan_down(
            current,
            snapshot,
            service.tags.get(tags::OFFHOURS).map(String::as_str),
            deploy::rollout_in_progress(service),
            Targets {
                min_capacity: self.cfg.min_capacity,
                desired_count: self.cfg.desired_count,
            },
            c.environment.task_floor(),
        );
        info!(?plan, "scale-down plan");
        let (save, to) = match plan {
            Err(e) => return Err(self.held(run, service, current, e).await),
            Ok(DownPlan::Skip(why)) => return self.skipped(run, service, current, why).await,
            // Saved to the second: the tag is for people.
            Ok(DownPlan::Lower { save, to }) => (
                save.map(|s| s.saved_at((self.clock)().trunc_subsecs(0))),
                to,
            ),
        };

        if !run.dry_run {
            // The snapshot first: whatever happens next, the morning knows what to restore.
            if let Some(s) = &save {
                self.ecs
                    .tag_service(
                        &self.service_arn(service),
                        &[(tags::OFFHOURS_SNAPSHOT.to_owned(), s.render())],
                    )
                    .await?;
                info!(snapshot = %s, "snapshot saved");
            }
            self.apply(current, &to).await?;
        }
        let estimate = self
            .estimate(service, offhours::tasks_removed(current, &to))
            .await;

        let snapshot_line = match (&save, snapshot) {
            (Some(s), _) => s.render(),
            (None, Some(kept)) => kept.to_owned(),
            (None, None) => String::new(),
        };
        let (summary, reason) = if run.dry_run {
            (
                format!("dry run: would scale {} down for the night", c.service),
                format!(
                    "dry run: would {}lower {} from {current} to {to}; nothing was changed",
                    if save.is_some() {
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
                    change(current, &to)
                ),
                match &save {
                    Some(_) => format!(
                        "saved {snapshot_line} in {} and lowered {} from {current} to {to}",
                        tags::OFFHOURS_SNAPSHOT,
                        c.service
                    ),
                    None => format!(
                        "lowered {} from {current} to {to}; kept the snapshot an earlier run saved ({snapshot_line}), which is never overwritten",
                        c.service
                    ),
                },
            )
        };
        let mut n = self
            .note(EventType::ScaleDown, run, &summary, current, &to)
            .with_fact(
                "Snapshot",
                match &save {
                    Some(_) if run.dry_run => format!("would save {snapshot_line}"),
                    Some(_) => format!("saved {snapshot_line}"),
                    None => format!("kept from an earlier run: {snapshot_line}"),
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
            .with_step(describe_target_step(c))
            .with_step(desired_step(c))
            .with_step(show_snapshot_step(c, &self.service_arn(service)));
        if let Some(step) = self.invoke_up_step(c) {
            n = n.with_step(step);
        }
        self.finish(
            n,
            run,
            Decision::ScaledDown,
            reason,
            current,
            &to,
            Some(snapshot_line),
            &estimate,
        )
        .await
    }

    async fn scale_up(
        &self,
        run: &Run,
        service: &ServiceState,
        current: &Capacity,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let c = &self.cfg.common;
        let plan = offhours::plan_up(
            current,
            service
                .tags
                .get(tags::OFFHOURS_SNAPSHOT)
                .map(String::as_str),
            service.tags.get(tags::OFFHOURS).map(String::as_str),
        );
        info!(?plan, "scale-up plan");
        let (to, snapshot, notes) = match plan {
            Err(e) => return Err(self.held(run, service, current, e).await),
            Ok(UpPlan::Skip(why)) => return self.skipped(run, service, current, why).await,
            Ok(UpPlan::Restore {
                to,
                snapshot,
                notes,
            }) => (to, snapshot, notes),
        };

        if !run.dry_run {
            self.apply(current, &to).await?;
            // The snapshot last: a run that dies before this restores again on the retry.
            self.ecs
                .untag_service(
                    &self.service_arn(service),
                    &[tags::OFFHOURS_SNAPSHOT.to_owned()],
                )
                .await?;
            info!(snapshot = %snapshot, "snapshot removed");
        }
        // The night that ends saved the tasks the day had (as saved) and the night did
        // not: a count raised only by the restored minimum was never removed.
        let day = Capacity {
            target: None,
            desired: snapshot.desired,
        };
        let estimate = self
            .estimate(service, offhours::tasks_removed(&day, current))
            .await;

        let (summary, reason) = if run.dry_run {
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
                    change(current, &to)
                ),
                format!(
                    "restored {} from {current} to {to} as saved in {} ({snapshot}) and removed the snapshot",
                    c.service,
                    tags::OFFHOURS_SNAPSHOT
                ),
            )
        };
        let mut n = self
            .note(EventType::ScaleUp, run, &summary, current, &to)
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
        for note in &notes {
            n = n.with_fact("Note", note);
        }
        if run.dry_run {
            n = n.with_fact(
                "Dry run",
                "nothing was registered, updated or untagged (DRY_RUN or \"dry_run\": true)",
            );
        }
        n = n
            .with_step(describe_target_step(c))
            .with_step(desired_step(c))
            .with_detail("notes", notes.clone());
        self.finish(
            n,
            run,
            Decision::ScaledUp,
            reason,
            current,
            &to,
            Some(snapshot.render()),
            &estimate,
        )
        .await
    }

    /// Sets the service to `to`: the scalable target first (a lower minimum before a
    /// lower desired count, so the autoscaler does not raise it again; a higher one
    /// before a higher count), then the desired count. Each call only when it changes
    /// something.
    async fn apply(&self, current: &Capacity, to: &Capacity) -> Result<(), Error> {
        let c = &self.cfg.common;
        if let Some(t) = to.target.filter(|t| current.target != Some(*t)) {
            self.scaling
                .register_target(&c.cluster, &c.service, &t)
                .await?;
            info!(min = t.min, max = t.max, suspended = %t.suspended.render(), "scalable target set");
        }
        if to.desired != current.desired {
            self.ecs
                .set_desired_count(&c.cluster, &c.service, to.desired)
                .await?;
            info!(desired = to.desired, "desired count set");
        }
        Ok(())
    }

    /// The saving of one night for `tasks` tasks, from the service's task definition
    /// (one DescribeTaskDefinition, only when a task count changes). Informational: a
    /// failure only loses the figure, because the capacity has already been changed.
    async fn estimate(&self, service: &ServiceState, tasks: i32) -> Estimate {
        let hours = self.cfg.night_hours;
        if tasks <= 0 {
            return Estimate {
                usd: Some(0.0),
                line: "USD 0.00: the task count does not change".to_owned(),
                cpu: None,
                memory: None,
                tasks: 0,
            };
        }
        let unknown = |why: String| Estimate {
            usd: None,
            line: format!("unknown ({why})"),
            cpu: None,
            memory: None,
            tasks,
        };
        let td = match self
            .ecs
            .describe_task_definition(&service.task_definition)
            .await
        {
            Ok(td) => td,
            Err(e) => {
                warn!(error = %e, "no saving estimate");
                return unknown(format!("the task definition could not be read: {e}"));
            }
        };
        let cpu = td.cpu.as_deref().and_then(cpu_units);
        let memory = td.memory.as_deref().and_then(memory_mib);
        let (Some(cpu_u), Some(mem)) = (cpu, memory) else {
            return unknown(format!(
                "{} sets no task-level cpu and memory (cpu {:?}, memory {:?})",
                td.short(),
                td.cpu,
                td.memory
            ));
        };
        let usd = offhours::nightly_saving(cpu_u, mem, tasks, hours);
        Estimate {
            usd: Some(usd),
            line: format!(
                "USD {usd:.2} per night: {tasks} task(s) of {} vCPU and {} GB ({}) for {hours} h, at the manual's Fargate prices (USD {}/vCPU-hour, {}/GB-hour)",
                f64::from(cpu_u) / 1024.0,
                f64::from(mem) / 1024.0,
                td.short(),
                offhours::PRICE_VCPU_HOUR,
                offhours::PRICE_GB_HOUR
            ),
            cpu: td.cpu.clone(),
            memory: td.memory.clone(),
            tasks,
        }
    }

    async fn skipped(
        &self,
        run: &Run,
        service: &ServiceState,
        current: &Capacity,
        why: SkipReason,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let c = &self.cfg.common;
        let snapshot = service.tags.get(tags::OFFHOURS_SNAPSHOT);
        let what = match run.action {
            Action::ScaleDown => "scale-down",
            Action::ScaleUp => "scale-up",
        };
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
        let mut n = self
            .note(
                EventType::ScaleSkipped,
                run,
                &format!("Off-hours {what} skipped: {} {short}", c.service),
                current,
                current,
            )
            .with_fact("Reason", &reason);
        let arn = self.service_arn(service);
        if let (SkipReason::Excluded, Some(s)) = (why, snapshot) {
            // Excluded while a night capacity is in place: the scaler will not restore it.
            n = n.with_fact(
                "Warning",
                format!(
                    "{} carries the snapshot {s} but is excluded: the scaler will not restore it. Restore it by hand with the commands below, or remove menotime:offhours to let the next scale-up do it",
                    c.service
                ),
            );
            n = restore_steps(c, &arn, s)
                .into_iter()
                .fold(n, Notification::with_step);
        }
        n = n
            .with_step(show_snapshot_step(c, &arn))
            .with_step(describe_target_step(c));
        let estimate = Estimate {
            usd: None,
            line: "none: nothing was changed".to_owned(),
            cpu: None,
            memory: None,
            tasks: 0,
        };
        let n = n.with_fact("Estimated saving", &estimate.line).with_detail(
            "skip_reason",
            match why {
                SkipReason::Excluded => "excluded",
                SkipReason::AlreadyDown => "already_down",
                SkipReason::NothingSaved => "nothing_saved",
            },
        );
        self.finish(
            n,
            run,
            Decision::Skipped,
            reason,
            current,
            current,
            snapshot.cloned(),
            &estimate,
        )
        .await
    }

    /// A decision that cannot be carried out now (a rollout in progress) or at all (a
    /// snapshot nobody can read): the team is told with `scale.skipped`, then the
    /// invocation fails with `e` (a rollout is retried by Lambda). Nothing was changed.
    async fn held(&self, run: &Run, service: &ServiceState, current: &Capacity, e: Error) -> Error {
        let c = &self.cfg.common;
        let arn = self.service_arn(service);
        let (summary, key) = match &e {
            Error::NotNow(_) => (
                format!(
                    "Off-hours {} postponed: {} is deploying, retried later",
                    run.action.as_str(),
                    c.service
                ),
                "deploying",
            ),
            _ => (
                format!(
                    "Off-hours {} held: the snapshot tag of {} cannot be read",
                    run.action.as_str(),
                    c.service
                ),
                "unreadable_snapshot",
            ),
        };
        warn!(error = %e, "not scaling");
        let mut n = self
            .note(EventType::ScaleSkipped, run, &summary, current, current)
            .with_fact("Reason", e.to_string())
            .with_step(runbook::describe_deployments(c))
            .with_step(show_snapshot_step(c, &arn))
            .with_step(describe_target_step(c))
            .with_detail("skip_reason", key)
            .with_detail("action", run.action.as_str())
            .with_detail("reason", e.to_string())
            .with_detail("dry_run", run.dry_run)
            .with_detail("before", json!(CapacityView::from(current)))
            .with_detail("after", json!(CapacityView::from(current)));
        if let Some(s) = service.tags.get(tags::OFFHOURS_SNAPSHOT) {
            n = n.with_detail("snapshot", s.clone());
        }
        if let Err(publish) = self.send(&n).await {
            warn!(error = %publish, "the scale.skipped notification could not be sent");
        }
        e
    }

    fn note(
        &self,
        event_type: EventType,
        run: &Run,
        summary: &str,
        before: &Capacity,
        after: &Capacity,
    ) -> Notification {
        let c = &self.cfg.common;
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

    /// Adds the details every notification carries, publishes it, and returns the
    /// service's part of the outcome.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        n: Notification,
        run: &Run,
        decision: Decision,
        reason: String,
        before: &Capacity,
        after: &Capacity,
        snapshot: Option<String>,
        estimate: &Estimate,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let c = &self.cfg.common;
        let n = n
            .with_detail("action", run.action.as_str())
            .with_detail("dry_run", run.dry_run)
            .with_detail("reason", reason.clone())
            .with_detail("before", json!(CapacityView::from(before)))
            .with_detail("after", json!(CapacityView::from(after)))
            .with_detail("snapshot", snapshot.clone())
            .with_detail("estimated_saving_usd", estimate.usd)
            .with_detail("night_hours", self.cfg.night_hours)
            .with_detail("tasks_changed", estimate.tasks)
            .with_detail("task_cpu", estimate.cpu.clone())
            .with_detail("task_memory", estimate.memory.clone());
        self.send(&n).await?;
        Ok((
            decision,
            ServiceOutcome {
                service: c.service.clone(),
                cluster: c.cluster.clone(),
                before: before.into(),
                after: after.into(),
                reason,
                snapshot,
                estimated_saving_usd: estimate.usd,
                notification: Some(n.event_type.as_str()),
            },
        ))
    }

    async fn send(&self, n: &Notification) -> Result<(), Error> {
        let rendered = n.render(&self.topics);
        let id = self.publisher.publish(&rendered).await?;
        info!(event_type = n.event_type.as_str(), topic = %rendered.topic_arn, message_id = %id, subject = %rendered.subject, "notified");
        Ok(())
    }

    fn service_arn(&self, service: &ServiceState) -> String {
        if service.arn.is_empty() {
            runbook::service_arn(&self.cfg.common)
        } else {
            service.arn.clone()
        }
    }

    /// Bring the day capacity back before the scheduled scale-up.
    fn invoke_up_step(&self, c: &menotime_shared::config::CommonConfig) -> Option<Step> {
        let name = self.function_name.as_ref()?;
        Some(Step::new(
            "To restore the daytime capacity early, run the scale-up now",
            format!(
                "aws lambda invoke --region {} --function-name {name} --cli-binary-format raw-in-base64-out --payload '{{\"action\": \"scale-up\"}}' /dev/stdout",
                c.region
            ),
        ))
    }
}

/// What changed, for a subject: the desired count, else the minimum, else the whole
/// capacity (a retry that only removes the snapshot).
fn change(before: &Capacity, after: &Capacity) -> String {
    if before.desired != after.desired {
        return format!("desired {} -> {}", before.desired, after.desired);
    }
    match (before.target, after.target) {
        (Some(b), Some(a)) if b.min != a.min => format!("min {} -> {}", b.min, a.min),
        _ => after.to_string(),
    }
}

fn describe_target_step(c: &menotime_shared::config::CommonConfig) -> Step {
    Step::new(
        "See the scalable target (min, max, suspended state)",
        format!(
            "aws application-autoscaling describe-scalable-targets --region {} --service-namespace ecs --scalable-dimension ecs:service:DesiredCount --resource-ids {}",
            c.region,
            resource_id(&c.cluster, &c.service)
        ),
    )
}

fn desired_step(c: &menotime_shared::config::CommonConfig) -> Step {
    Step::new(
        "See the service's task counts",
        format!(
            "aws ecs describe-services --region {} --cluster {} --services {} --query 'services[0].{{desired:desiredCount,running:runningCount,pending:pendingCount}}'",
            c.region, c.cluster, c.service
        ),
    )
}

fn show_snapshot_step(c: &menotime_shared::config::CommonConfig, arn: &str) -> Step {
    Step::new(
        format!(
            "See the saved capacity (tag {}) and the exclusion (tag {})",
            tags::OFFHOURS_SNAPSHOT,
            tags::OFFHOURS
        ),
        format!(
            "aws ecs list-tags-for-resource --region {} --resource-arn {arn}",
            c.region
        ),
    )
}

/// The commands that restore `snapshot` by hand, in the scaler's own order.
fn restore_steps(
    c: &menotime_shared::config::CommonConfig,
    arn: &str,
    snapshot: &str,
) -> Vec<Step> {
    let mut steps = Vec::new();
    match Snapshot::parse(snapshot) {
        Ok(s) => {
            if let Some(t) = s.target {
                let suspended = t
                    .suspended
                    .map(|s| {
                        format!(
                            " --suspended-state DynamicScalingInSuspended={},DynamicScalingOutSuspended={},ScheduledScalingSuspended={}",
                            s.dynamic_in, s.dynamic_out, s.scheduled
                        )
                    })
                    .unwrap_or_default();
                steps.push(Step::new(
                    "Restore the scalable target",
                    format!(
                        "aws application-autoscaling register-scalable-target --region {} --service-namespace ecs --scalable-dimension ecs:service:DesiredCount --resource-id {} --min-capacity {} --max-capacity {}{suspended}",
                        c.region,
                        resource_id(&c.cluster, &c.service),
                        t.min,
                        t.max
                    ),
                ));
            }
            let desired = s.target.map_or(s.desired, |t| s.desired.max(t.min));
            steps.push(Step::new(
                "Restore the desired count",
                format!(
                    "aws ecs update-service --region {} --cluster {} --service {} --desired-count {desired}",
                    c.region, c.cluster, c.service
                ),
            ));
        }
        Err(problem) => {
            warn!(%problem, "the snapshot cannot be read; only the untag command is offered")
        }
    }
    steps.push(Step::new(
        "Then remove the snapshot",
        format!(
            "aws ecs untag-resource --region {} --resource-arn {arn} --tag-keys {}",
            c.region,
            tags::OFFHOURS_SNAPSHOT
        ),
    ));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_sizes_in_units_or_words() {
        assert_eq!(cpu_units("1024"), Some(1024));
        assert_eq!(cpu_units("1 vCPU"), Some(1024));
        assert_eq!(cpu_units("0.25 vcpu"), Some(256));
        assert_eq!(memory_mib("2048"), Some(2048));
        assert_eq!(memory_mib("2 GB"), Some(2048));
        assert_eq!(memory_mib("0.5GB"), Some(512));
        for bad in ["", "lots", "-1", "-1 GB", "1 TB", "NaN GB"] {
            assert_eq!(memory_mib(bad), None, "{bad}");
        }
    }
}
