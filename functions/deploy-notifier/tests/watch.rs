//! deploy-notifier's post-deployment watch over fakes: what a completed deployment
//! records, what each alarm state change does at the edges of the watch window, the
//! automatic rollback and when it must not happen, and the duplicates and
//! out-of-order deliveries that must never page twice.
#![cfg(test)]

use serde_json::{json, Value};

use deploy_notifier::{Decision, DeployNotifier, Outcome};
use menotime_shared::config::{Environment, NotifierConfig, WatchConfig};
use menotime_shared::domain::service::DeploymentState;
use menotime_shared::notify::Rendered;
use menotime_shared::testing::{common, repository_uri, FakeAws, FakeRevision};
use menotime_shared::{tags, Error, Retry};

const PROD: Environment = Environment::Prod;
/// The deployment of v1.2.4 (revision 49), which replaced v1.2.3 (revision 48).
const DEPLOYMENT: &str = "ecs-svc/4231880795355584839";
/// Its completion: the watch runs until 09:30.
const COMPLETED: &str = "2026-11-26T09:00:00Z";

fn td(n: u32) -> String {
    menotime_shared::testing::td_arn(PROD, n)
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
        let v124 = FakeRevision::new(
            PROD,
            49,
            &format!("{}@sha256:{}", repository_uri(), "ab".repeat(32)),
            &[
                (tags::IMAGE_TAG, "v1.2.4"),
                (tags::REPLACES, "menotime-backend-prod:48"),
            ],
        );
        let aws = FakeAws::new(env, v124);
        aws.add_revision(FakeRevision::new(
            PROD,
            48,
            &format!("{}:v1.2.3", repository_uri()),
            &[],
        ));
        {
            let mut w = aws.world();
            w.service.deployments = vec![DeploymentState {
                id: DEPLOYMENT.into(),
                status: "PRIMARY".into(),
                rollout_state: Some("COMPLETED".into()),
                task_definition: td(49),
                ..Default::default()
            }];
            w.next_deployment = "ecs-svc/rollback".into();
        }
        let mut cfg = NotifierConfig {
            common: common(env),
            freeze_on_failure: env == PROD,
            container: Some("menotime-backend".into()),
            watch: WatchConfig::defaults(env),
        };
        tweak(&mut cfg);
        Rig {
            notifier: DeployNotifier::new(cfg, aws.clone(), aws.clone()),
            aws,
        }
    }

    /// A rig whose deployment completed at 09:00 (the watch recorded).
    async fn watching(env: Environment, tweak: impl FnOnce(&mut NotifierConfig)) -> Rig {
        let rig = Rig::with(env, tweak);
        let o = rig
            .handle(completed(env, DEPLOYMENT, COMPLETED), "req-completed")
            .await
            .unwrap();
        assert!(o.reason.contains("watching it until"), "{}", o.reason);
        rig.aws.sent();
        rig
    }

    async fn handle(&self, event: Value, request: &str) -> Result<Outcome, Error> {
        self.aws.calls();
        self.notifier.handle(event, request).await
    }

    fn calls(&self) -> Vec<&'static str> {
        self.aws.world().calls.clone()
    }

    fn take_sent(&self) -> Vec<Rendered> {
        self.aws.sent()
    }

    fn tag(&self, key: &str) -> Option<String> {
        self.aws.tag(key)
    }
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../shared/fixtures/reference/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn completed(env: Environment, deployment: &str, at: &str) -> Value {
    let text = fixture("ecs-deployment-completed")
        .to_string()
        .replace("menotime-prod-", &format!("menotime-{env}-"));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["id"] = json!(format!("completed-{deployment}"));
    v["time"] = json!(at);
    v["detail"]["deploymentId"] = json!(deployment);
    v["detail"]["updatedAt"] = json!(at);
    v
}

