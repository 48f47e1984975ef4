//! What deploy-notifier tells people: the page, the resolve and the team's notices
//! (docs/reference.md §4), composed from the facts `lib.rs` gathered. Nothing here
//! calls AWS.

use chrono::{DateTime, SecondsFormat, Utc};

use menotime_shared::arn::task_definition_short;
use menotime_shared::config::{Environment, NotifierConfig};
use menotime_shared::domain::alarm_event::AlarmEvent;
use menotime_shared::domain::deploy::RevisionSummary;
use menotime_shared::domain::ecs_event::{
    DeploymentChange, DeploymentEvent, OomKill, ServiceEvent, StartCause, TaskEvent,
};
use menotime_shared::domain::image::ImageRef;
use menotime_shared::domain::incident::{Marker, RESOLVE};
use menotime_shared::domain::service::ServiceState;
use menotime_shared::domain::watch::{self, AlarmIncident, EarlierPage, Watch, WayBack};
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

// ---------------------------------------------------------------------------
// The post-deployment watch: regressions, service alarms, memory, tasks that will
// not start.
// ---------------------------------------------------------------------------

/// What became of the automatic rollback, for the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollbackReport {
    /// `AUTO_ROLLBACK_ON_REGRESSION` is off.
    Off,
    /// Not this event's to do: the incident was already open (a joining alarm).
    NotThisEvent,
    /// Frozen and rolled back: the deployment ECS started, if it said.
    Done {
        to: String,
        deployment: Option<String>,
    },
    /// Done earlier in this incident, by the alarm that opened it.
    Earlier { to: String },
    /// A dry run: it would have.
    DryRun { to: String },
    /// It was not done, and why (page instead).
    Cannot(String),
    /// UpdateService failed: roll back by hand.
    Failed { to: String, error: String },
}

impl RollbackReport {
    fn line(&self) -> String {
        match self {
            RollbackReport::Off => "off (AUTO_ROLLBACK_ON_REGRESSION=false): the way back by hand is below".into(),
            RollbackReport::NotThisEvent => "only on the alarm that opens the incident; nothing done for this one".into(),
            RollbackReport::Done { to, deployment } => format!(
                "DONE: deploys frozen, then the service was updated to {to} with a new deployment{}",
                deployment
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            RollbackReport::Earlier { to } => format!(
                "already done when the incident opened: the service was rolled back to {to}"
            ),
            RollbackReport::DryRun { to } => {
                format!("dry run: would have frozen deploys and rolled back to {to}; nothing was changed")
            }
            RollbackReport::Cannot(why) => format!("NOT DONE: {why}"),
            RollbackReport::Failed { to, error } => format!(
                "FAILED: the update to {to} was refused ({error}); roll back by hand with the command below"
            ),
        }
    }

    /// The revision the service was rolled back to by this invocation.
    pub fn done_to(&self) -> Option<&str> {
        match self {
            RollbackReport::Done { to, .. } => Some(to),
            _ => None,
        }
    }
}

/// `regression/<deployment>` for a regression, `alarm` for a service alarm.
pub fn alarm_dedup_key(cfg: &NotifierConfig, incident: &AlarmIncident) -> String {
    incident_key(cfg, incident.deployment.as_deref())
}

fn incident_key(cfg: &NotifierConfig, regression_of: Option<&str>) -> String {
    let c = &cfg.common;
    match regression_of {
        Some(d) => dedup_key(c.environment, &c.service, &format!("regression/{d}")),
        None => dedup_key(c.environment, &c.service, "alarm"),
    }
}

/// The earlier page, in words.
fn earlier_page(p: &EarlierPage) -> String {
    match p {
        EarlierPage::ServiceAlarm => "the service alarm".to_owned(),
        EarlierPage::Regression(d) => format!("the regression of deployment {d}"),
    }
}

/// What a page about an alarm knows.
pub struct AlarmPage<'a> {
    pub alarm: &'a AlarmEvent,
    pub incident: &'a AlarmIncident,
    pub service: &'a ServiceState,
    /// The watched deployment, for a regression.
    pub watch: Option<&'a Watch>,
    /// Why a service alarm is not a regression.
    pub not_a_regression: Option<String>,
    /// The revision the page is about (the watched one, or the one running).
    pub revision: Option<&'a RevisionSummary>,
    pub way_back: &'a WayBack,
    pub rollback: &'a RollbackReport,
    /// This alarm joins an incident already open.
    pub joined: bool,
    /// This alarm escalated the open incident to the regression: the page it took over
    /// (resolved right after this one).
    pub took_over: Option<&'a EarlierPage>,
    /// This invocation froze deploys.
    pub froze: bool,
    /// The incident could not be recorded.
    pub state_error: Option<&'a Error>,
}

