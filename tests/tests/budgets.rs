//! Budgets that do not depend on the machine's speed: the AWS calls each scenario
//! makes, counted by a proxy between the built function binary and moto. (Timings
//! are measured by `make bench`, never asserted.) Each path's calls must also fit the
//! worst-case table the SDK's time budget is checked against (`shared/src/sdk.rs`,
//! `PATHS`): a path with more calls than that table says could outlast its Lambda
//! timeout.
//!
//! | scenario | calls |
//! |---|---|
//! | deploy (scan-gate, clean image) | 6 |
//! | block (scan-gate, CRITICAL) | 1 |
//! | defer (scan-gate, approved image during a rollout) | 5 |
//! | resume the deferred image when the rollout completes | 8 |
//! | safety-net block (scan-gate, prod without the circuit breaker) | 3 |
//! | page (deploy-notifier, failed prod deployment) | 5 |
//! | duplicate page | 1 |
//! | resolve (deploy-notifier, completion after a page, starting its watch) | 6 |
//! | steady state with nothing open | 1 |
//! | completion that starts a watch | 3 |
//! | regression page (alarm) | 5 |
//! | automatic rollback (alarm) | 6 |
//! | its resolve | 4 |
//! | a regression escalating an open service alarm (its page, the earlier page's resolve) | 6 |
//! | memory-high warning | 3 |
//! | task failed to start | 4 |
//! | reconcile with nothing to do (offhours-scaler) | 2 reads, nothing sent |
//! | reconcile lowering prod | 7 (6 + Publish) |
//! | reconcile restoring prod | 8 (7 + Publish) |
//!
//! A deploy costs 6: DescribeServices, DescribeTaskDefinition, RegisterTaskDefinition,
//! UpdateService, TagResource (the revision marked deployed, so a rollback of it is
//! never undone by a later event), Publish. A page costs 5: DescribeServices,
//! DescribeTaskDefinition (which image failed), TagResource (the page recorded
//! pending, with the freeze), Publish, TagResource (the page confirmed sent).

use menotime_e2e::offhours::{day_now, holiday_now};
use menotime_e2e::proxy::{Call, Proxy};
use menotime_e2e::*;
use serde_json::json;

struct World {
    moto: Moto,
    seed: Seed,
    proxy: Proxy,
}

impl World {
    async fn new() -> World {
        let moto = Moto::start().await;
        let seed = moto.seed().await;
        let proxy = Proxy::start(&moto.endpoint).await;
        World { moto, seed, proxy }
    }

    async fn start(&self, package: &str, env: Vec<(String, String)>) -> Function {
        let env = with_var(env, "AWS_ENDPOINT_URL", &self.proxy.url);
        Function::start(&build_binary(package, package), package, &env).await
    }

    /// The calls of one invocation.
    async fn calls(&self, f: &mut Function, event: &serde_json::Value, outcome: &str) -> Vec<Call> {
        self.proxy.take_calls();
        let out = f.invoke(event).await.ok();
        assert_eq!(out["outcome"], outcome, "{out}");
        self.proxy.take_calls()
    }

    async fn stop(self, fs: Vec<Function>) {
        for f in fs {
            f.stop().await;
        }
        self.proxy.stop();
        self.moto.stop().await;
    }
}

fn ops(calls: &[Call]) -> Vec<String> {
    Proxy::operations(calls)
}

/// The operation names of the table's path (`ecs:DescribeServices` → `DescribeServices`).
fn path(name: &str) -> Vec<String> {
    let p = menotime_shared::sdk::PATHS
        .iter()
        .find(|p| p.path == name)
        .unwrap_or_else(|| panic!("no path {name:?} in sdk::PATHS"));
    p.calls
        .iter()
        .map(|c| c.split_once(':').map_or(*c, |(_, op)| op).to_owned())
        .collect()
}

