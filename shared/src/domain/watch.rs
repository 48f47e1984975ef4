//! The manual's post-deployment watch, as pure decisions: "CloudWatch alarms checked
//! for 30 minutes; if anomalies are detected, roll back".
//!
//! **The watch.** When a deployment completes, deploy-notifier records on the service
//! (tag `menotime:deploy-watch`, docs/reference.md §3) which deployment completed,
//! when (the event's own `updatedAt`), the revision it runs and the revision before
//! it, the way back:
//!
//! `deployment=ecs-svc/42 revision=menotime-backend-prod:49 previous=menotime-backend-prod:48 completed=2026-11-26T09:00:00.000Z`
//!
//! The revision before is only knowable then: ECS drops the replaced deployment from
//! DescribeServices once the new one completes, and a deployment's `updatedAt` moves
//! with every scaling change, so neither can date a completion afterwards. A
//! deployment that goes back to an older revision (a circuit-breaker rollback, a
//! rollback by hand or by deploy-notifier) is recorded with `from=` instead of
//! `previous=`: there is no way back from a way back.
//!
//! **The attribution.** An alarm that goes to ALARM within `WATCH_MINUTES` after the
//! watched deployment completed, while ECS still runs that deployment, is that
//! deployment's regression; any other ALARM is a service alarm ([`attribute`]).
//!
//! **The alarm incident.** One tag, `menotime:alarm-incident`, holds the open (or last)
//! incident in the incident marker's format (`domain::incident::Marker`): the
//! deployment of a regression (none for a service alarm), and each alarm of the
//! incident with its last state change, `5xx@A1795683780` (in ALARM since that Unix
//! time) or `5xx@O1795684380` (OK since). The incident is open while one of its alarms
//! is in ALARM; later ALARMs join it; the OK of the last one resolves it. The per-alarm
//! times recognise duplicates and out-of-order deliveries: an ALARM no newer than the
//! alarm's last change, or an OK older than its ALARM, changes nothing.
//!
//! **Escalation.** An ALARM attributed to a deployment's watch window never joins an
//! incident of something else: while a service alarm, or an older deployment's
//! regression, is open, it *escalates* the open incident to this deployment's
//! regression ([`AlarmDecision::Escalate`]). The incident keeps its alarms (those still
//! in ALARM carry on, and its one resolve waits for all of them) and becomes this
//! deployment's: its dedup key, its page with the way back, its automatic rollback,
//! decided as for a regression that opens an incident. The earlier page is resolved
//! right after the regression's page (its alarms are on that page now), so one page is
//! open at a time and none stays open forever. That resolve, the handover, is recorded
//! pending with the regression's page and confirmed after it, like every notification:
//! the escalating ALARM's entry reads `5xx@E<time>` while its page and the handover are
//! pending, `5xx@H<time>` while only the handover is, and `previous=<deployment>` names
//! an earlier regression ([`Escalation`]).
//!
//! It keeps the two phases of every incident marker: an alarm's page is recorded
//! `pending` (its `<alarm>@A<time>` entry, with `rollback` when the incident decides
//! an automatic rollback, and the freeze in the same TagResource) *before* it is
//! published, and confirmed after (the entry moves to `sent`); a resolve likewise
//! (`resolve`), and the handover of an escalation. Any later delivery
//! about the incident that finds something pending (a Lambda retry, a redrive under a
//! new request id, the next alarm change) publishes it first, finishing a pending
//! rollback if ECS still runs the regressed deployment; a new incident, or an
//! escalation, publishes what the incident it replaces left pending before replacing
//! it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::alarm_event::{AlarmEvent, AlarmState};
use super::ecs_event::DeploymentEvent;
use super::incident::{Marker, RESOLVE};
use super::service::ServiceState;
use crate::arn::{task_definition_short, Arn};
use crate::tags;

/// The last completed deployment, watched for `WATCH_MINUTES` (tag
/// `menotime:deploy-watch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    pub deployment: String,
    /// The revision the deployment runs, `family:revision`.
    pub revision: String,
    /// The revision it replaced, the way back (`family:revision`).
    pub previous: Option<String>,
    /// Set when the deployment went back to an older revision: the one it left.
    pub rolled_back_from: Option<String>,
    /// When the deployment completed: the completion event's own time.
    pub completed: DateTime<Utc>,
}

impl Watch {
    pub fn render(&self) -> String {
        let mut parts = vec![
            format!("deployment={}", self.deployment),
            format!("revision={}", self.revision),
        ];
        if let Some(p) = &self.previous {
            parts.push(format!("previous={p}"));
        }
        if let Some(f) = &self.rolled_back_from {
            parts.push(format!("from={f}"));
        }
        parts.push(format!(
            "completed={}",
            self.completed.to_rfc3339_opts(SecondsFormat::Millis, true)
        ));
        tags::value(&parts.join(" "))
    }

    /// Reads the tag back; `Err` says what is wrong with a value someone edited.
    pub fn parse(s: &str) -> Result<Watch, String> {
        let (mut deployment, mut revision, mut previous, mut from, mut completed) =
            (None, None, None, None, None);
        for part in s.split_whitespace() {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not key=value"))?;
            match k {
                "deployment" => deployment = Some(v.to_owned()),
                "revision" => revision = Some(v.to_owned()),
                "previous" => previous = Some(v.to_owned()),
                "from" => from = Some(v.to_owned()),
                "completed" => {
                    completed = Some(
                        DateTime::parse_from_rfc3339(v)
                            .map_err(|e| format!("completed {v:?}: {e}"))?
                            .with_timezone(&Utc),
                    )
                }
                _ => return Err(format!("unknown key {k:?}")),
            }
        }
        Ok(Watch {
            deployment: deployment.ok_or("no deployment=")?,
            revision: revision.ok_or("no revision=")?,
            previous,
            rolled_back_from: from,
            completed: completed.ok_or("no completed=")?,
        })
    }

    /// The end of the watch window.
    pub fn until(&self, minutes: i64) -> DateTime<Utc> {
        self.completed + Duration::minutes(minutes)
    }
}

/// What a completed deployment does to the watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchStart {
    /// Write this watch.
    Start(Watch),
    /// Leave the watch as it is, and why.
    Keep(String),
}

/// `(family, revision)` of `family:revision` or a task-definition ARN.
fn family_revision(td: &str) -> Option<(String, u32)> {
    let short = task_definition_short(td);
    let (family, rev) = short.rsplit_once(':')?;
    Some((family.to_owned(), rev.parse().ok()?))
}

/// True when going from `from` to `to` goes back to an older revision of the family.
fn goes_back(from: &str, to: &str) -> bool {
    match (family_revision(from), family_revision(to)) {
        (Some((f1, r1)), Some((f2, r2))) => f1 == f2 && r2 < r1,
        _ => false,
    }
}

/// Decides what a SERVICE_DEPLOYMENT_COMPLETED records: the deployment, its revision,
/// the way back, and the completion time that opens its watch window.
pub fn on_completed(
    ev: &DeploymentEvent,
    service: &ServiceState,
    old: Option<&Watch>,
) -> WatchStart {
    if let Some(o) = old {
        if o.deployment == ev.deployment_id {
            return WatchStart::Keep(format!(
                "deployment {} is already watched (completed {})",
                ev.deployment_id, o.completed
            ));
        }
        if ev.at < o.completed {
            return WatchStart::Keep(format!(
                "this completion ({}) is older than that of the watched deployment {} ({})",
                ev.at, o.deployment, o.completed
            ));
        }
    }
    // The revision that completed: the deployment's, if ECS runs it as PRIMARY; if ECS
    // no longer lists it but shows no rollout either, what the service runs (nothing
    // has replaced it); never while another deployment rolls out.
    let revision = match (service.deployment(&ev.deployment_id), service.rollout()) {
        (Some(d), _) if d.status == "PRIMARY" => {
            service.deployment_task_definition(&ev.deployment_id)
        }
        (None, None) => Some(service.task_definition.as_str()).filter(|t| !t.is_empty()),
        _ => None,
    };
    let Some(revision) = revision.map(task_definition_short) else {
        return WatchStart::Keep(format!(
            "ECS does not run deployment {} as its PRIMARY deployment; a newer one replaces it",
            ev.deployment_id
        ));
    };
    // The way back: another revision ECS still lists, else the one the last watched
    // deployment ran (the same revision again keeps that one's way back).
    let other = service
        .deployments
        .iter()
        .filter(|d| d.id != ev.deployment_id)
        .filter_map(|d| service.deployment_task_definition(&d.id))
        .map(task_definition_short)
        .find(|td| *td != revision);
    let (before, carried_from) = match (other, old) {
        (Some(l), _) => (Some(l), None),
        (None, Some(o)) if o.revision != revision => (Some(o.revision.clone()), None),
        (None, Some(o)) => (o.previous.clone(), o.rolled_back_from.clone()),
        (None, None) => (None, None),
    };
    let (previous, rolled_back_from) = match before {
        Some(b) if goes_back(&b, &revision) => (None, Some(b)),
        Some(b) => (Some(b), carried_from),
        None => (None, carried_from),
    };
    WatchStart::Start(Watch {
        deployment: ev.deployment_id.clone(),
        revision,
        previous,
        rolled_back_from,
        completed: ev.at,
    })
}

/// Whose alarm an ALARM is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attribution {
    /// Within the watch window of the watched deployment, which ECS still runs.
    Regression(Watch),
    /// No deployment is watched (none completed since the stack exists, or its watch
    /// could not be read or written).
    NoWatch,
    /// Before the watched deployment completed.
    Before(Watch),
    /// After the watch window ended.
    After(Watch),
    /// ECS no longer runs the watched revision, or rolls out another deployment: `by`
    /// (the PRIMARY deployment, if listed) replaces it.
    Superseded { watch: Watch, by: Option<String> },
}