fn minutes_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_minutes()
}

fn image_tag_of(r: &RevisionSummary, container: Option<&str>) -> Option<String> {
    r.image_tag().map(str::to_owned).or_else(|| {
        let line = r.image_line(container);
        ImageRef::parse(&line).tag.map(str::to_owned)
    })
}

/// `deploy.regression`, `deploy.rolled_back` or `service.alarm`: the alarm, whose it
/// is, the way back, and what was done.
pub fn alarm_page(cfg: &NotifierConfig, p: &AlarmPage<'_>) -> Notification {
    let c = &cfg.common;
    let a = p.alarm;
    let revision = p
        .watch
        .map(|w| w.revision.clone())
        .or_else(|| p.revision.map(RevisionSummary::short))
        .unwrap_or_else(|| task_definition_short(&p.service.task_definition));
    let others: Vec<String> = p
        .incident
        .firing()
        .into_iter()
        .filter(|n| n != a.kind.suffix())
        .collect();
    let (event_type, summary) = match (p.incident.deployment.is_some(), p.rollback.done_to()) {
        (true, Some(to)) => (
            EventType::DeployRolledBack,
            format!(
                "Rolled back to {to}: {} in ALARM after the deployment",
                a.name
            ),
        ),
        (true, None) if p.joined => (
            EventType::DeployRegression,
            format!(
                "Regression after deploying {revision}: {} also in ALARM",
                a.name
            ),
        ),
        (true, None) => (
            EventType::DeployRegression,
            format!("Regression after deploying {revision}: {} in ALARM", a.name),
        ),
        (false, _) if p.joined => (
            EventType::ServiceAlarm,
            format!("Alarm: {} also in ALARM on {}", a.name, c.service),
        ),
        (false, _) => (
            EventType::ServiceAlarm,
            format!("Alarm: {} in ALARM on {}", a.name, c.service),
        ),
    };
    let mut n = Notification::new(
        event_type,
        c,
        summary,
        a.at,
        &a.envelope.id,
        alarm_dedup_key(cfg, p.incident),
    )
    .with_fact("Alarm", format!("{} ({})", a.name, a.kind.describe()));
    n = alarm_state_facts(n, a);
    if !others.is_empty() {
        n = n.with_fact("Also in ALARM", others.join(", "));
    }
    if let Some(earlier) = p.took_over {
        n = n.with_fact(
            "Takes over",
            format!(
                "{} ({}), open until now: its page is resolved in favour of this one, where its alarms carry on",
                earlier_page(earlier),
                incident_key(cfg, earlier.deployment())
            ),
        );
    }
    if let Some(w) = p.watch.filter(|_| p.incident.deployment.is_some()) {
        n = n
            .with_fact(
                "Deployment",
                format!(
                    "{} completed at {}, {} min before the alarm",
                    w.deployment,
                    w.completed.to_rfc3339_opts(SecondsFormat::Secs, true),
                    minutes_between(w.completed, a.at)
                ),
            )
            .with_fact(
                "Watch",
                format!(
                    "alarms until {} count as this deployment's regression (WATCH_MINUTES={})",
                    w.until(cfg.watch.minutes)
                        .to_rfc3339_opts(SecondsFormat::Secs, true),
                    cfg.watch.minutes
                ),
            );
    } else if let Some(why) = &p.not_a_regression {
        n = n.with_fact("Not a regression", why.clone());
    }
    n = n.with_fact("Revision", &revision);
    if let Some(r) = p.revision {
        n = n.with_fact("Image", r.image_line(cfg.container.as_deref()));
        if let Some(tag) = image_tag_of(r, cfg.container.as_deref()) {
            n = n.with_fact("Image tag", tag);
        }
    }
    let frozen_now = p.froze || p.service.tags.freeze.is_some();
    if p.incident.deployment.is_some() {
        n = n
            .with_fact(
                "Previous revision",
                match p.way_back {
                    WayBack::To(r) => r.clone(),
                    WayBack::WasARollback { from } => {
                        format!("none: this deployment itself went back from {from}")
                    }
                    WayBack::Unknown => "unknown (see list-task-definitions below)".to_owned(),
                },
            )
            .with_fact("Automatic rollback", p.rollback.line());
    }
    n = n.with_fact("Tasks", p.service.tasks_line());
    if let Some(e) = p.state_error {
        n = n.with_fact(
            "Incident",
            format!(
                "NOT RECORDED ({}): a duplicate of this alarm may page again, and nothing was rolled back automatically",
                e.kind()
            ),
        );
    }
    if frozen_now {
        n = n.with_fact(
            "Deploys",
            match (&p.service.tags.freeze, p.froze) {
                (_, true) => format!(
                    "FROZEN ({}): scan-gate deploys nothing until someone reviews this and lifts the freeze",
                    tags::DEPLOY_FREEZE
                ),
                (Some(v), false) => format!("frozen: {v}"),
                (None, false) => "frozen".to_owned(),
            },
        );
    }
    // What to do next.
    let rolled_back = matches!(
        p.rollback,
        RollbackReport::Done { .. } | RollbackReport::Earlier { .. }
    );
    match (rolled_back, p.incident.deployment.is_some()) {
        (true, _) => {
            n = n.with_step(runbook::describe_deployments(c));
        }
        (false, true) => {
            if let WayBack::To(to) = p.way_back {
                if !frozen_now {
                    n = n.with_step(runbook::freeze(
                        c,
                        &format!(
                            "regression of deployment {}",
                            p.incident.deployment.as_deref().unwrap_or("?")
                        ),
                    ));
                }
                let mut step = runbook::roll_back(c, to);
                step.what = format!(
                    "If the regression is the deployment's, {}",
                    lower_first(&step.what)
                );
                n = n.with_step(step);
            } else if let Some(family) = watch::family(&revision) {
                n = n.with_step(runbook::list_revisions(c, &family));
            }
            n = n.with_step(runbook::describe_deployments(c));
        }
        (false, false) => {
            n = n.with_step(runbook::describe_deployments(c));
        }
    }
    n = n
        .with_step(runbook::alarm_history(c, &a.name))
        .with_step(runbook::tail_logs(c));
    if frozen_now {
        n = n.with_step(runbook::unfreeze(c));
    }
    let deployment = p.incident.deployment.clone();
    n.with_console(runbook::service_console(c))
        .with_detail("alarm_name", a.name.clone())
        .with_detail("alarm", a.kind.suffix().to_owned())
        .with_detail("alarm_state", a.state.as_str())
        .with_detail("alarm_reason", a.reason.clone())
        .with_detail("alarms_in_alarm", p.incident.firing())
        .with_detail("deployment_id", deployment)
        .with_detail(
            "completed_at",
            p.watch
                .filter(|_| p.incident.deployment.is_some())
                .map(|w| w.completed.to_rfc3339_opts(SecondsFormat::Millis, true)),
        )
        .with_detail("watch_minutes", cfg.watch.minutes)
        .with_detail("task_definition", revision)
        .with_detail(
            "previous_task_definition",
            p.way_back.revision().map(str::to_owned),
        )
        .with_detail(
            "image",
            p.revision.map(|r| r.image_line(cfg.container.as_deref())),
        )
        .with_detail(
            "image_tag",
            p.revision
                .and_then(|r| image_tag_of(r, cfg.container.as_deref())),
        )
        .with_detail("not_a_regression", p.not_a_regression.clone())
        .with_detail(
            "took_over",
            p.took_over.map(|e| incident_key(cfg, e.deployment())),
        )
        .with_detail("auto_rollback", cfg.watch.auto_rollback)
        .with_detail("rolled_back_to", p.rollback.done_to().map(str::to_owned))
        .with_detail(
            "rollback_deployment_id",
            match p.rollback {
                RollbackReport::Done { deployment, .. } => deployment.clone(),
                _ => None,
            },
        )
        .with_detail("frozen", frozen_now)
        .with_detail("froze", p.froze)
        .with_detail("running_count", p.service.running_count)
        .with_detail("desired_count", p.service.desired_count)
        .with_detail("dry_run", c.dry_run)
}