/// The calls fit the path's worst case: at most as many, and each one of the path's.
fn within(observed: &[Call], name: &str) {
    let allowed = path(name);
    let ops = ops(observed);
    assert!(
        ops.len() <= allowed.len() && ops.iter().all(|o| allowed.contains(o)),
        "{name}: {ops:?} does not fit {allowed:?}"
    );
    eprintln!("budget: {name}: {} calls {ops:?}", ops.len());
}

#[tokio::test]
async fn aws_calls_per_scenario_stay_within_budget() {
    let w = World::new().await;
    let mut gate = w
        .start("scan-gate", scan_gate_env(&w.moto, &w.seed, "prod"))
        .await;
    let mut notifier = w
        .start("deploy-notifier", notifier_env(&w.moto, &w.seed, "prod"))
        .await;

    let deploy = w
        .calls(&mut gate, &event("scan-clean-v1.2.4.json"), "deployed")
        .await;
    assert_eq!(ops(&deploy), path("deploy a clean image"));

    let block = w
        .calls(&mut gate, &event("scan-critical-v1.2.5.json"), "blocked")
        .await;
    assert_eq!(ops(&block), ["Publish"]);

    let not_routed = w
        .calls(&mut gate, &event("scan-pr-42.json"), "not_routed")
        .await;
    assert!(not_routed.is_empty());

    // An approved image during a rollout waits; the rollout's completion deploys it.
    w.proxy.set_rollout(Some("IN_PROGRESS"));
    let defer = w
        .calls(&mut gate, &event("approval-v1.2.6.json"), "deferred")
        .await;
    assert_eq!(
        ops(&defer),
        [
            "DescribeImageScanFindings",
            "DescribeServices",
            "DescribeTaskDefinition",
            "TagResource",
            "Publish"
        ]
    );
    w.proxy.set_rollout(None);
    let mut completed = event("ecs-deployment-completed.json");
    completed["time"] = json!("2026-11-26T03:00:00Z");
    completed["detail"]["updatedAt"] = json!("2026-11-26T03:00:00Z");
    let resume = w.calls(&mut gate, &completed, "deployed").await;
    assert_eq!(
        ops(&resume),
        [
            "DescribeServices",
            "DescribeImageScanFindings",
            "DescribeTaskDefinition",
            "RegisterTaskDefinition",
            "UpdateService",
            "TagResource",
            "Publish",
            "UntagResource"
        ]
    );
    within(
        &resume,
        "resume a deferred image when the rollout completes",
    );

    let deployment = Aws::new(&w.moto)
        .await
        .deployments(w.seed.env("prod"))
        .await
        .remove(0)
        .0;
    let mut failed = event("ecs-deployment-failed.json");
    failed["detail"]["deploymentId"] = json!(deployment);
    let page = w.calls(&mut notifier, &failed, "paged").await;
    assert_eq!(ops(&page), path("page a failed deployment and freeze"));

    let duplicate = w.calls(&mut notifier, &failed, "duplicate").await;
    assert_eq!(ops(&duplicate), ["DescribeServices"]);

    // Lift the freeze as an operator would, then a deployment completes.
    Aws::new(&w.moto)
        .await
        .untag_service(w.seed.env("prod"), "menotime:deploy-freeze")
        .await;
    completed["time"] = json!("2026-11-26T04:00:00Z");
    completed["detail"]["updatedAt"] = json!("2026-11-26T04:00:00Z");
    let resolve = w.calls(&mut notifier, &completed, "resolved").await;
    // One TagResource starts the watch of the deployment that completed, one
    // resolves the incident.
    assert_eq!(
        ops(&resolve),
        [
            "DescribeServices",
            "TagResource",
            "TagResource",
            "Publish",
            "Publish",
            "TagResource"
        ]
    );
    within(&resolve, "resolve, delivering an undelivered page first");

    let steady = w
        .calls(
            &mut notifier,
            &event("ecs-service-steady-state.json"),
            "ignored",
        )
        .await;
    assert_eq!(ops(&steady), ["DescribeServices"]);

    let oom = w
        .calls(&mut notifier, &event("ecs-task-oom.json"), "notified")
        .await;
    assert_eq!(ops(&oom), ["Publish"]);

    for (name, calls) in [
        ("deploy", &deploy),
        ("block", &block),
        ("defer", &defer),
        ("resume", &resume),
        ("page", &page),
        ("duplicate", &duplicate),
        ("resolve", &resolve),
        ("steady", &steady),
        ("oom", &oom),
    ] {
        eprintln!("calls: {name:<10} {:>2} {:?}", calls.len(), ops(calls));
    }
    // Every call was one the template's policies grant (a call outside them would
    // be AccessDenied on AWS).
    for c in deploy
        .iter()
        .chain(&block)
        .chain(&defer)
        .chain(&resume)
        .chain(&page)
        .chain(&resolve)
    {
        assert!(["ecs", "sns", "ecr"].contains(&c.service.as_str()), "{c:?}");
    }
    w.stop(vec![gate, notifier]).await;
}

