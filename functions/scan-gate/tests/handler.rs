//! scan-gate's handler over in-memory fakes of ECS, ECR and SNS: every path of the
//! story, the AWS calls each one makes, and what the notifications say.
#![cfg(test)]

mod common;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use menotime_shared::aws::ecr::ScanFindings;
use menotime_shared::config::Environment;
use menotime_shared::domain::service::DeploymentState;
use menotime_shared::domain::severity::{Severity, SeverityCounts};
use menotime_shared::notify::Rendered;
use menotime_shared::testing::{FakeAws, FakeRevision, ACCOUNT};
use menotime_shared::Retry;
use scan_gate::{Decision, ScanGate};

const REGISTRY: &str = "123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend";
const CLEAN: &str = "sha256:093db6dbbe70b9445a1a065cb426f65c1d4ba77bb53e65f52c8d31120187c7cb";
const OTHER: &str = "sha256:5351ead0c73411a39be3ad282446f18eb98bc6290150984ab8c70b1345481358";

/// The fakes hold prod's family whatever the configured environment.
const PROD: Environment = Environment::Prod;

fn td_arn(n: u32) -> String {
    menotime_shared::testing::td_arn(PROD, n)
}

struct Rig {
    gate: ScanGate<FakeAws, FakeAws, FakeAws>,
    aws: FakeAws,
}

/// The service runs `running`, with `deployments` (status, rollout state); the family
/// also has an older revision 6.
fn rig_with(extra: &[(&str, &str)], running: FakeRevision, deployments: &[(&str, &str)]) -> Rig {
    let aws = FakeAws::new(PROD, running);
    aws.add_revision(FakeRevision::new(
        PROD,
        6,
        &format!("{REGISTRY}:v1.2.2"),
        &[],
    ));
    aws.world().service.deployments = deployments
        .iter()
        .enumerate()
        .map(|(i, (status, rollout))| DeploymentState {
            id: format!("ecs-svc/{i}"),
            status: status.to_string(),
            rollout_state: Some(rollout.to_string()),
            ..Default::default()
        })
        .collect();
    Rig {
        gate: ScanGate::new(
            common::prod_config(extra),
            aws.clone(),
            aws.clone(),
            aws.clone(),
        )
        .with_clock(now),
        aws,
    }
}

/// The handler's clock: a day after the approvals of these tests were given.
fn now() -> DateTime<Utc> {
    "2026-11-26T11:20:00Z".parse().unwrap()
}

fn v123() -> FakeRevision {
    FakeRevision::new(
        PROD,
        7,
        &format!("{REGISTRY}:v1.2.3"),
        &[("application", "menotime")],
    )
}

fn rig() -> Rig {
    rig_with(&[], v123(), &[("PRIMARY", "COMPLETED")])
}

impl Rig {
    fn calls(&self) -> Vec<&'static str> {
        self.aws.calls()
    }

    fn sent(&self) -> Vec<Rendered> {
        self.aws.sent()
    }

    fn revision_count(&self) -> usize {
        self.aws.world().revisions.len()
    }
}

fn scan(tags: &[&str], digest: &str, counts: Value) -> Value {
    json!({
        "version": "0", "id": format!("evt-{}", &digest[7..15]), "detail-type": "ECR Image Scan", "source": "aws.ecr",
        "account": ACCOUNT, "time": "2026-11-25T09:46:41Z", "region": "us-west-1",
        "resources": ["arn:aws:ecr:us-west-1:123456789012:repository/menotime/backend"],
        "detail": {"scan-status": "COMPLETE", "repository-name": "menotime/backend",
                   "finding-severity-counts": counts, "image-digest": digest, "image-tags": tags}
    })
}

fn inspector(tags: &[&str], digest: &str, counts: Value) -> Value {
    json!({
        "version": "0", "id": "evt-inspector", "detail-type": "Inspector2 Scan", "source": "aws.inspector2",
        "account": ACCOUNT, "time": "2026-11-25T09:47:02Z", "region": "us-west-1",
        "resources": ["arn:aws:ecr:us-west-1:123456789012:repository/menotime/backend"],
        "detail": {"scan-status": "INITIAL_SCAN_COMPLETE",
                   "repository-name": "arn:aws:ecr:us-west-1:123456789012:repository/menotime/backend",
                   "finding-severity-counts": counts, "image-digest": digest, "image-tags": tags, "version": "1.0"}
    })
}

fn approval(tag: &str, digest: &str) -> Value {
    json!({
        "version": "0", "id": "evt-approval", "detail-type": "Deploy Approval", "source": "menotime.ops",
        "account": ACCOUNT, "time": "2026-11-25T11:20:00Z", "region": "us-west-1", "resources": [],
        "detail": {"repository-name": "menotime/backend", "image-digest": digest, "image-tag": tag,
                   "approved-by": "jdoe", "reason": "MEDIUM CVE-2026-1234 not reachable from the API",
                   "reviewed-counts": {"MEDIUM": 2}}
    })
}

fn findings(status: &str, counts: &[(Severity, u64)], at: &str) -> ScanFindings {
    ScanFindings {
        status: status.into(),
        description: format!("The scan is {status}."),
        counts: Some(SeverityCounts::complete(counts.iter().copied(), 0)),
        completed_at: Some(at.parse::<DateTime<Utc>>().unwrap()),
    }
}

fn message(r: &Rendered) -> (Value, String, Value) {
    let m: Value = serde_json::from_str(&r.message).unwrap();
    let payload: Value = serde_json::from_str(m["sqs"].as_str().unwrap()).unwrap();
    (payload, m["default"].as_str().unwrap().to_owned(), m)
}

