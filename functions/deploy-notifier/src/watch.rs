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
//!    deployment, or a service alarm), join the open one, escalate the open one (a
//!    service alarm, or an older deployment's regression) to the regression of the
//!    deployment whose watch window this ALARM falls in, deliver what an earlier
//!    attempt recorded and never confirmed, duplicate, late, resolve, or nothing.
//! 5. **Page**, in the two phases of every incident marker: read the revision
//!    (DescribeTaskDefinition); publish what the incident this one replaces left
//!    pending (a new incident, or an escalation); *record* the incident with this page
//!    `pending` (an escalation's handover with it; for an automatic rollback,
//!    `rollback` pending and the freeze) in one TagResource; roll back (UpdateService
//!    with a new deployment) when `AUTO_ROLLBACK_ON_REGRESSION` says so; publish every
//!    page pending, in order, then the handover (the earlier page's resolve, under its
//!    own key); *confirm* (TagResource). A Publish failing half-way confirms what went
//!    out before the invocation fails. A rollback found pending by a later delivery is
//!    finished the same way, once. If the record fails the page still goes out and
//!    nothing rolls back; the freeze is then written with the confirmation, and if it
//!    still cannot be, the invocation fails so that Lambda's retry writes it.
//! 6. **Resolve**: record the resolve pending, publish any page of the incident still
//!    pending, then the resolve, then confirm.

