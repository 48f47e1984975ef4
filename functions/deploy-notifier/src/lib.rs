//! deploy-notifier: ECS tells us a deployment failed or a service is impaired; on-call
//! is paged once, deploys are frozen, and the page is resolved when the service
//! recovers.
//!
//! The whole story of one invocation, in order:
//!
//! 1. **Accept** an "ECS Deployment State Change", "ECS Service Action" or "ECS Task
//!    State Change" about this stack's service, cluster, account and region; anything
//!    else is rejected and nothing changes.
//! 2. **Task stops** need no state: an out-of-memory kill notifies the team
//!    (`task.oom`, 1 call); every other stop is ignored (0 calls).
//! 3. **Read the service** (DescribeServices with tags): its deployments, and the
//!    incident marker tags deploy-notifier keeps there (`domain::incident`).
//! 4. **Decide** with the pure functions of `domain::incident`: page, resend (a Lambda
//!    retry of the request that already wrote the marker), duplicate, late, resolve.
//! 5. **Page** (deployment failed or rolled back): read the failed revision's images
//!    (DescribeTaskDefinition), write the marker and, when `FREEZE_ON_FAILURE`, the
//!    freeze, in one TagResource, *then* publish. If the state cannot be written the
//!    page still goes out, saying so, and the invocation fails so Lambda retries.
//! 6. **Resolve** (a deployment completed, or a steady state after an impairment): mark
//!    the incident resolved, then publish the resolve on the on-call topic.
//!
//! With `DRY_RUN=true` nothing is written to ECS: notifications say what would have
//! been frozen, and duplicates cannot be recognised.

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

use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use menotime_shared::arn::task_definition_short;
use menotime_shared::aws::ecs::ServiceOps;
use menotime_shared::config::{Environment, NotifierConfig};
use menotime_shared::domain::deploy::ServiceState;
use menotime_shared::domain::ecs_event::{
    parse_ecs_event, DeploymentChange, DeploymentEvent, EcsEvent, ServiceChange, ServiceEvent,
    Site, TaskEvent,
};
use menotime_shared::domain::incident::{self, Alarm, Completion, Impairment, Marker, Recovery};
use menotime_shared::notify::{dedup_key, Action, EventType, Notification, Publisher, Topics};
use menotime_shared::{runbook, tags, Error};

/// What deploy-notifier decided (contract §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// On-call was paged (prod: deploy.failed, deploy.rollback, service.impaired).
    Paged,
    /// The team was told (info or warning), nobody paged.
    Notified,
    /// An open page was resolved.
    Resolved,
    /// Already sent for this incident by another delivery: nothing sent.
    Duplicate,
    /// Older than what ECS or the incident already shows: nothing sent.
    Late,
    /// Nothing to say (a task stop that is not an OOM kill, a steady state with
    /// nothing open).
    Ignored,
}

/// The invocation result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    pub outcome: Decision,
    pub reason: String,
    pub environment: String,
    pub cluster: String,
    pub service: String,
    pub source_event_id: String,
    /// The ECS event name (`SERVICE_DEPLOYMENT_FAILED`, `SERVICE_STEADY_STATE`, ...).
    pub event_name: String,
    pub deployment_id: Option<String>,
    /// `event_type/action` of each message published, in order.
    pub notifications: Vec<String>,
    /// True when this invocation froze deploys (tagged `menotime:deploy-freeze`).
    pub froze: bool,
    /// True when a marker written by this same request was found (a Lambda retry).
    pub resent: bool,
    /// False when the incident marker (and the freeze) could not be written; the
    /// page then says so and gives the command to freeze by hand.
    pub state_recorded: bool,
    pub dry_run: bool,
}

impl menotime_shared::lambda::Decided for Outcome {
    fn decision(&self) -> String {
        menotime_shared::lambda::decision_name(&self.outcome)
    }

    fn reason(&self) -> &str {
        &self.reason
    }
}

/// The handler, generic over its two AWS dependencies so tests can drive it with fakes
/// or with mocked SDK clients.
pub struct DeployNotifier<E, P> {
    cfg: NotifierConfig,
    topics: Topics,
    ecs: E,
    publisher: P,
}

impl<E: ServiceOps + Sync, P: Publisher + Sync> DeployNotifier<E, P> {
    pub fn new(cfg: NotifierConfig, ecs: E, publisher: P) -> Self {
        let topics = Topics::from_config(&cfg.common);
        Self {
            cfg,
            topics,
            ecs,
            publisher,
        }
    }

