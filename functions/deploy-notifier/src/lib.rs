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
//! 4. **Decide** with the pure functions of `domain::incident`: page, deliver (a page
//!    recorded by an attempt that never confirmed publishing it: a Lambda retry, a
//!    redrive, or ECS's next repeat), duplicate, late, resolve.
//! 5. **Page** (deployment failed or rolled back, service impaired), in two phases:
//!    read the failed revision's images (DescribeTaskDefinition); *record* the page
//!    `pending` in the incident marker, with the freeze when `FREEZE_ON_FAILURE`, in
//!    one TagResource; publish; *confirm* it `sent` (TagResource). A page whose record
//!    fails still goes out; if that left prod unfrozen, the invocation then fails so
//!    that Lambda's retry writes the freeze.
//! 6. **Resolve** (a deployment completed, or a steady state after an impairment):
//!    record the resolve pending, publish any page of the incident still pending, then
//!    the resolve, then confirm. A completed deployment is also recorded as the
//!    watched one (`menotime:deploy-watch`, one more TagResource, first).
//!
//! With `DRY_RUN=true` nothing is written to ECS and nothing pages: what would page
//! goes to the team's topic, marked as a dry run (`Notifier`).

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
use menotime_shared::domain::incident::{
    self, Alarm, Completion, Impairment, Marker, Recovery, RESOLVE,
};
use menotime_shared::domain::service::{ServiceState, Tagged};
use menotime_shared::notify::{Notification, Notifier, Publisher};
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

impl Outcome {
    /// A page went out in this invocation.
    fn paged(&self) -> bool {
        self.notifications.iter().any(|n| n.ends_with("/trigger"))
    }

    /// A resolve went out in this invocation.
    fn resolved(&self) -> bool {
        self.notifications.iter().any(|n| n.ends_with("/resolve"))
    }
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

    /// A failed deployment or a circuit-breaker rollback: record the page (and the
    /// freeze), publish it, confirm it.
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
        let (record, found, freeze, undelivered) = match decision {
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
            Alarm::Deliver { marker } => {
                o.resent = true;
                (None, marker, None, None)
            }
            Alarm::Page {
                marker,
                freeze,
                undelivered,
            } => (Some(marker.clone()), marker, freeze, undelivered),
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

        // An older incident's notifications still pending go out first, before this
        // incident's record replaces that marker (so they cannot be lost with it).
        for (_, n) in self.late_notes(undelivered.as_ref(), service, &d.envelope.id) {
            self.send(&n, &mut o).await?;
        }
        // 1. Record: the page pending, and the freeze, in one call.
        let state_error = match &record {
            Some(m) => {
                self.record(service, tags::DEPLOY_INCIDENT, m, freeze.as_deref())
                    .await
            }
            None => None,
        };
        let froze = record.is_some()
            && state_error.is_none()
            && freeze.is_some()
            && !self.cfg.common.dry_run;
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
        // 2. Publish, 3. confirm.
        let out = vec![(vec![d.change.name().to_owned()], n)];
        let missing_freeze = freeze.as_deref().filter(|_| state_error.is_some());
        self.publish_and_confirm(
            service,
            tags::DEPLOY_INCIDENT,
            &found,
            out,
            missing_freeze,
            &mut o,
        )
        .await?;
        o.froze = o.froze || froze;
        o.decision = if o.paged() {
            Decision::Paged
        } else {
            Decision::Notified
        };
        o.reason = format!(
            "{} of deployment {}: {}{}",
            d.change.name(),
            d.deployment_id,
            d.reason,
            if o.froze { "; deploys frozen" } else { "" }
        );
        if o.resent {
            o.reason
                .push_str(" (recorded by an earlier attempt, delivered now)");
        }
        if let Some(e) = state_error {
            o.reason.push_str(&format!(
                "; the incident could not be recorded before publishing ({})",
                e.kind()
            ));
        }
        if !o.state_recorded {
            o.reason.push_str(
                "; the incident's state could not be recorded: a later delivery may notify again (same dedup_key)",
            );
        }
        Ok(o)
    }

