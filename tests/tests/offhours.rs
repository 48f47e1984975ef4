//! offhours-scaler end to end: the built binary, driven through the Lambda Runtime API
//! with the scheduler's input, against moto's server seeded with the manual's three
//! environments (prod: min 2, max 4, desired 2; staging: min 1, max 2, desired 2; dev:
//! desired 1, no scalable target). Assertions are on what moto holds afterwards (the
//! scalable target, the desired count, the snapshot tag) and on what reached the SQS
//! queue subscribed to the team topic.
//!
//! moto does not change the desired count when min or max change (AWS does), so every
//! desired count asserted here is the one the function set itself.

use serde_json::{json, Value};

use menotime_e2e::offhours::{desired_count, offhours_env, snapshot, Capacities};
use menotime_e2e::*;
use menotime_shared::domain::offhours::{Capacity, ScalableTarget, Suspended};

struct World {
    moto: Moto,
    seed: Seed,
    aws: Aws,
    caps: Capacities,
}

impl World {
    /// `running`: tasks moto reports running per service; a service whose desired count
    /// is higher keeps its deployment IN_PROGRESS. 2 settles every seeded service.
    async fn with_running(running: u32) -> World {
        let moto = Moto::start_with_running(running).await;
        let seed = moto.seed().await;
        let aws = Aws::new(&moto).await;
        let caps = Capacities::new(&moto).await;
        World {
            moto,
            seed,
            aws,
            caps,
        }
    }

    async fn new() -> World {
        Self::with_running(2).await
    }

    async fn scaler(&self, env: &str) -> Function {
        self.scaler_with(env, &[]).await
    }

    async fn scaler_with(&self, env: &str, extra: &[(&str, &str)]) -> Function {
        let mut vars = offhours_env(&self.moto, &self.seed, env);
        for (k, v) in extra {
            vars = with_var(vars, k, v);
        }
        Function::start(
            &build_binary("offhours-scaler", "offhours-scaler"),
            &format!("menotime-{env}-offhours-scaler"),
            &vars,
        )
        .await
    }

    fn env(&self, env: &str) -> &SeedEnv {
        self.seed.env(env)
    }

    async fn capacity(&self, env: &str) -> Capacity {
        self.caps.capacity(&self.aws, self.env(env)).await
    }

    async fn snapshot(&self, env: &str) -> Option<String> {
        snapshot(&self.aws, self.env(env)).await
    }

    async fn notify(&self, env: &str) -> Vec<Delivered> {
        self.aws.drain(&self.env(env).notify_queue_url).await
    }

    async fn oncall(&self, env: &str) -> Vec<Delivered> {
        self.aws.drain(&self.env(env).oncall_queue_url).await
    }

    async fn stop(self, f: Function) {
        f.stop().await;
        self.moto.stop().await;
    }
}

fn cap(min: i32, max: i32, desired: i32) -> Capacity {
    Capacity {
        target: Some(ScalableTarget {
            min,
            max,
            suspended: Suspended::NONE,
        }),
        desired,
    }
}

fn manual(desired: i32) -> Capacity {
    Capacity {
        target: None,
        desired,
    }
}

/// The scheduler's input with its context attributes filled in.
fn scheduled(action: &str, execution: &str) -> Value {
    json!({
        "action": action,
        "executionId": execution,
        "scheduledTime": "2026-11-26T20:00:00Z",
        "scheduleArn": "arn:aws:scheduler:us-west-1:123456789012:schedule/default/menotime-prod-offhours",
    })
}

fn types(msgs: &[Delivered]) -> Vec<&str> {
    msgs.iter().map(|m| m.event_type()).collect()
}

/// The one notification a step sent, checked against docs/reference.md §4.
fn one(msgs: Vec<Delivered>, event_type: &str) -> Delivered {
    assert_eq!(types(&msgs), [event_type], "{msgs:#?}");
    let m = msgs.into_iter().next().unwrap();
    assert_eq!(m.payload["schema"], "menotime.ops/v1");
    assert_eq!(m.payload["severity"], "info");
    assert_eq!(m.payload["action"], "notify");
    assert_eq!(m.attribute("event_type"), Some(event_type));
    assert_eq!(m.attribute("severity"), Some("info"));
    assert!(m.subject.len() <= 99, "{}", m.subject);
    m
}

