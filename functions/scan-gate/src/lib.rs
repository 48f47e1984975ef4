//! scan-gate: a finished image scan becomes a safe deployment, exactly once.
//!
//! The whole story of one invocation, in order:
//!
//! 1. **Accept** an "ECR Image Scan", "Inspector2 Scan" or "Deploy Approval" event for
//!    this account, region and repository, or the "ECS Deployment State Change" of this
//!    service (a rollout ended: step 8); anything else is rejected, nothing changes.
//! 2. **Route**: only an image with a tag matching `DEPLOY_TAG_PATTERN` concerns this
//!    environment; otherwise `not_routed`, silently (0 calls). An approval for this
//!    environment must be younger than `APPROVAL_MAX_AGE_HOURS`, then re-reads the
//!    image's counts from ECR (1 call).
//! 3. **Gate** on the counts: blocking severities → `blocked`; review severities →
//!    `review_required` with the approval command (which fills in `reviewed-counts`);
//!    an approval waives review only while no count exceeds what it reviewed.
//!    (1 call: the notification.)
//! 4. **Read the service** (DescribeServices with tags): frozen → `frozen`.
//! 5. **Read revisions**: the latest of the family, which is normally the running one
//!    (DescribeTaskDefinition with tags; a second one only if they differ).
//! 6. **Plan**: already running → `skipped` (writing the deployed mark an interrupted
//!    attempt left out); the family's newest revision is this image, marked deployed
//!    and left by the service (a rollback) → `skipped`, unless approved; an older
//!    release or a late scan → `skipped`; a newer image waiting for a rollout →
//!    `skipped` (superseded); another rollout in progress → `deferred`: the image waits
//!    in `menotime:deploy-deferred` (written first, then `deploy.deferred`); a revision
//!    left by an interrupted attempt → reuse it.
//!    Only an image about to be deployed (a new or reused revision) meets the manual's
//!    safety net (`REQUIRE_SAFE_ROLLOUT`, always in prod): a service without the
//!    circuit breaker (with rollback) and minimumHealthyPercent 100 → `blocked`, with
//!    the command that restores them.
//! 7. **Deploy**: RegisterTaskDefinition (a faithful copy, image pinned by digest),
//!    UpdateService, TagResource `menotime:deployed` on the revision, notify
//!    `deploy.started`; an older image that waited is reported superseded and its tag
//!    removed. With `DRY_RUN=true`, notify only.
//! 8. **A rollout completed**: the image waiting for it has its findings re-read from
//!    ECR and goes through steps 3 to 7 with the service already read; whatever became
//!    of it is published, then its tag is removed.
//!
//! A clean deployment therefore costs 6 calls: DescribeServices, DescribeTaskDefinition,
//! RegisterTaskDefinition, UpdateService, TagResource, Publish.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use menotime_shared::arn::Arn;
use menotime_shared::aws::ecr::EcrApi;
use menotime_shared::aws::ecs::{EcsApi, Revision};
use menotime_shared::config::ScanGateConfig;
use menotime_shared::domain::deploy::{
    self, Candidate, Deferred, DeployedMark, Plan, Skip, Waiting,
};
use menotime_shared::domain::ecs_event::{
    parse_ecs_event, DeploymentChange, DeploymentEvent, EcsEvent, Site, SOURCE_ECS,
};
use menotime_shared::domain::image::pinned_uri;
use menotime_shared::domain::policy::{self, Gate};
use menotime_shared::domain::routing::route;
use menotime_shared::domain::safety;
use menotime_shared::domain::scan::{parse_trigger, Approval, Expect, Trigger};
use menotime_shared::domain::service::{Rollout, ServiceState, Tagged};
use menotime_shared::domain::severity::{ReviewedCounts, Severity, SeverityCounts};
use menotime_shared::notify::{Notification, Notifier, Publisher};
use menotime_shared::{tags, Error};

mod notes;

/// What scan-gate decided (docs/reference.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Deployed (or, with `dry_run`, would have deployed).
    Deployed,
    /// Cleared while another rollout is under way: it waits in
    /// `menotime:deploy-deferred` and is deployed when that rollout completes.
    Deferred,
    Blocked,
    ReviewRequired,
    Frozen,
    Skipped,
    NotRouted,
}

