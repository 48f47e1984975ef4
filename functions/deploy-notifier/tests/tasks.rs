//! deploy-notifier's task stops beyond out-of-memory kills, over fakes: tasks that
//! will not start (once per deployment and cause, with the manual's checks filled in)
//! and Fargate Spot interruptions.
#![cfg(test)]

use serde_json::{json, Value};

use deploy_notifier::{Decision, DeployNotifier, Outcome};
use menotime_shared::config::{Environment, NotifierConfig, WatchConfig};
use menotime_shared::notify::Rendered;
use menotime_shared::testing::{common, repository_uri, FakeAws, FakeRevision, SECURITY_GROUP};
use menotime_shared::{tags, Error, Retry};

const TASK: &str = "arn:aws:ecs:us-west-1:123456789012:task/menotime-prod-cluster/8a33d8a97eda4bd89eb5f8893f322fd7";

struct Rig {
    notifier: DeployNotifier<FakeAws, FakeAws>,
    aws: FakeAws,
}

impl Rig {
    fn new(env: Environment) -> Rig {
        let aws = FakeAws::new(
            env,
            FakeRevision::new(env, 49, &format!("{}:v1.2.4", repository_uri()), &[]),
        );
        let cfg = NotifierConfig {
            common: common(env),
            freeze_on_failure: env == Environment::Prod,
            container: Some("menotime-backend".into()),
            watch: WatchConfig::defaults(env),
        };
        Rig {
            notifier: DeployNotifier::new(cfg, aws.clone(), aws.clone()),
            aws,
        }
    }

    async fn handle(&self, event: Value, request: &str) -> Result<Outcome, Error> {
        self.aws.calls();
        self.notifier.handle(event, request).await
    }

    fn calls(&self) -> Vec<&'static str> {
        self.aws.world().calls.clone()
    }
}

/// The reference TaskFailedToStart event, moved to `env`, with `reason` and the
/// deployment that started the task.
fn failed_to_start(env: Environment, reason: &str, deployment: &str, id: &str) -> Value {
    let path = format!(
        "{}/../../shared/fixtures/reference/ecs-task-stopped-failed-to-start.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("menotime-prod-", &format!("menotime-{env}-"));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["id"] = json!(id);
    v["detail"]["stoppedReason"] = json!(reason);
    v["detail"]["startedBy"] = json!(deployment);
    v
}

const PULL: &str = "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend@sha256:0000000000000000000000000000000000000000000000000000000000000000: not found";
const SECRETS: &str = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 5 time(s): AccessDeniedException";

fn payload(r: &Rendered) -> Value {
    let m: Value = serde_json::from_str(&r.message).unwrap();
    serde_json::from_str(m["sqs"].as_str().unwrap()).unwrap()
}

fn text(r: &Rendered) -> String {
    let m: Value = serde_json::from_str(&r.message).unwrap();
    m["default"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_task_that_cannot_pull_its_image_is_reported_with_the_manuals_checks() {
    let rig = Rig::new(Environment::Prod);
    let o = rig
        .handle(
            failed_to_start(Environment::Prod, PULL, "ecs-svc/1", "t-1"),
            "req-1",
        )
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Notified, "{}", o.reason);
    // Recorded pending, published, confirmed.
    assert_eq!(
        rig.calls(),
        [
            "ecs:DescribeServices",
            "ecs:TagResource",
            "sns:Publish",
            "ecs:TagResource"
        ]
    );
    let marker = rig.aws.world().tags[menotime_shared::tags::TASK_START_INCIDENT].clone();
    assert!(
        marker.starts_with("deployment=ecs-svc/1 sent=image-pull state=open"),
        "confirmed, nothing pending: {marker}"
    );
    let sent = rig.aws.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].topic_arn.ends_with("-notify"),
        "a warning, never a page"
    );
    assert_eq!(
        sent[0].subject,
        "[PROD] Tasks fail to start: menotime-prod-service, image cannot be pulled"
    );
    let p = payload(&sent[0]);
    assert_eq!(p["event_type"], "task.start_failed");
    assert_eq!(p["severity"], "warning");
    assert_eq!(p["action"], "notify");
    assert_eq!(p["details"]["cause"], "image-pull");
    assert_eq!(p["details"]["deployment_id"], "ecs-svc/1");
    assert_eq!(p["details"]["task_arn"], TASK);
    assert_eq!(p["details"]["security_groups"], json!([SECURITY_GROUP]));
    let t = text(&sent[0]);
    let needles: [String; 7] = [
        format!("aws ecs describe-tasks --region us-west-1 --cluster menotime-prod-cluster --tasks {TASK} --query 'tasks[0].{{lastStatus:lastStatus,stopCode:stopCode,stoppedReason:stoppedReason}}'"),
        "aws ecr describe-images --region us-west-1 --repository-name menotime/backend --image-ids imageDigest=sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
        "aws ecs describe-task-definition --region us-west-1 --task-definition menotime-backend-prod:49".into(),
        format!("aws ecs describe-tasks --region us-west-1 --cluster menotime-prod-cluster --tasks {TASK} --query 'tasks[0].attachments[0].details[?name==`networkInterfaceId`].value'"),
        format!("aws ec2 describe-security-groups --region us-west-1 --group-ids {SECURITY_GROUP}"),
        "port 8000".into(),
        "aws logs tail /aws/ecs/menotime-prod --region us-west-1 --follow".into(),
    ];
    for needle in needles {
        assert!(t.contains(&needle), "missing {needle:?} in\n{t}");
    }
    let marker = rig.aws.tag(tags::TASK_START_INCIDENT).unwrap();
    assert!(
        marker.starts_with("deployment=ecs-svc/1 sent=image-pull "),
        "{marker}"
    );
}

