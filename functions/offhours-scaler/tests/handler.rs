//! offhours-scaler's handler over in-memory fakes of ECS, Application Auto Scaling and
//! SNS, without a window (the explicit actions as the scheduler sends them): every
//! decision path, the AWS calls each one makes (in order), crashes at any call finished
//! by the retry, and what the notifications say. The window, reconcile, holds and the
//! wake-up check are in `window.rs`.
#![cfg(test)]

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use menotime_shared::config::{Environment, OffhoursConfig, Vars};
use menotime_shared::domain::offhours::{ScalableTarget, Suspended};
use menotime_shared::domain::schedule::{parse_request, Action};
use menotime_shared::domain::service::DeploymentState;
use menotime_shared::notify::Rendered;
use menotime_shared::testing::{repository_uri, FakeAws, FakeRevision, ACCOUNT};
use menotime_shared::{Error, Retry};
use offhours_scaler::{Decision, OffhoursScaler, Outcome};

const SNAPSHOT: &str = "menotime:offhours-snapshot";
const WAKE: &str = "menotime:offhours-wake";
const NIGHT: &str = "2026-01-05T20:00:00Z";
const LATER: &str = "2026-01-05T20:07:00Z";
const MORNING: &str = "2026-01-06T07:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn at_night() -> DateTime<Utc> {
    t(NIGHT)
}

fn a_bit_later() -> DateTime<Utc> {
    t(LATER)
}

fn in_the_morning() -> DateTime<Utc> {
    t(MORNING)
}

fn config(env: &str, extra: &[(&str, &str)]) -> OffhoursConfig {
    let cluster = format!("menotime-{env}-cluster");
    let service = format!("menotime-{env}-service");
    let notify = format!("arn:aws:sns:us-west-1:{ACCOUNT}:menotime-{env}-notify");
    let oncall = format!("arn:aws:sns:us-west-1:{ACCOUNT}:menotime-{env}-oncall");
    let mut vars: HashMap<&str, &str> = HashMap::from([
        ("ENVIRONMENT", env),
        ("AWS_REGION", "us-west-1"),
        ("CLUSTER_NAME", cluster.as_str()),
        ("SERVICE_NAME", service.as_str()),
        ("NOTIFY_TOPIC_ARN", notify.as_str()),
        ("ONCALL_TOPIC_ARN", oncall.as_str()),
    ]);
    vars.extend(extra.iter().copied());
    OffhoursConfig::from_vars(&Vars(|k: &str| vars.get(k).map(|v| v.to_string()))).unwrap()
}

fn target(min: i32, max: i32) -> Option<ScalableTarget> {
    Some(ScalableTarget {
        min,
        max,
        suspended: Suspended::NONE,
    })
}

struct Rig {
    env: Environment,
    extra: Vec<(&'static str, &'static str)>,
    aws: FakeAws,
}

/// A service of `env` with `desired` tasks, a scalable target (or none) and a settled
/// deployment.
fn rig(env: Environment, desired: i32, scalable: Option<ScalableTarget>) -> Rig {
    let running = FakeRevision::new(env, 7, &format!("{}:v1.2.3", repository_uri()), &[]);
    let td = running.facts.arn.clone();
    let aws = FakeAws::new(env, running);
    aws.set_tag("environment", env.as_str());
    {
        let mut w = aws.world();
        w.service.deployments = vec![DeploymentState {
            id: "ecs-svc/1".into(),
            status: "PRIMARY".into(),
            rollout_state: Some("COMPLETED".into()),
            task_definition: td,
            ..Default::default()
        }];
        w.service.desired_count = desired;
        w.service.running_count = desired;
        w.service.pending_count = 0;
        w.target = scalable;
    }
    Rig {
        env,
        extra: vec![],
        aws,
    }
}

/// prod as seeded: min 2, max 4, desired 2.
fn prod() -> Rig {
    rig(Environment::Prod, 2, target(2, 4))
}

impl Rig {
    fn with_vars(mut self, extra: &[(&'static str, &'static str)]) -> Rig {
        self.extra = extra.to_vec();
        self
    }

    fn scaler_at(&self, clock: fn() -> DateTime<Utc>) -> OffhoursScaler<FakeAws, FakeAws, FakeAws> {
        OffhoursScaler::new(
            config(self.env.as_str(), &self.extra),
            self.aws.clone(),
            self.aws.clone(),
            self.aws.clone(),
        )
        .with_clock(clock)
        .with_function_name(Some(format!("menotime-{}-offhours-scaler", self.env)))
    }

    async fn run(&self, event: Value) -> Result<Outcome, Error> {
        self.scaler_at(at_night).handle(event, "req-1").await
    }

    async fn run_in_the_morning(&self, event: Value) -> Result<Outcome, Error> {
        self.scaler_at(in_the_morning).handle(event, "req-m").await
    }

    fn calls(&self) -> Vec<&'static str> {
        self.aws.calls()
    }

    fn sent(&self) -> Vec<Rendered> {
        self.aws.sent()
    }

    /// The sandbox dies at the next call of `op` (once).
    fn fail_at(&self, op: &'static str) {
        self.aws.fail(op, 1);
    }

    /// (min, max, desired) as the fakes hold them; min and max are -1 without a target.
    fn capacity(&self) -> (i32, i32, i32) {
        let w = self.aws.world();
        let (min, max) = w.target.map_or((-1, -1), |t| (t.min, t.max));
        (min, max, w.service.desired_count)
    }

    fn tag(&self, key: &str) -> Option<String> {
        self.aws.tag(key)
    }

    fn set_tag(&self, key: &str, value: &str) {
        self.aws.set_tag(key, value);
    }
}

const DS: &str = "ecs:DescribeServices";
const DST: &str = "application-autoscaling:DescribeScalableTargets";
const DTD: &str = "ecs:DescribeTaskDefinition";
const TAG: &str = "ecs:TagResource";
const UNTAG: &str = "ecs:UntagResource";
const RST: &str = "application-autoscaling:RegisterScalableTarget";
const US: &str = "ecs:UpdateService";
const PUB: &str = "sns:Publish";

fn down() -> Value {
    json!({"action": "scale-down"})
}

fn up() -> Value {
    json!({"action": "scale-up"})
}

/// What EventBridge Scheduler sends with the context attributes filled in.
fn scheduled(action: &str) -> Value {
    json!({
        "action": action,
        "executionId": "a1b2c3d4-0000-4000-8000-000000000001",
        "scheduledTime": "2026-01-05T20:00:00Z",
        "scheduleArn": "arn:aws:scheduler:us-west-1:123456789012:schedule/default/menotime-prod-offhours-down",
    })
}

fn message(r: &Rendered) -> (Value, String, Value) {
    let m: Value = serde_json::from_str(&r.message).unwrap();
    let payload: Value = serde_json::from_str(m["sqs"].as_str().unwrap()).unwrap();
    (payload, m["default"].as_str().unwrap().to_owned(), m)
}

fn only(sent: Vec<Rendered>) -> (Rendered, Value, String) {
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let r = sent.into_iter().next().unwrap();
    let (payload, text, m) = message(&r);
    assert!(m["sms"].as_str().unwrap().len() <= 140);
    assert!(r.subject.len() <= 99, "{}", r.subject);
    (r, payload, text)
}

fn assert_contains(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "{n:?} missing from\n{text}");
    }
}

// --- the night and the morning, prod ------------------------------------------