/// The invocation result: the decision and the facts behind it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    #[serde(rename = "outcome")]
    pub decision: Decision,
    /// One sentence saying why.
    pub reason: String,
    pub environment: String,
    pub cluster: String,
    pub service: String,
    pub source_event_id: String,
    pub repository: String,
    pub image_digest: String,
    /// The tag the image was routed by.
    pub image_tag: Option<String>,
    pub image_tags: Vec<String>,
    /// `<registry>/<repository>@<digest>`, the image a deployment runs.
    pub image: Option<String>,
    pub counts: Value,
    pub approved_by: Option<String>,
    /// The revision the service runs after this invocation (none in a dry run).
    pub task_definition: Option<String>,
    /// The revision the service ran before (also reported in a dry run).
    pub previous_task_definition: Option<String>,
    /// True when a revision registered by an earlier, interrupted attempt was reused.
    pub reused_revision: bool,
    pub deployment_id: Option<String>,
    pub dry_run: bool,
    /// The `event_type` published, if any.
    pub notification: Option<&'static str>,
    /// When the image had waited for a rollout (a deferred image resumed): the event
    /// that cleared it then.
    pub deferred_event: Option<String>,
}

/// The handler, generic over its three AWS dependencies so tests can drive it with
/// fakes or with mocked SDK clients.
pub struct ScanGate<E, R, P> {
    cfg: ScanGateConfig,
    ecs: E,
    ecr: R,
    notifier: Notifier<P>,
    /// Now, for the age of approvals (tests set it).
    clock: fn() -> DateTime<Utc>,
}

/// Who approved an image held for review, and why.
pub(crate) struct Approver {
    pub by: String,
    pub reason: String,
    /// The counts the approver reviewed.
    pub reviewed: ReviewedCounts,
}

/// The image under decision, whatever event brought it.
pub(crate) struct Subject {
    /// The event this invocation handles.
    pub event_id: String,
    /// The event that cleared the image: the scan or the approval (for a deferred
    /// image resumed, the one that cleared it before it waited).
    pub origin: String,
    pub occurred_at: DateTime<Utc>,
    pub digest: String,
    pub tags: Vec<String>,
    pub counts: SeverityCounts,
    /// When the scan that produced `counts` completed.
    pub scanned_at: DateTime<Utc>,
    /// Where the counts come from, for people.
    pub source: &'static str,
    pub approval: Option<Approver>,
}

impl<E: EcsApi + Sync, R: EcrApi + Sync, P: Publisher + Sync> ScanGate<E, R, P> {
    pub fn new(cfg: ScanGateConfig, ecs: E, ecr: R, publisher: P) -> Self {
        let notifier = Notifier::new(&cfg.common, publisher);
        Self {
            cfg,
            ecs,
            ecr,
            notifier,
            clock: Utc::now,
        }
    }

    /// The same handler with another clock (tests).
    pub fn with_clock(mut self, clock: fn() -> DateTime<Utc>) -> Self {
        self.clock = clock;
        self
    }

    pub async fn handle(&self, event: Value) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        // 1. Accept. A rollout of the service ended: resume the image waiting for it.
        if event.get("source").and_then(Value::as_str) == Some(SOURCE_ECS) {
            let ev = self.rollout_event(&event)?;
            return self.rollout_ended(ev).await;
        }
        let trigger = parse_trigger(
            &event,
            Expect {
                account: &c.account,
                region: &c.region,
                repository: &self.cfg.repository,
            },
        )?;