impl Attribution {
    /// Why the alarm is not a regression, in words (empty for a regression).
    pub fn why_not(&self, minutes: i64) -> String {
        match self {
            Attribution::Regression(_) => String::new(),
            Attribution::NoWatch => "no completed deployment is being watched".into(),
            Attribution::Before(w) => format!(
                "the alarm predates the completion of deployment {} ({})",
                w.deployment,
                w.completed.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            Attribution::After(w) => format!(
                "the {minutes}-minute watch of deployment {} ended at {}",
                w.deployment,
                w.until(minutes).to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            Attribution::Superseded { watch, by } => format!(
                "deployment {} has since been superseded{}",
                watch.deployment,
                by.as_deref()
                    .map(|b| format!(" by deployment {b}"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// Decides whose alarm an ALARM at `at` is: the watched deployment's regression, or a
/// service alarm.
pub fn attribute(
    at: DateTime<Utc>,
    watch: Option<&Watch>,
    service: &ServiceState,
    minutes: i64,
) -> Attribution {
    let Some(w) = watch else {
        return Attribution::NoWatch;
    };
    if !runs(service, w) {
        return Attribution::Superseded {
            watch: w.clone(),
            by: service.primary().map(|d| d.id.clone()),
        };
    }
    if at < w.completed {
        Attribution::Before(w.clone())
    } else if at > w.until(minutes) {
        Attribution::After(w.clone())
    } else {
        Attribution::Regression(w.clone())
    }
}

/// The way back from a regression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WayBack {
    /// Roll back to this revision (`family:revision`).
    To(String),
    /// The deployment itself went back from this revision: no way back is offered.
    WasARollback { from: String },
    /// Neither ECS, the watch, nor scan-gate's `menotime:replaces` names one.
    Unknown,
}

impl WayBack {
    /// `replaces` is what scan-gate recorded on the watched revision.
    pub fn of(watch: &Watch, replaces: Option<&str>) -> WayBack {
        if let Some(from) = &watch.rolled_back_from {
            return WayBack::WasARollback { from: from.clone() };
        }
        match watch.previous.as_deref().or(replaces) {
            // Never "back" to the same revision or to a newer one.
            Some(p) if p == watch.revision || goes_back(p, &watch.revision) => WayBack::Unknown,
            Some(p) => WayBack::To(p.to_owned()),
            None => WayBack::Unknown,
        }
    }

    pub fn revision(&self) -> Option<&str> {
        match self {
            WayBack::To(r) => Some(r),
            _ => None,
        }
    }
}

/// What `AUTO_ROLLBACK_ON_REGRESSION` does about a new regression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollback {
    /// The setting is off: page with the way back.
    Off,
    /// Freeze, then roll back to `to` with a new deployment.
    Now { to: String },
    /// A dry run changes nothing: page, saying it would have rolled back to `to`.
    DryRun { to: String },
    /// It cannot be done safely: page instead, saying why.
    Cannot(String),
}

/// Decides the automatic rollback of a regression that opens an incident. Never when
/// off, never in a dry run, never without a known previous revision, never from a
/// deployment that was itself a rollback, never while deploys are frozen (a human is
/// reviewing a failure: the manual halts changes until then).
pub fn rollback(auto: bool, dry_run: bool, way_back: &WayBack, freeze: Option<&str>) -> Rollback {
    if !auto {
        return Rollback::Off;
    }
    let to = match way_back {
        WayBack::To(to) => to.clone(),
        WayBack::WasARollback { from } => {
            return Rollback::Cannot(format!(
                "this deployment was itself a rollback (from {from}); there is nothing older to go back to safely"
            ))
        }
        WayBack::Unknown => {
            return Rollback::Cannot(
                "the previous revision cannot be determined (ECS, the watch and the revision's tags name none)".into(),
            )
        }
    };
    if let Some(why) = freeze {
        return Rollback::Cannot(format!(
            "deploys are frozen ({why}): changes wait for the review a human is doing"
        ));
    }
    if dry_run {
        return Rollback::DryRun { to };
    }
    Rollback::Now { to }
}

/// The freeze value an automatic rollback writes.
pub fn freeze_value(watch: &Watch, alarm: &str, at: DateTime<Utc>, to: &str) -> String {
    tags::value(&format!(
        "deployment {} regressed at {}: {alarm} in ALARM - automatic rollback to {to}",
        watch.deployment,
        at.to_rfc3339_opts(SecondsFormat::Secs, true)
    ))
}

/// What a delivery does about an automatic rollback the incident recorded pending: it
/// was decided, and deploys frozen, when the incident was recorded; the UpdateService
/// may or may not have happened before that attempt died.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingRollback {
    /// ECS still runs the regressed deployment, deploys are still frozen: roll back now.
    Now { to: String },
    /// ECS already runs `to`: the earlier attempt's UpdateService took.
    Done { to: String },
    /// A dry run changes nothing, not even to finish what an earlier run decided.
    DryRun { to: String },
    /// Not any more, and why (page instead).
    Cannot(String),
}

/// The revision a freeze written by [`freeze_value`] rolls back to.
pub fn rollback_target(freeze: &str) -> Option<&str> {
    let (_, to) = freeze.rsplit_once(" - automatic rollback to ")?;
    (!to.is_empty() && !to.contains(' ')).then_some(to)
}

/// Decides how a delivery finishes a pending rollback. `frozen` is whether deploys are
/// frozen now (the freeze the incident's record wrote included): an operator who lifted
/// it has reviewed the regression, and nothing rolls back behind their back. `freeze`
/// is the freeze's value: when the watch has moved on (the rollback's own deployment
/// completed and is watched now), it still names the rollback's target.
pub fn finish_rollback(
    watch: Option<&Watch>,
    way_back: &WayBack,
    service: &ServiceState,
    frozen: bool,
    freeze: Option<&str>,
    dry_run: bool,
) -> PendingRollback {
    let Some(to) = way_back.revision().or(freeze.and_then(rollback_target)) else {
        return PendingRollback::Cannot("the previous revision can no longer be determined".into());
    };
    let runs_now = task_definition_short(&service.task_definition);
    if runs_now == to {
        return PendingRollback::Done { to: to.to_owned() };
    }
    if dry_run {
        return PendingRollback::DryRun { to: to.to_owned() };
    }
    match watch {
        Some(w) if runs(service, w) => {}
        _ => {
            return PendingRollback::Cannot(format!(
                "ECS runs {runs_now} now, not the regressed deployment; nothing was rolled back"
            ))
        }
    }
    if !frozen {
        return PendingRollback::Cannot(
            "deploys were unfrozen after the rollback was decided (someone has reviewed the regression); nothing was rolled back".into(),
        );
    }
    PendingRollback::Now { to: to.to_owned() }
}

/// One alarm's last state change within an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlarmMark {
    pub firing: bool,
    /// Unix seconds of the change.
    pub since: i64,
}

impl AlarmMark {
    /// `<alarm>@A<unix time>` (in ALARM since) or `<alarm>@O<unix time>` (OK since).
    pub fn entry(&self, alarm: &str) -> String {
        format!(
            "{alarm}@{}{}",
            if self.firing { 'A' } else { 'O' },
            self.since
        )
    }

    fn parse(entry: &str) -> Result<(String, AlarmMark), String> {
        let (name, mark) = entry
            .rsplit_once('@')
            .ok_or_else(|| format!("{entry:?} is not <alarm>@<A|O><unix time>"))?;
        let (firing, secs) = match mark.split_at_checked(1) {
            Some(("A", s)) => (true, s),
            Some(("O", s)) => (false, s),
            _ => return Err(format!("{entry:?}: the state is A (ALARM) or O (OK)")),
        };
        let since = secs
            .parse::<i64>()
            .map_err(|_| format!("{entry:?}: {secs:?} is not a Unix time"))?;
        Ok((name.to_owned(), AlarmMark { firing, since }))
    }
}

/// The alarm incident kept in `menotime:alarm-incident`, in the two phases of every
/// incident marker: a notification is recorded `pending` before it is published and
/// confirmed (dropped from `pending`) after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmIncident {
    /// The deployment whose regression this is; `None` for a service alarm.
    pub deployment: Option<String>,
    /// Each alarm (the name after the prefix) and its last change.
    pub alarms: BTreeMap<String, AlarmMark>,
    /// Recorded and not yet confirmed as published: the page of an alarm that went to
    /// ALARM (`<alarm>@A<time>`), the automatic rollback (`rollback`), the resolve of
    /// the page an escalation took over ([`ESCALATED`], kept in the marker as
    /// [`Escalation`] says), the resolve (`resolve`).
    pub pending: BTreeSet<String>,
    /// The incident decided an automatic rollback (done, or pending).
    pub rolled_back: bool,
    /// An ALARM within a deployment's watch window escalated the open incident (a
    /// service alarm, or an older deployment's regression) to that deployment's
    /// regression; kept while the earlier page's resolve is pending.
    pub escalated: Option<Escalation>,
    pub open: bool,
    pub at: DateTime<Utc>,
    pub request: String,
}

/// The entry of the automatic rollback in the incident's marker.
pub const ROLLBACK: &str = "rollback";

/// The page an open incident had before an ALARM escalated it to a deployment's
/// regression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EarlierPage {
    /// A service alarm (dedup key `alarm`).
    ServiceAlarm,
    /// An older deployment's regression (dedup key `regression/<deployment>`).
    Regression(String),
}

impl EarlierPage {
    pub fn deployment(&self) -> Option<&str> {
        match self {
            EarlierPage::ServiceAlarm => None,
            EarlierPage::Regression(d) => Some(d),
        }
    }

    fn of(incident: &AlarmIncident) -> EarlierPage {
        match &incident.deployment {
            Some(d) => EarlierPage::Regression(d.clone()),
            None => EarlierPage::ServiceAlarm,
        }
    }
}

/// The entry, in an alarm incident's `pending` (in memory), of the resolve of the page
/// an escalation took over ([`AlarmIncident::escalated`]).
pub const ESCALATED: &str = "escalated";

/// An ALARM within a deployment's watch window while another incident was open (a
/// service alarm, or an older deployment's regression): the open incident became that
/// deployment's regression, and the earlier page is resolved (the handover), since its
/// alarms carry on in the regression's page.
///
/// In the marker the escalating ALARM's own entry says it, so that the escalation costs
/// no room of its own in a tag of 256 characters: `<alarm>@E<time>` in `pending`
/// while its page and the handover are pending, `<alarm>@H<time>` once the page went
/// out and only the handover is pending (the alarm is in ALARM since that time either
/// way); with `previous=<deployment>` when the earlier page was a regression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escalation {
    /// The alarm whose ALARM escalated the incident (the name after the prefix).
    pub alarm: String,
    /// When it went to ALARM (Unix seconds).
    pub since: i64,
    /// The page taken over, to resolve.
    pub from: EarlierPage,
}

impl Escalation {
    /// The escalating ALARM's page entry.
    fn page(&self) -> String {
        AlarmMark {
            firing: true,
            since: self.since,
        }
        .entry(&self.alarm)
    }

    /// The marker's entry: with the page pending (`E`) or without (`H`).
    fn entry(&self, page_pending: bool) -> String {
        format!(
            "{}@{}{}",
            self.alarm,
            if page_pending { 'E' } else { 'H' },
            self.since
        )
    }

    /// `(alarm, since, page_pending)` of an `@E` or `@H` entry.
    fn parse(entry: &str) -> Option<(String, i64, bool)> {
        let (name, mark) = entry.rsplit_once('@')?;
        let (page_pending, secs) = match mark.split_at_checked(1)? {
            ("E", s) => (true, s),
            ("H", s) => (false, s),
            _ => return None,
        };
        Some((name.to_owned(), secs.parse().ok()?, page_pending))
    }
}

/// An alarm's name after the prefix, as it is kept in the marker (no `+` or `@`).
pub fn alarm_key(suffix: &str) -> String {
    tags::value(suffix)
        .chars()
        .map(|c| if matches!(c, '+' | '@' | ' ') { '_' } else { c })
        .take(40)
        .collect()
}

/// One notification of an alarm incident still to be published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlarmNote {
    /// The page of `alarm` going to ALARM at `since` (Unix seconds). `rollback`: the
    /// automatic rollback is pending and goes with this page, the incident's first.
    Page {
        alarm: String,
        since: i64,
        rollback: bool,
    },
    /// The resolve of the page an escalation took over (after the pages, before the
    /// incident's own resolve).
    Handover(Escalation),
    /// The incident's resolve.
    Resolve,
}