/// The post-deployment watch, counted the same way: a completion that starts a watch,
/// a regression page, a duplicate, the resolve, a regression escalating an open service
/// alarm and their one resolve, memory pressure, an alarm of another environment, a
/// task that failed to start and its repeat.
#[tokio::test]
async fn aws_calls_of_the_watch_stay_within_budget() {
    use menotime_e2e::alarms::{alarm, completed};
    let w = World::new().await;
    let mut gate = w
        .start("scan-gate", scan_gate_env(&w.moto, &w.seed, "prod"))
        .await;
    let mut notifier = w
        .start("deploy-notifier", notifier_env(&w.moto, &w.seed, "prod"))
        .await;
    w.calls(&mut gate, &event("scan-clean-v1.2.4.json"), "deployed")
        .await;
    let deployment = Aws::new(&w.moto)
        .await
        .primary_deployment(w.seed.env("prod"))
        .await;

    let watch = w
        .calls(
            &mut notifier,
            &completed("prod", &deployment, "2026-11-26T09:00:00Z"),
            "notified",
        )
        .await;
    assert_eq!(ops(&watch), ["DescribeServices", "TagResource", "Publish"]);
    let fired = alarm("prod", "5xx", "ALARM", "2026-11-26T09:03:00Z", "a-1");
    let page = w.calls(&mut notifier, &fired, "paged").await;
    assert_eq!(
        ops(&page),
        [
            "DescribeServices",
            "DescribeTaskDefinition",
            "TagResource",
            "Publish",
            "TagResource"
        ]
    );
    let duplicate = w.calls(&mut notifier, &fired, "duplicate").await;
    assert_eq!(ops(&duplicate), ["DescribeServices"]);
    let ok = alarm("prod", "5xx", "OK", "2026-11-26T09:12:00Z", "ok-1");
    let resolve = w.calls(&mut notifier, &ok, "resolved").await;
    assert_eq!(
        ops(&resolve),
        ["DescribeServices", "TagResource", "Publish", "TagResource"]
    );
    // A service alarm (db-connections went to ALARM before the deployment completed)
    // is open when latency fires in the deployment's window: the escalation pages the
    // regression and resolves the service alarm's page, one Publish more than a page.
    let db = alarm(
        "prod",
        "db-connections",
        "ALARM",
        "2026-11-26T08:55:00Z",
        "db-1",
    );
    let service_alarm = w.calls(&mut notifier, &db, "paged").await;
    assert_eq!(ops(&service_alarm), ops(&page));
    let latency = alarm("prod", "latency", "ALARM", "2026-11-26T09:20:00Z", "l-1");
    let escalate = w.calls(&mut notifier, &latency, "paged").await;
    assert_eq!(
        ops(&escalate),
        [
            "DescribeServices",
            "DescribeTaskDefinition",
            "TagResource",
            "Publish",
            "Publish",
            "TagResource"
        ]
    );
    within(
        &escalate,
        "escalate an open alarm incident to a regression, roll back, resolve the earlier page",
    );
    let db_ok = alarm(
        "prod",
        "db-connections",
        "OK",
        "2026-11-26T09:25:00Z",
        "db-2",
    );
    let still = w.calls(&mut notifier, &db_ok, "ignored").await;
    assert_eq!(ops(&still), ["DescribeServices", "TagResource"]);
    let latency_ok = alarm("prod", "latency", "OK", "2026-11-26T09:26:00Z", "l-2");
    let resolve_all = w.calls(&mut notifier, &latency_ok, "resolved").await;
    assert_eq!(ops(&resolve_all), ops(&resolve));
    let memory = w
        .calls(
            &mut notifier,
            &event("cloudwatch-alarm-memory-high.json"),
            "notified",
        )
        .await;
    assert_eq!(
        ops(&memory),
        ["DescribeServices", "DescribeTaskDefinition", "Publish"]
    );
    let foreign = w
        .calls(
            &mut notifier,
            &event("bad-alarm-other-environment.json"),
            "ignored",
        )
        .await;
    assert!(foreign.is_empty());
    let start = event("ecs-task-failed-to-start.json");
    let failed = w.calls(&mut notifier, &start, "notified").await;
    assert_eq!(
        ops(&failed),
        ["DescribeServices", "TagResource", "Publish", "TagResource"]
    );
    let mut again = start.clone();
    again["id"] = json!("the-next-task");
    let repeat = w.calls(&mut notifier, &again, "duplicate").await;
    assert_eq!(ops(&repeat), ["DescribeServices"]);
    for c in watch
        .iter()
        .chain(&page)
        .chain(&resolve)
        .chain(&escalate)
        .chain(&failed)
    {
        assert!(["ecs", "sns"].contains(&c.service.as_str()), "{c:?}");
    }
    w.stop(vec![gate, notifier]).await;
}