#[tokio::test]
async fn prod_goes_down_at_night_and_comes_back_exactly_in_the_morning() {
    let w = World::new().await;
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2), "as seeded");
    let mut f = w.scaler("prod").await;

    // The evening.
    let out = f.invoke(&scheduled("scale-down", "exec-down-1")).await.ok();
    assert_eq!(out["outcome"], "scaled_down", "{out}");
    assert_eq!(out["action"], "scale-down");
    assert_eq!(out["dry_run"], false);
    assert_eq!(out["source_event_id"], "exec-down-1");
    let s = &out["services"][0];
    assert_eq!(s["service"], "menotime-prod-service");
    assert_eq!(
        s["before"],
        json!({"min": 2, "max": 4, "desired": 2, "suspended": "none"})
    );
    assert_eq!(
        s["after"],
        json!({"min": 1, "max": 4, "desired": 1, "suspended": "none"})
    );
    assert_eq!(w.capacity("prod").await, cap(1, 4, 1));
    let saved = w.snapshot("prod").await.expect("snapshot saved");
    assert!(
        saved.starts_with("min=2 max=4 desired=2 suspended=none saved=") && !saved.contains('.'),
        "saved to the second: {saved}"
    );
    let m = one(w.notify("prod").await, "scale.down");
    assert_eq!(
        m.subject,
        "[PROD] Scaled menotime-prod-service down for the night: desired 2 -> 1"
    );
    assert_eq!(
        m.payload["dedup_key"],
        "menotime/prod/menotime-prod-service/offhours"
    );
    assert_eq!(m.payload["source_event_id"], "exec-down-1");
    assert_eq!(m.payload["occurred_at"], "2026-11-26T20:00:00.000Z");
    assert_eq!(m.payload["details"]["snapshot"], saved.as_str());
    assert_eq!(m.payload["details"]["task_cpu"], "1024");
    let usd = m.payload["details"]["estimated_saving_usd"]
        .as_f64()
        .unwrap();
    assert!((usd - 0.54307).abs() < 1e-9, "{usd}");
    assert!(w.oncall("prod").await.is_empty(), "scaling pages nobody");

    // The evening again (a redelivery, or a second schedule).
    let out = f.invoke(&scheduled("scale-down", "exec-down-2")).await.ok();
    assert_eq!(out["outcome"], "skipped", "{out}");
    assert_eq!(w.capacity("prod").await, cap(1, 4, 1));
    assert_eq!(
        w.snapshot("prod").await.as_deref(),
        Some(saved.as_str()),
        "never overwritten"
    );
    let m = one(w.notify("prod").await, "scale.skipped");
    assert_eq!(m.payload["details"]["skip_reason"], "already_down");

    // The morning.
    let out = f.invoke(&scheduled("scale-up", "exec-up-1")).await.ok();
    assert_eq!(out["outcome"], "scaled_up", "{out}");
    assert_eq!(
        out["services"][0]["after"],
        json!({"min": 2, "max": 4, "desired": 2, "suspended": "none"})
    );
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    assert_eq!(w.snapshot("prod").await, None, "removed once restored");
    let m = one(w.notify("prod").await, "scale.up");
    assert_eq!(
        m.subject,
        "[PROD] Restored menotime-prod-service for the day: desired 1 -> 2"
    );

    // The morning again: nothing saved, nothing changes.
    let out = f.invoke(&scheduled("scale-up", "exec-up-2")).await.ok();
    assert_eq!(out["outcome"], "skipped", "{out}");
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    let m = one(w.notify("prod").await, "scale.skipped");
    assert_eq!(m.payload["details"]["skip_reason"], "nothing_saved");

    // Other environments were not touched.
    assert_eq!(w.capacity("staging").await, cap(1, 2, 2));
    assert_eq!(w.capacity("dev").await, manual(1));
    w.stop(f).await;
}