/// DescribeServices may report no security groups (a service without an awsvpc
/// configuration in its answer): the port-8000 check stays, with a command that looks
/// the groups up from the service.
#[tokio::test]
async fn without_the_services_security_groups_the_check_looks_them_up() {
    let rig = Rig::new(Environment::Prod);
    rig.aws.world().service.security_groups.clear();
    let o = rig
        .handle(
            failed_to_start(Environment::Prod, PULL, "ecs-svc/1", "t-1"),
            "req-1",
        )
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Notified, "{}", o.reason);
    let sent = rig.aws.sent();
    assert_eq!(payload(&sent[0])["details"]["security_groups"], json!([]));
    let t = text(&sent[0]);
    for needle in [
        "allow port 8000 in",
        "aws ec2 describe-security-groups --region us-west-1 --group-ids $(aws ecs describe-services --region us-west-1 --cluster menotime-prod-cluster --services menotime-prod-service --query 'services[0].networkConfiguration.awsvpcConfiguration.securityGroups' --output text)",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
}

#[tokio::test]
async fn once_per_deployment_and_cause() {
    let rig = Rig::new(Environment::Prod);
    let env = Environment::Prod;
    rig.handle(failed_to_start(env, PULL, "ecs-svc/1", "t-1"), "req-1")
        .await
        .unwrap();
    // The next task of the deployment fails the same way: one read, nothing sent.
    let o = rig
        .handle(failed_to_start(env, PULL, "ecs-svc/1", "t-2"), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Duplicate, "{}", o.reason);
    assert_eq!(rig.calls(), ["ecs:DescribeServices"]);
    // Another cause of the same deployment: reported.
    let o = rig
        .handle(failed_to_start(env, SECRETS, "ecs-svc/1", "t-3"), "req-3")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Notified);
    // The next deployment failing to pull: reported again.
    let o = rig
        .handle(failed_to_start(env, PULL, "ecs-svc/2", "t-4"), "req-4")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Notified);
    let causes: Vec<Value> = rig
        .aws
        .sent()
        .iter()
        .map(|r| payload(r)["details"]["cause"].clone())
        .collect();
    assert_eq!(
        causes,
        [
            json!("image-pull"),
            json!("resource-init"),
            json!("image-pull")
        ]
    );
}

