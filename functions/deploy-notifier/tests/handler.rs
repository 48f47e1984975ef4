//! deploy-notifier's handler over fakes: every event kind, every decision, the calls
//! each one costs, and the faults that must neither lose nor double a page.
#![cfg(test)]

use serde_json::{json, Value};

use deploy_notifier::{Decision, DeployNotifier, Outcome};
use menotime_shared::config::{Environment, NotifierConfig, WatchConfig};
use menotime_shared::domain::incident::Marker;
use menotime_shared::domain::service::DeploymentState;
use menotime_shared::notify::Rendered;
use menotime_shared::testing::{common, repository_uri, FakeAws, FakeRevision};
use menotime_shared::{tags, Error, Retry};

const DEPLOYMENT: &str = "ecs-svc/4231880795355584839";
const ROLLBACK_TO: &str = "ecs-svc/6177963417134325488";

/// The revisions are prod's family whatever the environment.
fn td(n: u32) -> String {
    menotime_shared::testing::td_arn(Environment::Prod, n)
}

struct Rig {
    notifier: DeployNotifier<FakeAws, FakeAws>,
    aws: FakeAws,
}

impl Rig {
    fn new(env: Environment) -> Rig {
        Rig::with(env, |_| {})
    }

    fn with(env: Environment, tweak: impl FnOnce(&mut NotifierConfig)) -> Rig {
        let running = FakeRevision::new(
            Environment::Prod,
            47,
            &format!("{}:v1.2.3", repository_uri()),
            &[],
        );
        let aws = FakeAws::new(env, running);
        // The revision that failed; scan-gate recorded its tag.
        aws.add_revision(FakeRevision::new(
            Environment::Prod,
            48,
            &format!("{}@sha256:{}", repository_uri(), "ab".repeat(32)),
            &[(tags::IMAGE_TAG, "v1.2.4")],
        ));
        {
            let mut w = aws.world();
            // During a circuit-breaker rollback: the rollback is PRIMARY, the failed
            // deployment still ACTIVE.
            w.service.task_definition = td(47);
            w.service.deployments = vec![
                DeploymentState {
                    id: ROLLBACK_TO.into(),
                    status: "PRIMARY".into(),
                    rollout_state: Some("IN_PROGRESS".into()),
                    task_definition: td(47),
                    ..Default::default()
                },
                DeploymentState {
                    id: DEPLOYMENT.into(),
                    status: "ACTIVE".into(),
                    rollout_state: Some("FAILED".into()),
                    task_definition: td(48),
                    ..Default::default()
                },
            ];
            w.service.desired_count = 2;
            w.service.running_count = 1;
            w.service.pending_count = 1;
        }
        let mut cfg = NotifierConfig {
            common: common(env),
            freeze_on_failure: env == Environment::Prod,
            container: Some("menotime-backend".into()),
            watch: WatchConfig::defaults(env),
        };
        tweak(&mut cfg);
        Rig {
            notifier: DeployNotifier::new(cfg, aws.clone(), aws.clone()),
            aws,
        }
    }

    async fn handle(&self, event: Value, request: &str) -> Result<Outcome, Error> {
        self.aws.calls();
        self.notifier.handle(event, request).await
    }

    /// The calls of the last `handle`.
    fn calls(&self) -> Vec<&'static str> {
        self.aws.world().calls.clone()
    }

    /// Everything published since the last `take_sent`.
    fn sent(&self) -> Vec<Rendered> {
        self.aws.world().sent.clone()
    }

    fn take_sent(&self) -> Vec<Rendered> {
        self.aws.sent()
    }

    fn tag(&self, key: &str) -> Option<String> {
        self.aws.tag(key)
    }

    fn remove_tag(&self, key: &str) {
        self.aws.remove_tag(key);
    }
}

