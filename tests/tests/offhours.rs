//! offhours-scaler end to end: the built binary, driven through the Lambda Runtime API
//! with the scheduler's input, against moto's server seeded with the manual's three
//! environments (prod: min 2, max 4, desired 2; staging: min 1, max 2, desired 2; dev:
//! desired 1, no scalable target). Assertions are on what moto holds afterwards (the
//! scalable target, the desired count, the off-hours tags) and on what reached the SQS
//! queues subscribed to the team and on-call topics.
//!
//! The binary decides on the real clock, so the window makes *now* day or night:
//! `Mon-Sun 00:00-24:00 UTC` is day whenever the test runs, and the same with
//! yesterday, today and tomorrow as holidays is night (the holiday rule at work). The
//! weekday windows, clock changes and weekends are the handler's and the window's unit
//! tests, with a clock of their own.
//!
//! moto does not change the desired count when min or max change (AWS does), so every
//! desired count asserted here is the one the function set itself. moto reports the
//! desired count running as soon as it is set; a service that cannot start its tasks
//! is made by starting moto with fewer running (`MOTO_ECS_SERVICE_RUNNING`).

use serde_json::{json, Value};

use menotime_e2e::offhours::{
    day_now, desired_count, holiday_now, minutes_from_now, offhours_env, running_count,
    set_desired_count, snapshot, windowed_env, Capacities,
};
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
        self.start(env, vars).await
    }

    async fn start(&self, env: &str, vars: Vec<(String, String)>) -> Function {
        Function::start(
            &build_binary("offhours-scaler", "offhours-scaler"),
            &format!("menotime-{env}-offhours-scaler"),
            &vars,
        )
        .await
    }

    /// The scaler of `env` for which it is day now.
    async fn by_day(&self, env: &str) -> Function {
        self.start(env, day_now(&self.moto, &self.seed, env)).await
    }

    /// The scaler of `env` for which it is night now (a holiday).
    async fn by_night(&self, env: &str) -> Function {
        self.start(env, holiday_now(&self.moto, &self.seed, env))
            .await
    }

    async fn tag(&self, env: &str, key: &str) -> Option<String> {
        self.aws.service_tag(self.env(env), key).await
    }

    async fn set_tag(&self, env: &str, key: &str, value: &str) {
        self.aws.tag_service(self.env(env), key, value).await
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
    // Without a window the night's length is unknown: the cost per hour is given.
    assert_eq!(m.payload["details"]["estimated_saving_usd"], Value::Null);
    let per_hour = m.payload["details"]["saving_usd_per_hour"]
        .as_f64()
        .unwrap();
    assert!((per_hour - 0.04937).abs() < 1e-9, "{per_hour}");
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
    // A task had to start: the wake-up check began (moto starts it at once).
    let wake = w.tag("prod", "menotime:offhours-wake").await.unwrap();
    assert!(wake.ends_with(" desired=2 state=waiting"), "{wake}");
    let m = one(w.notify("prod").await, "scale.up");
    assert_eq!(
        m.subject,
        "[PROD] Restored menotime-prod-service for the day: desired 1 -> 2"
    );

    // The morning again: the task runs, so the check ends; nothing saved, nothing
    // changes.
    let out = f.invoke(&scheduled("scale-up", "exec-up-2")).await.ok();
    assert_eq!(out["outcome"], "skipped", "{out}");
    assert_eq!(out["wake"], "reached");
    assert_eq!(w.tag("prod", "menotime:offhours-wake").await, None);
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
    // dev's task: 0.25 vCPU, 1 GB; one task, per hour of night.
    let per_hour = m.payload["details"]["saving_usd_per_hour"]
        .as_f64()
        .unwrap();
    assert!(
        (per_hour - (0.25 * 0.04048 + 0.004445)).abs() < 1e-9,
        "{per_hour}"
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
            message.contains(
                r#"{"action": "scale-down"}, {"action": "scale-up"} or {"action": "reconcile"}"#
            ),
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

// --- the window ----------------------------------------------------------------------

/// The one message a step sent to on-call.
fn one_page(msgs: Vec<Delivered>, event_type: &str, action: &str) -> Delivered {
    assert_eq!(types(&msgs), [event_type], "{msgs:#?}");
    let m = msgs.into_iter().next().unwrap();
    assert_eq!(m.payload["action"], action);
    assert_eq!(m.attribute("action"), Some(action));
    m
}

#[tokio::test]
async fn reconcile_lowers_by_night_restores_by_day_and_otherwise_does_nothing() {
    let w = World::new().await;
    // Night (today is a holiday): lowered exactly as a scale-down.
    let mut night = w.by_night("prod").await;
    let out = night.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["outcome"], "scaled_down", "{out}");
    assert_eq!(out["action"], "reconcile");
    assert_eq!(out["window"]["up"], false);
    assert!(out["window"]["holiday"].is_string(), "{out}");
    assert_eq!(w.capacity("prod").await, cap(1, 4, 1));
    assert!(w.snapshot("prod").await.is_some());
    let m = one(w.notify("prod").await, "scale.down");
    assert_eq!(m.payload["details"]["action"], "reconcile");
    // The night lasts until the holidays end, the day after tomorrow at 00:00 UTC.
    let hours = m.payload["details"]["night_hours"].as_f64().unwrap();
    assert!(hours > 24.0 && hours <= 48.0, "{hours}");
    assert!(
        m.payload["details"]["estimated_saving_usd"]
            .as_f64()
            .unwrap()
            > 1.0
    );

    // Again: nothing to do, nothing sent.
    let out = night.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["outcome"], "skipped", "{out}");
    assert_eq!(out["services"][0]["notification"], Value::Null);
    assert!(w.notify("prod").await.is_empty());
    assert_eq!(w.capacity("prod").await, cap(1, 4, 1));
    night.stop().await;

    // Day: restored exactly; the wake-up check ends at the next run.
    let mut day = w.by_day("prod").await;
    let out = day.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["outcome"], "scaled_up", "{out}");
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    assert_eq!(w.snapshot("prod").await, None);
    one(w.notify("prod").await, "scale.up");
    for expected_wake in [json!("reached"), Value::Null] {
        let out = day.invoke(&json!({"action": "reconcile"})).await.ok();
        assert_eq!(out["outcome"], "skipped", "{out}");
        assert_eq!(out["wake"], expected_wake);
        assert!(w.notify("prod").await.is_empty());
    }
    assert!(w.oncall("prod").await.is_empty());
    // dev and staging were not touched.
    assert_eq!(w.capacity("staging").await, cap(1, 2, 2));
    assert_eq!(w.capacity("dev").await, manual(1));
    w.stop(day).await;
}