impl AlarmIncident {
    pub fn from_marker(m: &Marker) -> Result<AlarmIncident, String> {
        let mut alarms: BTreeMap<String, AlarmMark> = BTreeMap::new();
        let mut rolled_back = false;
        let mut escalated = None;
        let mut pending = m.pending.clone();
        for entry in m.sent.iter().chain(&m.pending) {
            match entry.as_str() {
                ROLLBACK => rolled_back = true,
                RESOLVE => {}
                _ => {
                    let (name, mark) = match Escalation::parse(entry) {
                        // Only a pending handover is kept in the marker.
                        Some((name, since, page_pending)) if m.pending.contains(entry) => {
                            let e = Escalation {
                                alarm: name.clone(),
                                since,
                                from: match &m.previous {
                                    Some(d) => EarlierPage::Regression(d.clone()),
                                    None => EarlierPage::ServiceAlarm,
                                },
                            };
                            pending.remove(entry);
                            if page_pending {
                                pending.insert(e.page());
                            }
                            pending.insert(ESCALATED.to_owned());
                            escalated = Some(e);
                            (
                                name,
                                AlarmMark {
                                    firing: true,
                                    since,
                                },
                            )
                        }
                        // A handover left in `sent` is history.
                        Some(_) => continue,
                        None => AlarmMark::parse(entry)?,
                    };
                    // A page still pending may be older than the alarm's last change.
                    if alarms.get(&name).is_none_or(|old| mark.since >= old.since) {
                        alarms.insert(name, mark);
                    }
                }
            }
        }
        // A resolved incident has nothing in ALARM, whatever a pending page whose OK
        // had to give way to the tag's length says.
        if !m.open {
            for mark in alarms.values_mut() {
                mark.firing = false;
            }
        }
        Ok(AlarmIncident {
            deployment: m.deployment.clone(),
            alarms,
            pending,
            open: m.open,
            rolled_back,
            escalated,
            at: m.at,
            request: m.request.clone(),
        })
    }

    pub fn to_marker(&self) -> Marker {
        let mut sent: BTreeSet<String> = self
            .alarms
            .iter()
            .map(|(name, m)| m.entry(name))
            .filter(|e| !self.pending.contains(e))
            .collect();
        if self.rolled_back && !self.pending.contains(ROLLBACK) {
            sent.insert(ROLLBACK.to_owned());
        }
        let mut pending = self.pending.clone();
        pending.remove(ESCALATED);
        if let Some(e) = &self.escalated {
            // The escalating ALARM's entry carries the handover.
            let page_pending = pending.remove(&e.page());
            sent.remove(&e.page());
            pending.insert(e.entry(page_pending));
        }
        let mut m = Marker {
            deployment: self.deployment.clone(),
            previous: self
                .escalated
                .as_ref()
                .and_then(|e| e.from.deployment())
                .map(str::to_owned),
            sent,
            pending,
            open: self.open,
            at: self.at,
            request: self.request.clone(),
        };
        // A tag value holds 256 characters. Too long, the request id goes first (it
        // only tells people which invocation wrote the marker), down to 8 characters.
        let over = m.value_len().saturating_sub(tags::MAX_VALUE);
        if over > 0 {
            let keep = m.request.len().saturating_sub(over).max(8);
            m.request = m.request.chars().take(keep).collect();
        }
        // Still too long: the oldest OKs give way, as they only serve to recognise a
        // late copy of their ALARM; the OK of an alarm with something pending last,
        // since in an open incident its pending ALARM would then read as firing (in a
        // resolved one nothing reads as firing, see `from_marker`).
        let busy: BTreeSet<String> = self
            .pending
            .iter()
            .filter_map(|e| AlarmMark::parse(e).ok().map(|(name, _)| name))
            .chain(self.escalated.as_ref().map(|e| e.alarm.clone()))
            .collect();
        let mut oks: Vec<(bool, i64, String)> = self
            .alarms
            .iter()
            .filter(|(_, mark)| !mark.firing)
            .map(|(name, mark)| (busy.contains(name.as_str()), mark.since, mark.entry(name)))
            .filter(|(_, _, e)| m.sent.contains(e))
            .collect();
        oks.sort();
        for (_, _, entry) in oks {
            if m.value_len() <= tags::MAX_VALUE {
                break;
            }
            m.sent.remove(&entry);
        }
        m
    }

    /// What is pending, in the order of publication: the pages by time (the first one
    /// carries a pending rollback), then the resolve.
    pub fn pending_in_order(&self) -> Vec<AlarmNote> {
        let mut pages: Vec<(i64, String)> = self
            .pending
            .iter()
            .filter_map(|e| AlarmMark::parse(e).ok())
            .filter(|(_, m)| m.firing)
            .map(|(name, m)| (m.since, name))
            .collect();
        pages.sort();
        let mut rollback = self.pending.contains(ROLLBACK);
        let mut out: Vec<AlarmNote> = pages
            .into_iter()
            .map(|(since, alarm)| AlarmNote::Page {
                alarm,
                since,
                rollback: std::mem::take(&mut rollback),
            })
            .collect();
        if let Some(e) = &self.escalated {
            out.push(AlarmNote::Handover(e.clone()));
        }
        if self.pending.contains(RESOLVE) {
            out.push(AlarmNote::Resolve);
        }
        out
    }

    /// The pending entries of `note`, once published.
    pub fn entries_of(note: &AlarmNote) -> Vec<String> {
        match note {
            AlarmNote::Page {
                alarm,
                since,
                rollback,
            } => {
                let mut v = vec![AlarmMark {
                    firing: true,
                    since: *since,
                }
                .entry(alarm)];
                if *rollback {
                    v.push(ROLLBACK.to_owned());
                }
                v
            }
            AlarmNote::Handover(_) => vec![ESCALATED.to_owned()],
            AlarmNote::Resolve => vec![RESOLVE.to_owned()],
        }
    }

    /// The incident once `published` went out: those entries are no longer pending
    /// (a published handover ends the escalation's record).
    pub fn confirmed<'a>(&self, published: impl IntoIterator<Item = &'a str>) -> AlarmIncident {
        let mut i = self.clone();
        for entry in published {
            i.pending.remove(entry);
            if entry == ESCALATED {
                i.escalated = None;
            }
        }
        i
    }

    /// Whether `alarm`'s page for the ALARM at `since` joins an incident another alarm
    /// opened: another alarm went to ALARM before it. The ALARM that escalated the
    /// incident opens the regression, whatever fired before it (that was the page it
    /// took over).
    pub fn joined(&self, alarm: &str, since: i64) -> bool {
        if self
            .escalated
            .as_ref()
            .is_some_and(|e| e.alarm == alarm && e.since == since)
        {
            return false;
        }
        let pending_earlier = self
            .pending
            .iter()
            .filter_map(|e| AlarmMark::parse(e).ok())
            .any(|(k, m)| k != alarm && m.firing && m.since < since);
        pending_earlier
            || self
                .alarms
                .iter()
                .any(|(k, m)| k != alarm && m.firing && m.since < since)
    }

    /// The alarms still in ALARM.
    pub fn firing(&self) -> Vec<String> {
        self.alarms
            .iter()
            .filter(|(_, m)| m.firing)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Every alarm of the incident, for people.
    pub fn names(&self) -> Vec<String> {
        self.alarms.keys().cloned().collect()
    }

    /// The alarm whose OK came last: the one a resolve is about.
    pub fn last_ok(&self) -> Option<String> {
        self.alarms
            .iter()
            .filter(|(_, m)| !m.firing)
            .max_by_key(|(_, m)| m.since)
            .map(|(n, _)| n.clone())
    }
}

/// What an alarm's state change does (memory-high aside: it never pages). Every
/// decision that writes the incident keeps what it had pending; the handler publishes
/// all of it (`AlarmIncident::pending_in_order`) and then confirms it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlarmDecision {
    /// A new incident: record it (this page pending), then page (a regression, or a
    /// service alarm). `undelivered` is the incident it replaces when that one still
    /// had notifications pending: they are published first.
    Open {
        incident: AlarmIncident,
        attribution: Attribution,
        undelivered: Option<Box<AlarmIncident>>,
    },
    /// An ALARM within `watch`'s window while an incident of something else is open (a
    /// service alarm, or an older deployment's regression): the open incident becomes
    /// this deployment's regression, as if this ALARM opened it (its page, the way
    /// back, the automatic rollback), keeping the alarms still in ALARM. Record it
    /// (this page pending and, in prod, the resolve of the earlier page: the
    /// [`Escalation`]), then page, then resolve the earlier page. `undelivered` is the
    /// open incident as it was, when it still had notifications pending: they are
    /// published first, under the earlier page's key.
    Escalate {
        incident: AlarmIncident,
        watch: Watch,
        undelivered: Option<Box<AlarmIncident>>,
    },
    /// Another alarm joins the open incident: record it pending, then update the page.
    Join { incident: AlarmIncident },
    /// This notification was recorded and never confirmed as published: an earlier
    /// attempt (a Lambda retry, or a redrive under a new request id) died before or
    /// while publishing. Publish what the incident has pending (finishing a pending
    /// rollback), then confirm; record nothing.
    Deliver { incident: AlarmIncident },
    /// Already published: nothing new (anything else the incident has pending still
    /// goes out).
    Duplicate(String),
    /// Older than what the incident already shows: nothing new.
    Late(String),
    /// The last alarm of the incident went OK: record the resolve pending (in prod),
    /// then publish the incident's pages still pending and the resolve.
    Resolve { incident: AlarmIncident },
    /// An alarm went OK while others of the incident still fire: record, nothing new.
    StillFiring { incident: AlarmIncident },
    /// An OK whose ALARM was never seen: record it (so a late ALARM is recognised),
    /// nothing new.
    Record { incident: AlarmIncident },
    /// Nothing to record, nothing new.
    Quiet(String),
}