#[tokio::test]
async fn prod_down_down_again_up_up_again() {
    let r = prod();

    // The evening: saved first, then lowered, in 6 calls and the notification.
    let out = r.run(scheduled("scale-down")).await.unwrap();
    assert_eq!(r.calls(), [DS, DST, TAG, RST, US, DTD, PUB]);
    assert_eq!(out.decision, Decision::ScaledDown);
    assert_eq!(r.capacity(), (1, 4, 1), "the maximum stays for spikes");
    let saved = "min=2 max=4 desired=2 suspended=none saved=2026-01-05T20:00:00Z";
    assert_eq!(r.tag(SNAPSHOT).as_deref(), Some(saved));

    let o = serde_json::to_value(&out).unwrap();
    assert_eq!(o["outcome"], "scaled_down");
    assert_eq!(o["action"], "scale-down");
    assert_eq!(o["dry_run"], false);
    assert_eq!(o["source_event_id"], "a1b2c3d4-0000-4000-8000-000000000001");
    assert_eq!(o["forced"], false);
    assert_eq!(o["window"], Value::Null);
    assert_eq!(o["wake"], Value::Null);
    assert_eq!(o["notifications"], json!(["scale.down/notify"]));
    let s = &o["services"][0];
    assert_eq!(s["service"], "menotime-prod-service");
    assert_eq!(s["cluster"], "menotime-prod-cluster");
    assert_eq!(
        s["before"],
        json!({"min": 2, "max": 4, "desired": 2, "suspended": "none"})
    );
    assert_eq!(
        s["after"],
        json!({"min": 1, "max": 4, "desired": 1, "suspended": "none"})
    );
    assert_eq!(s["snapshot"], saved);
    assert_eq!(s["notification"], "scale.down");
    assert_eq!(
        s["estimated_saving_usd"],
        Value::Null,
        "without a window the night's length is unknown"
    );

    let (rendered, payload, text) = only(r.sent());
    assert_eq!(
        rendered.subject,
        "[PROD] Scaled menotime-prod-service down for the night: desired 2 -> 1"
    );
    assert!(rendered.topic_arn.ends_with(":menotime-prod-notify"));
    assert_eq!(payload["event_type"], "scale.down");
    assert_eq!(payload["severity"], "info");
    assert_eq!(payload["action"], "notify");
    assert_eq!(
        payload["dedup_key"],
        "menotime/prod/menotime-prod-service/offhours"
    );
    assert_eq!(
        payload["source_event_id"],
        "a1b2c3d4-0000-4000-8000-000000000001"
    );
    assert_eq!(payload["occurred_at"], "2026-01-05T20:00:00.000Z");
    assert_eq!(payload["details"]["before"]["min"], 2);
    assert_eq!(payload["details"]["after"]["min"], 1);
    assert_eq!(payload["details"]["snapshot"], saved);
    assert_eq!(payload["details"]["task_cpu"], "1024");
    assert_eq!(payload["details"]["night_hours"], Value::Null);
    let per_hour = payload["details"]["saving_usd_per_hour"].as_f64().unwrap();
    assert!(
        (per_hour - 0.04937).abs() < 1e-9,
        "1 task of 1 vCPU/2 GB: {per_hour}"
    );
    assert_contains(
        &text,
        &[
            "Before:",
            "min=2 max=4 desired=2",
            "After:",
            "min=1 max=4 desired=1",
            "USD 0.0494 per hour of night; the night's length is unknown without OFFHOURS_UPTIME",
            "menotime-backend-prod:7",
            "aws application-autoscaling describe-scalable-targets --region us-west-1 --service-namespace ecs --scalable-dimension ecs:service:DesiredCount --resource-ids service/menotime-prod-cluster/menotime-prod-service",
            "aws ecs describe-services --region us-west-1 --cluster menotime-prod-cluster --services menotime-prod-service",
            "aws ecs list-tags-for-resource --region us-west-1 --resource-arn arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service",
            "aws lambda invoke --region us-west-1 --function-name menotime-prod-offhours-scaler",
            "Console: https://us-west-1.console.aws.amazon.com/ecs/v2/clusters/menotime-prod-cluster/services/menotime-prod-service",
        ],
    );

    // A second evening run: already down, the snapshot is never overwritten.
    let out = r
        .scaler_at(a_bit_later)
        .handle(down(), "req-2")
        .await
        .unwrap();
    assert_eq!(r.calls(), [DS, DST, PUB]);
    assert_eq!(out.decision, Decision::Skipped);
    assert_eq!(r.capacity(), (1, 4, 1));
    assert_eq!(r.tag(SNAPSHOT).as_deref(), Some(saved));
    assert_eq!(
        out.source_event_id, "req-2",
        "no execution id: the request id"
    );
    let (rendered, payload, _) = only(r.sent());
    assert_eq!(payload["event_type"], "scale.skipped");
    assert_eq!(payload["details"]["skip_reason"], "already_down");
    assert_eq!(payload["occurred_at"], "2026-01-05T20:07:00.000Z");
    assert!(rendered
        .subject
        .contains("already at its off-hours capacity"));

    // The morning: the wake-up check first (a task has to start), exactly what was
    // saved, then the snapshot removed.
    let out = r.run_in_the_morning(scheduled("scale-up")).await.unwrap();
    assert_eq!(r.calls(), [DS, DST, TAG, RST, US, UNTAG, DTD, PUB]);
    assert_eq!(out.decision, Decision::ScaledUp);
    assert_eq!(r.capacity(), (2, 4, 2));
    assert_eq!(r.tag(SNAPSHOT), None);
    assert_eq!(
        r.tag(WAKE).as_deref(),
        Some("since=2026-01-06T07:00:00Z desired=2 state=waiting")
    );
    let s = &serde_json::to_value(&out).unwrap()["services"][0];
    assert_eq!(
        s["after"],
        json!({"min": 2, "max": 4, "desired": 2, "suspended": "none"})
    );
    assert_eq!(s["snapshot"], saved);
    let (rendered, payload, text) = only(r.sent());
    assert_eq!(
        rendered.subject,
        "[PROD] Restored menotime-prod-service for the day: desired 1 -> 2"
    );
    assert_eq!(payload["event_type"], "scale.up");
    assert_eq!(
        payload["dedup_key"],
        "menotime/prod/menotime-prod-service/offhours"
    );
    // 1 task of 1 vCPU/2 GB for the 11 hours since the snapshot was saved.
    assert_eq!(payload["details"]["night_hours"], 11.0);
    assert_contains(
        &text,
        &[
            "Night's estimated saving: USD 0.54 for this night of 11 h (since the snapshot was saved at 2026-01-05T20:00:00Z)",
            "restored and removed min=2 max=4 desired=2 suspended=none saved=2026-01-05T20:00:00Z",
            "2 task(s) should run by 2026-01-06T07:15:00Z; on-call hears if not",
        ],
    );

    // A second morning run: the tasks run, so the check ends; nothing saved, nothing
    // changes.
    let out = r.run_in_the_morning(up()).await.unwrap();
    assert_eq!(r.calls(), [DS, UNTAG, DST, PUB]);
    assert_eq!(out.decision, Decision::Skipped);
    assert_eq!(out.wake, Some("reached"));
    assert_eq!(r.tag(WAKE), None);
    assert_eq!(r.capacity(), (2, 4, 2));
    let (_, payload, _) = only(r.sent());
    assert_eq!(payload["event_type"], "scale.skipped");
    assert_eq!(payload["details"]["skip_reason"], "nothing_saved");
}

#[tokio::test]
async fn the_autoscaler_grew_the_service_at_night_so_it_is_lowered_again_without_resaving() {
    let r = prod();
    r.run(down()).await.unwrap();
    r.calls();
    r.sent();
    let saved = r.tag(SNAPSHOT).unwrap();
    r.aws.world().service.desired_count = 3;
    let out = r
        .scaler_at(a_bit_later)
        .handle(down(), "req-2")
        .await
        .unwrap();
    assert_eq!(out.decision, Decision::ScaledDown);
    assert_eq!(r.calls(), [DS, DST, US, DTD, PUB], "min is already 1");
    assert_eq!(r.capacity(), (1, 4, 1));
    assert_eq!(r.tag(SNAPSHOT), Some(saved));
    assert!(out.reason.contains("kept the snapshot"), "{}", out.reason);
}

#[tokio::test]
async fn only_the_minimum_is_lowered_when_the_service_already_runs_one_task() {
    let r = rig(Environment::Prod, 1, target(2, 4));
    let out = r.run(down()).await.unwrap();
    assert_eq!(out.decision, Decision::ScaledDown);
    assert_eq!(
        r.calls(),
        [DS, DST, TAG, RST, PUB],
        "no task removed, no estimate"
    );
    assert_eq!(r.capacity(), (1, 4, 1));
    assert_eq!(out.services[0].estimated_saving_usd, Some(0.0));
    let (rendered, _, _) = only(r.sent());
    assert_eq!(
        rendered.subject,
        "[PROD] Scaled menotime-prod-service down for the night: min 2 -> 1"
    );
    let out = r.run(up()).await.unwrap();
    assert_eq!(
        r.calls(),
        [DS, DST, TAG, RST, US, UNTAG, PUB],
        "no task was removed at night: no estimate; one more has to start"
    );
    assert_eq!(out.services[0].estimated_saving_usd, Some(0.0));
    assert_eq!(
        r.capacity(),
        (2, 4, 2),
        "the restored minimum raises the count"
    );
}

#[tokio::test]
async fn the_suspended_state_an_operator_set_survives_the_night() {
    let in_and_scheduled = Suspended {
        dynamic_in: true,
        dynamic_out: false,
        scheduled: true,
    };
    let r = rig(
        Environment::Prod,
        3,
        Some(ScalableTarget {
            min: 3,
            max: 6,
            suspended: in_and_scheduled,
        }),
    );
    r.run(down()).await.unwrap();
    assert_eq!(
        r.tag(SNAPSHOT).as_deref(),
        Some("min=3 max=6 desired=3 suspended=in+scheduled saved=2026-01-05T20:00:00Z")
    );
    let night = r.aws.world().target.unwrap();
    assert_eq!(night.suspended, in_and_scheduled, "left alone at night");
    assert_eq!((night.min, night.max), (1, 6));
    // An operator resumes everything at night; the morning gives back what was saved.
    r.aws.world().target.as_mut().unwrap().suspended = Suspended::NONE;
    r.run(up()).await.unwrap();
    let day = r.aws.world().target.unwrap();
    assert_eq!(
        day,
        ScalableTarget {
            min: 3,
            max: 6,
            suspended: in_and_scheduled
        }
    );
    assert_eq!(r.capacity(), (3, 6, 3));
}

// --- dev: scaled by hand --------------------------------------------------------

#[tokio::test]
async fn dev_without_a_scalable_target_only_changes_the_desired_count() {
    let r = rig(Environment::Dev, 1, None);
    let out = r.run(down()).await.unwrap();
    assert_eq!(r.calls(), [DS, DST, TAG, US, DTD, PUB]);
    assert_eq!(out.decision, Decision::ScaledDown);
    assert_eq!(r.capacity(), (-1, -1, 0));
    assert_eq!(
        r.tag(SNAPSHOT).as_deref(),
        Some("desired=1 saved=2026-01-05T20:00:00Z")
    );
    let s = &serde_json::to_value(&out).unwrap()["services"][0];
    assert_eq!(
        s["before"],
        json!({"min": null, "max": null, "desired": 1, "suspended": null})
    );
    assert_eq!(s["after"]["desired"], 0);
    let (_, _, text) = only(r.sent());
    assert_contains(
        &text,
        &[
            "desired=1 (no scalable target)",
            "desired=0 (no scalable target)",
        ],
    );

    let out = r.run(up()).await.unwrap();
    assert_eq!(r.calls(), [DS, DST, TAG, US, UNTAG, DTD, PUB]);
    assert_eq!(out.decision, Decision::ScaledUp);
    assert_eq!(r.capacity(), (-1, -1, 1));
    assert_eq!(r.tag(SNAPSHOT), None);
    assert!(r.tag(WAKE).is_some(), "the task has to start");
}

