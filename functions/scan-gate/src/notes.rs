//! What scan-gate tells people: one notification per decision (docs/reference.md §4),
//! composed from the facts `lib.rs` decided on. Nothing here calls AWS.

use chrono::SecondsFormat;
use menotime_shared::config::ScanGateConfig;
use menotime_shared::domain::deploy::{Candidate, Deferred, RevisionFacts, Skip};
use menotime_shared::domain::ecs_event::DeploymentEvent;
use menotime_shared::domain::policy::{self, Finding, Grown};
use menotime_shared::domain::safety::{self, Gap};
use menotime_shared::domain::service::{Rollout, ServiceState};
use menotime_shared::domain::severity::{ReviewedCounts, Severity};
use menotime_shared::notify::{dedup_key, EventType, Notification};
use menotime_shared::runbook;

use crate::Subject;

/// A notification about the subject image, with the facts every one shows.
fn note(
    cfg: &ScanGateConfig,
    event_type: EventType,
    s: &Subject,
    tag: &str,
    summary: &str,
) -> Notification {
    let c = &cfg.common;
    let mut n = Notification::new(
        event_type,
        c,
        summary,
        s.occurred_at,
        &s.event_id,
        dedup_key(c.environment, &c.service, &format!("image/{}", s.digest)),
    )
    .with_fact("Repository", &cfg.repository)
    .with_fact("Image tag", tag)
    .with_fact("Image digest", &s.digest);
    if let Some(a) = &s.approval {
        n = n
            .with_fact("Approved by", &a.by)
            .with_fact("Approval reason", &a.reason);
    }
    n
}

/// The details every scan-gate notification carries for machines.
pub fn with_image_details(
    cfg: &ScanGateConfig,
    n: Notification,
    s: &Subject,
    tag: &str,
    reason: &str,
) -> Notification {
    let mut n = n
        .with_detail("reason", reason)
        .with_detail("repository", cfg.repository.clone())
        .with_detail("image_digest", s.digest.clone())
        .with_detail("image_tag", tag)
        .with_detail("image_tags", s.tags.clone())
        .with_detail("counts", s.counts.to_json())
        .with_detail("scan_source", s.source);
    if let Some(a) = &s.approval {
        n = n
            .with_detail("approved_by", a.by.clone())
            .with_detail("approval_reason", a.reason.clone())
            .with_detail("approval_reviewed_counts", a.reviewed.to_json());
    }
    n
}

fn policy_line(cfg: &ScanGateConfig) -> String {
    let list = |set: &std::collections::BTreeSet<Severity>| {
        set.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
    };
    format!(
        "BLOCK_SEVERITIES={} REVIEW_SEVERITIES={}",
        list(&cfg.block_severities),
        list(&cfg.review_severities)
    )
}

/// `deploy.blocked`: blocking severities found.
pub fn blocked(cfg: &ScanGateConfig, s: &Subject, tag: &str, findings: &[Finding]) -> Notification {
    let c = &cfg.common;
    let found = policy::describe(findings);
    let mut n = note(
        cfg,
        EventType::DeployBlocked,
        s,
        tag,
        &format!("Deploy blocked: {tag} has {found}"),
    )
    .with_fact("Blocking findings", &found)
    .with_fact("All findings", format!("{} ({})", s.counts, s.source))
    .with_fact("Policy", policy_line(cfg));
    if let Some(a) = &s.approval {
        n = n.with_fact(
            "Approval refused",
            format!(
                "{}: {} (blocking severities cannot be approved)",
                a.by, a.reason
            ),
        );
    }
    n.with_fact(
        "Fix",
        "rebuild on a patched base image (python:3.11-slim is patched weekly) and push a new tag",
    )
    .with_step(runbook::scan_findings(c, &cfg.repository, &s.digest))
    .with_console(runbook::image_console(c, &cfg.repository, &s.digest))
    .with_detail("findings", found)
    .with_detail("blocked_by", "findings")
}

