//! deploy-notifier: ECS tells us a deployment failed or a service is impaired; on-call
//! is paged once, deploys are frozen, and the page is resolved when the service
//! recovers. It also keeps the manual's watch after a deployment: an alarm within
//! `WATCH_MINUTES` is the deployment's regression (`watch.rs`).
//!
//! The whole story of one invocation, in order:
//!
//! 1. **Accept** an "ECS Deployment State Change", "ECS Service Action" or "ECS Task
//!    State Change" about this stack's service, cluster, account and region, or a
//!    "CloudWatch Alarm State Change" of this account and region; anything else is
//!    rejected and nothing changes. Alarms take their own path from here (`watch.rs`).
//! 2. **Task stops**: an out-of-memory kill notifies the team (`task.oom`, 1 call); a
//!    task that failed to start is reported once per deployment and cause
//!    (`task.start_failed`), a Spot interruption as information (`tasks.rs`); every
//!    other stop is ignored (0 calls).
//! 3. **Read the service** (DescribeServices with tags): its deployments, and the
//!    incident marker tags deploy-notifier keeps there (`domain::incident`).
//! 4. **Decide** with the pure functions of `domain::incident`: page, resend (a Lambda
//!    retry of the request that already wrote the marker), duplicate, late, resolve.
//! 5. **Page** (deployment failed or rolled back): read the failed revision's images
//!    (DescribeTaskDefinition), write the marker and, when `FREEZE_ON_FAILURE`, the
//!    freeze, in one TagResource, *then* publish. If the state cannot be written the
//!    page still goes out, saying so and asking to freeze by hand.
//! 6. **Resolve** (a deployment completed, or a steady state after an impairment): mark
//!    the incident resolved, then publish the resolve on the on-call topic. A
//!    completed deployment is also recorded as the watched one
//!    (`menotime:deploy-watch`, one more TagResource).
//!
//! With `DRY_RUN=true` nothing is written to ECS: notifications say what would have
//! been frozen, and duplicates cannot be recognised.

use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use menotime_shared::arn::task_definition_short;
use menotime_shared::aws::ecs::EcsApi;
use menotime_shared::config::{Environment, NotifierConfig};
use menotime_shared::domain::alarm_event::SOURCE_CLOUDWATCH;
use menotime_shared::domain::ecs_event::{
    parse_ecs_event, DeploymentChange, DeploymentEvent, EcsEvent, ServiceChange, ServiceEvent,
    Site, TaskEvent,
};
use menotime_shared::domain::incident::{self, Alarm, Completion, Impairment, Marker, Recovery};
use menotime_shared::domain::service::{ServiceState, Tagged};
use menotime_shared::notify::{Action, Notification, Notifier, Publisher};
use menotime_shared::{runbook, tags, Error};

mod notes;
mod tasks;
mod watch;

/// What deploy-notifier decided (docs/reference.md §6).
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
    /// nothing open, an alarm of another environment).
    Ignored,
    /// A regression was rolled back to the previous revision (`AUTO_ROLLBACK_ON_REGRESSION`).
    RolledBack,
}

/// The invocation result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    #[serde(rename = "outcome")]
    pub decision: Decision,
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
    /// The revision (`family:revision`) this invocation rolled the service back to.
    pub rolled_back_to: Option<String>,
}

/// The handler, generic over its two AWS dependencies so tests can drive it with fakes
/// or with mocked SDK clients.
pub struct DeployNotifier<E, P> {
    cfg: NotifierConfig,
    ecs: E,
    notifier: Notifier<P>,
}

impl<E: EcsApi + Sync, P: Publisher + Sync> DeployNotifier<E, P> {
    pub fn new(cfg: NotifierConfig, ecs: E, publisher: P) -> Self {
        let notifier = Notifier::new(&cfg.common, publisher);
        Self { cfg, ecs, notifier }
    }