#[tokio::test]
async fn a_clean_release_deploys_in_six_calls() {
    let r = rig();
    let out = r
        .gate
        .handle(scan(&["v1.2.4", "latest"], CLEAN, json!({"LOW": 3})))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Deployed);
    assert_eq!(
        r.calls(),
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:RegisterTaskDefinition",
            "ecs:UpdateService",
            "ecs:TagResource",
            "sns:Publish"
        ]
    );
    let running = r.aws.running();
    assert_eq!(running.image, format!("{REGISTRY}@{CLEAN}"));
    assert_eq!(running.tags["menotime:image-tag"], "v1.2.4");
    assert_eq!(
        running.tags["application"], "menotime",
        "the running revision's tags carry over"
    );
    assert_eq!(running.tags["menotime:source-event"], "evt-093db6db");
    assert_eq!(out.task_definition.as_deref(), Some(td_arn(8).as_str()));
    assert_eq!(
        out.previous_task_definition.as_deref(),
        Some(td_arn(7).as_str())
    );
    assert_eq!(out.deployment_id.as_deref(), Some("ecs-svc/1111"));

    let sent = r.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].subject,
        "[PROD] Deploying v1.2.4 to menotime-prod-service"
    );
    assert!(sent[0].topic_arn.ends_with(":menotime-prod-notify"));
    let (payload, text, _) = message(&sent[0]);
    assert_eq!(payload["event_type"], "deploy.started");
    assert_eq!(
        payload["dedup_key"],
        format!("menotime/prod/menotime-prod-service/image/{CLEAN}")
    );
    assert_eq!(payload["occurred_at"], "2026-11-25T09:46:41.000Z");
    assert_eq!(payload["details"]["previous_task_definition"], td_arn(7));
    for needle in [
        "Image tag:",
        "v1.2.4",
        CLEAN,
        "menotime-backend-prod:8",
        "--task-definition menotime-backend-prod:7",
        "aws logs tail /aws/ecs/menotime-prod",
        "aws ecs describe-services",
        "Console: https://us-west-1.console.aws.amazon.com/ecs/v2/clusters/menotime-prod-cluster/services/menotime-prod-service",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }

    // The outcome JSON of docs/reference.md §6.
    let o = serde_json::to_value(&out).unwrap();
    assert_eq!(o["outcome"], "deployed");
    assert_eq!(o["image"], format!("{REGISTRY}@{CLEAN}"));
}

#[tokio::test]
async fn duplicates_and_rescans_of_the_running_image_are_skipped() {
    let r = rig();
    let e = scan(&["v1.2.4"], CLEAN, json!({}));
    r.gate.handle(e.clone()).await.unwrap();
    r.calls();
    r.sent();
    let out = r.gate.handle(e).await.unwrap();
    assert_eq!(out.decision, Decision::Skipped);
    assert!(
        out.reason.contains("this event deployed it"),
        "{}",
        out.reason
    );
    assert_eq!(
        r.calls(),
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "sns:Publish"
        ]
    );
    let out = r
        .gate
        .handle(inspector(&["v1.2.4"], CLEAN, json!({"TOTAL": 0})))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Skipped);
    assert_eq!(r.revision_count(), 3, "one revision registered in all");
    let sent = r.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0].subject,
        "[PROD] Deploy skipped: v1.2.4 already runs on menotime-prod-service"
    );
}

#[tokio::test]
async fn a_block_costs_one_call_and_says_why() {
    let r = rig();
    let out = r
        .gate
        .handle(scan(
            &["v1.2.5"],
            OTHER,
            json!({"CRITICAL": 1, "HIGH": 2, "MEDIUM": 4}),
        ))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Blocked);
    assert_eq!(r.calls(), ["sns:Publish"]);
    let sent = r.sent();
    assert_eq!(
        sent[0].subject,
        "[PROD] Deploy blocked: v1.2.5 has 1 CRITICAL, 2 HIGH"
    );
    let (payload, text, _) = message(&sent[0]);
    assert_eq!(payload["event_type"], "deploy.blocked");
    assert_eq!(payload["severity"], "warning");
    assert_eq!(
        payload["details"]["counts"],
        json!({"CRITICAL": 1, "HIGH": 2, "MEDIUM": 4})
    );
    assert!(text.contains("aws ecr describe-image-scan-findings --region us-west-1 --repository-name menotime/backend"));
    assert!(!text.contains("put-events"), "a block cannot be approved");
    assert_eq!(r.revision_count(), 2);
}

#[tokio::test]
async fn medium_waits_for_review_with_a_ready_approval_command() {
    let r = rig();
    let out = r
        .gate
        .handle(scan(&["v1.2.6"], OTHER, json!({"MEDIUM": 2, "LOW": 1})))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::ReviewRequired);
    assert_eq!(r.calls(), ["sns:Publish"]);
    let sent = r.sent();
    assert_eq!(
        sent[0].subject,
        "[PROD] Review required before deploying v1.2.6: 2 MEDIUM"
    );
    let (payload, text, m) = message(&sent[0]);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let at = lines
        .iter()
        .position(|l| l.contains("aws events put-events"))
        .expect("approval command");
    let cmd = lines[at];
    assert_eq!(
        payload["details"]["approve_command"], cmd,
        "machines get the same command"
    );
    assert!(
        cmd.contains(OTHER) && cmd.contains("v1.2.6") && cmd.contains("Deploy Approval"),
        "{cmd}"
    );
    // People see the operator CLI's command first, the AWS CLI's as the fallback.
    assert_eq!(
        lines[at - 1],
        format!(
            "menotime-ops approve --tag v1.2.6 --digest {OTHER} --reason 'WHY_THE_FINDINGS_ARE_ACCEPTABLE' --env prod --region us-west-1"
        )
    );
    assert!(m["sms"].as_str().unwrap().len() <= 140);
}

