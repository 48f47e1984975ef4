//! offhours-scaler: keep the ECS service at its daytime capacity during the declared
//! window (`OFFHOURS_UPTIME`), lowered outside it, and restore exactly what it had.
//!
//! The whole story of one invocation, in order:
//!
//! 1. **Accept** the input `{"action": "reconcile" | "scale-down" | "scale-up"}` with
//!    optional `scheduledTime`, `executionId`, `dry_run` and `force`
//!    ([`schedule::parse_request`]). An unfilled `<aws.scheduler.*>` placeholder, a
//!    `scheduledTime` that does not parse, or anything else unknown is rejected before
//!    any call; so is `reconcile` without a window. Every decision is taken on the
//!    real clock, never on `scheduledTime`: a late or redriven run acts on *now*.
//! 2. **Read** the service: DescribeServices with its tags (the snapshot, the
//!    `menotime:offhours` exclusion or hold, the wake-up marker), deployments, counts
//!    and latest events.
//! 3. **Check the wake-up** of an earlier scale-up (`wakeup.rs`, [`wake::check`]):
//!    reached, a page is resolved and then the marker goes; past its deadline, the
//!    marker says `state=paging`, `scale.failed` goes out (a page in prod), and the
//!    marker says `state=paged`. A page recorded but not confirmed is sent by the next
//!    run, whatever its request id.
//! 4. **Read the scalable target** (DescribeScalableTargets; none for a service scaled
//!    by hand): with the desired count, the capacity every result reports.
//! 5. **Decide.**
//!    - `reconcile`: [`reconcile::intent`] from the window now and the tags, carried
//!      out on the capacity by [`reconcile::step`]. Nothing to do (day and nothing
//!      saved, excluded, held, night and down already): the two reads, nothing sent.
//!      At night with a snapshot, only a lowering that a run could not complete is
//!      finished ([`offhours::plan_keep_down`]). A tag nobody can read or a rollout in
//!      the way: nothing changes, and the team hears of it at the first run after the
//!      window changes and once an hour, not at every run.
//!    - `scale-down`: during uptime it is stale and skipped, unless `"force": true`;
//!      otherwise [`offhours::plan_down`].
//!    - `scale-up`: always honoured, [`offhours::plan_up`].
//! 6. **Act.** Lower: the snapshot tag *first* (only when none exists), then
//!    RegisterScalableTarget and UpdateService, each only when it changes something.
//!    Restore: the wake-up marker first (when tasks have to start and none is there),
//!    then RegisterScalableTarget and UpdateService, then the snapshot removed *last*.
//!    A hold that has ended loses its tag. A run that dies anywhere is finished by the
//!    next (a Lambda retry, or the next reconcile).
//! 7. **Estimate** the saving (DescribeTaskDefinition for the task size, only when the
//!    task count changes; the night's real length from the window) and **notify**
//!    `scale.down`, `scale.up` or `scale.skipped`.
//!
//! With `DRY_RUN=true` or `"dry_run": true`: read, decide and notify; change nothing.
//!
//! AWS calls, Publish excluded (docs/performance.md §2): a reconcile with nothing to do
//! 2; prod's scale-down 6 (DescribeServices, DescribeScalableTargets, TagResource,
//! RegisterScalableTarget, UpdateService, DescribeTaskDefinition); prod's restore 7
//! (the same with the wake-up marker's TagResource first and UntagResource last); the
//! next run after a restore that reached its count 1 more (UntagResource of the
//! marker).

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use menotime_shared::aws::autoscaling::ScalingApi;
use menotime_shared::aws::ecs::EcsApi;
use menotime_shared::config::OffhoursConfig;
use menotime_shared::domain::offhours::{
    self, Capacity, DownPlan, Exclusion, SkipReason, Targets, UpPlan,
};
use menotime_shared::domain::reconcile::{self, Moment, Step};
use menotime_shared::domain::schedule::{self, Action};
use menotime_shared::domain::service::{ServiceState, Tagged};
use menotime_shared::domain::wake::{self, Wake};
use menotime_shared::notify::{Notification, Notifier, Publisher, Sent};
use menotime_shared::{runbook, tags, Error};

