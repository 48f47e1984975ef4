//! offhours-scaler's handler over in-memory fakes of ECS, Application Auto Scaling and
//! SNS: every decision path, the AWS calls each one makes (in order), crashes at any
//! call finished by the retry, and what the notifications say.
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
const NIGHT: &str = "2026-01-05T20:00:00Z";
const LATER: &str = "2026-01-05T20:07:00Z";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn at_night() -> DateTime<Utc> {
    t(NIGHT)
}

fn a_bit_later() -> DateTime<Utc> {
    t(LATER)
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
    let usd = s["estimated_saving_usd"].as_f64().unwrap();
    assert!(
        (usd - 0.54307).abs() < 1e-9,
        "1 task of 1 vCPU/2 GB for 11 h: {usd}"
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
    assert_eq!(payload["details"]["night_hours"], 11.0);
    assert_contains(
        &text,
        &[
            "Before:",
            "min=2 max=4 desired=2",
            "After:",
            "min=1 max=4 desired=1",
            "USD 0.54 per night",
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

    // The morning: exactly what was saved, then the snapshot removed.
    let out = r.run(scheduled("scale-up")).await.unwrap();
    assert_eq!(r.calls(), [DS, DST, RST, US, UNTAG, DTD, PUB]);
    assert_eq!(out.decision, Decision::ScaledUp);
    assert_eq!(r.capacity(), (2, 4, 2));
    assert_eq!(r.tag(SNAPSHOT), None);
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
    assert_contains(
        &text,
        &[
            "Night's estimated saving: USD 0.54",
            "restored and removed min=2 max=4 desired=2 suspended=none saved=2026-01-05T20:00:00Z",
        ],
    );

    // A second morning run: nothing saved, nothing changes.
    let out = r.run(up()).await.unwrap();
    assert_eq!(r.calls(), [DS, DST, PUB]);
    assert_eq!(out.decision, Decision::Skipped);
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
        [DS, DST, RST, US, UNTAG, PUB],
        "no task was removed at night: no estimate"
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
    assert_eq!(r.calls(), [DS, DST, US, UNTAG, DTD, PUB]);
    assert_eq!(out.decision, Decision::ScaledUp);
    assert_eq!(r.capacity(), (-1, -1, 1));
    assert_eq!(r.tag(SNAPSHOT), None);
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
async fn excluded_while_scaled_down_warns_with_the_restore_commands() {
    let r = prod();
    r.run(down()).await.unwrap();
    r.calls();
    r.sent();
    r.set_tag("menotime:offhours", "skip");
    let out = r.run(up()).await.unwrap();
    assert_eq!(out.decision, Decision::Skipped);
    assert_eq!(r.calls(), [DS, DST, PUB]);
    assert_eq!(r.capacity(), (1, 4, 1), "the operator owns it now");
    assert!(r.tag(SNAPSHOT).is_some());
    let (_, _, text) = only(r.sent());
    assert_contains(
        &text,
        &[
            "Warning:",
            "the scaler will not restore it",
            "aws application-autoscaling register-scalable-target --region us-west-1 --service-namespace ecs --scalable-dimension ecs:service:DesiredCount --resource-id service/menotime-prod-cluster/menotime-prod-service --min-capacity 2 --max-capacity 4 --suspended-state DynamicScalingInSuspended=false,DynamicScalingOutSuspended=false,ScheduledScalingSuspended=false",
            "aws ecs update-service --region us-west-1 --cluster menotime-prod-cluster --service menotime-prod-service --desired-count 2",
            "aws ecs untag-resource --region us-west-1 --resource-arn arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service --tag-keys menotime:offhours-snapshot",
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
    for op in [RST, US, UNTAG, DTD, PUB] {
        let r = prod();
        r.run(down()).await.unwrap();
        r.calls();
        r.fail_at(op);
        let first = r.run(up()).await;
        assert_eq!(first.is_ok(), op == DTD, "{op}: {first:?}");
        // The snapshot goes last: it survives any failure before the untag.
        assert_eq!(r.tag(SNAPSHOT).is_some(), op != DTD && op != PUB, "{op}");
        r.calls();
        let out = r.run(up()).await.unwrap();
        assert_eq!(r.capacity(), (2, 4, 2), "{op}");
        assert_eq!(r.tag(SNAPSHOT), None, "{op}");
        let (calls, outcome) = match op {
            RST => (vec![DS, DST, RST, US, UNTAG, DTD, PUB], Decision::ScaledUp),
            US => (vec![DS, DST, US, UNTAG, DTD, PUB], Decision::ScaledUp),
            UNTAG => (vec![DS, DST, UNTAG, PUB], Decision::ScaledUp),
            // The first run restored and untagged; only its notification was lost.
            _ => (vec![DS, DST, PUB], Decision::Skipped),
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
        json!({"action": "scale-down", "dry_run": null}),
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
            text.contains(r#"{"action": "scale-down"} or {"action": "scale-up"}"#),
            "{event}: {text}"
        );
        assert!(text.ends_with("Nothing was changed"), "{text}");
        assert!(r.calls().is_empty(), "{event}");
    }
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
        "scheduledTime": "not a time", "executionId": 42
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
            json!({"action": "scale-down", "scheduledTime": "yesterday"}),
            "req-9",
        )
        .await
        .unwrap();
    let (_, payload, _) = only(r.sent());
    assert_eq!(payload["occurred_at"], "2026-01-05T20:07:00.000Z");
    assert_eq!(payload["source_event_id"], "req-9");
}