fn reference(name: &str) -> Value {
    let path = format!(
        "{}/../../shared/fixtures/reference/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A reference event moved to `env` (the references are prod's).
fn ev(name: &str, env: Environment) -> Value {
    let text = reference(name)
        .to_string()
        .replace("menotime-prod-", &format!("menotime-{env}-"));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    if name == "ecs-task-stopped" {
        v["detail"]["group"] = json!(format!("service:menotime-{env}-service"));
    }
    v
}

fn payload(r: &Rendered) -> Value {
    let m: Value = serde_json::from_str(&r.message).unwrap();
    serde_json::from_str(m["sqs"].as_str().unwrap()).unwrap()
}

fn text(r: &Rendered) -> String {
    let m: Value = serde_json::from_str(&r.message).unwrap();
    m["default"].as_str().unwrap().to_owned()
}

fn is_oncall(r: &Rendered) -> bool {
    r.topic_arn.ends_with("-oncall")
}

const PROD: Environment = Environment::Prod;

#[tokio::test]
async fn a_failed_prod_deployment_pages_once_freezes_and_names_the_way_back() {
    let rig = Rig::new(PROD);
    let o = rig
        .handle(ev("ecs-deployment-failed", PROD), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged);
    assert!(o.froze);
    // Recorded pending (with the freeze), published, then confirmed.
    assert_eq!(
        rig.calls(),
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:TagResource",
            "sns:Publish",
            "ecs:TagResource"
        ]
    );
    let sent = rig.sent();
    assert_eq!(sent.len(), 1);
    let page = &sent[0];
    assert!(is_oncall(page));
    assert_eq!(
        page.subject,
        "[PROD] Deployment failed: menotime-prod-service"
    );
    let p = payload(page);
    assert_eq!(p["event_type"], "deploy.failed");
    assert_eq!(p["severity"], "critical");
    assert_eq!(p["action"], "trigger");
    assert_eq!(
        p["dedup_key"],
        "menotime/prod/menotime-prod-service/deployment"
    );
    assert_eq!(p["details"]["deployment_id"], DEPLOYMENT);
    assert_eq!(p["details"]["previous_task_definition"], td(47));
    assert_eq!(p["details"]["failed_task_definition"], td(48));
    assert_eq!(p["details"]["image_tag"], "v1.2.4");
    assert_eq!(p["details"]["frozen"], true);
    let t = text(page);
    for needle in [
        "ECS deployment circuit breaker: task failed to start.",
        "Failed revision:",
        "menotime-backend-prod:48",
        "menotime/backend@sha256:abab",
        "Image tag:",
        "v1.2.4",
        "Previous revision:",
        "1 running of 2 desired, 1 pending",
        "FROZEN (menotime:deploy-freeze)",
        "aws ecs describe-services --region us-west-1 --cluster menotime-prod-cluster --services menotime-prod-service",
        "aws logs tail /aws/ecs/menotime-prod",
        "aws ecs update-service --region us-west-1 --cluster menotime-prod-cluster --service menotime-prod-service --task-definition menotime-backend-prod:47 --force-new-deployment",
        "aws ecs untag-resource --region us-west-1 --resource-arn arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service --tag-keys menotime:deploy-freeze",
        "Console: https://us-west-1.console.aws.amazon.com/ecs/v2/clusters/menotime-prod-cluster/services/menotime-prod-service/deployments",
        // The operator CLI's commands, each before the AWS CLI's.
        "menotime-ops status --env prod --region us-west-1\n    aws ecs describe-services",
        "menotime-ops rollback --to menotime-backend-prod:47 --env prod --region us-west-1\n    aws ecs update-service",
        "menotime-ops unfreeze --reason 'WHAT_WAS_REVIEWED' --env prod --region us-west-1\n    aws ecs untag-resource",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
    let freeze = rig.tag(tags::DEPLOY_FREEZE).unwrap();
    assert!(
        freeze.starts_with(&format!(
            "deployment {DEPLOYMENT} failed at 2025-06-02T18:00:59Z"
        )),
        "{freeze}"
    );
    let marker = Marker::parse(&rig.tag(tags::DEPLOY_INCIDENT).unwrap()).unwrap();
    assert!(marker.open);
    assert!(marker.sent.contains("failed") && marker.pending.is_empty());
    assert_eq!(marker.request, "req-1");

    // EventBridge delivers the same event again: one read, nothing sent.
    let o = rig
        .handle(ev("ecs-deployment-failed", PROD), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Duplicate);
    assert_eq!(rig.calls(), ["ecs:DescribeServices"]);
    assert_eq!(rig.sent().len(), 1);
}

#[tokio::test]
async fn the_rollback_joins_the_same_incident_without_a_second_freeze() {
    let rig = Rig::new(PROD);
    rig.handle(ev("ecs-deployment-failed", PROD), "req-1")
        .await
        .unwrap();
    let freeze = rig.tag(tags::DEPLOY_FREEZE);
    let o = rig
        .handle(ev("ecs-deployment-in-progress-rollback", PROD), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged);
    assert!(!o.froze);
    assert_eq!(rig.tag(tags::DEPLOY_FREEZE), freeze);
    let sent = rig.sent();
    let (failed, rollback) = (payload(&sent[0]), payload(&sent[1]));
    assert_eq!(rollback["event_type"], "deploy.rollback");
    assert_eq!(rollback["action"], "trigger");
    assert_eq!(rollback["dedup_key"], failed["dedup_key"]);
    assert_eq!(rollback["details"]["rollback_to_deployment"], ROLLBACK_TO);
    assert_eq!(
        sent[1].subject,
        "[PROD] Circuit breaker rolling back menotime-prod-service"
    );
    // ...and its duplicate is silent too.
    let o = rig
        .handle(ev("ecs-deployment-in-progress-rollback", PROD), "req-3")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Duplicate);
    assert_eq!(rig.sent().len(), 2);
}

#[tokio::test]
async fn a_failed_publish_is_delivered_once_by_the_retry_or_a_redrive() {
    // Lambda's retry (the same request id) and a redrive (a new one) both deliver
    // the page the failed attempt recorded; whichever comes first, exactly one page.
    for second in ["req-1", "redrive-1"] {
        let rig = Rig::new(PROD);
        rig.aws.fail_always("sns:Publish");
        let err = rig
            .handle(ev("ecs-deployment-failed", PROD), "req-1")
            .await
            .unwrap_err();
        assert_eq!(err.retry(), Retry::Later);
        // The freeze and the page, pending, were recorded before the publish.
        assert!(rig.tag(tags::DEPLOY_FREEZE).is_some());
        let m = Marker::parse(&rig.tag(tags::DEPLOY_INCIDENT).unwrap()).unwrap();
        assert!(m.pending.contains("failed") && m.sent.is_empty());
        rig.aws.heal("sns:Publish");
        let o = rig
            .handle(ev("ecs-deployment-failed", PROD), second)
            .await
            .unwrap();
        assert_eq!(o.decision, Decision::Paged, "{second}");
        assert!(o.resent);
        assert_eq!(
            rig.calls(),
            [
                "ecs:DescribeServices",
                "ecs:DescribeTaskDefinition",
                "sns:Publish",
                "ecs:TagResource"
            ],
            "no second record, no second freeze"
        );
        assert_eq!(rig.sent().len(), 1);
        assert!(text(&rig.sent()[0]).contains("already frozen"));
        // Confirmed: every other delivery, the retry included, is a duplicate.
        for third in ["req-1", "req-2", "redrive-2"] {
            let o = rig
                .handle(ev("ecs-deployment-failed", PROD), third)
                .await
                .unwrap();
            assert_eq!(o.decision, Decision::Duplicate);
        }
        assert_eq!(rig.sent().len(), 1);
    }
}

#[tokio::test]
async fn a_prod_failure_ends_frozen_even_when_the_first_freeze_write_fails() {
    // Every TagResource of the first attempt fails: the page goes out, says the
    // freeze is not written yet, and the invocation fails so Lambda's retry freezes.
    let rig = Rig::new(PROD);
    rig.aws.fail_always("ecs:TagResource");
    let err = rig
        .handle(ev("ecs-deployment-failed", PROD), "req-1")
        .await
        .unwrap_err();
    assert_eq!(err.retry(), Retry::Later, "{err}");
    assert!(err.to_string().contains("could not be frozen"), "{err}");
    let sent = rig.sent();
    assert_eq!(sent.len(), 1, "the page is not held back");
    assert!(is_oncall(&sent[0]));
    let t = text(&sent[0]);
    assert!(t.contains("NOT FROZEN YET"), "{t}");
    assert!(
        t.contains("aws ecs tag-resource --region us-west-1 --resource-arn arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service --tags 'key=menotime:deploy-freeze"),
        "{t}"
    );
    assert_eq!(payload(&sent[0])["details"]["frozen"], false);
    assert_eq!(rig.tag(tags::DEPLOY_FREEZE), None);
    // The retry writes the freeze; its page has the same dedup_key (the documented
    // second page).
    rig.aws.heal("ecs:TagResource");
    let o = rig
        .handle(ev("ecs-deployment-failed", PROD), "req-1")
        .await
        .unwrap();
    assert!(o.froze && o.state_recorded);
    assert!(rig.tag(tags::DEPLOY_FREEZE).is_some());
    let sent = rig.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        payload(&sent[0])["dedup_key"],
        payload(&sent[1])["dedup_key"]
    );

    // Only the record failing: the confirmation writes the freeze, one page, success.
    let rig = Rig::new(PROD);
    rig.aws.fail("ecs:TagResource", 1);
    let o = rig
        .handle(ev("ecs-deployment-failed", PROD), "req-1")
        .await
        .unwrap();
    assert!(o.froze, "{}", o.reason);
    assert!(rig.tag(tags::DEPLOY_FREEZE).is_some());
    assert_eq!(rig.sent().len(), 1);

    // The describe of the image failing does not stop the page either.
    let rig = Rig::new(PROD);
    rig.aws.fail_always("ecs:DescribeTaskDefinition");
    let o = rig
        .handle(ev("ecs-deployment-failed", PROD), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged);
}