/// `<prefix><suffix>` went to `state` at `hh:mm` on 2026-11-26 (CloudWatch's own
/// timestamp format), delivered as event `id`.
fn alarm(env: Environment, suffix: &str, state: &str, hhmm: &str, id: &str) -> Value {
    let name = format!("menotime-{env}-{suffix}");
    let mut v = fixture("cloudwatch-alarm-state-change");
    v["id"] = json!(id);
    v["time"] = json!(format!("2026-11-26T{hhmm}:05Z"));
    v["resources"] = json!([format!(
        "arn:aws:cloudwatch:us-west-1:123456789012:alarm:{name}"
    )]);
    v["detail"]["alarmName"] = json!(name);
    v["detail"]["state"]["value"] = json!(state);
    v["detail"]["state"]["timestamp"] = json!(format!("2026-11-26T{hhmm}:00.000+0000"));
    v["detail"]["previousState"]["value"] = json!(if state == "OK" { "ALARM" } else { "OK" });
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

/// A page: read, record it pending, publish, confirm it sent.
const PAGE: [&str; 5] = [
    "ecs:DescribeServices",
    "ecs:DescribeTaskDefinition",
    "ecs:TagResource",
    "sns:Publish",
    "ecs:TagResource",
];

/// A resolve: read, record it pending, publish, confirm it sent.
const RESOLVE: [&str; 4] = [
    "ecs:DescribeServices",
    "ecs:TagResource",
    "sns:Publish",
    "ecs:TagResource",
];

#[tokio::test]
async fn a_completed_deployment_is_watched_with_its_way_back() {
    let rig = Rig::new(PROD);
    let o = rig
        .handle(completed(PROD, DEPLOYMENT, COMPLETED), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Notified);
    assert_eq!(
        rig.calls(),
        ["ecs:DescribeServices", "ecs:TagResource", "sns:Publish"]
    );
    // ECS no longer lists the replaced deployment: scan-gate's menotime:replaces is
    // read at alarm time; the watch holds what ECS showed.
    assert_eq!(
        rig.tag(tags::DEPLOY_WATCH).unwrap(),
        format!("deployment={DEPLOYMENT} revision=menotime-backend-prod:49 completed=2026-11-26T09:00:00.000Z")
    );
    let sent = rig.take_sent();
    let t = text(&sent[0]);
    assert!(
        t.contains("alarms until 2026-11-26T09:30:00Z count as this deployment's regression"),
        "{t}"
    );
    assert_eq!(
        payload(&sent[0])["details"]["watch_until"],
        "2026-11-26T09:30:00.000Z"
    );
    // The completion delivered again: no second write.
    let o = rig
        .handle(completed(PROD, DEPLOYMENT, COMPLETED), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Notified);
    assert_eq!(rig.calls(), ["ecs:DescribeServices", "sns:Publish"]);
    // The next deployment records the one before as its way back.
    {
        let mut w = rig.aws.world();
        w.service.task_definition = td(48);
        w.service.deployments[0].id = "ecs-svc/next".into();
        w.service.deployments[0].task_definition = td(48);
    }
    rig.handle(
        completed(PROD, "ecs-svc/next", "2026-11-26T10:00:00Z"),
        "req-3",
    )
    .await
    .unwrap();
    assert_eq!(
        rig.tag(tags::DEPLOY_WATCH).unwrap(),
        "deployment=ecs-svc/next revision=menotime-backend-prod:48 from=menotime-backend-prod:49 completed=2026-11-26T10:00:00.000Z",
        "48 after 49 is a rollback: no way back from it"
    );
}

#[tokio::test]
async fn an_alarm_one_minute_inside_the_window_is_the_deployments_regression() {
    let rig = Rig::watching(PROD, |_| {}).await;
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:29", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    assert_eq!(o.deployment_id.as_deref(), Some(DEPLOYMENT));
    assert_eq!(rig.calls(), PAGE);
    let sent = rig.take_sent();
    assert_eq!(sent.len(), 1);
    let page = &sent[0];
    assert!(is_oncall(page));
    assert_eq!(
        page.subject,
        "[PROD] Regression after deploying menotime-backend-prod:49: menotime-prod-5xx in ALARM"
    );
    let p = payload(page);
    assert_eq!(p["event_type"], "deploy.regression");
    assert_eq!(p["severity"], "critical");
    assert_eq!(p["action"], "trigger");
    assert_eq!(
        p["dedup_key"],
        format!("menotime/prod/menotime-prod-service/regression/{DEPLOYMENT}")
    );
    assert_eq!(p["occurred_at"], "2026-11-26T09:29:00.000Z");
    assert_eq!(p["details"]["deployment_id"], DEPLOYMENT);
    assert_eq!(
        p["details"]["previous_task_definition"],
        "menotime-backend-prod:48"
    );
    assert_eq!(p["details"]["image_tag"], "v1.2.4");
    assert_eq!(p["details"]["alarm_name"], "menotime-prod-5xx");
    assert_eq!(p["details"]["completed_at"], "2026-11-26T09:00:00.000Z");
    assert_eq!(p["details"]["rolled_back_to"], Value::Null);
    let t = text(page);
    for needle in [
        "menotime-prod-5xx (the load balancer's target 5xx rate)",
        "Threshold Crossed: 1 datapoint was greater than the threshold",
        "completed at 2026-11-26T09:00:00Z, 29 min before the alarm",
        "menotime/backend@sha256:abab",
        "Previous revision:",
        "off (AUTO_ROLLBACK_ON_REGRESSION=false)",
        "aws ecs tag-resource --region us-west-1 --resource-arn arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service --tags 'key=menotime:deploy-freeze",
        "aws ecs update-service --region us-west-1 --cluster menotime-prod-cluster --service menotime-prod-service --task-definition menotime-backend-prod:48 --force-new-deployment",
        "aws cloudwatch describe-alarm-history --region us-west-1 --alarm-name menotime-prod-5xx",
        "aws logs tail /aws/ecs/menotime-prod",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
    assert!(
        rig.tag(tags::DEPLOY_FREEZE).is_none(),
        "a page without rollback freezes nothing"
    );
    assert!(rig
        .tag(tags::ALARM_INCIDENT)
        .unwrap()
        .contains("state=open"));
}

#[tokio::test]
async fn an_alarm_one_minute_outside_the_window_is_a_service_alarm() {
    for (hhmm, why) in [
        ("09:31", "ended at 2026-11-26T09:30:00Z"),
        ("08:59", "predates the completion"),
    ] {
        let rig = Rig::watching(PROD, |c| c.watch.auto_rollback = true).await;
        let o = rig
            .handle(alarm(PROD, "latency", "ALARM", hhmm, "a-1"), "req-1")
            .await
            .unwrap();
        assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
        assert_eq!(o.deployment_id, None);
        let sent = rig.take_sent();
        let p = payload(&sent[0]);
        assert_eq!(p["event_type"], "service.alarm", "{hhmm}");
        assert_eq!(p["action"], "trigger");
        assert_eq!(p["dedup_key"], "menotime/prod/menotime-prod-service/alarm");
        assert!(
            p["details"]["not_a_regression"]
                .as_str()
                .unwrap()
                .contains(why),
            "{p}"
        );
        assert_eq!(
            sent[0].subject,
            "[PROD] Alarm: menotime-prod-latency in ALARM on menotime-prod-service"
        );
        // Never rolled back, whatever AUTO_ROLLBACK_ON_REGRESSION says.
        assert!(!rig.calls().contains(&"ecs:UpdateService"));
        assert!(rig.tag(tags::DEPLOY_FREEZE).is_none());
        // Its OK resolves it, with the same key.
        let ok = rig
            .handle(alarm(PROD, "latency", "OK", "09:45", "a-2"), "req-2")
            .await
            .unwrap();
        assert_eq!(ok.decision, Decision::Resolved);
        assert_eq!(rig.calls(), RESOLVE);
        let r = payload(&rig.take_sent()[0]);
        assert_eq!(r["event_type"], "service.alarm");
        assert_eq!(r["action"], "resolve");
        assert_eq!(r["dedup_key"], p["dedup_key"]);
    }
}

#[tokio::test]
async fn without_a_watch_every_alarm_is_a_service_alarm() {
    let rig = Rig::new(PROD);
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:05", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged);
    let p = payload(&rig.take_sent()[0]);
    assert_eq!(p["event_type"], "service.alarm");
    assert_eq!(
        p["details"]["not_a_regression"],
        "no completed deployment is being watched"
    );
}

#[tokio::test]
async fn an_ok_without_an_alarm_sends_nothing() {
    let rig = Rig::watching(PROD, |_| {}).await;
    // After INSUFFICIENT_DATA (a new alarm, data resuming): nothing raised, nothing kept.
    let mut fresh = alarm(PROD, "5xx", "OK", "09:05", "ok-1");
    fresh["detail"]["previousState"]["value"] = json!("INSUFFICIENT_DATA");
    let o = rig.handle(fresh, "req-1").await.unwrap();
    assert_eq!(o.decision, Decision::Ignored, "{}", o.reason);
    assert_eq!(rig.calls(), ["ecs:DescribeServices"]);
    // After an ALARM this function never saw (delivered late, or lost): nothing sent,
    // but recorded, so that ALARM pages nobody when it comes.
    let o = rig
        .handle(alarm(PROD, "5xx", "OK", "09:10", "ok-2"), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Ignored, "{}", o.reason);
    assert_eq!(rig.calls(), ["ecs:DescribeServices", "ecs:TagResource"]);
    let late = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "late-alarm"), "req-3")
        .await
        .unwrap();
    assert_eq!(late.decision, Decision::Late, "{}", late.reason);
    assert!(rig.take_sent().is_empty());
    // INSUFFICIENT_DATA says nothing either.
    let o = rig
        .handle(
            alarm(PROD, "5xx", "INSUFFICIENT_DATA", "09:20", "i-1"),
            "req-4",
        )
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Ignored);
    assert!(rig.take_sent().is_empty());
}

#[tokio::test]
async fn an_alarm_for_a_deployment_that_was_then_superseded_is_a_service_alarm() {
    let rig = Rig::watching(PROD, |c| c.watch.auto_rollback = true).await;
    // A newer deployment is rolling out when the alarm of 09:03 comes in.
    {
        let mut w = rig.aws.world();
        w.service.deployments = vec![
            DeploymentState {
                id: "ecs-svc/newer".into(),
                status: "PRIMARY".into(),
                rollout_state: Some("IN_PROGRESS".into()),
                task_definition: td(50),
                ..Default::default()
            },
            DeploymentState {
                id: DEPLOYMENT.into(),
                status: "ACTIVE".into(),
                rollout_state: Some("COMPLETED".into()),
                task_definition: td(49),
                ..Default::default()
            },
        ];
        w.service.task_definition = td(50);
        w.revisions
            .push(FakeRevision::new(PROD, 50, "x:v1.2.5", &[]));
    }
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    let p = payload(&rig.take_sent()[0]);
    assert_eq!(p["event_type"], "service.alarm");
    assert_eq!(
        p["details"]["not_a_regression"],
        format!("deployment {DEPLOYMENT} has since been superseded by deployment ecs-svc/newer")
    );
    assert!(
        !rig.calls().contains(&"ecs:UpdateService"),
        "rolling back would undo the newer deployment too"
    );
}