#[tokio::test]
async fn each_cause_carries_its_own_checks() {
    let env = Environment::Staging;
    for (reason, needle, absent) in [
        (
            SECRETS,
            "the execution role must be allowed to read the revision's secrets",
            "describe-images",
        ),
        (
            "CannotStartContainerError: Error response from daemon: failed to create shim task",
            "port 8000 must match the image",
            "describe-security-groups",
        ),
        (
            "Capacity is unavailable at this time. Please try again later or in a different availability zone",
            "--query 'services[0].events[:10]'",
            "describe-task-definition",
        ),
    ] {
        let rig = Rig::new(env);
        let o = rig
            .handle(failed_to_start(env, reason, "ecs-svc/7", "t-1"), "req-1")
            .await
            .unwrap();
        assert_eq!(o.decision, Decision::Notified);
        let t = text(&rig.aws.sent()[0]);
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
        assert!(!t.contains(absent), "{absent:?} is not a check for {reason}:\n{t}");
        assert!(t.contains("aws logs tail /aws/ecs/menotime-staging"), "{t}");
    }
}

#[tokio::test]
async fn a_notice_recorded_and_never_published_goes_out_with_the_next_delivery_once() {
    for (retry, next_task) in [("req-1", false), ("redrive-1", false), ("req-2", true)] {
        let rig = Rig::new(Environment::Prod);
        let ev = failed_to_start(Environment::Prod, PULL, "ecs-svc/1", "t-1");
        rig.aws.fail_always("sns:Publish");
        let err = rig.handle(ev.clone(), "req-1").await.unwrap_err();
        assert_eq!(err.retry(), Retry::Later);
        rig.aws.heal("sns:Publish");
        rig.calls();
        // The Lambda retry, a redrive under a new request id, or the next task of the
        // deployment failing the same way: each publishes it, once.
        let again = if next_task {
            failed_to_start(Environment::Prod, PULL, "ecs-svc/1", "t-2")
        } else {
            ev.clone()
        };
        let o = rig.handle(again.clone(), retry).await.unwrap();
        assert_eq!(o.decision, Decision::Notified, "{retry}: {}", o.reason);
        assert!(o.resent, "{retry}");
        assert_eq!(
            rig.calls(),
            ["ecs:DescribeServices", "sns:Publish", "ecs:TagResource"],
            "{retry}"
        );
        assert_eq!(rig.aws.sent().len(), 1, "{retry}");
        // Confirmed: every later delivery is a duplicate.
        for request in [retry, "req-9"] {
            assert_eq!(
                rig.handle(again.clone(), request).await.unwrap().decision,
                Decision::Duplicate
            );
        }
        assert!(rig.aws.sent().is_empty(), "{retry}");
    }
}

/// A cause left pending is published by the next failure of the same deployment even
/// when that one has another cause, already reported: it is never left waiting for a
/// task to fail the same way again.
#[tokio::test]
async fn a_pending_cause_goes_out_with_the_next_failure_of_any_cause() {
    let rig = Rig::new(Environment::Prod);
    rig.handle(
        failed_to_start(Environment::Prod, PULL, "ecs-svc/1", "t-1"),
        "req-1",
    )
    .await
    .unwrap();
    rig.aws.sent();
    // The secrets failure (resource initialisation) is recorded, and SNS refuses it
    // through every attempt.
    rig.aws.fail_always("sns:Publish");
    rig.handle(
        failed_to_start(Environment::Prod, SECRETS, "ecs-svc/1", "t-2"),
        "req-2",
    )
    .await
    .unwrap_err();
    rig.aws.heal("sns:Publish");
    // The next task fails to pull its image again: already reported, but the secrets
    // notice is still pending, so it goes out now, and only it.
    let o = rig
        .handle(
            failed_to_start(Environment::Prod, PULL, "ecs-svc/1", "t-3"),
            "req-3",
        )
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Notified, "{}", o.reason);
    let sent = rig.aws.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(payload(&sent[0])["details"]["cause"], "resource-init");
    let marker = rig.aws.world().tags[menotime_shared::tags::TASK_START_INCIDENT].clone();
    assert!(!marker.contains("pending="), "all confirmed: {marker}");
    // From then on, both are duplicates.
    for (reason, id) in [(PULL, "t-4"), (SECRETS, "t-5")] {
        let o = rig
            .handle(
                failed_to_start(Environment::Prod, reason, "ecs-svc/1", id),
                id,
            )
            .await
            .unwrap();
        assert_eq!(o.decision, Decision::Duplicate, "{id}");
    }
    assert!(rig.aws.sent().is_empty());
}