#[tokio::test]
async fn a_late_scale_down_during_uptime_is_skipped_as_stale_and_force_lowers_it() {
    let w = World::new().await;
    let mut f = w.by_day("prod").await;
    let late = scheduled("scale-down", "exec-late");
    let out = f.invoke(&late).await.ok();
    assert_eq!(out["outcome"], "skipped", "{out}");
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    assert_eq!(w.snapshot("prod").await, None);
    let m = one(w.notify("prod").await, "scale.skipped");
    assert_eq!(m.payload["details"]["skip_reason"], "stale");
    assert_eq!(
        m.payload["details"]["scheduled_time"],
        "2026-11-26T20:00:00Z"
    );
    assert!(
        m.subject.contains("arrived during uptime (stale)"),
        "{}",
        m.subject
    );

    let mut forced = late.clone();
    forced["force"] = json!(true);
    let out = f.invoke(&forced).await.ok();
    assert_eq!(out["outcome"], "scaled_down", "{out}");
    assert_eq!(out["forced"], true);
    assert_eq!(w.capacity("prod").await, cap(1, 4, 1));
    one(w.notify("prod").await, "scale.down");
    // The next reconcile gives the day back.
    let out = f.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["outcome"], "scaled_up", "{out}");
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    w.stop(f).await;
}

#[tokio::test]
async fn a_hold_keeps_the_service_up_at_night_and_its_tag_goes_once_it_ends() {
    let w = World::new().await;
    let mut f = w.by_night("prod").await;
    // Held for the next hour: left at full capacity.
    w.set_tag(
        "prod",
        "menotime:offhours",
        &format!("skip-until={}", minutes_from_now(60)),
    )
    .await;
    let out = f.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["outcome"], "skipped", "{out}");
    assert!(
        out["reason"]
            .as_str()
            .unwrap()
            .contains("held at full capacity"),
        "{out}"
    );
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    let out = f.invoke(&json!({"action": "scale-down"})).await.ok();
    assert_eq!(out["outcome"], "skipped", "{out}");
    let m = one(w.notify("prod").await, "scale.skipped");
    assert_eq!(m.payload["details"]["skip_reason"], "held");

    // The hold has ended: lowered, and the tag removed, saying so.
    let ended = minutes_from_now(-1);
    w.set_tag("prod", "menotime:offhours", &format!("skip-until={ended}"))
        .await;
    let out = f.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["outcome"], "scaled_down", "{out}");
    assert_eq!(out["hold_removed"], true);
    assert_eq!(w.tag("prod", "menotime:offhours").await, None);
    let m = one(w.notify("prod").await, "scale.down");
    assert_eq!(m.payload["details"]["hold_removed"], true);

    // Held while scaled down: restored at once, at night.
    w.set_tag(
        "prod",
        "menotime:offhours",
        &format!("skip-until={}", minutes_from_now(60)),
    )
    .await;
    let out = f.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["outcome"], "scaled_up", "{out}");
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    one(w.notify("prod").await, "scale.up");
    w.stop(f).await;
}