// --- guards ----------------------------------------------------------------------

#[tokio::test]
async fn an_excluded_service_is_left_alone() {
    let r = prod();
    r.set_tag("menotime:offhours", "skip");
    for event in [down(), up()] {
        let out = r.run(event).await.unwrap();
        assert_eq!(out.decision, Decision::Skipped);
        assert_eq!(r.calls(), [DS, DST, PUB]);
        assert_eq!(r.capacity(), (2, 4, 2));
        assert_eq!(r.tag(SNAPSHOT), None);
        let (rendered, payload, _) = only(r.sent());
        assert_eq!(payload["details"]["skip_reason"], "excluded");
        assert!(
            rendered
                .subject
                .contains("excluded by menotime:offhours=skip"),
            "{}",
            rendered.subject
        );
    }
}

#[tokio::test]
async fn excluded_while_scaled_down_is_restored_by_a_scale_up() {
    let r = prod();
    r.run(down()).await.unwrap();
    r.calls();
    r.sent();
    r.set_tag("menotime:offhours", "skip");
    // Another scale-down leaves it alone, and says how to restore it by hand...
    let out = r.run(down()).await.unwrap();
    assert_eq!(out.decision, Decision::Skipped);
    assert_eq!(r.calls(), [DS, DST, PUB]);
    assert_eq!(r.capacity(), (1, 4, 1));
    assert!(r.tag(SNAPSHOT).is_some());
    let (_, payload, text) = only(r.sent());
    assert_eq!(payload["details"]["skip_reason"], "excluded");
    assert_contains(
        &text,
        &[
            "is excluded: it is restored when its day begins, or by a scale-up",
            "aws application-autoscaling register-scalable-target --region us-west-1 --service-namespace ecs --scalable-dimension ecs:service:DesiredCount --resource-id service/menotime-prod-cluster/menotime-prod-service --min-capacity 2 --max-capacity 4 --suspended-state DynamicScalingInSuspended=false,DynamicScalingOutSuspended=false,ScheduledScalingSuspended=false",
            "aws ecs update-service --region us-west-1 --cluster menotime-prod-cluster --service menotime-prod-service --desired-count 2",
            "aws ecs untag-resource --region us-west-1 --resource-arn arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service --tag-keys menotime:offhours-snapshot",
        ],
    );
    // ...and a scale-up gives the day back, exclusion or not, and says why.
    let out = r.run(up()).await.unwrap();
    assert_eq!(out.decision, Decision::ScaledUp);
    assert_eq!(r.capacity(), (2, 4, 2));
    assert_eq!(r.tag(SNAPSHOT), None);
    assert_eq!(
        r.tag("menotime:offhours").as_deref(),
        Some("skip"),
        "still excluded"
    );
    let (_, payload, text) = only(r.sent());
    assert_eq!(payload["event_type"], "scale.up");
    assert_contains(
        &text,
        &[
            "Note:",
            "is tagged menotime:offhours=skip but was scaled down when it was excluded",
        ],
    );
}

#[tokio::test]
async fn a_rollout_in_progress_is_retried_and_nothing_changes() {
    let r = prod();
    r.aws.world().service.deployments[0].rollout_state = Some("IN_PROGRESS".into());
    let err = r.run(down()).await.unwrap_err();
    assert!(matches!(err, Error::NotNow(_)), "{err:?}");
    assert_eq!(err.retry(), Retry::Later);
    assert!(err.to_string().contains("ecs-svc/1"), "{err}");
    assert_eq!(r.calls(), [DS, DST, PUB]);
    assert_eq!(r.capacity(), (2, 4, 2));
    assert_eq!(r.tag(SNAPSHOT), None);
    let (rendered, payload, _) = only(r.sent());
    assert_eq!(payload["event_type"], "scale.skipped");
    assert_eq!(payload["details"]["skip_reason"], "deploying");
    assert_eq!(
        rendered.subject,
        "[PROD] Off-hours scale-down postponed: menotime-prod-service is deploying, retried later"
    );

    // Once the rollout settles, the retry scales down.
    r.aws.world().service.deployments[0].rollout_state = Some("COMPLETED".into());
    assert_eq!(r.run(down()).await.unwrap().decision, Decision::ScaledDown);
    assert_eq!(r.capacity(), (1, 4, 1));
}

#[tokio::test]
async fn an_unreadable_snapshot_is_left_for_a_human() {
    let r = prod();
    r.set_tag(SNAPSHOT, "min=2,max=4");
    for event in [down(), up()] {
        let err = r.run(event).await.unwrap_err();
        assert!(matches!(err, Error::Misconfigured(_)), "{err:?}");
        assert_eq!(r.calls(), [DS, DST, PUB]);
        assert_eq!(r.capacity(), (2, 4, 2));
        assert_eq!(r.tag(SNAPSHOT).as_deref(), Some("min=2,max=4"));
        let (_, payload, text) = only(r.sent());
        assert_eq!(payload["details"]["skip_reason"], "unreadable_snapshot");
        assert_contains(&text, &["min=2,max=4", "untag-resource"]);
    }
}

#[tokio::test]
async fn prod_never_goes_below_one_task() {
    // Even a service whose daytime minimum is 0 keeps one task at night.
    let r = rig(Environment::Prod, 3, target(0, 4));
    r.run(down()).await.unwrap();
    assert_eq!(r.capacity(), (0, 4, 1), "the minimum is never raised");
    // And the configuration cannot ask for less.
    for var in ["OFFHOURS_MIN_CAPACITY", "OFFHOURS_DESIRED_COUNT"] {
        let vars = HashMap::from([
            ("ENVIRONMENT", "prod"),
            ("AWS_REGION", "us-west-1"),
            ("CLUSTER_NAME", "c"),
            ("SERVICE_NAME", "s"),
            ("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-west-1:123456789012:n"),
            ("ONCALL_TOPIC_ARN", "arn:aws:sns:us-west-1:123456789012:o"),
            (var, "0"),
        ]);
        let err = OffhoursConfig::from_vars(&Vars(|k: &str| vars.get(k).map(|v| v.to_string())))
            .unwrap_err();
        assert!(err.to_string().contains(var), "{err}");
    }
}

// --- crashes -----------------------------------------------------------------------

#[tokio::test]
async fn a_crash_between_the_snapshot_and_the_lowering_is_finished_by_the_retry() {
    let r = prod();
    r.fail_at(RST);
    let err = r.run(down()).await.unwrap_err();
    assert_eq!(err.retry(), Retry::Later);
    assert_eq!(r.calls(), [DS, DST, TAG, RST]);
    assert_eq!(r.capacity(), (2, 4, 2), "nothing lowered yet");
    let saved = r.tag(SNAPSHOT).unwrap();
    assert_eq!(
        saved,
        "min=2 max=4 desired=2 suspended=none saved=2026-01-05T20:00:00Z"
    );
    assert!(r.sent().is_empty());

    // Lambda's retry, minutes later: it finds the snapshot, keeps it, and only lowers.
    let out = r
        .scaler_at(a_bit_later)
        .handle(down(), "req-1")
        .await
        .unwrap();
    assert_eq!(r.calls(), [DS, DST, RST, US, DTD, PUB]);
    assert_eq!(out.decision, Decision::ScaledDown);
    assert_eq!(r.capacity(), (1, 4, 1));
    assert_eq!(r.tag(SNAPSHOT), Some(saved), "not overwritten");
    let (_, _, text) = only(r.sent());
    assert_contains(&text, &["kept from an earlier run"]);

    // And the morning restores the day's capacity from it.
    r.run(up()).await.unwrap();
    assert_eq!(r.capacity(), (2, 4, 2));
}

#[tokio::test]
async fn a_crash_at_any_call_of_the_scale_down_is_finished_by_the_retry() {
    for op in [TAG, RST, US, DTD, PUB] {
        let r = prod();
        r.fail_at(op);
        let first = r.run(down()).await;
        // A failed estimate costs only the figure.
        assert_eq!(first.is_ok(), op == DTD, "{op}: {first:?}");
        let _ = r
            .scaler_at(a_bit_later)
            .handle(down(), "req-1")
            .await
            .unwrap();
        assert_eq!(r.capacity(), (1, 4, 1), "{op}");
        // The first run's snapshot (saved at 20:00) is kept by the retry (at 20:07);
        // only when the tag itself failed does the retry save it.
        let saved = if op == TAG { LATER } else { NIGHT };
        assert_eq!(
            r.tag(SNAPSHOT),
            Some(format!(
                "min=2 max=4 desired=2 suspended=none saved={saved}"
            )),
            "{op}"
        );
        r.run(up()).await.unwrap();
        assert_eq!(r.capacity(), (2, 4, 2), "{op}");
        assert_eq!(r.tag(SNAPSHOT), None, "{op}");
    }
}

