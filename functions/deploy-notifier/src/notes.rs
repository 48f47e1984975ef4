//! What deploy-notifier tells people: the page, the resolve and the team's notices
//! (docs/reference.md §4), composed from the facts `lib.rs` gathered. Nothing here
//! calls AWS.

use menotime_shared::arn::task_definition_short;
use menotime_shared::config::{Environment, NotifierConfig};
use menotime_shared::domain::deploy::RevisionSummary;
use menotime_shared::domain::ecs_event::{
    DeploymentChange, DeploymentEvent, OomKill, ServiceEvent, TaskEvent,
};
use menotime_shared::domain::incident::{Marker, RESOLVE};
use menotime_shared::domain::service::ServiceState;
use menotime_shared::notify::{dedup_key, EventType, Notification};
use menotime_shared::{runbook, tags, Error};

/// Every deployment notification: the deployment and its event.
fn deployment_note(
    cfg: &NotifierConfig,
    event_type: EventType,
    d: &DeploymentEvent,
    summary: &str,
) -> Notification {
    let c = &cfg.common;
    Notification::new(
        event_type,
        c,
        summary,
        d.at,
        &d.envelope.id,
        dedup_key(c.environment, &c.service, "deployment"),
    )
    .with_fact("Deployment", &d.deployment_id)
    .with_detail("deployment_id", d.deployment_id.clone())
    .with_detail("event_name", d.event_name.clone())
}

/// What a page about a failed (or rolled-back) deployment knows.
pub struct Failure<'a> {
    pub d: &'a DeploymentEvent,
    pub service: &'a ServiceState,
    /// The deployment the circuit breaker rolls back to.
    pub rollback_to: Option<&'a str>,
    /// The failed deployment's revision (ARN), if ECS still lists it.
    pub failed_td: Option<&'a str>,
    pub failed_rev: Option<&'a RevisionSummary>,
    /// The revision to roll back to (ARN).
    pub previous: Option<&'a str>,
    /// The freeze this event wanted to write, if any.
    pub freeze: Option<&'a str>,
    /// This invocation froze deploys.
    pub froze: bool,
    /// The incident (and the freeze) could not be recorded.
    pub state_error: Option<&'a Error>,
}

/// `deploy.failed` or `deploy.rollback`: what failed, the way back, the freeze.
pub fn failure(cfg: &NotifierConfig, f: &Failure<'_>) -> Notification {
    let c = &cfg.common;
    let d = f.d;
    let frozen_now = f.froze || f.service.tags.freeze.is_some();
    let (event_type, summary) = match d.change {
        DeploymentChange::Rollback { .. } => (
            EventType::DeployRollback,
            format!("Circuit breaker rolling back {}", c.service),
        ),
        _ => (
            EventType::DeployFailed,
            format!("Deployment failed: {}", c.service),
        ),
    };
    let mut n = deployment_note(cfg, event_type, d, &summary).with_fact("Reason", &d.reason);
    if let Some(to) = f.rollback_to {
        n = n.with_fact("Rolling back to", format!("deployment {to}"));
    }
    n = n.with_fact(
        "Failed revision",
        f.failed_td
            .map(task_definition_short)
            .unwrap_or_else(|| "(deployment no longer listed by ECS)".into()),
    );
    if let Some(r) = f.failed_rev {
        n = n.with_fact("Image", r.image_line(cfg.container.as_deref()));
        if let Some(tag) = r.image_tag() {
            n = n.with_fact("Image tag", tag);
        }
    }
    n = n
        .with_fact(
            "Previous revision",
            f.previous
                .map(task_definition_short)
                .unwrap_or_else(|| "(not shown by ECS; see list-task-definitions below)".into()),
        )
        .with_fact("Tasks", f.service.tasks_line())
        .with_fact("Deploys", freeze_line(cfg, f))
        .with_step(runbook::describe_deployments(c))
        .with_step(runbook::tail_logs(c));
    match f.previous {
        Some(p) => {
            let mut step = runbook::roll_back(c, &task_definition_short(p));
            step.what = format!(
                "If ECS has not rolled back by itself, {}",
                lower_first(&step.what)
            );
            n = n.with_step(step);
        }
        None => {
            if let Some(r) = f.failed_rev {
                n = n.with_step(runbook::list_revisions(c, &r.family));
            }
        }
    }
    if f.state_error.is_some() && f.freeze.is_some() {
        n = n.with_step(runbook::freeze(
            c,
            &format!("deployment {} failed", d.deployment_id),
        ));
    }
    if frozen_now || (c.dry_run && f.freeze.is_some()) {
        n = n.with_step(runbook::unfreeze(c));
    }
    n.with_console(runbook::service_console(c))
        .with_detail("reason", d.reason.clone())
        .with_detail("rollback_to_deployment", f.rollback_to.map(str::to_owned))
        .with_detail("failed_task_definition", f.failed_td.map(str::to_owned))
        .with_detail("previous_task_definition", f.previous.map(str::to_owned))
        .with_detail(
            "image",
            f.failed_rev.map(|r| r.image_line(cfg.container.as_deref())),
        )
        .with_detail(
            "image_tag",
            f.failed_rev.and_then(|r| r.image_tag().map(str::to_owned)),
        )
        .with_detail("frozen", frozen_now)
        .with_detail("froze", f.froze)
        .with_detail("running_count", f.service.running_count)
        .with_detail("desired_count", f.service.desired_count)
        .with_detail("dry_run", c.dry_run)
}