#[tokio::test]
async fn the_next_deployments_failure_first_publishes_what_the_last_one_left_pending() {
    let rig = Rig::new(Environment::Prod);
    rig.aws.fail_always("sns:Publish");
    rig.handle(
        failed_to_start(Environment::Prod, PULL, "ecs-svc/1", "t-1"),
        "req-1",
    )
    .await
    .unwrap_err();
    rig.aws.heal("sns:Publish");
    let mut ev = failed_to_start(Environment::Prod, PULL, "ecs-svc/2", "t-9");
    ev["time"] = json!("2026-11-26T05:00:00Z");
    ev["detail"]["stoppedAt"] = json!("2026-11-26T05:00:00Z");
    rig.aws.sent();
    let o = rig.handle(ev, "req-2").await.unwrap();
    assert_eq!(o.decision, Decision::Notified, "{}", o.reason);
    let sent = rig.aws.sent();
    assert_eq!(sent.len(), 2);
    assert!(
        text(&sent[0]).contains("Delivered late"),
        "{}",
        text(&sent[0])
    );
    assert!(text(&sent[0]).contains("ecs-svc/1"));
    assert!(text(&sent[1]).contains("ecs-svc/2"));
    // The late straggler of the first deployment changes nothing now.
    let o = rig
        .handle(
            failed_to_start(Environment::Prod, PULL, "ecs-svc/1", "t-1"),
            "redrive",
        )
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Late, "{}", o.reason);
    assert!(rig.aws.sent().is_empty());
}

#[tokio::test]
async fn a_notice_whose_marker_cannot_be_written_still_goes_out() {
    let rig = Rig::new(Environment::Prod);
    rig.aws.fail_always("ecs:TagResource");
    let o = rig
        .handle(
            failed_to_start(Environment::Prod, PULL, "ecs-svc/1", "t-1"),
            "req-1",
        )
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Notified);
    assert!(!o.state_recorded);
    assert_eq!(rig.aws.sent().len(), 1);
}

#[tokio::test]
async fn a_spot_interruption_is_information_outside_prod_and_a_warning_in_prod() {
    for (env, severity) in [
        (Environment::Dev, "info"),
        (Environment::Staging, "info"),
        (Environment::Prod, "warning"),
    ] {
        let rig = Rig::new(env);
        let mut ev = failed_to_start(env, "Your Spot Task was interrupted.", "ecs-svc/1", "s-1");
        ev["detail"]["stopCode"] = json!("SpotInterruption");
        ev["detail"]["capacityProviderName"] = json!("FARGATE_SPOT");
        let o = rig.handle(ev, "req-1").await.unwrap();
        assert_eq!(o.decision, Decision::Notified, "{env}");
        assert_eq!(rig.calls(), ["sns:Publish"]);
        let sent = rig.aws.sent();
        assert!(sent[0].topic_arn.ends_with("-notify"));
        let p = payload(&sent[0]);
        assert_eq!(p["event_type"], "task.interrupted", "{env}");
        assert_eq!(p["severity"], severity, "{env}");
        assert_eq!(p["details"]["capacity_provider"], "FARGATE_SPOT");
    }
}

#[tokio::test]
async fn other_stops_and_tasks_still_stopping_are_ignored() {
    let rig = Rig::new(Environment::Prod);
    let mut deprovisioning = failed_to_start(Environment::Prod, PULL, "ecs-svc/1", "t-1");
    deprovisioning["detail"]["lastStatus"] = json!("DEPROVISIONING");
    let mut scaled_in = failed_to_start(
        Environment::Prod,
        "Scaling activity initiated by deployment",
        "ecs-svc/1",
        "t-2",
    );
    scaled_in["detail"]["stopCode"] = json!("ServiceSchedulerInitiated");
    for ev in [deprovisioning, scaled_in] {
        let o = rig.handle(ev, "req").await.unwrap();
        assert_eq!(o.decision, Decision::Ignored, "{}", o.reason);
        assert!(rig.calls().is_empty());
    }
    assert!(rig.aws.sent().is_empty());
}
