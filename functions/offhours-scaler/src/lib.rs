//! offhours-scaler: lower the ECS service for the night, restore exactly what it had in
//! the morning.
//!
//! The whole story of one invocation, in order:
//!
//! 1. **Accept** the scheduler's input `{"action": "scale-down" | "scale-up"}`, with
//!    optional `"dry_run": true` (other fields are ignored, but `executionId` and
//!    `scheduledTime` are used when present). Anything else is rejected, 0 calls.
//! 2. **Read** the service (DescribeServices with tags: the snapshot, the
//!    `menotime:offhours` exclusion, the deployments, the desired count) and its
//!    scalable target (DescribeScalableTargets; none for a service scaled by hand).
//! 3. **Decide** with [`offhours::plan_down`] / [`offhours::plan_up`]: excluded, already
//!    down, or nothing saved → `skipped`; a rollout in progress at scale-down, or a
//!    snapshot that cannot be read → `scale.skipped` is sent and the invocation fails
//!    (retryable for the rollout), nothing changed.
//! 4. **Scale down**: TagResource with the snapshot *first* (only when none exists: a
//!    snapshot is never overwritten), then RegisterScalableTarget (lowered minimum, same
//!    maximum and suspended state) and UpdateService(desiredCount), each only when it
//!    changes something. A run that died after the tag is finished by the retry, which
//!    finds the snapshot and only lowers.
//!    **Scale up**: RegisterScalableTarget (the saved min, max, suspended state),
//!    UpdateService(desiredCount), each only when it changes something, then
//!    UntagResource of the snapshot *last*: a run that dies before it restores again,
//!    harmlessly, on the retry.
//! 5. **Estimate** the saving of one night (DescribeTaskDefinition for the task's CPU and
//!    memory, only when the task count changes; a failure there only loses the figure)
//!    and **notify** `scale.down`, `scale.up` or `scale.skipped`.
//!
//! With `DRY_RUN=true` or `"dry_run": true`: read, decide and notify; change nothing.
//!
//! AWS calls, Publish excluded: prod's scale-down 6 (DescribeServices,
//! DescribeScalableTargets, TagResource, RegisterScalableTarget, UpdateService,
//! DescribeTaskDefinition), a second one 2; prod's scale-up 6 (DescribeServices,
//! DescribeScalableTargets, RegisterScalableTarget, UpdateService, UntagResource,
//! DescribeTaskDefinition), a second one 2; excluded 2; dev (no scalable target) 5 each
//! way; a dry run 3 (the reads and DescribeTaskDefinition).

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use tracing::{info, warn};

use menotime_shared::aws::autoscaling::ScalingApi;
use menotime_shared::aws::ecs::EcsApi;
use menotime_shared::config::OffhoursConfig;
use menotime_shared::domain::offhours::{self, Capacity, DownPlan, Targets, UpPlan};
use menotime_shared::domain::schedule::{parse_request, Action};
use menotime_shared::domain::service::{ServiceState, Tagged};
use menotime_shared::notify::{Notification, Notifier, Publisher};
use menotime_shared::{runbook, tags, Error};

mod notes;

use notes::{Estimate, Held};

/// What the scaler did (docs/reference.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Lowered for the night (or, with `dry_run`, would have).
    ScaledDown,
    /// Restored from the snapshot (or, with `dry_run`, would have).
    ScaledUp,
    /// Left alone: excluded, already down, or nothing saved.
    Skipped,
}

/// A capacity as reported in the outcome: `min`, `max` and `suspended` are null for a
/// service without a scalable target; `suspended` is `none` or e.g. `in+scheduled`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CapacityView {
    pub min: Option<i32>,
    pub max: Option<i32>,
    pub desired: i32,
    pub suspended: Option<String>,
}

impl From<&Capacity> for CapacityView {
    fn from(c: &Capacity) -> Self {
        CapacityView {
            min: c.target.map(|t| t.min),
            max: c.target.map(|t| t.max),
            desired: c.desired,
            suspended: c.target.map(|t| t.suspended.render()),
        }
    }
}