/// The resolve of an alarm incident: the last of its alarms is OK again.
pub fn alarm_resolved(
    cfg: &NotifierConfig,
    a: &AlarmEvent,
    incident: &AlarmIncident,
    service: &ServiceState,
) -> Notification {
    let c = &cfg.common;
    let (event_type, summary) = match &incident.deployment {
        Some(_) => (
            EventType::DeployRegression,
            format!("Resolved: regression, {} is OK again", a.name),
        ),
        None => (
            EventType::ServiceAlarm,
            format!("Resolved: {} is OK again on {}", a.name, c.service),
        ),
    };
    let mut n = Notification::new(
        event_type,
        c,
        summary,
        a.at,
        &a.envelope.id,
        alarm_dedup_key(cfg, incident),
    )
    .resolving()
    .with_fact("Alarm", format!("{} ({})", a.name, a.kind.describe()))
    .with_fact(
        "State",
        format!(
            "OK since {}",
            a.at.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
    )
    .with_fact("Was", incident.names().join(", "));
    if let Some(d) = &incident.deployment {
        n = n.with_fact("Regression of", format!("deployment {d}"));
    }
    n = n
        .with_fact(
            "Running revision",
            task_definition_short(&service.task_definition),
        )
        .with_fact("Tasks", service.tasks_line());
    let rolled_back =
        incident.rolled_back && service.primary().map(|p| &p.id) != incident.deployment.as_ref();
    if rolled_back {
        n = n.with_fact(
            "Rolled back",
            "yes: the service runs the previous revision; deploys stay frozen until someone reviews the regression",
        );
    }
    if let Some(why) = &service.tags.freeze {
        n = n.with_fact("Deploys", format!("still frozen ({why})"));
    }
    n = n.with_step(runbook::alarm_history(c, &a.name));
    if service.tags.freeze.is_some() {
        n = n.with_step(runbook::unfreeze(c));
    }
    n.with_console(runbook::service_console(c))
        .with_detail("alarm_name", a.name.clone())
        .with_detail("alarm", a.kind.suffix().to_owned())
        .with_detail("alarm_state", a.state.as_str())
        .with_detail("deployment_id", incident.deployment.clone())
        .with_detail("resolved_alarms", incident.names())
        .with_detail("rolled_back", rolled_back)
        .with_detail("frozen", service.tags.freeze.is_some())
}

/// The handover of an escalation: the page `incident` took over (`from`: a service
/// alarm, or an older deployment's regression) is resolved, under its own key, because
/// `a` went to ALARM within the watch window of `incident`'s deployment and the alarms
/// carry on in that regression's page.
pub fn alarm_handover(
    cfg: &NotifierConfig,
    a: &AlarmEvent,
    incident: &AlarmIncident,
    from: &EarlierPage,
    service: &ServiceState,
    watch: Option<&Watch>,
) -> Notification {
    let c = &cfg.common;
    let to = incident.deployment.as_deref().unwrap_or("?");
    let regression = match watch.filter(|w| w.deployment == to) {
        Some(w) => format!("the regression after deploying {}", w.revision),
        None => format!("the regression of deployment {to}"),
    };
    let event_type = match from {
        EarlierPage::ServiceAlarm => EventType::ServiceAlarm,
        EarlierPage::Regression(_) => EventType::DeployRegression,
    };
    let key = alarm_dedup_key(cfg, incident);
    let mut n = Notification::new(
        event_type,
        c,
        format!("Resolved: continued as {regression}"),
        a.at,
        &a.envelope.id,
        incident_key(cfg, from.deployment()),
    )
    .resolving()
    .with_fact("Was", earlier_page(from))
    .with_fact("Continued as", format!("{regression} ({key})"))
    .with_fact(
        "Why",
        format!(
            "{} went to ALARM within {} minutes after deployment {to} completed: that deployment's regression, paged with its way back. The alarms of this page carry on there; that page resolves when all of them are OK",
            a.name, cfg.watch.minutes
        ),
    )
    .with_fact("Still in ALARM", incident.firing().join(", "))
    .with_fact("Tasks", service.tasks_line())
    .with_step(runbook::describe_deployments(c))
    .with_console(runbook::service_console(c));
    if let Some(why) = &service.tags.freeze {
        n = n.with_fact("Deploys", format!("frozen ({why})"));
    }
    n.with_detail("alarm_name", a.name.clone())
        .with_detail("alarm", a.kind.suffix().to_owned())
        .with_detail("alarm_state", a.state.as_str())
        .with_detail("deployment_id", from.deployment().map(str::to_owned))
        .with_detail("escalated_to", incident.deployment.clone())
        .with_detail("escalated_to_dedup_key", key)
        .with_detail("alarms_in_alarm", incident.firing())
        .with_detail("frozen", service.tags.freeze.is_some())
}

/// `service.memory_high`: the manual's "High Memory Usage", never a page.
pub fn memory_high(
    cfg: &NotifierConfig,
    a: &AlarmEvent,
    service: &ServiceState,
    revision: Option<&RevisionSummary>,
    watch_note: Option<String>,
) -> Notification {
    let c = &cfg.common;
    let short = revision
        .map(RevisionSummary::short)
        .unwrap_or_else(|| task_definition_short(&service.task_definition));
    let memory = revision.and_then(|r| r.memory.clone());
    let fix = match c.environment {
        Environment::Dev => "1. raise the task definition's memory; 2. profile the application's memory usage; 3. review the logs for OutOfMemory messages",
        _ => "1. update the task definition's memory to 3 GB (3072 MiB), the manual's size for staging and prod; 2. profile the application's memory usage; 3. review the logs for OutOfMemory messages",
    };
    let n = Notification::new(
        EventType::ServiceMemoryHigh,
        c,
        format!(
            "Memory high: {} tasks above the alarm's threshold ({} MiB each)",
            c.service,
            memory.as_deref().unwrap_or("?")
        ),
        a.at,
        &a.envelope.id,
        dedup_key(c.environment, &c.service, "memory"),
    )
    .with_fact("Alarm", &a.name);
    let mut n = alarm_state_facts(n, a)
        .with_fact("Revision", &short)
        .with_fact(
            "Task memory",
            format!(
                "{} MiB ({} CPU units)",
                memory.as_deref().unwrap_or("unknown"),
                revision.and_then(|r| r.cpu.as_deref()).unwrap_or("unknown")
            ),
        )
        .with_fact("Tasks", service.tasks_line());
    if let Some(w) = watch_note {
        n = n.with_fact("Deployment", w);
    }
    n.with_fact(
        "Likely causes",
        "a memory leak (check the logs), a working set larger than the task's memory, a database connection pool too large",
    )
    .with_fact("Fix", fix)
    .with_step(runbook::revision_size(c, &short))
    .with_step(runbook::oom_logs(c))
    .with_step(runbook::alarm_history(c, &a.name))
    .with_console(runbook::service_console(c))
    .with_detail("alarm_name", a.name.clone())
    .with_detail("alarm_reason", a.reason.clone())
    .with_detail("task_definition", short)
    .with_detail("memory", memory)
    .with_detail("cpu", revision.and_then(|r| r.cpu.clone()))
    .with_detail("running_count", service.running_count)
    .with_detail("desired_count", service.desired_count)
}

/// A deploy.completed's line about the watch that starts now.
pub fn with_watch(cfg: &NotifierConfig, n: Notification, started: Option<&Watch>) -> Notification {
    let Some(w) = started else {
        return n;
    };
    let until = w.until(cfg.watch.minutes);
    let auto = if cfg.watch.auto_rollback {
        match (&w.previous, &w.rolled_back_from) {
            (Some(p), _) => format!("rolled back to {p} automatically (unless deploys are frozen)"),
            (None, Some(_)) => {
                "paged (this deployment went back to an older revision: no automatic rollback)"
                    .into()
            }
            (None, None) => "paged (no previous revision known: no automatic rollback)".into(),
        }
    } else {
        "paged with the way back".into()
    };
    n.with_fact(
        "Watch",
        format!(
            "alarms until {} count as this deployment's regression and are {auto}",
            until.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
    )
    .with_detail(
        "watch_until",
        until.to_rfc3339_opts(SecondsFormat::Millis, true),
    )
    .with_detail("previous_task_definition", w.previous.clone())
}

/// `task.start_failed`: the cause, and the manual's checks for it with real names.
pub fn start_failed(
    cfg: &NotifierConfig,
    t: &TaskEvent,
    cause: StartCause,
    service: &ServiceState,
) -> Notification {
    let c = &cfg.common;
    let revision = oom_revision(t);
    let deployment = t.started_by.clone();
    let reason = t.stopped_reason.as_deref().unwrap_or("(no reason given)");
    let mut n = Notification::new(
        EventType::TaskStartFailed,
        c,
        format!("Tasks fail to start: {}, {}", c.service, cause_short(cause)),
        t.at,
        &t.envelope.id,
        dedup_key(
            c.environment,
            &c.service,
            &format!(
                "task-start/{}/{}",
                deployment.as_deref().unwrap_or("unknown"),
                cause.key()
            ),
        ),
    )
    .with_fact("Cause", cause.describe())
    .with_fact("Stopped reason", reason)
    .with_fact("Task", &t.task_arn)
    .with_fact("Revision", &revision)
    .with_fact(
        "Deployment",
        deployment
            .clone()
            .unwrap_or_else(|| "(not started by a deployment)".into()),
    )
    .with_fact("Tasks", service.tasks_line())
    .with_fact(
        "Reported",
        "once per deployment and cause; more tasks failing the same way are not reported again",
    );
    n = n.with_step(runbook::stopped_reason(c, &t.task_arn));
    // Without the groups in DescribeServices' answer, the last step looks them up.
    let network = |n: Notification| {
        n.with_step(runbook::task_eni(c, &t.task_arn))
            .with_step(runbook::security_groups(c, &service.security_groups))
    };
    match cause {
        StartCause::ImagePull => {
            if let Some((repository, id)) = pulled_image(reason) {
                n = n.with_step(runbook::ecr_image(c, &repository, &id));
            }
            n = n.with_step(runbook::revision_startup(c, &revision));
            n = network(n);
        }
        StartCause::ResourceInit(_) => {
            n = n.with_step(runbook::revision_startup(c, &revision));
            n = network(n);
        }
        StartCause::ContainerStart => {
            n = n.with_step(runbook::revision_startup(c, &revision));
        }
        StartCause::Capacity => {
            n = n.with_step(runbook::service_events(c));
        }
        StartCause::Other => {
            n = n.with_step(runbook::revision_startup(c, &revision));
            n = network(n);
        }
    }
    n = n.with_step(runbook::tail_logs(c));
    let advice = match cause {
        StartCause::ImagePull => "the image must exist in ECR (by the digest the revision names), the execution role must be allowed to pull it, and the subnets must reach ECR (NAT or VPC endpoints)",
        StartCause::ResourceInit(_) => "the execution role must be allowed to read the revision's secrets (Secrets Manager, SSM), its log group must exist, and the subnets must reach those services (NAT or VPC endpoints, HTTPS out in the security group)",
        StartCause::ContainerStart => "the container's command, entry point and port 8000 must match the image; its logs say why it would not start",
        StartCause::Capacity => "Fargate (Spot) has no capacity in the service's zones right now; ECS keeps retrying. If it lasts, run on FARGATE or add subnets in other zones",
        StartCause::Other => "ECS's reason above says what failed",
    };
    n.with_fact("What to check", advice)
        .with_console(runbook::service_console(c))
        .with_detail("task_arn", t.task_arn.clone())
        .with_detail("cause", cause.key())
        .with_detail("stopped_reason", t.stopped_reason.clone())
        .with_detail("stop_code", t.stop_code.clone())
        .with_detail("task_definition", t.task_definition_arn.clone())
        .with_detail("deployment_id", deployment)
        .with_detail("security_groups", service.security_groups.clone())
}

/// A `task.start_failed` an earlier attempt recorded (`pending` in the task-start
/// marker) and never confirmed as published, sent before the next deployment's. It is
/// composed from the marker: the task that failed is not at hand.
pub fn start_failed_undelivered(
    cfg: &NotifierConfig,
    key: &str,
    marker: &Marker,
    service: &ServiceState,
    event_id: &str,
) -> Notification {
    let c = &cfg.common;
    let cause = StartCause::from_key(key).unwrap_or(StartCause::Other);
    let deployment = marker.deployment.as_deref().unwrap_or("unknown");
    Notification::new(
        EventType::TaskStartFailed,
        c,
        format!("Tasks fail to start: {}, {}", c.service, cause_short(cause)),
        marker.at,
        event_id,
        dedup_key(
            c.environment,
            &c.service,
            &format!("task-start/{deployment}/{key}"),
        ),
    )
    .with_fact("Cause", cause.describe())
    .with_fact("Deployment", deployment)
    .with_fact(
        "Delivered late",
        format!(
            "recorded at {} by an attempt that could not publish it; sent now, before the next deployment's",
            marker.at.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
    )
    .with_fact("Tasks", service.tasks_line())
    .with_step(runbook::service_events(c))
    .with_step(runbook::tail_logs(c))
    .with_console(runbook::service_console(c))
    .with_detail("cause", key.to_owned())
    .with_detail("deployment_id", marker.deployment.clone())
    .with_detail("delivered_late", true)
    .with_detail(
        "recorded_at",
        marker.at.to_rfc3339_opts(SecondsFormat::Millis, true),
    )
}

fn cause_short(cause: StartCause) -> &'static str {
    match cause {
        StartCause::ImagePull => "image cannot be pulled",
        StartCause::ResourceInit(_) => "secrets, SSM or network not ready",
        StartCause::ContainerStart => "container does not start",
        StartCause::Capacity => "no Fargate capacity",
        StartCause::Other => "task failed to start",
    }
}

/// The repository and image id (`imageDigest=...` or `imageTag=...`) a
/// CannotPullContainerError names, when it is an ECR image.
fn pulled_image(reason: &str) -> Option<(String, String)> {
    let word = reason
        .split_whitespace()
        .map(|w| w.trim_end_matches([':', ',', '.', '"']))
        .find(|w| w.contains(".dkr.ecr."))?;
    let r = ImageRef::parse(word);
    let repository = r.name.split_once('/')?.1.to_owned();
    let id = match (r.digest, r.tag) {
        (Some(d), _) => format!("imageDigest={d}"),
        (None, Some(t)) => format!("imageTag={t}"),
        (None, None) => return None,
    };
    Some((repository, id))
}

/// `task.interrupted`: Fargate Spot took a task's capacity back.
pub fn spot_interrupted(cfg: &NotifierConfig, t: &TaskEvent) -> Notification {
    let c = &cfg.common;
    let expected = c.environment != Environment::Prod;
    Notification::new(
        EventType::TaskInterrupted,
        c,
        format!("Fargate Spot interrupted a task of {}", c.service),
        t.at,
        &t.envelope.id,
        dedup_key(c.environment, &c.service, &format!("task-interrupted/{}", t.task_id())),
    )
    .with_fact("Task", t.task_id())
    .with_fact("Revision", oom_revision(t))
    .with_fact(
        "Capacity provider",
        t.capacity_provider.as_deref().unwrap_or("FARGATE_SPOT"),
    )
    .with_fact("Reason", t.stopped_reason.as_deref().unwrap_or("(no reason given)"))
    .with_fact(
        "Meaning",
        if expected {
            "expected with Fargate Spot: ECS starts a replacement task; nothing to do unless it keeps happening"
        } else {
            "prod should not run on Fargate Spot (the manual keeps Spot for non-production); check the service's capacity provider strategy"
        },
    )
    .with_step(runbook::service_events(c))
    .with_console(runbook::service_console(c))
    .with_detail("task_arn", t.task_arn.clone())
    .with_detail("stop_code", t.stop_code.clone())
    .with_detail("capacity_provider", t.capacity_provider.clone())
    .with_detail("task_definition", t.task_definition_arn.clone())
    .with_detail("started_by", t.started_by.clone())
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

/// The alarm's state and CloudWatch's reason, as every alarm notice shows them.
fn alarm_state_facts(n: Notification, a: &AlarmEvent) -> Notification {
    n.with_fact(
        "State",
        format!(
            "ALARM since {}",
            a.at.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
    )
    .with_fact(
        "Reason",
        if a.reason.is_empty() {
            "(none given)"
        } else {
            &a.reason
        },
    )
}