#[tokio::test]
async fn dev_without_a_scalable_target_only_changes_its_desired_count() {
    let w = World::new().await;
    assert_eq!(w.capacity("dev").await, manual(1), "as seeded");
    let mut f = w.scaler("dev").await;

    let out = f.invoke(&json!({"action": "scale-down"})).await.ok();
    assert_eq!(out["outcome"], "scaled_down", "{out}");
    assert_eq!(
        out["services"][0]["before"],
        json!({"min": null, "max": null, "desired": 1, "suspended": null})
    );
    assert_eq!(w.capacity("dev").await, manual(0));
    let saved = w.snapshot("dev").await.unwrap();
    assert!(saved.starts_with("desired=1 saved="), "{saved}");
    let m = one(w.notify("dev").await, "scale.down");
    assert!(m.subject.starts_with("[DEV] "), "{}", m.subject);
    // dev's task: 0.25 vCPU, 1 GB; one task for 11 hours.
    let usd = m.payload["details"]["estimated_saving_usd"]
        .as_f64()
        .unwrap();
    assert!(
        (usd - 11.0 * (0.25 * 0.04048 + 0.004445)).abs() < 1e-9,
        "{usd}"
    );

    let out = f.invoke(&json!({"action": "scale-up"})).await.ok();
    assert_eq!(out["outcome"], "scaled_up", "{out}");
    assert_eq!(w.capacity("dev").await, manual(1));
    assert_eq!(w.snapshot("dev").await, None);
    assert_eq!(w.caps.target(w.env("dev")).await, None, "none was created");
    one(w.notify("dev").await, "scale.up");
    w.stop(f).await;
}

#[tokio::test]
async fn an_excluded_service_is_left_alone() {
    let w = World::new().await;
    w.aws
        .tag_service(w.env("prod"), "menotime:offhours", "skip")
        .await;
    let mut f = w.scaler("prod").await;
    for action in ["scale-down", "scale-up"] {
        let out = f.invoke(&json!({ "action": action })).await.ok();
        assert_eq!(out["outcome"], "skipped", "{action}: {out}");
        assert_eq!(w.capacity("prod").await, cap(2, 4, 2), "{action}");
        assert_eq!(w.snapshot("prod").await, None, "{action}");
        let m = one(w.notify("prod").await, "scale.skipped");
        assert_eq!(m.payload["details"]["skip_reason"], "excluded");
        assert!(
            m.subject.contains("excluded by menotime:offhours=skip"),
            "{}",
            m.subject
        );
    }
    w.stop(f).await;
}

#[tokio::test]
async fn a_dry_run_notifies_what_it_would_do_and_changes_nothing() {
    let w = World::new().await;
    let mut f = w.scaler("prod").await;
    let out = f
        .invoke(&json!({"action": "scale-down", "dry_run": true}))
        .await
        .ok();
    assert_eq!(out["outcome"], "scaled_down", "{out}");
    assert_eq!(out["dry_run"], true);
    assert_eq!(out["services"][0]["after"]["min"], 1, "what it would do");
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    assert_eq!(w.snapshot("prod").await, None);
    let m = one(w.notify("prod").await, "scale.down");
    assert_eq!(
        m.subject,
        "[PROD] dry run: would scale menotime-prod-service down for the night"
    );
    assert_eq!(m.payload["details"]["dry_run"], true);
    f.stop().await;

    // DRY_RUN=true in the stack: the input cannot turn it off.
    let mut f = w.scaler_with("prod", &[("DRY_RUN", "true")]).await;
    let out = f
        .invoke(&json!({"action": "scale-down", "dry_run": false}))
        .await
        .ok();
    assert_eq!(out["dry_run"], true, "{out}");
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    assert_eq!(w.snapshot("prod").await, None);
    one(w.notify("prod").await, "scale.down");
    w.stop(f).await;
}

/// A first attempt saved the snapshot and died before lowering anything (the state it
/// leaves is made by hand here); Lambda's retry finds the snapshot, keeps it, and only
/// lowers. The morning restores the day's capacity from it.
#[tokio::test]
async fn a_crash_between_the_snapshot_and_the_lowering_is_finished_by_the_retry() {
    let w = World::new().await;
    let prod = w.env("prod");
    let left = "min=2 max=4 desired=2 suspended=none saved=2026-11-26T20:00:00Z";
    w.aws
        .tag_service(prod, "menotime:offhours-snapshot", left)
        .await;
    assert_eq!(
        w.capacity("prod").await,
        cap(2, 4, 2),
        "nothing lowered yet"
    );
    let mut f = w.scaler("prod").await;

    let out = f.invoke(&scheduled("scale-down", "exec-down-1")).await.ok();
    assert_eq!(out["outcome"], "scaled_down", "{out}");
    let reason = out["services"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("kept the snapshot"), "{reason}");
    assert_eq!(w.capacity("prod").await, cap(1, 4, 1));
    assert_eq!(
        w.snapshot("prod").await.as_deref(),
        Some(left),
        "not overwritten"
    );
    one(w.notify("prod").await, "scale.down");

    let out = f.invoke(&json!({"action": "scale-up"})).await.ok();
    assert_eq!(out["outcome"], "scaled_up", "{out}");
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    assert_eq!(w.snapshot("prod").await, None);
    w.stop(f).await;
}

