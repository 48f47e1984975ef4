//! deploy-notifier's memory and decisions: which events page, which resolve, and which
//! are duplicates or late, as pure functions over the event, the service and a marker.
//!
//! The marker is a tag on the service (docs/reference.md §3: all state is kept there), one per
//! incident kind: `menotime:deploy-incident` for a failed deployment and
//! `menotime:service-incident` for an impaired service. It records what was sent for
//! the incident, what was recorded but not yet confirmed as published, whether the
//! incident is open, the time of its last change, and the Lambda request that wrote it:
//!
//! `deployment=ecs-svc/42 sent=failed pending=rollback state=open at=2025-06-02T18:01:00Z request=5f0c...`
//!
//! Two phases, so that a page is never lost and never doubled:
//!
//! 1. **Record**: the notification is written `pending` (with the freeze, in the same
//!    TagResource call) *before* it is published.
//! 2. **Confirm**: once Publish succeeded it moves to `sent`.
//!
//! Any delivery that finds its notification `pending` publishes it and confirms it:
//! a Lambda retry (same request id), a redrive from the failure queue (a new request
//! id), or, for impairments and steady states, the next repeat ECS sends. Reserved
//! concurrency 1 makes a pending entry of another request mean "that attempt died".
//! A `sent` entry makes every other delivery a duplicate. A resolve first publishes
//! the incident's pages still pending, so no resolve ever precedes its page and no
//! page arrives after its resolve.

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, Utc};

use super::ecs_event::{DeploymentChange, DeploymentEvent, ServiceEvent};
use super::service::ServiceState;
use crate::tags;

/// The entry of a resolve in a marker's `sent` and `pending`.
pub const RESOLVE: &str = "resolve";

/// One incident's memory, kept in a tag value (letters, digits, spaces, `+ - = . _ : / @`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// The deployment a deployment incident is about (none for service incidents).
    pub deployment: Option<String>,
    /// The deployment of the incident this one replaced, so that a late copy of its
    /// events (even one with the same time as this incident's) never reopens it.
    pub previous: Option<String>,
    /// What was published: deployment changes (`failed`, `rollback`) or service event
    /// names, and `resolve`.
    pub sent: BTreeSet<String>,
    /// What was recorded to be published and not yet confirmed as published.
    pub pending: BTreeSet<String>,
    pub open: bool,
    /// The time of the incident's last change (the source event's own time).
    pub at: DateTime<Utc>,
    /// The Lambda request that wrote the marker.
    pub request: String,
}

fn joined(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join("+")
}

fn split(v: &str) -> BTreeSet<String> {
    v.split('+')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Marker {
    /// The tag value (cut at 256 characters, if it ever were longer: see [`Marker::value_len`]).
    pub fn render(&self) -> String {
        tags::value(&self.unbounded())
    }

    /// The length of the value before any cut: a marker must keep it within
    /// [`tags::MAX_VALUE`] to be read back whole.
    pub fn value_len(&self) -> usize {
        self.unbounded().chars().count()
    }

    fn unbounded(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = &self.deployment {
            parts.push(format!("deployment={d}"));
        }
        if let Some(d) = &self.previous {
            parts.push(format!("previous={d}"));
        }
        parts.push(format!("sent={}", joined(&self.sent)));
        if !self.pending.is_empty() {
            parts.push(format!("pending={}", joined(&self.pending)));
        }
        parts.push(format!(
            "state={}",
            if self.open { "open" } else { "resolved" }
        ));
        parts.push(format!(
            "at={}",
            self.at.to_rfc3339_opts(SecondsFormat::Millis, true)
        ));
        parts.push(format!("request={}", self.request));
        parts.join(" ")
    }

    /// Reads a marker back; `Err` says what is wrong with a value someone edited.
    /// A marker without `pending` has everything it lists sent.
    pub fn parse(s: &str) -> Result<Marker, String> {
        let (mut deployment, mut previous, mut sent, mut pending) = (None, None, None, None);
        let (mut open, mut at, mut request) = (None, None, None);
        for part in s.split_whitespace() {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not key=value"))?;
            match k {
                "deployment" => deployment = Some(v.to_owned()),
                "previous" => previous = Some(v.to_owned()),
                "sent" => sent = Some(split(v)),
                "pending" => pending = Some(split(v)),
                "state" => {
                    open = Some(match v {
                        "open" => true,
                        "resolved" => false,
                        _ => return Err(format!("state {v:?} is neither open nor resolved")),
                    })
                }
                "at" => {
                    at = Some(
                        DateTime::parse_from_rfc3339(v)
                            .map_err(|e| format!("at {v:?}: {e}"))?
                            .with_timezone(&Utc),
                    )
                }
                "request" => request = Some(v.to_owned()),
                _ => return Err(format!("unknown key {k:?}")),
            }
        }
        Ok(Marker {
            deployment,
            previous,
            sent: sent.ok_or("no sent=")?,
            pending: pending.unwrap_or_default(),
            open: open.ok_or("no state=")?,
            at: at.ok_or("no at=")?,
            request: request.ok_or("no request=")?,
        })
    }

    /// The marker once `published` went out: moved from pending to sent.
    pub fn confirmed<'a>(&self, published: impl IntoIterator<Item = &'a str>) -> Marker {
        let mut m = self.clone();
        for kind in published {
            m.pending.remove(kind);
            m.sent.insert(kind.to_owned());
        }
        m
    }

    /// The incident resolved at `at`: the resolve is recorded pending, after the pages
    /// still pending (the handler publishes them first).
    fn resolving(&self, at: DateTime<Utc>, request: &str, with_resolve: bool) -> Marker {
        let mut pending = self.pending.clone();
        if with_resolve {
            pending.insert(RESOLVE.to_owned());
        }
        Marker {
            open: false,
            pending,
            at: at.max(self.at),
            request: request.to_owned(),
            ..self.clone()
        }
    }

    /// What is pending, pages first, the resolve last: the order of publication.
    pub fn pending_in_order(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .pending
            .iter()
            .filter(|k| k.as_str() != RESOLVE)
            .cloned()
            .collect();
        if self.pending.contains(RESOLVE) {
            v.push(RESOLVE.to_owned());
        }
        v
    }

    /// The same marker with nothing pending, if it had something pending.
    fn undelivered(&self) -> Option<Marker> {
        (!self.pending.is_empty()).then(|| self.clone())
    }
}