#[tokio::test]
async fn a_crash_at_any_call_of_the_scale_up_is_finished_by_the_retry() {
    for op in [TAG, RST, US, UNTAG, DTD, PUB] {
        let r = prod();
        r.run(down()).await.unwrap();
        r.calls();
        r.fail_at(op);
        let first = r.run_in_the_morning(up()).await;
        assert_eq!(first.is_ok(), op == DTD, "{op}: {first:?}");
        // The snapshot goes last: it survives any failure before the untag.
        assert_eq!(r.tag(SNAPSHOT).is_some(), op != DTD && op != PUB, "{op}");
        // The wake-up check began first, and is never restarted by the retry.
        assert_eq!(r.tag(WAKE).is_some(), op != TAG, "{op}");
        r.calls();
        let out = r.run_in_the_morning(up()).await.unwrap();
        assert_eq!(r.capacity(), (2, 4, 2), "{op}");
        assert_eq!(r.tag(SNAPSHOT), None, "{op}");
        let (calls, outcome) = match op {
            TAG => (
                vec![DS, DST, TAG, RST, US, UNTAG, DTD, PUB],
                Decision::ScaledUp,
            ),
            // The desired count is still the night's: the check waits.
            RST => (vec![DS, DST, RST, US, UNTAG, DTD, PUB], Decision::ScaledUp),
            US => (vec![DS, DST, US, UNTAG, DTD, PUB], Decision::ScaledUp),
            // Restored already: the tasks run, so the check ends first.
            UNTAG => (vec![DS, UNTAG, DST, UNTAG, PUB], Decision::ScaledUp),
            // The first run restored and untagged; only its notification was lost.
            _ => (vec![DS, UNTAG, DST, PUB], Decision::Skipped),
        };
        assert_eq!(r.calls(), calls, "{op}");
        assert_eq!(out.decision, outcome, "{op}");
    }
}

#[tokio::test]
async fn an_unknown_task_size_only_loses_the_estimate() {
    let r = prod();
    r.aws.world().revisions[0].cpu = None;
    let out = r.run(down()).await.unwrap();
    assert_eq!(out.decision, Decision::ScaledDown);
    assert_eq!(out.services[0].estimated_saving_usd, None);
    let (_, payload, text) = only(r.sent());
    assert_eq!(payload["details"]["estimated_saving_usd"], Value::Null);
    assert_contains(&text, &["Estimated saving: unknown"]);
}

// --- dry run --------------------------------------------------------------------------

#[tokio::test]
async fn a_dry_run_decides_and_notifies_but_changes_nothing() {
    // From the input...
    let r = prod();
    let out = r
        .run(json!({"action": "scale-down", "dry_run": true}))
        .await
        .unwrap();
    assert_eq!(r.calls(), [DS, DST, DTD, PUB]);
    assert_eq!(out.decision, Decision::ScaledDown);
    assert!(out.dry_run);
    assert_eq!(r.capacity(), (2, 4, 2));
    assert_eq!(r.tag(SNAPSHOT), None);
    assert_eq!(out.services[0].after.min, Some(1), "what it would do");
    assert!(
        out.reason.starts_with("dry run: would save"),
        "{}",
        out.reason
    );
    let (rendered, payload, text) = only(r.sent());
    assert_eq!(
        rendered.subject,
        "[PROD] dry run: would scale menotime-prod-service down for the night"
    );
    assert_eq!(payload["details"]["dry_run"], true);
    assert_contains(&text, &["Would be:", "Dry run:"]);

    // ...or from DRY_RUN, which "dry_run": false does not override.
    let r = prod().with_vars(&[("DRY_RUN", "true")]);
    r.set_tag(SNAPSHOT, "min=2 max=4 desired=2");
    r.aws.world().target = target(1, 4);
    r.aws.world().service.desired_count = 1;
    let out = r
        .run(json!({"action": "scale-up", "dry_run": false}))
        .await
        .unwrap();
    assert_eq!(r.calls(), [DS, DST, DTD, PUB]);
    assert_eq!(out.decision, Decision::ScaledUp);
    assert!(out.dry_run);
    assert_eq!(r.capacity(), (1, 4, 1));
    assert_eq!(r.tag(SNAPSHOT).as_deref(), Some("min=2 max=4 desired=2"));
}

// --- the input ----------------------------------------------------------------------

#[tokio::test]
async fn anything_but_the_schedulers_input_is_rejected_with_nothing_called() {
    let r = prod();
    let cases = [
        json!("scale-down"),
        json!(null),
        json!([{"action": "scale-down"}]),
        json!({}),
        json!({"action": "scale_down"}),
        json!({"action": "Scale-Down"}),
        json!({"action": "scale-down "}),
        json!({"action": 1}),
        json!({"action": null}),
        json!({"action": "scale-down", "dry_run": "true"}),
        json!({"action": "scale-down", "force": "yes"}),
        json!({"action": "scale-down", "scheduledTime": "yesterday"}),
        json!({"action": "scale-down", "scheduledTime": 1767643200}),
        // EventBridge Scheduler's default envelope for a target without an input.
        json!({
            "version": "0", "id": "5b0fdd2b-0000-4000-8000-000000000000",
            "detail-type": "Scheduled Event", "source": "aws.scheduler",
            "account": ACCOUNT, "time": "2026-01-05T20:00:00Z", "region": "us-west-1",
            "resources": ["arn:aws:scheduler:us-west-1:123456789012:schedule/default/x"],
            "detail": "{}"
        }),
    ];
    for event in cases {
        let err = r.run(event.clone()).await.unwrap_err();
        assert!(matches!(err, Error::Rejected(_)), "{event}: {err:?}");
        assert_eq!(err.retry(), Retry::Never);
        let text = err.to_string();
        assert!(
            text.contains(
                r#"{"action": "scale-down"}, {"action": "scale-up"} or {"action": "reconcile"}"#
            ),
            "{event}: {text}"
        );
        assert!(text.ends_with("Nothing was changed"), "{text}");
        assert!(r.calls().is_empty(), "{event}");
    }
    // The template's Input sent by hand, placeholders and all: refused, nothing called.
    for action in ["reconcile", "scale-down", "scale-up"] {
        let event = json!({"action": action, "executionId": "<aws.scheduler.execution-id>", "scheduledTime": "<aws.scheduler.scheduled-time>"});
        let err = r.run(event).await.unwrap_err();
        assert!(matches!(err, Error::Rejected(_)), "{err:?}");
        assert!(err.to_string().contains("placeholder"), "{err}");
        assert!(r.calls().is_empty());
    }
    // reconcile without a window: the configuration is missing, not the input.
    let err = r.run(json!({"action": "reconcile"})).await.unwrap_err();
    assert!(matches!(err, Error::Misconfigured(_)), "{err:?}");
    assert!(err.to_string().contains("OFFHOURS_UPTIME"), "{err}");
    assert!(r.calls().is_empty());
    assert!(r.sent().is_empty());
}