/// The page's "Deploys:" line: frozen, already frozen, or why not.
fn freeze_line(cfg: &NotifierConfig, f: &Failure<'_>) -> String {
    if let Some(e) = f.state_error {
        if f.freeze.is_some() {
            return format!(
                "NOT FROZEN YET: writing the freeze failed ({}). This invocation fails so that Lambda's retry writes it (the retry may page again, with the same dedup_key); to freeze now, run the command below",
                e.kind()
            );
        }
    }
    if f.froze {
        return format!(
            "FROZEN ({}): scan-gate deploys nothing until someone reviews this and lifts the freeze",
            tags::DEPLOY_FREEZE
        );
    }
    if let Some(v) = &f.service.tags.freeze {
        return format!("already frozen: {v}");
    }
    if cfg.common.dry_run && f.freeze.is_some() {
        return "dry run: would have frozen deploys; nothing was changed".into();
    }
    if !cfg.freeze_on_failure {
        return "not frozen (FREEZE_ON_FAILURE=false)".into();
    }
    "not frozen".into()
}

/// `deploy.completed` for the team; `resolving` names the page it resolves.
pub fn completed(
    cfg: &NotifierConfig,
    d: &DeploymentEvent,
    service: &ServiceState,
    revision: &str,
    resolving: Option<&Marker>,
) -> Notification {
    let c = &cfg.common;
    let freeze = service.tags.freeze.as_deref();
    let mut n = deployment_note(
        cfg,
        EventType::DeployCompleted,
        d,
        &format!("Deployment completed: {} runs {revision}", c.service),
    )
    .with_fact("Revision", revision)
    .with_fact("Tasks", service.tasks_line());
    if let Some(why) = freeze {
        n = n.with_fact(
            "Deploys",
            format!("still frozen ({why}) until someone reviews the failure and lifts the freeze"),
        );
    }
    if let Some(m) = resolving {
        n = n.with_fact(
            "Resolves",
            format!(
                "the page for deployment {}",
                m.deployment.as_deref().unwrap_or("?")
            ),
        );
    }
    n = n.with_step(runbook::describe_deployments(c));
    if freeze.is_some() {
        n = n.with_step(runbook::unfreeze(c));
    }
    n.with_console(runbook::service_console(c))
        .with_detail("task_definition", revision.to_owned())
        .with_detail("frozen", freeze.is_some())
        .with_detail("running_count", service.running_count)
        .with_detail("desired_count", service.desired_count)
}

/// The resolve on the on-call topic that goes with `completed`.
pub fn deployment_resolved(
    cfg: &NotifierConfig,
    completed: &Notification,
    revision: &str,
    resolved: Option<&Marker>,
) -> Notification {
    let mut r = completed.clone().resolving();
    r.summary = format!(
        "Resolved: {} deployment completed, {revision} runs",
        cfg.common.service
    );
    r.with_detail(
        "resolved_deployment",
        resolved.and_then(|m| m.deployment.clone()),
    )
}

