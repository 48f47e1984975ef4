//! Step 3 of offhours-scaler's story: the wake-up check of an earlier scale-up
//! (docs/reference.md §3.9). The decision is [`wake::check`], a pure function of the
//! marker, the counts and the clock; this module carries it out with at most three
//! calls (the marker written, `scale.failed` or its resolve, the marker confirmed or
//! removed).

use chrono::{DateTime, SubsecRound, Utc};
use tracing::{info, warn};

use menotime_shared::aws::autoscaling::ScalingApi;
use menotime_shared::aws::ecs::EcsApi;
use menotime_shared::domain::service::ServiceState;
use menotime_shared::domain::wake::{self, Check, Counts, Wake, WakeState};
use menotime_shared::notify::Publisher;
use menotime_shared::{tags, Error};

use crate::notes::{self, Waking};
use crate::{OffhoursScaler, Record, Run};

impl<E: EcsApi + Sync, A: ScalingApi + Sync, P: Publisher + Sync> OffhoursScaler<E, A, P> {
    /// Step 3: the wake-up of an earlier scale-up. Reached: a page (sent or only
    /// recorded) is resolved *first*, then the marker goes, so a failed resolve is
    /// sent again by the next run. Past the deadline: `state=paging` is written
    /// *before* the page and `state=paged` after it, so a page is never sent twice once
    /// it is known sent, and any later run (Lambda's retry, a redrive with a new request
    /// id, the next reconcile) publishes one that is not. Nothing is written in a dry
    /// run.
    pub(crate) async fn check_wake(
        &self,
        run: &Run,
        service: &ServiceState,
        record: &mut Record,
    ) -> Result<(), Error> {
        let check = wake::check(
            service.tags.offhours_wake.as_ref(),
            Counts {
                desired: service.desired_count,
                running: service.running_count,
            },
            service.tags.offhours_snapshot.as_ref(),
            self.cfg.wake_timeout(),
            run.now,
        );
        let arn = self.service_arn(service);
        let untag = || async {
            if run.dry_run {
                return Ok(());
            }
            self.ecs
                .untag_service(&arn, &[tags::OFFHOURS_WAKE.to_owned()])
                .await
        };
        record.wake = match check {
            Check::Nothing => None,
            Check::Waiting { deadline, .. } => {
                info!(%deadline, running = service.running_count, "waiting for the tasks of the scale-up");
                Some("waiting")
            }
            Check::StillPaged { .. } => Some("still_paged"),
            Check::Unreadable { value, problem } => {
                warn!(%value, %problem, "the wake-up marker cannot be read; removed, its check is lost");
                untag().await?;
                record.wake_removed = !run.dry_run;
                Some("unreadable")
            }
            Check::Reached { wake, target } => {
                info!(since = %wake.since, running = service.running_count, target, "the scale-up reached its count");
                if wake.state != WakeState::Waiting {
                    let w = Waking {
                        wake: &wake,
                        service,
                        target,
                        deadline: wake.deadline(self.cfg.wake_timeout()),
                    };
                    self.send(notes::wake_resolved(&self.cfg, run, &w), record)
                        .await?;
                }
                untag().await?;
                record.wake_removed = !run.dry_run;
                Some("reached")
            }
            Check::Overdue { wake, .. } if run.dry_run => {
                warn!(since = %wake.since, "dry run: would page, the scale-up did not reach its count");
                Some("would_page")
            }
            Check::Overdue {
                wake,
                target,
                deadline,
            } => {
                let paging = wake.paging(run.now.trunc_subsecs(0), &run.request_id);
                self.ecs
                    .tag_service(&arn, &[(tags::OFFHOURS_WAKE.to_owned(), paging.render())])
                    .await?;
                self.page_wake(run, service, &paging, target, deadline, false, record)
                    .await?;
                Some("paged")
            }
            Check::Resend {
                wake,
                target,
                deadline,
            } => {
                self.page_wake(run, service, &wake, target, deadline, true, record)
                    .await?;
                Some("resent")
            }
        };
        Ok(())
    }

    /// Publishes `scale.failed` for a wake-up recorded `state=paging`, then confirms it
    /// (`state=paged`; not in a dry run).
    #[allow(clippy::too_many_arguments)]
    async fn page_wake(
        &self,
        run: &Run,
        service: &ServiceState,
        wake: &Wake,
        target: i32,
        deadline: DateTime<Utc>,
        resent: bool,
        record: &mut Record,
    ) -> Result<(), Error> {
        let w = Waking {
            wake,
            service,
            target,
            deadline,
        };
        let n = notes::wake_failed(&self.cfg, run, &w, self.function_name.as_deref(), resent);
        self.send(n, record).await?;
        if run.dry_run {
            return Ok(());
        }
        self.ecs
            .tag_service(
                &self.service_arn(service),
                &[(tags::OFFHOURS_WAKE.to_owned(), wake.paged().render())],
            )
            .await
    }
}