/// A failed or rolled-back deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alarm {
    /// Record `marker` (this page pending; the freeze too, when set) in one
    /// TagResource, publish, then confirm. `undelivered` is the marker this one replaces
    /// when it still had notifications pending: they are published first.
    Page {
        marker: Marker,
        freeze: Option<String>,
        undelivered: Option<Marker>,
    },
    /// This page was recorded and never confirmed as published: an earlier attempt (a
    /// Lambda retry, or a redrive under a new request id) died before or while
    /// publishing. Publish it, then confirm; write nothing else.
    Deliver {
        marker: Marker,
    },
    /// Already published for this incident.
    Duplicate,
    Late(String),
}

/// Decides what a SERVICE_DEPLOYMENT_FAILED or a rollback does.
pub fn on_alarm(
    ev: &DeploymentEvent,
    service: &ServiceState,
    marker: Option<&Marker>,
    request: &str,
    freeze_on_failure: bool,
) -> Alarm {
    let kind = ev.change.name();
    let request = tags::value(request);
    let same = marker.filter(|m| m.deployment.as_deref() == Some(ev.deployment_id.as_str()));
    // Recorded, never confirmed: published now, even if ECS has moved on meanwhile (the
    // rollback finished before the retry or the redrive).
    if let Some(m) = same.filter(|m| m.pending.contains(kind)) {
        return Alarm::Deliver { marker: m.clone() };
    }
    if matches!(ev.change, DeploymentChange::Rollback { .. }) {
        match service.deployment(&ev.deployment_id) {
            Some(d) if d.rollout_state.as_deref() == Some("COMPLETED") => {
                return Alarm::Late(format!(
                    "ECS reports deployment {} COMPLETED; this rollback event is older than that",
                    ev.deployment_id
                ))
            }
            None => {
                return Alarm::Late(format!(
                    "deployment {} is no longer listed by ECS; the rollback is over",
                    ev.deployment_id
                ))
            }
            Some(_) => {}
        }
    }
    let (marker, undelivered) = match same {
        Some(m) if m.sent.contains(kind) => return Alarm::Duplicate,
        Some(m) if !m.open && ev.at <= m.at => {
            return Alarm::Late(format!(
                "the incident of deployment {} was resolved at {}, after this event",
                ev.deployment_id, m.at
            ));
        }
        Some(m) => {
            let mut pending = m.pending.clone();
            // Reopened: a resolve not yet published is superseded by this page.
            pending.remove(RESOLVE);
            pending.insert(kind.to_owned());
            let m = Marker {
                pending,
                open: true,
                at: ev.at.max(m.at),
                request,
                ..m.clone()
            };
            (m, None)
        }
        None => {
            if let Some(m) = marker.filter(|m| ev.at < m.at) {
                return Alarm::Late(format!(
                    "this event about deployment {} is older than the incident of deployment {} ({})",
                    ev.deployment_id,
                    m.deployment.as_deref().unwrap_or("?"),
                    m.at
                ));
            }
            if let Some(m) =
                marker.filter(|m| m.previous.as_deref() == Some(ev.deployment_id.as_str()))
            {
                return Alarm::Late(format!(
                    "the incident of deployment {} was followed by the incident of deployment {}",
                    ev.deployment_id,
                    m.deployment.as_deref().unwrap_or("?")
                ));
            }
            let m = Marker {
                deployment: Some(ev.deployment_id.clone()),
                previous: marker.and_then(|m| m.deployment.clone()),
                sent: BTreeSet::new(),
                pending: BTreeSet::from([kind.to_owned()]),
                open: true,
                at: ev.at,
                request,
            };
            (m, marker.and_then(Marker::undelivered))
        }
    };
    // Freeze on the first event of an incident only: a late second event must not
    // re-freeze a service an operator has already reviewed and unfrozen.
    let freeze = (freeze_on_failure && same.is_none() && service.tags.freeze.is_none())
        .then(|| freeze_value(ev));
    Alarm::Page {
        marker,
        freeze,
        undelivered,
    }
}