#[tokio::test]
async fn without_a_freeze_to_write_an_unrecorded_page_still_goes_out_and_succeeds() {
    for env in [Environment::Staging, Environment::Prod] {
        let rig = Rig::with(env, |c| c.freeze_on_failure = false);
        rig.aws.fail_always("ecs:TagResource");
        let o = rig
            .handle(ev("ecs-deployment-failed", env), "req-1")
            .await
            .unwrap();
        assert!(!o.state_recorded && !o.froze);
        assert_eq!(rig.sent().len(), 1);
    }
}

#[tokio::test]
async fn an_impairment_whose_marker_cannot_be_written_still_pages() {
    let rig = Rig::new(PROD);
    rig.aws.fail_always("ecs:TagResource");
    let o = rig
        .handle(ev("ecs-service-action-task-start-impaired", PROD), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged);
    assert!(!o.state_recorded);
    assert_eq!(rig.sent().len(), 1);
    // ECS repeats it: once the marker can be written, the repeats are duplicates.
    rig.aws.heal("ecs:TagResource");
    let mut again = ev("ecs-service-action-task-start-impaired", PROD);
    again["id"] = json!("repeat-1");
    again["detail"]["createdAt"] = json!("2025-06-02T18:03:38.725Z");
    let o = rig.handle(again.clone(), "req-2").await.unwrap();
    assert_eq!(
        o.decision,
        Decision::Paged,
        "the repeat pages again, same dedup_key"
    );
    again["id"] = json!("repeat-2");
    let o = rig.handle(again, "req-3").await.unwrap();
    assert_eq!(o.decision, Decision::Duplicate);
}