        // 2. Route (before any AWS call: every stack in the account sees every event).
        let (subject, tag) = match trigger {
            Trigger::Scan(s) => {
                let tag = route(&s.tags, &self.cfg.deploy_tag_pattern).map(str::to_owned);
                let subject = Subject {
                    origin: s.envelope.id.clone(),
                    event_id: s.envelope.id,
                    occurred_at: s.envelope.time,
                    digest: s.digest,
                    tags: s.tags,
                    counts: s.counts,
                    scanned_at: s.envelope.time,
                    source: s.scanner.label(),
                    approval: None,
                };
                (subject, tag)
            }
            Trigger::Approval(a) => {
                match route(std::slice::from_ref(&a.tag), &self.cfg.deploy_tag_pattern) {
                    Some(tag) => {
                        let tag = tag.to_owned();
                        (self.approved_subject(a).await?, Some(tag))
                    }
                    None => (unread_approval(a), None),
                }
            }
        };
        info!(
            event_id = %subject.event_id,
            digest = %subject.digest,
            tags = ?subject.tags,
            counts = %subject.counts,
            source = subject.source,
            "scan received"
        );
        let Some(tag) = tag else {
            let reason = format!(
                "no tag of {:?} matches DEPLOY_TAG_PATTERN {}; the image is not for {}",
                subject.tags,
                self.cfg.deploy_tag_pattern.as_str(),
                c.environment
            );
            return Ok(self.outcome(Decision::NotRouted, reason, &subject, None));
        };
        self.decide(&subject, &tag, None, None).await
    }

    /// Steps 3 to 7 for a routed image: gate, freeze, plan, deploy (or defer, or skip).
    /// `service` when already read; `resuming` when the image is the one that waited
    /// for a rollout (its deferral is removed once its fate is published).
    async fn decide(
        &self,
        subject: &Subject,
        tag: &str,
        service: Option<ServiceState>,
        resuming: Option<&Deferred>,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        if subject.counts.get(Severity::Low) > 0 {
            info!(low = subject.counts.get(Severity::Low), digest = %subject.digest, %tag, "LOW findings logged for tracking");
        }

        // 3. Gate. An approval waives the review severities only while the counts are
        // no higher than the ones its approver reviewed.
        let grown = subject
            .approval
            .as_ref()
            .map(|a| {
                policy::approval_not_covering(
                    &subject.counts,
                    &a.reviewed,
                    &self.cfg.review_severities,
                )
            })
            .unwrap_or_default();
        let held = match policy::gate(
            &subject.counts,
            &self.cfg.block_severities,
            &self.cfg.review_severities,
            subject.approval.is_some() && grown.is_empty(),
        ) {
            Gate::Pass => None,
            Gate::Block(findings) => {
                let reason = format!(
                    "{tag} ({}) has {}; blocking severities are never deployed",
                    subject.digest,
                    policy::describe(&findings)
                );
                let n = notes::blocked(&self.cfg, subject, tag, &findings);
                Some((n, Decision::Blocked, reason))
            }
            Gate::Review(findings) => {
                let mut reason = format!(
                    "{tag} ({}) has {}; a human must approve it with a Deploy Approval event",
                    subject.digest,
                    policy::describe(&findings)
                );
                if !grown.is_empty() {
                    reason = format!(
                        "{tag} ({}) has more findings than its approver reviewed ({}); it needs a new review and approval",
                        subject.digest,
                        grown
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                let n = notes::review(&self.cfg, subject, tag, &findings, &grown);
                Some((n, Decision::ReviewRequired, reason))
            }
        };
        if let Some((n, decision, reason)) = held {
            let o = self.finish(n, decision, reason, subject, tag).await?;
            if let (Some(_), Some(service)) = (resuming, &service) {
                self.untag_deferred(service).await?;
            }
            return Ok(o);
        }

        // 4. Read the service.
        let service = match service {
            Some(s) => s,
            None => self.ecs.describe_service(&c.cluster, &c.service).await?,
        };
        if let Some(why) = &service.tags.freeze {
            let reason = format!(
                "{} is frozen ({why}); {tag} was not deployed. Lift the freeze after review, then rescan or approve the image again",
                c.service
            );
            let n = notes::frozen(&self.cfg, subject, tag, why);
            let o = self
                .finish(n, Decision::Frozen, reason, subject, tag)
                .await?;
            if resuming.is_some() {
                self.untag_deferred(&service).await?;
            }
            return Ok(o);
        }

        // 5. Read revisions.
        let (running, latest) = self.revisions(&service.task_definition).await?;

        // 6. Plan, and what it means for an image waiting for a rollout.
        let candidate = Candidate {
            digest: subject.digest.clone(),
            tag: tag.to_owned(),
            image: pinned_uri(&c.account, &c.region, &self.cfg.repository, &subject.digest),
            scanned_at: subject.scanned_at,
            approved: subject.approval.is_some(),
        };
        let plan = deploy::plan(&candidate, &service, &running.facts, &latest.facts);
        let deferred = match &service.tags.deferred {
            Some(Tagged::Read(d)) => Some(d),
            Some(Tagged::Unreadable { value, problem }) => {
                warn!(tag = tags::DEPLOY_DEFERRED, %value, %problem, "unreadable deferral, treated as absent");
                None
            }
            None => None,
        };
        let waiting = deploy::waiting(&candidate, deferred);
        info!(?plan, ?waiting, running = %running.facts.arn, latest = %latest.facts.arn, "deploy plan");
        match (plan, waiting) {
            (Plan::Skip(skip), waiting) => {
                let o = self
                    .skipped(subject, &candidate, &service, &running, &skip)
                    .await?;
                if waiting == Waiting::Same {
                    self.untag_deferred(&service).await?;
                }
                Ok(o)
            }
            (_, Waiting::Newer(newer)) => {
                let skip = Skip::Superseded {
                    by_tag: newer.tag.clone(),
                    by_digest: newer.digest.clone(),
                };
                self.skipped(subject, &candidate, &service, &running, &skip)
                    .await
            }
            (Plan::Busy(rollout), waiting) => {
                self.defer(subject, &candidate, &service, &rollout, waiting)
                    .await
            }
            // 7. Deploy, if the service rolls deployments back safely. Only an image
            // about to be deployed meets the safety net: one that is skipped would not
            // be deployed anyway, and one deferred meets it when its rollout completes.
            (plan @ (Plan::Register | Plan::Reuse { .. }), waiting) => {
                let gaps = safety::gaps(service.deployment_configuration.as_ref());
                if self.cfg.require_safe_rollout && !gaps.is_empty() {
                    let reason = format!(
                        "{} lacks the manual's deployment safety net ({}); {tag} was not deployed. Restore it with the update-service command in the notification, then scan or approve the image again",
                        c.service,
                        gaps.iter().map(|g| g.describe()).collect::<Vec<_>>().join("; ")
                    );
                    let n = notes::unsafe_rollout(&self.cfg, subject, tag, &service, &gaps);
                    let o = self
                        .finish(n, Decision::Blocked, reason, subject, tag)
                        .await?;
                    // The waiting image's fate is published: it waits no longer. An
                    // older image waiting keeps waiting (this one was not deployed).
                    if waiting == Waiting::Same {
                        self.untag_deferred(&service).await?;
                    }
                    return Ok(o);
                }
                let o = self
                    .deploy(subject, &candidate, &running, &latest, plan)
                    .await?;
                match waiting {
                    Waiting::Older(old) => {
                        self.superseded(&old, &candidate, subject).await?;
                        self.untag_deferred(&service).await?;
                    }
                    Waiting::Same => self.untag_deferred(&service).await?,
                    Waiting::Nothing | Waiting::Newer(_) => {}
                }
                Ok(o)
            }
        }
    }

    /// The "ECS Deployment State Change" of this service, checked like every event.
    fn rollout_event(&self, event: &Value) -> Result<DeploymentEvent, Error> {
        let c = &self.cfg.common;
        match parse_ecs_event(
            event,
            Site {
                account: &c.account,
                region: &c.region,
                cluster: &c.cluster,
                service: &c.service,
            },
        )? {
            EcsEvent::Deployment(d) => Ok(d),
            other => Err(Error::rejected(format!(
                "scan-gate does not handle {} events; of aws.ecs it takes only \"ECS Deployment State Change\" (to resume a deferred image)",
                other.envelope().detail_type
            ))),
        }
    }

    /// A rollout of the service ended. If it completed and an image waits for it
    /// (`menotime:deploy-deferred`), that image's current findings are read from ECR
    /// again (it may have been rescanned) and it goes through the gate, the freeze and
    /// the plan as if its scan had just arrived; its deferral is removed last.
    async fn rollout_ended(&self, ev: DeploymentEvent) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let service = self.ecs.describe_service(&c.cluster, &c.service).await?;
        let d = match &service.tags.deferred {
            None => {
                return Ok(self.rollout_outcome(
                    &ev,
                    Decision::NotRouted,
                    format!(
                        "deployment {} {}; no image waits for a rollout of {}",
                        ev.deployment_id,
                        ev.change.name(),
                        c.service
                    ),
                ))
            }
            Some(Tagged::Unreadable { value, problem }) => {
                return Err(Error::Misconfigured(format!(
                    "the service's {} tag {value:?} cannot be read ({problem}); deploy that image by hand (or approve it) and remove the tag: aws ecs untag-resource --resource-arn {} --tag-keys {}",
                    tags::DEPLOY_DEFERRED,
                    service.arn,
                    tags::DEPLOY_DEFERRED
                )))
            }
            Some(Tagged::Read(d)) => d.clone(),
        };
        if ev.change != DeploymentChange::Completed {
            return Ok(self.rollout_outcome(
                &ev,
                Decision::Deferred,
                format!(
                    "deployment {} {}: {} ({}) keeps waiting for a rollout that completes",
                    ev.deployment_id,
                    ev.change.name(),
                    d.tag,
                    d.digest
                ),
            ));
        }
        info!(digest = %d.digest, tag = %d.tag, deployment = %ev.deployment_id, "resuming the deferred image");
        let f = match self
            .ecr
            .scan_findings(&self.cfg.repository, &d.digest, &d.tag)
            .await
        {
            Ok(f) => f,
            Err(Error::Rejected(why)) => return self.dropped(&ev, &service, &d, &why).await,
            Err(e) => return Err(e),
        };
        if matches!(f.status.as_str(), "IN_PROGRESS" | "PENDING") {
            return Err(Error::NotNow(format!(
                "the deferred image {} ({}) is being scanned again ({}); Lambda retries this shortly",
                d.tag, d.digest, f.status
            )));
        }
        let counts = match f.counts {
            Some(counts) if f.is_complete() => counts,
            _ => {
                let why = format!(
                    "ECR reports its scan {} ({}) without findings to check",
                    f.status, f.description
                );
                return self.dropped(&ev, &service, &d, &why).await;
            }
        };
        // ECS may still show the rollout that completed in progress; only one started
        // since this completion keeps the image waiting.
        let service = service.after_completion(&ev.deployment_id, ev.at);
        let subject = Subject {
            event_id: ev.envelope.id.clone(),
            origin: d.event.clone(),
            occurred_at: ev.at,
            digest: d.digest.clone(),
            tags: vec![d.tag.clone()],
            counts,
            scanned_at: d.scanned_at,
            source: "ECR scan findings, re-read when the rollout completed",
            approval: d.approved_by.clone().map(|by| Approver {
                by,
                reason: "approved before the rollout it waited for".into(),
                reviewed: d.reviewed.clone().unwrap_or_default(),
            }),
        };
        let mut o = self
            .decide(&subject, &d.tag, Some(service), Some(&d))
            .await?;
        o.deferred_event = Some(d.event.clone());
        Ok(o)
    }

    /// The deferred image can no longer be checked (its tag moved, its scan is gone):
    /// reported skipped, its deferral removed.
    async fn dropped(
        &self,
        ev: &DeploymentEvent,
        service: &ServiceState,
        d: &Deferred,
        why: &str,
    ) -> Result<Outcome, Error> {
        let reason = format!(
            "the deferred image {} ({}) was not deployed: {why}",
            d.tag, d.digest
        );
        let n = notes::dropped(&self.cfg, d, ev, &reason);
        let sent = self.notifier.send(&n).await?;
        self.untag_deferred(service).await?;
        let mut o = self.rollout_outcome(ev, Decision::Skipped, reason);
        o.image_digest = d.digest.clone();
        o.image_tag = Some(d.tag.clone());
        o.deferred_event = Some(d.event.clone());
        o.notification = Some(sent.event_type.as_str());
        Ok(o)
    }

    /// Another rollout is under way: the image waits in `menotime:deploy-deferred`
    /// (written *before* `deploy.deferred` is published), replacing an older image
    /// that waited (reported superseded after).
    async fn defer(
        &self,
        s: &Subject,
        candidate: &Candidate,
        service: &ServiceState,
        rollout: &Rollout,
        waiting: Waiting,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let deferred = Deferred {
            digest: candidate.digest.clone(),
            tag: candidate.tag.clone(),
            scanned_at: candidate.scanned_at,
            event: s.origin.clone(),
            approved_by: s.approval.as_ref().map(|a| a.by.clone()),
            reviewed: s.approval.as_ref().map(|a| a.reviewed.clone()),
        };
        if waiting != Waiting::Same {
            self.write_service_tags(
                service,
                &[(tags::DEPLOY_DEFERRED.to_owned(), deferred.render())],
            )
            .await?;
        }
        let replaced = match &waiting {
            Waiting::Older(old) => Some(old),
            _ => None,
        };
        let reason = format!(
            "{} ({}) waits: deployment {} of {} is {}; scan-gate deploys it when that rollout completes{}",
            candidate.tag,
            candidate.digest,
            rollout.deployment,
            c.service,
            rollout.state,
            replaced
                .map(|o| format!(", instead of {} which waited before it", o.tag))
                .unwrap_or_default()
        );
        let n = notes::deferred(&self.cfg, s, candidate, rollout, replaced, &deferred);
        let mut o = self
            .finish(n, Decision::Deferred, reason, s, &candidate.tag)
            .await?;
        if let Some(old) = replaced {
            self.superseded(old, candidate, s).await?;
        }
        o.image = Some(candidate.image.clone());
        Ok(o)
    }

    /// `deploy.skipped` for the image that waited, superseded by `by`.
    async fn superseded(&self, old: &Deferred, by: &Candidate, s: &Subject) -> Result<(), Error> {
        let n = notes::superseded(&self.cfg, old, by, s);
        self.notifier.send(&n).await?;
        Ok(())
    }

    /// Removes `menotime:deploy-deferred`, last, once the waiting image's fate is
    /// published.
    async fn untag_deferred(&self, service: &ServiceState) -> Result<(), Error> {
        if self.cfg.common.dry_run || service.tags.deferred.is_none() {
            return Ok(());
        }
        self.ecs
            .untag_service(&service.arn, &[tags::DEPLOY_DEFERRED.to_owned()])
            .await
    }

    async fn write_service_tags(
        &self,
        service: &ServiceState,
        new: &[(String, String)],
    ) -> Result<(), Error> {
        if self.cfg.common.dry_run {
            info!(?new, "dry run: not tagging the service");
            return Ok(());
        }
        self.ecs.tag_service(&service.arn, new).await
    }

    fn rollout_outcome(&self, ev: &DeploymentEvent, decision: Decision, reason: String) -> Outcome {
        let c = &self.cfg.common;
        Outcome {
            decision,
            reason,
            environment: c.environment.as_str().to_owned(),
            cluster: c.cluster.clone(),
            service: c.service.clone(),
            source_event_id: ev.envelope.id.clone(),
            repository: self.cfg.repository.clone(),
            image_digest: String::new(),
            image_tag: None,
            image_tags: Vec::new(),
            image: None,
            counts: Value::Object(Default::default()),
            approved_by: None,
            task_definition: None,
            previous_task_definition: None,
            reused_revision: false,
            deployment_id: Some(ev.deployment_id.clone()),
            dry_run: c.dry_run,
            notification: None,
            deferred_event: None,
        }
    }

    /// An approval for this environment: the counts are re-read from ECR (an approval
    /// never trusts counts it does not carry), for the digest *and* tag it names, so
    /// a tag that moved to another image is refused by ECR itself.
    async fn approved_subject(&self, a: Approval) -> Result<Subject, Error> {
        let max_age = chrono::Duration::hours(i64::from(self.cfg.approval_max_age_hours));
        let age = (self.clock)() - a.envelope.time;
        if age > max_age {
            return Err(Error::rejected(format!(
                "approval {} for {}:{} was given at {}, {} hours ago, more than APPROVAL_MAX_AGE_HOURS ({}); the findings may have changed since: review the image again and send a new approval",
                a.envelope.id,
                self.cfg.repository,
                a.tag,
                a.envelope.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                age.num_hours(),
                self.cfg.approval_max_age_hours
            )));
        }
        let f = self
            .ecr
            .scan_findings(&self.cfg.repository, &a.digest, &a.tag)
            .await?;
        let rescan = format!(
            "aws ecr start-image-scan --repository-name {} --image-id imageDigest={}",
            self.cfg.repository, a.digest
        );
        if matches!(f.status.as_str(), "IN_PROGRESS" | "PENDING") {
            return Err(Error::NotNow(format!(
                "approval {} for {}:{} cannot be honoured yet: the image's scan is {}; Lambda retries it shortly",
                a.envelope.id, self.cfg.repository, a.tag, f.status
            )));
        }
        if !f.is_complete() {
            return Err(Error::rejected(format!(
                "approval {} for {}:{} cannot be honoured: the image's scan is {} ({}). Scan it again ({rescan}) and approve once the scan completes",
                a.envelope.id, self.cfg.repository, a.tag, f.status, f.description
            )));
        }
        let Some(counts) = f.counts else {
            return Err(Error::rejected(format!(
                "approval {} for {}:{}: ECR reports the scan {} but returned no findings summary, so the image cannot be checked. Scan it again ({rescan}) and approve once the scan completes",
                a.envelope.id, self.cfg.repository, a.tag, f.status
            )));
        };
        info!(approved_by = %a.approved_by, reason = %a.reason, "deploy approval received");
        Ok(Subject {
            origin: a.envelope.id.clone(),
            event_id: a.envelope.id,
            occurred_at: a.envelope.time,
            digest: a.digest,
            tags: vec![a.tag],
            counts,
            scanned_at: f.completed_at.unwrap_or(a.envelope.time),
            source: "ECR scan findings, re-read for the approval",
            approval: Some(Approver {
                by: a.approved_by,
                reason: a.reason,
                reviewed: a.reviewed,
            }),
        })
    }

    /// (running, latest): the revision the service runs and the newest of its family.
    /// One DescribeTaskDefinition when they are the same revision, as they normally are.
    async fn revisions(
        &self,
        running_arn: &str,
    ) -> Result<(Revision<E::Doc>, Revision<E::Doc>), Error> {
        let container = &self.cfg.container;
        let family = Arn::parse(running_arn)
            .and_then(|a| a.task_definition().map(|(f, _)| f.to_owned()))
            .ok_or_else(|| {
                Error::Misconfigured(format!(
                    "the service runs {running_arn:?}, which is not a task-definition ARN"
                ))
            })?;
        let latest = match self.ecs.describe_revision(&family, container).await {
            Ok(latest) if latest.facts.arn == running_arn => return Ok((latest.clone(), latest)),
            Ok(latest) => Some(latest),
            // A newer revision without our container (registered by hand for something
            // else) is nothing to reuse; the running one decides.
            Err(Error::Misconfigured(why)) => {
                warn!(%why, "the family's newest revision is not reusable");
                None
            }
            Err(e) => return Err(e),
        };
        let running = self.ecs.describe_revision(running_arn, container).await?;
        let latest = latest.unwrap_or_else(|| running.clone());
        Ok((running, latest))
    }

    /// Registers the revision (or reuses the one an interrupted attempt left), updates
    /// the service, and says so. A dry run only says what it would do.
    async fn deploy(
        &self,
        s: &Subject,
        candidate: &Candidate,
        running: &Revision<E::Doc>,
        latest: &Revision<E::Doc>,
        plan: Plan,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let (revision, reused, deployment) = if c.dry_run {
            (None, false, None)
        } else {
            let (revision, reused) = match plan {
                Plan::Reuse { .. } => {
                    info!(revision = %latest.facts.arn, "reusing the revision an interrupted attempt registered");
                    (latest.facts.clone(), true)
                }
                _ => {
                    let tags = deploy::revision_tags(
                        &running.facts,
                        candidate,
                        &s.origin,
                        s.approval.as_ref().map(|a| a.by.as_str()),
                    );
                    let r = self
                        .ecs
                        .register_revision(
                            &running.doc,
                            &self.cfg.container,
                            &candidate.image,
                            &tags,
                        )
                        .await?;
                    info!(revision = %r.arn, image = %candidate.image, "registered revision");
                    (r, false)
                }
            };
            let deployment = self
                .ecs
                .update_service(&c.cluster, &c.service, &revision.arn)
                .await?;
            info!(revision = %revision.arn, deployment = ?deployment, "service updated");
            // Mark the revision deployed: once the service leaves it (a rollback), no
            // later event deploys this image again. If the mark fails, so does the
            // invocation: its retry finds the image running and writes the mark.
            self.mark_deployed(&revision.arn, deployment.clone(), (self.clock)())
                .await?;
            (Some(revision), reused, deployment)
        };

        let deployed = notes::Deployed {
            candidate,
            previous: &running.facts.short(),
            previous_arn: &running.facts.arn,
            revision: revision.as_ref(),
            reused,
            deployment: deployment.as_deref(),
        };
        let (summary, reason) = notes::deploy_reason(&self.cfg, &deployed);
        let n = notes::started(&self.cfg, s, &deployed, &summary);
        let mut o = self
            .finish(n, Decision::Deployed, reason, s, &candidate.tag)
            .await?;
        o.image = Some(candidate.image.clone());
        o.task_definition = revision.map(|r| r.arn);
        o.previous_task_definition = Some(running.facts.arn.clone());
        o.reused_revision = reused;
        o.deployment_id = deployment;
        Ok(o)
    }

    /// `menotime:deployed` on the revision scan-gate deployed.
    async fn mark_deployed(
        &self,
        arn: &str,
        deployment: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mark = DeployedMark { deployment, at };
        self.ecs
            .tag_revision(arn, &[(tags::DEPLOYED.to_owned(), mark.render())])
            .await
    }

    async fn skipped(
        &self,
        s: &Subject,
        candidate: &Candidate,
        service: &ServiceState,
        running: &Revision<E::Doc>,
        skip: &Skip,
    ) -> Result<Outcome, Error> {
        let running = &running.facts;
        // The image runs, in a revision scan-gate registered, but its deployed mark is
        // missing: the attempt that deployed it died right after UpdateService. Write
        // it now, so a rollback of it is recognised later.
        if *skip == Skip::AlreadyRunning
            && running.registered_by_scan_gate()
            && running.deployed().is_none()
            && !self.cfg.common.dry_run
        {
            let primary = service.primary().filter(|d| {
                d.task_definition == running.arn || service.task_definition == running.arn
            });
            info!(revision = %running.arn, "writing the deployed mark an earlier attempt left out");
            self.mark_deployed(
                &running.arn,
                primary.map(|d| d.id.clone()),
                primary
                    .and_then(|d| d.created_at)
                    .unwrap_or_else(self.clock),
            )
            .await?;
        }
        // A redelivery of the event that deployed what runs (EventBridge delivers at
        // least once; Lambda retries when the first attempt failed after deploying).
        let by_this_event = running.tags.get(tags::SOURCE_EVENT) == Some(&s.origin);
        let (summary, reason) =
            notes::skip_reason(&self.cfg, candidate, running, skip, by_this_event);
        let n = notes::skipped(
            &self.cfg,
            s,
            candidate,
            running,
            skip,
            &summary,
            &reason,
            by_this_event,
        );
        let mut o = self
            .finish(n, Decision::Skipped, reason, s, &candidate.tag)
            .await?;
        o.image = Some(candidate.image.clone());
        o.task_definition = Some(running.arn.clone());
        Ok(o)
    }

    /// Adds the details every notification carries, publishes it, and returns the
    /// outcome that reports it.
    async fn finish(
        &self,
        n: Notification,
        decision: Decision,
        reason: String,
        s: &Subject,
        tag: &str,
    ) -> Result<Outcome, Error> {
        let n = notes::with_image_details(&self.cfg, n, s, tag, &reason);
        let sent = self.notifier.send(&n).await?;
        let mut o = self.outcome(decision, reason, s, Some(tag));
        o.notification = Some(sent.event_type.as_str());
        Ok(o)
    }

    fn outcome(
        &self,
        decision: Decision,
        reason: String,
        s: &Subject,
        tag: Option<&str>,
    ) -> Outcome {
        let c = &self.cfg.common;
        Outcome {
            decision,
            reason,
            environment: c.environment.as_str().to_owned(),
            cluster: c.cluster.clone(),
            service: c.service.clone(),
            source_event_id: s.event_id.clone(),
            repository: self.cfg.repository.clone(),
            image_digest: s.digest.clone(),
            image_tag: tag.map(str::to_owned),
            image_tags: s.tags.clone(),
            image: None,
            counts: s.counts.to_json(),
            approved_by: s.approval.as_ref().map(|a| a.by.clone()),
            task_definition: None,
            previous_task_definition: None,
            reused_revision: false,
            deployment_id: None,
            dry_run: c.dry_run,
            notification: None,
            deferred_event: None,
        }
    }
}

/// An approval for another environment: nothing is read, nothing decided.
fn unread_approval(a: Approval) -> Subject {
    Subject {
        origin: a.envelope.id.clone(),
        event_id: a.envelope.id,
        occurred_at: a.envelope.time,
        digest: a.digest,
        tags: vec![a.tag],
        counts: SeverityCounts::complete([], 0),
        scanned_at: a.envelope.time,
        source: "not read: the approval is not for this environment",
        approval: Some(Approver {
            by: a.approved_by,
            reason: a.reason,
            reviewed: a.reviewed,
        }),
    }
}