/// `deploy.review_required`: review severities found (or more of them than an
/// approval's reviewer saw); the approval command, with the counts to review.
pub fn review(
    cfg: &ScanGateConfig,
    s: &Subject,
    tag: &str,
    findings: &[Finding],
    grown: &[Grown],
) -> Notification {
    let c = &cfg.common;
    let found = policy::describe(findings);
    let reviewed = ReviewedCounts::new(
        cfg.review_severities
            .iter()
            .map(|sev| (*sev, s.counts.get(*sev))),
    );
    let approve = runbook::approve(
        c,
        &cfg.approval_event_bus,
        &cfg.repository,
        &s.digest,
        tag,
        &reviewed,
    );
    let mut n = note(
        cfg,
        EventType::DeployReviewRequired,
        s,
        tag,
        &format!("Review required before deploying {tag}: {found}"),
    )
    .with_fact("Findings to review", &found)
    .with_fact("All findings", format!("{} ({})", s.counts, s.source))
    .with_fact("Policy", policy_line(cfg));
    if let Some(a) = s.approval.as_ref().filter(|_| !grown.is_empty()) {
        n = n.with_fact(
            "Approval not honoured",
            format!(
                "{} reviewed {}; ECR now reports {}: review again, then approve with the new counts",
                a.by,
                a.reviewed,
                grown
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    n.with_step(runbook::scan_findings(c, &cfg.repository, &s.digest))
        .with_step(approve.clone())
        .with_console(runbook::image_console(c, &cfg.repository, &s.digest))
        .with_detail("findings", found)
        .with_detail("approve_command", approve.command)
        .with_detail("reviewed_counts", reviewed.to_json())
        .with_detail(
            "grown_since_review",
            grown
                .iter()
                .map(|g| {
                    serde_json::json!({"severity": g.severity.as_str(), "now": g.now, "reviewed": g.reviewed})
                })
                .collect::<Vec<_>>(),
        )
}

/// `deploy.frozen`: the service is frozen; nothing was deployed.
pub fn frozen(cfg: &ScanGateConfig, s: &Subject, tag: &str, why: &str) -> Notification {
    let c = &cfg.common;
    note(
        cfg,
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
    .with_console(runbook::service_console(c))
    .with_detail("freeze", why)
}

/// Why a plan skipped the image: (summary, reason).
pub fn skip_reason(
    cfg: &ScanGateConfig,
    candidate: &Candidate,
    running: &RevisionFacts,
    skip: &Skip,
    by_this_event: bool,
) -> (String, String) {
    let c = &cfg.common;
    let tag = &candidate.tag;
    match skip {
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
        Skip::Superseded { by_tag, by_digest } => (
            format!("Deploy skipped: {tag} superseded by {by_tag}"),
            format!(
                "{by_tag} ({by_digest}), newer, waits for the rollout under way on {} and deploys when it completes; {tag} would only be replaced by it",
                c.service
            ),
        ),
        Skip::RolledBack {
            revision,
            deployed,
            left_at,
            ..
        } => (
            format!("Deploy skipped: {tag} was rolled back"),
            format!(
                "{tag} ({}) was deployed as {revision}{} and {} left it{}, rolled back by the circuit breaker or an operator; automation never deploys it again: approve it, or deploy it by hand, to run it on purpose",
                candidate.digest,
                deployed
                    .as_ref()
                    .map(|d| format!(
                        " at {}{}",
                        d.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                        d.deployment
                            .as_deref()
                            .map(|id| format!(" (deployment {id})"))
                            .unwrap_or_default()
                    ))
                    .unwrap_or_default(),
                c.service,
                left_at
                    .map(|t| format!(" at {}", t.to_rfc3339_opts(SecondsFormat::Secs, true)))
                    .unwrap_or_default()
            ),
        ),
    }
}

/// `deploy.skipped`: already running, older, or late.
#[allow(clippy::too_many_arguments)]
pub fn skipped(
    cfg: &ScanGateConfig,
    s: &Subject,
    candidate: &Candidate,
    running: &RevisionFacts,
    skip: &Skip,
    summary: &str,
    reason: &str,
    by_this_event: bool,
) -> Notification {
    let c = &cfg.common;
    let mut n = note(cfg, EventType::DeploySkipped, s, &candidate.tag, summary)
        .with_fact("Running revision", running.short())
        .with_fact("Running image", &running.image)
        .with_fact("Reason", reason)
        .with_step(runbook::describe_deployments(c));
    if let Skip::RolledBack {
        revision,
        revision_arn,
        deployed,
        left_at,
    } = skip
    {
        let reviewed = ReviewedCounts::new(
            cfg.review_severities
                .iter()
                .map(|sev| (*sev, s.counts.get(*sev))),
        );
        let mut approve = runbook::approve(
            c,
            &cfg.approval_event_bus,
            &cfg.repository,
            &candidate.digest,
            &candidate.tag,
            &reviewed,
        );
        approve.what = "To deploy it on purpose, approve it (scan-gate checks its findings again and deploys it)".into();
        let mut by_hand = runbook::roll_back(c, revision);
        by_hand.what = format!("Or deploy its revision ({revision}) by hand");
        n = n
            .with_step(approve)
            .with_step(by_hand)
            .with_detail("rolled_back_task_definition", revision_arn.clone())
            .with_detail(
                "deployed_at",
                deployed
                    .as_ref()
                    .map(|d| d.at.to_rfc3339_opts(SecondsFormat::Secs, true)),
            )
            .with_detail(
                "deployed_deployment_id",
                deployed.as_ref().and_then(|d| d.deployment.clone()),
            )
            .with_detail(
                "rolled_back_at",
                left_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            );
    }
    if let Skip::Superseded { by_tag, by_digest } = skip {
        n = n
            .with_detail("superseded_by_tag", by_tag.clone())
            .with_detail("superseded_by_digest", by_digest.clone());
    }
    n.with_console(runbook::service_console(c))
        .with_detail("image", candidate.image.clone())
        .with_detail("running_task_definition", running.arn.clone())
        .with_detail("deployed_by_this_event", by_this_event)
        .with_detail("skip_reason", skip_reason_name(skip))
}

/// `details.skip_reason` of `deploy.skipped`.
fn skip_reason_name(skip: &Skip) -> &'static str {
    match skip {
        Skip::AlreadyRunning => "already_running",
        Skip::Older { .. } => "older",
        Skip::OutOfOrder { .. } => "out_of_order",
        Skip::Superseded { .. } => "superseded",
        Skip::RolledBack { .. } => "rolled_back",
    }
}

/// `deploy.deferred`: the image waits for the rollout under way; it is deployed when
/// that completes.
pub fn deferred(
    cfg: &ScanGateConfig,
    s: &Subject,
    candidate: &Candidate,
    rollout: &Rollout,
    replaced: Option<&Deferred>,
    recorded: &Deferred,
) -> Notification {
    let c = &cfg.common;
    let mut n = note(
        cfg,
        EventType::DeployDeferred,
        s,
        &candidate.tag,
        &format!(
            "Deploy deferred: {} waits for the rollout of {}",
            candidate.tag, c.service
        ),
    )
    .with_fact(
        "Waiting for",
        format!("deployment {} ({})", rollout.deployment, rollout.state),
    )
    .with_fact(
        "Then",
        format!(
            "scan-gate deploys it when that rollout completes (SERVICE_DEPLOYMENT_COMPLETED), after checking its findings and the freeze again; a newer {} image arriving meanwhile replaces it",
            c.environment
        ),
    )
    .with_fact("Findings", format!("{} ({})", s.counts, s.source));
    if c.dry_run {
        n = n.with_fact(
            "Dry run",
            "DRY_RUN=true: nothing was recorded; nothing will be deployed",
        );
    }
    if let Some(old) = replaced {
        n = n.with_fact(
            "Replaces",
            format!(
                "{} ({}), which waited before it and is skipped",
                old.tag, old.digest
            ),
        );
    }
    n.with_step(runbook::describe_deployments(c))
        .with_step(runbook::show_freeze(c))
        .with_console(runbook::service_console(c))
        .with_detail("image", candidate.image.clone())
        .with_detail("waiting_for_deployment", rollout.deployment.clone())
        .with_detail("rollout_state", rollout.state.clone())
        .with_detail("deferred", recorded.render())
        .with_detail("replaces_digest", replaced.map(|o| o.digest.clone()))
        .with_detail("dry_run", c.dry_run)
}

/// `deploy.skipped` for the image that waited, superseded by a newer one.
pub fn superseded(
    cfg: &ScanGateConfig,
    old: &Deferred,
    by: &Candidate,
    s: &Subject,
) -> Notification {
    let c = &cfg.common;
    Notification::new(
        EventType::DeploySkipped,
        c,
        format!("Deploy skipped: {} superseded by {}", old.tag, by.tag),
        s.occurred_at,
        &s.event_id,
        dedup_key(c.environment, &c.service, &format!("image/{}", old.digest)),
    )
    .with_fact("Repository", &cfg.repository)
    .with_fact("Image tag", &old.tag)
    .with_fact("Image digest", &old.digest)
    .with_fact(
        "Reason",
        format!(
            "it waited for a rollout of {}; {} ({}), newer, goes instead",
            c.service, by.tag, by.digest
        ),
    )
    .with_step(runbook::describe_deployments(c))
    .with_console(runbook::service_console(c))
    .with_detail(
        "reason",
        format!("{} was superseded by {} while it waited", old.tag, by.tag),
    )
    .with_detail("repository", cfg.repository.clone())
    .with_detail("image_digest", old.digest.clone())
    .with_detail("image_tag", old.tag.clone())
    .with_detail("skip_reason", "superseded")
    .with_detail("superseded_by_tag", by.tag.clone())
    .with_detail("superseded_by_digest", by.digest.clone())
    .with_detail("deferred_event", old.event.clone())
}

/// `deploy.skipped` for a deferred image that can no longer be checked.
pub fn dropped(
    cfg: &ScanGateConfig,
    d: &Deferred,
    ev: &DeploymentEvent,
    reason: &str,
) -> Notification {
    let c = &cfg.common;
    Notification::new(
        EventType::DeploySkipped,
        c,
        format!("Deploy skipped: deferred {} cannot be checked", d.tag),
        ev.at,
        &ev.envelope.id,
        dedup_key(c.environment, &c.service, &format!("image/{}", d.digest)),
    )
    .with_fact("Repository", &cfg.repository)
    .with_fact("Image tag", &d.tag)
    .with_fact("Image digest", &d.digest)
    .with_fact("Reason", reason)
    .with_step(runbook::scan_findings(c, &cfg.repository, &d.digest))
    .with_console(runbook::image_console(c, &cfg.repository, &d.digest))
    .with_detail("reason", reason.to_owned())
    .with_detail("repository", cfg.repository.clone())
    .with_detail("image_digest", d.digest.clone())
    .with_detail("image_tag", d.tag.clone())
    .with_detail("skip_reason", "unverifiable")
    .with_detail("deferred_event", d.event.clone())
}

/// What a deployment did, for `deploy.started`.
pub struct Deployed<'a> {
    pub candidate: &'a Candidate,
    /// The revision the service ran (`family:revision`).
    pub previous: &'a str,
    pub previous_arn: &'a str,
    /// The revision deployed; `None` in a dry run.
    pub revision: Option<&'a RevisionFacts>,
    pub reused: bool,
    pub deployment: Option<&'a str>,
}

/// (summary, reason) of a deployment, or of what a dry run would have done.
pub fn deploy_reason(cfg: &ScanGateConfig, d: &Deployed<'_>) -> (String, String) {
    let c = &cfg.common;
    let (candidate, previous) = (d.candidate, d.previous);
    match d.revision {
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
    }
}

/// `deploy.started`: what was deployed and the way back.
pub fn started(cfg: &ScanGateConfig, s: &Subject, d: &Deployed<'_>, summary: &str) -> Notification {
    let c = &cfg.common;
    let candidate = d.candidate;
    let mut n = note(cfg, EventType::DeployStarted, s, &candidate.tag, summary)
        .with_fact("Image", &candidate.image);
    n = match d.revision {
        None => n.with_fact("Running revision", d.previous).with_fact(
            "Dry run",
            "DRY_RUN=true: no revision registered, service not updated",
        ),
        Some(r) => n
            .with_fact("New revision", r.short())
            .with_fact("Previous revision", d.previous)
            .with_fact("Deployment", d.deployment.unwrap_or("(not reported)")),
    };
    n = n.with_fact("Findings", format!("{} ({})", s.counts, s.source));
    if d.reused {
        n = n.with_fact(
            "Note",
            "reused the revision an interrupted earlier attempt registered",
        );
    }
    n = n.with_step(runbook::describe_deployments(c));
    if d.revision.is_some() {
        n = n
            .with_step(runbook::tail_logs(c))
            .with_step(runbook::freeze(c, "manual rollback by YOUR_NAME"))
            .with_step(runbook::roll_back(c, d.previous));
    }
    n.with_console(runbook::service_console(c))
        .with_detail("image", candidate.image.clone())
        .with_detail("task_definition", d.revision.map(|r| r.arn.clone()))
        .with_detail("previous_task_definition", d.previous_arn.to_owned())
        .with_detail("deployment_id", d.deployment.map(str::to_owned))
        .with_detail("reused_revision", d.reused)
        .with_detail("dry_run", c.dry_run)
}

/// `deploy.blocked` by the manual's safety net: the service lacks the prod
/// deployment configuration, so a bad image would not be rolled back.
pub fn unsafe_rollout(
    cfg: &ScanGateConfig,
    s: &Subject,
    tag: &str,
    service: &ServiceState,
    gaps: &[Gap],
) -> Notification {
    let c = &cfg.common;
    let restore = runbook::restore_safety_net(
        c,
        &safety::restored(service.deployment_configuration.as_ref()),
    );
    let missing: Vec<String> = gaps.iter().map(Gap::describe).collect();
    let mut n = note(
        cfg,
        EventType::DeployBlocked,
        s,
        tag,
        &format!(
            "Deploy blocked: {tag} not deployed, {} lacks the rollout safety net",
            c.service
        ),
    )
    .with_fact(
        "Findings",
        format!("{} ({}): the image itself passed", s.counts, s.source),
    );
    for m in &missing {
        n = n.with_fact("Missing", m.clone());
    }
    n.with_fact(
        "Why",
        "the manual deploys prod with deploymentCircuitBreaker enabled with rollback and minimumHealthyPercent 100, so a failing image is rolled back while the old tasks keep serving (REQUIRE_SAFE_ROLLOUT)",
    )
    .with_step(restore.clone())
    .with_step(runbook::describe_deployments(c))
    .with_console(runbook::service_console(c))
    .with_detail("findings", serde_json::Value::Null)
    .with_detail("blocked_by", "deployment_configuration")
    .with_detail("missing", missing)
    .with_detail("restore_command", restore.command)
}