#[tokio::test]
async fn an_impairment_page_lost_to_sns_goes_out_with_the_next_repeat() {
    let rig = Rig::new(PROD);
    rig.aws.fail_always("sns:Publish");
    assert!(rig
        .handle(ev("ecs-service-action-task-start-impaired", PROD), "req-1")
        .await
        .is_err());
    rig.aws.heal("sns:Publish");
    let mut again = ev("ecs-service-action-task-start-impaired", PROD);
    again["id"] = json!("repeat");
    again["detail"]["createdAt"] = json!("2025-06-02T18:03:38.725Z");
    let o = rig.handle(again.clone(), "req-2").await.unwrap();
    assert_eq!(o.decision, Decision::Paged);
    assert!(o.resent);
    let o = rig.handle(again, "req-3").await.unwrap();
    assert_eq!(o.decision, Decision::Duplicate);
    assert_eq!(rig.sent().len(), 1);
}

#[tokio::test]
async fn a_resolve_publishes_a_page_that_never_went_out_first() {
    let rig = Rig::new(PROD);
    rig.aws.fail_always("sns:Publish");
    assert!(rig
        .handle(ev("ecs-deployment-failed", PROD), "req-1")
        .await
        .is_err());
    rig.aws.heal("sns:Publish");
    let mut done = ev("ecs-deployment-completed", PROD);
    done["detail"]["deploymentId"] = json!(ROLLBACK_TO);
    done["detail"]["updatedAt"] = json!("2025-06-02T18:05:00Z");
    let o = rig.handle(done, "req-2").await.unwrap();
    assert_eq!(o.decision, Decision::Resolved);
    assert_eq!(
        o.notifications,
        [
            "deploy.failed/trigger",
            "deploy.completed/resolve",
            "deploy.completed/notify"
        ]
    );
    let late = payload(&rig.sent()[0]);
    assert_eq!(late["details"]["delivered_late"], true);
    assert_eq!(
        late["dedup_key"],
        "menotime/prod/menotime-prod-service/deployment"
    );
    // The failure's own retry or redrive now finds it sent: nothing more.
    for request in ["req-1", "redrive-1"] {
        let o = rig
            .handle(ev("ecs-deployment-failed", PROD), request)
            .await
            .unwrap();
        assert!(
            matches!(o.decision, Decision::Duplicate | Decision::Late),
            "{:?}",
            o.decision
        );
    }
    assert_eq!(rig.sent().len(), 3);
}

#[tokio::test]
async fn outside_prod_a_failure_notifies_the_team_and_freezes_only_when_asked() {
    for env in [Environment::Dev, Environment::Staging] {
        let rig = Rig::new(env);
        let o = rig
            .handle(ev("ecs-deployment-failed", env), "req-1")
            .await
            .unwrap();
        assert_eq!(o.decision, Decision::Notified);
        assert!(!o.froze);
        let sent = rig.sent();
        assert!(!is_oncall(&sent[0]));
        assert_eq!(payload(&sent[0])["severity"], "warning");
        assert_eq!(payload(&sent[0])["action"], "notify");
        assert!(text(&sent[0]).contains("not frozen (FREEZE_ON_FAILURE=false)"));
        assert_eq!(rig.tag(tags::DEPLOY_FREEZE), None);
        // Duplicates are recognised outside prod too.
        let o = rig
            .handle(ev("ecs-deployment-failed", env), "req-2")
            .await
            .unwrap();
        assert_eq!(o.decision, Decision::Duplicate);
    }
    let rig = Rig::with(Environment::Staging, |c| c.freeze_on_failure = true);
    let o = rig
        .handle(ev("ecs-deployment-failed", Environment::Staging), "req-1")
        .await
        .unwrap();
    assert!(o.froze);
    assert!(rig.tag(tags::DEPLOY_FREEZE).is_some());
}