#[tokio::test]
async fn an_approval_rereads_ecr_and_deploys_naming_the_approver() {
    let r = rig();
    r.aws.world().findings.insert(
        OTHER.into(),
        (
            "v1.2.6".into(),
            findings(
                "COMPLETE",
                &[(Severity::Medium, 2), (Severity::Low, 1)],
                "2026-11-25T11:03:17Z",
            ),
        ),
    );
    let out = r.gate.handle(approval("v1.2.6", OTHER)).await.unwrap();
    assert_eq!(out.decision, Decision::Deployed);
    assert_eq!(out.approved_by.as_deref(), Some("jdoe"));
    assert_eq!(
        r.calls(),
        [
            "ecr:DescribeImageScanFindings",
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:RegisterTaskDefinition",
            "ecs:UpdateService",
            "ecs:TagResource",
            "sns:Publish"
        ]
    );
    let running = r.aws.running();
    assert_eq!(running.tags["menotime:approved-by"], "jdoe");
    assert_eq!(running.tags["menotime:scanned-at"], "2026-11-25T11:03:17Z");
    let (payload, text, _) = message(&r.sent()[0]);
    assert_eq!(payload["details"]["approved_by"], "jdoe");
    assert!(text.contains("Approved by:") && text.contains("jdoe"));
    assert!(text.contains("MEDIUM CVE-2026-1234 not reachable from the API"));
}

#[tokio::test]
async fn an_approval_never_overrides_a_blocking_severity() {
    let r = rig();
    r.aws.world().findings.insert(
        OTHER.into(),
        (
            "v1.2.6".into(),
            findings(
                "COMPLETE",
                &[(Severity::High, 1), (Severity::Medium, 2)],
                "2026-11-25T11:03:17Z",
            ),
        ),
    );
    let out = r.gate.handle(approval("v1.2.6", OTHER)).await.unwrap();
    assert_eq!(out.decision, Decision::Blocked);
    assert_eq!(r.calls(), ["ecr:DescribeImageScanFindings", "sns:Publish"]);
    let (_, text, _) = message(&r.sent()[0]);
    assert!(text.contains("Approval refused"), "{text}");
}

#[tokio::test]
async fn an_approval_that_cannot_be_checked_deploys_nothing() {
    let r = rig();
    let set = |status: &str| {
        r.aws.world().findings.insert(
            OTHER.into(),
            (
                "v1.2.6".into(),
                findings(status, &[], "2026-11-25T11:03:17Z"),
            ),
        );
    };
    // The scan is still running: retried.
    set("IN_PROGRESS");
    let e = r.gate.handle(approval("v1.2.6", OTHER)).await.unwrap_err();
    assert_eq!(e.retry(), Retry::Later, "{e}");
    // The scan failed or can never finish: refused, with the command to rescan.
    for status in ["FAILED", "UNSUPPORTED_IMAGE", "SCAN_ELIGIBILITY_EXPIRED"] {
        set(status);
        let e = r.gate.handle(approval("v1.2.6", OTHER)).await.unwrap_err();
        assert_eq!(e.retry(), Retry::Never, "{e}");
        assert!(e.to_string().contains("aws ecr start-image-scan"), "{e}");
    }
    // COMPLETE but no findings summary: unknown is not clean.
    r.aws.world().findings.get_mut(OTHER).unwrap().1 = ScanFindings {
        status: "COMPLETE".into(),
        description: String::new(),
        counts: None,
        completed_at: None,
    };
    let e = r.gate.handle(approval("v1.2.6", OTHER)).await.unwrap_err();
    assert_eq!(e.kind(), "RejectedEvent", "{e}");
    // A tag that no longer names this digest is refused by ECR itself.
    set("COMPLETE");
    let e = r.gate.handle(approval("v1.2.7", OTHER)).await.unwrap_err();
    assert_eq!(e.kind(), "RejectedEvent", "{e}");
    assert_eq!(r.revision_count(), 2);
    assert!(r.sent().is_empty());
}

#[tokio::test]
async fn an_approval_for_another_environment_reads_nothing() {
    let r = rig();
    for tag in ["develop", "main", "pr-42"] {
        let out = r.gate.handle(approval(tag, OTHER)).await.unwrap();
        assert_eq!(out.decision, Decision::NotRouted, "{tag}");
    }
    assert!(
        r.calls().is_empty(),
        "no ECR call for other environments' approvals"
    );
}

#[tokio::test]
async fn tags_of_other_environments_cost_nothing() {
    let r = rig();
    for tags in [
        &["develop"][..],
        &["main", "x9y8z7w"],
        &["pr-42"],
        &["latest"],
        &["a1b2c3d"],
        &[],
    ] {
        let out = r
            .gate
            .handle(scan(tags, OTHER, json!({"CRITICAL": 5})))
            .await
            .unwrap();
        assert_eq!(out.decision, Decision::NotRouted, "{tags:?}");
        assert_eq!(out.notification, None);
    }
    assert!(r.calls().is_empty());
}

#[tokio::test]
async fn a_frozen_service_is_told_and_untouched() {
    let r = rig();
    r.aws.set_tag(
        "menotime:deploy-freeze",
        "ecs-svc/4231880795355584839 failed 2026-11-25T18:00:59Z",
    );
    let out = r
        .gate
        .handle(scan(&["v1.2.4"], CLEAN, json!({})))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Frozen);
    assert_eq!(r.calls(), ["ecs:DescribeServices", "sns:Publish"]);
    let (payload, text, _) = message(&r.sent()[0]);
    assert_eq!(payload["event_type"], "deploy.frozen");
    assert!(text.contains(
        "aws ecs untag-resource --region us-west-1 --resource-arn arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service --tag-keys menotime:deploy-freeze"
    ));
    assert_eq!(r.aws.running().arn, td_arn(7));
}

