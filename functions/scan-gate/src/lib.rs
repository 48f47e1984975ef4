//! scan-gate: a finished image scan becomes a safe deployment, exactly once.
//!
//! The whole story of one invocation, in order:
//!
//! 1. **Accept** an "ECR Image Scan", "Inspector2 Scan" or "Deploy Approval" event for
//!    this account, region and repository; anything else is rejected, nothing changes.
//! 2. **Route**: only an image with a tag matching `DEPLOY_TAG_PATTERN` concerns this
//!    environment; otherwise `not_routed`, silently (0 calls). An approval for this
//!    environment then re-reads the image's counts from ECR (1 call).
//! 3. **Gate** on the counts: blocking severities → `blocked`; review severities →
//!    `review_required` with the approval command; an approval waives review only.
//!    (1 call: the notification.)
//! 4. **Read the service** (DescribeServices with tags): frozen → `frozen`.
//! 5. **Read revisions**: the latest of the family, which is normally the running one
//!    (DescribeTaskDefinition with tags; a second one only if they differ).
//! 6. **Plan**: already running → `skipped`; an older release or a late scan → `skipped`;
//!    another rollout in progress → fail with a retryable error (Lambda retries, then the
//!    failure queue keeps the event); a revision left by an interrupted attempt → reuse it.
//! 7. **Deploy**: RegisterTaskDefinition (a faithful copy, image pinned by digest),
//!    UpdateService, notify `deploy.started`. With `DRY_RUN=true`, notify only.
//!
//! A clean deployment therefore costs 5 calls: DescribeServices, DescribeTaskDefinition,
//! RegisterTaskDefinition, UpdateService, Publish.

// Production code never panics on a missing value: every fallible step returns an
// Error that says what to do (tests may unwrap). Enforced by clippy in CI.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use menotime_shared::arn::Arn;
use menotime_shared::aws::ecr::EcrApi;
use menotime_shared::aws::ecs::{EcsApi, Revision};
use menotime_shared::config::ScanGateConfig;
use menotime_shared::domain::deploy::{self, Candidate, Plan, RevisionFacts, Skip};
use menotime_shared::domain::image::pinned_uri;
use menotime_shared::domain::policy::{self, Gate};
use menotime_shared::domain::routing::route;
use menotime_shared::domain::scan::{parse_trigger, Approval, Expect, Trigger};
use menotime_shared::domain::severity::{Severity, SeverityCounts};
use menotime_shared::notify::{dedup_key, EventType, Notification, Publisher, Topics};
use menotime_shared::{runbook, tags, Error};

/// What scan-gate decided (contract §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Deployed (or, with `dry_run`, would have deployed).
    Deployed,
    Blocked,
    ReviewRequired,
    Frozen,
    Skipped,
    NotRouted,
}

/// The invocation result: the decision and the facts behind it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    pub outcome: Decision,
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
}

impl menotime_shared::lambda::Decided for Outcome {
    fn decision(&self) -> String {
        menotime_shared::lambda::decision_name(&self.outcome)
    }

    fn reason(&self) -> &str {
        &self.reason
    }
}

/// The handler, generic over its three AWS dependencies so tests can drive it with
/// fakes or with mocked SDK clients.
pub struct ScanGate<E, R, P> {
    cfg: ScanGateConfig,
    topics: Topics,
    ecs: E,
    ecr: R,
    publisher: P,
}

/// The image under decision, whatever event brought it.
struct Subject {
    event_id: String,
    occurred_at: DateTime<Utc>,
    digest: String,
    tags: Vec<String>,
    counts: SeverityCounts,
    /// When the scan that produced `counts` completed.
    scanned_at: DateTime<Utc>,
    /// Where the counts come from, for people.
    source: &'static str,
    approval: Option<(String, String)>,
}

impl<E: EcsApi + Sync, R: EcrApi + Sync, P: Publisher + Sync> ScanGate<E, R, P> {
    pub fn new(cfg: ScanGateConfig, ecs: E, ecr: R, publisher: P) -> Self {
        let topics = Topics::from_config(&cfg.common);
        Self {
            cfg,
            topics,
            ecs,
            ecr,
            publisher,
        }
    }

    pub fn config(&self) -> &ScanGateConfig {
        &self.cfg
    }