#[tokio::test]
async fn the_ok_resolves_the_regression_once_and_late_copies_change_nothing() {
    let rig = Rig::watching(PROD, |_| {}).await;
    let fired = alarm(PROD, "5xx", "ALARM", "09:03", "a-1");
    assert_eq!(
        rig.handle(fired.clone(), "req-1").await.unwrap().decision,
        Decision::Paged
    );
    let page = payload(&rig.take_sent()[0]);
    // EventBridge delivers the ALARM again: one read, nothing sent.
    let o = rig.handle(fired.clone(), "req-2").await.unwrap();
    assert_eq!(o.decision, Decision::Duplicate);
    assert_eq!(rig.calls(), ["ecs:DescribeServices"]);
    // The OK resolves it.
    let ok = alarm(PROD, "5xx", "OK", "09:12", "ok-1");
    let o = rig.handle(ok.clone(), "req-3").await.unwrap();
    assert_eq!(o.decision, Decision::Resolved, "{}", o.reason);
    let sent = rig.take_sent();
    assert_eq!(sent.len(), 1);
    let r = payload(&sent[0]);
    assert!(is_oncall(&sent[0]));
    assert_eq!(r["event_type"], "deploy.regression");
    assert_eq!(r["action"], "resolve");
    assert_eq!(r["severity"], "info");
    assert_eq!(r["dedup_key"], page["dedup_key"]);
    assert_eq!(
        sent[0].subject,
        "[PROD] Resolved: regression, menotime-prod-5xx is OK again"
    );
    // The OK again, and the ALARM delivered after its OK: nothing.
    assert_eq!(
        rig.handle(ok, "req-4").await.unwrap().decision,
        Decision::Duplicate
    );
    assert_eq!(
        rig.handle(fired, "req-5").await.unwrap().decision,
        Decision::Late
    );
    assert!(rig.take_sent().is_empty());
}

#[tokio::test]
async fn two_alarms_make_one_regression_that_resolves_when_both_are_ok() {
    let rig = Rig::watching(PROD, |_| {}).await;
    rig.handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    let o = rig
        .handle(alarm(PROD, "latency", "ALARM", "09:04", "a-2"), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged);
    let sent = rig.take_sent();
    let (first, second) = (payload(&sent[0]), payload(&sent[1]));
    assert_eq!(second["dedup_key"], first["dedup_key"], "one incident");
    assert_eq!(
        second["details"]["alarms_in_alarm"],
        json!(["5xx", "latency"])
    );
    assert!(sent[1]
        .subject
        .contains("menotime-prod-latency also in ALARM"));
    // 5xx recovers first: the page stays open, nothing sent.
    let o = rig
        .handle(alarm(PROD, "5xx", "OK", "09:08", "ok-1"), "req-3")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Ignored, "{}", o.reason);
    assert!(o.reason.contains("latency still in ALARM"), "{}", o.reason);
    assert!(rig.take_sent().is_empty());
    let o = rig
        .handle(alarm(PROD, "latency", "OK", "09:09", "ok-2"), "req-4")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Resolved);
    let r = payload(&rig.take_sent()[0]);
    assert_eq!(r["details"]["resolved_alarms"], json!(["5xx", "latency"]));
}

#[tokio::test]
async fn a_page_recorded_and_never_published_goes_out_with_the_next_delivery_once() {
    // The Lambda retry (same request id), a redrive (a new one), or a duplicate
    // delivery of the same ALARM: whichever comes first pages, once.
    for request in ["req-1", "redrive-1"] {
        let rig = Rig::watching(PROD, |_| {}).await;
        let fired = alarm(PROD, "5xx", "ALARM", "09:03", "a-1");
        rig.aws.fail_always("sns:Publish");
        let err = rig.handle(fired.clone(), "req-1").await.unwrap_err();
        assert_eq!(err.retry(), Retry::Later);
        rig.aws.heal("sns:Publish");
        assert!(
            rig.tag(tags::ALARM_INCIDENT)
                .unwrap()
                .contains("pending=5xx@A"),
            "recorded pending"
        );
        let o = rig.handle(fired.clone(), request).await.unwrap();
        assert_eq!(o.decision, Decision::Paged, "{request}: {}", o.reason);
        assert!(o.resent);
        assert_eq!(
            rig.calls(),
            [
                "ecs:DescribeServices",
                "ecs:DescribeTaskDefinition",
                "sns:Publish",
                "ecs:TagResource"
            ],
            "no second record, one confirmation"
        );
        assert_eq!(rig.take_sent().len(), 1);
        assert!(!rig.tag(tags::ALARM_INCIDENT).unwrap().contains("pending="));
        // Confirmed: every later delivery is a duplicate, the retry included.
        for again in ["req-1", "redrive-2"] {
            let o = rig.handle(fired.clone(), again).await.unwrap();
            assert_eq!(o.decision, Decision::Duplicate, "{again}");
        }
        assert!(rig.take_sent().is_empty());
    }
}

#[tokio::test]
async fn a_resolve_publishes_the_page_an_earlier_attempt_left_pending_first() {
    let rig = Rig::watching(PROD, |_| {}).await;
    rig.aws.fail_always("sns:Publish");
    rig.handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap_err();
    rig.aws.heal("sns:Publish");
    // The alarm recovers before anything redelivered its ALARM.
    let o = rig
        .handle(alarm(PROD, "5xx", "OK", "09:10", "ok-1"), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Resolved, "{}", o.reason);
    let sent = rig.take_sent();
    assert_eq!(sent.len(), 2, "the page, then its resolve");
    let (page, resolve) = (payload(&sent[0]), payload(&sent[1]));
    assert_eq!(page["action"], "trigger");
    assert_eq!(page["event_type"], "deploy.regression");
    assert_eq!(resolve["action"], "resolve");
    assert_eq!(page["dedup_key"], resolve["dedup_key"]);
    // The redrive of the ALARM now is late: never a page after its resolve.
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "redrive")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Late, "{}", o.reason);
    assert!(rig.take_sent().is_empty());
}

#[tokio::test]
async fn auto_rollback_freezes_then_rolls_back_once_and_says_so() {
    let rig = Rig::watching(PROD, |c| c.watch.auto_rollback = true).await;
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::RolledBack, "{}", o.reason);
    assert_eq!(
        o.rolled_back_to.as_deref(),
        Some("menotime-backend-prod:48")
    );
    assert!(o.froze);
    // Freeze and incident in one call, then the rollback, then the page.
    assert_eq!(
        rig.calls(),
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:TagResource",
            "ecs:UpdateService",
            "sns:Publish",
            "ecs:TagResource"
        ]
    );
    assert_eq!(
        rig.aws.world().last_update,
        Some((td(48), true)),
        "to the previous revision, with a new deployment"
    );
    assert_eq!(rig.aws.world().service.task_definition, td(48));
    let freeze = rig.tag(tags::DEPLOY_FREEZE).unwrap();
    assert_eq!(
        freeze,
        format!("deployment {DEPLOYMENT} regressed at 2026-11-26T09:03:00Z: menotime-prod-5xx in ALARM - automatic rollback to menotime-backend-prod:48")
    );
    let sent = rig.take_sent();
    let p = payload(&sent[0]);
    assert_eq!(p["event_type"], "deploy.rolled_back");
    assert_eq!(p["severity"], "critical");
    assert_eq!(p["action"], "trigger");
    assert_eq!(p["details"]["rolled_back_to"], "menotime-backend-prod:48");
    assert_eq!(p["details"]["rollback_deployment_id"], "ecs-svc/rollback");
    assert_eq!(p["details"]["frozen"], true);
    assert_eq!(
        sent[0].subject,
        "[PROD] Rolled back to menotime-backend-prod:48: menotime-prod-5xx in ALARM after the deployment"
    );
    let t = text(&sent[0]);
    assert!(t.contains("DONE: deploys frozen, then the service was updated to menotime-backend-prod:48 with a new deployment (ecs-svc/rollback)"), "{t}");
    assert!(t.contains("aws ecs untag-resource"), "{t}");
    // Another alarm of the same incident joins it: no second rollback.
    let o = rig
        .handle(alarm(PROD, "latency", "ALARM", "09:04", "a-2"), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    assert!(!rig.calls().contains(&"ecs:UpdateService"));
    let joined = &rig.take_sent()[0];
    assert_eq!(payload(joined)["event_type"], "deploy.regression");
    assert!(
        text(joined).contains("already done when the incident opened: the service was rolled back to menotime-backend-prod:48"),
        "{}",
        text(joined)
    );
    // Both recover: resolved, saying it was rolled back and deploys stay frozen.
    rig.handle(alarm(PROD, "5xx", "OK", "09:10", "ok-1"), "req-3")
        .await
        .unwrap();
    let o = rig
        .handle(alarm(PROD, "latency", "OK", "09:11", "ok-2"), "req-4")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Resolved);
    let r = &rig.take_sent()[0];
    assert_eq!(payload(r)["details"]["rolled_back"], true);
    assert!(text(r).contains("still frozen"), "{}", text(r));
    // A new ALARM within the 30 minutes: the rollback superseded the deployment, so
    // it is a service alarm and nothing is rolled back again.
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:20", "a-3"), "req-5")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged);
    assert!(!rig.calls().contains(&"ecs:UpdateService"));
    assert_eq!(payload(&rig.take_sent()[0])["event_type"], "service.alarm");
}