#[tokio::test]
async fn completion_resolves_the_page_once_and_deploys_stay_frozen() {
    let rig = Rig::new(PROD);
    rig.handle(ev("ecs-deployment-failed", PROD), "req-1")
        .await
        .unwrap();
    rig.take_sent();
    // The circuit breaker's rollback completes: the service is healthy again, so the
    // page resolves (docs/reference.md §4); deploys stay frozen until someone reviews.
    let mut done = ev("ecs-deployment-completed", PROD);
    done["detail"]["deploymentId"] = json!(ROLLBACK_TO);
    done["detail"]["updatedAt"] = json!("2025-06-02T18:05:00Z");
    let o = rig.handle(done.clone(), "req-2").await.unwrap();
    assert_eq!(o.decision, Decision::Resolved, "{}", o.reason);
    // One TagResource records the completed deployment's watch, one the resolution.
    assert_eq!(
        rig.calls(),
        [
            "ecs:DescribeServices",
            "ecs:TagResource",
            "ecs:TagResource",
            "sns:Publish",
            "sns:Publish",
            "ecs:TagResource"
        ]
    );
    // The rollback went back from the failed revision: it is watched without a way back.
    let watch = rig.tag(tags::DEPLOY_WATCH).unwrap();
    assert_eq!(
        watch,
        format!("deployment={ROLLBACK_TO} revision=menotime-backend-prod:47 from=menotime-backend-prod:48 completed=2025-06-02T18:05:00.000Z")
    );
    let sent = rig.take_sent();
    assert_eq!(sent.len(), 2);
    // The resolve goes first: it is what on-call waits for.
    let (resolve, info) = (payload(&sent[0]), payload(&sent[1]));
    assert!(is_oncall(&sent[0]));
    assert_eq!(resolve["event_type"], "deploy.completed");
    assert_eq!(resolve["action"], "resolve");
    assert_eq!(resolve["severity"], "info");
    assert_eq!(
        resolve["dedup_key"],
        "menotime/prod/menotime-prod-service/deployment"
    );
    assert_eq!(resolve["details"]["resolved_deployment"], DEPLOYMENT);
    assert_eq!(info["action"], "notify");
    assert!(!is_oncall(&sent[1]));
    assert!(
        text(&sent[1]).contains("still frozen"),
        "{}",
        text(&sent[1])
    );
    assert!(text(&sent[1]).contains("aws ecs untag-resource"));
    assert!(rig.tag(tags::DEPLOY_FREEZE).is_some(), "the freeze stays");
    assert!(
        !Marker::parse(&rig.tag(tags::DEPLOY_INCIDENT).unwrap())
            .unwrap()
            .open
    );
    // The completion delivered again: nothing, and never a second resolve.
    let o = rig.handle(done.clone(), "req-3").await.unwrap();
    assert_eq!(o.decision, Decision::Late);
    assert!(rig.take_sent().is_empty());
    // After review the freeze is lifted; the next deployment completes: the team
    // hears it, nobody is paged or resolved.
    rig.remove_tag(tags::DEPLOY_FREEZE);
    let mut next = done;
    next["id"] = json!("completion-of-the-next-deploy");
    next["detail"]["deploymentId"] = json!("ecs-svc/999");
    next["detail"]["updatedAt"] = json!("2025-06-02T19:00:00Z");
    let o = rig.handle(next, "req-4").await.unwrap();
    assert_eq!(o.decision, Decision::Notified);
    assert_eq!(rig.calls(), ["ecs:DescribeServices", "sns:Publish"]);
    let sent = rig.take_sent();
    assert_eq!(sent.len(), 1);
    assert!(!is_oncall(&sent[0]));
}

#[tokio::test]
async fn a_resolve_whose_publish_failed_is_delivered_once_by_any_later_delivery() {
    let rig = Rig::with(PROD, |c| c.freeze_on_failure = false);
    rig.handle(ev("ecs-deployment-failed", PROD), "req-1")
        .await
        .unwrap();
    rig.take_sent();
    let mut done = ev("ecs-deployment-completed", PROD);
    done["detail"]["updatedAt"] = json!("2025-06-02T19:00:00Z");
    rig.aws.fail_always("sns:Publish");
    assert!(rig.handle(done.clone(), "req-2").await.is_err());
    rig.aws.heal("sns:Publish");
    // A redrive (new request id) delivers the recorded resolve...
    let o = rig.handle(done.clone(), "redrive-2").await.unwrap();
    assert_eq!(o.decision, Decision::Resolved);
    assert!(o.resent);
    let actions: Vec<Value> = rig
        .sent()
        .iter()
        .map(|r| payload(r)["action"].clone())
        .collect();
    assert_eq!(actions, [json!("resolve"), json!("notify")]);
    // ...and the Lambda retry that comes after it finds it sent.
    let o = rig.handle(done, "req-2").await.unwrap();
    assert_eq!(o.decision, Decision::Late);
    assert_eq!(rig.sent().len(), 2);
}