fn when(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

/// Decides what an ALARM, OK or INSUFFICIENT_DATA of one of this environment's alarms
/// does to the alarm incident. `attribution` is asked only for an ALARM that is news
/// (neither a duplicate nor late): it opens a new incident, joins the open one, or
/// escalates the open one to the regression of the deployment whose watch window it
/// falls in. `pages` is false outside prod: an incident closes there without a resolve
/// to send, and an escalation has no earlier page to resolve, since nothing paged.
pub fn on_alarm_change(
    ev: &AlarmEvent,
    incident: Option<&AlarmIncident>,
    attribution: impl FnOnce() -> Attribution,
    request: &str,
    pages: bool,
) -> AlarmDecision {
    let request = tags::value(request);
    let key = alarm_key(ev.kind.suffix());
    let secs = ev.at.timestamp();
    let mark = incident.and_then(|i| i.alarms.get(&key).copied());
    match ev.state {
        AlarmState::InsufficientData => AlarmDecision::Quiet(format!(
            "{} has too little data to decide; an open page stays open until it is OK",
            ev.name
        )),
        AlarmState::Alarm => {
            if let (Some(i), Some(m)) = (incident, mark) {
                if m.firing {
                    if secs == m.since && i.pending.contains(&m.entry(&key)) {
                        return AlarmDecision::Deliver {
                            incident: i.clone(),
                        };
                    }
                    if secs < m.since {
                        return AlarmDecision::Late(format!(
                            "{} has been in ALARM since {}, after this event",
                            ev.name,
                            when(m.since)
                        ));
                    }
                    // A newer ALARM after an OK this incident has not seen (delivered
                    // late, or lost): news, so that the OK is late when it comes.
                    let again =
                        secs > m.since && ev.previous.is_some_and(|p| p != AlarmState::Alarm);
                    if !again {
                        return AlarmDecision::Duplicate(format!(
                            "{} is already in ALARM since {} in the {} incident",
                            ev.name,
                            when(m.since),
                            if i.open { "open" } else { "last" }
                        ));
                    }
                }
                if secs <= m.since {
                    return AlarmDecision::Late(format!(
                        "{} went OK at {}, after this ALARM",
                        ev.name,
                        when(m.since)
                    ));
                }
            }
            let firing = AlarmMark {
                firing: true,
                since: secs,
            };
            match incident {
                Some(i) if i.open => match attribution() {
                    // In a deployment's watch window: that deployment's regression,
                    // even while something else is open.
                    Attribution::Regression(w)
                        if i.deployment.as_deref() != Some(w.deployment.as_str()) =>
                    {
                        escalate(ev, i, w, key, firing, request, pages)
                    }
                    // The same alarm again, after an OK not seen: still firing in this
                    // incident, whose page is out; its newer time is recorded.
                    _ if i.alarms.get(&key).is_some_and(|m| m.firing) => {
                        let mut again = i.clone();
                        again.alarms.insert(key, firing);
                        again.at = i.at.max(ev.at);
                        again.request = request;
                        AlarmDecision::Record { incident: again }
                    }
                    _ => {
                        let mut joined = i.clone();
                        joined.pending.insert(firing.entry(&key));
                        joined.alarms.insert(key, firing);
                        joined.at = i.at.max(ev.at);
                        joined.request = request;
                        AlarmDecision::Join { incident: joined }
                    }
                },
                _ => {
                    let attribution = attribution();
                    // The OKs of the last incident stay, so their late ALARMs are
                    // still recognised.
                    let mut alarms: BTreeMap<String, AlarmMark> = incident
                        .map(|i| {
                            i.alarms
                                .iter()
                                .filter(|(_, m)| !m.firing)
                                .map(|(k, m)| (k.clone(), *m))
                                .collect()
                        })
                        .unwrap_or_default();
                    let pending = BTreeSet::from([firing.entry(&key)]);
                    alarms.insert(key, firing);
                    let deployment = match &attribution {
                        Attribution::Regression(w) => Some(w.deployment.clone()),
                        _ => None,
                    };
                    AlarmDecision::Open {
                        incident: AlarmIncident {
                            deployment,
                            alarms,
                            pending,
                            open: true,
                            rolled_back: false,
                            escalated: None,
                            at: ev.at,
                            request,
                        },
                        attribution,
                        undelivered: incident
                            .filter(|i| !i.pending.is_empty())
                            .map(|i| Box::new(i.clone())),
                    }
                }
            }
        }
        AlarmState::Ok => {
            let Some(i) = incident else {
                return record_or_quiet(ev, None, key, secs, &request);
            };
            match mark {
                Some(m) if m.firing => {
                    if secs < m.since {
                        return AlarmDecision::Late(format!(
                            "this OK is older than the ALARM of {} ({})",
                            ev.name,
                            when(m.since)
                        ));
                    }
                    let mut next = i.clone();
                    next.alarms.insert(
                        key,
                        AlarmMark {
                            firing: false,
                            since: secs,
                        },
                    );
                    next.at = i.at.max(ev.at);
                    next.request = request;
                    if next.firing().is_empty() {
                        next.open = false;
                        if pages {
                            next.pending.insert(RESOLVE.to_owned());
                        }
                        AlarmDecision::Resolve { incident: next }
                    } else {
                        AlarmDecision::StillFiring { incident: next }
                    }
                }
                Some(m) if secs <= m.since => {
                    if !i.open && secs == m.since && i.pending.contains(RESOLVE) {
                        AlarmDecision::Deliver {
                            incident: i.clone(),
                        }
                    } else {
                        AlarmDecision::Duplicate(format!(
                            "{} has been OK since {}",
                            ev.name,
                            when(m.since)
                        ))
                    }
                }
                // OK since earlier, and this OK ends an ALARM in between that was
                // not seen (late, or lost): recorded, so that ALARM is late when it
                // comes. Otherwise nothing to do.
                Some(_) | None => record_or_quiet(ev, Some(i), key, secs, &request),
            }
        }
    }
}

/// The open incident `open` becomes the regression of `watch`'s deployment with this
/// ALARM (`key`, `firing`) as its opening page. Every alarm it knew stays (those in
/// ALARM carry on in the regression; the OKs recognise late copies of their ALARMs);
/// what it decided and published belongs to the earlier page, so the regression
/// starts with no rollback of its own. In prod the earlier page's resolve is recorded
/// pending with this page: the handover.
fn escalate(
    ev: &AlarmEvent,
    open: &AlarmIncident,
    watch: Watch,
    key: String,
    firing: AlarmMark,
    request: String,
    pages: bool,
) -> AlarmDecision {
    let mut alarms = open.alarms.clone();
    let mut pending = BTreeSet::from([firing.entry(&key)]);
    let escalated = pages.then(|| Escalation {
        alarm: key.clone(),
        since: firing.since,
        from: EarlierPage::of(open),
    });
    if escalated.is_some() {
        pending.insert(ESCALATED.to_owned());
    }
    alarms.insert(key, firing);
    AlarmDecision::Escalate {
        incident: AlarmIncident {
            deployment: Some(watch.deployment.clone()),
            alarms,
            pending,
            rolled_back: false,
            escalated,
            open: true,
            at: open.at.max(ev.at),
            request,
        },
        watch,
        undelivered: (!open.pending.is_empty()).then(|| Box::new(open.clone())),
    }
}

/// An OK of an alarm the incident does not know: if it ends an ALARM that was never
/// seen (delivered late, or lost), record it, in an open incident too, so that ALARM
/// is recognised as late when it comes (and never keeps the page open); otherwise
/// there is nothing to do.
fn record_or_quiet(
    ev: &AlarmEvent,
    incident: Option<&AlarmIncident>,
    key: String,
    secs: i64,
    request: &str,
) -> AlarmDecision {
    if ev.previous != Some(AlarmState::Alarm) {
        return AlarmDecision::Quiet(format!(
            "{} is OK after {}; nothing was raised",
            ev.name,
            ev.previous
                .map(AlarmState::as_str)
                .unwrap_or("an unknown state")
        ));
    }
    let mut rec = incident.cloned().unwrap_or(AlarmIncident {
        deployment: None,
        alarms: BTreeMap::new(),
        pending: BTreeSet::new(),
        open: false,
        rolled_back: false,
        escalated: None,
        at: ev.at,
        request: request.to_owned(),
    });
    rec.alarms.insert(
        key,
        AlarmMark {
            firing: false,
            since: secs,
        },
    );
    rec.at = rec.at.max(ev.at);
    rec.request = request.to_owned();
    AlarmDecision::Record { incident: rec }
}

/// True when the service still runs the watched deployment: the watched revision, with
/// no other deployment rolling out. (Revisions, not deployment ids: a rollback or any
/// newer deployment changes the revision or starts a rollout either way, and the check
/// does not depend on an event's id matching what DescribeServices lists.)
pub fn runs(service: &ServiceState, watch: &Watch) -> bool {
    task_definition_short(&service.task_definition) == watch.revision && service.rollout().is_none()
}

/// The family of a `family:revision`, for the manual's list-task-definitions.
pub fn family(revision: &str) -> Option<String> {
    family_revision(revision).map(|(f, _)| f).or_else(|| {
        Arn::parse(revision).and_then(|a| a.task_definition().map(|(f, _)| f.to_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alarm_event::AlarmKind;
    use crate::domain::ecs_event::DeploymentChange;
    use crate::domain::scan::Envelope;
    use crate::domain::service::DeploymentState;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-11-26T{s}Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn td(n: u32) -> String {
        format!("arn:aws:ecs:us-west-1:123456789012:task-definition/menotime-backend-prod:{n}")
    }

    fn rev(n: u32) -> String {
        format!("menotime-backend-prod:{n}")
    }

    fn env(at: &str) -> Envelope {
        Envelope {
            id: "e".into(),
            time: t(at),
            source: "x".into(),
            detail_type: "x".into(),
        }
    }

    fn completed(id: &str, at: &str) -> DeploymentEvent {
        DeploymentEvent {
            envelope: env(at),
            change: DeploymentChange::Completed,
            event_name: "SERVICE_DEPLOYMENT_COMPLETED".into(),
            deployment_id: id.into(),
            reason: String::new(),
            at: t(at),
        }
    }

    /// The service running deployment `id` on revision `n` (PRIMARY), with other
    /// (id, revision) deployments listed as ACTIVE.
    fn service(id: &str, n: u32, others: &[(&str, u32)]) -> ServiceState {
        let mut deployments = vec![DeploymentState {
            id: id.into(),
            status: "PRIMARY".into(),
            rollout_state: Some("COMPLETED".into()),
            task_definition: td(n),
            ..Default::default()
        }];
        deployments.extend(others.iter().map(|(id, n)| DeploymentState {
            id: id.to_string(),
            status: "ACTIVE".into(),
            rollout_state: Some("COMPLETED".into()),
            task_definition: td(*n),
            ..Default::default()
        }));
        ServiceState {
            task_definition: td(n),
            deployments,
            ..Default::default()
        }
    }

    fn watch(id: &str, n: u32, previous: Option<u32>, at: &str) -> Watch {
        Watch {
            deployment: id.into(),
            revision: rev(n),
            previous: previous.map(rev),
            rolled_back_from: None,
            completed: t(at),
        }
    }

    fn started(w: WatchStart) -> Watch {
        match w {
            WatchStart::Start(w) => w,
            other => panic!("expected a watch, got {other:?}"),
        }
    }

    #[test]
    fn the_watch_tag_round_trips_and_fits() {
        let w = Watch {
            deployment: "ecs-svc/4231880795355584839".into(),
            revision: rev(49),
            previous: Some(rev(48)),
            rolled_back_from: None,
            completed: t("09:00:00.250"),
        };
        let s = w.render();
        assert_eq!(s, "deployment=ecs-svc/4231880795355584839 revision=menotime-backend-prod:49 previous=menotime-backend-prod:48 completed=2026-11-26T09:00:00.250Z");
        assert_eq!(Watch::parse(&s).unwrap(), w);
        assert_eq!(tags::value(&s), s);
        let back = Watch {
            previous: None,
            rolled_back_from: Some(rev(49)),
            ..w
        };
        assert_eq!(Watch::parse(&back.render()).unwrap(), back);
        for bad in [
            "",
            "deployment=a revision=b",
            "deployment=a revision=b completed=soon",
            "deployment=a revision=b completed=2026-11-26T09:00:00Z colour=red",
            "nonsense",
        ] {
            assert!(Watch::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(watch("d", 49, None, "09:00:00").until(30), t("09:30:00"));
    }

    #[test]
    fn a_completion_records_the_way_back() {
        // ECS still lists the replaced deployment: its revision is the way back.
        let w = started(on_completed(
            &completed("ecs-svc/2", "09:00:00"),
            &service("ecs-svc/2", 49, &[("ecs-svc/1", 48)]),
            None,
        ));
        assert_eq!(w.revision, rev(49));
        assert_eq!(w.previous, Some(rev(48)));
        assert_eq!(w.completed, t("09:00:00"));
        // ECS lists only the new one: the last watched deployment's revision.
        let old = watch("ecs-svc/1", 48, Some(47), "08:00:00");
        let w = started(on_completed(
            &completed("ecs-svc/2", "09:00:00"),
            &service("ecs-svc/2", 49, &[]),
            Some(&old),
        ));
        assert_eq!(w.previous, Some(rev(48)));
        assert_eq!(w.rolled_back_from, None);
        // The same revision deployed again keeps its way back.
        let w = started(on_completed(
            &completed("ecs-svc/3", "09:10:00"),
            &service("ecs-svc/3", 48, &[]),
            Some(&old),
        ));
        assert_eq!(w.previous, Some(rev(47)));
        // Nothing known: no way back recorded (the revision's tags may still say).
        let w = started(on_completed(
            &completed("ecs-svc/2", "09:00:00"),
            &service("ecs-svc/2", 49, &[]),
            None,
        ));
        assert_eq!(w.previous, None);
    }

    #[test]
    fn a_completion_that_goes_back_is_a_rollback_without_a_way_back() {
        let old = watch("ecs-svc/2", 49, Some(48), "09:00:00");
        let w = started(on_completed(
            &completed("ecs-svc/3", "09:05:00"),
            &service("ecs-svc/3", 48, &[]),
            Some(&old),
        ));
        assert_eq!(w.previous, None);
        assert_eq!(w.rolled_back_from, Some(rev(49)));
        assert_eq!(
            WayBack::of(&w, Some("menotime-backend-prod:47")),
            WayBack::WasARollback { from: rev(49) }
        );
        // Restarted on the same revision later: still a rollback.
        let again = started(on_completed(
            &completed("ecs-svc/4", "10:00:00"),
            &service("ecs-svc/4", 48, &[]),
            Some(&w),
        ));
        assert_eq!(again.rolled_back_from, Some(rev(49)));
        // A circuit-breaker rollback while the failed deployment is still listed.
        let w = started(on_completed(
            &completed("ecs-svc/rb", "09:05:00"),
            &service("ecs-svc/rb", 48, &[("ecs-svc/bad", 49)]),
            None,
        ));
        assert_eq!(w.rolled_back_from, Some(rev(49)));
    }

    #[test]
    fn a_completion_ecs_no_longer_lists_is_what_runs_unless_something_rolls_out() {
        // ECS keeps one deployment once it is steady; the event names another id.
        let w = started(on_completed(
            &completed("ecs-svc/gone", "09:00:00"),
            &service("ecs-svc/2", 49, &[]),
            Some(&watch("ecs-svc/1", 48, None, "08:00:00")),
        ));
        assert_eq!(w.deployment, "ecs-svc/gone");
        assert_eq!(w.revision, rev(49));
        assert_eq!(w.previous, Some(rev(48)));
        // A rollout under way: the completion is older than what runs now.
        let mut rolling = service("ecs-svc/3", 50, &[]);
        rolling.deployments[0].rollout_state = Some("IN_PROGRESS".into());
        assert!(matches!(
            on_completed(&completed("ecs-svc/gone", "09:00:00"), &rolling, None),
            WatchStart::Keep(_)
        ));
    }

    #[test]
    fn duplicate_late_and_superseded_completions_keep_the_watch() {
        let old = watch("ecs-svc/2", 49, Some(48), "09:00:00");
        for (ev, s) in [
            (
                completed("ecs-svc/2", "09:00:00"),
                service("ecs-svc/2", 49, &[]),
            ),
            (
                completed("ecs-svc/1", "08:00:00"),
                service("ecs-svc/2", 49, &[]),
            ),
            (
                completed("ecs-svc/3", "09:10:00"),
                service("ecs-svc/4", 50, &[("ecs-svc/3", 49)]),
            ),
        ] {
            assert!(
                matches!(on_completed(&ev, &s, Some(&old)), WatchStart::Keep(_)),
                "{ev:?}"
            );
        }
    }

    #[test]
    fn an_alarm_inside_the_window_is_the_deployments_regression() {
        let w = watch("ecs-svc/2", 49, Some(48), "09:00:00");
        let s = service("ecs-svc/2", 49, &[]);
        let a = |at: &str| attribute(t(at), Some(&w), &s, 30);
        assert!(matches!(a("09:00:00"), Attribution::Regression(_)));
        assert!(matches!(a("09:03:00"), Attribution::Regression(_)));
        assert!(matches!(a("09:29:00"), Attribution::Regression(_)));
        assert!(
            matches!(a("09:30:00"), Attribution::Regression(_)),
            "the edge is in"
        );
        assert!(matches!(a("09:31:00"), Attribution::After(_)));
        assert!(matches!(a("08:59:00"), Attribution::Before(_)));
        assert_eq!(attribute(t("09:03:00"), None, &s, 30), Attribution::NoWatch);
        // Superseded: ECS runs another deployment now.
        let newer = service("ecs-svc/3", 50, &[("ecs-svc/2", 49)]);
        assert_eq!(
            attribute(t("09:03:00"), Some(&w), &newer, 30),
            Attribution::Superseded {
                watch: w.clone(),
                by: Some("ecs-svc/3".into())
            }
        );
        assert!(a("09:31:00")
            .why_not(30)
            .contains("ended at 2026-11-26T09:30:00Z"));
    }

    #[test]
    fn the_way_back_and_the_automatic_rollback() {
        let w = watch("ecs-svc/2", 49, Some(48), "09:00:00");
        assert_eq!(WayBack::of(&w, None), WayBack::To(rev(48)));
        let unknown = watch("ecs-svc/2", 49, None, "09:00:00");
        assert_eq!(WayBack::of(&unknown, None), WayBack::Unknown);
        // scan-gate's menotime:replaces fills in.
        assert_eq!(
            WayBack::of(&unknown, Some("menotime-backend-prod:47")),
            WayBack::To(rev(47))
        );
        // A "previous" newer than the revision is no way back.
        assert_eq!(
            WayBack::of(&unknown, Some("menotime-backend-prod:50")),
            WayBack::Unknown
        );

        let to = WayBack::To(rev(48));
        assert_eq!(rollback(false, false, &to, None), Rollback::Off);
        assert_eq!(
            rollback(true, false, &to, None),
            Rollback::Now { to: rev(48) }
        );
        assert_eq!(
            rollback(true, true, &to, None),
            Rollback::DryRun { to: rev(48) }
        );
        assert!(matches!(
            rollback(true, false, &WayBack::Unknown, None),
            Rollback::Cannot(_)
        ));
        assert!(matches!(
            rollback(true, false, &WayBack::WasARollback { from: rev(49) }, None),
            Rollback::Cannot(_)
        ));
        assert!(
            matches!(rollback(true, false, &to, Some("by hand")), Rollback::Cannot(ref why) if why.contains("frozen"))
        );
        let f = freeze_value(&w, "menotime-prod-5xx", t("09:03:00"), &rev(48));
        assert_eq!(f, "deployment ecs-svc/2 regressed at 2026-11-26T09:03:00Z: menotime-prod-5xx in ALARM - automatic rollback to menotime-backend-prod:48");
    }

    fn alarm(suffix: &str, state: AlarmState, at: &str) -> AlarmEvent {
        AlarmEvent {
            envelope: env(at),
            name: format!("menotime-prod-{suffix}"),
            kind: AlarmKind::from_suffix(suffix),
            state,
            previous: Some(match state {
                AlarmState::Ok => AlarmState::Alarm,
                _ => AlarmState::Ok,
            }),
            reason: "Threshold Crossed".into(),
            at: t(at),
        }
    }

    fn regression() -> Attribution {
        Attribution::Regression(watch("ecs-svc/2", 49, Some(48), "09:00:00"))
    }

    fn opened(d: AlarmDecision) -> AlarmIncident {
        match d {
            AlarmDecision::Open { incident, .. } | AlarmDecision::Join { incident } => incident,
            other => panic!("expected a page, got {other:?}"),
        }
    }

    #[test]
    fn the_incident_marker_round_trips_and_fits_a_tag() {
        let mut alarms = BTreeMap::new();
        for (i, name) in crate::domain::alarm_event::TEMPLATE_ALARMS
            .iter()
            .enumerate()
        {
            alarms.insert(
                name.to_string(),
                AlarmMark {
                    firing: i % 2 == 0,
                    since: 1_795_683_780 + i as i64,
                },
            );
        }
        // memory-high never pages, so it is never part of an incident.
        alarms.remove("memory-high");
        // Two pages and the rollback still pending: the incident just recorded.
        let pending = BTreeSet::from([
            alarms["5xx"].entry("5xx"),
            alarms["db-connections"].entry("db-connections"),
            ROLLBACK.to_owned(),
        ]);
        let inc = AlarmIncident {
            deployment: Some("ecs-svc/4231880795355584839".into()),
            alarms,
            pending,
            open: true,
            rolled_back: true,
            escalated: None,
            at: t("09:03:00.123"),
            request: "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into(),
        };
        let rendered = inc.to_marker().render();
        assert!(
            rendered.len() <= 256,
            "{} > 256: {rendered}",
            rendered.len()
        );
        assert!(rendered.contains("pending=5xx@A1795683780+"), "{rendered}");
        let back = AlarmIncident::from_marker(&Marker::parse(&rendered).unwrap()).unwrap();
        assert_eq!(back, inc);
        // Published and confirmed: nothing pending, the same alarms and rollback.
        let done = inc.confirmed(
            inc.pending_in_order()
                .iter()
                .flat_map(AlarmIncident::entries_of)
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        );
        assert!(done.pending.is_empty());
        let rendered = done.to_marker().render();
        assert!(!rendered.contains("pending="), "{rendered}");
        assert!(rendered.contains("+rollback"), "{rendered}");
        let back = AlarmIncident::from_marker(&Marker::parse(&rendered).unwrap()).unwrap();
        assert_eq!(back, done);
        for bad in ["5xx", "5xx@X1", "5xx@Asoon"] {
            let m = Marker {
                sent: BTreeSet::from([bad.to_owned()]),
                ..inc.to_marker()
            };
            assert!(AlarmIncident::from_marker(&m).is_err(), "{bad}");
        }
    }

    /// The incident once everything it has pending went out.
    fn published(i: AlarmIncident) -> AlarmIncident {
        let entries: Vec<String> = i
            .pending_in_order()
            .iter()
            .flat_map(AlarmIncident::entries_of)
            .collect();
        i.confirmed(entries.iter().map(String::as_str))
    }

    #[test]
    fn a_marker_with_every_page_pending_still_fits_a_tag() {
        // Four alarms fired, none of their pages could be published, all went OK.
        let mut i = AlarmIncident {
            deployment: Some("ecs-svc/4231880795355584839".into()),
            alarms: BTreeMap::new(),
            pending: BTreeSet::from([ROLLBACK.to_owned(), RESOLVE.to_owned()]),
            open: false,
            rolled_back: true,
            escalated: None,
            at: t("09:30:00.123"),
            request: "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into(),
        };
        for (n, name) in ["5xx", "latency", "unhealthy-hosts", "db-connections"]
            .iter()
            .enumerate()
        {
            let since = 1_795_683_780 + n as i64;
            i.pending.insert(
                AlarmMark {
                    firing: true,
                    since,
                }
                .entry(name),
            );
            i.alarms.insert(
                name.to_string(),
                AlarmMark {
                    firing: false,
                    since: since + 600,
                },
            );
        }
        let rendered = i.to_marker().render();
        assert!(rendered.len() <= tags::MAX_VALUE, "{rendered}");
        let back = AlarmIncident::from_marker(&Marker::parse(&rendered).unwrap()).unwrap();
        assert!(i.request.starts_with(&back.request), "{rendered}");
        assert!(back.request.len() >= 8, "{rendered}");
        assert_eq!(back.pending, i.pending, "every notification still pending");
        assert_eq!(back.pending_in_order().len(), 5);
        assert!(back.firing().is_empty(), "resolved: nothing in ALARM");
    }

    #[test]
    fn an_alarm_opens_once_and_its_ok_resolves_once() {
        let ev = alarm("5xx", AlarmState::Alarm, "09:03:00");
        let recorded = match on_alarm_change(&ev, None, regression, "r1", true) {
            AlarmDecision::Open {
                incident,
                attribution,
                undelivered,
            } => {
                assert!(matches!(attribution, Attribution::Regression(_)));
                assert_eq!(undelivered, None);
                incident
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(recorded.deployment.as_deref(), Some("ecs-svc/2"));
        assert!(recorded.open);
        assert_eq!(recorded.firing(), ["5xx"]);
        assert_eq!(
            recorded.pending_in_order(),
            [AlarmNote::Page {
                alarm: "5xx".into(),
                since: t("09:03:00").timestamp(),
                rollback: false
            }]
        );
        // Recorded, not confirmed: the Lambda retry and a redrive both deliver it.
        let never = || -> Attribution { panic!("not asked") };
        for request in ["r1", "redrive-7"] {
            assert_eq!(
                on_alarm_change(&ev, Some(&recorded), never, request, true),
                AlarmDecision::Deliver {
                    incident: recorded.clone()
                }
            );
        }
        // Confirmed: every other delivery is a duplicate, the retry included.
        let inc = published(recorded);
        for request in ["r1", "r2"] {
            assert!(matches!(
                on_alarm_change(&ev, Some(&inc), never, request, true),
                AlarmDecision::Duplicate(_)
            ));
        }
        // Its OK resolves it (the resolve pending); until confirmed, the OK again
        // delivers it; then it is a duplicate.
        let ok = alarm("5xx", AlarmState::Ok, "09:10:00");
        let resolving = match on_alarm_change(&ok, Some(&inc), never, "r3", true) {
            AlarmDecision::Resolve { incident } => incident,
            other => panic!("{other:?}"),
        };
        assert!(!resolving.open);
        assert_eq!(resolving.deployment.as_deref(), Some("ecs-svc/2"));
        assert_eq!(resolving.pending_in_order(), [AlarmNote::Resolve]);
        for request in ["r3", "r4"] {
            assert!(matches!(
                on_alarm_change(&ok, Some(&resolving), never, request, true),
                AlarmDecision::Deliver { .. }
            ));
        }
        let resolved = published(resolving);
        assert!(matches!(
            on_alarm_change(&ok, Some(&resolved), never, "r3", true),
            AlarmDecision::Duplicate(_)
        ));
        // The ALARM delivered again after its OK: late, never a second page.
        assert!(matches!(
            on_alarm_change(&ev, Some(&resolved), never, "r5", true),
            AlarmDecision::Late(_)
        ));
        // A new ALARM later: a new incident, attributed afresh.
        let again = alarm("5xx", AlarmState::Alarm, "11:00:00");
        let inc2 = opened(on_alarm_change(
            &again,
            Some(&resolved),
            || Attribution::NoWatch,
            "r6",
            true,
        ));
        assert_eq!(inc2.deployment, None);
        // Outside prod the incident closes without a resolve to send.
        match on_alarm_change(&ok, Some(&inc), never, "r3", false) {
            AlarmDecision::Resolve { incident } => {
                assert!(!incident.open && incident.pending.is_empty())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_resolve_publishes_the_pages_still_pending_first_and_a_new_incident_the_last_ones() {
        let five = alarm("5xx", AlarmState::Alarm, "09:03:00");
        let recorded = opened(on_alarm_change(&five, None, regression, "r1", true));
        // The page was never confirmed; the OK comes: page first, then the resolve.
        let ok = alarm("5xx", AlarmState::Ok, "09:10:00");
        let resolving = match on_alarm_change(&ok, Some(&recorded), || panic!(), "r2", true) {
            AlarmDecision::Resolve { incident } => incident,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            resolving.pending_in_order(),
            [
                AlarmNote::Page {
                    alarm: "5xx".into(),
                    since: t("09:03:00").timestamp(),
                    rollback: false
                },
                AlarmNote::Resolve
            ]
        );
        // Its parse keeps the alarm OK (the later change) and the page pending.
        let back =
            AlarmIncident::from_marker(&Marker::parse(&resolving.to_marker().render()).unwrap())
                .unwrap();
        assert_eq!(back, resolving);
        assert!(back.firing().is_empty());
        // Neither confirmed, a new ALARM opens the next incident: they go out first.
        let next = alarm("latency", AlarmState::Alarm, "10:00:00");
        match on_alarm_change(&next, Some(&resolving), || Attribution::NoWatch, "r3", true) {
            AlarmDecision::Open { undelivered, .. } => {
                assert_eq!(undelivered.as_deref(), Some(&resolving))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_pending_rollback_goes_with_the_first_page() {
        let mut i = opened(on_alarm_change(
            &alarm("5xx", AlarmState::Alarm, "09:03:00"),
            None,
            regression,
            "r1",
            true,
        ));
        i.pending.insert(ROLLBACK.to_owned());
        i.rolled_back = true;
        let joined = opened(on_alarm_change(
            &alarm("latency", AlarmState::Alarm, "09:04:00"),
            Some(&i),
            regression,
            "r2",
            true,
        ));
        let notes = joined.pending_in_order();
        assert_eq!(
            notes,
            [
                AlarmNote::Page {
                    alarm: "5xx".into(),
                    since: t("09:03:00").timestamp(),
                    rollback: true
                },
                AlarmNote::Page {
                    alarm: "latency".into(),
                    since: t("09:04:00").timestamp(),
                    rollback: false
                }
            ]
        );
        assert!(!joined.joined("5xx", t("09:03:00").timestamp()));
        assert!(joined.joined("latency", t("09:04:00").timestamp()));
        assert_eq!(
            AlarmIncident::entries_of(&notes[0]),
            ["5xx@A1795683780", "rollback"]
        );
        let done = published(joined);
        assert!(done.rolled_back && done.pending.is_empty());
    }

    #[test]
    fn a_pending_rollback_is_finished_only_while_it_still_makes_sense() {
        let w = watch("ecs-svc/2", 49, Some(48), "09:00:00");
        let back = WayBack::To(rev(48));
        let runs_it = service("ecs-svc/2", 49, &[]);
        assert_eq!(
            finish_rollback(Some(&w), &back, &runs_it, true, None, false),
            PendingRollback::Now { to: rev(48) }
        );
        // The earlier attempt's UpdateService took: ECS runs the way back.
        let moved = service("ecs-svc/rb", 48, &[("ecs-svc/2", 49)]);
        assert_eq!(
            finish_rollback(Some(&w), &back, &moved, true, None, false),
            PendingRollback::Done { to: rev(48) }
        );
        // Someone lifted the freeze meanwhile, a newer deployment runs, a dry run, or
        // no way back: nothing rolls back.
        assert!(matches!(
            finish_rollback(Some(&w), &back, &runs_it, false, None, false),
            PendingRollback::Cannot(ref why) if why.contains("unfrozen")
        ));
        assert!(matches!(
            finish_rollback(
                Some(&w),
                &back,
                &service("ecs-svc/3", 50, &[]),
                true,
                None,
                false
            ),
            PendingRollback::Cannot(_)
        ));
        assert_eq!(
            finish_rollback(Some(&w), &back, &runs_it, true, None, true),
            PendingRollback::DryRun { to: rev(48) }
        );
        assert!(matches!(
            finish_rollback(None, &WayBack::Unknown, &runs_it, true, None, false),
            PendingRollback::Cannot(_)
        ));
        // The rollback's own deployment completed and is watched now, so the watch no
        // longer names the way back; the freeze the rollback wrote still does.
        let freeze = freeze_value(&w, "menotime-prod-5xx", t("09:03:00"), &rev(48));
        assert_eq!(rollback_target(&freeze), Some(rev(48).as_str()));
        assert_eq!(
            finish_rollback(None, &WayBack::Unknown, &moved, true, Some(&freeze), false),
            PendingRollback::Done { to: rev(48) }
        );
        assert_eq!(
            rollback_target("deployment ecs-svc/1 failed at 2026-11-26T09:00:00Z: x"),
            None
        );
    }

    #[test]
    fn several_alarms_make_one_incident_that_resolves_when_all_are_ok() {
        let five = alarm("5xx", AlarmState::Alarm, "09:03:00");
        let inc = opened(on_alarm_change(&five, None, regression, "r1", true));
        let lat = alarm("latency", AlarmState::Alarm, "09:04:00");
        let inc = match on_alarm_change(&lat, Some(&inc), regression, "r2", true) {
            AlarmDecision::Join { incident } => incident,
            other => panic!("{other:?}"),
        };
        assert_eq!(inc.firing(), ["5xx", "latency"]);
        assert_eq!(
            inc.deployment.as_deref(),
            Some("ecs-svc/2"),
            "still the regression"
        );
        let inc = match on_alarm_change(
            &alarm("5xx", AlarmState::Ok, "09:08:00"),
            Some(&inc),
            || panic!(),
            "r3",
            true,
        ) {
            AlarmDecision::StillFiring { incident } => incident,
            other => panic!("{other:?}"),
        };
        assert!(inc.open);
        assert_eq!(inc.firing(), ["latency"]);
        // A late duplicate of the 5xx ALARM while latency still fires: nothing.
        assert!(matches!(
            on_alarm_change(&five, Some(&inc), || panic!(), "r4", true),
            AlarmDecision::Late(_)
        ));
        let done = on_alarm_change(
            &alarm("latency", AlarmState::Ok, "09:09:00"),
            Some(&inc),
            || panic!(),
            "r5",
            true,
        );
        assert!(matches!(done, AlarmDecision::Resolve { .. }));
    }

    #[test]
    fn a_newer_ok_after_an_old_one_is_recorded_so_its_late_alarm_is_late() {
        // The last incident: 5xx fired and recovered.
        let inc = opened(on_alarm_change(
            &alarm("5xx", AlarmState::Alarm, "09:00:00"),
            None,
            regression,
            "r1",
            true,
        ));
        let done = match on_alarm_change(
            &alarm("5xx", AlarmState::Ok, "09:01:00"),
            Some(&inc),
            || panic!(),
            "r2",
            true,
        ) {
            AlarmDecision::Resolve { incident } => published(incident),
            other => panic!("{other:?}"),
        };
        // It fires again at 09:03 and recovers at 09:05; the OK comes first.
        let rec = match on_alarm_change(
            &alarm("5xx", AlarmState::Ok, "09:05:00"),
            Some(&done),
            || panic!(),
            "r3",
            true,
        ) {
            AlarmDecision::Record { incident } => incident,
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            on_alarm_change(
                &alarm("5xx", AlarmState::Alarm, "09:03:00"),
                Some(&rec),
                regression,
                "r4",
                true
            ),
            AlarmDecision::Late(_)
        ));
        // An OK after OK (previous state OK) ends nothing: quiet.
        let mut ok_after_ok = alarm("5xx", AlarmState::Ok, "09:07:00");
        ok_after_ok.previous = Some(AlarmState::Ok);
        assert!(matches!(
            on_alarm_change(&ok_after_ok, Some(&rec), || panic!(), "r5", true),
            AlarmDecision::Quiet(_)
        ));
    }

    #[test]
    fn a_newer_alarm_after_an_unseen_ok_makes_that_ok_late() {
        let inc = opened(on_alarm_change(
            &alarm("5xx", AlarmState::Alarm, "09:03:00"),
            None,
            regression,
            "r1",
            true,
        ));
        let inc = published(inc);
        // OK at 09:06, ALARM again at 09:10 (previous state OK): the ALARM comes first.
        let again = match on_alarm_change(
            &alarm("5xx", AlarmState::Alarm, "09:10:00"),
            Some(&inc),
            regression,
            "r2",
            true,
        ) {
            AlarmDecision::Record { incident } => incident,
            other => panic!("{other:?}"),
        };
        assert!(again.open && again.pending.is_empty(), "no second page");
        assert!(matches!(
            on_alarm_change(
                &alarm("5xx", AlarmState::Ok, "09:06:00"),
                Some(&again),
                || panic!(),
                "r3",
                true
            ),
            AlarmDecision::Late(_)
        ));
        // The same ALARM delivered again (previous state ALARM, or the same time): a
        // duplicate.
        let mut dup = alarm("5xx", AlarmState::Alarm, "09:12:00");
        dup.previous = Some(AlarmState::Alarm);
        assert!(matches!(
            on_alarm_change(&dup, Some(&again), regression, "r4", true),
            AlarmDecision::Duplicate(_)
        ));
    }

    #[test]
    fn a_long_open_marker_cuts_the_request_id_before_an_ok_that_decides() {
        let since = 1_795_683_780;
        let mark = |firing: bool, at: i64| AlarmMark { firing, since: at };
        let i = AlarmIncident {
            deployment: Some("ecs-svc/4231880795355584839".into()),
            alarms: BTreeMap::from([
                ("5xx".to_owned(), mark(true, since)),
                ("db-connections".to_owned(), mark(true, since + 1)),
                ("latency".to_owned(), mark(true, since + 2)),
                ("unhealthy-hosts".to_owned(), mark(false, since + 600)),
            ]),
            pending: BTreeSet::from([
                mark(true, since + 2).entry("latency"),
                mark(true, since + 3).entry("unhealthy-hosts"),
            ]),
            open: true,
            rolled_back: true,
            escalated: None,
            at: t("09:30:00.123"),
            request: "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into(),
        };
        let rendered = i.to_marker().render();
        assert!(rendered.len() <= tags::MAX_VALUE, "{rendered}");
        let back = AlarmIncident::from_marker(&Marker::parse(&rendered).unwrap()).unwrap();
        assert_eq!(
            back.firing(),
            ["5xx", "db-connections", "latency"],
            "{rendered}"
        );
        assert_eq!(back.pending, i.pending);
    }

    #[test]
    fn an_ok_before_its_alarm_during_an_open_incident_makes_that_alarm_late() {
        let inc = opened(on_alarm_change(
            &alarm("5xx", AlarmState::Alarm, "09:03:00"),
            None,
            regression,
            "r1",
            true,
        ));
        // latency's OK overtakes its ALARM: recorded in the open incident.
        let inc = match on_alarm_change(
            &alarm("latency", AlarmState::Ok, "09:08:00"),
            Some(&inc),
            || panic!(),
            "r2",
            true,
        ) {
            AlarmDecision::Record { incident } => incident,
            other => panic!("{other:?}"),
        };
        assert!(inc.open);
        assert_eq!(inc.firing(), ["5xx"]);
        // Its ALARM then comes: late, it neither pages nor joins.
        assert!(matches!(
            on_alarm_change(
                &alarm("latency", AlarmState::Alarm, "09:05:00"),
                Some(&inc),
                regression,
                "r3",
                true
            ),
            AlarmDecision::Late(_)
        ));
        // And 5xx's OK resolves the page.
        assert!(matches!(
            on_alarm_change(
                &alarm("5xx", AlarmState::Ok, "09:10:00"),
                Some(&inc),
                || panic!(),
                "r4",
                true
            ),
            AlarmDecision::Resolve { .. }
        ));
    }

    #[test]
    fn out_of_order_oks_and_alarms_never_page_twice_or_resolve_early() {
        // The OK arrives before its ALARM: recorded, then the ALARM is late.
        let ok = alarm("5xx", AlarmState::Ok, "09:08:00");
        let rec = match on_alarm_change(&ok, None, || panic!(), "r1", true) {
            AlarmDecision::Record { incident } => incident,
            other => panic!("{other:?}"),
        };
        assert!(!rec.open);
        let late = alarm("5xx", AlarmState::Alarm, "09:03:00");
        assert!(matches!(
            on_alarm_change(&late, Some(&rec), || panic!(), "r2", true),
            AlarmDecision::Late(_)
        ));
        // An OK older than the ALARM it would end (a stale delivery): the page stays.
        let inc = opened(on_alarm_change(
            &alarm("5xx", AlarmState::Alarm, "09:20:00"),
            Some(&rec),
            regression,
            "r3",
            true,
        ));
        let stale = alarm("5xx", AlarmState::Ok, "09:15:00");
        assert!(matches!(
            on_alarm_change(&stale, Some(&inc), || panic!(), "r4", true),
            AlarmDecision::Late(_)
        ));
        // An OK that follows INSUFFICIENT_DATA, without any ALARM: nothing, nothing written.
        let mut quiet = alarm("latency", AlarmState::Ok, "09:30:00");
        quiet.previous = Some(AlarmState::InsufficientData);
        assert!(matches!(
            on_alarm_change(&quiet, None, || panic!(), "r5", true),
            AlarmDecision::Quiet(_)
        ));
        // INSUFFICIENT_DATA never closes or opens anything.
        let insufficient = alarm("5xx", AlarmState::InsufficientData, "09:40:00");
        assert!(matches!(
            on_alarm_change(&insufficient, Some(&inc), || panic!(), "r6", true),
            AlarmDecision::Quiet(_)
        ));
    }

    fn escalated(d: AlarmDecision) -> (AlarmIncident, Watch, Option<Box<AlarmIncident>>) {
        match d {
            AlarmDecision::Escalate {
                incident,
                watch,
                undelivered,
            } => (incident, watch, undelivered),
            other => panic!("expected an escalation, got {other:?}"),
        }
    }

    /// db-connections in ALARM at 08:50, outside any watch: the open service alarm,
    /// its page published.
    fn service_alarm_open() -> AlarmIncident {
        published(opened(on_alarm_change(
            &alarm("db-connections", AlarmState::Alarm, "08:50:00"),
            None,
            || Attribution::NoWatch,
            "r0",
            true,
        )))
    }

    fn regression_of_3() -> Attribution {
        Attribution::Regression(watch("ecs-svc/3", 50, Some(49), "09:20:00"))
    }

    #[test]
    fn an_alarm_in_a_window_escalates_an_open_service_alarm_to_the_regression() {
        let open = service_alarm_open();
        assert_eq!(open.deployment, None);
        let five = alarm("5xx", AlarmState::Alarm, "09:03:00");
        let since = t("09:03:00").timestamp();
        let (inc, w, undelivered) =
            escalated(on_alarm_change(&five, Some(&open), regression, "r1", true));
        assert_eq!(w.deployment, "ecs-svc/2");
        assert_eq!(undelivered, None, "the service alarm's page went out");
        assert_eq!(inc.deployment.as_deref(), Some("ecs-svc/2"));
        assert!(inc.open && !inc.rolled_back);
        assert_eq!(inc.firing(), ["5xx", "db-connections"], "db carries on");
        let handover = Escalation {
            alarm: "5xx".into(),
            since,
            from: EarlierPage::ServiceAlarm,
        };
        assert_eq!(inc.escalated.as_ref(), Some(&handover));
        // The regression's page first, then the service alarm's resolve.
        assert_eq!(
            inc.pending_in_order(),
            [
                AlarmNote::Page {
                    alarm: "5xx".into(),
                    since,
                    rollback: false
                },
                AlarmNote::Handover(handover.clone())
            ]
        );
        assert!(
            !inc.joined("5xx", since),
            "the escalating ALARM opens the regression"
        );
        // Its marker: the page and the handover pending, no previous (a service alarm).
        let rendered = inc.to_marker().render();
        assert!(
            rendered.starts_with(
                "deployment=ecs-svc/2 sent=db-connections@A1795683000 pending=5xx@E1795683780 state=open"
            ),
            "{rendered}"
        );
        let back = AlarmIncident::from_marker(&Marker::parse(&rendered).unwrap()).unwrap();
        assert_eq!(back, inc);

        // Recorded, not confirmed: the Lambda retry and a redrive deliver both notes.
        let never = || -> Attribution { panic!("not asked") };
        for request in ["r1", "redrive-3"] {
            assert_eq!(
                on_alarm_change(&five, Some(&inc), never, request, true),
                AlarmDecision::Deliver {
                    incident: inc.clone()
                }
            );
        }
        // The page confirmed, the handover not (its Publish failed): the ALARM again is
        // a duplicate, and the handover is all that is left to publish.
        let half = inc.confirmed([five_entry(since).as_str()]);
        assert!(matches!(
            on_alarm_change(&five, Some(&half), never, "r2", true),
            AlarmDecision::Duplicate(_)
        ));
        assert_eq!(
            half.pending_in_order(),
            [AlarmNote::Handover(handover.clone())]
        );
        assert!(
            !half.joined("5xx", since),
            "still the ALARM that opened the regression"
        );
        let rendered = half.to_marker().render();
        assert!(
            rendered.starts_with(
                "deployment=ecs-svc/2 sent=db-connections@A1795683000 pending=5xx@H1795683780 state=open"
            ),
            "{rendered}"
        );
        let back = AlarmIncident::from_marker(&Marker::parse(&rendered).unwrap()).unwrap();
        assert_eq!(back, half);
        // Both confirmed: the escalation is history, the marker carries no trace of it.
        let done = published(inc.clone());
        assert_eq!(done.escalated, None);
        assert!(done.pending.is_empty());
        let rendered = done.to_marker().render();
        assert!(
            rendered.starts_with(
                "deployment=ecs-svc/2 sent=5xx@A1795683780+db-connections@A1795683000 state=open"
            ),
            "{rendered}"
        );
        for request in ["r1", "r9"] {
            assert!(matches!(
                on_alarm_change(&five, Some(&done), never, request, true),
                AlarmDecision::Duplicate(_)
            ));
        }
        // The service alarm's own ALARM again: a duplicate, never a second page.
        assert!(matches!(
            on_alarm_change(
                &alarm("db-connections", AlarmState::Alarm, "08:50:00"),
                Some(&done),
                never,
                "r4",
                true
            ),
            AlarmDecision::Duplicate(_)
        ));
        // Another alarm of the window joins the regression.
        let joined = match on_alarm_change(
            &alarm("latency", AlarmState::Alarm, "09:04:00"),
            Some(&done),
            regression,
            "r5",
            true,
        ) {
            AlarmDecision::Join { incident } => incident,
            other => panic!("{other:?}"),
        };
        assert!(joined.joined("latency", t("09:04:00").timestamp()));
        // The OKs: the incident stays open while any of the three fires, then its one
        // resolve (the regression's; the service alarm's went out with the handover).
        let mut inc = published(joined);
        for (name, at) in [("db-connections", "09:10:00"), ("5xx", "09:12:00")] {
            inc = match on_alarm_change(
                &alarm(name, AlarmState::Ok, at),
                Some(&inc),
                never,
                "r6",
                true,
            ) {
                AlarmDecision::StillFiring { incident } => incident,
                other => panic!("{name}: {other:?}"),
            };
        }
        match on_alarm_change(
            &alarm("latency", AlarmState::Ok, "09:13:00"),
            Some(&inc),
            never,
            "r7",
            true,
        ) {
            AlarmDecision::Resolve { incident } => {
                assert_eq!(incident.deployment.as_deref(), Some("ecs-svc/2"));
                assert_eq!(incident.pending_in_order(), [AlarmNote::Resolve]);
            }
            other => panic!("{other:?}"),
        }
        // A late OK of db-connections, older than its ALARM: nothing.
        assert!(matches!(
            on_alarm_change(
                &alarm("db-connections", AlarmState::Ok, "08:40:00"),
                Some(&done),
                never,
                "r8",
                true
            ),
            AlarmDecision::Late(_)
        ));
    }

    fn five_entry(since: i64) -> String {
        AlarmMark {
            firing: true,
            since,
        }
        .entry("5xx")
    }

    #[test]
    fn what_does_not_escalate() {
        let open = service_alarm_open();
        // Another service alarm joins the service alarm.
        let lat = alarm("latency", AlarmState::Alarm, "09:40:00");
        for not_a_regression in [
            Attribution::NoWatch,
            Attribution::After(watch("ecs-svc/2", 49, Some(48), "09:00:00")),
        ] {
            match on_alarm_change(&lat, Some(&open), || not_a_regression, "r1", true) {
                AlarmDecision::Join { incident } => assert_eq!(incident.deployment, None),
                other => panic!("{other:?}"),
            }
        }
        // The regression of the same deployment, open: a second alarm joins it.
        let reg = published(opened(on_alarm_change(
            &alarm("5xx", AlarmState::Alarm, "09:03:00"),
            None,
            regression,
            "r1",
            true,
        )));
        assert!(matches!(
            on_alarm_change(
                &alarm("latency", AlarmState::Alarm, "09:04:00"),
                Some(&reg),
                regression,
                "r2",
                true
            ),
            AlarmDecision::Join { .. }
        ));
        // A service alarm while a regression is open joins the regression.
        match on_alarm_change(&lat, Some(&reg), || Attribution::NoWatch, "r3", true) {
            AlarmDecision::Join { incident } => {
                assert_eq!(incident.deployment.as_deref(), Some("ecs-svc/2"))
            }
            other => panic!("{other:?}"),
        }
        // Outside prod nothing paged, so there is no earlier page to resolve: the
        // regression takes over with its own notice only.
        let quiet = opened(on_alarm_change(
            &alarm("db-connections", AlarmState::Alarm, "08:50:00"),
            None,
            || Attribution::NoWatch,
            "r0",
            false,
        ));
        let (inc, _, _) = escalated(on_alarm_change(
            &alarm("5xx", AlarmState::Alarm, "09:03:00"),
            Some(&published(quiet)),
            regression,
            "r1",
            false,
        ));
        assert_eq!(inc.escalated, None);
        assert_eq!(
            inc.pending_in_order(),
            [AlarmNote::Page {
                alarm: "5xx".into(),
                since: t("09:03:00").timestamp(),
                rollback: false
            }]
        );
    }

    #[test]
    fn an_older_deployments_regression_escalates_to_the_newer_ones() {
        // Deployment 2's regression, rolled back, 5xx still in ALARM.
        let mut old = opened(on_alarm_change(
            &alarm("5xx", AlarmState::Alarm, "09:03:00"),
            None,
            regression,
            "r1",
            true,
        ));
        old.pending.insert(ROLLBACK.to_owned());
        old.rolled_back = true;
        let old = published(old);
        assert!(old.rolled_back);
        // latency fires in deployment 3's window.
        let lat = alarm("latency", AlarmState::Alarm, "09:25:00");
        let (inc, w, undelivered) = escalated(on_alarm_change(
            &lat,
            Some(&old),
            regression_of_3,
            "r2",
            true,
        ));
        assert_eq!(w.deployment, "ecs-svc/3");
        assert_eq!(undelivered, None);
        assert_eq!(inc.deployment.as_deref(), Some("ecs-svc/3"));
        assert!(
            !inc.rolled_back,
            "deployment 2's rollback is not deployment 3's: 3 decides its own"
        );
        assert_eq!(inc.firing(), ["5xx", "latency"]);
        assert_eq!(
            inc.escalated.as_ref().map(|e| &e.from),
            Some(&EarlierPage::Regression("ecs-svc/2".into()))
        );
        let rendered = inc.to_marker().render();
        assert!(
            rendered.starts_with("deployment=ecs-svc/3 previous=ecs-svc/2 sent=5xx@A1795683780 pending=latency@E1795685100 state=open"),
            "{rendered}"
        );
        let back = AlarmIncident::from_marker(&Marker::parse(&rendered).unwrap()).unwrap();
        assert_eq!(back, inc);
        // Once the handover is out, `previous` goes with it.
        let done = published(inc);
        assert_eq!(done.to_marker().previous, None);
        // A `previous` without a pending handover, or a confirmed handover left in
        // `sent`, means nothing.
        let mut m = done.to_marker();
        m.previous = Some("ecs-svc/2".into());
        m.sent.insert("latency@H1795685100".into());
        assert_eq!(AlarmIncident::from_marker(&m).unwrap(), done);
    }

    #[test]
    fn an_escalation_publishes_what_the_open_incident_left_pending_first() {
        // The service alarm's page was recorded and never published.
        let open = opened(on_alarm_change(
            &alarm("db-connections", AlarmState::Alarm, "08:50:00"),
            None,
            || Attribution::NoWatch,
            "r0",
            true,
        ));
        let five = alarm("5xx", AlarmState::Alarm, "09:03:00");
        let (inc, _, undelivered) =
            escalated(on_alarm_change(&five, Some(&open), regression, "r1", true));
        // It goes out first, under the service alarm's key; the regression's record
        // has only its own notes pending.
        let undelivered = undelivered.expect("the page still pending");
        assert_eq!(*undelivered, open);
        assert_eq!(undelivered.deployment, None);
        assert_eq!(inc.pending_in_order().len(), 2);
        assert!(inc.to_marker().sent.contains(
            &AlarmMark {
                firing: true,
                since: t("08:50:00").timestamp()
            }
            .entry("db-connections")
        ));
        // Neither the page nor the handover went out, and deployment 3's window opens
        // with another alarm: the regression's notes go out first (its handover under
        // the service alarm's key), then deployment 3 takes over from deployment 2.
        let lat = alarm("latency", AlarmState::Alarm, "09:25:00");
        let (next, _, undelivered) = escalated(on_alarm_change(
            &lat,
            Some(&inc),
            regression_of_3,
            "r2",
            true,
        ));
        let undelivered = undelivered.expect("the regression's notes");
        assert_eq!(
            undelivered.pending_in_order().last(),
            Some(&AlarmNote::Handover(Escalation {
                alarm: "5xx".into(),
                since: t("09:03:00").timestamp(),
                from: EarlierPage::ServiceAlarm
            }))
        );
        assert_eq!(
            next.escalated.map(|e| e.from),
            Some(EarlierPage::Regression("ecs-svc/2".into()))
        );
        // Everything goes OK before the handover went out: the page, the handover,
        // then the resolve, in that order.
        let mut i = inc.clone();
        for (name, at) in [("db-connections", "09:10:00"), ("5xx", "09:12:00")] {
            i = match on_alarm_change(
                &alarm(name, AlarmState::Ok, at),
                Some(&i),
                || panic!(),
                "r3",
                true,
            ) {
                AlarmDecision::StillFiring { incident } | AlarmDecision::Resolve { incident } => {
                    incident
                }
                other => panic!("{other:?}"),
            };
        }
        assert!(!i.open);
        let notes = i.pending_in_order();
        assert!(matches!(notes[0], AlarmNote::Page { .. }), "{notes:?}");
        assert!(matches!(notes[1], AlarmNote::Handover(_)), "{notes:?}");
        assert_eq!(notes[2], AlarmNote::Resolve);
        // A new incident after that, with all three still pending: they go out first.
        match on_alarm_change(
            &alarm("latency", AlarmState::Alarm, "11:00:00"),
            Some(&i),
            || Attribution::NoWatch,
            "r4",
            true,
        ) {
            AlarmDecision::Open { undelivered, .. } => {
                assert_eq!(undelivered.map(|u| u.pending_in_order().len()), Some(3))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_escalated_marker_fits_a_tag_with_every_alarm_firing() {
        let deployment = "ecs-svc/4231880795355584839";
        let mut alarms = BTreeMap::new();
        for (n, name) in ["5xx", "latency", "unhealthy-hosts", "db-connections"]
            .iter()
            .enumerate()
        {
            alarms.insert(
                name.to_string(),
                AlarmMark {
                    firing: true,
                    since: 1_795_683_780 + n as i64,
                },
            );
        }
        let handover = Escalation {
            alarm: "unhealthy-hosts".into(),
            since: 1_795_683_782,
            from: EarlierPage::Regression("ecs-svc/1231880795355584839".into()),
        };
        let inc = AlarmIncident {
            deployment: Some(deployment.into()),
            pending: BTreeSet::from([
                alarms["unhealthy-hosts"].entry("unhealthy-hosts"),
                ESCALATED.to_owned(),
                ROLLBACK.to_owned(),
            ]),
            alarms,
            rolled_back: true,
            escalated: Some(handover),
            open: true,
            at: t("09:03:00.123"),
            request: "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into(),
        };
        let m = inc.to_marker();
        assert!(m.value_len() <= tags::MAX_VALUE, "{}", m.value_len());
        assert!(
            inc.request.starts_with(&m.request) && m.request.len() >= 8,
            "only the request id gives way: {}",
            m.request
        );
        let back = AlarmIncident::from_marker(&Marker::parse(&m.render()).unwrap()).unwrap();
        assert_eq!(
            back,
            AlarmIncident {
                request: m.request.clone(),
                ..inc
            }
        );
    }

    #[test]
    fn the_runs_check_compares_the_revision_and_looks_for_a_rollout() {
        let w = watch("ecs-svc/2", 49, Some(48), "09:00:00");
        assert!(runs(&service("ecs-svc/2", 49, &[]), &w));
        // The id ECS lists may differ from the event's; the revision decides.
        assert!(runs(&service("ecs-svc/other", 49, &[]), &w));
        assert!(!runs(&service("ecs-svc/3", 48, &[]), &w));
        // The same revision deployed again, still rolling out.
        assert!(!runs(&service("ecs-svc/3", 49, &[("ecs-svc/2", 49)]), &w));
        assert_eq!(family(&rev(49)).as_deref(), Some("menotime-backend-prod"));
    }
}