use chrono::{DateTime, SecondsFormat};
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
    self, AlarmDecision, AlarmIncident, AlarmNote, Attribution, EarlierPage, Escalation,
    PendingRollback, Rollback, Watch, WatchStart, WayBack,
};
use menotime_shared::notify::{Notification, Publisher};
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
            self.pages(),
        );
        info!(?decision, alarm = %a.name, "alarm decision");
        let mut o = self.alarm_outcome(&a, incident.as_ref());
        let mut step = Step {
            record: None,
            found: None,
            undelivered: None,
            opening: None,
            why: String::new(),
        };
        match decision {
            AlarmDecision::Duplicate(why) => {
                o.decision = Decision::Duplicate;
                o.reason = format!("{why}; nothing sent");
            }
            AlarmDecision::Late(why) => {
                o.decision = Decision::Late;
                o.reason = format!("late event, nothing sent: {why}");
            }
            AlarmDecision::Quiet(why) => {
                o.reason = format!("{why}; nothing sent");
            }
            AlarmDecision::Deliver { incident } => {
                o.resent = true;
                step.found = Some(incident);
            }
            AlarmDecision::Record { incident } => {
                step.why = format!(
                    "{} is OK and no ALARM of it was seen: recorded, so a late delivery of that ALARM pages nobody",
                    a.name
                );
                step.record = Some(incident.clone());
                step.found = Some(incident);
            }
            AlarmDecision::StillFiring { incident } => {
                step.why = format!(
                    "{} is OK; {} still in ALARM, so the page stays open",
                    a.name,
                    incident.firing().join(", ")
                );
                step.record = Some(incident.clone());
                step.found = Some(incident);
            }
            AlarmDecision::Resolve { incident } | AlarmDecision::Join { incident } => {
                step.record = Some(incident.clone());
                step.found = Some(incident);
            }
            AlarmDecision::Open {
                incident,
                attribution,
                undelivered,
            } => {
                step.record = Some(incident.clone());
                step.found = Some(incident);
                step.undelivered = undelivered.map(|b| *b);
                step.opening = Some(attribution);
            }
            // The open incident becomes this deployment's regression: opened by this
            // ALARM as far as the page, the way back and the rollback go.
            AlarmDecision::Escalate {
                incident,
                watch,
                undelivered,
            } => {
                step.record = Some(incident.clone());
                step.found = Some(incident);
                step.undelivered = undelivered.map(|b| *b);
                step.opening = Some(Attribution::Regression(watch));
            }
        }
        if step.found.is_none() {
            // Nothing new: anything an earlier attempt left pending still goes out.
            match incident.filter(|i| !i.pending.is_empty()) {
                None => return Ok(o),
                Some(i) => {
                    o.resent = true;
                    step.why = o
                        .reason
                        .replace("; nothing sent", "")
                        .replace(", nothing sent", "");
                    step.found = Some(i);
                }
            }
        }
        self.deliver_alarm_incident(&a, &service, watched, step, o)
            .await
    }

    /// Phases 1 to 3 for the alarm incident: what the last incident left pending goes
    /// out first; then the incident is recorded (its new notification pending, with the
    /// freeze of an automatic rollback, in one TagResource), the rollback is done, every
    /// notification pending is published in order, and all of it is confirmed.
    async fn deliver_alarm_incident(
        &self,
        a: &AlarmEvent,
        service: &ServiceState,
        watched: Option<Watch>,
        step: Step,
        mut o: Outcome,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let Step {
            record,
            found,
            undelivered,
            opening,
            why,
        } = step;
        let Some(mut found) = found else {
            return Ok(o);
        };
        o.deployment_id = found.deployment.clone();
        // The watch the incident is about (a regression), and why a new incident is
        // not one (a service alarm).
        let watch = match (&opening, &found.deployment) {
            (Some(Attribution::Regression(w)), _) => Some(w.clone()),
            (_, Some(d)) => watched.filter(|w| &w.deployment == d),
            _ => None,
        };
        let not_a_regression = match &opening {
            Some(Attribution::Regression(_)) | None => None,
            Some(other) => Some(other.why_not(self.cfg.watch.minutes)),
        };
        let has_pages = |i: &AlarmIncident| {
            i.pending_in_order()
                .iter()
                .any(|n| matches!(n, AlarmNote::Page { .. }))
        };
        // The revision the pages are about, read only when there is a page to compose.
        let revision = if has_pages(&found) || undelivered.as_ref().is_some_and(has_pages) {
            let td = watch
                .as_ref()
                .map(|w| w.revision.clone())
                .unwrap_or_else(|| service.task_definition.clone());
            match self.ecs.describe_task_definition(&td).await {
                Ok(r) => Some(r),
                Err(e) => {
                    warn!(error = %e, "could not read the revision; paging without its image");
                    None
                }
            }
        } else {
            None
        };
        let way_back = match &watch {
            Some(w) => WayBack::of(w, revision.as_ref().and_then(RevisionSummary::replaces)),
            None => WayBack::Unknown,
        };
        let auto = self.cfg.watch.auto_rollback;
        // A new regression decides the automatic rollback: recorded pending with the
        // incident, and deploys frozen in the same call.
        let plan = match (&opening, &watch) {
            (Some(_), Some(_)) if found.deployment.is_some() => {
                watch::rollback(auto, c.dry_run, &way_back, service.tags.freeze.as_deref())
            }
            _ => Rollback::Off,
        };
        let mut freeze = None;
        let mut record = record;
        if let (Rollback::Now { to }, Some(w), Some(r)) = (&plan, &watch, record.as_mut()) {
            r.pending.insert(watch::ROLLBACK.to_owned());
            r.rolled_back = true;
            found = r.clone();
            freeze = Some(watch::freeze_value(w, &a.name, a.at, to));
        }

        // What the incident this one replaces left pending goes out first, under its
        // own key; not confirmed (this record replaces its marker), unless a Publish
        // fails half-way: then what went out is confirmed in it, so it is not sent again.
        if let Some(old) = &undelivered {
            let notes = self.alarm_notes(a, old, service, watch.as_ref(), &way_back, &revision);
            self.publish_in_order(
                service,
                tags::ALARM_INCIDENT,
                &|published: &[&str]| old.confirmed(published.iter().copied()).to_marker(),
                &notes,
                None,
                &mut o,
            )
            .await?;
        }
        // 1. Record.
        let state_error = match &record {
            Some(r) => {
                self.record(
                    service,
                    tags::ALARM_INCIDENT,
                    &r.to_marker(),
                    freeze.as_deref(),
                )
                .await
            }
            None => None,
        };
        let froze = state_error.is_none() && freeze.is_some() && !c.dry_run;
        if state_error.is_some() && found.pending.remove(watch::ROLLBACK) {
            // Unrecorded, a rollback could happen twice: none now. The freeze is
            // written with the confirmation below, or the invocation fails for it.
            found.rolled_back = false;
        }
        let missing_freeze = freeze.as_deref().filter(|_| state_error.is_some());

        // 2. The rollback, then the pages and the resolve, in order; 3. confirm.
        let ctx = PageContext {
            watch: watch.as_ref(),
            way_back: &way_back,
            revision: revision.as_ref(),
            opening: opening.as_ref().map(|_| Opening {
                alarm: watch::alarm_key(a.kind.suffix()),
                since: a.at.timestamp(),
                plan: &plan,
                not_a_regression: not_a_regression.clone(),
                state_error: state_error.as_ref(),
            }),
            froze,
        };
        let (out, report) = self.alarm_pages(a, &found, service, &ctx).await;
        if out.is_empty() {
            // Recorded, nothing to publish (an OK while others fire, an OK recorded).
            if let Some(e) = state_error {
                return Err(e);
            }
            o.reason = format!("{why}; nothing sent");
            return Ok(o);
        }
        self.publish_and_confirm_with(
            service,
            tags::ALARM_INCIDENT,
            &|published: &[&str]| found.confirmed(published.iter().copied()).to_marker(),
            out,
            missing_freeze,
            &mut o,
        )
        .await?;
        if state_error.is_some() {
            o.state_recorded = false;
        }
        o.froze = o.froze || froze;
        o.rolled_back_to = report.as_ref().and_then(|r| r.done_to()).map(str::to_owned);
        let ok = a.state != AlarmState::Alarm;
        o.decision = match (&report, o.decision) {
            (Some(RollbackReport::Done { .. }), _) => Decision::RolledBack,
            _ if ok && o.resolved() => Decision::Resolved,
            _ if o.paged() => Decision::Paged,
            _ if o.resolved() => Decision::Resolved,
            (_, d @ (Decision::Duplicate | Decision::Late)) => d,
            _ if !o.notifications.is_empty() => Decision::Notified,
            (_, d) => d,
        };
        o.reason = self.alarm_reason(a, &found, report.as_ref(), &not_a_regression, &why, &o);
        if let Some(e) = state_error {
            o.reason.push_str(&format!(
                "; the incident could NOT be recorded before publishing ({})",
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

    /// The notifications `incident` has pending, composed in order; for a page that
    /// carries a pending rollback, the rollback is done first. Returns them with the
    /// marker entries each one confirms, and what became of the rollback of the page
    /// about this event (if it is one).
    async fn alarm_pages(
        &self,
        a: &AlarmEvent,
        incident: &AlarmIncident,
        service: &ServiceState,
        ctx: &PageContext<'_>,
    ) -> (Vec<(Vec<String>, Notification)>, Option<RollbackReport>) {
        let c = &self.cfg.common;
        let frozen = ctx.froze || service.tags.freeze.is_some();
        let mut rolled_back_now: Option<String> = None;
        let mut this_report = None;
        let mut out = Vec::new();
        for note in incident.pending_in_order() {
            let entries = AlarmIncident::entries_of(&note);
            let (alarm, since, rollback) = match &note {
                AlarmNote::Resolve => {
                    let ok = self.alarm_of(a, incident.last_ok().as_deref(), None, false);
                    out.push((
                        entries,
                        notes::alarm_resolved(&self.cfg, &ok, incident, service),
                    ));
                    continue;
                }
                AlarmNote::Handover(e) => {
                    out.push((entries, self.handover(a, incident, e, service, ctx.watch)));
                    continue;
                }
                AlarmNote::Page {
                    alarm,
                    since,
                    rollback,
                } => (alarm, *since, *rollback),
            };
            let ev = self.alarm_of(a, Some(alarm), Some(since), true);
            let opening = ctx
                .opening
                .as_ref()
                .filter(|op| op.alarm == *alarm && op.since == since);
            let joined = opening.is_none() && incident.joined(alarm, since);
            // The ALARM that escalated the incident, while the handover is pending.
            let took_over = incident
                .escalated
                .as_ref()
                .filter(|e| e.alarm == *alarm && e.since == since)
                .map(|e| &e.from);
            let to = || {
                ctx.way_back
                    .revision()
                    .unwrap_or("the previous revision")
                    .to_owned()
            };
            let report = if rollback {
                match watch::finish_rollback(
                    ctx.watch,
                    ctx.way_back,
                    service,
                    frozen,
                    service.tags.freeze.as_deref(),
                    c.dry_run,
                ) {
                    PendingRollback::Now { to } => {
                        let arn = runbook::task_definition_arn(c, &to);
                        match self.ecs.force_deploy(&c.cluster, &c.service, &arn).await {
                            Ok(deployment) => {
                                info!(%to, ?deployment, "rolled back");
                                rolled_back_now = Some(to.clone());
                                RollbackReport::Done { to, deployment }
                            }
                            Err(e) => {
                                error!(error = %e, error_type = e.kind(), "the automatic rollback failed; paging with the command to do it by hand");
                                RollbackReport::Failed {
                                    to,
                                    error: e.to_string(),
                                }
                            }
                        }
                    }
                    PendingRollback::Done { to } => RollbackReport::Done {
                        to,
                        deployment: service.primary().map(|d| d.id.clone()),
                    },
                    PendingRollback::DryRun { to } => RollbackReport::DryRun { to },
                    PendingRollback::Cannot(why) => RollbackReport::Cannot(why),
                }
            } else if let Some(op) = opening {
                match op.plan {
                    Rollback::Off => RollbackReport::Off,
                    Rollback::DryRun { to } => RollbackReport::DryRun { to: to.clone() },
                    Rollback::Cannot(why) => RollbackReport::Cannot(why.clone()),
                    Rollback::Now { to } => RollbackReport::Cannot(format!(
                        "the incident could not be recorded, so a rollback to {to} could happen twice; roll back by hand"
                    )),
                }
            } else if let Some(to) = &rolled_back_now {
                RollbackReport::Earlier { to: to.clone() }
            } else if incident.rolled_back && ctx.watch.is_some_and(|w| watch::runs(service, w)) {
                // The rollback the incident decided did not take (UpdateService failed):
                // ECS still runs the deployment.
                RollbackReport::Cannot(
                    "the rollback decided when the incident opened did not happen (UpdateService failed); roll back by hand".into(),
                )
            } else if incident.rolled_back {
                RollbackReport::Earlier { to: to() }
            } else if incident.deployment.is_none() || !self.cfg.watch.auto_rollback {
                RollbackReport::Off
            } else if joined {
                RollbackReport::NotThisEvent
            } else {
                // The first page of a regression, delivered late without a rollback:
                // the attempt that recorded it decided none, and a later one does not.
                match watch::rollback(
                    true,
                    c.dry_run,
                    ctx.way_back,
                    service.tags.freeze.as_deref(),
                ) {
                    Rollback::Now { .. } | Rollback::Off => RollbackReport::Cannot(
                        "the attempt that recorded this page did not start one, and a later delivery does not".into(),
                    ),
                    Rollback::DryRun { to } => RollbackReport::DryRun { to },
                    Rollback::Cannot(why) => RollbackReport::Cannot(why),
                }
            };
            let n = notes::alarm_page(
                &self.cfg,
                &AlarmPage {
                    alarm: &ev,
                    incident,
                    service,
                    watch: ctx.watch,
                    not_a_regression: opening.and_then(|op| op.not_a_regression.clone()),
                    revision: ctx.revision,
                    way_back: ctx.way_back,
                    rollback: &report,
                    joined,
                    took_over,
                    froze: ctx.froze,
                    state_error: opening.and_then(|op| op.state_error),
                },
            );
            // The report of this event's own page, else of a rollback done by another.
            let this = ev.at == a.at && ev.kind == a.kind && a.state == AlarmState::Alarm;
            if this || (this_report.is_none() && report.done_to().is_some()) {
                this_report = Some(report.clone());
            }
            out.push((entries, n));
        }
        (out, this_report)
    }

    /// The alarm event a notification is about: this event when it is the one, else
    /// the change the incident recorded (an earlier attempt's, delivered now).
    fn alarm_of(
        &self,
        a: &AlarmEvent,
        alarm: Option<&str>,
        since: Option<i64>,
        firing: bool,
    ) -> AlarmEvent {
        let this = alarm.is_none_or(|k| k == watch::alarm_key(a.kind.suffix()))
            && since.is_none_or(|s| s == a.at.timestamp())
            && (a.state == AlarmState::Alarm) == firing;
        if this {
            return a.clone();
        }
        let suffix = alarm.unwrap_or(a.kind.suffix());
        let at = since
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .unwrap_or(a.at);
        AlarmEvent {
            envelope: a.envelope.clone(),
            name: format!("{}{suffix}", self.cfg.watch.alarm_prefix),
            kind: AlarmKind::from_suffix(suffix),
            state: if firing {
                AlarmState::Alarm
            } else {
                AlarmState::Ok
            },
            previous: None,
            reason: format!(
                "recorded at {} by an attempt that could not publish it; sent now",
                at.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            at,
        }
    }

    /// The resolve of the page an escalation took over, about the ALARM that escalated
    /// the incident.
    fn handover(
        &self,
        a: &AlarmEvent,
        incident: &AlarmIncident,
        e: &Escalation,
        service: &ServiceState,
        watch: Option<&Watch>,
    ) -> Notification {
        let escalating = self.alarm_of(a, Some(&e.alarm), Some(e.since), true);
        notes::alarm_handover(&self.cfg, &escalating, incident, &e.from, service, watch)
    }

    /// The notes of an incident this one replaces, still pending there: published
    /// before the new incident is recorded, never confirmed (the new marker replaces it).
    /// `watch`, `way_back` and `revision` are the new incident's: they serve the old
    /// one's pages only when both are about the same deployment (or the old one is a
    /// service alarm, for the revision that runs).
    fn alarm_notes(
        &self,
        a: &AlarmEvent,
        old: &AlarmIncident,
        service: &ServiceState,
        watch: Option<&Watch>,
        way_back: &WayBack,
        revision: &Option<RevisionSummary>,
    ) -> Vec<(Vec<String>, Notification)> {
        let same = watch.is_some_and(|w| old.deployment.as_deref() == Some(w.deployment.as_str()));
        let watch = watch.filter(|_| same);
        let way_back = if same { way_back } else { &WayBack::Unknown };
        let revision = revision
            .as_ref()
            .filter(|_| same || old.deployment.is_none());
        old.pending_in_order()
            .iter()
            .map(|note| {
                let n = match note {
                    AlarmNote::Resolve => {
                        let ok = self.alarm_of(a, old.last_ok().as_deref(), None, false);
                        notes::alarm_resolved(&self.cfg, &ok, old, service)
                    }
                    AlarmNote::Handover(e) => self.handover(a, old, e, service, watch),
                    AlarmNote::Page { alarm, since, .. } => {
                        let ev = self.alarm_of(a, Some(alarm), Some(*since), true);
                        let report = if old.rolled_back {
                            RollbackReport::Earlier {
                                to: way_back
                                    .revision()
                                    .unwrap_or("the previous revision")
                                    .to_owned(),
                            }
                        } else {
                            RollbackReport::Off
                        };
                        let joined = old.joined(alarm, *since);
                        notes::alarm_page(
                            &self.cfg,
                            &AlarmPage {
                                alarm: &ev,
                                incident: old,
                                service,
                                watch,
                                not_a_regression: None,
                                revision,
                                way_back,
                                rollback: &report,
                                joined,
                                took_over: old
                                    .escalated
                                    .as_ref()
                                    .filter(|e| e.alarm == *alarm && e.since == *since)
                                    .map(|e| &e.from),
                                froze: false,
                                state_error: None,
                            },
                        )
                    }
                };
                (AlarmIncident::entries_of(note), n)
            })
            .collect()
    }

    /// The invocation's reason: what this event did, and what else went out.
    fn alarm_reason(
        &self,
        a: &AlarmEvent,
        incident: &AlarmIncident,
        report: Option<&RollbackReport>,
        not_a_regression: &Option<String>,
        why: &str,
        o: &Outcome,
    ) -> String {
        let minutes = self.cfg.watch.minutes;
        let mut reason = if !why.is_empty() {
            why.to_owned()
        } else if a.state == AlarmState::Ok {
            match (o.resolved(), &incident.deployment) {
                (true, Some(d)) => format!(
                    "{} is OK again and nothing else of the incident is in ALARM: the regression (deployment {d}) page was resolved",
                    a.name
                ),
                (true, None) => format!(
                    "{} is OK again and nothing else of the incident is in ALARM: the service alarm page was resolved",
                    a.name
                ),
                (false, _) => format!(
                    "{} is OK again; outside prod alarms notify the team and page nobody, so there is nothing to resolve",
                    a.name
                ),
            }
        } else {
            let joined = incident.joined(&watch::alarm_key(a.kind.suffix()), a.at.timestamp());
            // This ALARM escalated the open incident: say which page it took over.
            let took_over = incident
                .escalated
                .as_ref()
                .filter(|e| {
                    e.alarm == watch::alarm_key(a.kind.suffix()) && e.since == a.at.timestamp()
                })
                .map(|e| match &e.from {
                    EarlierPage::ServiceAlarm => {
                        " (escalated from the open service alarm, whose page is resolved into this one)".to_owned()
                    }
                    EarlierPage::Regression(old) => format!(
                        " (escalated from the open regression of deployment {old}, whose page is resolved into this one)"
                    ),
                })
                .unwrap_or_default();
            match (&incident.deployment, report) {
                (Some(d), Some(RollbackReport::Done { to, .. })) => format!(
                    "{} in ALARM within {minutes} minutes after deployment {d} completed: regression{took_over}; deploys frozen and the service rolled back to {to}",
                    a.name
                ),
                (Some(d), r) => format!(
                    "{} in ALARM within {minutes} minutes after deployment {d} completed: regression{}; automatic rollback: {}",
                    a.name,
                    if joined {
                        " (joins the open incident)".to_owned()
                    } else {
                        took_over
                    },
                    match r {
                        None | Some(RollbackReport::Off) => "off".to_owned(),
                        Some(RollbackReport::NotThisEvent) => "not for a joining alarm".to_owned(),
                        Some(RollbackReport::DryRun { to }) => {
                            format!("dry run, would have gone to {to}")
                        }
                        Some(RollbackReport::Cannot(why)) => format!("not done, {why}"),
                        Some(RollbackReport::Failed { error, .. }) => format!("FAILED ({error})"),
                        Some(RollbackReport::Done { .. }) => "done".to_owned(),
                        Some(RollbackReport::Earlier { to }) => {
                            format!("already done by this incident, to {to}")
                        }
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
            }
        };
        if o.resent {
            reason.push_str(&format!(
                "; delivered what an earlier attempt recorded and could not publish ({})",
                o.notifications.join(", ")
            ));
        }
        reason
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

    fn alarm_outcome(&self, a: &AlarmEvent, incident: Option<&AlarmIncident>) -> Outcome {
        self.outcome(
            &a.envelope.id,
            &format!("{} {}", a.name, a.state.as_str()),
            incident.and_then(|i| i.deployment.clone()),
        )
    }
}

/// What an alarm event leads to, before the incident's notifications go out.
pub(crate) struct Step {
    /// The incident to record (phase 1), if this event changes it.
    record: Option<AlarmIncident>,
    /// The incident whose pending notifications are published and confirmed.
    found: Option<AlarmIncident>,
    /// The last incident's notifications still pending, when a new one replaces it.
    undelivered: Option<AlarmIncident>,
    /// Whose alarm a new incident is (only when this event opens one).
    opening: Option<Attribution>,
    /// Why, when this event itself sends nothing new.
    why: String,
}

/// This event's page, when it opens the incident.
struct Opening<'a> {
    alarm: String,
    since: i64,
    plan: &'a Rollback,
    not_a_regression: Option<String>,
    state_error: Option<&'a Error>,
}

/// What every page of the incident needs.
struct PageContext<'a> {
    watch: Option<&'a Watch>,
    way_back: &'a WayBack,
    revision: Option<&'a RevisionSummary>,
    opening: Option<Opening<'a>>,
    /// This invocation froze deploys.
    froze: bool,
}