mod notes;
mod wakeup;

use notes::{Estimate, Held, Night};

/// What the scaler did (docs/reference.md §6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Lowered for the night (or, with `dry_run`, would have).
    ScaledDown,
    /// Restored from the snapshot (or, with `dry_run`, would have).
    ScaledUp,
    /// Left alone: nothing to do, excluded, held, already down, nothing saved, stale,
    /// or held up by a rollout or a tag nobody can read.
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
    /// The capacity read.
    pub before: CapacityView,
    /// What the service has after this invocation; in a dry run, what it would have.
    pub after: CapacityView,
    /// One sentence saying what was done and why.
    pub reason: String,
    /// The snapshot tag involved: written (first scale-down), kept (an earlier run's),
    /// or restored and removed (scale-up).
    pub snapshot: Option<String>,
    /// USD saved by the night at the manual's Fargate prices, when known.
    pub estimated_saving_usd: Option<f64>,
    /// The `event_type` published about the decision; `null` when nothing was sent.
    pub notification: Option<&'static str>,
}

/// The invocation result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    #[serde(rename = "outcome")]
    pub decision: Decision,
    pub action: Action,
    pub dry_run: bool,
    /// `"force": true` was given.
    pub forced: bool,
    /// The service entry's reason, for the log line.
    pub reason: String,
    pub environment: String,
    pub source_event_id: String,
    /// What the window says now: `{"uptime", "holidays", "up", "holiday",
    /// "next_change"}`; `null` without `OFFHOURS_UPTIME`.
    pub window: Value,
    /// An ended hold's tag was removed.
    pub hold_removed: bool,
    /// What the wake-up check found: `waiting`, `reached`, `paged`, `resent`,
    /// `still_paged`, `would_page` (dry run) or `unreadable`; `null` without a marker.
    pub wake: Option<&'static str>,
    /// Every message published, in order, as `event_type/action`.
    pub notifications: Vec<String>,
    pub services: Vec<ServiceOutcome>,
}

/// One invocation's facts about itself.
pub(crate) struct Run {
    pub action: Action,
    pub dry_run: bool,
    pub force: bool,
    pub event_id: String,
    pub request_id: String,
    /// The real clock: every decision is taken on it.
    pub now: DateTime<Utc>,
    /// The input's `scheduledTime`.
    pub scheduled: Option<DateTime<Utc>>,
    /// `scheduledTime`, else now: the notifications' `occurred_at`.
    pub occurred_at: DateTime<Utc>,
    /// What the window says now; `None` without one.
    pub moment: Option<Moment>,
}

/// What the run did besides its decision, for the outcome.
#[derive(Default)]
struct Record {
    wake: Option<&'static str>,
    /// The marker is gone (removed by the check): a restore may write a new one.
    wake_removed: bool,
    sent: Vec<Sent>,
    hold_removed: Option<DateTime<Utc>>,
}

/// What every step after the reads looks at.
#[derive(Clone, Copy)]
struct Seen<'a> {
    run: &'a Run,
    service: &'a ServiceState,
    /// What the `menotime:offhours` tag means now.
    exclusion: &'a Exclusion,
    /// The capacity read in step 4.
    current: &'a Capacity,
}

/// Explicit actions fail when they cannot be carried out (Lambda retries a rollout;
/// the failure queue keeps the rest); reconcile succeeds and tries again at its next
/// run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Explicit,
    Reconcile,
}

