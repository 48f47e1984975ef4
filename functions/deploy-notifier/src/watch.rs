//! The manual's post-deployment watch, in deploy-notifier: what a completed deployment
//! records, and what one of this environment's CloudWatch alarms does.
//!
//! The story of an alarm event, in order:
//!
//! 1. **Accept** a "CloudWatch Alarm State Change" of this account and region. An alarm
//!    whose name lacks `ALARM_PREFIX` is not this environment's: `ignored`, no call.
//! 2. **Memory** (`<prefix>memory-high`) only warns the team (`service.memory_high`),
//!    whenever it happens: DescribeServices, DescribeTaskDefinition (the revision's
//!    memory), Publish.
//! 3. **Read the service** (DescribeServices with tags): the watch, the alarm incident,
//!    the freeze, the revision it runs and any rollout.
//! 4. **Decide** with `domain::watch`: open an incident (a regression of the watched
//!    deployment, or a service alarm), join the open one, resend, duplicate, late,
//!    resolve, or nothing.
//! 5. **Page**: read the revision (DescribeTaskDefinition), write the incident (and,
//!    for an automatic rollback, the freeze) in one TagResource, roll back
//!    (UpdateService with a new deployment) when `AUTO_ROLLBACK_ON_REGRESSION` says
//!    so, then publish.
//! 6. **Resolve**: write the incident resolved, then publish the resolve.

use serde_json::Value;
use tracing::{error, info, warn};

use menotime_shared::arn::task_definition_short;
use menotime_shared::aws::ecs::EcsApi;
use menotime_shared::domain::alarm_event::{
    parse_alarm_event, AlarmChange, AlarmEvent, AlarmKind, AlarmSite, AlarmState,
};
use menotime_shared::domain::deploy::RevisionSummary;
use menotime_shared::domain::ecs_event::DeploymentEvent;
use menotime_shared::domain::service::{ServiceState, Tagged};
use menotime_shared::domain::watch::{
    self, AlarmDecision, AlarmIncident, Attribution, Rollback, Watch, WatchStart, WayBack,
};
use menotime_shared::notify::Publisher;
use menotime_shared::{runbook, tags, Error};

use crate::notes::{self, AlarmPage, RollbackReport};
use crate::{Decision, DeployNotifier, Outcome};

/// What a completed deployment did to the watch.
#[derive(Clone, Debug)]
pub(crate) enum WatchRecord {
    /// Watched from now on (not written in a dry run).
    Started(Watch),
    /// Left as it was (a duplicate, late or superseded completion; logged).
    Kept,
    /// Could not be written: alarms of its window will be service alarms.
    Failed(String),
}

impl WatchRecord {
    pub(crate) fn started(&self) -> Option<&Watch> {
        match self {
            WatchRecord::Started(w) => Some(w),
            _ => None,
        }
    }

    /// The end of a sentence for the invocation's reason.
    pub(crate) fn sentence(&self, minutes: i64) -> String {
        match self {
            WatchRecord::Started(w) => format!(
                "; watching it until {} (way back: {})",
                w.until(minutes).format("%Y-%m-%dT%H:%M:%SZ"),
                match (&w.previous, &w.rolled_back_from) {
                    (Some(p), _) => p.clone(),
                    (None, Some(from)) => format!("none, it went back from {from}"),
                    (None, None) => "the revision's menotime:replaces, read if an alarm fires".into(),
                }
            ),
            WatchRecord::Kept => String::new(),
            WatchRecord::Failed(e) => format!(
                "; its watch could NOT be recorded ({e}): alarms of the next {minutes} minutes will be service alarms"
            ),
        }
    }
}

/// A tag read into its type, if it is there and readable; an edited value is logged
/// and treated as absent.
pub(crate) fn read_tag<T: Clone>(tag: Option<&Tagged<T>>, key: &str) -> Option<T> {
    match tag? {
        Tagged::Read(t) => Some(t.clone()),
        Tagged::Unreadable { value, problem } => {
            warn!(tag = key, %value, %problem, "unreadable tag, treated as absent");
            None
        }
    }
}

fn alarm_incident(service: &ServiceState) -> Option<AlarmIncident> {
    let m = read_tag(service.tags.alarm_incident.as_ref(), tags::ALARM_INCIDENT)?;
    match AlarmIncident::from_marker(&m) {
        Ok(i) => Some(i),
        Err(problem) => {
            warn!(tag = tags::ALARM_INCIDENT, %problem, "unreadable alarm incident, treated as absent");
            None
        }
    }
}