#[tokio::test]
async fn a_retry_after_the_rollback_pages_without_rolling_back_again() {
    for request in ["req-1", "redrive-1"] {
        let rig = Rig::watching(PROD, |c| c.watch.auto_rollback = true).await;
        let fired = alarm(PROD, "5xx", "ALARM", "09:03", "a-1");
        rig.aws.fail_always("sns:Publish");
        assert!(rig.handle(fired.clone(), "req-1").await.is_err());
        rig.aws.heal("sns:Publish");
        assert_eq!(
            rig.aws.world().service.task_definition,
            td(48),
            "rolled back"
        );
        let o = rig.handle(fired.clone(), request).await.unwrap();
        assert_eq!(o.decision, Decision::RolledBack, "{}", o.reason);
        assert!(o.resent);
        assert_eq!(
            rig.calls(),
            [
                "ecs:DescribeServices",
                "ecs:DescribeTaskDefinition",
                "sns:Publish",
                "ecs:TagResource"
            ],
            "no second record, no second UpdateService"
        );
        assert_eq!(
            payload(&rig.take_sent()[0])["event_type"],
            "deploy.rolled_back"
        );
        // Confirmed: nothing more, ever.
        let o = rig.handle(fired, "req-9").await.unwrap();
        assert_eq!(o.decision, Decision::Duplicate);
        assert!(!rig.calls().contains(&"ecs:UpdateService"));
        assert!(rig.take_sent().is_empty());
    }
}

#[tokio::test]
async fn a_retry_finishes_a_rollback_its_first_attempt_did_not_get_to() {
    let rig = Rig::watching(PROD, |c| c.watch.auto_rollback = true).await;
    let fired = alarm(PROD, "5xx", "ALARM", "09:03", "a-1");
    // The sandbox dies right after the incident was recorded.
    rig.aws.fail("ecs:UpdateService", 1);
    rig.aws.fail_always("sns:Publish");
    let o = rig.handle(fired.clone(), "req-1").await;
    assert!(o.is_err());
    rig.aws.heal("sns:Publish");
    // (the failed UpdateService was reported as a failed rollback in a page that
    // could not be published)
    assert_eq!(
        rig.aws.world().service.task_definition,
        td(49),
        "not rolled back yet"
    );
    let o = rig.handle(fired, "req-1").await.unwrap();
    assert_eq!(o.decision, Decision::RolledBack, "{}", o.reason);
    assert_eq!(rig.aws.world().service.task_definition, td(48));
    assert_eq!(
        rig.calls(),
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:UpdateService",
            "sns:Publish",
            "ecs:TagResource"
        ]
    );
}

#[tokio::test]
async fn auto_rollback_never_in_a_dry_run() {
    let rig = Rig::with(PROD, |c| {
        c.watch.auto_rollback = true;
        c.common.dry_run = true;
    });
    // The watch of a real run, then the stack switched to a dry run.
    rig.aws.set_tag(
        tags::DEPLOY_WATCH,
        &format!("deployment={DEPLOYMENT} revision=menotime-backend-prod:49 previous=menotime-backend-prod:48 completed=2026-11-26T09:00:00.000Z"),
    );
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    // A dry run never pages: the would-be page goes to the team, marked.
    assert_eq!(o.decision, Decision::Notified, "{}", o.reason);
    assert!(o.dry_run && !o.froze);
    assert_eq!(
        rig.calls(),
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "sns:Publish"
        ]
    );
    assert_eq!(rig.aws.world().service.task_definition, td(49));
    assert!(rig.tag(tags::DEPLOY_FREEZE).is_none());
    let sent = rig.take_sent();
    assert!(!is_oncall(&sent[0]));
    let p = payload(&sent[0]);
    assert_eq!(p["action"], "notify");
    assert_eq!(p["details"]["would_page"]["action"], "trigger");
    let t = text(&sent[0]);
    assert!(
        t.contains(
            "dry run: would have frozen deploys and rolled back to menotime-backend-prod:48"
        ),
        "{t}"
    );
}

#[tokio::test]
async fn auto_rollback_never_without_a_previous_revision_it_pages_instead() {
    let rig = Rig::watching(PROD, |c| c.watch.auto_rollback = true).await;
    // Neither the watch nor the revision (registered by hand) names a way back.
    rig.aws.world().revisions[0]
        .facts
        .tags
        .remove(tags::REPLACES);
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    assert!(!rig.calls().contains(&"ecs:UpdateService"));
    assert!(rig.tag(tags::DEPLOY_FREEZE).is_none());
    let sent = rig.take_sent();
    let p = payload(&sent[0]);
    assert_eq!(p["event_type"], "deploy.regression");
    assert_eq!(p["details"]["previous_task_definition"], Value::Null);
    let t = text(&sent[0]);
    assert!(
        t.contains("NOT DONE: the previous revision cannot be determined"),
        "{t}"
    );
    assert!(t.contains("aws ecs list-task-definitions --region us-west-1 --family-prefix menotime-backend-prod"), "{t}");
}

#[tokio::test]
async fn auto_rollback_never_while_frozen_or_from_a_rollback() {
    // Frozen by a human reviewing a failure: the manual halts changes.
    let rig = Rig::watching(PROD, |c| c.watch.auto_rollback = true).await;
    rig.aws
        .set_tag(tags::DEPLOY_FREEZE, "manual review by jdoe");
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged);
    assert!(!rig.calls().contains(&"ecs:UpdateService"));
    assert!(
        text(&rig.take_sent()[0]).contains("NOT DONE: deploys are frozen (manual review by jdoe)")
    );
    // A deployment that itself went back to an older revision has no way back.
    let rig = Rig::with(PROD, |c| c.watch.auto_rollback = true);
    rig.aws.set_tag(
        tags::DEPLOY_WATCH,
        &format!("deployment={DEPLOYMENT} revision=menotime-backend-prod:49 from=menotime-backend-prod:50 completed=2026-11-26T09:00:00.000Z"),
    );
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged);
    assert!(!rig.calls().contains(&"ecs:UpdateService"));
    let t = text(&rig.take_sent()[0]);
    assert!(t.contains("this deployment was itself a rollback"), "{t}");
}

#[tokio::test]
async fn a_refused_rollback_still_pages_with_the_command() {
    let rig = Rig::watching(PROD, |c| c.watch.auto_rollback = true).await;
    rig.aws.fail_always("ecs:UpdateService");
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    assert_eq!(o.rolled_back_to, None);
    let t = text(&rig.take_sent()[0]);
    assert!(
        t.contains("FAILED: the update to menotime-backend-prod:48 was refused"),
        "{t}"
    );
    assert!(
        t.contains("--task-definition menotime-backend-prod:48"),
        "{t}"
    );
    // A second alarm of the incident does not pretend it was rolled back.
    rig.aws.heal("ecs:UpdateService");
    let o = rig
        .handle(alarm(PROD, "latency", "ALARM", "09:04", "a-2"), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged);
    assert!(!rig.calls().contains(&"ecs:UpdateService"));
    let t = text(&rig.take_sent()[0]);
    assert!(
        t.contains("the rollback decided when the incident opened did not happen"),
        "{t}"
    );
}

