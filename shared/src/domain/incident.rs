//! deploy-notifier's memory and decisions: which events page, which resolve, and which
//! are duplicates or late, as pure functions over the event, the service and a marker.
//!
//! The marker is a tag on the service (docs/reference.md §3: all state is kept there), one per
//! incident kind: `menotime:deploy-incident` for a failed deployment and
//! `menotime:service-incident` for an impaired service. It records what was sent for
//! the incident, whether the incident is open, the time of its last change, and the
//! Lambda request that wrote it:
//!
//! `deployment=ecs-svc/42 sent=failed+rollback state=open at=2025-06-02T18:01:00Z request=5f0c...`
//!
//! The marker is written *before* the page is published, in the same TagResource call
//! as the freeze. A Lambda retry of that same invocation keeps its request id (the
//! Lambda docs: an errored invocation retried with the same request id is a Lambda
//! retry), so it finds its own marker and publishes again; any other delivery of the
//! same event finds a marker written by another request and stays silent. That is how
//! a duplicate never pages twice and a failed Publish is never a lost page.

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, Utc};

use super::ecs_event::{DeploymentChange, DeploymentEvent, ServiceEvent};
use super::service::ServiceState;
use crate::tags;

/// One incident's memory, kept in a tag value (letters, digits, spaces, `+ - = . _ : / @`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// The deployment a deployment incident is about (none for service incidents).
    pub deployment: Option<String>,
    /// What was sent: deployment changes (`failed`, `rollback`) or service event names.
    pub sent: BTreeSet<String>,
    pub open: bool,
    /// The time of the incident's last change (the source event's own time).
    pub at: DateTime<Utc>,
    /// The Lambda request that wrote the marker.
    pub request: String,
}

impl Marker {
    pub fn render(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = &self.deployment {
            parts.push(format!("deployment={d}"));
        }
        parts.push(format!(
            "sent={}",
            self.sent.iter().cloned().collect::<Vec<_>>().join("+")
        ));
        parts.push(format!(
            "state={}",
            if self.open { "open" } else { "resolved" }
        ));
        parts.push(format!(
            "at={}",
            self.at.to_rfc3339_opts(SecondsFormat::Millis, true)
        ));
        parts.push(format!("request={}", self.request));
        tags::value(&parts.join(" "))
    }

    /// Reads a marker back; `Err` says what is wrong with a value someone edited.
    pub fn parse(s: &str) -> Result<Marker, String> {
        let (mut deployment, mut sent, mut open, mut at, mut request) =
            (None, None, None, None, None);
        for part in s.split_whitespace() {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not key=value"))?;
            match k {
                "deployment" => deployment = Some(v.to_owned()),
                "sent" => {
                    sent = Some(
                        v.split('+')
                            .filter(|x| !x.is_empty())
                            .map(str::to_owned)
                            .collect::<BTreeSet<_>>(),
                    )
                }
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
            sent: sent.ok_or("no sent=")?,
            open: open.ok_or("no state=")?,
            at: at.ok_or("no at=")?,
            request: request.ok_or("no request=")?,
        })
    }

    fn resolved(&self, at: DateTime<Utc>, request: &str) -> Marker {
        Marker {
            open: false,
            at: at.max(self.at),
            request: request.to_owned(),
            ..self.clone()
        }
    }
}