/// offhours-scaler's reconcile runs every 5 minutes: when there is nothing to do it
/// reads the service and its scalable target, and sends nothing.
#[tokio::test]
async fn reconcile_reads_at_most_twice_when_there_is_nothing_to_do() {
    let w = World::new().await;
    let reconcile = json!({"action": "reconcile"});
    let mut night = w
        .start("offhours-scaler", holiday_now(&w.moto, &w.seed, "prod"))
        .await;
    let lower = w.calls(&mut night, &reconcile, "scaled_down").await;
    assert_eq!(
        ops(&lower),
        [
            "DescribeServices",
            "DescribeScalableTargets",
            "TagResource",
            "RegisterScalableTarget",
            "UpdateService",
            "DescribeTaskDefinition",
            "Publish"
        ]
    );
    let idle_night = w.calls(&mut night, &reconcile, "skipped").await;
    assert_eq!(
        ops(&idle_night),
        ["DescribeServices", "DescribeScalableTargets"]
    );

    let mut day = w
        .start("offhours-scaler", day_now(&w.moto, &w.seed, "prod"))
        .await;
    let restore = w.calls(&mut day, &reconcile, "scaled_up").await;
    assert_eq!(
        ops(&restore),
        [
            "DescribeServices",
            "DescribeScalableTargets",
            "TagResource",
            "RegisterScalableTarget",
            "UpdateService",
            "UntagResource",
            "DescribeTaskDefinition",
            "Publish"
        ]
    );
    // The next run sees the tasks running: the wake-up check ends.
    let reached = w.calls(&mut day, &reconcile, "skipped").await;
    assert_eq!(
        ops(&reached),
        [
            "DescribeServices",
            "UntagResource",
            "DescribeScalableTargets"
        ]
    );
    let idle_day = w.calls(&mut day, &reconcile, "skipped").await;
    assert_eq!(
        ops(&idle_day),
        ["DescribeServices", "DescribeScalableTargets"]
    );
    // Only ECS, Application Auto Scaling and SNS: what the template's role grants.
    for c in lower.iter().chain(&restore).chain(&reached) {
        assert!(
            ["ecs", "application-autoscaling", "sns"].contains(&c.service.as_str()),
            "{c:?}"
        );
    }
    w.stop(vec![night, day]).await;
}