/// One service's part of the outcome (there is one configured service).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceOutcome {
    pub service: String,
    pub cluster: String,
    pub before: CapacityView,
    /// What the service has after this invocation; in a dry run, what it would have.
    pub after: CapacityView,
    /// One sentence saying what was done and why.
    pub reason: String,
    /// The snapshot tag involved: written (first scale-down), kept (an earlier run's),
    /// or restored and removed (scale-up).
    pub snapshot: Option<String>,
    /// USD saved by one off-hours night at the manual's Fargate prices, when known.
    pub estimated_saving_usd: Option<f64>,
    /// The `event_type` published.
    pub notification: Option<&'static str>,
}

/// The invocation result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    #[serde(rename = "outcome")]
    pub decision: Decision,
    pub action: Action,
    pub dry_run: bool,
    /// The service entry's reason, for the log line.
    pub reason: String,
    pub environment: String,
    pub source_event_id: String,
    pub services: Vec<ServiceOutcome>,
}

/// One invocation's facts about itself.
pub(crate) struct Run {
    pub action: Action,
    pub dry_run: bool,
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
}

/// The handler, generic over its AWS dependencies so tests can drive it with fakes.
pub struct OffhoursScaler<E, A, P> {
    cfg: OffhoursConfig,
    ecs: E,
    scaling: A,
    notifier: Notifier<P>,
    clock: fn() -> DateTime<Utc>,
    function_name: Option<String>,
}

impl<E: EcsApi + Sync, A: ScalingApi + Sync, P: Publisher + Sync> OffhoursScaler<E, A, P> {
    pub fn new(cfg: OffhoursConfig, ecs: E, scaling: A, publisher: P) -> Self {
        let notifier = Notifier::new(&cfg.common, publisher);
        Self {
            cfg,
            ecs,
            scaling,
            notifier,
            clock: Utc::now,
            function_name: None,
        }
    }

    /// Where "now" comes from (the snapshot's `saved=` time, and `occurred_at` when the
    /// input carries no scheduled time).
    pub fn with_clock(mut self, clock: fn() -> DateTime<Utc>) -> Self {
        self.clock = clock;
        self
    }

    /// The function's own name (`AWS_LAMBDA_FUNCTION_NAME`), for the "invoke the
    /// scale-up now" command in scale-down notifications.
    pub fn with_function_name(mut self, name: Option<String>) -> Self {
        self.function_name = name.filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
        self
    }

    pub async fn handle(
        &self,
        event: serde_json::Value,
        request_id: &str,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        // 1. Accept.
        let req = parse_request(&event)?;
        let run = Run {
            action: req.action,
            dry_run: c.dry_run || req.dry_run,
            event_id: req
                .execution_id
                .clone()
                .unwrap_or_else(|| request_id.to_owned()),
            occurred_at: req.scheduled_time.unwrap_or_else(self.clock),
        };
        info!(action = run.action.as_str(), dry_run = run.dry_run, event_id = %run.event_id, "off-hours request");

        // 2. Read.
        let service = self.ecs.describe_service(&c.cluster, &c.service).await?;
        let target = self.scaling.describe_target(&c.cluster, &c.service).await?;
        let current = Capacity {
            target,
            desired: service.desired_count,
        };
        info!(current = %current, snapshot = ?service.tags.offhours_snapshot, exclude = ?service.tags.offhours, "service read");

        // 3.-5. Decide, act, notify.
        let (decision, entry) = match run.action {
            Action::ScaleDown => self.scale_down(&run, &service, &current).await?,
            Action::ScaleUp => self.scale_up(&run, &service, &current).await?,
        };
        Ok(Outcome {
            decision,
            action: run.action,
            dry_run: run.dry_run,
            reason: entry.reason.clone(),
            environment: c.environment.as_str().to_owned(),
            source_event_id: run.event_id,
            services: vec![entry],
        })
    }