#[tokio::test]
async fn in_progress_tells_the_team_unless_ecs_already_shows_the_end() {
    let rig = Rig::new(PROD);
    let mut e = ev("ecs-deployment-in-progress", PROD);
    e["detail"]["deploymentId"] = json!(ROLLBACK_TO);
    let o = rig.handle(e, "req-1").await.unwrap();
    assert_eq!(o.decision, Decision::Notified);
    assert_eq!(rig.calls(), ["ecs:DescribeServices", "sns:Publish"]);
    let p = payload(&rig.sent()[0]);
    assert_eq!(p["event_type"], "deploy.in_progress");
    assert_eq!(p["severity"], "info");
    assert_eq!(p["details"]["task_definition"], "menotime-backend-prod:47");
    // A late IN_PROGRESS for the deployment ECS shows FAILED (or COMPLETED): silent.
    let o = rig
        .handle(ev("ecs-deployment-in-progress", PROD), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Late);
    assert_eq!(rig.calls(), ["ecs:DescribeServices"]);
    // And a late rollback event for a deployment that completed does not page.
    rig.aws.world().service.deployments[1].rollout_state = Some("COMPLETED".into());
    let o = rig
        .handle(ev("ecs-deployment-in-progress-rollback", PROD), "req-3")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Late);
    assert_eq!(rig.sent().len(), 1);
}

#[tokio::test]
async fn an_impairment_pages_once_and_steady_states_never_spam() {
    let rig = Rig::new(PROD);
    let o = rig
        .handle(ev("ecs-service-action-task-start-impaired", PROD), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged);
    assert_eq!(
        rig.calls(),
        [
            "ecs:DescribeServices",
            "ecs:TagResource",
            "sns:Publish",
            "ecs:TagResource"
        ]
    );
    let p = payload(&rig.sent()[0]);
    assert_eq!(p["event_type"], "service.impaired");
    assert_eq!(p["action"], "trigger");
    assert_eq!(
        p["dedup_key"],
        "menotime/prod/menotime-prod-service/service"
    );
    assert!(text(&rig.sent()[0]).contains("--query 'services[0].events[:10]'"));
    // ECS repeats it while the service stays impaired.
    let mut again = ev("ecs-service-action-task-start-impaired", PROD);
    again["id"] = json!("repeat");
    again["detail"]["createdAt"] = json!("2025-06-02T18:03:38.725Z");
    assert_eq!(
        rig.handle(again, "req-2").await.unwrap().decision,
        Decision::Duplicate
    );
    // Steady state: resolved once; its repeats are quiet (one read each, no publish).
    let mut steady = ev("ecs-service-steady-state", PROD);
    steady["detail"]["createdAt"] = json!("2025-06-02T18:10:00Z");
    let o = rig.handle(steady.clone(), "req-3").await.unwrap();
    assert_eq!(o.decision, Decision::Resolved);
    assert_eq!(
        rig.calls(),
        [
            "ecs:DescribeServices",
            "ecs:TagResource",
            "sns:Publish",
            "ecs:TagResource"
        ]
    );
    let p = payload(&rig.sent()[1]);
    assert_eq!(p["event_type"], "service.recovered");
    assert_eq!(p["action"], "resolve");
    assert_eq!(
        p["dedup_key"],
        "menotime/prod/menotime-prod-service/service"
    );
    for (i, at) in ["18:20:00Z", "18:30:00Z", "18:40:00Z"].iter().enumerate() {
        let mut s = steady.clone();
        s["id"] = json!(format!("steady-{i}"));
        s["detail"]["createdAt"] = json!(format!("2025-06-02T{at}"));
        let o = rig.handle(s, &format!("req-s{i}")).await.unwrap();
        assert_eq!(o.decision, Decision::Ignored);
        assert_eq!(rig.calls(), ["ecs:DescribeServices"]);
    }
    assert_eq!(rig.sent().len(), 2);
    // With nothing ever open, a steady state says nothing.
    let fresh = Rig::new(PROD);
    let o = fresh
        .handle(ev("ecs-service-steady-state", PROD), "r")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Ignored);
    assert!(fresh.sent().is_empty());
}