/// The revision to roll back to after `failed` failed: the one the circuit breaker
/// rolls back to, else another live deployment's, else what the service runs now if it
/// differs; `None` when ECS shows nothing else (then the manual's
/// `list-task-definitions` finds it).
pub fn previous_revision(
    service: &ServiceState,
    failed: Option<&str>,
    rollback_to: Option<&str>,
) -> Option<String> {
    let other = |td: &&str| Some(*td) != failed;
    let runs = |id: &str| service.deployment_task_definition(id);
    rollback_to
        .and_then(runs)
        .filter(other)
        .or_else(|| {
            let mut live: Vec<_> = service.deployments.iter().collect();
            live.sort_by_key(|d| d.status != "PRIMARY");
            live.iter().filter_map(|d| runs(&d.id)).find(other)
        })
        .or_else(|| Some(service.task_definition.as_str()).filter(|td| !td.is_empty() && other(td)))
        .map(str::to_owned)
}

/// The freeze tag's value: which deployment failed, when, and why.
pub fn freeze_value(ev: &DeploymentEvent) -> String {
    tags::value(&format!(
        "deployment {} {} at {}: {}",
        ev.deployment_id,
        ev.change.name(),
        ev.at.to_rfc3339_opts(SecondsFormat::Secs, true),
        ev.reason
    ))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Record `marker` (resolved; the resolve pending after any page still pending),
    /// publish those pages, the resolve and `deploy.completed`, then confirm.
    Resolve {
        marker: Marker,
    },
    /// A resolve (and perhaps pages) recorded and never confirmed as published:
    /// publish them and `deploy.completed`, then confirm.
    Deliver {
        marker: Marker,
    },
    /// `deploy.completed` to the team only.
    Info,
    Late(String),
}

/// Decides what a SERVICE_DEPLOYMENT_COMPLETED does (docs/reference.md §4: a resolve when a
/// page is open). The service is running a completed deployment again, so the page
/// closes even if deploys stay frozen: the freeze is scan-gate's gate until a human
/// has reviewed, not the page's. `pages` is false outside prod, where nothing ever
/// pages and so nothing is resolved.
pub fn on_completed(
    ev: &DeploymentEvent,
    marker: Option<&Marker>,
    request: &str,
    pages: bool,
) -> Completion {
    let Some(m) = marker else {
        return Completion::Info;
    };
    if !m.open && !m.pending.is_empty() {
        return Completion::Deliver { marker: m.clone() };
    }
    if ev.at <= m.at {
        return Completion::Late(format!(
            "this completion ({}) is not newer than the incident's last change ({})",
            ev.at, m.at
        ));
    }
    if !m.open || !pages {
        return Completion::Info;
    }
    Completion::Resolve {
        marker: m.resolving(ev.at, &tags::value(request), true),
    }
}

/// What a plain SERVICE_DEPLOYMENT_IN_PROGRESS does: tell the team, unless ECS already
/// shows the deployment finished (a late event).
pub fn in_progress_is_late(ev: &DeploymentEvent, service: &ServiceState) -> Option<String> {
    match service.deployment(&ev.deployment_id) {
        None => Some(format!(
            "deployment {} is no longer listed by ECS",
            ev.deployment_id
        )),
        Some(d) => match d.rollout_state.as_deref() {
            Some(s @ ("COMPLETED" | "FAILED")) => Some(format!(
                "ECS reports deployment {} {s}; this event is older than that",
                ev.deployment_id
            )),
            _ => None,
        },
    }
}