/// A failed or rolled-back deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alarm {
    /// Write `marker` (and the freeze, when set) in one call, then publish.
    Page {
        marker: Marker,
        freeze: Option<String>,
    },
    /// This very request wrote the marker and failed before (or while) publishing:
    /// publish again, write nothing.
    Resend,
    /// Another delivery already sent this.
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
    let same = marker.filter(|m| m.deployment.as_deref() == Some(ev.deployment_id.as_str()));
    // A Lambda retry of the request that recorded this page resends it, even if ECS
    // has moved on meanwhile (the rollback finished during the retry's minute).
    if same.is_some_and(|m| m.sent.contains(kind) && m.request == tags::value(request)) {
        return Alarm::Resend;
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
    let marker = match same {
        Some(m) if m.sent.contains(kind) => {
            return if m.request == tags::value(request) {
                Alarm::Resend
            } else {
                Alarm::Duplicate
            };
        }
        Some(m) if !m.open && ev.at <= m.at => {
            return Alarm::Late(format!(
                "the incident of deployment {} was resolved at {}, after this event",
                ev.deployment_id, m.at
            ));
        }
        Some(m) => {
            let mut sent = m.sent.clone();
            sent.insert(kind.to_owned());
            Marker {
                sent,
                open: true,
                at: ev.at.max(m.at),
                request: tags::value(request),
                ..m.clone()
            }
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
            Marker {
                deployment: Some(ev.deployment_id.clone()),
                sent: BTreeSet::from([kind.to_owned()]),
                open: true,
                at: ev.at,
                request: tags::value(request),
            }
        }
    };
    // Freeze on the first event of an incident only: a late second event must not
    // re-freeze a service an operator has already reviewed and unfrozen.
    let freeze = (freeze_on_failure && same.is_none() && service.tags.freeze.is_none())
        .then(|| freeze_value(ev));
    Alarm::Page { marker, freeze }
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
    /// Write `marker` (resolved), then publish the resolve and `deploy.completed`.
    Resolve {
        marker: Marker,
    },
    /// This request resolved the incident before failing to publish: publish both again.
    ResendResolve,
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
    if !m.open && m.request == tags::value(request) {
        return Completion::ResendResolve;
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
        marker: m.resolved(ev.at, &tags::value(request)),
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
    Page { marker: Marker },
    Resend,
    Duplicate,
    Late(String),
}

/// Decides what an impairment event does: page once per open incident and event name;
/// the repeats ECS sends while the service stays impaired are duplicates.
pub fn on_impaired(ev: &ServiceEvent, marker: Option<&Marker>, request: &str) -> Impairment {
    let request = tags::value(request);
    match marker {
        Some(m) if m.open && m.sent.contains(&ev.event_name) => {
            if m.request == request {
                Impairment::Resend
            } else {
                Impairment::Duplicate
            }
        }
        Some(m) if !m.open && ev.at <= m.at => Impairment::Late(format!(
            "the service recovered at {}, after this event",
            m.at
        )),
        Some(m) if m.open => {
            let mut sent = m.sent.clone();
            sent.insert(ev.event_name.clone());
            Impairment::Page {
                marker: Marker {
                    sent,
                    at: ev.at.max(m.at),
                    request,
                    ..m.clone()
                },
            }
        }
        _ => Impairment::Page {
            marker: Marker {
                deployment: None,
                sent: BTreeSet::from([ev.event_name.clone()]),
                open: true,
                at: ev.at,
                request,
            },
        },
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Write `marker` (resolved); publish `service.recovered` where pages exist.
    Resolve {
        marker: Marker,
    },
    ResendResolve,
    /// Nothing was open: steady-state events repeat and must never spam.
    Quiet(String),
}

pub fn on_steady(ev: &ServiceEvent, marker: Option<&Marker>, request: &str) -> Recovery {
    let request = tags::value(request);
    match marker {
        Some(m) if !m.open && m.request == request => Recovery::ResendResolve,
        Some(m) if m.open && ev.at > m.at => Recovery::Resolve {
            marker: m.resolved(ev.at, &request),
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
            Alarm::Page { marker, freeze } => (marker, freeze),
            other => panic!("expected a page, got {other:?}"),
        }
    }

    #[test]
    fn marker_round_trips_and_fits_a_tag() {
        let m = Marker {
            deployment: Some("ecs-svc/4231880795355584839".into()),
            sent: BTreeSet::from(["failed".into(), "rollback".into()]),
            open: true,
            at: t("18:01:00.114"),
            request: "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into(),
        };
        let s = m.render();
        assert_eq!(s, "deployment=ecs-svc/4231880795355584839 sent=failed+rollback state=open at=2025-06-02T18:01:00.114Z request=8476a536-e9f4-11e8-9739-2dfe598c3fcd");
        assert_eq!(Marker::parse(&s).unwrap(), m);
        assert_eq!(tags::value(&s), s, "only characters ECS tags allow");
        let svc_marker = Marker {
            deployment: None,
            sent: crate::domain::ecs_event::IMPAIRMENTS
                .iter()
                .map(|s| s.to_string())
                .collect(),
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
        assert!(m.open && m.sent.contains("failed"));
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
    fn a_duplicate_never_pages_twice_but_a_retry_resends() {
        let s = svc(&[("ecs-svc/1", "FAILED")], true);
        let ev = failed("ecs-svc/1", "18:01:00");
        let (m, _) = page(on_alarm(&ev, &s, None, "r1", true));
        assert_eq!(on_alarm(&ev, &s, Some(&m), "r2", true), Alarm::Duplicate);
        assert_eq!(on_alarm(&ev, &s, Some(&m), "r1", true), Alarm::Resend);
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
            m2.sent,
            BTreeSet::from(["failed".to_owned(), "rollback".to_owned()])
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
        let resolved = m.resolved(t("18:30:00"), "r9");
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
        assert_eq!(m2.sent, BTreeSet::from(["failed".to_owned()]));
        assert!(freeze.is_some());
    }

    #[test]
    fn completion_resolves_an_open_page_once_frozen_or_not() {
        let completed = dep(DeploymentChange::Completed, "ecs-svc/2", "19:00:00");
        let s = svc(&[("ecs-svc/1", "FAILED")], false);
        assert_eq!(on_completed(&completed, None, "r", true), Completion::Info);
        let (open, _) = page(on_alarm(
            &failed("ecs-svc/1", "18:01:00"),
            &s,
            None,
            "r1",
            true,
        ));
        let resolved = match on_completed(&completed, Some(&open), "r2", true) {
            Completion::Resolve { marker } => marker,
            other => panic!("{other:?}"),
        };
        assert!(!resolved.open);
        assert_eq!(resolved.at, t("19:00:00"));
        assert_eq!(resolved.deployment, open.deployment);
        // The same request again (publish failed): resend. Another delivery: late.
        assert_eq!(
            on_completed(&completed, Some(&resolved), "r2", true),
            Completion::ResendResolve
        );
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
        assert_eq!(on_alarm(&ev, &gone, Some(&m), "r1", true), Alarm::Resend);
        assert!(matches!(
            on_alarm(&ev, &gone, Some(&m), "r2", true),
            Alarm::Late(_)
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
        let m = match on_impaired(&imp, None, "r1") {
            Impairment::Page { marker } => marker,
            other => panic!("{other:?}"),
        };
        // ECS repeats the impairment while it lasts: never a second page.
        let again = sev("SERVICE_TASK_START_IMPAIRED", "18:03:00");
        assert_eq!(on_impaired(&again, Some(&m), "r2"), Impairment::Duplicate);
        assert_eq!(on_impaired(&imp, Some(&m), "r1"), Impairment::Resend);
        // Another kind of impairment updates the same incident.
        let other = sev("SERVICE_TASK_PLACEMENT_FAILURE", "18:04:00");
        let m2 = match on_impaired(&other, Some(&m), "r3") {
            Impairment::Page { marker } => marker,
            o => panic!("{o:?}"),
        };
        assert_eq!(m2.sent.len(), 2);
        // A steady state older than the impairment is late; a newer one resolves.
        assert!(matches!(
            on_steady(&sev("SERVICE_STEADY_STATE", "17:50:00"), Some(&m2), "r4"),
            Recovery::Quiet(_)
        ));
        let resolved = match on_steady(&sev("SERVICE_STEADY_STATE", "18:10:00"), Some(&m2), "r5") {
            Recovery::Resolve { marker } => marker,
            o => panic!("{o:?}"),
        };
        // Repeated steady states: quiet. The resolving request retried: resend.
        for at in ["18:20:00", "18:30:00", "18:40:00"] {
            assert!(matches!(
                on_steady(&sev("SERVICE_STEADY_STATE", at), Some(&resolved), "rx"),
                Recovery::Quiet(_)
            ));
        }
        assert_eq!(
            on_steady(
                &sev("SERVICE_STEADY_STATE", "18:10:00"),
                Some(&resolved),
                "r5"
            ),
            Recovery::ResendResolve
        );
        assert!(matches!(
            on_steady(&sev("SERVICE_STEADY_STATE", "18:10:00"), None, "r6"),
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
            Impairment::Page { .. }
        ));
    }
}