#[tokio::test]
async fn an_image_cleared_during_another_rollout_is_deferred_then_resumed() {
    let r = rig_with(
        &[],
        v123(),
        &[("PRIMARY", "IN_PROGRESS"), ("ACTIVE", "COMPLETED")],
    );
    let out = r
        .gate
        .handle(scan(&["v1.2.4"], CLEAN, json!({"LOW": 3})))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Deferred, "{}", out.reason);
    // The deferral is written first, then the notification.
    assert_eq!(
        r.calls(),
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:TagResource",
            "sns:Publish"
        ]
    );
    let waiting = r.aws.tag("menotime:deploy-deferred").unwrap();
    assert!(
        waiting.starts_with(&format!(
            "digest={CLEAN} tag=v1.2.4 scanned=2026-11-25T09:46:41Z event=evt-093db6db"
        )),
        "{waiting}"
    );
    let (payload, text, _) = message(&r.sent()[0]);
    assert_eq!(payload["event_type"], "deploy.deferred");
    assert_eq!(payload["severity"], "info");
    assert_eq!(payload["action"], "notify");
    assert!(text.contains("ecs-svc/0"), "{text}");
    assert_eq!(r.revision_count(), 2, "nothing registered");
    // The rollout completes, long after Lambda's retries: scan-gate resumes the image.
    r.aws.settle();
    r.aws.world().findings.insert(
        CLEAN.into(),
        (
            "v1.2.4".into(),
            findings("COMPLETE", &[(Severity::Low, 3)], "2026-11-25T09:46:41Z"),
        ),
    );
    let out = r.gate.handle(completed("ecs-svc/0")).await.unwrap();
    assert_eq!(out.decision, Decision::Deployed, "{}", out.reason);
    assert_eq!(out.source_event_id, "completion-ecs-svc/0");
    assert_eq!(out.deferred_event.as_deref(), Some("evt-093db6db"));
    assert_eq!(
        r.calls(),
        [
            "ecs:DescribeServices",
            "ecr:DescribeImageScanFindings",
            "ecs:DescribeTaskDefinition",
            "ecs:RegisterTaskDefinition",
            "ecs:UpdateService",
            "ecs:TagResource",
            "sns:Publish",
            "ecs:UntagResource"
        ],
        "the deferral is removed last"
    );
    assert_eq!(r.aws.tag("menotime:deploy-deferred"), None);
    let running = r.aws.running();
    assert_eq!(running.image, format!("{REGISTRY}@{CLEAN}"));
    assert_eq!(running.tags["menotime:source-event"], "evt-093db6db");
    // The completion delivered again (or the original scan): nothing more.
    let out = r.gate.handle(completed("ecs-svc/0")).await.unwrap();
    assert_eq!(out.decision, Decision::NotRouted);
    assert_eq!(r.calls(), ["ecs:DescribeServices"]);
}

/// An ECS completion of the prod service, as its rule delivers it to scan-gate.
fn completed(deployment: &str) -> Value {
    json!({
        "version": "0", "id": format!("completion-{deployment}"), "detail-type": "ECS Deployment State Change",
        "source": "aws.ecs", "account": ACCOUNT, "time": "2026-11-25T10:30:00Z", "region": "us-west-1",
        "resources": ["arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service"],
        "detail": {"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED", "deploymentId": deployment,
                   "updatedAt": "2026-11-25T10:30:00Z", "reason": format!("ECS deployment {deployment} completed.")}
    })
}

#[tokio::test]
async fn a_deferred_image_is_checked_again_when_it_resumes() {
    let busy: &[(&str, &str)] = &[("PRIMARY", "IN_PROGRESS"), ("ACTIVE", "COMPLETED")];
    // Rescanned meanwhile: a HIGH finding now. Blocked, and no longer waiting.
    let r = rig_with(&[], v123(), busy);
    r.gate
        .handle(scan(&["v1.2.4"], CLEAN, json!({})))
        .await
        .unwrap();
    r.aws.settle();
    r.aws.world().findings.insert(
        CLEAN.into(),
        (
            "v1.2.4".into(),
            findings("COMPLETE", &[(Severity::High, 1)], "2026-11-25T10:00:00Z"),
        ),
    );
    r.calls();
    r.sent();
    let out = r.gate.handle(completed("ecs-svc/0")).await.unwrap();
    assert_eq!(out.decision, Decision::Blocked);
    assert_eq!(r.aws.tag("menotime:deploy-deferred"), None);
    assert_eq!(r.revision_count(), 2);
    // Frozen meanwhile (the rollout failed and deploy-notifier froze prod): held.
    let r = rig_with(&[], v123(), busy);
    r.gate
        .handle(scan(&["v1.2.4"], CLEAN, json!({})))
        .await
        .unwrap();
    r.aws.settle();
    r.aws
        .set_tag("menotime:deploy-freeze", "deployment ecs-svc/0 failed");
    r.aws.world().findings.insert(
        CLEAN.into(),
        (
            "v1.2.4".into(),
            findings("COMPLETE", &[], "2026-11-25T10:00:00Z"),
        ),
    );
    let out = r.gate.handle(completed("ecs-svc/0")).await.unwrap();
    assert_eq!(out.decision, Decision::Frozen);
    assert_eq!(r.aws.tag("menotime:deploy-deferred"), None);
    // The tag now names another image (it moved): skipped, no longer waiting.
    let r = rig_with(&[], v123(), busy);
    r.gate
        .handle(scan(&["v1.2.4"], CLEAN, json!({})))
        .await
        .unwrap();
    r.aws.settle();
    let out = r.gate.handle(completed("ecs-svc/0")).await.unwrap();
    assert_eq!(out.decision, Decision::Skipped, "{}", out.reason);
    assert_eq!(r.aws.tag("menotime:deploy-deferred"), None);
    // A FAILED rollout does not resume it: it keeps waiting.
    let r = rig_with(&[], v123(), busy);
    r.gate
        .handle(scan(&["v1.2.4"], CLEAN, json!({})))
        .await
        .unwrap();
    let mut failed = completed("ecs-svc/0");
    failed["detail"]["eventName"] = json!("SERVICE_DEPLOYMENT_FAILED");
    let out = r.gate.handle(failed).await.unwrap();
    assert_eq!(out.decision, Decision::Deferred);
    assert!(r.aws.tag("menotime:deploy-deferred").is_some());
}