#[tokio::test]
async fn a_page_whose_incident_cannot_be_written_still_goes_out_without_a_rollback() {
    let rig = Rig::watching(PROD, |c| c.watch.auto_rollback = true).await;
    rig.aws.fail_always("ecs:TagResource");
    let fired = alarm(PROD, "5xx", "ALARM", "09:03", "a-1");
    let err = rig.handle(fired.clone(), "req-1").await.unwrap_err();
    // The page is out; the freeze the rollback needed could not be written, so the
    // invocation fails and Lambda's retry writes it.
    assert_eq!(err.retry(), Retry::Later, "{err}");
    assert!(!rig.calls().contains(&"ecs:UpdateService"));
    let sent = rig.take_sent();
    assert_eq!(sent.len(), 1);
    let first = payload(&sent[0]);
    let t = text(&sent[0]);
    assert!(t.contains("NOT RECORDED"), "{t}");
    assert!(t.contains("could happen twice; roll back by hand"), "{t}");
    assert!(
        t.contains("aws ecs tag-resource"),
        "the freeze by hand: {t}"
    );
    // The retry, once ECS takes tags again: recorded, frozen, rolled back; its page
    // has the same dedup_key (the one case where an incident pages twice).
    rig.aws.heal("ecs:TagResource");
    let o = rig.handle(fired, "req-1").await.unwrap();
    assert_eq!(o.decision, Decision::RolledBack, "{}", o.reason);
    assert!(o.froze);
    let second = payload(&rig.take_sent()[0]);
    assert_eq!(second["dedup_key"], first["dedup_key"]);
    assert!(rig.tag(tags::DEPLOY_FREEZE).is_some());

    // Without a rollback there is no freeze to write: the page goes out and the
    // invocation succeeds, saying the incident is not recorded.
    let rig = Rig::watching(PROD, |_| {}).await;
    rig.aws.fail_always("ecs:TagResource");
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged);
    assert!(!o.state_recorded);
    assert_eq!(rig.take_sent().len(), 1);
}

#[tokio::test]
async fn memory_high_warns_the_team_in_or_out_of_the_window_and_never_pages() {
    for hhmm in ["09:05", "11:00"] {
        let rig = Rig::watching(PROD, |c| c.watch.auto_rollback = true).await;
        let o = rig
            .handle(alarm(PROD, "memory-high", "ALARM", hhmm, "m-1"), "req-1")
            .await
            .unwrap();
        assert_eq!(o.decision, Decision::Notified, "{}", o.reason);
        assert_eq!(
            rig.calls(),
            [
                "ecs:DescribeServices",
                "ecs:DescribeTaskDefinition",
                "sns:Publish"
            ]
        );
        let sent = rig.take_sent();
        assert!(!is_oncall(&sent[0]));
        let p = payload(&sent[0]);
        assert_eq!(p["event_type"], "service.memory_high");
        assert_eq!(p["severity"], "warning");
        assert_eq!(p["action"], "notify");
        assert_eq!(p["details"]["memory"], "2048");
        assert_eq!(p["details"]["task_definition"], "menotime-backend-prod:49");
        let t = text(&sent[0]);
        for needle in [
            "2048 MiB",
            "update the task definition's memory to 3 GB",
            "profile the application's memory usage",
            "--filter-pattern OutOfMemory",
            "--task-definition menotime-backend-prod:49 --query 'taskDefinition.{cpu:cpu,memory:memory}'",
        ] {
            assert!(t.contains(needle), "missing {needle:?} in\n{t}");
        }
        assert_eq!(t.contains("within the watch"), hhmm == "09:05", "{t}");
        assert!(rig.tag(tags::DEPLOY_FREEZE).is_none());
        // Its OK: nothing, no call.
        let o = rig
            .handle(alarm(PROD, "memory-high", "OK", "11:30", "m-2"), "req-2")
            .await
            .unwrap();
        assert_eq!(o.decision, Decision::Ignored);
        assert!(rig.calls().is_empty());
    }
}