/// An impaired service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Impairment {
    /// Record `marker` (this event name pending), publish what `undelivered` still
    /// holds (an earlier incident's resolve), then the page, then confirm.
    Page {
        marker: Marker,
        undelivered: Option<Marker>,
    },
    /// Recorded, never confirmed as published: publish it, then confirm. ECS repeats
    /// an impairment while it lasts, so the repeat delivers what an attempt left.
    Deliver {
        marker: Marker,
    },
    Duplicate,
    Late(String),
}

/// Decides what an impairment event does: page once per open incident and event name;
/// the repeats ECS sends while the service stays impaired are duplicates.
pub fn on_impaired(ev: &ServiceEvent, marker: Option<&Marker>, request: &str) -> Impairment {
    let request = tags::value(request);
    let name = &ev.event_name;
    match marker {
        Some(m) if m.open && m.pending.contains(name) => Impairment::Deliver { marker: m.clone() },
        Some(m) if m.open && m.sent.contains(name) => Impairment::Duplicate,
        Some(m) if !m.open && ev.at <= m.at => Impairment::Late(format!(
            "the service recovered at {}, after this event",
            m.at
        )),
        Some(m) if m.open => {
            let mut pending = m.pending.clone();
            pending.insert(name.clone());
            Impairment::Page {
                marker: Marker {
                    pending,
                    at: ev.at.max(m.at),
                    request,
                    ..m.clone()
                },
                undelivered: None,
            }
        }
        _ => Impairment::Page {
            marker: Marker {
                deployment: None,
                previous: None,
                sent: BTreeSet::new(),
                pending: BTreeSet::from([name.clone()]),
                open: true,
                at: ev.at,
                request,
            },
            undelivered: marker.and_then(Marker::undelivered),
        },
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Record `marker` (resolved; outside prod without a resolve, since nothing paged),
    /// publish what it has pending (pages first), then confirm.
    Resolve { marker: Marker },
    /// A resolve recorded and never confirmed as published: publish it, then confirm.
    Deliver { marker: Marker },
    /// Nothing was open: steady-state events repeat and must never spam.
    Quiet(String),
}

/// Decides what a steady state does. `pages` is false outside prod: the impairment is
/// closed, but there is no page to resolve.
pub fn on_steady(
    ev: &ServiceEvent,
    marker: Option<&Marker>,
    request: &str,
    pages: bool,
) -> Recovery {
    let request = tags::value(request);
    match marker {
        Some(m) if !m.open && !m.pending.is_empty() => Recovery::Deliver { marker: m.clone() },
        Some(m) if m.open && ev.at > m.at => Recovery::Resolve {
            marker: m.resolving(ev.at, &request, pages),
        },
        Some(m) if m.open => Recovery::Quiet(format!(
            "this steady state ({}) is older than the impairment ({})",
            ev.at, m.at
        )),
        _ => Recovery::Quiet("no impairment is open".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ecs_event::ServiceChange;
    use crate::domain::scan::Envelope;
    use crate::domain::service::{DeploymentState, ServiceTags};
    use std::collections::BTreeMap;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2025-06-02T{s}Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn env(id: &str, at: &str) -> Envelope {
        Envelope {
            id: id.into(),
            time: t(at),
            source: "aws.ecs".into(),
            detail_type: "x".into(),
        }
    }

    fn dep(change: DeploymentChange, id: &str, at: &str) -> DeploymentEvent {
        DeploymentEvent {
            envelope: env("e", at),
            change,
            event_name: "x".into(),
            deployment_id: id.into(),
            reason: "ECS deployment circuit breaker: task failed to start.".into(),
            at: t(at),
        }
    }

    fn failed(id: &str, at: &str) -> DeploymentEvent {
        dep(DeploymentChange::Failed, id, at)
    }

    fn rollback(id: &str, at: &str) -> DeploymentEvent {
        dep(DeploymentChange::Rollback { to: None }, id, at)
    }

    fn svc(deployments: &[(&str, &str)], frozen: bool) -> ServiceState {
        let mut tags = BTreeMap::new();
        if frozen {
            tags.insert(tags::DEPLOY_FREEZE.to_owned(), "x".to_owned());
        }
        ServiceState {
            deployments: deployments
                .iter()
                .map(|(id, rollout)| DeploymentState {
                    id: id.to_string(),
                    rollout_state: Some(rollout.to_string()),
                    ..Default::default()
                })
                .collect(),
            tags: ServiceTags::read(tags),
            ..Default::default()
        }
    }

    fn page(a: Alarm) -> (Marker, Option<String>) {
        match a {
            Alarm::Page { marker, freeze, .. } => (marker, freeze),
            other => panic!("expected a page, got {other:?}"),
        }
    }

    /// The marker once everything it has pending went out.
    fn sent(m: Marker) -> Marker {
        let all: Vec<String> = m.pending.iter().cloned().collect();
        m.confirmed(all.iter().map(String::as_str))
    }

    #[test]
    fn marker_round_trips_and_fits_a_tag() {
        let m = Marker {
            deployment: Some("ecs-svc/4231880795355584839".into()),
            previous: None,
            sent: BTreeSet::from(["failed".into()]),
            pending: BTreeSet::from(["rollback".into()]),
            open: true,
            at: t("18:01:00.114"),
            request: "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into(),
        };
        let s = m.render();
        assert_eq!(s, "deployment=ecs-svc/4231880795355584839 sent=failed pending=rollback state=open at=2025-06-02T18:01:00.114Z request=8476a536-e9f4-11e8-9739-2dfe598c3fcd");
        // A marker written before pending existed: everything it lists was sent.
        let old = Marker::parse(
            "deployment=ecs-svc/1 sent=failed state=open at=2025-06-02T18:01:00Z request=r",
        )
        .unwrap();
        assert!(old.pending.is_empty() && old.sent.contains("failed"));
        assert_eq!(Marker::parse(&s).unwrap(), m);
        assert_eq!(tags::value(&s), s, "only characters ECS tags allow");
        let svc_marker = Marker {
            deployment: None,
            sent: crate::domain::ecs_event::IMPAIRMENTS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            pending: BTreeSet::from([RESOLVE.to_owned()]),
            open: false,
            ..m
        };
        let s = svc_marker.render();
        assert!(s.len() <= 256, "{}", s.len());
        assert_eq!(Marker::parse(&s).unwrap(), svc_marker);
        for bad in [
            "",
            "sent=a state=open at=2025-06-02T18:00:00Z",
            "sent=a state=maybe at=2025-06-02T18:00:00Z request=r",
            "sent=a state=open at=yesterday request=r",
            "sent=a state=open at=2025-06-02T18:00:00Z request=r colour=red",
            "hello",
        ] {
            assert!(Marker::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn first_failure_pages_and_freezes() {
        let s = svc(&[("ecs-svc/1", "FAILED")], false);
        let (m, freeze) = page(on_alarm(
            &failed("ecs-svc/1", "18:01:00"),
            &s,
            None,
            "r1",
            true,
        ));
        assert_eq!(m.deployment.as_deref(), Some("ecs-svc/1"));
        assert!(m.open && m.pending.contains("failed") && m.sent.is_empty());
        assert_eq!(m.request, "r1");
        let freeze = freeze.unwrap();
        assert!(freeze.starts_with("deployment ecs-svc/1 failed at 2025-06-02T18:01:00Z: ECS deployment circuit breaker"), "{freeze}");
        // Without FREEZE_ON_FAILURE, or already frozen by someone: no freeze write.
        assert_eq!(
            page(on_alarm(
                &failed("ecs-svc/1", "18:01:00"),
                &s,
                None,
                "r1",
                false
            ))
            .1,
            None
        );
        let frozen = svc(&[("ecs-svc/1", "FAILED")], true);
        assert_eq!(
            page(on_alarm(
                &failed("ecs-svc/1", "18:01:00"),
                &frozen,
                None,
                "r1",
                true
            ))
            .1,
            None
        );
    }

    #[test]
    fn a_pending_page_is_delivered_by_any_delivery_and_a_sent_one_by_none() {
        let s = svc(&[("ecs-svc/1", "FAILED")], true);
        let ev = failed("ecs-svc/1", "18:01:00");
        let (m, _) = page(on_alarm(&ev, &s, None, "r1", true));
        assert!(m.pending.contains("failed") && m.sent.is_empty());
        // Recorded, not confirmed: the Lambda retry and a redrive both deliver it.
        for request in ["r1", "redrive-7"] {
            assert_eq!(
                on_alarm(&ev, &s, Some(&m), request, true),
                Alarm::Deliver { marker: m.clone() }
            );
        }
        // Confirmed: every other delivery is a duplicate, the retry included.
        let m = sent(m);
        for request in ["r1", "r2"] {
            assert_eq!(on_alarm(&ev, &s, Some(&m), request, true), Alarm::Duplicate);
        }
    }

    #[test]
    fn rollback_joins_the_failure_incident_without_refreezing() {
        let s = svc(
            &[("ecs-svc/1", "FAILED"), ("ecs-svc/0", "IN_PROGRESS")],
            false,
        );
        let (m, freeze) = page(on_alarm(
            &failed("ecs-svc/1", "18:01:00"),
            &s,
            None,
            "r1",
            true,
        ));
        assert!(freeze.is_some());
        // The operator reviewed and lifted the freeze before the rollback event arrived.
        let (m2, freeze2) = page(on_alarm(
            &rollback("ecs-svc/1", "18:01:01"),
            &s,
            Some(&m),
            "r2",
            true,
        ));
        assert_eq!(freeze2, None);
        assert_eq!(
            m2.pending,
            BTreeSet::from(["failed".to_owned(), "rollback".to_owned()]),
            "the failure's page, not confirmed yet, stays pending beside the rollback's"
        );
        assert_eq!(m2.at, t("18:01:01"));
        // The rollback first, then the failure: one freeze, one incident.
        let (m, freeze) = page(on_alarm(
            &rollback("ecs-svc/1", "18:01:01"),
            &s,
            None,
            "r1",
            true,
        ));
        assert!(freeze.is_some());
        let (m2, freeze2) = page(on_alarm(
            &failed("ecs-svc/1", "18:01:00"),
            &s,
            Some(&m),
            "r2",
            true,
        ));
        assert_eq!(freeze2, None);
        assert_eq!(m2.at, t("18:01:01"), "the incident's time never goes back");
    }

    #[test]
    fn a_late_rollback_does_not_page() {
        let ev = rollback("ecs-svc/1", "18:01:00");
        let done = svc(&[("ecs-svc/1", "COMPLETED")], false);
        assert!(matches!(
            on_alarm(&ev, &done, None, "r", true),
            Alarm::Late(_)
        ));
        let gone = svc(&[("ecs-svc/2", "COMPLETED")], false);
        assert!(matches!(
            on_alarm(&ev, &gone, None, "r", true),
            Alarm::Late(_)
        ));
        // A failure is always news, even for a deployment ECS no longer lists.
        assert!(matches!(
            on_alarm(&failed("ecs-svc/1", "18:01:00"), &gone, None, "r", true),
            Alarm::Page { .. }
        ));
    }

    #[test]
    fn late_failures_after_a_resolution_or_a_newer_incident_do_not_page() {
        let s = svc(&[("ecs-svc/1", "FAILED")], false);
        let (m, _) = page(on_alarm(
            &failed("ecs-svc/1", "18:01:00"),
            &s,
            None,
            "r1",
            true,
        ));
        let m = sent(m);
        let resolved = sent(m.resolving(t("18:30:00"), "r9", true));
        // A rollback event of the same deployment, delivered after the resolution.
        assert!(matches!(
            on_alarm(
                &rollback("ecs-svc/1", "18:01:01"),
                &s,
                Some(&resolved),
                "r3",
                true
            ),
            Alarm::Late(_)
        ));
        // A failure of an older deployment, delivered after a newer incident opened.
        assert!(matches!(
            on_alarm(&failed("ecs-svc/0", "17:00:00"), &s, Some(&m), "r4", true),
            Alarm::Late(_)
        ));
        // A newer failure of another deployment opens a new incident (and freezes).
        let (m2, freeze) = page(on_alarm(
            &failed("ecs-svc/2", "19:00:00"),
            &s,
            Some(&resolved),
            "r5",
            true,
        ));
        assert_eq!(m2.deployment.as_deref(), Some("ecs-svc/2"));
        assert_eq!(m2.pending, BTreeSet::from(["failed".to_owned()]));
        assert!(m2.sent.is_empty());
        assert!(freeze.is_some());
        // The incident it replaces still had a page pending: it goes out first.
        let pending_old = m.resolving(t("18:30:00"), "r9", true);
        match on_alarm(
            &failed("ecs-svc/2", "19:00:00"),
            &s,
            Some(&pending_old),
            "r6",
            true,
        ) {
            Alarm::Page { undelivered, .. } => assert_eq!(undelivered, Some(pending_old)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn completion_resolves_an_open_page_once_frozen_or_not() {
        let completed = dep(DeploymentChange::Completed, "ecs-svc/2", "19:00:00");
        let s = svc(&[("ecs-svc/1", "FAILED")], false);
        assert_eq!(on_completed(&completed, None, "r", true), Completion::Info);
        let (recorded, _) = page(on_alarm(
            &failed("ecs-svc/1", "18:01:00"),
            &s,
            None,
            "r1",
            true,
        ));
        // The page was never confirmed: the resolve publishes it first.
        match on_completed(&completed, Some(&recorded), "r2", true) {
            Completion::Resolve { marker } => {
                assert_eq!(marker.pending_in_order(), ["failed", RESOLVE]);
            }
            other => panic!("{other:?}"),
        }
        let open = sent(recorded);
        let resolved = match on_completed(&completed, Some(&open), "r2", true) {
            Completion::Resolve { marker } => marker,
            other => panic!("{other:?}"),
        };
        assert!(!resolved.open);
        assert_eq!(resolved.pending_in_order(), [RESOLVE]);
        assert_eq!(resolved.at, t("19:00:00"));
        assert_eq!(resolved.deployment, open.deployment);
        // Not yet confirmed: any delivery (the retry, a redrive) publishes the resolve.
        for request in ["r2", "r3"] {
            assert_eq!(
                on_completed(&completed, Some(&resolved), request, true),
                Completion::Deliver {
                    marker: resolved.clone()
                }
            );
        }
        // Confirmed: another delivery is late.
        let resolved = sent(resolved);
        assert!(matches!(
            on_completed(&completed, Some(&resolved), "r3", true),
            Completion::Late(_)
        ));
        // A later completion with nothing open: information only.
        let later = dep(DeploymentChange::Completed, "ecs-svc/3", "20:00:00");
        assert_eq!(
            on_completed(&later, Some(&resolved), "r4", true),
            Completion::Info
        );
        // A completion older than the failure does not resolve it.
        let older = dep(DeploymentChange::Completed, "ecs-svc/0", "17:00:00");
        assert!(matches!(
            on_completed(&older, Some(&open), "r5", true),
            Completion::Late(_)
        ));
        // Outside prod nothing pages, so nothing resolves.
        assert_eq!(
            on_completed(&completed, Some(&open), "r6", false),
            Completion::Info
        );
    }

    #[test]
    fn a_retried_rollback_page_is_resent_even_after_ecs_moved_on() {
        let listed = svc(&[("ecs-svc/1", "FAILED")], false);
        let ev = rollback("ecs-svc/1", "18:01:00");
        let (m, _) = page(on_alarm(&ev, &listed, None, "r1", true));
        let gone = svc(&[("ecs-svc/0", "COMPLETED")], false);
        for request in ["r1", "r2"] {
            assert!(matches!(
                on_alarm(&ev, &gone, Some(&m), request, true),
                Alarm::Deliver { .. }
            ));
        }
        assert!(matches!(
            on_alarm(&ev, &gone, Some(&sent(m)), "r2", true),
            Alarm::Duplicate | Alarm::Late(_)
        ));
    }

    #[test]
    fn the_previous_revision_comes_from_what_ecs_shows() {
        let td = |n: u32| {
            format!("arn:aws:ecs:us-west-1:123456789012:task-definition/menotime-backend-prod:{n}")
        };
        let d = |id: &str, status: &str, n: u32| DeploymentState {
            id: id.into(),
            status: status.into(),
            rollout_state: None,
            task_definition: td(n),
            ..Default::default()
        };
        // During a circuit-breaker rollback: the rollback's target.
        let s = ServiceState {
            task_definition: td(47),
            deployments: vec![
                d("ecs-svc/2", "PRIMARY", 47),
                d("ecs-svc/1", "ACTIVE", 48),
                d("ecs-svc/0", "ACTIVE", 46),
            ],
            ..Default::default()
        };
        assert_eq!(
            previous_revision(&s, Some(&td(48)), Some("ecs-svc/0")),
            Some(td(46))
        );
        // No target named: the PRIMARY one that is not the failed revision.
        assert_eq!(previous_revision(&s, Some(&td(48)), None), Some(td(47)));
        // Only the failed deployment listed: what the service runs, if different.
        let s = ServiceState {
            task_definition: td(47),
            deployments: vec![d("ecs-svc/1", "PRIMARY", 48)],
            ..Default::default()
        };
        assert_eq!(previous_revision(&s, Some(&td(48)), None), Some(td(47)));
        let s = ServiceState {
            task_definition: td(48),
            deployments: vec![d("ecs-svc/1", "PRIMARY", 48)],
            ..Default::default()
        };
        assert_eq!(previous_revision(&s, Some(&td(48)), None), None);
    }

    #[test]
    fn in_progress_is_late_once_ecs_shows_the_end() {
        let ev = dep(DeploymentChange::InProgress, "ecs-svc/1", "18:00:00");
        assert_eq!(
            in_progress_is_late(&ev, &svc(&[("ecs-svc/1", "IN_PROGRESS")], false)),
            None
        );
        for state in ["COMPLETED", "FAILED"] {
            assert!(in_progress_is_late(&ev, &svc(&[("ecs-svc/1", state)], false)).is_some());
        }
        assert!(in_progress_is_late(&ev, &svc(&[], false)).is_some());
    }

    fn sev(name: &str, at: &str) -> ServiceEvent {
        ServiceEvent {
            envelope: env("s", at),
            change: if name == "SERVICE_STEADY_STATE" {
                ServiceChange::SteadyState
            } else {
                ServiceChange::Impaired
            },
            event_name: name.into(),
            reason: None,
            at: t(at),
        }
    }

    #[test]
    fn impairment_pages_once_and_steady_state_resolves_once() {
        let imp = sev("SERVICE_TASK_START_IMPAIRED", "17:58:00");
        let recorded = match on_impaired(&imp, None, "r1") {
            Impairment::Page { marker, .. } => marker,
            other => panic!("{other:?}"),
        };
        // Recorded, not confirmed: the retry, a redrive or ECS's next repeat delivers it.
        let again = sev("SERVICE_TASK_START_IMPAIRED", "18:03:00");
        for (e, request) in [(&imp, "r1"), (&imp, "r9"), (&again, "r2")] {
            assert_eq!(
                on_impaired(e, Some(&recorded), request),
                Impairment::Deliver {
                    marker: recorded.clone()
                }
            );
        }
        // Confirmed: ECS repeats the impairment while it lasts, never a second page.
        let m = sent(recorded);
        assert_eq!(on_impaired(&again, Some(&m), "r2"), Impairment::Duplicate);
        assert_eq!(on_impaired(&imp, Some(&m), "r1"), Impairment::Duplicate);
        // Another kind of impairment updates the same incident.
        let other = sev("SERVICE_TASK_PLACEMENT_FAILURE", "18:04:00");
        let m2 = match on_impaired(&other, Some(&m), "r3") {
            Impairment::Page { marker, .. } => sent(marker),
            o => panic!("{o:?}"),
        };
        assert_eq!(m2.sent.len(), 2);
        // A steady state older than the impairment is late; a newer one resolves.
        assert!(matches!(
            on_steady(
                &sev("SERVICE_STEADY_STATE", "17:50:00"),
                Some(&m2),
                "r4",
                true
            ),
            Recovery::Quiet(_)
        ));
        let resolving = match on_steady(
            &sev("SERVICE_STEADY_STATE", "18:10:00"),
            Some(&m2),
            "r5",
            true,
        ) {
            Recovery::Resolve { marker } => marker,
            o => panic!("{o:?}"),
        };
        assert_eq!(resolving.pending_in_order(), [RESOLVE]);
        // Until it is confirmed, the next steady state (ECS repeats them) delivers it.
        assert_eq!(
            on_steady(
                &sev("SERVICE_STEADY_STATE", "18:20:00"),
                Some(&resolving),
                "rx",
                true
            ),
            Recovery::Deliver {
                marker: resolving.clone()
            }
        );
        let resolved = sent(resolving);
        for at in ["18:20:00", "18:30:00", "18:40:00"] {
            assert!(matches!(
                on_steady(
                    &sev("SERVICE_STEADY_STATE", at),
                    Some(&resolved),
                    "rx",
                    true
                ),
                Recovery::Quiet(_)
            ));
        }
        assert!(matches!(
            on_steady(&sev("SERVICE_STEADY_STATE", "18:10:00"), None, "r6", true),
            Recovery::Quiet(_)
        ));
        // A late impairment from before the recovery does not reopen it; a new one does.
        assert!(matches!(
            on_impaired(&imp, Some(&resolved), "r7"),
            Impairment::Late(_)
        ));
        assert!(matches!(
            on_impaired(
                &sev("SERVICE_TASK_START_IMPAIRED", "19:00:00"),
                Some(&resolved),
                "r8"
            ),
            Impairment::Page {
                undelivered: None,
                ..
            }
        ));
        // Outside prod the impairment closes without a resolve to send.
        match on_steady(
            &sev("SERVICE_STEADY_STATE", "18:10:00"),
            Some(&m2),
            "r5",
            false,
        ) {
            Recovery::Resolve { marker } => assert!(!marker.open && marker.pending.is_empty()),
            o => panic!("{o:?}"),
        }
    }
}
