//! Budgets that do not depend on the machine's speed: the AWS calls each scenario
//! makes, counted by a proxy between the built function binary and moto. (Timings
//! are measured by `make bench`, never asserted.)
//!
//! | scenario | budget | issue 5's target |
//! |---|---|---|
//! | deploy (scan-gate, clean image) | 5 | 5 |
//! | block (scan-gate, CRITICAL) | 1 | 1 |
//! | page (deploy-notifier, failed prod deployment) | 4 | 2 |
//! | duplicate page | 1 | - |
//! | resolve (deploy-notifier, completion after a page) | 5 | - |
//! | steady state with nothing open | 1 | - |
//! | completion that starts a watch | 3 | - |
//! | regression page (alarm) | 4 | - |
//! | its resolve | 3 | - |
//! | memory-high warning | 3 | - |
//! | task failed to start | 3 | - |
//!
//! A page costs 4, not 2: DescribeServices (is this a duplicate? what runs?),
//! DescribeTaskDefinition (which image failed), one TagResource (freeze and incident
//! marker together), Publish. Without the image in the page it would be 3; without
//! duplicate detection and the freeze, 1. The README's Performance section says so.

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
    assert_eq!(
        ops(&deploy),
        [
            "DescribeServices",
            "DescribeTaskDefinition",
            "RegisterTaskDefinition",
            "UpdateService",
            "Publish"
        ]
    );
    assert!(deploy.len() <= 5);

    let block = w
        .calls(&mut gate, &event("scan-critical-v1.2.5.json"), "blocked")
        .await;
    assert_eq!(ops(&block), ["Publish"]);

    let not_routed = w
        .calls(&mut gate, &event("scan-pr-42.json"), "not_routed")
        .await;
    assert!(not_routed.is_empty());

    let deployment = Aws::new(&w.moto)
        .await
        .deployments(w.seed.env("prod"))
        .await
        .remove(0)
        .0;
    let mut failed = event("ecs-deployment-failed.json");
    failed["detail"]["deploymentId"] = json!(deployment);
    let page = w.calls(&mut notifier, &failed, "paged").await;
    assert_eq!(
        ops(&page),
        [
            "DescribeServices",
            "DescribeTaskDefinition",
            "TagResource",
            "Publish"
        ]
    );
    assert!(page.len() <= 4);

    let duplicate = w.calls(&mut notifier, &failed, "duplicate").await;
    assert_eq!(ops(&duplicate), ["DescribeServices"]);

    // Lift the freeze as an operator would, then a deployment completes.
    Aws::new(&w.moto)
        .await
        .untag_service(w.seed.env("prod"), "menotime:deploy-freeze")
        .await;
    let mut completed = event("ecs-deployment-completed.json");
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
            "Publish"
        ]
    );

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

    // Every call was one the template's policies grant (a call outside them would
    // be AccessDenied on AWS).
    for c in deploy.iter().chain(&block).chain(&page).chain(&resolve) {
        assert!(["ecs", "sns"].contains(&c.service.as_str()), "{c:?}");
    }
    w.stop(vec![gate, notifier]).await;
}

/// The post-deployment watch, counted the same way: a completion that starts a watch,
/// a regression page, a duplicate, the resolve, memory pressure, an alarm of another
/// environment, a task that failed to start and its repeat.
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
            "Publish"
        ]
    );
    let duplicate = w.calls(&mut notifier, &fired, "duplicate").await;
    assert_eq!(ops(&duplicate), ["DescribeServices"]);
    let ok = alarm("prod", "5xx", "OK", "2026-11-26T09:12:00Z", "ok-1");
    let resolve = w.calls(&mut notifier, &ok, "resolved").await;
    assert_eq!(
        ops(&resolve),
        ["DescribeServices", "TagResource", "Publish"]
    );
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
    assert_eq!(ops(&failed), ["DescribeServices", "TagResource", "Publish"]);
    let mut again = start.clone();
    again["id"] = json!("the-next-task");
    let repeat = w.calls(&mut notifier, &again, "duplicate").await;
    assert_eq!(ops(&repeat), ["DescribeServices"]);
    for c in watch.iter().chain(&page).chain(&resolve).chain(&failed) {
        assert!(["ecs", "sns"].contains(&c.service.as_str()), "{c:?}");
    }
    w.stop(vec![gate, notifier]).await;
}
