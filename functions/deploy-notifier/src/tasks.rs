//! Task stops beyond out-of-memory kills: tasks that will not start (the manual's
//! "Task Won't Start"), and Fargate Spot interruptions.
//!
//! - **Failed to start** (STOPPED, stop code `TaskFailedToStart`): `task.start_failed`
//!   once per deployment and cause, with the manual's checks for that cause, in the two
//!   phases of every incident marker: DescribeServices (the marker
//!   `menotime:task-start-incident`, the security groups), TagResource (the cause
//!   recorded pending), Publish, TagResource (confirmed). A repeat costs the
//!   DescribeServices only; a cause left pending is published by the next delivery of
//!   that deployment's failures, whatever its cause.
//! - **Spot interruption** (STOPPED, stop code `SpotInterruption`): `task.interrupted`,
//!   information outside prod, a warning in prod (which should not run on Spot).
//!   Publish only; each task is one event.

use tracing::info;

use menotime_shared::aws::ecs::EcsApi;
use menotime_shared::domain::ecs_event::{StartCause, TaskEvent};
use menotime_shared::domain::task_start::{self, StartFailed};
use menotime_shared::notify::Publisher;
use menotime_shared::{tags, Error};

use crate::notes;
use crate::watch::read_tag;
use crate::{Decision, DeployNotifier, Outcome};

impl<E: EcsApi + Sync, P: Publisher + Sync> DeployNotifier<E, P> {
    /// A task of the service stopped before it ran.
    pub(crate) async fn task_start_failed(
        &self,
        t: &TaskEvent,
        cause: StartCause,
        request_id: &str,
        mut o: Outcome,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let service = self.ecs.describe_service(&c.cluster, &c.service).await?;
        let marker = read_tag(
            service.tags.task_start_incident.as_ref(),
            tags::TASK_START_INCIDENT,
        );
        let deployment = t
            .started_by
            .clone()
            .or_else(|| t.task_definition_arn.clone())
            .unwrap_or_else(|| "unknown".into());
        let decision =
            task_start::on_start_failed(&deployment, cause, t.at, marker.as_ref(), request_id);
        info!(?decision, cause = cause.key(), %deployment, "start failure decision");
        let (record, found, undelivered) = match decision {
            StartFailed::Duplicate(why) => {
                o.decision = Decision::Duplicate;
                o.reason = format!("{why}; nothing sent");
                return Ok(o);
            }
            StartFailed::Late(why) => {
                o.decision = Decision::Late;
                o.reason = format!("late event, nothing sent: {why}");
                return Ok(o);
            }
            StartFailed::Deliver { marker } => {
                o.resent = true;
                (None, marker, None)
            }
            StartFailed::Notify {
                marker,
                undelivered,
            } => (Some(marker.clone()), marker, undelivered),
        };
        // What the last deployment's marker left pending goes out before it is replaced.
        if let Some(m) = &undelivered {
            for key in m.pending_in_order() {
                let n =
                    notes::start_failed_undelivered(&self.cfg, &key, m, &service, &t.envelope.id);
                self.send(&n, &mut o).await?;
            }
        }
        // 1. Record (a marker that cannot be written does not hold the notice back);
        // 2. publish; 3. confirm.
        let state_error = match &record {
            Some(m) => {
                self.record(&service, tags::TASK_START_INCIDENT, m, None)
                    .await
            }
            None => None,
        };
        // Every cause of this deployment still pending, this one in full (any other
        // was left by an attempt that died before confirming it).
        let already_reported = !found.pending.contains(cause.key());
        let notices = found
            .pending_in_order()
            .into_iter()
            .map(|key| {
                let n = if key == cause.key() {
                    notes::start_failed(&self.cfg, t, cause, &service)
                } else {
                    notes::start_failed_undelivered(
                        &self.cfg,
                        &key,
                        &found,
                        &service,
                        &t.envelope.id,
                    )
                };
                (vec![key], n)
            })
            .collect();
        self.publish_and_confirm(
            &service,
            tags::TASK_START_INCIDENT,
            &found,
            notices,
            None,
            &mut o,
        )
        .await?;
        if state_error.is_some() {
            o.state_recorded = false;
        }
        o.decision = Decision::Notified;
        o.reason = format!(
            "task {} of deployment {deployment} failed to start: {}",
            t.task_id(),
            cause.describe()
        );
        if o.resent && already_reported {
            o.reason.push_str(
                ", already reported; delivered what an earlier attempt recorded and never confirmed",
            );
        } else if o.resent {
            o.reason
                .push_str(" (recorded by an earlier attempt, delivered now)");
        }
        if !o.state_recorded {
            o.reason.push_str(
                "; its state could not be recorded: a later task failing the same way may notify again (same dedup_key)",
            );
        }
        Ok(o)
    }

    /// A Fargate Spot task was interrupted.
    pub(crate) async fn spot_interrupted(
        &self,
        t: &TaskEvent,
        mut o: Outcome,
    ) -> Result<Outcome, Error> {
        let n = notes::spot_interrupted(&self.cfg, t);
        self.send(&n, &mut o).await?;
        o.decision = Decision::Notified;
        o.reason = format!(
            "task {} was stopped by a Fargate Spot interruption; ECS replaces it",
            t.task_id()
        );
        Ok(o)
    }
}