#[tokio::test]
async fn a_newer_image_replaces_the_deferred_one_which_is_reported_superseded() {
    let busy: &[(&str, &str)] = &[("PRIMARY", "IN_PROGRESS"), ("ACTIVE", "COMPLETED")];
    let r = rig_with(&[], v123(), busy);
    r.gate
        .handle(scan(&["v1.2.4"], CLEAN, json!({})))
        .await
        .unwrap();
    r.sent();
    r.calls();
    // v1.2.5 arrives during the same rollout: it waits instead.
    let out = r
        .gate
        .handle(scan(&["v1.2.5"], OTHER, json!({})))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Deferred);
    assert!(r
        .aws
        .tag("menotime:deploy-deferred")
        .unwrap()
        .contains("tag=v1.2.5"));
    let sent = r.sent();
    let types: Vec<String> = sent
        .iter()
        .map(|m| message(m).0["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["deploy.deferred", "deploy.skipped"]);
    let (superseded, _, _) = message(&sent[1]);
    assert_eq!(superseded["details"]["image_digest"], CLEAN);
    assert_eq!(superseded["details"]["skip_reason"], "superseded");
    // An older image arriving now is superseded by the one waiting.
    let out = r
        .gate
        .handle(scan(&["v1.2.4"], CLEAN, json!({})))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Skipped);
    assert!(out.reason.contains("v1.2.5"), "{}", out.reason);
    assert!(r
        .aws
        .tag("menotime:deploy-deferred")
        .unwrap()
        .contains("tag=v1.2.5"));
    // The rollout completes: v1.2.5 deploys.
    r.aws.settle();
    r.aws.world().findings.insert(
        OTHER.into(),
        (
            "v1.2.5".into(),
            findings("COMPLETE", &[], "2026-11-25T09:46:41Z"),
        ),
    );
    let out = r.gate.handle(completed("ecs-svc/0")).await.unwrap();
    assert_eq!(out.decision, Decision::Deployed, "{}", out.reason);
    assert_eq!(r.aws.running().image, format!("{REGISTRY}@{OTHER}"));
    assert_eq!(r.revision_count(), 3, "one revision registered in all");
}

#[tokio::test]
async fn a_crash_while_resuming_never_deploys_twice_and_never_loses_the_image() {
    let busy: &[(&str, &str)] = &[("PRIMARY", "IN_PROGRESS"), ("ACTIVE", "COMPLETED")];
    let r = rig_with(&[], v123(), busy);
    r.gate
        .handle(scan(&["v1.2.4"], CLEAN, json!({})))
        .await
        .unwrap();
    r.aws.settle();
    r.aws.world().findings.insert(
        CLEAN.into(),
        (
            "v1.2.4".into(),
            findings("COMPLETE", &[], "2026-11-25T09:46:41Z"),
        ),
    );
    // The first attempt dies after UpdateService (its Publish fails for good).
    r.aws.fail("sns:Publish", 1);
    assert!(r.gate.handle(completed("ecs-svc/0")).await.is_err());
    assert!(
        r.aws.tag("menotime:deploy-deferred").is_some(),
        "still waiting"
    );
    // Lambda's retry: the image runs (its rollout is under way): skipped, deferral removed.
    let out = r.gate.handle(completed("ecs-svc/0")).await.unwrap();
    assert_eq!(out.decision, Decision::Skipped, "{}", out.reason);
    assert!(out.reason.contains("already runs"), "{}", out.reason);
    assert_eq!(r.aws.tag("menotime:deploy-deferred"), None);
    assert_eq!(r.revision_count(), 3, "registered once");
}

#[tokio::test]
async fn a_retry_after_update_service_failed_reuses_the_revision() {
    let r = rig();
    r.aws.fail("ecs:UpdateService", 1);
    let e = scan(&["v1.2.4"], CLEAN, json!({}));
    let err = r.gate.handle(e.clone()).await.unwrap_err();
    assert_eq!(err.retry(), Retry::Later);
    assert_eq!(
        r.revision_count(),
        3,
        "the first attempt registered revision 8"
    );
    assert_eq!(
        r.aws.running().arn,
        td_arn(7),
        "but did not update the service"
    );
    r.calls();

    let out = r.gate.handle(e).await.unwrap();
    assert_eq!(out.decision, Decision::Deployed);
    assert!(out.reused_revision);
    assert_eq!(out.task_definition.as_deref(), Some(td_arn(8).as_str()));
    assert_eq!(r.revision_count(), 3, "nothing registered twice");
    assert_eq!(
        r.calls(),
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:DescribeTaskDefinition",
            "ecs:UpdateService",
            "ecs:TagResource",
            "sns:Publish"
        ]
    );
}

