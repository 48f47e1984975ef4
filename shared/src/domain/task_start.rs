//! Tasks that will not start: `task.start_failed` once per deployment and cause.
//!
//! A deployment whose image cannot be pulled starts task after task, and each one
//! stops with the same `TaskFailedToStart`; the team needs to hear it once. The memory
//! is the marker tag `menotime:task-start-incident` (the incident marker's format,
//! `domain::incident::Marker`): the deployment (the tasks' `startedBy`) and, in `sent`,
//! the causes already reported for it (`StartCause::key`). As for every marker, it is
//! written before the notification, and a Lambda retry of the request that wrote it
//! publishes again.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::ecs_event::StartCause;
use super::incident::Marker;
use crate::tags;

/// What a task that failed to start does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartFailed {
    /// Write `marker`, then notify.
    Notify { marker: Marker },
    /// This very request wrote the marker and failed before publishing: publish again.
    Resend,
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
            if m.sent.contains(key) {
                if m.request == request {
                    StartFailed::Resend
                } else {
                    StartFailed::Duplicate(format!(
                        "tasks of deployment {deployment} failing to start ({key}) were already reported"
                    ))
                }
            } else {
                let mut sent = m.sent.clone();
                sent.insert(key.to_owned());
                StartFailed::Notify {
                    marker: Marker {
                        sent,
                        at: m.at.max(at),
                        request,
                        ..m.clone()
                    },
                }
            }
        }
        Some(m) if at < m.at => StartFailed::Late(format!(
            "this task of deployment {deployment} stopped before the last reported failure (deployment {}, {})",
            m.deployment.as_deref().unwrap_or("?"),
            m.at
        )),
        _ => StartFailed::Notify {
            marker: Marker {
                deployment: Some(deployment),
                previous: None,
                sent: BTreeSet::from([key.to_owned()]),
                pending: BTreeSet::new(),
                open: true,
                at,
                request,
            },
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

    fn notified(d: StartFailed) -> Marker {
        match d {
            StartFailed::Notify { marker } => marker,
            other => panic!("expected a notification, got {other:?}"),
        }
    }

    #[test]
    fn once_per_deployment_and_cause() {
        let pull = StartCause::ImagePull;
        let m = notified(on_start_failed(
            "ecs-svc/1",
            pull,
            t("04:30:00"),
            None,
            "r1",
        ));
        assert_eq!(m.deployment.as_deref(), Some("ecs-svc/1"));
        assert_eq!(m.sent, BTreeSet::from(["image-pull".to_owned()]));
        // The next task of the same deployment, same cause: nothing.
        assert!(matches!(
            on_start_failed("ecs-svc/1", pull, t("04:31:00"), Some(&m), "r2"),
            StartFailed::Duplicate(_)
        ));
        // A Lambda retry of the request that wrote it: resend.
        assert_eq!(
            on_start_failed("ecs-svc/1", pull, t("04:30:00"), Some(&m), "r1"),
            StartFailed::Resend
        );
        // Another cause of the same deployment: reported, once.
        let secrets = StartCause::ResourceInit(ResourceInit::Secrets);
        let m2 = notified(on_start_failed(
            "ecs-svc/1",
            secrets,
            t("04:32:00"),
            Some(&m),
            "r3",
        ));
        assert_eq!(m2.sent.len(), 2);
        let network = StartCause::ResourceInit(ResourceInit::Network);
        assert!(
            matches!(
                on_start_failed("ecs-svc/1", network, t("04:33:00"), Some(&m2), "r4"),
                StartFailed::Duplicate(_)
            ),
            "one resource-init cause"
        );
        // The next deployment: reported again.
        let m3 = notified(on_start_failed(
            "ecs-svc/2",
            pull,
            t("05:00:00"),
            Some(&m2),
            "r5",
        ));
        assert_eq!(m3.deployment.as_deref(), Some("ecs-svc/2"));
        assert_eq!(m3.sent.len(), 1);
        // A straggler of the older deployment after that: late.
        assert!(matches!(
            on_start_failed(
                "ecs-svc/1",
                StartCause::Capacity,
                t("04:59:00"),
                Some(&m3),
                "r6"
            ),
            StartFailed::Late(_)
        ));
    }
}