#[tokio::test]
async fn excluded_while_scaled_down_is_restored_when_its_day_begins() {
    let w = World::new().await;
    let mut night = w.by_night("prod").await;
    night.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(w.capacity("prod").await, cap(1, 4, 1));
    w.set_tag("prod", "menotime:offhours", "skip").await;
    let out = night.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["outcome"], "skipped", "{out}");
    assert_eq!(w.capacity("prod").await, cap(1, 4, 1));
    night.stop().await;
    w.notify("prod").await;

    let mut day = w.by_day("prod").await;
    let out = day.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["outcome"], "scaled_up", "{out}");
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    assert_eq!(w.snapshot("prod").await, None);
    assert_eq!(
        w.tag("prod", "menotime:offhours").await.as_deref(),
        Some("skip")
    );
    let m = one(w.notify("prod").await, "scale.up");
    assert!(
        m.payload["details"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("scaled down when it was excluded"),
        "{}",
        m.payload["details"]["notes"]
    );
    w.stop(day).await;
}

/// moto reports one task running for prod's two: a wake-up that never completes.
#[tokio::test]
async fn a_wake_up_that_never_completes_pages_and_resolves_when_the_tasks_run() {
    let w = World::with_running(1).await;
    let prod = w.env("prod");
    // The night's state, as a scale-down left it (made by hand: prod's deployment is
    // in progress with one task, so a scale-down would wait for it).
    w.set_tag(
        "prod",
        "menotime:offhours-snapshot",
        "min=2 max=4 desired=2 suspended=none saved=2026-11-26T04:00:00Z",
    )
    .await;
    w.caps
        .set_target(
            prod,
            &ScalableTarget {
                min: 1,
                max: 4,
                suspended: Suspended::NONE,
            },
        )
        .await;
    assert_eq!(running_count(&w.aws, prod).await, 1);
    let mut f = w.by_day("prod").await;
    let out = f.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["outcome"], "scaled_up", "{out}");
    let wake = w.tag("prod", "menotime:offhours-wake").await.unwrap();
    assert!(wake.ends_with(" desired=2 state=waiting"), "{wake}");
    w.notify("prod").await;
    // Within the deadline: waiting, nothing sent.
    let out = f.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["wake"], "waiting", "{out}");
    assert!(w.oncall("prod").await.is_empty());

    // The deadline passed (the marker is moved 20 minutes back rather than waited for).
    w.set_tag(
        "prod",
        "menotime:offhours-wake",
        &format!("since={} desired=2 state=waiting", minutes_from_now(-20)),
    )
    .await;
    let out = f.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["wake"], "paged", "{out}");
    let page = one_page(w.oncall("prod").await, "scale.failed", "trigger");
    assert_eq!(page.payload["severity"], "critical");
    assert_eq!(
        page.payload["dedup_key"],
        "menotime/prod/menotime-prod-service/offhours-wake"
    );
    assert_eq!(page.payload["details"]["running_count"], 1);
    assert_eq!(page.payload["details"]["target_count"], 2);
    assert!(
        page.subject
            .starts_with("[PROD] Wake-up failed: menotime-prod-service runs 1 of 2 tasks"),
        "{}",
        page.subject
    );
    let marker = w.tag("prod", "menotime:offhours-wake").await.unwrap();
    assert!(
        marker.contains(" state=paged at="),
        "confirmed after the page: {marker}"
    );
    // Never twice.
    let out = f.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["wake"], "still_paged", "{out}");
    assert!(w.oncall("prod").await.is_empty());

    // The tasks run at last: resolved on the same key, and the marker goes.
    set_desired_count(&w.aws, prod, 2).await;
    let out = f.invoke(&json!({"action": "reconcile"})).await.ok();
    assert_eq!(out["wake"], "reached", "{out}");
    let resolve = one_page(w.oncall("prod").await, "scale.up", "resolve");
    assert_eq!(resolve.payload["dedup_key"], page.payload["dedup_key"]);
    assert_eq!(w.tag("prod", "menotime:offhours-wake").await, None);
    w.stop(f).await;
}