#[tokio::test]
async fn outside_prod_impairments_notify_and_recoveries_stay_quiet() {
    let env = Environment::Staging;
    let rig = Rig::new(env);
    let o = rig
        .handle(
            ev("ecs-service-action-task-placement-failure", env),
            "req-1",
        )
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Notified);
    assert_eq!(payload(&rig.sent()[0])["severity"], "warning");
    assert!(text(&rig.sent()[0]).contains("RESOURCE:FARGATE"));
    let mut steady = ev("ecs-service-steady-state", env);
    steady["detail"]["createdAt"] = json!("2025-06-02T18:10:00Z");
    let o = rig.handle(steady, "req-2").await.unwrap();
    assert_eq!(o.decision, Decision::Ignored);
    assert_eq!(rig.sent().len(), 1, "no resolve for a page that never was");
}

#[tokio::test]
async fn an_oom_kill_warns_the_team_with_the_manuals_advice_and_other_stops_are_ignored() {
    let rig = Rig::new(PROD);
    let o = rig
        .handle(ev("ecs-task-stopped", PROD), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Notified);
    assert_eq!(rig.calls(), ["sns:Publish"]);
    let r = &rig.sent()[0];
    assert!(!is_oncall(r));
    let p = payload(r);
    assert_eq!(p["event_type"], "task.oom");
    assert_eq!(p["severity"], "warning");
    assert_eq!(p["details"]["memory"], "1024");
    assert_eq!(p["details"]["exit_code"], 137);
    let t = text(r);
    for needle in [
        "OutOfMemoryError: Container killed due to memory usage",
        "1024 MiB",
        "3 GB",
        "--filter-pattern OutOfMemory",
        "aws ecs describe-tasks --region us-west-1 --cluster menotime-prod-cluster --tasks c13b4cb40f1f4fe4a2971f76ae5a47ad",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
    // A task scaled in by a deployment, or exiting for another reason: nothing.
    let mut other = ev("ecs-task-stopped", PROD);
    other["detail"]["containers"][0]["reason"] = json!("Essential container exited");
    other["detail"]["stopCode"] = json!("ServiceSchedulerInitiated");
    let o = rig.handle(other, "req-2").await.unwrap();
    assert_eq!(o.decision, Decision::Ignored);
    assert!(rig.calls().is_empty());
}

#[tokio::test]
async fn foreign_or_broken_events_are_refused_and_cost_nothing() {
    let rig = Rig::new(PROD);
    let mut foreign = ev("ecs-deployment-failed", PROD);
    foreign["account"] = json!("999999999999");
    let mut other_service = ev("ecs-deployment-failed", PROD);
    other_service["resources"] =
        json!(["arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/billing"]);
    let mut other_region = ev("ecs-service-steady-state", PROD);
    other_region["region"] = json!("us-east-1");
    for e in [
        foreign,
        other_service,
        other_region,
        reference("ecr-image-scan-complete"),
        json!({"action": "scale-down"}),
        json!("SERVICE_DEPLOYMENT_FAILED"),
    ] {
        let err = rig.handle(e, "req").await.unwrap_err();
        assert!(matches!(err, Error::Rejected(_)), "{err}");
        assert!(rig.calls().is_empty());
    }
    assert!(rig.sent().is_empty());
}

#[tokio::test]
async fn a_dry_run_never_pages_and_records_nothing() {
    let rig = Rig::with(PROD, |c| c.common.dry_run = true);
    let o = rig
        .handle(ev("ecs-deployment-failed", PROD), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Notified, "a dry run never pages");
    assert!(o.dry_run && !o.froze);
    assert!(!rig.calls().contains(&"ecs:TagResource"));
    assert!(rig.aws.world().tags.is_empty(), "no marker, no freeze");
    let sent = rig.sent();
    assert_eq!(sent.len(), 1);
    assert!(!is_oncall(&sent[0]), "the team's topic, not on-call's");
    assert!(
        sent[0].subject.starts_with("[PROD] dry run: "),
        "{}",
        sent[0].subject
    );
    let p = payload(&sent[0]);
    assert_eq!(p["action"], "notify");
    assert_eq!(p["details"]["dry_run"], true);
    assert_eq!(p["details"]["would_page"]["action"], "trigger");
    let t = text(&sent[0]);
    assert!(t.contains("dry run: would have frozen deploys"), "{t}");
    assert!(
        t.contains("Nothing was recorded and nothing was frozen"),
        "{t}"
    );
    // A resolve is not sent to on-call either.
    let mut steady = ev("ecs-service-steady-state", PROD);
    steady["detail"]["createdAt"] = json!("2025-06-02T18:10:00Z");
    rig.handle(ev("ecs-service-action-task-start-impaired", PROD), "req-2")
        .await
        .unwrap();
    assert!(rig.sent().iter().all(|r| !is_oncall(r)));
}

/// Every eventName the rules deliver maps to its documented event type, topic and action.
#[tokio::test]
async fn every_event_name_maps_to_its_notification() {
    /// (event type, severity, action) of the one message sent, if any.
    type Sent = Option<(&'static str, &'static str, &'static str)>;
    let cases: &[(&str, &str, Sent)] = &[
        (
            "ecs-deployment-failed",
            "SERVICE_DEPLOYMENT_FAILED",
            Some(("deploy.failed", "critical", "trigger")),
        ),
        (
            "ecs-deployment-in-progress-rollback",
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            Some(("deploy.rollback", "critical", "trigger")),
        ),
        (
            "ecs-deployment-in-progress",
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            Some(("deploy.in_progress", "info", "notify")),
        ),
        (
            "ecs-deployment-in-progress-with-clusterArn",
            "SERVICE_DEPLOYMENT_IN_PROGRESS",
            Some(("deploy.in_progress", "info", "notify")),
        ),
        (
            "ecs-deployment-completed",
            "SERVICE_DEPLOYMENT_COMPLETED",
            Some(("deploy.completed", "info", "notify")),
        ),
        (
            "ecs-service-action-task-start-impaired",
            "SERVICE_TASK_START_IMPAIRED",
            Some(("service.impaired", "critical", "trigger")),
        ),
        (
            "ecs-service-action-task-placement-failure",
            "SERVICE_TASK_PLACEMENT_FAILURE",
            Some(("service.impaired", "critical", "trigger")),
        ),
        (
            "ecs-service-action-discovery-instance-unhealthy",
            "SERVICE_DISCOVERY_INSTANCE_UNHEALTHY",
            Some(("service.impaired", "critical", "trigger")),
        ),
        ("ecs-service-steady-state", "SERVICE_STEADY_STATE", None),
        (
            "ecs-task-stopped",
            "task STOPPED",
            Some(("task.oom", "warning", "notify")),
        ),
    ];
    for (file, name, expect) in cases {
        let rig = Rig::new(PROD);
        // The plain IN_PROGRESS events are about a deployment still rolling out.
        if file.starts_with("ecs-deployment-in-progress") && !file.ends_with("rollback") {
            rig.aws.world().service.deployments[1].rollout_state = Some("IN_PROGRESS".into());
        }
        let o = rig.handle(ev(file, PROD), "req").await.unwrap();
        assert_eq!(&o.event_name, name, "{file}");
        let sent = rig.sent();
        match expect {
            None => assert!(sent.is_empty(), "{file}"),
            Some((event_type, severity, action)) => {
                let p = payload(&sent[0]);
                assert_eq!(p["event_type"], *event_type, "{file}");
                assert_eq!(p["severity"], *severity, "{file}");
                assert_eq!(p["action"], *action, "{file}");
                assert_eq!(p["schema"], "menotime.ops/v1");
                assert_eq!(
                    sent[0].attributes[2],
                    ("event_type", event_type.to_string())
                );
                assert!(
                    sent[0].subject.starts_with("[PROD] "),
                    "{}",
                    sent[0].subject
                );
                assert!(sent[0].subject.len() <= 99);
            }
        }
    }
}

/// When ECS no longer shows the older deployment, the page still names the way back:
/// scan-gate recorded on the failed revision which revision it replaced.
#[tokio::test]
async fn the_way_back_comes_from_the_failed_revision_when_ecs_shows_nothing_else() {
    let rig = Rig::new(PROD);
    {
        let mut w = rig.aws.world();
        w.service.task_definition = td(48);
        w.service.deployments = vec![DeploymentState {
            id: DEPLOYMENT.into(),
            status: "PRIMARY".into(),
            rollout_state: Some("FAILED".into()),
            task_definition: td(48),
            ..Default::default()
        }];
    }
    let page = rig
        .handle(ev("ecs-deployment-failed", PROD), "req-1")
        .await
        .unwrap();
    assert_eq!(page.decision, Decision::Paged);
    let t = text(&rig.sent()[0]);
    assert!(t.contains("aws ecs list-task-definitions"), "{t}");

    let rig2 = Rig::new(PROD);
    {
        let mut w = rig2.aws.world();
        w.service.task_definition = td(48);
        w.service.deployments.retain(|d| d.id == DEPLOYMENT);
        w.service.deployments[0].status = "PRIMARY".into();
        w.revisions
            .iter_mut()
            .find(|r| r.facts.arn == td(48))
            .unwrap()
            .facts
            .tags
            .insert(tags::REPLACES.into(), "menotime-backend-prod:47".into());
    }
    rig2.handle(ev("ecs-deployment-failed", PROD), "req-1")
        .await
        .unwrap();
    let t = text(&rig2.sent()[0]);
    assert!(
        t.contains("--task-definition menotime-backend-prod:47"),
        "{t}"
    );
}