/// `deploy.in_progress` for the team.
pub fn in_progress(
    cfg: &NotifierConfig,
    d: &DeploymentEvent,
    service: &ServiceState,
    revision: &str,
) -> Notification {
    let c = &cfg.common;
    deployment_note(
        cfg,
        EventType::DeployInProgress,
        d,
        &format!("Deployment in progress: {} to {revision}", c.service),
    )
    .with_fact("Revision", revision)
    .with_fact("Tasks", service.tasks_line())
    .with_step(runbook::describe_deployments(c))
    .with_console(runbook::service_console(c))
    .with_detail("task_definition", revision.to_owned())
}

/// What an impairment means, in words.
pub fn impairment(event_name: &str) -> &'static str {
    match event_name {
        "SERVICE_TASK_START_IMPAIRED" => "tasks keep failing to start",
        "SERVICE_TASK_PLACEMENT_FAILURE" => "ECS cannot place tasks (no capacity)",
        _ => "service discovery reports an unhealthy instance",
    }
}

/// `service.impaired`.
pub fn impaired(cfg: &NotifierConfig, s: &ServiceEvent, service: &ServiceState) -> Notification {
    let c = &cfg.common;
    let mut n = Notification::new(
        EventType::ServiceImpaired,
        c,
        format!(
            "Service impaired: {} {}",
            c.service,
            impairment(&s.event_name)
        ),
        s.at,
        &s.envelope.id,
        dedup_key(c.environment, &c.service, "service"),
    )
    .with_fact("Event", &s.event_name)
    .with_fact("Tasks", service.tasks_line())
    .with_fact(
        "Running revision",
        task_definition_short(&service.task_definition),
    );
    if let Some(r) = &s.reason {
        n = n.with_fact("Reason", r);
    }
    n.with_step(runbook::service_events(c))
        .with_step(runbook::describe_deployments(c))
        .with_step(runbook::tail_logs(c))
        .with_console(runbook::service_console(c))
        .with_detail("event_name", s.event_name.clone())
        .with_detail("reason", s.reason.clone())
        .with_detail("running_count", service.running_count)
        .with_detail("desired_count", service.desired_count)
        .with_detail("pending_count", service.pending_count)
}

/// `service.recovered`: the resolve of an impairment page.
pub fn recovered(
    cfg: &NotifierConfig,
    s: &ServiceEvent,
    service: &ServiceState,
    was: Option<&Marker>,
) -> Notification {
    let c = &cfg.common;
    let since = was.map(|m| m.sent.iter().cloned().collect::<Vec<_>>().join(", "));
    Notification::new(
        EventType::ServiceRecovered,
        c,
        format!("Recovered: {} is in steady state", c.service),
        s.at,
        &s.envelope.id,
        dedup_key(c.environment, &c.service, "service"),
    )
    .with_fact("Tasks", service.tasks_line())
    .with_fact("Was", since.clone().unwrap_or_default())
    .with_step(runbook::service_events(c))
    .with_console(runbook::service_console(c))
    .with_detail("resolved_events", since)
    .with_detail("running_count", service.running_count)
    .with_detail("desired_count", service.desired_count)
}

