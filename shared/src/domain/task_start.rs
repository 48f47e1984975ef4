//! Tasks that will not start: `task.start_failed` once per deployment and cause.
//!
//! A deployment whose image cannot be pulled starts task after task, and each one
//! stops with the same `TaskFailedToStart`; the team needs to hear it once. The memory
//! is the marker tag `menotime:task-start-incident` (the incident marker's format and
//! two phases, `domain::incident::Marker`): the deployment (the tasks' `startedBy`), the
//! deployment it replaced (`previous`), and the causes reported for it
//! (`StartCause::key`): recorded `pending` before the notification is published,
//! confirmed `sent` after. A later delivery that finds its cause pending (a Lambda
//! retry, a redrive, or simply the next task failing the same way) publishes it; a
//! new deployment's marker publishes what the last one left pending before replacing it.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::ecs_event::StartCause;
use super::incident::Marker;
use crate::tags;

/// What a task that failed to start does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartFailed {
    /// Record `marker` (this cause pending), publish what `undelivered` still holds
    /// (the last deployment's causes never confirmed), then this one, then confirm.
    Notify {
        marker: Marker,
        undelivered: Option<Marker>,
    },
    /// This cause (or another of the same deployment) was recorded and never confirmed
    /// as published: publish what is pending, confirm.
    Deliver { marker: Marker },
    /// This cause was already reported for this deployment.
    Duplicate(String),
    /// A task of an older deployment than the one last reported.
    Late(String),
}

/// Decides whether a start failure of `deployment` for `cause`, stopped at `at`, is news.
pub fn on_start_failed(
    deployment: &str,
    cause: StartCause,
    at: DateTime<Utc>,
    marker: Option<&Marker>,
    request: &str,
) -> StartFailed {
    let request = tags::value(request);
    let deployment = tags::value(deployment);
    let key = cause.key();
    match marker {
        Some(m) if m.deployment.as_deref() == Some(deployment.as_str()) => {
            // This cause, or another of this deployment, recorded and never confirmed:
            // this delivery publishes what is pending.
            if m.pending.contains(key) || (m.sent.contains(key) && !m.pending.is_empty()) {
                StartFailed::Deliver { marker: m.clone() }
            } else if m.sent.contains(key) {
                StartFailed::Duplicate(format!(
                    "tasks of deployment {deployment} failing to start ({key}) were already reported"
                ))
            } else {
                let mut pending = m.pending.clone();
                pending.insert(key.to_owned());
                StartFailed::Notify {
                    marker: Marker {
                        pending,
                        at: m.at.max(at),
                        request,
                        ..m.clone()
                    },
                    undelivered: None,
                }
            }
        }
        Some(m) if at < m.at => StartFailed::Late(format!(
            "this task of deployment {deployment} stopped before the last reported failure (deployment {}, {})",
            m.deployment.as_deref().unwrap_or("?"),
            m.at
        )),
        Some(m) if m.previous.as_deref() == Some(deployment.as_str()) => {
            StartFailed::Late(format!(
                "deployment {deployment} was followed by deployment {}, whose failures are reported now",
                m.deployment.as_deref().unwrap_or("?")
            ))
        }
        _ => StartFailed::Notify {
            marker: Marker {
                deployment: Some(deployment),
                previous: marker.and_then(|m| m.deployment.clone()),
                sent: BTreeSet::new(),
                pending: BTreeSet::from([key.to_owned()]),
                open: true,
                at,
                request,
            },
            undelivered: marker.filter(|m| !m.pending.is_empty()).cloned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ecs_event::ResourceInit;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-11-26T{s}Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn notified(d: StartFailed) -> (Marker, Option<Marker>) {
        match d {
            StartFailed::Notify {
                marker,
                undelivered,
            } => (marker, undelivered),
            other => panic!("expected a notification, got {other:?}"),
        }
    }

    /// The marker once everything pending went out.
    fn sent(m: Marker) -> Marker {
        let pending: Vec<String> = m.pending.iter().cloned().collect();
        m.confirmed(pending.iter().map(String::as_str))
    }

    #[test]
    fn once_per_deployment_and_cause() {
        let pull = StartCause::ImagePull;
        let (recorded, undelivered) = notified(on_start_failed(
            "ecs-svc/1",
            pull,
            t("04:30:00"),
            None,
            "r1",
        ));
        assert_eq!(undelivered, None);
        assert_eq!(recorded.deployment.as_deref(), Some("ecs-svc/1"));
        assert_eq!(recorded.pending, BTreeSet::from(["image-pull".to_owned()]));
        assert!(recorded.sent.is_empty());
        // Recorded, not confirmed: the Lambda retry, a redrive and the next task
        // failing the same way all deliver it.
        for (at, request) in [
            ("04:30:00", "r1"),
            ("04:30:00", "redrive"),
            ("04:31:00", "r2"),
        ] {
            assert_eq!(
                on_start_failed("ecs-svc/1", pull, t(at), Some(&recorded), request),
                StartFailed::Deliver {
                    marker: recorded.clone()
                }
            );
        }
        // Confirmed: the next task of the same deployment, same cause, is a duplicate,
        // the retry of the request that published it included.
        let m = sent(recorded);
        for request in ["r1", "r2"] {
            assert!(matches!(
                on_start_failed("ecs-svc/1", pull, t("04:31:00"), Some(&m), request),
                StartFailed::Duplicate(_)
            ));
        }
        // Another cause of the same deployment: reported, once.
        let secrets = StartCause::ResourceInit(ResourceInit::Secrets);
        let (m2, _) = notified(on_start_failed(
            "ecs-svc/1",
            secrets,
            t("04:32:00"),
            Some(&m),
            "r3",
        ));
        assert_eq!(m2.pending, BTreeSet::from(["resource-init".to_owned()]));
        let m2 = sent(m2);
        assert_eq!(m2.sent.len(), 2);
        let network = StartCause::ResourceInit(ResourceInit::Network);
        assert!(
            matches!(
                on_start_failed("ecs-svc/1", network, t("04:33:00"), Some(&m2), "r4"),
                StartFailed::Duplicate(_)
            ),
            "one resource-init cause"
        );
        // The next deployment: reported again, remembering the one it follows.
        let (m3, undelivered) = notified(on_start_failed(
            "ecs-svc/2",
            pull,
            t("05:00:00"),
            Some(&m2),
            "r5",
        ));
        assert_eq!(undelivered, None, "nothing of ecs-svc/1 was left pending");
        assert_eq!(m3.deployment.as_deref(), Some("ecs-svc/2"));
        assert_eq!(m3.previous.as_deref(), Some("ecs-svc/1"));
        assert_eq!(m3.pending.len(), 1);
        // A straggler of the older deployment after that: late, even at the same time.
        for at in ["04:59:00", "05:00:00"] {
            assert!(matches!(
                on_start_failed("ecs-svc/1", StartCause::Capacity, t(at), Some(&m3), "r6"),
                StartFailed::Late(_)
            ));
        }
    }

    #[test]
    fn a_new_deployment_publishes_what_the_last_one_left_pending() {
        let pull = StartCause::ImagePull;
        let (recorded, _) = notified(on_start_failed(
            "ecs-svc/1",
            pull,
            t("04:30:00"),
            None,
            "r1",
        ));
        let (next, undelivered) = notified(on_start_failed(
            "ecs-svc/2",
            StartCause::Capacity,
            t("05:00:00"),
            Some(&recorded),
            "r2",
        ));
        assert_eq!(undelivered, Some(recorded));
        assert_eq!(next.pending, BTreeSet::from(["capacity".to_owned()]));
    }
}