#[tokio::test]
async fn a_lost_notification_is_recovered_by_the_retry() {
    let r = rig();
    r.aws.fail("sns:Publish", 1);
    let e = scan(&["v1.2.4"], CLEAN, json!({}));
    assert_eq!(
        r.gate.handle(e.clone()).await.unwrap_err().retry(),
        Retry::Later
    );
    assert!(r.sent().is_empty());
    let out = r.gate.handle(e).await.unwrap();
    assert_eq!(out.decision, Decision::Skipped);
    let sent = r.sent();
    assert_eq!(sent.len(), 1, "the team still hears about the deployment");
    let (payload, _, _) = message(&sent[0]);
    assert!(payload["details"]["reason"]
        .as_str()
        .unwrap()
        .contains("this event deployed it"));
    assert_eq!(payload["details"]["deployed_by_this_event"], true);
    assert_eq!(r.revision_count(), 3);
}

#[tokio::test]
async fn older_releases_and_late_events_are_skipped() {
    let r = rig();
    let out = r
        .gate
        .handle(scan(&["v1.2.2"], OTHER, json!({})))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Skipped);
    assert!(out.reason.contains("older than v1.2.3"));

    let develop = FakeRevision::new(
        PROD,
        7,
        &format!("{REGISTRY}@{CLEAN}"),
        &[
            ("menotime:image-tag", "develop"),
            ("menotime:scanned-at", "2026-11-25T10:00:00Z"),
        ],
    );
    let r = rig_with(
        &[("ENVIRONMENT", "dev")],
        develop,
        &[("PRIMARY", "COMPLETED")],
    );
    let late = scan(&["develop"], OTHER, json!({})); // scanned 09:46:41, before the running one
    let out = r.gate.handle(late).await.unwrap();
    assert_eq!(out.decision, Decision::Skipped);
    assert!(out.reason.contains("out of order"), "{}", out.reason);
    assert_eq!(r.revision_count(), 2);
}

#[tokio::test]
async fn dry_run_reads_decides_and_notifies_only() {
    let r = rig_with(&[("DRY_RUN", "true")], v123(), &[("PRIMARY", "COMPLETED")]);
    let out = r
        .gate
        .handle(scan(&["v1.2.4"], CLEAN, json!({})))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Deployed);
    assert!(out.dry_run);
    assert_eq!(
        r.calls(),
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "sns:Publish"
        ]
    );
    assert_eq!(r.revision_count(), 2);
    assert_eq!(r.aws.running().arn, td_arn(7));
    assert_eq!(
        r.sent()[0].subject,
        "[PROD] dry run: would deploy v1.2.4 to menotime-prod-service"
    );
}