    async fn scale_down(
        &self,
        run: &Run,
        service: &ServiceState,
        current: &Capacity,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let c = &self.cfg.common;
        let snapshot = service.tags.offhours_snapshot.as_ref();
        let plan = offhours::plan_down(
            current,
            snapshot,
            service.tags.offhours.as_ref(),
            service.rollout(),
            Targets {
                min_capacity: self.cfg.min_capacity,
                desired_count: self.cfg.desired_count,
            },
            c.environment.task_floor(),
        );
        info!(?plan, "scale-down plan");
        let (save, to) = match plan {
            DownPlan::Postpone(rollout) => {
                let e = Error::NotNow(format!(
                    "deployment {} of the service is still rolling out ({}); the \
                     off-hours scale-down would fight it. Nothing was changed; the scale-down is \
                     retried later",
                    rollout.deployment, rollout.state
                ));
                return Err(self.held(run, service, current, Held::Deploying, e).await);
            }
            DownPlan::Hold { problem } => {
                let e = Error::Misconfigured(problem);
                return Err(self
                    .held(run, service, current, Held::UnreadableSnapshot, e)
                    .await);
            }
            DownPlan::Skip(why) => return self.skipped(run, service, current, why).await,
            // Saved to the second: the tag is for people.
            DownPlan::Lower { save, to } => (
                save.map(|s| s.saved_at((self.clock)().trunc_subsecs(0))),
                to,
            ),
        };

        if !run.dry_run {
            // The snapshot first: whatever happens next, the morning knows what to restore.
            if let Some(s) = &save {
                self.ecs
                    .tag_service(
                        &self.service_arn(service),
                        &[(tags::OFFHOURS_SNAPSHOT.to_owned(), s.render())],
                    )
                    .await?;
                info!(snapshot = %s, "snapshot saved");
            }
            self.apply(current, &to).await?;
        }
        let estimate = self
            .estimate(service, offhours::tasks_removed(current, &to))
            .await;

        let snapshot_line = match (&save, snapshot) {
            (Some(s), _) => s.render(),
            (None, Some(_)) => raw_snapshot(service).unwrap_or_default(),
            (None, None) => String::new(),
        };
        let lowered = notes::Lowered {
            before: current,
            to: &to,
            saved: save.is_some(),
            snapshot: &snapshot_line,
        };
        let (summary, reason) = notes::down_reason(&self.cfg, run, &lowered);
        let n = notes::down(
            &self.cfg,
            run,
            &lowered,
            &summary,
            &estimate,
            &self.service_arn(service),
            self.function_name.as_deref(),
        );
        self.finish(
            n,
            run,
            Decision::ScaledDown,
            reason,
            current,
            &to,
            Some(snapshot_line),
            &estimate,
        )
        .await
    }

    async fn scale_up(
        &self,
        run: &Run,
        service: &ServiceState,
        current: &Capacity,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let plan = offhours::plan_up(
            current,
            service.tags.offhours_snapshot.as_ref(),
            service.tags.offhours.as_ref(),
        );
        info!(?plan, "scale-up plan");
        let (to, snapshot, notes) = match plan {
            UpPlan::Hold { problem } => {
                let e = Error::Misconfigured(problem);
                return Err(self
                    .held(run, service, current, Held::UnreadableSnapshot, e)
                    .await);
            }
            UpPlan::Skip(why) => return self.skipped(run, service, current, why).await,
            UpPlan::Restore {
                to,
                snapshot,
                notes,
            } => (to, snapshot, notes),
        };

        if !run.dry_run {
            self.apply(current, &to).await?;
            // The snapshot last: a run that dies before this restores again on the retry.
            self.ecs
                .untag_service(
                    &self.service_arn(service),
                    &[tags::OFFHOURS_SNAPSHOT.to_owned()],
                )
                .await?;
            info!(snapshot = %snapshot, "snapshot removed");
        }
        // The night that ends saved the tasks the day had (as saved) and the night did
        // not: a count raised only by the restored minimum was never removed.
        let day = Capacity {
            target: None,
            desired: snapshot.desired,
        };
        let estimate = self
            .estimate(service, offhours::tasks_removed(&day, current))
            .await;
        let (summary, reason) = notes::up_reason(&self.cfg, run, current, &to, &snapshot);
        let n = notes::up(
            &self.cfg, run, current, &to, &snapshot, &notes, &summary, &estimate,
        );
        self.finish(
            n,
            run,
            Decision::ScaledUp,
            reason,
            current,
            &to,
            Some(snapshot.render()),
            &estimate,
        )
        .await
    }

