//! Task stops beyond out-of-memory kills: tasks that will not start (the manual's
//! "Task Won't Start"), and Fargate Spot interruptions.
//!
//! - **Failed to start** (STOPPED, stop code `TaskFailedToStart`): `task.start_failed`
//!   once per deployment and cause, with the manual's checks for that cause.
//!   DescribeServices (the marker, the security groups), TagResource (the marker,
//!   `menotime:task-start-incident`), Publish; a repeat costs the DescribeServices only.
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
        match decision {
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
            StartFailed::Resend => o.resent = true,
            StartFailed::Notify { marker } => {
                self.write(
                    &service,
                    vec![(tags::TASK_START_INCIDENT.to_owned(), marker.render())],
                )
                .await?
            }
        }
        let n = notes::start_failed(&self.cfg, t, cause, &service);
        self.send(&n, &mut o).await?;
        o.decision = Decision::Notified;
        o.reason = format!(
            "task {} of deployment {deployment} failed to start: {}",
            t.task_id(),
            cause.describe()
        );
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