#[tokio::test]
async fn enhanced_scans_hold_what_they_cannot_classify() {
    // LOW blocks in this configuration, but Inspector2 does not report LOW.
    let r = rig_with(
        &[("BLOCK_SEVERITIES", "CRITICAL,HIGH,LOW")],
        v123(),
        &[("PRIMARY", "COMPLETED")],
    );
    let out = r
        .gate
        .handle(inspector(
            &["v1.2.4"],
            CLEAN,
            json!({"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "TOTAL": 2}),
        ))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::ReviewRequired, "{}", out.reason);
    assert!(out.reason.contains("unreported severity"));
    // With the default policy the same event deploys.
    let r = rig();
    let out = r
        .gate
        .handle(inspector(
            &["v1.2.4"],
            CLEAN,
            json!({"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "TOTAL": 2}),
        ))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Deployed);
}

#[tokio::test]
async fn rejected_events_make_no_call() {
    let r = rig();
    let mut other = scan(&["v1.2.4"], CLEAN, json!({}));
    other["account"] = json!("999999999999");
    for e in [other, json!({}), json!({"action": "scale-up"}), json!(null)] {
        let err = r.gate.handle(e).await.unwrap_err();
        assert_eq!(err.kind(), "RejectedEvent", "{err}");
    }
    assert!(r.calls().is_empty());
}

#[tokio::test]
async fn a_new_image_waits_for_the_previous_rollout_to_finish() {
    let r = rig_with(
        &[("ENVIRONMENT", "dev")],
        develop_at("2026-11-25T08:00:00Z"),
        &[("PRIMARY", "COMPLETED")],
    );
    let first = scan(&["develop"], CLEAN, json!({}));
    let mut second = scan(&["develop"], OTHER, json!({}));
    second["time"] = json!("2026-11-25T09:50:00Z");
    assert_eq!(
        r.gate.handle(first.clone()).await.unwrap().decision,
        Decision::Deployed
    );
    // While that rollout runs: a duplicate of the first is a no-op, the next image waits.
    assert_eq!(
        r.gate.handle(first).await.unwrap().decision,
        Decision::Skipped
    );
    assert_eq!(
        r.gate.handle(second.clone()).await.unwrap().decision,
        Decision::Deferred
    );
    assert_eq!(r.revision_count(), 3);
    r.aws.settle();
    // Redelivered once the rollout is over (before its completion reached scan-gate):
    // deployed, and no longer waiting.
    assert_eq!(
        r.gate.handle(second).await.unwrap().decision,
        Decision::Deployed
    );
    assert_eq!(r.aws.running().image, format!("{REGISTRY}@{OTHER}"));
    assert_eq!(r.aws.tag("menotime:deploy-deferred"), None);
}

#[tokio::test]
async fn a_rolled_back_image_is_skipped_and_says_how_to_deploy_it_on_purpose() {
    let r = rig();
    let e = scan(&["v1.2.4"], CLEAN, json!({}));
    assert_eq!(
        r.gate.handle(e.clone()).await.unwrap().decision,
        Decision::Deployed
    );
    let deployed = r.aws.running();
    assert!(deployed.tags["menotime:deployed"].starts_with("deployment=ecs-svc/1111 at="));
    // The circuit breaker rolls back to :7 (ECS's rollback deployment is PRIMARY).
    {
        let mut w = r.aws.world();
        w.service.task_definition = td_arn(7);
        w.service.deployments = vec![DeploymentState {
            id: "ecs-svc/rollback".into(),
            status: "PRIMARY".into(),
            rollout_state: Some("COMPLETED".into()),
            task_definition: td_arn(7),
            created_at: Some("2026-11-25T10:05:00Z".parse().unwrap()),
            ..Default::default()
        }];
    }
    r.calls();
    r.sent();
    // The same scan, redelivered (or redriven, or a rescan): skipped, not redeployed.
    let out = r.gate.handle(e.clone()).await.unwrap();
    assert_eq!(out.decision, Decision::Skipped, "{}", out.reason);
    assert!(
        out.reason.contains("left it at 2026-11-25T10:05:00Z"),
        "{}",
        out.reason
    );
    assert_eq!(r.aws.running().arn, td_arn(7));
    assert_eq!(r.revision_count(), 3);
    let (payload, text, _) = message(&r.sent()[0]);
    assert_eq!(payload["details"]["skip_reason"], "rolled_back");
    assert_eq!(payload["details"]["rolled_back_at"], "2026-11-25T10:05:00Z");
    assert_eq!(payload["details"]["rolled_back_task_definition"], td_arn(8));
    assert!(text.contains("aws events put-events"), "{text}");
    assert!(
        text.contains("--task-definition menotime-backend-prod:8"),
        "{text}"
    );
    // A new digest on the same tag deploys as usual.
    let out = r
        .gate
        .handle(scan(&["v1.2.4"], OTHER, json!({})))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Deployed);
}

#[tokio::test]
async fn an_approval_deploys_a_rolled_back_image_on_purpose() {
    let r = rig();
    r.gate
        .handle(scan(&["v1.2.6"], OTHER, json!({})))
        .await
        .unwrap();
    {
        let mut w = r.aws.world();
        w.service.task_definition = td_arn(7);
        w.service.deployments.truncate(1);
        w.service.deployments[0].task_definition = td_arn(7);
        w.service.deployments[0].rollout_state = Some("COMPLETED".into());
    }
    r.aws.world().findings.insert(
        OTHER.into(),
        (
            "v1.2.6".into(),
            findings("COMPLETE", &[(Severity::Medium, 2)], "2026-11-25T11:03:17Z"),
        ),
    );
    let out = r.gate.handle(approval("v1.2.6", OTHER)).await.unwrap();
    assert_eq!(out.decision, Decision::Deployed, "{}", out.reason);
    assert!(out.reused_revision, "its revision is deployed again");
    assert_eq!(r.aws.running().arn, td_arn(8));
}

#[tokio::test]
async fn a_lost_deployed_mark_is_written_by_the_retry() {
    let r = rig();
    r.aws.fail("ecs:TagResource", 1);
    let e = scan(&["v1.2.4"], CLEAN, json!({}));
    let err = r.gate.handle(e.clone()).await.unwrap_err();
    assert_eq!(err.retry(), Retry::Later, "{err}");
    assert!(!r.aws.running().tags.contains_key("menotime:deployed"));
    r.calls();
    let out = r.gate.handle(e).await.unwrap();
    assert_eq!(out.decision, Decision::Skipped);
    assert_eq!(
        r.calls(),
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:TagResource",
            "sns:Publish"
        ]
    );
    assert!(r.aws.running().tags["menotime:deployed"].starts_with("deployment=ecs-svc/1111 at="));
}

#[tokio::test]
async fn an_interrupted_attempt_is_still_reused_but_a_deployed_one_is_not() {
    // Registered, never deployed (no mark): reused.
    let r = rig();
    r.aws.fail("ecs:UpdateService", 1);
    let e = scan(&["v1.2.4"], CLEAN, json!({}));
    assert!(r.gate.handle(e.clone()).await.is_err());
    let out = r.gate.handle(e).await.unwrap();
    assert!(out.reused_revision);
}

#[tokio::test]
async fn a_revision_someone_else_registered_is_not_reused() {
    let r = rig();
    // A newer revision with the same image, registered by hand (maybe with other
    // settings): scan-gate registers its own faithful copy of the running one.
    r.aws.add_revision(FakeRevision::new(
        PROD,
        8,
        &format!("{REGISTRY}@{CLEAN}"),
        &[],
    ));
    let out = r
        .gate
        .handle(scan(&["v1.2.4"], CLEAN, json!({})))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Deployed);
    assert!(!out.reused_revision);
    assert_eq!(out.task_definition.as_deref(), Some(td_arn(9).as_str()));
}

#[tokio::test]
async fn a_newest_revision_without_our_container_does_not_stop_deploys() {
    let r = rig();
    r.aws.world().latest_lacks_container = true;
    let out = r
        .gate
        .handle(scan(&["v1.2.4"], CLEAN, json!({})))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Deployed, "{}", out.reason);
}

fn develop_at(scanned_at: &str) -> FakeRevision {
    FakeRevision::new(
        PROD,
        7,
        &format!("{REGISTRY}:develop"),
        &[("menotime:scanned-at", scanned_at)],
    )
}