    /// Sets the service to `to`: the scalable target first (a lower minimum before a
    /// lower desired count, so the autoscaler does not raise it again; a higher one
    /// before a higher count), then the desired count. Each call only when it changes
    /// something.
    async fn apply(&self, current: &Capacity, to: &Capacity) -> Result<(), Error> {
        let c = &self.cfg.common;
        if let Some(t) = to.target.filter(|t| current.target != Some(*t)) {
            self.scaling
                .register_target(&c.cluster, &c.service, &t)
                .await?;
            info!(min = t.min, max = t.max, suspended = %t.suspended.render(), "scalable target set");
        }
        if to.desired != current.desired {
            self.ecs
                .set_desired_count(&c.cluster, &c.service, to.desired)
                .await?;
            info!(desired = to.desired, "desired count set");
        }
        Ok(())
    }

    /// The saving of one night for `tasks` tasks, from the service's task definition
    /// (one DescribeTaskDefinition, only when a task count changes). Informational: a
    /// failure only loses the figure, because the capacity has already been changed.
    async fn estimate(&self, service: &ServiceState, tasks: i32) -> Estimate {
        let td = if tasks > 0 {
            let td = self
                .ecs
                .describe_task_definition(&service.task_definition)
                .await;
            if let Err(e) = &td {
                warn!(error = %e, "no saving estimate");
            }
            Some(td)
        } else {
            None
        };
        Estimate::of(td, tasks, self.cfg.night_hours)
    }

    async fn skipped(
        &self,
        run: &Run,
        service: &ServiceState,
        current: &Capacity,
        why: offhours::SkipReason,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let snapshot = service.tags.offhours_snapshot.as_ref();
        let raw_snapshot = raw_snapshot(service);
        let (summary, reason) =
            notes::skip_reason(&self.cfg, run, current, why, raw_snapshot.as_deref());
        if let Some(Tagged::Unreadable { problem, .. }) = snapshot {
            warn!(%problem, "the snapshot cannot be read; only the untag command is offered");
        }
        let n = notes::skipped(
            &self.cfg,
            run,
            current,
            why,
            &summary,
            &reason,
            raw_snapshot
                .as_deref()
                .map(|r| (r, snapshot.and_then(Tagged::read))),
            &self.service_arn(service),
        );
        self.finish(
            n,
            run,
            Decision::Skipped,
            reason,
            current,
            current,
            raw_snapshot,
            &Estimate::none(),
        )
        .await
    }

    /// A decision that cannot be carried out now (a rollout in progress) or at all (a
    /// snapshot nobody can read): the team is told with `scale.skipped`, then the
    /// invocation fails with `e` (a rollout is retried by Lambda). Nothing was changed.
    async fn held(
        &self,
        run: &Run,
        service: &ServiceState,
        current: &Capacity,
        why: Held,
        e: Error,
    ) -> Error {
        warn!(error = %e, "not scaling");
        let snapshot = raw_snapshot(service);
        let n = notes::held(
            &self.cfg,
            run,
            current,
            why,
            &e,
            snapshot.as_deref(),
            &self.service_arn(service),
        );
        if let Err(publish) = self.notifier.send(&n).await {
            warn!(error = %publish, "the scale.skipped notification could not be sent");
        }
        e
    }

    /// Adds the details every notification carries, publishes it, and returns the
    /// service's part of the outcome.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        n: Notification,
        run: &Run,
        decision: Decision,
        reason: String,
        before: &Capacity,
        after: &Capacity,
        snapshot: Option<String>,
        estimate: &Estimate,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let c = &self.cfg.common;
        let n = notes::with_details(
            &self.cfg,
            n,
            run,
            &reason,
            before,
            after,
            snapshot.as_deref(),
            estimate,
        );
        let sent = self.notifier.send(&n).await?;
        Ok((
            decision,
            ServiceOutcome {
                service: c.service.clone(),
                cluster: c.cluster.clone(),
                before: before.into(),
                after: after.into(),
                reason,
                snapshot,
                estimated_saving_usd: estimate.usd,
                notification: Some(sent.event_type.as_str()),
            },
        ))
    }

    fn service_arn(&self, service: &ServiceState) -> String {
        if service.arn.is_empty() {
            runbook::service_arn(&self.cfg.common)
        } else {
            service.arn.clone()
        }
    }
}

/// The snapshot tag's value as it is on the service.
fn raw_snapshot(service: &ServiceState) -> Option<String> {
    service.tags.raw.get(tags::OFFHOURS_SNAPSHOT).cloned()
}