    /// `request_id` is the Lambda request id: a Lambda retry of a failed invocation
    /// keeps it, a second delivery of the same event does not.
    pub async fn handle(&self, event: Value, request_id: &str) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        // 1. Accept.
        if event.get("source").and_then(Value::as_str) == Some(SOURCE_CLOUDWATCH) {
            return self.alarm_changed(&event, request_id).await;
        }
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
            EcsEvent::Task(t) => self.task_stopped(t, request_id).await,
            // 3.-6. Deployments and service actions.
            EcsEvent::Deployment(d) => {
                let service = self.ecs.describe_service(&c.cluster, &c.service).await?;
                match d.change {
                    DeploymentChange::Failed | DeploymentChange::Rollback { .. } => {
                        self.failure(&d, &service, request_id).await
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

    /// A failed deployment or a circuit-breaker rollback: record the incident and the
    /// freeze, then page.
    async fn failure(
        &self,
        d: &DeploymentEvent,
        service: &ServiceState,
        request_id: &str,
    ) -> Result<Outcome, Error> {
        let marker = marker(service.tags.deploy_incident.as_ref(), tags::DEPLOY_INCIDENT);
        let decision = incident::on_alarm(
            d,
            service,
            marker.as_ref(),
            request_id,
            self.cfg.freeze_on_failure,
        );
        info!(?decision, deployment = %d.deployment_id, "failure decision");
        let mut o = self.outcome_for_deployment(d);
        let (write, freeze) = match decision {
            Alarm::Duplicate => {
                o.decision = Decision::Duplicate;
                o.reason = format!(
                    "{} of deployment {} was already sent by another delivery of this event; nothing sent",
                    d.change.name(),
                    d.deployment_id
                );
                return Ok(o);
            }
            Alarm::Late(why) => {
                o.decision = Decision::Late;
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
                    failed_rev
                        .as_ref()
                        .and_then(|r| r.replaces())
                        .map(|short| runbook::task_definition_arn(&self.cfg.common, short))
                });

        // State first (marker and freeze in one call), then the page.
        let mut state_error = None;
        let mut froze = false;
        if let Some(marker) = &write {
            let mut new_tags = vec![(tags::DEPLOY_INCIDENT.to_owned(), marker.render())];
            if let Some(value) = &freeze {
                new_tags.push((tags::DEPLOY_FREEZE.to_owned(), value.clone()));
            }
            match self.write(service, new_tags).await {
                Ok(()) => froze = freeze.is_some() && !self.cfg.common.dry_run,
                Err(e) => {
                    tracing::error!(error = %e, error_type = e.kind(), "could not record the incident or the freeze; paging anyway, with the freeze to do by hand");
                    state_error = Some(e);
                }
            }
        }
        let n = notes::failure(
            &self.cfg,
            &notes::Failure {
                d,
                service,
                rollback_to: rollback_to.as_deref(),
                failed_td: failed_td.as_deref(),
                failed_rev: failed_rev.as_ref(),
                previous: previous.as_deref(),
                freeze: freeze.as_deref(),
                froze,
                state_error: state_error.as_ref(),
            },
        );
        self.send(&n, &mut o).await?;
        o.froze = froze;
        o.decision = paged_or_notified(&n);
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

    /// A completed deployment: tell the team, and resolve the page if one is open.
    async fn completed(
        &self,
        d: &DeploymentEvent,
        service: &ServiceState,
        request_id: &str,
    ) -> Result<Outcome, Error> {
        let watching = self.start_watch(d, service).await;
        let marker = marker(service.tags.deploy_incident.as_ref(), tags::DEPLOY_INCIDENT);
        let decision = incident::on_completed(d, marker.as_ref(), request_id, self.pages());
        info!(?decision, deployment = %d.deployment_id, "completion decision");
        let mut o = self.outcome_for_deployment(d);
        let (resolve, write) = match decision {
            Completion::Late(why) => {
                o.decision = Decision::Late;
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
        let revision = task_definition_short(
            service
                .deployment_task_definition(&d.deployment_id)
                .unwrap_or(&service.task_definition),
        );
        let resolved = marker.as_ref().filter(|_| resolve);
        let n = notes::completed(&self.cfg, d, service, &revision, resolved);
        let n = notes::with_watch(&self.cfg, n, watching.started());
        if resolve {
            // The resolve first: it is what on-call waits for.
            let r = notes::deployment_resolved(&self.cfg, &n, &revision, resolved);
            self.send(&r, &mut o).await?;
        }
        self.send(&n, &mut o).await?;
        if resolve {
            o.decision = Decision::Resolved;
            o.reason = format!(
                "deployment {} completed; the open page was resolved{}",
                d.deployment_id,
                if service.tags.freeze.is_some() {
                    " (deploys stay frozen until reviewed)"
                } else {
                    ""
                }
            );
        } else {
            o.decision = Decision::Notified;
            o.reason = format!("deployment {} completed", d.deployment_id);
        }
        o.reason
            .push_str(&watching.sentence(self.cfg.watch.minutes));
        Ok(o)
    }

    /// A deployment started: tell the team, unless ECS already shows it ended.
    async fn in_progress(
        &self,
        d: &DeploymentEvent,
        service: &ServiceState,
    ) -> Result<Outcome, Error> {
        let mut o = self.outcome_for_deployment(d);
        if let Some(why) = incident::in_progress_is_late(d, service) {
            o.decision = Decision::Late;
            o.reason = format!("late event, nothing sent: {why}");
            return Ok(o);
        }
        let revision = service
            .deployment_task_definition(&d.deployment_id)
            .map(task_definition_short)
            .unwrap_or_default();
        let n = notes::in_progress(&self.cfg, d, service, &revision);
        self.send(&n, &mut o).await?;
        o.decision = Decision::Notified;
        o.reason = format!("deployment {} to {revision} in progress", d.deployment_id);
        Ok(o)
    }

    /// The service is impaired: record the incident, then page (once per event name).
    async fn impaired(
        &self,
        s: &ServiceEvent,
        service: &ServiceState,
        request_id: &str,
    ) -> Result<Outcome, Error> {
        let marker = marker(
            service.tags.service_incident.as_ref(),
            tags::SERVICE_INCIDENT,
        );
        let decision = incident::on_impaired(s, marker.as_ref(), request_id);
        info!(?decision, event_name = %s.event_name, "impairment decision");
        let mut o = self.outcome_for_service(s);
        match decision {
            Impairment::Duplicate => {
                o.decision = Decision::Duplicate;
                o.reason = format!(
                    "{} was already sent for the open impairment; nothing sent",
                    s.event_name
                );
                return Ok(o);
            }
            Impairment::Late(why) => {
                o.decision = Decision::Late;
                o.reason = format!("late event, nothing sent: {why}");
                return Ok(o);
            }
            Impairment::Resend => o.resent = true,
            Impairment::Page { marker } => {
                self.write(service, marker_tag(tags::SERVICE_INCIDENT, &marker))
                    .await?
            }
        }
        let n = notes::impaired(&self.cfg, s, service);
        self.send(&n, &mut o).await?;
        o.decision = paged_or_notified(&n);
        o.reason = format!("{}: {}", s.event_name, notes::impairment(&s.event_name));
        Ok(o)
    }

    /// A steady state: resolve the impairment page if one is open; else nothing.
    async fn steady(
        &self,
        s: &ServiceEvent,
        service: &ServiceState,
        request_id: &str,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let marker = marker(
            service.tags.service_incident.as_ref(),
            tags::SERVICE_INCIDENT,
        );
        let decision = incident::on_steady(s, marker.as_ref(), request_id);
        let mut o = self.outcome_for_service(s);
        match decision {
            Recovery::Quiet(why) => {
                o.decision = Decision::Ignored;
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
            o.decision = Decision::Ignored;
            o.reason = format!(
                "{} recovered; outside prod impairments notify the team and page nobody, so there is nothing to resolve",
                c.service
            );
            return Ok(o);
        }
        let n = notes::recovered(&self.cfg, s, service, marker.as_ref());
        self.send(&n, &mut o).await?;
        o.decision = Decision::Resolved;
        o.reason = format!(
            "{} is in steady state; the impairment page was resolved",
            c.service
        );
        Ok(o)
    }

    /// A task stopped: an out-of-memory kill warns the team, a task that failed to
    /// start or a Spot interruption is reported (`tasks.rs`); other stops say nothing.
    async fn task_stopped(&self, t: TaskEvent, request_id: &str) -> Result<Outcome, Error> {
        let mut o = self.outcome(
            &t.envelope.id,
            &format!("task {}", t.last_status),
            t.started_by.clone(),
        );
        if let Some(cause) = t.start_failure() {
            return self.task_start_failed(&t, cause, request_id, o).await;
        }
        if t.spot_interrupted() {
            return self.spot_interrupted(&t, o).await;
        }
        let oom = match (&t.oom, t.last_status.as_str()) {
            (Some(oom), "STOPPED") => oom,
            _ => {
                o.reason = format!(
                    "task {} is {} ({}: {}); only out-of-memory kills, failures to start and Spot interruptions are reported",
                    t.task_id(),
                    t.last_status,
                    t.stop_code.as_deref().unwrap_or("no stop code"),
                    t.stopped_reason.as_deref().unwrap_or("no reason given")
                );
                return Ok(o);
            }
        };
        let n = notes::oom(&self.cfg, &t, oom);
        self.send(&n, &mut o).await?;
        o.decision = Decision::Notified;
        o.reason = format!(
            "task {} of {} was killed for using more than {} MiB",
            t.task_id(),
            notes::oom_revision(&t),
            t.memory.as_deref().unwrap_or("unknown")
        );
        Ok(o)
    }

    /// Prod pages; dev and staging only notify the team, so nothing there resolves.
    fn pages(&self) -> bool {
        self.cfg.common.environment == Environment::Prod
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

    async fn send(&self, n: &Notification, o: &mut Outcome) -> Result<(), Error> {
        let sent = self.notifier.send(n).await?;
        o.notifications.push(sent.label());
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
            decision: Decision::Ignored,
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
            rolled_back_to: None,
        }
    }
}

/// The incident marker, if it is there and readable. A marker someone edited into
/// nonsense counts as absent: at worst a page is sent twice.
fn marker(tag: Option<&Tagged<Marker>>, key: &str) -> Option<Marker> {
    match tag? {
        Tagged::Read(m) => Some(m.clone()),
        Tagged::Unreadable { value, problem } => {
            warn!(tag = key, %value, %problem, "unreadable incident marker, treated as absent");
            None
        }
    }
}

/// A page when it went to on-call; a notice to the team otherwise.
fn paged_or_notified(n: &Notification) -> Decision {
    if n.delivery.action == Action::Trigger {
        Decision::Paged
    } else {
        Decision::Notified
    }
}

/// The one tag that records an incident.
fn marker_tag(key: &str, marker: &Marker) -> Vec<(String, String)> {
    vec![(key.to_owned(), marker.render())]
}