impl<E: EcsApi + Sync, P: Publisher + Sync> DeployNotifier<E, P> {
    /// A deployment completed: record it as the watched deployment. A failure to
    /// record is logged and reported, never fatal: the completion and its resolve
    /// matter more than the watch.
    pub(crate) async fn start_watch(
        &self,
        d: &DeploymentEvent,
        service: &ServiceState,
    ) -> WatchRecord {
        let old = read_tag(service.tags.watch.as_ref(), tags::DEPLOY_WATCH);
        match watch::on_completed(d, service, old.as_ref()) {
            WatchStart::Keep(why) => {
                info!(%why, "watch kept");
                WatchRecord::Kept
            }
            WatchStart::Start(w) => {
                match self
                    .write(service, vec![(tags::DEPLOY_WATCH.to_owned(), w.render())])
                    .await
                {
                    Ok(()) => {
                        info!(watch = %w.render(), "watching the deployment");
                        WatchRecord::Started(w)
                    }
                    Err(e) => {
                        error!(error = %e, error_type = e.kind(), "could not record the deployment's watch");
                        WatchRecord::Failed(e.to_string())
                    }
                }
            }
        }
    }

    /// A "CloudWatch Alarm State Change".
    pub(crate) async fn alarm_changed(
        &self,
        event: &Value,
        request_id: &str,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        // 1. Accept.
        let change = parse_alarm_event(
            event,
            AlarmSite {
                account: &c.account,
                region: &c.region,
                prefix: &self.cfg.watch.alarm_prefix,
            },
        )?;
        let a = match change {
            AlarmChange::NotOurs { envelope, name } => {
                let mut o = self.outcome(&envelope.id, &format!("alarm {name}"), None);
                o.reason = format!(
                    "alarm {name} does not start with ALARM_PREFIX {:?}: not this environment's; nothing sent",
                    self.cfg.watch.alarm_prefix
                );
                return Ok(o);
            }
            AlarmChange::Ours(a) => a,
        };
        info!(event_id = %a.envelope.id, alarm = %a.name, state = a.state.as_str(), at = %a.at, "alarm state change received");
        // 2. Memory.
        if a.kind == AlarmKind::MemoryHigh {
            return self.memory_high(&a).await;
        }
        // 3. Read the service.
        let service = self.ecs.describe_service(&c.cluster, &c.service).await?;
        let watched = read_tag(service.tags.watch.as_ref(), tags::DEPLOY_WATCH);
        let incident = alarm_incident(&service);
        // 4. Decide.
        let minutes = self.cfg.watch.minutes;
        let decision = watch::on_alarm_change(
            &a,
            incident.as_ref(),
            || watch::attribute(a.at, watched.as_ref(), &service, minutes),
            request_id,
        );
        info!(?decision, alarm = %a.name, "alarm decision");
        let mut o = self.alarm_outcome(&a, incident.as_ref());
        match decision {
            AlarmDecision::Duplicate(why) => {
                o.decision = Decision::Duplicate;
                o.reason = format!("{why}; nothing sent");
                Ok(o)
            }
            AlarmDecision::Late(why) => {
                o.decision = Decision::Late;
                o.reason = format!("late event, nothing sent: {why}");
                Ok(o)
            }
            AlarmDecision::Quiet(why) => {
                o.reason = format!("{why}; nothing sent");
                Ok(o)
            }
            AlarmDecision::Record { incident } => {
                self.write_incident(&service, &incident).await?;
                o.reason = format!(
                    "{} is OK and no ALARM of it was seen: recorded, so a late delivery of that ALARM pages nobody; nothing sent",
                    a.name
                );
                Ok(o)
            }
            AlarmDecision::StillFiring { incident } => {
                self.write_incident(&service, &incident).await?;
                o.reason = format!(
                    "{} is OK; {} still in ALARM, so the page stays open; nothing sent",
                    a.name,
                    incident.firing().join(", ")
                );
                Ok(o)
            }
            // 6. Resolve.
            AlarmDecision::Resolve { incident } => {
                self.write_incident(&service, &incident).await?;
                self.resolve(&a, &incident, &service, o, false).await
            }
            AlarmDecision::ResendResolve { incident } => {
                self.resolve(&a, &incident, &service, o, true).await
            }
            // 5. Page.
            AlarmDecision::Open {
                incident,
                attribution,
            } => {
                self.raise(
                    &a,
                    incident,
                    Some(attribution),
                    &service,
                    watched,
                    o,
                    Raise::Open,
                )
                .await
            }
            AlarmDecision::Join { incident } => {
                self.raise(&a, incident, None, &service, watched, o, Raise::Join)
                    .await
            }
            AlarmDecision::Resend { incident } => {
                self.raise(&a, incident, None, &service, watched, o, Raise::Resend)
                    .await
            }
        }
    }