type Clock = Box<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The handler, generic over its AWS dependencies so tests and the demo can drive it
/// with fakes, or with the real adapters and a clock of their own.
pub struct OffhoursScaler<E, A, P> {
    cfg: OffhoursConfig,
    ecs: E,
    scaling: A,
    notifier: Notifier<P>,
    clock: Clock,
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
            clock: Box::new(Utc::now),
            function_name: None,
        }
    }

    /// Where "now" comes from: every decision (day or night, a hold's end, a wake-up's
    /// deadline) and the times written in tags.
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// The function's own name (`AWS_LAMBDA_FUNCTION_NAME`), for the commands in
    /// notifications that invoke it or read its log.
    pub fn with_function_name(mut self, name: Option<String>) -> Self {
        self.function_name = name.filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
        self
    }

    pub async fn handle(&self, event: Value, request_id: &str) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        // 1. Accept.
        let req = schedule::parse_request(&event)?;
        if req.action == Action::Reconcile && self.cfg.window.is_none() {
            return Err(Error::Misconfigured(
                "reconcile needs OFFHOURS_UPTIME, the window it brings the service to, and \
                 this function has none. Set the stack's OffhoursUptime parameter, or send \
                 {\"action\": \"scale-down\"} or {\"action\": \"scale-up\"}. Nothing was \
                 changed"
                    .into(),
            ));
        }
        let now = (self.clock)();
        let run = Run {
            action: req.action,
            dry_run: c.dry_run || req.dry_run,
            force: req.force,
            event_id: req
                .execution_id
                .clone()
                .unwrap_or_else(|| request_id.to_owned()),
            request_id: request_id.to_owned(),
            now,
            scheduled: req.scheduled_time,
            occurred_at: req.scheduled_time.unwrap_or(now),
            moment: self.cfg.window.as_ref().map(|w| Moment::of(w, now)),
        };
        info!(action = run.action.as_str(), dry_run = run.dry_run, force = run.force, event_id = %run.event_id, up = ?run.moment.as_ref().map(|m| m.up), "off-hours request");

        // 2. Read.
        let service = self.ecs.describe_service(&c.cluster, &c.service).await?;
        let exclusion = Exclusion::at(service.tags.offhours.as_ref(), now);
        info!(desired = service.desired_count, running = service.running_count, snapshot = ?service.tags.offhours_snapshot, exclusion = ?exclusion, wake = ?service.tags.offhours_wake, "service read");

        // 3. The wake-up of an earlier scale-up. Its failure (SNS down, say) never
        // keeps the service from its capacity: the run goes on, then fails, so that
        // Lambda's retry (or the next reconcile) finishes the check.
        let mut record = Record::default();
        let wake_failed = self.check_wake(&run, &service, &mut record).await.err();
        if let Some(e) = &wake_failed {
            warn!(error = %e, "the wake-up check failed; scaling goes on, the run fails after it");
        }

        // 4. The capacity.
        let current = self.capacity(&service).await?;

        // 5.-7. Decide, act, notify.
        let seen = Seen {
            run: &run,
            service: &service,
            exclusion: &exclusion,
            current: &current,
        };
        let (decision, entry) = match run.action {
            Action::Reconcile => self.reconcile(&seen, &mut record).await?,
            Action::ScaleDown => self.scale_down(&seen, &mut record).await?,
            Action::ScaleUp => self.scale_up(&seen, &mut record).await?,
        };
        if let Some(e) = wake_failed {
            return Err(e);
        }
        Ok(Outcome {
            decision,
            action: run.action,
            dry_run: run.dry_run,
            forced: run.force,
            reason: entry.reason.clone(),
            environment: c.environment.as_str().to_owned(),
            source_event_id: run.event_id.clone(),
            window: notes::window_details(&self.cfg, &run),
            hold_removed: record.hold_removed.is_some() && !run.dry_run,
            wake: record.wake,
            notifications: record.sent.iter().map(Sent::label).collect(),
            services: vec![entry],
        })
    }

    /// Step 5 for `reconcile`: the window now and the tags decide
    /// ([`reconcile::intent`]); the capacity says how ([`reconcile::step`]).
    async fn reconcile(
        &self,
        seen: &Seen<'_>,
        record: &mut Record,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let Seen {
            run,
            service,
            exclusion,
            current,
        } = *seen;
        let up = run.moment.as_ref().is_some_and(|m| m.up);
        let snapshot = service.tags.offhours_snapshot.as_ref();
        let intent = reconcile::intent(up, snapshot, exclusion);
        info!(?intent, "reconcile");
        let step = reconcile::step(
            &intent,
            current,
            snapshot,
            exclusion,
            service.rollout(),
            self.targets(),
            self.cfg.common.environment.task_floor(),
        );
        match step {
            Step::Down(plan) => self.down(seen, plan, Mode::Reconcile, record).await,
            Step::Up(plan) => self.up(seen, plan, Mode::Reconcile, record).await,
            Step::Leave(leave) => {
                let reason = notes::leave_reason(&self.cfg, run, leave);
                self.quiet(seen, None, reason, record).await
            }
            Step::Blocked(b) => {
                let held = Some(Held::Unreadable(b.tag()));
                self.quiet(seen, held, b.problem(), record).await
            }
        }
    }

    /// Step 5 for an explicit `scale-down`: stale during uptime unless forced, else
    /// [`offhours::plan_down`].
    async fn scale_down(
        &self,
        seen: &Seen<'_>,
        record: &mut Record,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let Seen {
            run,
            service,
            exclusion,
            current,
        } = *seen;
        let window = self.cfg.window.as_ref();
        if let Some(stale) = reconcile::stale_scale_down(window, run.now, run.force, run.scheduled)
        {
            return self.skipped(seen, stale, record).await;
        }
        let plan = offhours::plan_down(
            current,
            service.tags.offhours_snapshot.as_ref(),
            exclusion,
            service.rollout(),
            self.targets(),
            self.cfg.common.environment.task_floor(),
        );
        self.down(seen, plan, Mode::Explicit, record).await
    }

    /// Step 5 for an explicit `scale-up`: always honoured, [`offhours::plan_up`].
    async fn scale_up(
        &self,
        seen: &Seen<'_>,
        record: &mut Record,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let snapshot = seen.service.tags.offhours_snapshot.as_ref();
        let plan = offhours::plan_up(seen.current, snapshot, seen.exclusion);
        self.up(seen, plan, Mode::Explicit, record).await
    }

    /// A reconcile that changes no capacity: nothing is sent, except the removal of an
    /// ended hold, and a problem it cannot fix (`held`) at the first run after the
    /// window changes and once an hour.
    async fn quiet(
        &self,
        seen: &Seen<'_>,
        held: Option<Held>,
        reason: String,
        record: &mut Record,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let Seen {
            run,
            service,
            current,
            ..
        } = *seen;
        let ended = self.remove_ended_hold(seen, record).await?;
        if held.is_some() {
            warn!(%reason, "reconcile cannot act");
        }
        let held = held.filter(|_| self.speaks(run));
        let snapshot = raw_snapshot(service);
        let none = Estimate::none();
        if held.is_none() && ended.is_none() {
            let entry = self.entry(reason, current, current, snapshot, &none, None);
            return Ok((Decision::Skipped, entry));
        }
        let arn = self.service_arn(service);
        let (n, reason) = match held {
            Some(h) => {
                let n = notes::held(
                    &self.cfg,
                    run,
                    current,
                    h,
                    &reason,
                    snapshot.as_deref(),
                    &arn,
                    true,
                );
                (n, reason)
            }
            None => {
                let reason = format!(
                    "the hold {}=skip-until={} ended, so the window decides again; {reason}",
                    tags::OFFHOURS,
                    ended.map(offhours::utc_second).unwrap_or_default()
                );
                let n = notes::hold_ended(&self.cfg, run, current, &reason, &arn);
                let n = notes::with_details(
                    &self.cfg,
                    n,
                    run,
                    &reason,
                    current,
                    current,
                    snapshot.as_deref(),
                    &none,
                );
                (n, reason)
            }
        };
        let n = notes::with_expired_hold(n, ended, run.dry_run);
        let sent = self.send(n, record).await?;
        let entry = self.entry(reason, current, current, snapshot, &none, Some(sent));
        Ok((Decision::Skipped, entry))
    }

    /// Whether a reconcile that changes nothing speaks (a problem it cannot fix, or a
    /// dry run): at the first run after the window changes, and once an hour.
    fn speaks(&self, run: &Run) -> bool {
        let tick = run.scheduled.unwrap_or(run.now);
        reconcile::reminds(tick)
            || self
                .cfg
                .window
                .as_ref()
                .is_some_and(|w| reconcile::first_run_after_change(w, run.now))
    }

    /// Carries out a scale-down plan (steps 6 and 7).
    async fn down(
        &self,
        seen: &Seen<'_>,
        plan: DownPlan,
        mode: Mode,
        record: &mut Record,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let Seen {
            run,
            service,
            current,
            ..
        } = *seen;
        info!(?plan, "scale-down plan");
        let (save, to) = match plan {
            DownPlan::Postpone(rollout) => {
                let why = format!(
                    "deployment {} of the service is still rolling out ({}); the off-hours \
                     scale-down would fight it. Nothing was changed; the scale-down is tried \
                     again {}",
                    rollout.deployment,
                    rollout.state,
                    match mode {
                        Mode::Explicit => "by Lambda's retry",
                        Mode::Reconcile => "at the next reconcile",
                    }
                );
                return self
                    .cannot(seen, Held::Deploying, Error::NotNow(why), mode, record)
                    .await;
            }
            DownPlan::Hold { tag, problem } => {
                return self
                    .cannot(
                        seen,
                        Held::Unreadable(tag),
                        Error::Misconfigured(problem),
                        mode,
                        record,
                    )
                    .await;
            }
            DownPlan::Skip(why) if mode == Mode::Reconcile => {
                let snapshot = raw_snapshot(service);
                let reason = notes::reconcile_skip_reason(&self.cfg, run, why, snapshot.as_deref());
                return self.quiet(seen, None, reason, record).await;
            }
            DownPlan::Skip(why) => return self.skipped(seen, why, record).await,
            // Saved to the second: the tag is for people.
            DownPlan::Lower { save, to } => {
                (save.map(|s| s.saved_at(run.now.trunc_subsecs(0))), to)
            }
        };
        if run.dry_run && mode == Mode::Reconcile && !self.speaks(run) {
            // Said at the first run after the window changed, and once an hour.
            let reason = format!(
                "dry run: would lower {} from {current} to {to} (said at the first run after \
                 the window changes and once an hour)",
                self.cfg.common.service
            );
            let snapshot = raw_snapshot(service);
            let entry = self.entry(reason, current, &to, snapshot, &Estimate::none(), None);
            return Ok((Decision::ScaledDown, entry));
        }

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
        let ended = self.remove_ended_hold(seen, record).await?;
        let night = self.night_ahead(run);
        let estimate = self
            .estimate(
                service,
                offhours::tasks_removed(current, &to),
                night.as_ref(),
            )
            .await;

        let snapshot_line = match &save {
            Some(s) => s.render(),
            None => raw_snapshot(service).unwrap_or_default(),
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
        let n = notes::with_expired_hold(n, ended, run.dry_run);
        self.finish(
            n,
            run,
            Decision::ScaledDown,
            reason,
            current,
            &to,
            Some(snapshot_line),
            &estimate,
            record,
        )
        .await
    }

    /// Carries out a restore plan (steps 6 and 7).
    async fn up(
        &self,
        seen: &Seen<'_>,
        plan: UpPlan,
        mode: Mode,
        record: &mut Record,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let Seen {
            run,
            service,
            exclusion,
            current,
        } = *seen;
        info!(?plan, "scale-up plan");
        let (to, snapshot, notes) = match plan {
            UpPlan::Hold { tag, problem } => {
                return self
                    .cannot(
                        seen,
                        Held::Unreadable(tag),
                        Error::Misconfigured(problem),
                        mode,
                        record,
                    )
                    .await;
            }
            UpPlan::Skip(why) if mode == Mode::Reconcile => {
                let reason = notes::reconcile_skip_reason(&self.cfg, run, why, None);
                return self.quiet(seen, None, reason, record).await;
            }
            UpPlan::Skip(why) => return self.skipped(seen, why, record).await,
            UpPlan::Restore {
                to,
                snapshot,
                notes,
            } => (to, snapshot, notes),
        };
        if run.dry_run && mode == Mode::Reconcile && !self.speaks(run) {
            // Said at the first run after the window changed, and once an hour.
            let reason = format!(
                "dry run: would restore {} from {current} to {to} (said at the first run after \
                 the window changes and once an hour)",
                self.cfg.common.service
            );
            let snapshot = raw_snapshot(service);
            let entry = self.entry(reason, current, &to, snapshot, &Estimate::none(), None);
            return Ok((Decision::ScaledUp, entry));
        }

        // The wake-up marker first, when tasks have to start: a scale-up that cannot be
        // completed is then caught by the same deadline as tasks that cannot start.
        let marker = if record.wake_removed {
            None
        } else {
            service.tags.offhours_wake.as_ref()
        };
        let wake = wake::needed(marker, service.running_count, to.desired)
            .then(|| Wake::starting(run.now.trunc_subsecs(0), to.desired));
        if !run.dry_run {
            if let Some(w) = &wake {
                self.ecs
                    .tag_service(
                        &self.service_arn(service),
                        &[(tags::OFFHOURS_WAKE.to_owned(), w.render())],
                    )
                    .await?;
                info!(wake = %w, "wake-up check started");
            }
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
        let ended = self.remove_ended_hold(seen, record).await?;
        // The night that ends saved the tasks the day had (as saved) and the night did
        // not: a count raised only by the restored minimum was never removed.
        let day = Capacity {
            target: None,
            desired: snapshot.desired,
        };
        let night = snapshot
            .saved
            .filter(|saved| *saved < run.now)
            .map(|saved| {
                Night::between(
                    saved,
                    run.now,
                    format!(
                        "since the snapshot was saved at {}",
                        notes::local(&self.cfg, saved)
                    ),
                )
            });
        let estimate = self
            .estimate(
                service,
                offhours::tasks_removed(&day, current),
                night.as_ref(),
            )
            .await;
        let (summary, reason) = notes::up_reason(&self.cfg, run, current, &to, &snapshot);
        let n = notes::up(
            &self.cfg,
            run,
            current,
            &to,
            &snapshot,
            &notes,
            &summary,
            &estimate,
            matches!(exclusion, Exclusion::Held { .. }),
            wake.as_ref(),
            &self.service_arn(service),
        );
        let n = notes::with_expired_hold(n, ended, run.dry_run);
        self.finish(
            n,
            run,
            Decision::ScaledUp,
            reason,
            current,
            &to,
            Some(snapshot.render()),
            &estimate,
            record,
        )
        .await
    }

    /// A plan that cannot be carried out now (a rollout in progress) or at all (a tag
    /// nobody can read): nothing changes. An explicit action tells the team and fails
    /// with `e`; reconcile succeeds, and tells the team at the first run after the
    /// window changes and once an hour.
    async fn cannot(
        &self,
        seen: &Seen<'_>,
        why: Held,
        e: Error,
        mode: Mode,
        record: &mut Record,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let Seen {
            run,
            service,
            current,
            ..
        } = *seen;
        warn!(error = %e, "not scaling");
        if mode == Mode::Reconcile {
            return self.quiet(seen, Some(why), e.to_string(), record).await;
        }
        let n = notes::held(
            &self.cfg,
            run,
            current,
            why,
            &e.to_string(),
            raw_snapshot(service).as_deref(),
            &self.service_arn(service),
            false,
        );
        if let Err(publish) = self.notifier.send(&n).await {
            warn!(error = %publish, "the scale.skipped notification could not be sent");
        }
        Err(e)
    }

    /// An explicit action that leaves the service alone: `scale.skipped`.
    async fn skipped(
        &self,
        seen: &Seen<'_>,
        why: SkipReason,
        record: &mut Record,
    ) -> Result<(Decision, ServiceOutcome), Error> {
        let Seen {
            run,
            service,
            current,
            ..
        } = *seen;
        let ended = self.remove_ended_hold(seen, record).await?;
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
        let n = notes::with_expired_hold(n, ended, run.dry_run);
        self.finish(
            n,
            run,
            Decision::Skipped,
            reason,
            current,
            current,
            raw_snapshot,
            &Estimate::none(),
            record,
        )
        .await
    }

    /// Removes the tag of a hold that has ended (not in a dry run), once per run.
    async fn remove_ended_hold(
        &self,
        seen: &Seen<'_>,
        record: &mut Record,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        let Seen {
            run,
            service,
            exclusion,
            ..
        } = *seen;
        let Some(ended) = exclusion.expired() else {
            return Ok(None);
        };
        if record.hold_removed.is_none() && !run.dry_run {
            self.ecs
                .untag_service(&self.service_arn(service), &[tags::OFFHOURS.to_owned()])
                .await?;
            info!(hold = %ended, "an ended hold's tag was removed");
        }
        record.hold_removed = Some(ended);
        Ok(Some(ended))
    }

    /// The capacity: the scalable target (DescribeScalableTargets; none for a service
    /// scaled by hand) and the desired count read in step 2.
    async fn capacity(&self, service: &ServiceState) -> Result<Capacity, Error> {
        let c = &self.cfg.common;
        let target = self.scaling.describe_target(&c.cluster, &c.service).await?;
        let current = Capacity {
            target,
            desired: service.desired_count,
        };
        info!(current = %current, "capacity read");
        Ok(current)
    }

    fn targets(&self) -> Targets {
        Targets {
            min_capacity: self.cfg.min_capacity,
            desired_count: self.cfg.desired_count,
        }
    }

    /// The night a scale-down saves: from now until the window's day begins. Unknown
    /// without a window, or during uptime (a forced scale-down lasts until the next
    /// reconcile).
    fn night_ahead(&self, run: &Run) -> Option<Night> {
        let m = run.moment.as_ref().filter(|m| !m.up)?;
        let end = m.next_change?;
        Some(Night::between(
            run.now,
            end,
            format!(
                "until {}, when the window's day begins",
                notes::local(&self.cfg, end)
            ),
        ))
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

    /// The saving of the night for `tasks` tasks, from the service's task definition
    /// (one DescribeTaskDefinition, only when a task count changes). Informational: a
    /// failure only loses the figure, because the capacity has already been changed.
    async fn estimate(
        &self,
        service: &ServiceState,
        tasks: i32,
        night: Option<&Night>,
    ) -> Estimate {
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
        Estimate::of(td, tasks, night)
    }

    /// Publishes `n` and records it for the outcome.
    async fn send(&self, n: Notification, record: &mut Record) -> Result<&'static str, Error> {
        let sent = self.notifier.send(&n).await?;
        let event_type = sent.event_type.as_str();
        record.sent.push(sent);
        Ok(event_type)
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
        record: &mut Record,
    ) -> Result<(Decision, ServiceOutcome), Error> {
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
        let sent = self.send(n, record).await?;
        Ok((
            decision,
            self.entry(reason, before, after, snapshot, estimate, Some(sent)),
        ))
    }

    fn entry(
        &self,
        reason: String,
        before: &Capacity,
        after: &Capacity,
        snapshot: Option<String>,
        estimate: &Estimate,
        notification: Option<&'static str>,
    ) -> ServiceOutcome {
        let c = &self.cfg.common;
        ServiceOutcome {
            service: c.service.clone(),
            cluster: c.cluster.clone(),
            before: before.into(),
            after: after.into(),
            reason,
            snapshot,
            estimated_saving_usd: estimate.usd,
            notification,
        }
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