/// `task.oom`: the task, its size, and the manual's three fixes.
pub fn oom(cfg: &NotifierConfig, t: &TaskEvent, oom: &OomKill) -> Notification {
    let c = &cfg.common;
    let memory = t.memory.as_deref().unwrap_or("unknown");
    let revision = oom_revision(t);
    let advice = match c.environment {
        Environment::Dev => "raise the task definition's memory, profile the application's memory, review the logs for OutOfMemory messages",
        _ => "the manual's fix: update the task definition's memory to 3 GB (3072 MiB), profile the application's memory, review the logs for OutOfMemory messages",
    };
    Notification::new(
        EventType::TaskOom,
        c,
        format!(
            "Task OOM-killed: {} container {} ({memory} MiB)",
            c.service, oom.container
        ),
        t.at,
        &t.envelope.id,
        dedup_key(c.environment, &c.service, &format!("task-oom/{}", t.task_id())),
    )
    .with_fact("Task", t.task_id())
    .with_fact("Container", &oom.container)
    .with_fact("Reason", &oom.reason)
    .with_fact(
        "Exit code",
        oom.exit_code.map(|x| x.to_string()).unwrap_or_else(|| "none".into()),
    )
    .with_fact("Revision", &revision)
    .with_fact(
        "Task size",
        format!("{} CPU units, {memory} MiB", t.cpu.as_deref().unwrap_or("unknown")),
    )
    .with_fact(
        "Likely causes",
        "a memory leak (check the logs), a working set larger than the task's memory, a database connection pool too large",
    )
    .with_fact("Fix", advice)
    .with_step(runbook::oom_logs(c))
    .with_step(runbook::describe_task(c, t.task_id()))
    .with_console(runbook::service_console(c))
    .with_detail("task_arn", t.task_arn.clone())
    .with_detail("container", oom.container.clone())
    .with_detail("reason", oom.reason.clone())
    .with_detail("exit_code", oom.exit_code)
    .with_detail("task_definition", t.task_definition_arn.clone())
    .with_detail("memory", t.memory.clone())
    .with_detail("cpu", t.cpu.clone())
    .with_detail("started_by", t.started_by.clone())
}

/// The stopped task's revision, `family:revision`.
pub fn oom_revision(t: &TaskEvent) -> String {
    t.task_definition_arn
        .as_deref()
        .map(task_definition_short)
        .unwrap_or_else(|| "unknown".into())
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A notification an earlier attempt recorded (`pending` in the incident marker) and
/// never confirmed as published, sent now by an invocation about another event of
/// the same incident: a page before its resolve, or the last incident's page before
/// the next one's. Composed from the marker, since the original event is not at hand.
pub fn undelivered(
    cfg: &NotifierConfig,
    kind: &str,
    marker: &Marker,
    service: &ServiceState,
    event_id: &str,
) -> Notification {
    let c = &cfg.common;
    let (event_type, incident, summary) = match (marker.deployment.as_deref(), kind) {
        (Some(d), RESOLVE) => (
            EventType::DeployCompleted,
            "deployment",
            format!("Resolved: {} deployment {d} is over", c.service),
        ),
        (Some(d), "rollback") => (
            EventType::DeployRollback,
            "deployment",
            format!("Circuit breaker rolled back {} (deployment {d})", c.service),
        ),
        (Some(d), _) => (
            EventType::DeployFailed,
            "deployment",
            format!("Deployment failed: {} (deployment {d})", c.service),
        ),
        (None, RESOLVE) => (
            EventType::ServiceRecovered,
            "service",
            format!("Recovered: {} is in steady state", c.service),
        ),
        (None, name) => (
            EventType::ServiceImpaired,
            "service",
            format!("Service impaired: {} {}", c.service, impairment(name)),
        ),
    };
    let mut n = Notification::new(
        event_type,
        c,
        summary,
        marker.at,
        event_id,
        dedup_key(c.environment, &c.service, incident),
    );
    if kind == RESOLVE {
        n = n.resolving();
    }
    if let Some(d) = &marker.deployment {
        n = n.with_fact("Deployment", d);
    }
    n = n
        .with_fact(
            "Delivered late",
            format!(
                "recorded at {} by an attempt that could not publish it; sent now, with the next event of this incident",
                marker.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        )
        .with_fact("Tasks", service.tasks_line());
    if let Some(why) = &service.tags.freeze {
        n = n.with_fact("Deploys", format!("frozen ({why})"));
    }
    n = n
        .with_step(runbook::describe_deployments(c))
        .with_step(runbook::service_events(c))
        .with_step(runbook::tail_logs(c));
    if service.tags.freeze.is_some() {
        n = n.with_step(runbook::unfreeze(c));
    }
    n.with_console(runbook::service_console(c))
        .with_detail("deployment_id", marker.deployment.clone())
        .with_detail("event_name", kind.to_owned())
        .with_detail("delivered_late", true)
        .with_detail(
            "recorded_at",
            marker
                .at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
        .with_detail("running_count", service.running_count)
        .with_detail("desired_count", service.desired_count)
}