    /// Pages (or, outside prod, tells the team) about an ALARM: a regression of the
    /// watched deployment, rolled back when configured, or a service alarm.
    #[allow(clippy::too_many_arguments)]
    async fn raise(
        &self,
        a: &AlarmEvent,
        mut incident: AlarmIncident,
        attribution: Option<Attribution>,
        service: &ServiceState,
        watched: Option<Watch>,
        mut o: Outcome,
        how: Raise,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        // Whether this alarm joined an incident another alarm opened (for a retry: an
        // alarm of the incident was in ALARM before this one).
        let key = watch::alarm_key(a.kind.suffix());
        let since = incident.alarms.get(&key).map(|m| m.since);
        let joined = match how {
            Raise::Open => false,
            Raise::Join => true,
            Raise::Resend => incident
                .alarms
                .iter()
                .any(|(k, m)| *k != key && m.firing && Some(m.since) < since),
        };
        // The watch the incident is about (a regression), and why it is not (a
        // service alarm that opens now).
        let watch = match (&attribution, &incident.deployment) {
            (Some(Attribution::Regression(w)), _) => Some(w.clone()),
            (_, Some(d)) => watched.filter(|w| &w.deployment == d),
            _ => None,
        };
        let not_a_regression = match &attribution {
            Some(Attribution::Regression(_)) | None => None,
            Some(other) => Some(other.why_not(self.cfg.watch.minutes)),
        };
        // The revision the page is about.
        let td = watch
            .as_ref()
            .map(|w| w.revision.clone())
            .unwrap_or_else(|| service.task_definition.clone());
        let revision = match self.ecs.describe_task_definition(&td).await {
            Ok(r) => Some(r),
            Err(e) => {
                warn!(error = %e, "could not read the revision; paging without its image");
                None
            }
        };
        let way_back = match &watch {
            Some(w) => WayBack::of(w, revision.as_ref().and_then(RevisionSummary::replaces)),
            None => WayBack::Unknown,
        };
        // The automatic rollback: decided by the alarm that opens a regression; a
        // Lambda retry of that request finishes it if ECS still runs the deployment.
        let auto = self.cfg.watch.auto_rollback;
        let plan = match (&how, &watch) {
            (Raise::Join, _) => Rollback::Off,
            (_, _) if incident.deployment.is_none() || joined => Rollback::Off,
            (_, None) if auto => {
                Rollback::Cannot("the deployment's watch is no longer recorded".into())
            }
            (_, None) => Rollback::Off,
            (Raise::Open, Some(_)) => {
                watch::rollback(auto, c.dry_run, &way_back, service.tags.freeze.as_deref())
            }
            (Raise::Resend, Some(w)) if incident.rolled_back => match way_back.revision() {
                Some(to) if watch::runs(service, w) => Rollback::Now { to: to.to_owned() },
                // Already under way: reported as done below.
                _ => Rollback::Off,
            },
            (Raise::Resend, Some(_)) => {
                match watch::rollback(auto, c.dry_run, &way_back, service.tags.freeze.as_deref()) {
                    Rollback::Now { .. } => Rollback::Cannot(
                        "the first attempt at this alarm did not start one, and a retry does not"
                            .into(),
                    ),
                    other => other,
                }
            }
        };
        // State first: the incident, and for a rollback the freeze, in one call.
        let mut froze = false;
        let mut state_error = None;
        if matches!(how, Raise::Open | Raise::Join) {
            let rolling_to = match &plan {
                Rollback::Now { to } => Some(to.clone()),
                _ => None,
            };
            if matches!(how, Raise::Open) {
                incident.rolled_back = rolling_to.is_some();
            }
            let mut new_tags = vec![(
                tags::ALARM_INCIDENT.to_owned(),
                incident.to_marker().render(),
            )];
            let freeze = match (&rolling_to, &watch) {
                (Some(to), Some(w)) if service.tags.freeze.is_none() => {
                    Some(watch::freeze_value(w, &a.name, a.at, to))
                }
                _ => None,
            };
            if let Some(f) = &freeze {
                new_tags.push((tags::DEPLOY_FREEZE.to_owned(), f.clone()));
            }
            match self.write(service, new_tags).await {
                Ok(()) => froze = freeze.is_some() && !c.dry_run,
                Err(e) => {
                    error!(error = %e, error_type = e.kind(), "could not record the alarm incident; paging anyway, without an automatic rollback");
                    state_error = Some(e);
                }
            }
        } else {
            o.resent = true;
        }
        // Then the rollback, only once the incident that remembers it is recorded.
        let report = match (&plan, &state_error) {
            (Rollback::Now { to }, None) => {
                let arn = runbook::task_definition_arn(c, to);
                match self.ecs.force_deploy(&c.cluster, &c.service, &arn).await {
                    Ok(deployment) => {
                        info!(%to, ?deployment, "rolled back");
                        RollbackReport::Done {
                            to: to.clone(),
                            deployment,
                        }
                    }
                    Err(e) => {
                        error!(error = %e, error_type = e.kind(), "the automatic rollback failed; paging with the command to do it by hand");
                        RollbackReport::Failed {
                            to: to.clone(),
                            error: e.to_string(),
                        }
                    }
                }
            }
            (Rollback::Now { to }, Some(_)) => RollbackReport::Cannot(format!(
                "the incident could not be recorded, so a rollback to {to} could happen twice; roll back by hand"
            )),
            (Rollback::DryRun { to }, _) => RollbackReport::DryRun { to: to.clone() },
            (Rollback::Cannot(why), _) => RollbackReport::Cannot(why.clone()),
            // The rollback the incident decided did not take (UpdateService failed):
            // ECS still runs the deployment.
            (Rollback::Off, _)
                if incident.rolled_back && watch.as_ref().is_some_and(|w| watch::runs(service, w)) =>
            {
                RollbackReport::Cannot(
                    "the rollback decided when the incident opened did not happen (UpdateService failed); roll back by hand".into(),
                )
            }
            (Rollback::Off, _) if incident.rolled_back && joined => {
                RollbackReport::Earlier {
                    to: way_back
                        .revision()
                        .unwrap_or("the previous revision")
                        .to_owned(),
                }
            }
            (Rollback::Off, _) if incident.rolled_back => RollbackReport::Done {
                to: way_back
                    .revision()
                    .unwrap_or("the previous revision")
                    .to_owned(),
                deployment: service.primary().map(|d| d.id.clone()),
            },
            (Rollback::Off, _) if auto && incident.deployment.is_some() => {
                RollbackReport::NotThisEvent
            }
            (Rollback::Off, _) => RollbackReport::Off,
        };
        let n = notes::alarm_page(
            &self.cfg,
            &AlarmPage {
                alarm: a,
                incident: &incident,
                service,
                watch: watch.as_ref(),
                not_a_regression: not_a_regression.clone(),
                revision: revision.as_ref(),
                way_back: &way_back,
                rollback: &report,
                joined,
                froze,
                state_error: state_error.as_ref(),
            },
        );
        self.send(&n, &mut o).await?;
        o.froze = froze;
        o.deployment_id = incident.deployment.clone();
        o.state_recorded = state_error.is_none();
        o.rolled_back_to = report.done_to().map(str::to_owned);
        o.decision = match &report {
            RollbackReport::Done { .. } => Decision::RolledBack,
            _ if o.paged() => Decision::Paged,
            _ => Decision::Notified,
        };
        o.reason = match (&incident.deployment, &report) {
            (Some(d), RollbackReport::Done { to, .. }) => format!(
                "{} in ALARM within {} minutes after deployment {d} completed: regression; deploys frozen and the service rolled back to {to}",
                a.name, self.cfg.watch.minutes
            ),
            (Some(d), r) => format!(
                "{} in ALARM within {} minutes after deployment {d} completed: regression{}; automatic rollback: {}",
                a.name,
                self.cfg.watch.minutes,
                if joined { " (joins the open incident)" } else { "" },
                match r {
                    RollbackReport::Off => "off".to_owned(),
                    RollbackReport::NotThisEvent => "not for a joining alarm".to_owned(),
                    RollbackReport::DryRun { to } => format!("dry run, would have gone to {to}"),
                    RollbackReport::Cannot(why) => format!("not done, {why}"),
                    RollbackReport::Failed { error, .. } => format!("FAILED ({error})"),
                    RollbackReport::Done { .. } => "done".to_owned(),
                    RollbackReport::Earlier { to } => format!("already done by this incident, to {to}"),
                }
            ),
            (None, _) => format!(
                "{} in ALARM: service alarm{}{}",
                a.name,
                not_a_regression
                    .as_deref()
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default(),
                if joined { ", joins the open incident" } else { "" }
            ),
        };
        if let Some(e) = state_error {
            o.reason.push_str(&format!(
                "; the incident could NOT be recorded ({e}): a duplicate may page again"
            ));
        }
        Ok(o)
    }