    pub fn config(&self) -> &NotifierConfig {
        &self.cfg
    }

    /// `request_id` is the Lambda request id: a Lambda retry of a failed invocation
    /// keeps it, a second delivery of the same event does not.
    pub async fn handle(&self, event: Value, request_id: &str) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        // 1. Accept.
        let ev = parse_ecs_event(
            &event,
            Site {
                account: &c.account,
                region: &c.region,
                cluster: &c.cluster,
                service: &c.service,
            },
        )?;
        info!(event_id = %ev.envelope().id, detail_type = %ev.envelope().detail_type, "event received");
        match ev {
            // 2. Task stops.
            EcsEvent::Task(t) => self.task_stopped(t).await,
            // 3.-6. Deployments and service actions.
            EcsEvent::Deployment(d) => {
                let service = self.ecs.describe_service(&c.cluster, &c.service).await?;
                match d.change {
                    DeploymentChange::Failed | DeploymentChange::Rollback { .. } => {
                        self.alarm(&d, &service, request_id).await
                    }
                    DeploymentChange::Completed => self.completed(&d, &service, request_id).await,
                    DeploymentChange::InProgress => self.in_progress(&d, &service).await,
                }
            }
            EcsEvent::Service(s) => {
                let service = self.ecs.describe_service(&c.cluster, &c.service).await?;
                match s.change {
                    ServiceChange::Impaired => self.impaired(&s, &service, request_id).await,
                    ServiceChange::SteadyState => self.steady(&s, &service, request_id).await,
                }
            }
        }
    }

    /// A failed deployment or a circuit-breaker rollback.
    async fn alarm(
        &self,
        d: &DeploymentEvent,
        service: &ServiceState,
        request_id: &str,
    ) -> Result<Outcome, Error> {
        let marker = self.marker(service, tags::DEPLOY_INCIDENT);
        let decision = incident::on_alarm(
            d,
            service,
            marker.as_ref(),
            request_id,
            self.cfg.freeze_on_failure,
        );
        info!(?decision, deployment = %d.deployment_id, "alarm decision");
        let mut o = self.outcome_for_deployment(d);
        let (write, freeze) = match decision {
            Alarm::Duplicate => {
                o.outcome = Decision::Duplicate;
                o.reason = format!(
                    "{} of deployment {} was already sent by another delivery of this event; nothing sent",
                    d.change.name(),
                    d.deployment_id
                );
                return Ok(o);
            }
            Alarm::Late(why) => {
                o.outcome = Decision::Late;
                o.reason = format!("late event, nothing sent: {why}");
                return Ok(o);
            }
            Alarm::Resend => {
                o.resent = true;
                (None, None)
            }
            Alarm::Page { marker, freeze } => (Some(marker), freeze),
        };

        // The failed revision, and what to roll back to.
        let rollback_to = match &d.change {
            DeploymentChange::Rollback { to } => to.clone(),
            _ => None,
        };
        let failed_td = service
            .deployment_task_definition(&d.deployment_id)
            .map(str::to_owned);
        let failed_rev = match &failed_td {
            Some(td) => match self.ecs.describe_task_definition(td).await {
                Ok(r) => Some(r),
                Err(e) => {
                    // The page matters more than the image name.
                    warn!(error = %e, "could not read the failed revision; paging without its images");
                    None
                }
            },
            None => None,
        };
        // ECS's own view first; else what scan-gate recorded on the failed revision.
        let previous =
            incident::previous_revision(service, failed_td.as_deref(), rollback_to.as_deref())
                .or_else(|| {
                    failed_rev.as_ref().and_then(|r| r.replaces()).map(|short| {
                        format!(
                            "arn:aws:ecs:{}:{}:task-definition/{short}",
                            self.cfg.common.region, self.cfg.common.account
                        )
                    })
                });

        // State first (marker and freeze in one call), then the page.
        let c = &self.cfg.common;
        let mut state_error = None;
        let mut froze = false;
        if let Some(marker) = &write {
            let mut new_tags = vec![(tags::DEPLOY_INCIDENT.to_owned(), marker.render())];
            if let Some(value) = &freeze {
                new_tags.push((tags::DEPLOY_FREEZE.to_owned(), value.clone()));
            }
            match self.write(service, new_tags).await {
                Ok(()) => froze = freeze.is_some() && !c.dry_run,
                Err(e) => {
                    tracing::error!(error = %e, error_type = e.kind(), "could not record the incident or the freeze; paging anyway, with the freeze to do by hand");
                    state_error = Some(e);
                }
            }
        }
        let frozen_now = froze || service.tags.contains_key(tags::DEPLOY_FREEZE);

        let event_type = match d.change {
            DeploymentChange::Rollback { .. } => EventType::DeployRollback,
            _ => EventType::DeployFailed,
        };
        let summary = match &d.change {
            DeploymentChange::Rollback { .. } => {
                format!("Circuit breaker rolling back {}", c.service)
            }
            _ => format!("Deployment failed: {}", c.service),
        };
        let mut n = self
            .deployment_note(event_type, d, &summary)
            .with_fact("Reason", &d.reason);
        if let Some(to) = &rollback_to {
            n = n.with_fact("Rolling back to", format!("deployment {to}"));
        }
        n = n.with_fact(
            "Failed revision",
            failed_td
                .as_deref()
                .map(task_definition_short)
                .unwrap_or_else(|| "(deployment no longer listed by ECS)".into()),
        );
        if let Some(r) = &failed_rev {
            n = n.with_fact("Image", r.image_line(self.cfg.container.as_deref()));
            if let Some(tag) = r.image_tag() {
                n = n.with_fact("Image tag", tag);
            }
        }
        n = n
            .with_fact(
                "Previous revision",
                previous
                    .as_deref()
                    .map(task_definition_short)
                    .unwrap_or_else(|| {
                        "(not shown by ECS; see list-task-definitions below)".into()
                    }),
            )
            .with_fact("Tasks", tasks_line(service))
            .with_fact(
                "Deploys",
                self.freeze_line(froze, service, &freeze, &state_error),
            );
        n = n
            .with_step(runbook::describe_deployments(c))
            .with_step(runbook::tail_logs(c));
        match &previous {
            Some(p) => {
                let mut step = runbook::roll_back(c, &task_definition_short(p));
                step.what = format!(
                    "If ECS has not rolled back by itself, {}",
                    lower_first(&step.what)
                );
                n = n.with_step(step);
            }
            None => {
                if let Some(r) = &failed_rev {
                    n = n.with_step(runbook::list_revisions(c, &r.family));
                }
            }
        }
        if state_error.is_some() && freeze.is_some() {
            n = n.with_step(runbook::freeze(
                c,
                &format!("deployment {} failed", d.deployment_id),
            ));
        }
        if frozen_now || (c.dry_run && freeze.is_some()) {
            n = n.with_step(runbook::unfreeze(c));
        }
        let n = n
            .with_console(runbook::service_console(c))
            .with_detail("reason", d.reason.clone())
            .with_detail("rollback_to_deployment", rollback_to.clone())
            .with_detail("failed_task_definition", failed_td.clone())
            .with_detail("previous_task_definition", previous.clone())
            .with_detail(
                "image",
                failed_rev
                    .as_ref()
                    .map(|r| r.image_line(self.cfg.container.as_deref())),
            )
            .with_detail(
                "image_tag",
                failed_rev
                    .as_ref()
                    .and_then(|r| r.image_tag().map(str::to_owned)),
            )
            .with_detail("frozen", frozen_now)
            .with_detail("froze", froze)
            .with_detail("running_count", service.running_count)
            .with_detail("desired_count", service.desired_count)
            .with_detail("dry_run", c.dry_run);
        self.send(&n, &mut o).await?;
        o.froze = froze;
        o.outcome = if n.delivery.action == Action::Trigger {
            Decision::Paged
        } else {
            Decision::Notified
        };
        o.reason = format!(
            "{} of deployment {}: {}{}",
            d.change.name(),
            d.deployment_id,
            d.reason,
            if froze { "; deploys frozen" } else { "" }
        );
        if let Some(e) = state_error {
            // The page is out and says what was not recorded and how to freeze by
            // hand. Failing now would make Lambda's retry page again (it cannot know
            // this page went out), so the invocation succeeds and says so.
            o.reason.push_str(&format!(
                "; the incident and the freeze could NOT be recorded ({e}): the page asks on-call to freeze by hand"
            ));
            o.state_recorded = false;
        }
        Ok(o)
    }

    async fn completed(
        &self,
        d: &DeploymentEvent,
        service: &ServiceState,
        request_id: &str,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let marker = self.marker(service, tags::DEPLOY_INCIDENT);
        let decision = incident::on_completed(d, marker.as_ref(), request_id, self.pages());
        info!(?decision, deployment = %d.deployment_id, "completion decision");
        let mut o = self.outcome_for_deployment(d);
        let (resolve, write) = match decision {
            Completion::Late(why) => {
                o.outcome = Decision::Late;
                o.reason = format!("late event, nothing sent: {why}");
                return Ok(o);
            }
            Completion::Info => (false, None),
            Completion::ResendResolve => {
                o.resent = true;
                (true, None)
            }
            Completion::Resolve { marker } => (true, Some(marker)),
        };
        if let Some(m) = write {
            self.write(service, marker_tag(tags::DEPLOY_INCIDENT, &m))
                .await?;
        }
        let revision = service
            .deployment_task_definition(&d.deployment_id)
            .unwrap_or(&service.task_definition);
        let revision = task_definition_short(revision);
        let freeze = service.tags.get(tags::DEPLOY_FREEZE);
        let mut n = self
            .deployment_note(
                EventType::DeployCompleted,
                d,
                &format!("Deployment completed: {} runs {revision}", c.service),
            )
            .with_fact("Revision", &revision)
            .with_fact("Tasks", tasks_line(service));
        if let Some(why) = freeze {
            n = n.with_fact(
                "Deploys",
                format!(
                    "still frozen ({why}) until someone reviews the failure and lifts the freeze"
                ),
            );
        }
        if let Some(m) = marker.as_ref().filter(|_| resolve) {
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
        n = n
            .with_console(runbook::service_console(c))
            .with_detail("task_definition", revision.clone())
            .with_detail("frozen", freeze.is_some())
            .with_detail("running_count", service.running_count)
            .with_detail("desired_count", service.desired_count);
        if resolve {
            // The resolve first: it is what on-call waits for.
            let resolved_deployment = marker.as_ref().and_then(|m| m.deployment.clone());
            let mut r = n.clone().resolving();
            r.summary = format!(
                "Resolved: {} deployment completed, {revision} runs",
                c.service
            );
            let r = r.with_detail("resolved_deployment", resolved_deployment);
            self.send(&r, &mut o).await?;
        }
        self.send(&n, &mut o).await?;
        if resolve {
            o.outcome = Decision::Resolved;
            o.reason = format!(
                "deployment {} completed; the open page was resolved{}",
                d.deployment_id,
                if freeze.is_some() {
                    " (deploys stay frozen until reviewed)"
                } else {
                    ""
                }
            );
        } else {
            o.outcome = Decision::Notified;
            o.reason = format!("deployment {} completed", d.deployment_id);
        }
        Ok(o)
    }

    async fn in_progress(
        &self,
        d: &DeploymentEvent,
        service: &ServiceState,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let mut o = self.outcome_for_deployment(d);
        if let Some(why) = incident::in_progress_is_late(d, service) {
            o.outcome = Decision::Late;
            o.reason = format!("late event, nothing sent: {why}");
            return Ok(o);
        }
        let revision = service
            .deployment_task_definition(&d.deployment_id)
            .map(task_definition_short)
            .unwrap_or_default();
        let n = self
            .deployment_note(
                EventType::DeployInProgress,
                d,
                &format!("Deployment in progress: {} to {revision}", c.service),
            )
            .with_fact("Revision", &revision)
            .with_fact("Tasks", tasks_line(service))
            .with_step(runbook::describe_deployments(c))
            .with_console(runbook::service_console(c))
            .with_detail("task_definition", revision.clone());
        self.send(&n, &mut o).await?;
        o.outcome = Decision::Notified;
        o.reason = format!("deployment {} to {revision} in progress", d.deployment_id);
        Ok(o)
    }

    async fn impaired(
        &self,
        s: &ServiceEvent,
        service: &ServiceState,
        request_id: &str,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let marker = self.marker(service, tags::SERVICE_INCIDENT);
        let decision = incident::on_impaired(s, marker.as_ref(), request_id);
        info!(?decision, event_name = %s.event_name, "impairment decision");
        let mut o = self.outcome_for_service(s);
        match decision {
            Impairment::Duplicate => {
                o.outcome = Decision::Duplicate;
                o.reason = format!(
                    "{} was already sent for the open impairment; nothing sent",
                    s.event_name
                );
                return Ok(o);
            }
            Impairment::Late(why) => {
                o.outcome = Decision::Late;
                o.reason = format!("late event, nothing sent: {why}");
                return Ok(o);
            }
            Impairment::Resend => o.resent = true,
            Impairment::Page { marker } => {
                self.write(service, marker_tag(tags::SERVICE_INCIDENT, &marker))
                    .await?
            }
        }
        let what = match s.event_name.as_str() {
            "SERVICE_TASK_START_IMPAIRED" => "tasks keep failing to start",
            "SERVICE_TASK_PLACEMENT_FAILURE" => "ECS cannot place tasks (no capacity)",
            _ => "service discovery reports an unhealthy instance",
        };
        let mut n = Notification::new(
            EventType::ServiceImpaired,
            c,
            format!("Service impaired: {} {what}", c.service),
            s.at,
            &s.envelope.id,
            dedup_key(c.environment, &c.service, "service"),
        )
        .with_fact("Event", &s.event_name)
        .with_fact("Tasks", tasks_line(service))
        .with_fact(
            "Running revision",
            task_definition_short(&service.task_definition),
        );
        if let Some(r) = &s.reason {
            n = n.with_fact("Reason", r);
        }
        let n = n
            .with_step(runbook::service_events(c))
            .with_step(runbook::describe_deployments(c))
            .with_step(runbook::tail_logs(c))
            .with_console(runbook::service_console(c))
            .with_detail("event_name", s.event_name.clone())
            .with_detail("reason", s.reason.clone())
            .with_detail("running_count", service.running_count)
            .with_detail("desired_count", service.desired_count)
            .with_detail("pending_count", service.pending_count);
        self.send(&n, &mut o).await?;
        o.outcome = if n.delivery.action == Action::Trigger {
            Decision::Paged
        } else {
            Decision::Notified
        };
        o.reason = format!("{}: {what}", s.event_name);
        Ok(o)
    }

    async fn steady(
        &self,
        s: &ServiceEvent,
        service: &ServiceState,
        request_id: &str,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let marker = self.marker(service, tags::SERVICE_INCIDENT);
        let decision = incident::on_steady(s, marker.as_ref(), request_id);
        let mut o = self.outcome_for_service(s);
        match decision {
            Recovery::Quiet(why) => {
                o.outcome = Decision::Ignored;
                o.reason = format!("steady state, nothing sent: {why}");
                return Ok(o);
            }
            Recovery::ResendResolve => o.resent = true,
            Recovery::Resolve { marker } => {
                self.write(service, marker_tag(tags::SERVICE_INCIDENT, &marker))
                    .await?
            }
        }
        if !self.pages() {
            o.outcome = Decision::Ignored;
            o.reason = format!(
                "{} recovered; outside prod impairments notify the team and page nobody, so there is nothing to resolve",
                c.service
            );
            return Ok(o);
        }
        let since = marker
            .as_ref()
            .map(|m| m.sent.iter().cloned().collect::<Vec<_>>().join(", "));
        let n = Notification::new(
            EventType::ServiceRecovered,
            c,
            format!("Recovered: {} is in steady state", c.service),
            s.at,
            &s.envelope.id,
            dedup_key(c.environment, &c.service, "service"),
        )
        .with_fact("Tasks", tasks_line(service))
        .with_fact("Was", since.clone().unwrap_or_default())
        .with_step(runbook::service_events(c))
        .with_console(runbook::service_console(c))
        .with_detail("resolved_events", since)
        .with_detail("running_count", service.running_count)
        .with_detail("desired_count", service.desired_count);
        self.send(&n, &mut o).await?;
        o.outcome = Decision::Resolved;
        o.reason = format!(
            "{} is in steady state; the impairment page was resolved",
            c.service
        );
        Ok(o)
    }

    async fn task_stopped(&self, t: TaskEvent) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let mut o = self.outcome(
            &t.envelope.id,
            &format!("task {}", t.last_status),
            t.started_by.clone(),
        );
        let oom = match (&t.oom, t.last_status.as_str()) {
            (Some(oom), "STOPPED") => oom,
            _ => {
                o.reason = format!(
                    "task {} is {} ({}: {}); only out-of-memory kills are reported",
                    t.task_id(),
                    t.last_status,
                    t.stop_code.as_deref().unwrap_or("no stop code"),
                    t.stopped_reason.as_deref().unwrap_or("no reason given")
                );
                return Ok(o);
            }
        };
        let memory = t.memory.as_deref().unwrap_or("unknown");
        let revision = t
            .task_definition_arn
            .as_deref()
            .map(task_definition_short)
            .unwrap_or_else(|| "unknown".into());
        let advice = match c.environment {
            Environment::Dev => "raise the task definition's memory, profile the application's memory, review the logs for OutOfMemory messages",
            _ => "the manual's fix: update the task definition's memory to 3 GB (3072 MiB), profile the application's memory, review the logs for OutOfMemory messages",
        };
        let n = Notification::new(
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
        .with_detail("started_by", t.started_by.clone());
        self.send(&n, &mut o).await?;
        o.outcome = Decision::Notified;
        o.reason = format!(
            "task {} of {revision} was killed for using more than {memory} MiB",
            t.task_id()
        );
        Ok(o)
    }

    /// Prod pages; dev and staging only notify the team, so nothing there resolves.
    fn pages(&self) -> bool {
        self.cfg.common.environment == Environment::Prod
    }

    /// The incident marker in `key`, if it is there and readable. A marker someone
    /// edited into nonsense counts as absent: at worst a page is sent twice.
    fn marker(&self, service: &ServiceState, key: &str) -> Option<Marker> {
        let raw = service.tags.get(key)?;
        match Marker::parse(raw) {
            Ok(m) => Some(m),
            Err(why) => {
                warn!(tag = key, value = %raw, %why, "unreadable incident marker, treated as absent");
                None
            }
        }
    }

    async fn write(
        &self,
        service: &ServiceState,
        new_tags: Vec<(String, String)>,
    ) -> Result<(), Error> {
        if self.cfg.common.dry_run {
            info!(?new_tags, "dry run: not tagging the service");
            return Ok(());
        }
        self.ecs.tag_service(&service.arn, &new_tags).await
    }

    fn freeze_line(
        &self,
        froze: bool,
        service: &ServiceState,
        freeze: &Option<String>,
        state_error: &Option<Error>,
    ) -> String {
        if let Some(e) = state_error {
            return format!(
                "NOT FROZEN: recording the incident failed ({}); freeze by hand with the command below",
                e.kind()
            );
        }
        if froze {
            return format!(
                "FROZEN ({}): scan-gate deploys nothing until someone reviews this and lifts the freeze",
                tags::DEPLOY_FREEZE
            );
        }
        if let Some(v) = service.tags.get(tags::DEPLOY_FREEZE) {
            return format!("already frozen: {v}");
        }
        if self.cfg.common.dry_run && freeze.is_some() {
            return "dry run: would have frozen deploys; nothing was changed".into();
        }
        if !self.cfg.freeze_on_failure {
            return "not frozen (FREEZE_ON_FAILURE=false)".into();
        }
        "not frozen".into()
    }

    fn deployment_note(
        &self,
        event_type: EventType,
        d: &DeploymentEvent,
        summary: &str,
    ) -> Notification {
        let c = &self.cfg.common;
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

    async fn send(&self, n: &Notification, o: &mut Outcome) -> Result<(), Error> {
        let rendered = n.render(&self.topics);
        let id = self.publisher.publish(&rendered).await?;
        info!(event_type = n.event_type.as_str(), action = n.delivery.action.as_str(), topic = %rendered.topic_arn, message_id = %id, subject = %rendered.subject, sms = %n.sms(), "notified");
        o.notifications.push(format!(
            "{}/{}",
            n.event_type.as_str(),
            n.delivery.action.as_str()
        ));
        Ok(())
    }

    fn outcome_for_deployment(&self, d: &DeploymentEvent) -> Outcome {
        self.outcome(&d.envelope.id, &d.event_name, Some(d.deployment_id.clone()))
    }

    fn outcome_for_service(&self, s: &ServiceEvent) -> Outcome {
        self.outcome(&s.envelope.id, &s.event_name, None)
    }

    fn outcome(&self, event_id: &str, event_name: &str, deployment_id: Option<String>) -> Outcome {
        let c = &self.cfg.common;
        Outcome {
            outcome: Decision::Ignored,
            reason: String::new(),
            environment: c.environment.as_str().to_owned(),
            cluster: c.cluster.clone(),
            service: c.service.clone(),
            source_event_id: event_id.to_owned(),
            event_name: event_name.to_owned(),
            deployment_id,
            notifications: Vec::new(),
            froze: false,
            resent: false,
            state_recorded: true,
            dry_run: c.dry_run,
        }
    }
}

/// The one tag that records an incident.
fn marker_tag(key: &str, marker: &Marker) -> Vec<(String, String)> {
    vec![(key.to_owned(), marker.render())]
}

/// `2 running of 2 desired` (with pending ones when there are).
fn tasks_line(s: &ServiceState) -> String {
    let mut line = format!("{} running of {} desired", s.running_count, s.desired_count);
    if s.pending_count > 0 {
        line.push_str(&format!(", {} pending", s.pending_count));
    }
    line
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}