/// staging (min 1, max 2, desired 2) with dynamic scale-in suspended by an operator:
/// the night lowers only the desired count (its minimum already is the night's), and the
/// morning gives back the suspended state even if someone changed it at night.
#[tokio::test]
async fn the_suspended_state_survives_the_night_through_application_auto_scaling() {
    let w = World::new().await;
    let staging = w.env("staging");
    let scale_in_suspended = ScalableTarget {
        min: 1,
        max: 2,
        suspended: Suspended {
            dynamic_in: true,
            dynamic_out: false,
            scheduled: false,
        },
    };
    w.caps.set_target(staging, &scale_in_suspended).await;
    let mut f = w.scaler("staging").await;

    let out = f.invoke(&json!({"action": "scale-down"})).await.ok();
    assert_eq!(out["outcome"], "scaled_down", "{out}");
    assert_eq!(out["services"][0]["before"]["suspended"], "in");
    let saved = w.snapshot("staging").await.unwrap();
    assert!(
        saved.starts_with("min=1 max=2 desired=2 suspended=in saved="),
        "{saved}"
    );
    assert_eq!(w.caps.target(staging).await, Some(scale_in_suspended));
    assert_eq!(desired_count(&w.aws, staging).await, 1);

    // At night someone resumes scale-in.
    w.caps
        .set_target(
            staging,
            &ScalableTarget {
                suspended: Suspended::NONE,
                ..scale_in_suspended
            },
        )
        .await;
    let out = f.invoke(&json!({"action": "scale-up"})).await.ok();
    assert_eq!(out["outcome"], "scaled_up", "{out}");
    assert_eq!(w.caps.target(staging).await, Some(scale_in_suspended));
    assert_eq!(desired_count(&w.aws, staging).await, 2);
    assert_eq!(w.snapshot("staging").await, None);
    w.stop(f).await;
}

#[tokio::test]
async fn a_deployment_in_progress_fails_the_scale_down_for_a_retry() {
    // One task running for prod's two: its deployment stays IN_PROGRESS.
    let w = World::with_running(1).await;
    let mut f = w.scaler("prod").await;
    let (error_type, message) = f.invoke(&json!({"action": "scale-down"})).await.err();
    assert_eq!(error_type, "RetryLater", "{message}");
    assert!(message.contains("still rolling out"), "{message}");
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    assert_eq!(w.snapshot("prod").await, None);
    let m = one(w.notify("prod").await, "scale.skipped");
    assert_eq!(m.payload["details"]["skip_reason"], "deploying");
    w.stop(f).await;
}

#[tokio::test]
async fn anything_but_the_schedulers_input_is_rejected() {
    let w = World::new().await;
    let mut f = w.scaler("prod").await;
    for event in [
        json!({"action": "scale_down"}),
        json!({"action": "scale-down", "dry_run": "yes"}),
        json!(["scale-down"]),
        json!({
            "version": "0", "id": "5b0fdd2b-0000-4000-8000-000000000000",
            "detail-type": "Scheduled Event", "source": "aws.scheduler",
            "account": "123456789012", "time": "2026-11-26T20:00:00Z", "region": "us-west-1",
            "resources": ["arn:aws:scheduler:us-west-1:123456789012:schedule/default/x"],
            "detail": "{}"
        }),
    ] {
        let (error_type, message) = f.invoke(&event).await.err();
        assert_eq!(error_type, "RejectedEvent", "{event}: {message}");
        assert!(
            message.contains(r#"{"action": "scale-down"} or {"action": "scale-up"}"#),
            "{message}"
        );
    }
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    assert!(w.notify("prod").await.is_empty());
    w.stop(f).await;
}

#[tokio::test]
async fn prod_cannot_be_configured_below_one_task() {
    let moto = Moto::start().await;
    let seed = moto.seed().await;
    let bin = build_binary("offhours-scaler", "offhours-scaler");
    for var in ["OFFHOURS_MIN_CAPACITY", "OFFHOURS_DESIRED_COUNT"] {
        let vars = with_var(offhours_env(&moto, &seed, "prod"), var, "0");
        let (code, output) = runtime::run_to_exit(&bin, &vars).await;
        assert_eq!(code, Some(2), "{output}");
        let line = output
            .lines()
            .find(|l| l.contains("configuration error"))
            .unwrap_or_default();
        assert!(line.contains(var), "{var}: {output}");
    }
    moto.stop().await;
}