#[tokio::test]
async fn outside_prod_a_regression_notifies_the_team_and_nothing_resolves() {
    let env = Environment::Staging;
    let rig = Rig::watching(env, |_| {}).await;
    let o = rig
        .handle(alarm(env, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Notified);
    let sent = rig.take_sent();
    assert!(!is_oncall(&sent[0]));
    let p = payload(&sent[0]);
    assert_eq!(p["event_type"], "deploy.regression");
    assert_eq!(p["severity"], "warning");
    assert_eq!(p["action"], "notify");
    let o = rig
        .handle(alarm(env, "5xx", "OK", "09:09", "ok-1"), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Ignored, "{}", o.reason);
    assert!(rig.take_sent().is_empty());
    // The incident is closed all the same: a repeat of the ALARM is late.
    assert_eq!(
        rig.handle(alarm(env, "5xx", "ALARM", "09:03", "a-1"), "req-3")
            .await
            .unwrap()
            .decision,
        Decision::Late
    );
}

#[tokio::test]
async fn another_environments_or_accounts_alarms_cost_nothing() {
    let rig = Rig::watching(PROD, |_| {}).await;
    // Named without this environment's prefix: ignored, no call.
    for name in [
        "menotime-staging-5xx",
        "billing-5xx",
        "menotime-prod-deploy",
    ] {
        let mut v = alarm(PROD, "5xx", "ALARM", "09:03", "x");
        v["detail"]["alarmName"] = json!(name);
        v["resources"] = json!([format!(
            "arn:aws:cloudwatch:us-west-1:123456789012:alarm:{name}"
        )]);
        let o = rig.handle(v, "req").await.unwrap();
        let expected = if name.starts_with("menotime-prod-") {
            Decision::Paged
        } else {
            Decision::Ignored
        };
        assert_eq!(o.decision, expected, "{name}: {}", o.reason);
        if expected == Decision::Ignored {
            assert!(rig.calls().is_empty(), "{name}");
            assert!(o.reason.contains("ALARM_PREFIX"), "{}", o.reason);
        }
    }
    rig.take_sent();
    // Another account or region: refused.
    for (pointer, value) in [("/account", "999999999999"), ("/region", "eu-west-1")] {
        let mut v = alarm(PROD, "5xx", "ALARM", "09:03", "x");
        *v.pointer_mut(pointer).unwrap() = json!(value);
        let err = rig.handle(v, "req").await.unwrap_err();
        assert!(matches!(err, Error::Rejected(_)), "{err}");
        assert!(rig.calls().is_empty());
    }
    assert!(rig.take_sent().is_empty());
}

#[tokio::test]
async fn a_retried_joining_alarm_is_resent_as_the_update_it_was() {
    let rig = Rig::watching(PROD, |c| c.watch.auto_rollback = true).await;
    rig.handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    rig.take_sent();
    let joining = alarm(PROD, "latency", "ALARM", "09:04", "a-2");
    rig.aws.fail_always("sns:Publish");
    assert!(rig.handle(joining.clone(), "req-2").await.is_err());
    rig.aws.heal("sns:Publish");
    let o = rig.handle(joining, "req-2").await.unwrap();
    assert!(o.resent);
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    assert_eq!(o.rolled_back_to, None, "this alarm rolled nothing back");
    assert!(!rig.calls().contains(&"ecs:UpdateService"));
    let p = payload(&rig.take_sent()[0]);
    assert_eq!(p["event_type"], "deploy.regression");
    assert_eq!(p["details"]["rolled_back_to"], Value::Null);
}

/// ECS names a deployment in its events that DescribeServices may list under another
/// id (or no longer list) once it is steady: the revision that runs is what completed.
#[tokio::test]
async fn a_completion_naming_an_id_ecs_does_not_list_watches_what_runs() {
    let rig = Rig::new(PROD);
    let o = rig
        .handle(
            completed(PROD, "ecs-svc/from-the-event", COMPLETED),
            "req-1",
        )
        .await
        .unwrap();
    assert!(o.reason.contains("watching it until"), "{}", o.reason);
    rig.take_sent();
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    let p = payload(&rig.take_sent()[0]);
    assert_eq!(p["event_type"], "deploy.regression");
    assert_eq!(p["details"]["deployment_id"], "ecs-svc/from-the-event");
    assert_eq!(
        p["details"]["previous_task_definition"],
        "menotime-backend-prod:48"
    );
    // While another deployment rolls out, a completion that ECS does not list is
    // older than what runs: not watched.
    let rig = Rig::new(PROD);
    rig.aws.world().service.deployments[0].rollout_state = Some("IN_PROGRESS".into());
    let o = rig
        .handle(
            completed(PROD, "ecs-svc/from-the-event", COMPLETED),
            "req-1",
        )
        .await
        .unwrap();
    assert!(!o.reason.contains("watching"), "{}", o.reason);
    assert_eq!(rig.tag(tags::DEPLOY_WATCH), None);
}

#[tokio::test]
async fn a_new_incident_first_publishes_the_resolve_the_last_one_left_pending() {
    let rig = Rig::watching(PROD, |_| {}).await;
    rig.handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    rig.take_sent();
    rig.aws.fail_always("sns:Publish");
    rig.handle(alarm(PROD, "5xx", "OK", "09:10", "ok-1"), "req-2")
        .await
        .unwrap_err();
    rig.aws.heal("sns:Publish");
    // Hours later, another alarm: the old incident's resolve goes out first, so the
    // pager never keeps an incident open that is over.
    let o = rig
        .handle(alarm(PROD, "latency", "ALARM", "11:00", "a-2"), "req-3")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    let sent = rig.take_sent();
    assert_eq!(sent.len(), 2);
    let (resolve, page) = (payload(&sent[0]), payload(&sent[1]));
    assert_eq!(resolve["action"], "resolve");
    assert_eq!(resolve["event_type"], "deploy.regression");
    assert_eq!(page["action"], "trigger");
    assert_eq!(page["event_type"], "service.alarm");
    assert_ne!(page["dedup_key"], resolve["dedup_key"]);
    assert!(!rig.tag(tags::ALARM_INCIDENT).unwrap().contains("pending="));
}

// ---------------------------------------------------------------------------
// Escalation: an ALARM in a deployment's watch window while another incident is
// open (a service alarm, or an older deployment's regression) is that deployment's
// regression all the same.
// ---------------------------------------------------------------------------

/// Read, record (the regression's page and the handover pending, with the freeze of
/// a rollback), publish the regression's page, publish the earlier page's resolve,
/// confirm both.
const ESCALATE: [&str; 6] = [
    "ecs:DescribeServices",
    "ecs:DescribeTaskDefinition",
    "ecs:TagResource",
    "sns:Publish",
    "sns:Publish",
    "ecs:TagResource",
];

/// `(event_type, action, dedup_key)` of each message.
fn log(sent: &[Rendered]) -> Vec<(String, String, String)> {
    sent.iter()
        .map(|r| {
            let p = payload(r);
            (
                p["event_type"].as_str().unwrap().to_owned(),
                p["action"].as_str().unwrap().to_owned(),
                p["dedup_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn entry(event_type: &str, action: &str, key: &str) -> (String, String, String) {
    (event_type.into(), action.into(), key.into())
}

const SERVICE_KEY: &str = "menotime/prod/menotime-prod-service/alarm";

fn regression_key(deployment: &str) -> String {
    format!("menotime/prod/menotime-prod-service/regression/{deployment}")
}

/// db-connections went to ALARM at 08:50, before any deployment was watched: the
/// service alarm is paged; then the deployment completes at 09:00 (its watch runs to
/// 09:30).
async fn service_alarm_then_deployment(tweak: impl FnOnce(&mut NotifierConfig)) -> Rig {
    let rig = Rig::with(PROD, tweak);
    let o = rig
        .handle(
            alarm(PROD, "db-connections", "ALARM", "08:50", "db-1"),
            "req-db",
        )
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    assert_eq!(
        log(&rig.take_sent()),
        [entry("service.alarm", "trigger", SERVICE_KEY)]
    );
    let o = rig
        .handle(completed(PROD, DEPLOYMENT, COMPLETED), "req-completed")
        .await
        .unwrap();
    assert!(o.reason.contains("watching it until"), "{}", o.reason);
    rig.take_sent();
    rig
}

#[tokio::test]
async fn a_regression_alarm_while_a_service_alarm_is_open_escalates_and_every_ok_resolves_once() {
    let rig = service_alarm_then_deployment(|_| {}).await;
    let mut all = Vec::new();
    // 5xx in the window: the deployment's regression, although db-connections' page
    // is open.
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    assert_eq!(o.deployment_id.as_deref(), Some(DEPLOYMENT));
    assert!(
        o.reason
            .contains("regression (escalated from the open service alarm"),
        "{}",
        o.reason
    );
    assert_eq!(rig.calls(), ESCALATE);
    assert_eq!(
        o.notifications,
        ["deploy.regression/trigger", "service.alarm/resolve"]
    );
    let sent = rig.take_sent();
    assert_eq!(
        log(&sent),
        [
            entry("deploy.regression", "trigger", &regression_key(DEPLOYMENT)),
            entry("service.alarm", "resolve", SERVICE_KEY),
        ],
        "the regression's page first, then the service alarm's page is resolved into it"
    );
    // The regression's page: the deployment, the image, the alarm, the way back.
    let (page, handover) = (payload(&sent[0]), payload(&sent[1]));
    assert!(is_oncall(&sent[0]) && is_oncall(&sent[1]));
    assert_eq!(
        sent[0].subject,
        "[PROD] Regression after deploying menotime-backend-prod:49: menotime-prod-5xx in ALARM"
    );
    assert_eq!(page["details"]["deployment_id"], DEPLOYMENT);
    assert_eq!(page["details"]["image_tag"], "v1.2.4");
    assert_eq!(
        page["details"]["previous_task_definition"],
        "menotime-backend-prod:48"
    );
    assert_eq!(page["details"]["took_over"], SERVICE_KEY);
    assert_eq!(
        page["details"]["alarms_in_alarm"],
        json!(["5xx", "db-connections"])
    );
    let t = text(&sent[0]);
    let line = |label: &str| {
        t.lines()
            .find(|l| l.starts_with(label))
            .map(|l| l[label.len()..].trim().to_owned())
    };
    assert_eq!(line("Also in ALARM:").as_deref(), Some("db-connections"));
    assert!(
        line("Takes over:").is_some_and(|l| l.contains(SERVICE_KEY)),
        "{t}"
    );
    for needle in [
        "aws ecs update-service --region us-west-1 --cluster menotime-prod-cluster --service menotime-prod-service --task-definition menotime-backend-prod:48 --force-new-deployment",
        "off (AUTO_ROLLBACK_ON_REGRESSION=false)",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
    assert!(!t.contains("also in ALARM"), "it opens the regression: {t}");
    // The handover: the service alarm's key, resolved, pointing at the regression.
    assert_eq!(handover["severity"], "info");
    assert_eq!(handover["details"]["escalated_to"], DEPLOYMENT);
    assert_eq!(
        handover["details"]["escalated_to_dedup_key"],
        regression_key(DEPLOYMENT)
    );
    assert_eq!(handover["details"]["deployment_id"], Value::Null);
    assert_eq!(
        sent[1].subject,
        "[PROD] Resolved: continued as the regression after deploying menotime-backend-prod:49"
    );
    assert!(
        text(&sent[1])
            .lines()
            .any(|l| l.starts_with("Still in ALARM:") && l.ends_with(" 5xx, db-connections")),
        "{}",
        text(&sent[1])
    );
    let marker = rig.tag(tags::ALARM_INCIDENT).unwrap();
    assert!(
        marker.starts_with(&format!("deployment={DEPLOYMENT} sent=5xx@A")),
        "{marker}"
    );
    assert!(!marker.contains("pending="), "all confirmed: {marker}");
    all.extend(log(&sent));

    // db-connections recovers first: the regression stays open, nothing sent.
    let o = rig
        .handle(
            alarm(PROD, "db-connections", "OK", "09:10", "db-ok"),
            "req-2",
        )
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Ignored, "{}", o.reason);
    assert!(rig.take_sent().is_empty());
    // 5xx recovers: the one resolve left, the regression's.
    let o = rig
        .handle(alarm(PROD, "5xx", "OK", "09:12", "ok-1"), "req-3")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Resolved, "{}", o.reason);
    assert_eq!(rig.calls(), RESOLVE);
    let sent = rig.take_sent();
    assert_eq!(
        log(&sent),
        [entry(
            "deploy.regression",
            "resolve",
            &regression_key(DEPLOYMENT)
        )]
    );
    assert_eq!(
        payload(&sent[0])["details"]["resolved_alarms"],
        json!(["5xx", "db-connections"])
    );
    all.extend(log(&sent));

    // Every event again, in any order: nothing more.
    for (ev, request) in [
        (alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "redrive-1"),
        (
            alarm(PROD, "db-connections", "ALARM", "08:50", "db-1"),
            "redrive-2",
        ),
        (
            alarm(PROD, "db-connections", "OK", "09:10", "db-ok"),
            "redrive-3",
        ),
        (alarm(PROD, "5xx", "OK", "09:12", "ok-1"), "redrive-4"),
    ] {
        let o = rig.handle(ev, request).await.unwrap();
        assert!(
            matches!(o.decision, Decision::Duplicate | Decision::Late),
            "{request}: {:?} {}",
            o.decision,
            o.reason
        );
    }
    assert!(rig.take_sent().is_empty());
    // In all: each page triggered once and resolved once.
    let mut expected = vec![
        entry("service.alarm", "trigger", SERVICE_KEY),
        entry("deploy.regression", "trigger", &regression_key(DEPLOYMENT)),
        entry("service.alarm", "resolve", SERVICE_KEY),
        entry("deploy.regression", "resolve", &regression_key(DEPLOYMENT)),
    ];
    all.insert(0, expected[0].clone());
    expected.sort();
    all.sort();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn an_escalating_regression_rolls_back_by_itself_under_the_usual_rules() {
    let rig = service_alarm_then_deployment(|c| c.watch.auto_rollback = true).await;
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::RolledBack, "{}", o.reason);
    assert_eq!(
        o.rolled_back_to.as_deref(),
        Some("menotime-backend-prod:48")
    );
    assert!(o.froze);
    // Freeze and incident in one call, the rollback, the page, the handover, confirm.
    assert_eq!(
        rig.calls(),
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:TagResource",
            "ecs:UpdateService",
            "sns:Publish",
            "sns:Publish",
            "ecs:TagResource"
        ]
    );
    assert_eq!(rig.aws.world().last_update, Some((td(48), true)));
    assert!(rig.tag(tags::DEPLOY_FREEZE).unwrap().starts_with(&format!(
        "deployment {DEPLOYMENT} regressed at 2026-11-26T09:03:00Z"
    )));
    let sent = rig.take_sent();
    assert_eq!(
        log(&sent),
        [
            entry("deploy.rolled_back", "trigger", &regression_key(DEPLOYMENT)),
            entry("service.alarm", "resolve", SERVICE_KEY),
        ]
    );
    assert!(
        text(&sent[0]).contains(
            "DONE: deploys frozen, then the service was updated to menotime-backend-prod:48"
        ),
        "{}",
        text(&sent[0])
    );
    // After the rollback ECS runs another deployment: a later ALARM joins the
    // regression's incident, and nothing rolls back twice.
    let o = rig
        .handle(alarm(PROD, "latency", "ALARM", "09:05", "a-2"), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    assert!(!rig.calls().contains(&"ecs:UpdateService"));
    assert_eq!(
        log(&rig.take_sent()),
        [entry(
            "deploy.regression",
            "trigger",
            &regression_key(DEPLOYMENT)
        )]
    );
    // The escalating ALARM delivered again: a duplicate, no second rollback.
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "redrive-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Duplicate, "{}", o.reason);
    assert_eq!(rig.calls(), ["ecs:DescribeServices"]);
    // All OK: the regression resolves once, saying it was rolled back.
    for (name, hhmm, request) in [
        ("db-connections", "09:10", "req-3"),
        ("latency", "09:11", "req-4"),
        ("5xx", "09:12", "req-5"),
    ] {
        rig.handle(alarm(PROD, name, "OK", hhmm, request), request)
            .await
            .unwrap();
    }
    let sent = rig.take_sent();
    assert_eq!(
        log(&sent),
        [entry(
            "deploy.regression",
            "resolve",
            &regression_key(DEPLOYMENT)
        )]
    );
    assert_eq!(payload(&sent[0])["details"]["rolled_back"], true);

    // The usual rules hold for an escalation too: frozen by a human, or no way back,
    // pages instead; and never in a dry run.
    let frozen = service_alarm_then_deployment(|c| c.watch.auto_rollback = true).await;
    frozen
        .aws
        .set_tag(tags::DEPLOY_FREEZE, "manual review by jdoe");
    let o = frozen
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    assert!(!frozen.calls().contains(&"ecs:UpdateService"));
    let sent = frozen.take_sent();
    assert_eq!(payload(&sent[0])["event_type"], "deploy.regression");
    assert!(text(&sent[0]).contains("NOT DONE: deploys are frozen (manual review by jdoe)"));
    assert_eq!(payload(&sent[1])["action"], "resolve");

    let unknown = service_alarm_then_deployment(|c| c.watch.auto_rollback = true).await;
    unknown.aws.world().revisions[0]
        .facts
        .tags
        .remove(tags::REPLACES);
    let o = unknown
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    assert!(!unknown.calls().contains(&"ecs:UpdateService"));
    assert!(text(&unknown.take_sent()[0])
        .contains("NOT DONE: the previous revision cannot be determined"));
}

#[tokio::test]
async fn a_redelivered_escalating_alarm_never_pages_twice() {
    // The record written, then Publish fails: the Lambda retry (same request id) or a
    // redrive (a new one) publishes the page and the handover, once.
    for request in ["req-1", "redrive-1"] {
        let rig = service_alarm_then_deployment(|_| {}).await;
        let fired = alarm(PROD, "5xx", "ALARM", "09:03", "a-1");
        rig.aws.fail_always("sns:Publish");
        let err = rig.handle(fired.clone(), "req-1").await.unwrap_err();
        assert_eq!(err.retry(), Retry::Later);
        rig.aws.heal("sns:Publish");
        let marker = rig.tag(tags::ALARM_INCIDENT).unwrap();
        assert!(
            marker.contains("pending=5xx@E1795683780 "),
            "recorded pending: {marker}"
        );
        let o = rig.handle(fired.clone(), request).await.unwrap();
        assert_eq!(o.decision, Decision::Paged, "{request}: {}", o.reason);
        assert!(o.resent);
        assert_eq!(
            rig.calls(),
            [
                "ecs:DescribeServices",
                "ecs:DescribeTaskDefinition",
                "sns:Publish",
                "sns:Publish",
                "ecs:TagResource"
            ],
            "no second record, one confirmation"
        );
        let sent = rig.take_sent();
        assert_eq!(
            log(&sent),
            [
                entry("deploy.regression", "trigger", &regression_key(DEPLOYMENT)),
                entry("service.alarm", "resolve", SERVICE_KEY),
            ]
        );
        assert!(
            !text(&sent[0]).contains("also in ALARM"),
            "still the page that opens the regression"
        );
        assert!(!rig.tag(tags::ALARM_INCIDENT).unwrap().contains("pending="));
        for again in ["req-1", "redrive-2"] {
            let o = rig.handle(fired.clone(), again).await.unwrap();
            assert_eq!(o.decision, Decision::Duplicate, "{again}");
        }
        assert!(rig.take_sent().is_empty());
    }

    // The page goes out and the handover's Publish fails: the page is confirmed
    // before the invocation fails, so its redelivery sends only the handover.
    let rig = service_alarm_then_deployment(|_| {}).await;
    let fired = alarm(PROD, "5xx", "ALARM", "09:03", "a-1");
    let first = rig.aws.world().call_count;
    // DescribeServices, DescribeTaskDefinition, TagResource, Publish, Publish (fails).
    rig.aws.fail_calls([first + 4]);
    assert!(rig.handle(fired.clone(), "req-1").await.is_err());
    assert_eq!(
        rig.calls(),
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:TagResource",
            "sns:Publish",
            "sns:Publish",
            "ecs:TagResource"
        ],
        "the published page confirmed before failing"
    );
    assert_eq!(
        log(&rig.take_sent()),
        [entry(
            "deploy.regression",
            "trigger",
            &regression_key(DEPLOYMENT)
        )]
    );
    let marker = rig.tag(tags::ALARM_INCIDENT).unwrap();
    assert!(marker.contains("pending=5xx@H1795683780 "), "{marker}");
    let o = rig.handle(fired.clone(), "redrive-1").await.unwrap();
    // The ALARM itself is a duplicate; what it delivered resolves the earlier page.
    assert_eq!(o.decision, Decision::Resolved, "{}", o.reason);
    assert!(o.resent);
    assert!(o.reason.contains("already in ALARM"), "{}", o.reason);
    assert_eq!(
        log(&rig.take_sent()),
        [entry("service.alarm", "resolve", SERVICE_KEY)]
    );
    assert!(!rig.tag(tags::ALARM_INCIDENT).unwrap().contains("pending="));
    assert!(rig.handle(fired, "redrive-2").await.is_ok());
    assert!(rig.take_sent().is_empty());

    // The same, and the next event is another alarm joining the regression: its page
    // says it joins, and the handover goes out with it, once.
    let rig = service_alarm_then_deployment(|_| {}).await;
    let first = rig.aws.world().call_count;
    rig.aws.fail_calls([first + 4]);
    assert!(rig.handle(fired_at_0903(), "req-1").await.is_err());
    rig.take_sent();
    let o = rig
        .handle(alarm(PROD, "latency", "ALARM", "09:04", "a-2"), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    let sent = rig.take_sent();
    assert_eq!(
        log(&sent),
        [
            entry("deploy.regression", "trigger", &regression_key(DEPLOYMENT)),
            entry("service.alarm", "resolve", SERVICE_KEY),
        ]
    );
    assert!(
        sent[0]
            .subject
            .ends_with("menotime-prod-latency also in ALARM"),
        "{}",
        sent[0].subject
    );
    assert!(!text(&sent[0]).contains("Takes over"), "{}", text(&sent[0]));
    assert_eq!(
        payload(&sent[1])["details"]["alarm_name"],
        "menotime-prod-5xx",
        "the handover names the ALARM that escalated"
    );
    assert!(!rig.tag(tags::ALARM_INCIDENT).unwrap().contains("pending="));

    // Nothing redelivered the ALARM before the alarms recovered: the OKs deliver the
    // page, then the handover, then (the last OK) the resolve, in that order.
    let rig = service_alarm_then_deployment(|_| {}).await;
    rig.aws.fail_always("sns:Publish");
    assert!(rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-1")
        .await
        .is_err());
    rig.aws.heal("sns:Publish");
    rig.handle(
        alarm(PROD, "db-connections", "OK", "09:10", "db-ok"),
        "req-2",
    )
    .await
    .unwrap();
    rig.handle(alarm(PROD, "5xx", "OK", "09:12", "ok-1"), "req-3")
        .await
        .unwrap();
    assert_eq!(
        log(&rig.take_sent()),
        [
            entry("deploy.regression", "trigger", &regression_key(DEPLOYMENT)),
            entry("service.alarm", "resolve", SERVICE_KEY),
            entry("deploy.regression", "resolve", &regression_key(DEPLOYMENT)),
        ]
    );

    // With AUTO_ROLLBACK_ON_REGRESSION, the sandbox dies after the record and before
    // UpdateService: the redrive rolls back (once), then pages and hands over.
    let rig = service_alarm_then_deployment(|c| c.watch.auto_rollback = true).await;
    rig.aws.fail("ecs:UpdateService", 1);
    rig.aws.fail_always("sns:Publish");
    assert!(rig.handle(fired_at_0903(), "req-1").await.is_err());
    rig.aws.heal("sns:Publish");
    assert_eq!(rig.aws.world().service.task_definition, td(49));
    let o = rig.handle(fired_at_0903(), "redrive-1").await.unwrap();
    assert_eq!(o.decision, Decision::RolledBack, "{}", o.reason);
    assert_eq!(rig.aws.world().service.task_definition, td(48));
    assert_eq!(
        rig.calls(),
        [
            "ecs:DescribeServices",
            "ecs:DescribeTaskDefinition",
            "ecs:UpdateService",
            "sns:Publish",
            "sns:Publish",
            "ecs:TagResource"
        ]
    );
    assert_eq!(
        log(&rig.take_sent()),
        [
            entry("deploy.rolled_back", "trigger", &regression_key(DEPLOYMENT)),
            entry("service.alarm", "resolve", SERVICE_KEY),
        ]
    );
    let o = rig.handle(fired_at_0903(), "redrive-2").await.unwrap();
    assert_eq!(o.decision, Decision::Duplicate);
    assert!(!rig.calls().contains(&"ecs:UpdateService"));
}

fn fired_at_0903() -> Value {
    alarm(PROD, "5xx", "ALARM", "09:03", "a-1")
}

#[tokio::test]
async fn a_newer_deployments_regression_takes_over_an_older_ones() {
    // Deployment 1's regression is open (db-connections, 08:05).
    let rig = Rig::with(PROD, |_| {});
    rig.handle(
        completed(PROD, "ecs-svc/1", "2026-11-26T08:00:00Z"),
        "req-c1",
    )
    .await
    .unwrap();
    let o = rig
        .handle(
            alarm(PROD, "db-connections", "ALARM", "08:05", "db-1"),
            "req-1",
        )
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    rig.take_sent();
    // Deployment 2 (v1.2.4 again on revision 49, ECS's new id) completes at 09:00.
    rig.aws.world().service.deployments[0].id = DEPLOYMENT.into();
    rig.handle(completed(PROD, DEPLOYMENT, COMPLETED), "req-c2")
        .await
        .unwrap();
    rig.take_sent();
    let o = rig
        .handle(alarm(PROD, "5xx", "ALARM", "09:03", "a-1"), "req-2")
        .await
        .unwrap();
    assert_eq!(o.decision, Decision::Paged, "{}", o.reason);
    assert!(
        o.reason
            .contains("escalated from the open regression of deployment ecs-svc/1"),
        "{}",
        o.reason
    );
    let sent = rig.take_sent();
    assert_eq!(
        log(&sent),
        [
            entry("deploy.regression", "trigger", &regression_key(DEPLOYMENT)),
            entry("deploy.regression", "resolve", &regression_key("ecs-svc/1")),
        ]
    );
    assert_eq!(payload(&sent[1])["details"]["deployment_id"], "ecs-svc/1");
    let marker = rig.tag(tags::ALARM_INCIDENT).unwrap();
    assert!(
        marker.starts_with(&format!("deployment={DEPLOYMENT} sent=")),
        "{marker}"
    );
    assert!(
        !marker.contains("previous="),
        "the handover is done: {marker}"
    );
}