    /// A completed deployment: tell the team, and resolve the page if one is open
    /// (publishing first any page of the incident still undelivered).
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
        let (record, found) = match decision {
            Completion::Late(why) => {
                o.decision = Decision::Late;
                o.reason = format!("late event, nothing sent: {why}");
                return Ok(o);
            }
            Completion::Info => (None, None),
            Completion::Deliver { marker } => {
                o.resent = true;
                (None, Some(marker))
            }
            Completion::Resolve { marker } => (Some(marker.clone()), Some(marker)),
        };
        let revision = task_definition_short(
            service
                .deployment_task_definition(&d.deployment_id)
                .unwrap_or(&service.task_definition),
        );
        let info_note = notes::completed(&self.cfg, d, service, &revision, found.as_ref());
        let info_note = notes::with_watch(&self.cfg, info_note, watching.started());
        let Some(found) = found else {
            self.send(&info_note, &mut o).await?;
            o.decision = Decision::Notified;
            o.reason = format!(
                "deployment {} completed{}",
                d.deployment_id,
                watching.sentence(self.cfg.watch.minutes)
            );
            return Ok(o);
        };
        // 1. Record the resolve (after any page still pending).
        let state_error = match &record {
            Some(m) => self.record(service, tags::DEPLOY_INCIDENT, m, None).await,
            None => None,
        };
        // 2. Publish: the pages still pending, the resolve (what on-call waits for),
        // then the team's notice; 3. confirm.
        let mut out = Vec::new();
        for kind in found.pending_in_order() {
            let n = if kind == RESOLVE {
                notes::deployment_resolved(&self.cfg, &info_note, &revision, Some(&found))
            } else {
                notes::undelivered(&self.cfg, &kind, &found, service, &d.envelope.id)
            };
            out.push((vec![kind], n));
        }
        out.push((Vec::new(), info_note));
        self.publish_and_confirm(service, tags::DEPLOY_INCIDENT, &found, out, None, &mut o)
            .await?;
        if state_error.is_some() {
            o.state_recorded = false;
        }
        o.decision = if o.resolved() {
            Decision::Resolved
        } else {
            Decision::Notified
        };
        o.reason = format!(
            "deployment {} completed; the open page was resolved{}",
            d.deployment_id,
            if service.tags.freeze.is_some() {
                " (deploys stay frozen until reviewed)"
            } else {
                ""
            }
        );
        if o.resent {
            o.reason
                .push_str(" (recorded by an earlier attempt, delivered now)");
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

    /// The service is impaired: record the page, publish it, confirm it (once per
    /// event name and incident).
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
        let (record, found, undelivered) = match decision {
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
            Impairment::Deliver { marker } => {
                o.resent = true;
                (None, marker, None)
            }
            Impairment::Page {
                marker,
                undelivered,
            } => (Some(marker.clone()), marker, undelivered),
        };
        // A marker that cannot be written does not hold the page back: it goes out
        // anyway (ECS repeats the impairment, so at worst a repeat pages again, with
        // the same dedup_key).
        for (_, n) in self.late_notes(undelivered.as_ref(), service, &s.envelope.id) {
            self.send(&n, &mut o).await?;
        }
        let state_error = match &record {
            Some(m) => self.record(service, tags::SERVICE_INCIDENT, m, None).await,
            None => None,
        };
        let out = vec![(
            vec![s.event_name.clone()],
            notes::impaired(&self.cfg, s, service),
        )];
        self.publish_and_confirm(service, tags::SERVICE_INCIDENT, &found, out, None, &mut o)
            .await?;
        if state_error.is_some() {
            o.state_recorded = false;
        }
        o.decision = if o.paged() {
            Decision::Paged
        } else {
            Decision::Notified
        };
        o.reason = format!("{}: {}", s.event_name, notes::impairment(&s.event_name));
        if !o.state_recorded {
            o.reason.push_str(
                "; the incident's state could not be recorded: a repeat may page again (same dedup_key)",
            );
        }
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
        let decision = incident::on_steady(s, marker.as_ref(), request_id, self.pages());
        let mut o = self.outcome_for_service(s);
        let (record, found) = match decision {
            Recovery::Quiet(why) => {
                o.decision = Decision::Ignored;
                o.reason = format!("steady state, nothing sent: {why}");
                return Ok(o);
            }
            Recovery::Deliver { marker } => {
                o.resent = true;
                (None, marker)
            }
            Recovery::Resolve { marker } => (Some(marker.clone()), marker),
        };
        let state_error = match &record {
            Some(m) => self.record(service, tags::SERVICE_INCIDENT, m, None).await,
            None => None,
        };
        let mut out = Vec::new();
        for kind in found.pending_in_order() {
            let n = if kind == RESOLVE {
                notes::recovered(&self.cfg, s, service, Some(&found))
            } else {
                notes::undelivered(&self.cfg, &kind, &found, service, &s.envelope.id)
            };
            out.push((vec![kind], n));
        }
        self.publish_and_confirm(service, tags::SERVICE_INCIDENT, &found, out, None, &mut o)
            .await?;
        if state_error.is_some() {
            o.state_recorded = false;
        }
        if o.resolved() {
            o.decision = Decision::Resolved;
            o.reason = format!(
                "{} is in steady state; the impairment page was resolved",
                c.service
            );
        } else {
            o.decision = Decision::Ignored;
            o.reason = format!(
                "{} recovered; outside prod impairments notify the team and page nobody, so there is nothing to resolve",
                c.service
            );
        }
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

    /// Phase 1: records `marker` (with what it has pending) and the freeze, in one
    /// TagResource, before anything is published. Returns the error if that failed:
    /// the notifications still go out.
    async fn record(
        &self,
        service: &ServiceState,
        key: &str,
        marker: &Marker,
        freeze: Option<&str>,
    ) -> Option<Error> {
        let mut new_tags = marker_tag(key, marker);
        if let Some(value) = freeze {
            new_tags.push((tags::DEPLOY_FREEZE.to_owned(), value.to_owned()));
        }
        match self.write(service, new_tags).await {
            Ok(()) => None,
            Err(e) => {
                warn!(error = %e, error_type = e.kind(), tag = key, "could not record the incident before publishing; publishing anyway");
                Some(e)
            }
        }
    }

    /// Phases 2 and 3: publishes `out` in order, then confirms in `base` every entry
    /// that went out (one TagResource). A failed publish fails the invocation: what
    /// was recorded pending is published by the next attempt or delivery. A freeze the
    /// record could not write (`missing_freeze`) is written with the confirmation; if
    /// that fails too, the invocation fails so that Lambda's retry writes it.
    async fn publish_and_confirm(
        &self,
        service: &ServiceState,
        key: &str,
        base: &Marker,
        out: Vec<(Vec<String>, Notification)>,
        missing_freeze: Option<&str>,
        o: &mut Outcome,
    ) -> Result<(), Error> {
        self.publish_and_confirm_with(
            service,
            key,
            &|published: &[&str]| base.confirmed(published.iter().copied()),
            out,
            missing_freeze,
            o,
        )
        .await
    }

    /// [`Self::publish_and_confirm`], with `confirm` making the marker that records
    /// what was published (for a marker kept in another type, e.g. the alarm incident).
    async fn publish_and_confirm_with(
        &self,
        service: &ServiceState,
        key: &str,
        confirm: &(dyn Fn(&[&str]) -> Marker + Sync),
        out: Vec<(Vec<String>, Notification)>,
        missing_freeze: Option<&str>,
        o: &mut Outcome,
    ) -> Result<(), Error> {
        let published = self
            .publish_in_order(service, key, confirm, &out, missing_freeze, o)
            .await?;
        let confirmed = confirm(&published);
        let mut new_tags = marker_tag(key, &confirmed);
        if let Some(value) = missing_freeze {
            new_tags.push((tags::DEPLOY_FREEZE.to_owned(), value.to_owned()));
        }
        match self.write(service, new_tags).await {
            Ok(()) => {
                if missing_freeze.is_some() && !self.cfg.common.dry_run {
                    o.froze = true;
                }
                Ok(())
            }
            Err(e) if missing_freeze.is_some() => Err(Error::NotNow(format!(
                "the page went out, but deploys could not be frozen ({e}); Lambda retries this invocation to write the freeze (its retry may page again, with the same dedup_key)"
            ))),
            Err(e) => {
                warn!(error = %e, error_type = e.kind(), tag = key, "published, but could not confirm it in the incident marker: a later delivery may send it again");
                o.state_recorded = false;
                Ok(())
            }
        }
    }

    /// Publishes `out` in order and returns the marker entries that went out. If a
    /// Publish fails after others went out, those are confirmed first (`confirm`, one
    /// TagResource, with `missing_freeze`; best effort), so that the delivery that
    /// finishes the job sends only what did not go out; then the invocation fails.
    async fn publish_in_order<'a>(
        &self,
        service: &ServiceState,
        key: &str,
        confirm: &(dyn Fn(&[&str]) -> Marker + Sync),
        out: &'a [(Vec<String>, Notification)],
        missing_freeze: Option<&str>,
        o: &mut Outcome,
    ) -> Result<Vec<&'a str>, Error> {
        let mut published = Vec::new();
        for (entries, n) in out {
            if let Err(e) = self.send(n, o).await {
                if !published.is_empty() {
                    let mut new_tags = marker_tag(key, &confirm(&published));
                    if let Some(value) = missing_freeze {
                        new_tags.push((tags::DEPLOY_FREEZE.to_owned(), value.to_owned()));
                    }
                    if let Err(w) = self.write(service, new_tags).await {
                        warn!(error = %w, error_type = w.kind(), tag = key, "a Publish failed after others went out, and those could not be confirmed: a later delivery may send them again");
                    }
                }
                return Err(e);
            }
            published.extend(entries.iter().map(String::as_str));
        }
        Ok(published)
    }

    /// The notifications an older incident's marker still had pending, composed from
    /// it, to publish before the new incident's page.
    fn late_notes(
        &self,
        undelivered: Option<&Marker>,
        service: &ServiceState,
        event_id: &str,
    ) -> Vec<(Vec<String>, Notification)> {
        undelivered
            .map(|m| {
                m.pending_in_order()
                    .iter()
                    .map(|kind| {
                        (
                            Vec::new(),
                            notes::undelivered(&self.cfg, kind, m, service, event_id),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
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

/// The one tag that records an incident.
fn marker_tag(key: &str, marker: &Marker) -> Vec<(String, String)> {
    vec![(key.to_owned(), marker.render())]
}