    pub async fn handle(&self, event: Value) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        // 1. Accept.
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
            info!(%reason, "not routed");
            return Ok(self.outcome(Decision::NotRouted, reason, &subject, None));
        };
        if subject.counts.get(Severity::Low) > 0 {
            info!(low = subject.counts.get(Severity::Low), digest = %subject.digest, %tag, "LOW findings logged for tracking");
        }

        // 3. Gate.
        match policy::gate(
            &subject.counts,
            &self.cfg.block_severities,
            &self.cfg.review_severities,
            subject.approval.is_some(),
        ) {
            Gate::Pass => {}
            Gate::Block(findings) => return self.blocked(&subject, &tag, &findings).await,
            Gate::Review(findings) => return self.review(&subject, &tag, &findings).await,
        }

        // 4. Read the service.
        let service = self.ecs.describe_service(&c.cluster, &c.service).await?;
        if let Some(why) = deploy::freeze(&service) {
            let why = why.to_owned();
            return self.frozen(&subject, &tag, &why).await;
        }

        // 5. Read revisions.
        let (running, latest) = self.revisions(&service.task_definition).await?;

        // 6. Plan.
        let candidate = Candidate {
            digest: subject.digest.clone(),
            tag: tag.clone(),
            image: pinned_uri(&c.account, &c.region, &self.cfg.repository, &subject.digest),
            scanned_at: subject.scanned_at,
        };
        let plan = deploy::plan(&candidate, &service, &running.facts, &latest.facts);
        info!(?plan, running = %running.facts.arn, latest = %latest.facts.arn, "deploy plan");
        match plan {
            Plan::Skip(skip) => {
                self.skipped(&subject, &candidate, &running.facts, &skip)
                    .await
            }
            Plan::Busy { deployment, state } => {
                let msg = format!(
                    "not deploying {tag} ({}) to {} now: deployment {deployment} is {state}. Lambda retries this event twice (after about 1 and 3 minutes); if the rollout outlasts that, the event waits in the failure queue for a redrive",
                    subject.digest, c.service
                );
                warn!(%msg, "deployment in progress");
                Err(Error::NotNow(msg))
            }
            Plan::Register | Plan::Reuse { .. } => {
                // 7. Deploy.
                self.deploy(&subject, &candidate, &running, &latest, plan)
                    .await
            }
        }
    }

    /// An approval for this environment: the counts are re-read from ECR (an approval
    /// never trusts counts it does not carry), for the digest *and* tag it names, so
    /// a tag that moved to another image is refused by ECR itself.
    async fn approved_subject(&self, a: Approval) -> Result<Subject, Error> {
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
            event_id: a.envelope.id,
            occurred_at: a.envelope.time,
            digest: a.digest,
            tags: vec![a.tag],
            counts,
            scanned_at: f.completed_at.unwrap_or(a.envelope.time),
            source: "ECR scan findings, re-read for the approval",
            approval: Some((a.approved_by, a.reason)),
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

    async fn deploy(
        &self,
        s: &Subject,
        candidate: &Candidate,
        running: &Revision<E::Doc>,
        latest: &Revision<E::Doc>,
        plan: Plan,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let previous = running.facts.short();
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
                        &s.event_id,
                        s.approval.as_ref().map(|(who, _)| who.as_str()),
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
            (Some(revision), reused, deployment)
        };

        let (summary, reason) = match &revision {
            None => (
                format!("dry run: would deploy {} to {}", candidate.tag, c.service),
                format!(
                    "dry run: would deploy {} ({}) to {}, replacing {previous}; nothing was changed",
                    candidate.tag, candidate.digest, c.service
                ),
            ),
            Some(r) => (
                format!("Deploying {} to {}", candidate.tag, c.service),
                format!(
                    "deployed {} ({}) to {} as {}, replacing {previous}",
                    candidate.tag,
                    candidate.digest,
                    c.service,
                    r.short()
                ),
            ),
        };
        let mut n = self
            .note(EventType::DeployStarted, s, &candidate.tag, &summary)
            .with_fact("Image", &candidate.image);
        n = match &revision {
            None => n.with_fact("Running revision", &previous).with_fact(
                "Dry run",
                "DRY_RUN=true: no revision registered, service not updated",
            ),
            Some(r) => n
                .with_fact("New revision", r.short())
                .with_fact("Previous revision", &previous)
                .with_fact(
                    "Deployment",
                    deployment.as_deref().unwrap_or("(not reported)"),
                ),
        };
        n = n.with_fact("Findings", format!("{} ({})", s.counts, s.source));
        if reused {
            n = n.with_fact(
                "Note",
                "reused the revision an interrupted earlier attempt registered",
            );
        }
        n = n.with_step(runbook::describe_deployments(c));
        if revision.is_some() {
            n = n
                .with_step(runbook::tail_logs(c))
                .with_step(runbook::freeze(c, "manual rollback by YOUR_NAME"))
                .with_step(runbook::roll_back(c, &previous));
        }
        let n = n
            .with_console(runbook::service_console(c))
            .with_detail("image", candidate.image.clone())
            .with_detail("task_definition", revision.as_ref().map(|r| r.arn.clone()))
            .with_detail("previous_task_definition", running.facts.arn.clone())
            .with_detail("deployment_id", deployment.clone())
            .with_detail("reused_revision", reused)
            .with_detail("dry_run", c.dry_run);
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

    async fn blocked(
        &self,
        s: &Subject,
        tag: &str,
        findings: &[policy::Finding],
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let found = policy::describe(findings);
        let reason = format!(
            "{tag} ({}) has {found}; blocking severities are never deployed",
            s.digest
        );
        let mut n = self
            .note(
                EventType::DeployBlocked,
                s,
                tag,
                &format!("Deploy blocked: {tag} has {found}"),
            )
            .with_fact("Blocking findings", &found)
            .with_fact("All findings", format!("{} ({})", s.counts, s.source))
            .with_fact("Policy", self.policy_line());
        if let Some((who, why)) = &s.approval {
            n = n.with_fact(
                "Approval refused",
                format!("{who}: {why} (blocking severities cannot be approved)"),
            );
        }
        let n = n
            .with_fact(
                "Fix",
                "rebuild on a patched base image (python:3.11-slim is patched weekly) and push a new tag",
            )
            .with_step(runbook::scan_findings(c, &self.cfg.repository, &s.digest))
            .with_console(runbook::image_console(c, &self.cfg.repository, &s.digest));
        let n = n.with_detail("findings", found);
        self.finish(n, Decision::Blocked, reason, s, tag).await
    }

    async fn review(
        &self,
        s: &Subject,
        tag: &str,
        findings: &[policy::Finding],
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let found = policy::describe(findings);
        let reason = format!(
            "{tag} ({}) has {found}; a human must approve it with a Deploy Approval event",
            s.digest
        );
        let approve = runbook::approve(
            c,
            &self.cfg.approval_event_bus,
            &self.cfg.repository,
            &s.digest,
            tag,
        );
        let n = self
            .note(
                EventType::DeployReviewRequired,
                s,
                tag,
                &format!("Review required before deploying {tag}: {found}"),
            )
            .with_fact("Findings to review", &found)
            .with_fact("All findings", format!("{} ({})", s.counts, s.source))
            .with_fact("Policy", self.policy_line())
            .with_step(runbook::scan_findings(c, &self.cfg.repository, &s.digest))
            .with_step(approve.clone())
            .with_console(runbook::image_console(c, &self.cfg.repository, &s.digest));
        let n = n
            .with_detail("findings", found)
            .with_detail("approve_command", approve.command);
        self.finish(n, Decision::ReviewRequired, reason, s, tag)
            .await
    }

    async fn frozen(&self, s: &Subject, tag: &str, why: &str) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let reason = format!(
            "{} is frozen ({why}); {tag} was not deployed. Lift the freeze after review, then rescan or approve the image again",
            c.service
        );
        let n = self
            .note(
                EventType::DeployFrozen,
                s,
                tag,
                &format!("Deploy held: {} is frozen, {tag} not deployed", c.service),
            )
            .with_fact("Freeze", why)
            .with_fact("Findings", format!("{} ({})", s.counts, s.source))
            .with_step(runbook::show_freeze(c))
            .with_step(runbook::describe_deployments(c))
            .with_step(runbook::tail_logs(c))
            .with_step(runbook::unfreeze(c))
            .with_console(runbook::service_console(c));
        let n = n.with_detail("freeze", why);
        self.finish(n, Decision::Frozen, reason, s, tag).await
    }

    async fn skipped(
        &self,
        s: &Subject,
        candidate: &Candidate,
        running: &RevisionFacts,
        skip: &Skip,
    ) -> Result<Outcome, Error> {
        let c = &self.cfg.common;
        let tag = &candidate.tag;
        // A redelivery of the event that deployed what runs (EventBridge delivers at
        // least once; Lambda retries when the first attempt failed after deploying).
        let by_this_event = running.tags.get(tags::SOURCE_EVENT) == Some(&s.event_id);
        let (summary, reason) = match skip {
            Skip::AlreadyRunning => (
                format!("Deploy skipped: {tag} already runs on {}", c.service),
                format!(
                    "{} already runs {} in {}{}",
                    c.service,
                    candidate.digest,
                    running.short(),
                    if by_this_event {
                        " (this event deployed it; a redelivery changes nothing)"
                    } else {
                        ""
                    }
                ),
            ),
            Skip::Older { running: r } => (
                format!("Deploy skipped: {tag} is older than running {r}"),
                format!(
                    "{tag} is older than {r}, which {} runs; a downgrade is never automatic",
                    c.service
                ),
            ),
            Skip::OutOfOrder { running_scanned_at } => (
                format!("Deploy skipped: late event for {tag}"),
                format!(
                    "{} runs a {tag} image cleared by a scan at {running_scanned_at}, newer than this one at {}; this event arrived out of order",
                    c.service, candidate.scanned_at
                ),
            ),
        };
        let n = self
            .note(EventType::DeploySkipped, s, tag, &summary)
            .with_fact("Running revision", running.short())
            .with_fact("Running image", &running.image)
            .with_fact("Reason", &reason)
            .with_step(runbook::describe_deployments(c))
            .with_console(runbook::service_console(c));
        let n = n
            .with_detail("image", candidate.image.clone())
            .with_detail("running_task_definition", running.arn.clone())
            .with_detail("deployed_by_this_event", by_this_event);
        let mut o = self.finish(n, Decision::Skipped, reason, s, tag).await?;
        o.image = Some(candidate.image.clone());
        o.task_definition = Some(running.arn.clone());
        Ok(o)
    }

    fn policy_line(&self) -> String {
        let list = |set: &std::collections::BTreeSet<Severity>| {
            set.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
        };
        format!(
            "BLOCK_SEVERITIES={} REVIEW_SEVERITIES={}",
            list(&self.cfg.block_severities),
            list(&self.cfg.review_severities)
        )
    }

    /// A notification about the subject image, with the facts every one shows.
    fn note(&self, event_type: EventType, s: &Subject, tag: &str, summary: &str) -> Notification {
        let c = &self.cfg.common;
        let mut n = Notification::new(
            event_type,
            c,
            summary,
            s.occurred_at,
            &s.event_id,
            dedup_key(c.environment, &c.service, &format!("image/{}", s.digest)),
        )
        .with_fact("Repository", &self.cfg.repository)
        .with_fact("Image tag", tag)
        .with_fact("Image digest", &s.digest);
        if let Some((who, why)) = &s.approval {
            n = n
                .with_fact("Approved by", who)
                .with_fact("Approval reason", why);
        }
        n
    }

    /// The details every scan-gate notification carries for machines.
    fn with_image_details(
        &self,
        n: Notification,
        s: &Subject,
        tag: &str,
        reason: &str,
    ) -> Notification {
        let mut n = n
            .with_detail("reason", reason)
            .with_detail("repository", self.cfg.repository.clone())
            .with_detail("image_digest", s.digest.clone())
            .with_detail("image_tag", tag)
            .with_detail("image_tags", s.tags.clone())
            .with_detail("counts", s.counts.to_json())
            .with_detail("scan_source", s.source);
        if let Some((who, why)) = &s.approval {
            n = n
                .with_detail("approved_by", who.clone())
                .with_detail("approval_reason", why.clone());
        }
        n
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
        let n = self.with_image_details(n, s, tag, &reason);
        self.send(&n).await?;
        let mut o = self.outcome(decision, reason, s, Some(tag));
        o.notification = Some(n.event_type.as_str());
        Ok(o)
    }

    async fn send(&self, n: &Notification) -> Result<(), Error> {
        let rendered = n.render(&self.topics);
        let id = self.publisher.publish(&rendered).await?;
        info!(event_type = n.event_type.as_str(), topic = %rendered.topic_arn, message_id = %id, subject = %rendered.subject, "notified");
        Ok(())
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
            outcome: decision,
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
            approved_by: s.approval.as_ref().map(|(who, _)| who.clone()),
            task_definition: None,
            previous_task_definition: None,
            reused_revision: false,
            deployment_id: None,
            dry_run: self.cfg.common.dry_run,
            notification: None,
        }
    }
}

/// An approval for another environment: nothing is read, nothing decided.
fn unread_approval(a: Approval) -> Subject {
    Subject {
        event_id: a.envelope.id,
        occurred_at: a.envelope.time,
        digest: a.digest,
        tags: vec![a.tag],
        counts: SeverityCounts::complete([], 0),
        scanned_at: a.envelope.time,
        source: "not read: the approval is not for this environment",
        approval: Some((a.approved_by, a.reason)),
    }
}