    /// The last alarm of the incident is OK: resolve the page (prod); elsewhere nothing
    /// paged, so nothing is sent.
    async fn resolve(
        &self,
        a: &AlarmEvent,
        incident: &AlarmIncident,
        service: &ServiceState,
        mut o: Outcome,
        resent: bool,
    ) -> Result<Outcome, Error> {
        o.resent = resent;
        o.deployment_id = incident.deployment.clone();
        if !self.pages() {
            o.reason = format!(
                "{} is OK again; outside prod alarms notify the team and page nobody, so there is nothing to resolve",
                a.name
            );
            return Ok(o);
        }
        let n = notes::alarm_resolved(&self.cfg, a, incident, service);
        self.send(&n, &mut o).await?;
        o.decision = Decision::Resolved;
        o.reason = format!(
            "{} is OK again and nothing else of the incident is in ALARM: the {} page was resolved",
            a.name,
            match &incident.deployment {
                Some(d) => format!("regression (deployment {d})"),
                None => "service alarm".to_owned(),
            }
        );
        Ok(o)
    }

    /// `<prefix>memory-high`: a warning to the team, never a page.
    async fn memory_high(&self, a: &AlarmEvent) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let mut o = self.alarm_outcome(a, None);
        if a.state != AlarmState::Alarm {
            o.reason = format!(
                "{} is {}: memory warnings are sent when it goes to ALARM only; nothing sent",
                a.name,
                a.state.as_str()
            );
            return Ok(o);
        }
        let service = self.ecs.describe_service(&c.cluster, &c.service).await?;
        let revision = match self
            .ecs
            .describe_task_definition(&service.task_definition)
            .await
        {
            Ok(r) => Some(r),
            Err(e) => {
                warn!(error = %e, "could not read the running revision; warning without its memory");
                None
            }
        };
        let watched = read_tag(service.tags.watch.as_ref(), tags::DEPLOY_WATCH);
        let watch_note = match watch::attribute(a.at, watched.as_ref(), &service, self.cfg.watch.minutes) {
            Attribution::Regression(w) => Some(format!(
                "{} completed at {}, within the watch (memory never pages; roll back by hand if it is the deployment's)",
                w.deployment,
                w.completed.format("%Y-%m-%dT%H:%M:%SZ")
            )),
            _ => None,
        };
        let n = notes::memory_high(&self.cfg, a, &service, revision.as_ref(), watch_note);
        self.send(&n, &mut o).await?;
        o.decision = Decision::Notified;
        o.reason = format!(
            "{} in ALARM: tasks of {} use more memory than the alarm allows ({} MiB each); the team was warned",
            a.name,
            task_definition_short(&service.task_definition),
            revision
                .as_ref()
                .and_then(|r| r.memory.as_deref())
                .unwrap_or("unknown")
        );
        Ok(o)
    }

    async fn write_incident(
        &self,
        service: &ServiceState,
        incident: &AlarmIncident,
    ) -> Result<(), Error> {
        self.write(
            service,
            vec![(
                tags::ALARM_INCIDENT.to_owned(),
                incident.to_marker().render(),
            )],
        )
        .await
    }

    fn alarm_outcome(&self, a: &AlarmEvent, incident: Option<&AlarmIncident>) -> Outcome {
        self.outcome(
            &a.envelope.id,
            &format!("{} {}", a.name, a.state.as_str()),
            incident.and_then(|i| i.deployment.clone()),
        )
    }
}

/// How an ALARM raises the page.
enum Raise {
    /// It opens the incident.
    Open,
    /// It joins the open incident.
    Join,
    /// A Lambda retry of the request that recorded it.
    Resend,
}