#[test]
fn the_schedulers_input_is_read_strictly_and_extra_fields_are_ignored() {
    let req = parse_request(&scheduled("scale-up")).unwrap();
    assert_eq!(req.action, Action::ScaleUp);
    assert!(!req.dry_run);
    assert_eq!(
        req.execution_id.as_deref(),
        Some("a1b2c3d4-0000-4000-8000-000000000001")
    );
    assert_eq!(req.scheduled_time, Some(t(NIGHT)));
    let req = parse_request(&json!({
        "action": "scale-down", "dry_run": true, "note": {"anything": [1, 2]},
        "scheduleArn": "<aws.scheduler.schedule-arn>"
    }))
    .unwrap();
    assert_eq!(req.action, Action::ScaleDown);
    assert!(req.dry_run);
    assert_eq!(req.execution_id, None);
    assert_eq!(req.scheduled_time, None);
    let err = parse_request(
        &json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": "{}"}),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("Scheduled Event"), "{err}");
    assert!(err.contains("set the schedule's input"), "{err}");
}

#[tokio::test]
async fn occurred_at_is_now_without_a_scheduled_time() {
    let r = prod();
    r.scaler_at(a_bit_later)
        .handle(
            json!({"action": "scale-down", "scheduledTime": " "}),
            "req-9",
        )
        .await
        .unwrap();
    let (_, payload, _) = only(r.sent());
    assert_eq!(payload["occurred_at"], "2026-01-05T20:07:00.000Z");
    assert_eq!(payload["source_event_id"], "req-9");
}

// === The window: reconcile, late actions, holidays, holds, the wake-up check ========
//
// prod with `Mon-Fri 07:00-20:00 America/Los_Angeles`; in January the zone is UTC-8, so
// Monday 2026-01-05 12:00 is 20:00Z and 20:00 is 04:00Z the next day.

const WINDOW: &str = "Mon-Fri 07:00-20:00 America/Los_Angeles";
const HOLD: &str = "menotime:offhours";
const MON_NOON: &str = "2026-01-05T20:00:00Z";
const MON_EVENING: &str = "2026-01-06T04:00:00Z";
const TUE_MORNING: &str = "2026-01-06T15:00:00Z";

fn reconcile() -> Value {
    json!({"action": "reconcile"})
}

/// `minutes` after `at`.
fn plus(at: &str, minutes: i64) -> DateTime<Utc> {
    t(at) + chrono::TimeDelta::minutes(minutes)
}

impl Rig {
    fn windowed(self) -> Rig {
        self.with_vars(&[("OFFHOURS_UPTIME", WINDOW)])
    }

    fn scaler_at_time(&self, at: DateTime<Utc>) -> OffhoursScaler<FakeAws, FakeAws, FakeAws> {
        OffhoursScaler::new(
            config(self.env.as_str(), &self.extra),
            self.aws.clone(),
            self.aws.clone(),
            self.aws.clone(),
        )
        .with_clock(move || at)
        .with_function_name(Some(format!("menotime-{}-offhours-scaler", self.env)))
    }

    /// Runs `event` at `at` as request `req`.
    async fn at(&self, at: DateTime<Utc>, event: Value) -> Result<Outcome, Error> {
        self.scaler_at_time(at)
            .handle(event, &format!("req-{}", at.timestamp()))
            .await
    }

    /// A reconcile at `at`: its outcome, the calls and what was sent.
    async fn tick(&self, at: DateTime<Utc>) -> (Outcome, Vec<&'static str>, Vec<Rendered>) {
        let out = self.at(at, reconcile()).await.unwrap();
        (out, self.calls(), self.sent())
    }
}

fn windowed() -> Rig {
    prod().windowed()
}

#[tokio::test]
async fn reconcile_follows_the_window_and_only_reads_when_there_is_nothing_to_do() {
    let r = windowed();

    // Monday noon: day, nothing saved. Two reads, nothing sent.
    let (out, calls, sent) = r.tick(t(MON_NOON)).await;
    assert_eq!(calls, [DS, DST]);
    assert!(sent.is_empty());
    assert_eq!(out.decision, Decision::Skipped);
    assert_eq!(out.services[0].notification, None);
    assert_eq!(
        out.services[0].before.desired, 2,
        "the capacity is always reported"
    );
    assert!(
        out.reason.contains(
            "it is day until Mon 2026-01-05 20:00 America/Los_Angeles, and nothing is saved"
        ),
        "{}",
        out.reason
    );
    let o = serde_json::to_value(&out).unwrap();
    assert_eq!(
        o["window"],
        json!({"uptime": WINDOW, "holidays": [], "up": true, "holiday": null, "next_change": "2026-01-06T04:00:00Z"})
    );

    // Monday 20:00: night, nothing saved: scaled down exactly as scale-down does.
    let (out, calls, sent) = r.tick(t(MON_EVENING)).await;
    assert_eq!(calls, [DS, DST, TAG, RST, US, DTD, PUB]);
    assert_eq!(out.decision, Decision::ScaledDown);
    assert_eq!(out.action, Action::Reconcile);
    assert_eq!(r.capacity(), (1, 4, 1));
    let (rendered, payload, text) = only(sent);
    assert_eq!(
        rendered.subject,
        "[PROD] Scaled menotime-prod-service down for the night: desired 2 -> 1"
    );
    assert_eq!(payload["details"]["action"], "reconcile");
    // The real night: Monday 20:00 to Tuesday 07:00.
    assert_eq!(payload["details"]["night_hours"], 11.0);
    let usd = payload["details"]["estimated_saving_usd"].as_f64().unwrap();
    assert!((usd - 0.54307).abs() < 1e-9, "{usd}");
    assert_contains(
        &text,
        &[
            "Window:",
            WINDOW,
            "Now:",
            "night until Tue 2026-01-06 07:00 America/Los_Angeles",
            "USD 0.54 for this night of 11 h (until Tue 2026-01-06 07:00 America/Los_Angeles, when the window's day begins)",
            // With a window, the way to keep the service up is a hold, not a scale-up.
            r#"--tags '[{"key":"menotime:offhours","value":"skip-until=2026-01-06T15:00:00Z"}]'"#,
        ],
    );
    assert!(!text.contains("aws lambda invoke"), "{text}");

    // Every later run of the night: two reads (is the lowering complete?), nothing
    // sent, even when the autoscaler grows the service.
    for minutes in [5, 60, 600] {
        let (out, calls, sent) = r.tick(plus(MON_EVENING, minutes)).await;
        assert_eq!((calls, sent.len()), (vec![DS, DST], 0), "+{minutes} min");
        assert!(
            out.reason.contains("down for the night already"),
            "{}",
            out.reason
        );
        r.aws.world().service.desired_count = 3;
    }
    assert_eq!(
        r.capacity(),
        (1, 4, 3),
        "the autoscaler's spike at night stands"
    );
    r.aws.world().service.desired_count = 1;

    // Tuesday 07:00: day with a snapshot: restored exactly, a wake-up check begun.
    let (out, calls, sent) = r.tick(t(TUE_MORNING)).await;
    assert_eq!(calls, [DS, DST, TAG, RST, US, UNTAG, DTD, PUB]);
    assert_eq!(out.decision, Decision::ScaledUp);
    assert_eq!(r.capacity(), (2, 4, 2));
    assert_eq!(r.tag(SNAPSHOT), None);
    assert_eq!(
        r.tag(WAKE).as_deref(),
        Some("since=2026-01-06T15:00:00Z desired=2 state=waiting")
    );
    let (_, payload, _) = only(sent);
    assert_eq!(payload["event_type"], "scale.up");
    assert_eq!(payload["details"]["night_hours"], 11.0);

    // 07:05: the task started: the check ends, quietly.
    let (out, calls, sent) = r.tick(plus(TUE_MORNING, 5)).await;
    assert_eq!(calls, [DS, UNTAG, DST]);
    assert!(sent.is_empty());
    assert_eq!(out.wake, Some("reached"));
    assert_eq!(r.tag(WAKE), None);
    let (_, calls, _) = r.tick(plus(TUE_MORNING, 10)).await;
    assert_eq!(calls, [DS, DST]);
}

#[tokio::test]
async fn reconcile_decides_on_the_real_clock_not_the_scheduled_time() {
    let r = windowed();
    // Scheduled for Monday 20:00, delivered (redriven) Tuesday noon: it is day.
    let event = json!({"action": "reconcile", "scheduledTime": MON_EVENING, "executionId": "x1"});
    let out = r.at(t("2026-01-06T20:00:00Z"), event).await.unwrap();
    assert_eq!(out.decision, Decision::Skipped);
    assert_eq!(r.calls(), [DS, DST]);
    assert_eq!(r.capacity(), (2, 4, 2));
    // And the other way round: scheduled for noon, run at night, it lowers.
    let event = json!({"action": "reconcile", "scheduledTime": MON_NOON, "executionId": "x2"});
    let out = r.at(plus(MON_EVENING, 30), event).await.unwrap();
    assert_eq!(out.decision, Decision::ScaledDown);
    let (_, payload, _) = only(r.sent());
    assert_eq!(
        payload["occurred_at"], "2026-01-05T20:00:00.000Z",
        "occurred_at is still the schedule's"
    );
    assert_eq!(payload["details"]["scheduled_time"], MON_NOON);
}

#[tokio::test]
async fn a_lowering_that_died_after_its_snapshot_is_finished_by_the_next_reconcile() {
    let r = windowed();
    r.fail_at(RST);
    let err = r.at(t(MON_EVENING), reconcile()).await.unwrap_err();
    assert_eq!(err.retry(), Retry::Later);
    assert_eq!(r.calls(), [DS, DST, TAG, RST]);
    assert_eq!(r.capacity(), (2, 4, 2));
    let (out, calls, sent) = r.tick(plus(MON_EVENING, 5)).await;
    assert_eq!(calls, [DS, DST, RST, US, DTD, PUB]);
    assert_eq!(out.decision, Decision::ScaledDown);
    assert_eq!(r.capacity(), (1, 4, 1));
    assert_eq!(
        r.tag(SNAPSHOT).as_deref(),
        Some("min=2 max=4 desired=2 suspended=none saved=2026-01-06T04:00:00Z"),
        "the first run's snapshot, kept"
    );
    let (_, _, text) = only(sent);
    assert_contains(&text, &["kept from an earlier run"]);
}

#[tokio::test]
async fn a_missed_scale_down_is_healed_by_the_next_reconcile() {
    let r = windowed();
    // The 20:00 to 23:30 runs never happened (the schedule failed); 23:35 heals it.
    let (out, _, sent) = r.tick(plus(MON_EVENING, 215)).await;
    assert_eq!(out.decision, Decision::ScaledDown);
    assert_eq!(r.capacity(), (1, 4, 1));
    let (_, payload, _) = only(sent);
    // The saving is the rest of the night: 23:35 to 07:00.
    assert_eq!(payload["details"]["night_hours"], 7.42);
}

#[tokio::test]
async fn a_weekend_is_one_night_and_a_holiday_is_night_all_day() {
    // Wednesday 2026-01-07 is a holiday.
    let r = prod().with_vars(&[
        ("OFFHOURS_UPTIME", WINDOW),
        ("OFFHOURS_HOLIDAYS", "2026-01-07"),
    ]);
    // Friday 20:00 PST to Monday 07:00: 59 hours.
    let (out, _, sent) = r.tick(t("2026-01-10T04:00:00Z")).await;
    assert_eq!(out.decision, Decision::ScaledDown);
    let (_, payload, text) = only(sent);
    assert_eq!(payload["details"]["night_hours"], 59.0);
    let usd = payload["details"]["estimated_saving_usd"].as_f64().unwrap();
    assert!((usd - 59.0 * 0.04937).abs() < 1e-9, "{usd}");
    assert_contains(
        &text,
        &["night until Mon 2026-01-12 07:00 America/Los_Angeles"],
    );
    // Saturday and Sunday noon: night, already down.
    for at in ["2026-01-10T20:00:00Z", "2026-01-11T20:00:00Z"] {
        let (out, calls, _) = r.tick(t(at)).await;
        assert_eq!(
            (out.decision, calls),
            (Decision::Skipped, vec![DS, DST]),
            "{at}"
        );
    }
    // Monday 07:00: restored.
    let (out, _, _) = r.tick(t("2026-01-12T15:00:00Z")).await;
    assert_eq!(out.decision, Decision::ScaledUp);
    r.aws.remove_tag(WAKE);

    // Tuesday 20:00 to Thursday 07:00, through the holiday: 35 hours.
    let r = prod().with_vars(&[
        ("OFFHOURS_UPTIME", WINDOW),
        ("OFFHOURS_HOLIDAYS", "2026-01-07"),
    ]);
    let (_, _, sent) = r.tick(t("2026-01-07T04:00:00Z")).await;
    let (_, payload, _) = only(sent);
    assert_eq!(payload["details"]["night_hours"], 35.0);
    // Wednesday noon is night.
    let (out, calls, _) = r.tick(t("2026-01-07T20:00:00Z")).await;
    assert_eq!(calls, [DS, DST]);
    assert!(
        out.reason
            .contains("night (holiday 2026-01-07) until Thu 2026-01-08 07:00"),
        "{}",
        out.reason
    );
    assert_eq!(out.window["holiday"], "2026-01-07");
    // A service restored by hand on the holiday is lowered again at the next run.
    let (out, _, _) = r
        .at(t("2026-01-07T20:10:00Z"), up())
        .await
        .map(|o| (o, (), ()))
        .unwrap();
    assert_eq!(out.decision, Decision::ScaledUp);
    r.calls();
    r.sent();
    let (out, _, _) = r.tick(t("2026-01-07T20:15:00Z")).await;
    assert_eq!(out.decision, Decision::ScaledDown);
}

#[tokio::test]
async fn a_late_scale_down_during_uptime_is_skipped_as_stale_unless_forced() {
    let r = windowed();
    // Monday 20:00's scale-down, redriven Tuesday 10:00.
    let late =
        json!({"action": "scale-down", "scheduledTime": MON_EVENING, "executionId": "e-late"});
    let tuesday_ten = t("2026-01-06T18:00:00Z");
    let out = r.at(tuesday_ten, late.clone()).await.unwrap();
    assert_eq!(out.decision, Decision::Skipped);
    assert_eq!(r.calls(), [DS, DST, PUB]);
    assert_eq!(r.capacity(), (2, 4, 2), "business hours are left alone");
    assert_eq!(r.tag(SNAPSHOT), None);
    let (rendered, payload, text) = only(r.sent());
    assert_eq!(payload["event_type"], "scale.skipped");
    assert_eq!(payload["details"]["skip_reason"], "stale");
    assert_eq!(payload["details"]["scheduled_time"], MON_EVENING);
    assert_eq!(
        rendered.subject,
        "[PROD] Off-hours scale-down skipped: menotime-prod-service arrived during uptime (stale)"
    );
    assert_contains(
        &text,
        &[
            "the scale-down scheduled for 2026-01-06T04:00:00Z arrived during uptime",
            "\"force\": true lowers it anyway",
            "Scheduled for:",
            "Mon 2026-01-05 20:00 America/Los_Angeles",
            "day until Tue 2026-01-06 20:00 America/Los_Angeles",
        ],
    );

    // Forced: lowered, with a warning that the next reconcile restores it.
    let mut forced = late.clone();
    forced["force"] = json!(true);
    let out = r.at(tuesday_ten, forced).await.unwrap();
    assert_eq!(out.decision, Decision::ScaledDown);
    assert!(out.forced);
    assert_eq!(r.capacity(), (1, 4, 1));
    r.calls();
    let (_, payload, text) = only(r.sent());
    assert_eq!(payload["details"]["forced"], true);
    assert_eq!(
        payload["details"]["estimated_saving_usd"],
        Value::Null,
        "no night ahead"
    );
    assert_contains(
        &text,
        &[
            "Action:",
            "scale-down (forced)",
            "It is uptime: the scale-down was forced, and the next reconcile",
        ],
    );
    let (out, _, _) = r.tick(plus("2026-01-06T18:00:00Z", 5)).await;
    assert_eq!(out.decision, Decision::ScaledUp);
    assert_eq!(r.capacity(), (2, 4, 2));

    // At night the same input is honoured, and a scale-up always is.
    r.aws.remove_tag(WAKE);
    let out = r.at(plus(MON_EVENING, 24 * 60), late).await.unwrap();
    assert_eq!(out.decision, Decision::ScaledDown);
}

#[tokio::test]
async fn a_scale_up_at_night_is_honoured_and_says_how_to_keep_it_up() {
    let r = windowed();
    r.tick(t(MON_EVENING)).await;
    let out = r.at(plus(MON_EVENING, 60), up()).await.unwrap();
    assert_eq!(out.decision, Decision::ScaledUp);
    assert_eq!(r.capacity(), (2, 4, 2));
    r.calls();
    let (_, _, text) = only(r.sent());
    assert_contains(
        &text,
        &[
            "It is night (night until Tue 2026-01-06 07:00 America/Los_Angeles): the next reconcile (within 5 minutes) lowers the service again",
            r#"--tags '[{"key":"menotime:offhours","value":"skip-until=2026-01-06T15:00:00Z"}]'"#,
        ],
    );
    // Without a hold the next reconcile lowers it again.
    let (out, _, _) = r.tick(plus(MON_EVENING, 65)).await;
    assert_eq!(out.decision, Decision::ScaledDown);
}

#[tokio::test]
async fn a_hold_keeps_full_capacity_until_it_ends_and_then_its_tag_goes() {
    let r = windowed();
    // For a launch: up until Monday 22:00 PST.
    r.set_tag(HOLD, "skip-until=2026-01-06T06:00:00Z");
    let (out, calls, sent) = r.tick(t(MON_EVENING)).await;
    assert_eq!((calls, sent.len()), (vec![DS, DST], 0));
    assert!(
        out.reason
            .contains("held at full capacity until Mon 2026-01-05 22:00 America/Los_Angeles"),
        "{}",
        out.reason
    );
    // An explicit scale-down is skipped too, and says how to release the hold.
    let out = r.at(t(MON_EVENING), down()).await.unwrap();
    assert_eq!(out.decision, Decision::Skipped);
    r.calls();
    let (_, payload, text) = only(r.sent());
    assert_eq!(payload["details"]["skip_reason"], "held");
    assert_contains(&text, &["aws ecs untag-resource --region us-west-1 --resource-arn arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service --tag-keys menotime:offhours"]);

    // 22:00: the hold has ended: lowered, and its tag removed, saying so.
    let (out, calls, sent) = r.tick(t("2026-01-06T06:00:00Z")).await;
    assert_eq!(calls, [DS, DST, TAG, RST, US, UNTAG, DTD, PUB]);
    assert_eq!(out.decision, Decision::ScaledDown);
    assert!(out.hold_removed);
    assert_eq!(r.tag(HOLD), None);
    let (_, payload, text) = only(sent);
    assert_eq!(payload["details"]["hold_removed"], true);
    assert_contains(
        &text,
        &[
            "Hold:",
            "menotime:offhours=skip-until=2026-01-06T06:00:00Z ended; the tag was removed",
        ],
    );
    assert_eq!(payload["details"]["night_hours"], 9.0, "22:00 to 07:00");

    // Held again while scaled down: restored at once, at night.
    r.set_tag(HOLD, "skip-until=2026-01-06T09:00:00Z");
    let (out, _, sent) = r.tick(t("2026-01-06T06:30:00Z")).await;
    assert_eq!(out.decision, Decision::ScaledUp);
    assert_eq!(r.capacity(), (2, 4, 2));
    let (_, _, text) = only(sent);
    assert_contains(&text, &["Held at full capacity until 2026-01-06T09:00:00Z"]);
    assert!(
        !text.contains("lowers the service again"),
        "held: no warning\n{text}"
    );
    r.aws.remove_tag(WAKE);

    // A hold that ends during the day: nothing to do but remove its tag, and say so.
    r.set_tag(HOLD, "skip-until=2026-01-06T17:00:00Z");
    let (out, calls, sent) = r.tick(t("2026-01-06T17:00:00Z")).await;
    assert_eq!(calls, [DS, DST, UNTAG, PUB]);
    assert_eq!(out.decision, Decision::Skipped);
    assert!(out.hold_removed);
    let (rendered, payload, _) = only(sent);
    assert_eq!(payload["details"]["skip_reason"], "hold_expired");
    assert_eq!(
        rendered.subject,
        "[PROD] Off-hours hold of menotime-prod-service ended: the window decides again"
    );
    assert_eq!(r.tag(HOLD), None);
}

#[tokio::test]
async fn excluded_while_scaled_down_is_restored_when_its_day_begins() {
    let r = windowed();
    r.tick(t(MON_EVENING)).await;
    r.set_tag(HOLD, "skip");
    let (out, calls, _) = r.tick(plus(MON_EVENING, 5)).await;
    assert_eq!(
        (out.decision, calls),
        (Decision::Skipped, vec![DS, DST]),
        "excluded: the reads only"
    );
    assert_eq!(r.capacity(), (1, 4, 1));
    let (out, _, sent) = r.tick(t(TUE_MORNING)).await;
    assert_eq!(out.decision, Decision::ScaledUp);
    assert_eq!(r.capacity(), (2, 4, 2));
    let (_, _, text) = only(sent);
    assert_contains(&text, &["was scaled down when it was excluded"]);
    assert_eq!(r.tag(HOLD).as_deref(), Some("skip"));
    // From then on it is left alone, night or day.
    let (out, calls, _) = r.tick(plus(TUE_MORNING, 13 * 60)).await;
    assert_eq!(out.decision, Decision::Skipped);
    assert!(!calls.contains(&TAG));
    assert_eq!(r.capacity(), (2, 4, 2));
}

#[tokio::test]
async fn the_wake_up_pages_once_when_tasks_do_not_start_and_resolves_when_they_do() {
    let r = windowed();
    r.aws.world().tasks_fail_to_start = true;
    r.aws.world().service.events = vec![menotime_shared::domain::service::ServiceEvent {
        at: Some(t("2026-01-06T15:03:00Z")),
        message: "(service menotime-prod-service) was unable to place a task. Reason: Capacity is unavailable at this time.".into(),
    }];
    r.tick(t(MON_EVENING)).await;
    let (out, _, _) = r.tick(t(TUE_MORNING)).await;
    assert_eq!(out.decision, Decision::ScaledUp);
    assert_eq!(
        r.aws.world().service.running_count,
        1,
        "one task never starts"
    );
    for minutes in [5, 10] {
        let (out, calls, sent) = r.tick(plus(TUE_MORNING, minutes)).await;
        assert_eq!((calls, sent.len()), (vec![DS, DST], 0), "+{minutes}");
        assert_eq!(out.wake, Some("waiting"));
    }

    // 07:15: the deadline. The page recorded (state=paging), published, confirmed.
    let paging = plus(TUE_MORNING, 15);
    let out = r
        .scaler_at_time(paging)
        .handle(reconcile(), "req-page")
        .await
        .unwrap();
    assert_eq!(r.calls(), [DS, TAG, PUB, TAG, DST]);
    assert_eq!(out.wake, Some("paged"));
    assert_eq!(out.notifications, ["scale.failed/trigger"]);
    assert_eq!(
        r.tag(WAKE).as_deref(),
        Some("since=2026-01-06T15:00:00Z desired=2 state=paged at=2026-01-06T15:15:00Z request=req-page")
    );
    let (rendered, payload, text) = only(r.sent());
    assert!(rendered.topic_arn.ends_with(":menotime-prod-oncall"));
    assert_eq!(payload["event_type"], "scale.failed");
    assert_eq!(
        (payload["severity"].as_str(), payload["action"].as_str()),
        (Some("critical"), Some("trigger"))
    );
    assert_eq!(
        payload["dedup_key"],
        "menotime/prod/menotime-prod-service/offhours-wake"
    );
    assert_eq!(
        rendered.subject,
        "[PROD] Wake-up failed: menotime-prod-service runs 1 of 2 tasks 15 min after the scale-up"
    );
    assert_eq!(payload["details"]["target_count"], 2);
    assert_eq!(payload["details"]["running_count"], 1);
    assert_eq!(payload["details"]["scale_up_completed"], true);
    assert_eq!(
        payload["details"]["events"][0]["at"],
        "2026-01-06T15:03:00Z"
    );
    assert_contains(
        &text,
        &[
            "Tue 2026-01-06 07:00 America/Los_Angeles",
            "1 running of 2 desired, 1 pending",
            "completed (desired 2), but ECS has not started the tasks",
            "Capacity is unavailable at this time.",
            "the manual's Task Won't Start",
            "aws ecs describe-services --region us-west-1 --cluster menotime-prod-cluster --services menotime-prod-service --query 'services[0].events[:10]'",
            "aws ecs list-tasks --region us-west-1 --cluster menotime-prod-cluster --service-name menotime-prod-service --desired-status STOPPED",
            "aws logs tail /aws/ecs/menotime-prod",
            "aws logs tail /aws/lambda/menotime-prod-offhours-scaler",
        ],
    );

    // Confirmed sent: later runs never page again, a duplicate of the paging
    // invocation included.
    let (out, calls, sent) = r.tick(plus(TUE_MORNING, 20)).await;
    assert_eq!(
        (calls, sent.len(), out.wake),
        (vec![DS, DST], 0, Some("still_paged"))
    );
    let out = r
        .scaler_at_time(plus(TUE_MORNING, 16))
        .handle(reconcile(), "req-page")
        .await
        .unwrap();
    assert_eq!(out.wake, Some("still_paged"));
    assert_eq!(r.calls(), [DS, DST]);
    assert!(r.sent().is_empty());

    // The tasks start: the page is resolved, on the same key, and the marker goes.
    {
        let mut w = r.aws.world();
        w.service.running_count = 2;
        w.service.pending_count = 0;
    }
    let (out, calls, sent) = r.tick(plus(TUE_MORNING, 40)).await;
    assert_eq!(
        calls,
        [DS, PUB, UNTAG, DST],
        "the resolve before the marker goes"
    );
    assert_eq!(out.wake, Some("reached"));
    assert_eq!(out.notifications, ["scale.up/resolve"]);
    assert_eq!(r.tag(WAKE), None);
    let (rendered, payload, _) = only(sent);
    assert!(rendered.topic_arn.ends_with(":menotime-prod-oncall"));
    assert_eq!(payload["action"], "resolve");
    assert_eq!(
        payload["dedup_key"],
        "menotime/prod/menotime-prod-service/offhours-wake"
    );
    assert_eq!(
        rendered.subject,
        "[PROD] Resolved: menotime-prod-service runs 2 of 2 tasks after the scale-up"
    );
}

/// SNS refusing the page through every attempt of the invocation loses nothing: the
/// page is recorded `state=paging` first, and the next run (a redrive or the next
/// reconcile, with a request id of its own) publishes it and confirms it. A resolve SNS
/// refuses leaves the marker, so the next run sends it.
#[tokio::test]
async fn a_page_or_resolve_sns_refused_is_sent_by_the_next_run_whatever_its_request_id() {
    let r = windowed();
    r.aws.world().tasks_fail_to_start = true;
    r.tick(t(MON_EVENING)).await;
    r.tick(t(TUE_MORNING)).await;
    r.aws.fail_always(PUB);
    let err = r
        .scaler_at_time(plus(TUE_MORNING, 15))
        .handle(reconcile(), "req-page")
        .await
        .unwrap_err();
    assert_eq!(err.retry(), Retry::Later);
    let calls = r.calls();
    assert_eq!(&calls[..2], [DS, TAG], "recorded first");
    assert_eq!(
        calls.last(),
        Some(&DST),
        "the run still sees to its capacity"
    );
    assert!(
        calls[2..calls.len() - 1].iter().all(|c| *c == PUB),
        "{calls:?}"
    );
    assert!(r.sent().is_empty());
    assert_eq!(
        r.tag(WAKE).as_deref(),
        Some("since=2026-01-06T15:00:00Z desired=2 state=paging at=2026-01-06T15:15:00Z request=req-page")
    );

    // SNS is back; the next reconcile comes with its own request id.
    r.aws.heal(PUB);
    let (out, calls, sent) = r.tick(plus(TUE_MORNING, 20)).await;
    assert_eq!(out.wake, Some("resent"));
    assert_eq!(calls, [DS, PUB, TAG, DST]);
    let (rendered, payload, _) = only(sent);
    assert!(rendered.topic_arn.ends_with(":menotime-prod-oncall"));
    assert_eq!(
        (payload["event_type"].as_str(), payload["action"].as_str()),
        (Some("scale.failed"), Some("trigger"))
    );
    assert_eq!(
        r.tag(WAKE).as_deref(),
        Some("since=2026-01-06T15:00:00Z desired=2 state=paged at=2026-01-06T15:15:00Z request=req-page")
    );
    let (out, calls, sent) = r.tick(plus(TUE_MORNING, 25)).await;
    assert_eq!(
        (calls, sent.len(), out.wake),
        (vec![DS, DST], 0, Some("still_paged"))
    );

    // The tasks start, and SNS refuses the resolve: the marker stays for the next run.
    {
        let mut w = r.aws.world();
        w.service.running_count = 2;
        w.service.pending_count = 0;
    }
    r.aws.fail_always(PUB);
    let _ = r.at(plus(TUE_MORNING, 30), reconcile()).await.unwrap_err();
    let calls = r.calls();
    assert_eq!((calls[0], calls.last()), (DS, Some(&DST)), "{calls:?}");
    assert!(
        calls[1..calls.len() - 1].iter().all(|c| *c == PUB),
        "{calls:?}"
    );
    assert!(r.tag(WAKE).is_some());
    r.aws.heal(PUB);
    let (out, calls, sent) = r.tick(plus(TUE_MORNING, 35)).await;
    assert_eq!(calls, [DS, PUB, UNTAG, DST]);
    assert_eq!(out.notifications, ["scale.up/resolve"]);
    assert_eq!(only(sent).1["action"], "resolve");
    assert_eq!(r.tag(WAKE), None);
}

/// An SNS outage that keeps the wake-up page from going out never keeps the service
/// from its capacity: the night still lowers it, and the run fails after, so that the
/// page is tried again.
#[tokio::test]
async fn a_failing_wake_up_page_never_blocks_the_scaling() {
    let r = windowed();
    r.aws.world().tasks_fail_to_start = true;
    r.tick(t(MON_EVENING)).await;
    r.tick(t(TUE_MORNING)).await;
    r.aws.fail_always(PUB);
    // Tuesday evening: the page is still failing, the night begins all the same.
    let err = r
        .at(t("2026-01-07T04:00:00Z"), reconcile())
        .await
        .unwrap_err();
    assert_eq!(err.retry(), Retry::Later);
    assert_eq!(r.capacity().2, 1, "lowered for the night");
    assert!(r.tag(SNAPSHOT).is_some());
    assert!(r.tag(WAKE).unwrap().contains("state=paging"));
}

#[tokio::test]
async fn outside_prod_a_failed_wake_up_warns_the_team_instead_of_paging() {
    let r = rig(Environment::Staging, 2, target(1, 2)).windowed();
    r.aws.world().tasks_fail_to_start = true;
    r.tick(t(MON_EVENING)).await;
    r.tick(t(TUE_MORNING)).await;
    let (_, _, sent) = r.tick(plus(TUE_MORNING, 15)).await;
    let (rendered, payload, _) = only(sent);
    assert!(rendered.topic_arn.ends_with(":menotime-staging-notify"));
    assert_eq!(
        (payload["severity"].as_str(), payload["action"].as_str()),
        (Some("warning"), Some("notify"))
    );
    r.aws.world().service.running_count = 2;
    let (_, _, sent) = r.tick(plus(TUE_MORNING, 20)).await;
    let (rendered, payload, _) = only(sent);
    assert!(rendered.topic_arn.ends_with(":menotime-staging-notify"));
    assert_eq!(
        (payload["event_type"].as_str(), payload["action"].as_str()),
        (Some("scale.up"), Some("notify"))
    );
}

#[tokio::test]
async fn a_scale_up_that_cannot_be_completed_pages_at_the_same_deadline() {
    let r = windowed();
    r.tick(t(MON_EVENING)).await;
    r.aws.fail_always(RST);
    // 07:00: the check begins, then the restore fails (and will at every run).
    let err = r.at(t(TUE_MORNING), reconcile()).await.unwrap_err();
    assert_eq!(err.retry(), Retry::Later);
    assert_eq!(r.calls(), [DS, DST, TAG, RST]);
    assert!(r.tag(SNAPSHOT).is_some());
    assert!(r.tag(WAKE).is_some());
    // The retries never move the deadline.
    let _ = r.at(plus(TUE_MORNING, 5), reconcile()).await.unwrap_err();
    assert_eq!(r.calls(), [DS, DST, RST]);
    // 07:15: paged (then the restore fails again).
    let _ = r.at(plus(TUE_MORNING, 15), reconcile()).await.unwrap_err();
    assert_eq!(r.calls(), [DS, TAG, PUB, TAG, DST, RST]);
    let (_, payload, text) = only(r.sent());
    assert_eq!(payload["details"]["scale_up_completed"], false);
    assert_contains(
        &text,
        &["NOT COMPLETED: the desired count is still 1 of the 2 it should be"],
    );
    // Fixed: the next run restores, and once the tasks run the page is resolved.
    r.aws.heal(RST);
    let (out, _, sent) = r.tick(plus(TUE_MORNING, 20)).await;
    assert_eq!(out.decision, Decision::ScaledUp);
    assert_eq!(only(sent).1["event_type"], "scale.up");
    let (out, _, sent) = r.tick(plus(TUE_MORNING, 25)).await;
    assert_eq!(out.notifications, ["scale.up/resolve"]);
    assert_eq!(only(sent).1["action"], "resolve");
}

#[tokio::test]
async fn a_tag_nobody_can_read_stops_reconcile_and_is_reported_once_an_hour() {
    let r = windowed();
    r.set_tag(HOLD, "skip-until=tomorrow");
    // 20:10: night, but the value may be a hold written wrong: nothing changes, and
    // (not the first run after the change, not the hour's first) nothing is sent.
    let (out, calls, sent) = r.tick(plus(MON_EVENING, 10)).await;
    assert_eq!(
        (out.decision, calls, sent.len()),
        (Decision::Skipped, vec![DS, DST], 0)
    );
    assert!(
        out.reason.contains("`skip-until=tomorrow`"),
        "{}",
        out.reason
    );
    assert_eq!(r.capacity(), (2, 4, 2));
    // 21:00: the hour's reminder.
    let (out, calls, sent) = r.tick(plus(MON_EVENING, 60)).await;
    assert_eq!(out.decision, Decision::Skipped);
    assert_eq!(calls, [DS, DST, PUB]);
    let (rendered, payload, text) = only(sent);
    assert_eq!(payload["details"]["skip_reason"], "unreadable_offhours_tag");
    assert_eq!(rendered.subject, "[PROD] Off-hours reconcile held: the menotime:offhours tag of menotime-prod-service cannot be read");
    assert_contains(&text, &["Reminder:", "skip-until=<UTC time>"]);
    // An explicit scale-down fails, telling the team at once.
    let err = r.at(plus(MON_EVENING, 10), down()).await.unwrap_err();
    assert!(matches!(err, Error::Misconfigured(_)), "{err:?}");
    assert_eq!(r.calls(), [DS, DST, PUB]);
    r.sent();
    // During the day, restoring is still done.
    r.aws.remove_tag(HOLD);
    r.tick(plus(MON_EVENING, 65)).await;
    r.set_tag(HOLD, "skip-until=tomorrow");
    let (out, _, _) = r.tick(t(TUE_MORNING)).await;
    assert_eq!(out.decision, Decision::ScaledUp);

    // An unreadable snapshot: the first run after the window changes says so.
    let r = windowed();
    r.set_tag(SNAPSHOT, "min=2,max=4");
    let (out, calls, sent) = r.tick(t(TUE_MORNING)).await;
    assert_eq!(
        (out.decision, calls),
        (Decision::Skipped, vec![DS, DST, PUB])
    );
    assert_eq!(
        only(sent).1["details"]["skip_reason"],
        "unreadable_snapshot"
    );
    let (_, calls, sent) = r.tick(plus(TUE_MORNING, 5)).await;
    assert_eq!((calls, sent.len()), (vec![DS, DST], 0));
    assert_eq!(r.tag(SNAPSHOT).as_deref(), Some("min=2,max=4"));
}

#[tokio::test]
async fn a_rollout_postpones_the_nights_lowering_to_a_later_run() {
    let r = windowed();
    r.aws.world().service.deployments[0].rollout_state = Some("IN_PROGRESS".into());
    let (out, calls, sent) = r.tick(plus(MON_EVENING, 10)).await;
    assert_eq!(
        (out.decision, calls, sent.len()),
        (Decision::Skipped, vec![DS, DST], 0)
    );
    assert!(out.reason.contains("still rolling out"), "{}", out.reason);
    let (_, calls, sent) = r.tick(plus(MON_EVENING, 60)).await;
    assert_eq!(calls, [DS, DST, PUB]);
    assert_eq!(only(sent).1["details"]["skip_reason"], "deploying");
    r.aws.settle();
    let (out, _, _) = r.tick(plus(MON_EVENING, 65)).await;
    assert_eq!(out.decision, Decision::ScaledDown);
}

#[tokio::test]
async fn a_dry_run_reconcile_says_what_it_would_do_at_the_change_and_once_an_hour() {
    let r = windowed().with_vars(&[("OFFHOURS_UPTIME", WINDOW), ("DRY_RUN", "true")]);
    let (out, calls, sent) = r.tick(t(MON_EVENING)).await;
    assert_eq!(out.decision, Decision::ScaledDown);
    assert_eq!(calls, [DS, DST, DTD, PUB]);
    assert_eq!(
        only(sent).0.subject,
        "[PROD] dry run: would scale menotime-prod-service down for the night"
    );
    let (out, calls, sent) = r.tick(plus(MON_EVENING, 5)).await;
    assert_eq!(
        (out.decision, calls, sent.len()),
        (Decision::ScaledDown, vec![DS, DST], 0)
    );
    assert_eq!(out.services[0].notification, None);
    assert!(out.reason.contains("once an hour"), "{}", out.reason);
    let (_, _, sent) = r.tick(plus(MON_EVENING, 60)).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(r.capacity(), (2, 4, 2));
    assert_eq!(r.tag(SNAPSHOT), None);
}

#[tokio::test]
async fn a_crash_at_any_call_of_reconcile_is_finished_by_the_next_run() {
    // The night's lowering.
    for op in [DS, DST, TAG, RST, US, DTD, PUB] {
        let r = windowed();
        r.fail_at(op);
        let first = r.at(t(MON_EVENING), reconcile()).await;
        assert_eq!(first.is_ok(), op == DTD, "{op}: {first:?}");
        r.tick(plus(MON_EVENING, 5)).await;
        // Died between the minimum and the count: the minimum is the night's, so the
        // count is the autoscaler's to lower (reconcile does not fight it at night).
        let desired = if op == US { 2 } else { 1 };
        assert_eq!(r.capacity(), (1, 4, desired), "{op}");
        assert!(r.tag(SNAPSHOT).is_some(), "{op}");
    }
    // The morning's restore.
    for op in [DS, TAG, DST, RST, US, UNTAG, DTD, PUB] {
        let r = windowed();
        r.tick(t(MON_EVENING)).await;
        r.fail_at(op);
        let first = r.at(t(TUE_MORNING), reconcile()).await;
        assert_eq!(first.is_ok(), op == DTD, "{op}: {first:?}");
        r.tick(plus(TUE_MORNING, 5)).await;
        r.tick(plus(TUE_MORNING, 10)).await;
        assert_eq!(r.capacity(), (2, 4, 2), "{op}");
        assert_eq!(r.tag(SNAPSHOT), None, "{op}");
        assert_eq!(r.tag(WAKE), None, "{op}: the tasks run, the check ended");
    }
}