#[tokio::test]
async fn the_templates_input_sent_by_hand_is_rejected_and_changes_nothing() {
    let template = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let input = template
        .lines()
        .map(str::trim)
        .filter(|l| l.contains(r#""action": "reconcile""#))
        .find_map(|l| l.strip_prefix("Input: '"))
        .and_then(|l| l.strip_suffix('\''))
        .expect("the reconcile schedule's Input in template.yaml");
    let input: Value = serde_json::from_str(input).unwrap();
    assert_eq!(input["action"], "reconcile", "{input}");
    let w = World::new().await;
    let mut f = w.by_night("prod").await;
    let (error_type, message) = f.invoke(&input).await.err();
    assert_eq!(error_type, "RejectedEvent", "{message}");
    assert!(message.contains("placeholder"), "{message}");
    assert!(message.contains("Nothing was changed"), "{message}");
    assert_eq!(w.capacity("prod").await, cap(2, 4, 2));
    assert!(w.notify("prod").await.is_empty());
    // Filled in, as the scheduler does, it works.
    let mut filled = input.clone();
    filled["executionId"] = json!("d32c5kddcf5bb8c3");
    filled["scheduledTime"] = json!(minutes_from_now(0));
    let out = f.invoke(&filled).await.ok();
    assert_eq!(out["outcome"], "scaled_down", "{out}");
    assert_eq!(out["source_event_id"], "d32c5kddcf5bb8c3");
    w.stop(f).await;
}

#[tokio::test]
async fn reconcile_without_a_window_is_refused_and_a_bad_window_stops_the_function() {
    let w = World::new().await;
    let mut f = w.scaler("prod").await;
    let (error_type, message) = f.invoke(&json!({"action": "reconcile"})).await.err();
    assert_eq!(error_type, "Misconfigured", "{message}");
    assert!(message.contains("OFFHOURS_UPTIME"), "{message}");
    f.stop().await;

    let bin = build_binary("offhours-scaler", "offhours-scaler");
    for (uptime, holidays, timeout, var) in [
        ("Mon-Fri 7:00-20:00 UTC", "", "", "OFFHOURS_UPTIME"),
        (
            "Mon-Fri 07:00-20:00 Mars/Olympus",
            "",
            "",
            "OFFHOURS_UPTIME",
        ),
        (
            "Mon-Fri 07:00-20:00 UTC",
            "2026-13-01",
            "",
            "OFFHOURS_HOLIDAYS",
        ),
        (
            "Mon-Fri 07:00-20:00 UTC",
            "",
            "0",
            "OFFHOURS_WAKE_TIMEOUT_MINUTES",
        ),
    ] {
        let mut vars = windowed_env(&w.moto, &w.seed, "prod", uptime, holidays);
        if !timeout.is_empty() {
            vars = with_var(vars, "OFFHOURS_WAKE_TIMEOUT_MINUTES", timeout);
        }
        let (code, output) = runtime::run_to_exit(&bin, &vars).await;
        assert_eq!(code, Some(2), "{var}: {output}");
        let line = output
            .lines()
            .find(|l| l.contains("configuration error"))
            .unwrap_or_default();
        assert!(line.contains(var), "{var}: {output}");
    }
    w.moto.stop().await;
}

/// `make demo`'s week runs the scaler's handler in-process, with the SDK configuration
/// of `menotime_e2e::offhours::sdk_config`: a reconcile through it reaches moto and
/// lowers prod on a holiday, as the Lambda binary does.
#[tokio::test]
async fn the_demos_in_process_scaler_reaches_moto() {
    use menotime_e2e::offhours::InProcessScaler;
    let w = World::new().await;
    let prod = w.seed.env("prod").clone();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let vars = windowed_env(&w.moto, &w.seed, "prod", "Mon-Sun 00:00-24:00 UTC", &today);
    let scaler = InProcessScaler::new(&vars, &w.moto.endpoint, chrono::Utc::now()).await;
    let out = scaler
        .invoke(&json!({"action": "reconcile"}), "in-process-1")
        .await
        .unwrap_or_else(|(kind, message)| panic!("{kind}: {message}"));
    assert_eq!(out["outcome"], "scaled_down", "{out}");
    assert_eq!(desired_count(&w.aws, &prod).await, 1);
    w.moto.stop().await;
}