#[tokio::test]
async fn a_stale_approval_is_refused_before_anything_is_read() {
    let r = rig();
    let mut e = approval("v1.2.6", OTHER);
    e["time"] = json!("2026-11-19T11:19:59Z"); // 168 h and 1 s before the clock
    let err = r.gate.handle(e.clone()).await.unwrap_err();
    assert_eq!(err.kind(), "RejectedEvent", "{err}");
    assert!(
        err.to_string().contains("APPROVAL_MAX_AGE_HOURS (168)"),
        "{err}"
    );
    assert!(r.calls().is_empty(), "refused before ECR is read");
    // Exactly 168 h old: still honoured; with APPROVAL_MAX_AGE_HOURS=24, refused.
    e["time"] = json!("2026-11-19T11:20:00Z");
    r.aws.world().findings.insert(
        OTHER.into(),
        (
            "v1.2.6".into(),
            findings("COMPLETE", &[(Severity::Medium, 2)], "2026-11-19T11:03:17Z"),
        ),
    );
    assert_eq!(r.gate.handle(e).await.unwrap().decision, Decision::Deployed);
    let r = rig_with(
        &[("APPROVAL_MAX_AGE_HOURS", "24")],
        v123(),
        &[("PRIMARY", "COMPLETED")],
    );
    let mut e = approval("v1.2.6", OTHER);
    e["time"] = json!("2026-11-25T11:19:00Z");
    assert_eq!(r.gate.handle(e).await.unwrap_err().kind(), "RejectedEvent");
}

#[tokio::test]
async fn an_approval_without_reviewed_counts_is_refused() {
    let r = rig();
    let mut e = approval("v1.2.6", OTHER);
    e["detail"]
        .as_object_mut()
        .unwrap()
        .remove("reviewed-counts");
    let err = r.gate.handle(e).await.unwrap_err();
    assert_eq!(err.kind(), "RejectedEvent");
    assert!(err.to_string().contains("reviewed-counts"), "{err}");
    assert!(r.calls().is_empty());
}

#[tokio::test]
async fn an_approval_no_longer_covers_counts_that_grew() {
    let r = rig();
    // Reviewed 2 MEDIUM; the image was rescanned since and ECR now reports 3.
    r.aws.world().findings.insert(
        OTHER.into(),
        (
            "v1.2.6".into(),
            findings(
                "COMPLETE",
                &[(Severity::Medium, 3), (Severity::Low, 5)],
                "2026-11-25T13:00:00Z",
            ),
        ),
    );
    let out = r.gate.handle(approval("v1.2.6", OTHER)).await.unwrap();
    assert_eq!(out.decision, Decision::ReviewRequired, "{}", out.reason);
    assert!(
        out.reason.contains("3 MEDIUM now, 2 reviewed"),
        "{}",
        out.reason
    );
    assert_eq!(r.calls(), ["ecr:DescribeImageScanFindings", "sns:Publish"]);
    assert_eq!(r.revision_count(), 2, "nothing deployed");
    let (payload, text, _) = message(&r.sent()[0]);
    assert_eq!(payload["event_type"], "deploy.review_required");
    assert_eq!(payload["details"]["counts"], json!({"MEDIUM": 3, "LOW": 5}));
    assert_eq!(payload["details"]["reviewed_counts"], json!({"MEDIUM": 3}));
    assert!(text.contains("Approval not honoured"), "{text}");
    // The new command carries the new counts: approving it again reviews 3 MEDIUM.
    let cmd = payload["details"]["approve_command"].as_str().unwrap();
    assert!(
        cmd.contains(r#"\"reviewed-counts\":{\"MEDIUM\":3}"#),
        "{cmd}"
    );
    let mut again = approval("v1.2.6", OTHER);
    again["detail"]["reviewed-counts"] = json!({"MEDIUM": 3});
    assert_eq!(
        r.gate.handle(again).await.unwrap().decision,
        Decision::Deployed
    );
}

#[tokio::test]
async fn the_review_command_fills_in_the_counts_to_review() {
    let r = rig();
    r.gate
        .handle(scan(&["v1.2.6"], OTHER, json!({"MEDIUM": 2, "LOW": 1})))
        .await
        .unwrap();
    let (payload, _, _) = message(&r.sent()[0]);
    assert_eq!(payload["details"]["reviewed_counts"], json!({"MEDIUM": 2}));
    assert!(payload["details"]["approve_command"]
        .as_str()
        .unwrap()
        .contains(r#"\"reviewed-counts\":{\"MEDIUM\":2}"#));
}

#[tokio::test]
async fn a_late_copy_of_a_completion_never_deploys_over_the_next_rollout() {
    let busy: &[(&str, &str)] = &[("PRIMARY", "IN_PROGRESS"), ("ACTIVE", "COMPLETED")];
    let r = rig_with(&[], v123(), busy);
    r.gate
        .handle(scan(&["v1.2.4"], CLEAN, json!({})))
        .await
        .unwrap();
    r.aws.world().findings.insert(
        CLEAN.into(),
        (
            "v1.2.4".into(),
            findings("COMPLETE", &[], "2026-11-25T09:46:41Z"),
        ),
    );
    // ECS still shows the rollout in progress when its completion arrives: the
    // completion is believed for what it names.
    let out = r.gate.handle(completed("ecs-svc/0")).await.unwrap();
    assert_eq!(out.decision, Decision::Deployed, "{}", out.reason);
    // v1.2.5 arrives during v1.2.4's own rollout: it waits.
    let out = r
        .gate
        .handle(scan(&["v1.2.5"], OTHER, json!({})))
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::Deferred);
    r.aws.world().findings.insert(
        OTHER.into(),
        (
            "v1.2.5".into(),
            findings("COMPLETE", &[], "2026-11-25T09:46:41Z"),
        ),
    );
    // EventBridge delivers the old completion again: v1.2.4's rollout, started after
    // it, still counts, so v1.2.5 keeps waiting.
    let out = r.gate.handle(completed("ecs-svc/0")).await.unwrap();
    assert_eq!(out.decision, Decision::Deferred, "{}", out.reason);
    assert!(r
        .aws
        .tag("menotime:deploy-deferred")
        .unwrap()
        .contains("tag=v1.2.5"));
    assert_eq!(r.aws.running().image, format!("{REGISTRY}@{CLEAN}"));
}
