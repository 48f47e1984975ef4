//! The manual's watch end to end: the built binaries through the Lambda Runtime API
//! against moto. A deployment scan-gate made completes; the service's alarms change
//! state (CloudWatch's own event shape, time driven by the events' timestamps);
//! deploy-notifier pages, resolves, rolls back; tasks fail to start; scan-gate refuses
//! a prod service without the manual's safety net. Assertions are on moto's state and
//! on what reached the SQS queues behind the two topics.
#![cfg(test)]

use menotime_e2e::alarms::{alarm, completed};
use menotime_e2e::*;
use serde_json::{json, Value};

const WATCH: &str = "menotime:deploy-watch";
const FREEZE: &str = "menotime:deploy-freeze";

struct World {
    moto: Moto,
    seed: Seed,
    aws: Aws,
}

impl World {
    async fn new() -> World {
        let moto = Moto::start().await;
        let seed = moto.seed().await;
        let aws = Aws::new(&moto).await;
        World { moto, seed, aws }
    }

    async fn notifier(&self, env: &str, extra: &[(&str, &str)]) -> Function {
        let mut vars = notifier_env(&self.moto, &self.seed, env);
        for (k, v) in extra {
            vars = with_var(vars, k, v);
        }
        Function::start(
            &build_binary("deploy-notifier", "deploy-notifier"),
            &format!("menotime-{env}-deploy-notifier"),
            &vars,
        )
        .await
    }

    async fn gate(&self, env: &str) -> Function {
        Function::start(
            &build_binary("scan-gate", "scan-gate"),
            &format!("menotime-{env}-scan-gate"),
            &scan_gate_env(&self.moto, &self.seed, env),
        )
        .await
    }

    fn env(&self, env: &str) -> &SeedEnv {
        self.seed.env(env)
    }

    async fn notify(&self, env: &str) -> Vec<Delivered> {
        self.aws.drain(&self.env(env).notify_queue_url).await
    }

    async fn oncall(&self, env: &str) -> Vec<Delivered> {
        self.aws.drain(&self.env(env).oncall_queue_url).await
    }

    /// scan-gate deploys v1.2.4 to prod and the deployment completes at 09:00:
    /// deploy-notifier watches it. Returns the deployment id.
    async fn deploy_v124(&self, gate: &mut Function, notifier: &mut Function) -> String {
        let prod = self.env("prod");
        let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
        assert_eq!(out["outcome"], "deployed", "{out}");
        let deployment = self.aws.primary_deployment(prod).await;
        let out = notifier
            .invoke(&completed("prod", &deployment, "2026-11-26T09:00:00Z"))
            .await
            .ok();
        assert_eq!(out["outcome"], "notified", "{out}");
        let watch = self.aws.service_tag(prod, WATCH).await.expect("watched");
        assert!(
            watch.starts_with(&format!(
                "deployment={deployment} revision=menotime-backend-prod:3 "
            )),
            "{watch}"
        );
        self.notify("prod").await;
        deployment
    }

    async fn stop(self, fs: Vec<Function>) {
        for f in fs {
            f.stop().await;
        }
        self.moto.stop().await;
    }
}

fn types(msgs: &[Delivered]) -> Vec<String> {
    msgs.iter()
        .map(|m| {
            format!(
                "{}/{}",
                m.event_type(),
                m.payload["action"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn a_regression_after_a_prod_deploy_pages_with_the_way_back_and_resolves() {
    let w = World::new().await;
    let mut gate = w.gate("prod").await;
    let mut notifier = w.notifier("prod", &[]).await;
    let deployment = w.deploy_v124(&mut gate, &mut notifier).await;

    // Three minutes after the completion the 5xx alarm fires.
    let fired = alarm("prod", "5xx", "ALARM", "2026-11-26T09:03:00Z", "a-1");
    let out = notifier.invoke(&fired).await.ok();
    assert_eq!(out["outcome"], "paged", "{out}");
    let pages = w.oncall("prod").await;
    assert_eq!(types(&pages), ["deploy.regression/trigger"]);
    let p = &pages[0].payload;
    assert_eq!(p["severity"], "critical");
    assert_eq!(
        p["dedup_key"],
        format!("menotime/prod/menotime-prod-service/regression/{deployment}")
    );
    assert_eq!(p["details"]["deployment_id"], deployment.as_str());
    // The way back: what scan-gate recorded it replaced (menotime:replaces).
    assert_eq!(
        p["details"]["previous_task_definition"],
        "menotime-backend-prod:2"
    );
    assert_eq!(p["details"]["task_definition"], "menotime-backend-prod:3");
    assert_eq!(p["details"]["image_tag"], "v1.2.4");
    assert_eq!(p["details"]["alarm_name"], "menotime-prod-5xx");
    assert_eq!(p["occurred_at"], "2026-11-26T09:03:00.000Z");
    assert!(
        w.notify("prod").await.is_empty(),
        "the page goes to on-call only"
    );

    // EventBridge delivers it again: nothing.
    assert_eq!(notifier.invoke(&fired).await.ok()["outcome"], "duplicate");
    // The alarm recovers: the page resolves, once.
    let ok = alarm("prod", "5xx", "OK", "2026-11-26T09:12:00Z", "ok-1");
    assert_eq!(notifier.invoke(&ok).await.ok()["outcome"], "resolved");
    assert_eq!(notifier.invoke(&ok).await.ok()["outcome"], "duplicate");
    let resolves = w.oncall("prod").await;
    assert_eq!(types(&resolves), ["deploy.regression/resolve"]);
    assert_eq!(resolves[0].payload["dedup_key"], p["dedup_key"]);

    // Forty-five minutes after the completion: a service alarm, its OK resolves it.
    let late = alarm("prod", "latency", "ALARM", "2026-11-26T09:45:00Z", "a-2");
    let out = notifier.invoke(&late).await.ok();
    assert_eq!(out["outcome"], "paged", "{out}");
    let ok = alarm("prod", "latency", "OK", "2026-11-26T09:50:00Z", "ok-2");
    assert_eq!(notifier.invoke(&ok).await.ok()["outcome"], "resolved");
    let msgs = w.oncall("prod").await;
    assert_eq!(
        types(&msgs),
        ["service.alarm/trigger", "service.alarm/resolve"]
    );
    assert_eq!(
        msgs[0].payload["dedup_key"],
        "menotime/prod/menotime-prod-service/alarm"
    );
    // Nothing was changed in ECS.
    assert_eq!(w.aws.service_tag(w.env("prod"), FREEZE).await, None);
    w.stop(vec![gate, notifier]).await;
}

/// A service alarm is open (db-connections, since before the deployment completed)
/// when 5xx fires in the deployment's window: the regression all the same, rolled back
/// by itself, and the service alarm's page resolved into it; the OKs of both alarms
/// resolve the regression once.
#[tokio::test]
async fn a_regression_escalates_an_open_service_alarm_and_rolls_back() {
    let w = World::new().await;
    let prod = w.env("prod");
    let mut gate = w.gate("prod").await;
    let mut notifier = w
        .notifier("prod", &[("AUTO_ROLLBACK_ON_REGRESSION", "true")])
        .await;
    let deployment = w.deploy_v124(&mut gate, &mut notifier).await;
    let db = alarm(
        "prod",
        "db-connections",
        "ALARM",
        "2026-11-26T08:55:00Z",
        "db-1",
    );
    let out = notifier.invoke(&db).await.ok();
    assert_eq!(out["outcome"], "paged", "{out}");
    assert_eq!(types(&w.oncall("prod").await), ["service.alarm/trigger"]);

    let fired = alarm("prod", "5xx", "ALARM", "2026-11-26T09:03:00Z", "a-1");
    let out = notifier.invoke(&fired).await.ok();
    assert_eq!(out["outcome"], "rolled_back", "{out}");
    assert_eq!(out["deployment_id"], deployment.as_str());
    assert!(w.aws.service(prod).await.task_definition.ends_with(":2"));
    assert!(w.aws.service_tag(prod, FREEZE).await.is_some());
    let msgs = w.oncall("prod").await;
    assert_eq!(
        types(&msgs),
        ["deploy.rolled_back/trigger", "service.alarm/resolve"]
    );
    assert_eq!(
        msgs[0].payload["dedup_key"],
        format!("menotime/prod/menotime-prod-service/regression/{deployment}")
    );
    assert_eq!(
        msgs[1].payload["dedup_key"],
        "menotime/prod/menotime-prod-service/alarm"
    );
    // Delivered again: nothing.
    assert_eq!(notifier.invoke(&fired).await.ok()["outcome"], "duplicate");
    // db-connections recovers, then 5xx: one resolve, the regression's.
    let db_ok = alarm(
        "prod",
        "db-connections",
        "OK",
        "2026-11-26T09:10:00Z",
        "db-2",
    );
    assert_eq!(notifier.invoke(&db_ok).await.ok()["outcome"], "ignored");
    let ok = alarm("prod", "5xx", "OK", "2026-11-26T09:12:00Z", "ok-1");
    assert_eq!(notifier.invoke(&ok).await.ok()["outcome"], "resolved");
    let msgs = w.oncall("prod").await;
    assert_eq!(types(&msgs), ["deploy.regression/resolve"]);
    assert_eq!(msgs[0].payload["details"]["rolled_back"], true);
    w.stop(vec![gate, notifier]).await;
}

/// The sample completion event names a deployment id moto does not list (moto gives
/// its deployment an id of its own): the revision moto runs is what completed.
#[tokio::test]
async fn a_sample_completion_starts_the_watch_of_what_runs() {
    let w = World::new().await;
    let mut gate = w.gate("prod").await;
    let mut notifier = w.notifier("prod", &[]).await;
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");
    let mut done = event("ecs-deployment-completed.json");
    done["time"] = json!("2026-11-26T09:00:00Z");
    done["detail"]["updatedAt"] = json!("2026-11-26T09:00:00Z");
    assert_eq!(notifier.invoke(&done).await.ok()["outcome"], "notified");
    let out = notifier
        .invoke(&event("cloudwatch-alarm-5xx.json"))
        .await
        .ok();
    assert_eq!(out["outcome"], "paged", "{out}");
    let pages = w.oncall("prod").await;
    assert_eq!(types(&pages), ["deploy.regression/trigger"]);
    assert_eq!(
        pages[0].payload["details"]["deployment_id"],
        "ecs-svc/4231880795355584839"
    );
    assert_eq!(
        pages[0].payload["details"]["previous_task_definition"],
        "menotime-backend-prod:2"
    );
    let out = notifier
        .invoke(&event("cloudwatch-alarm-5xx-ok.json"))
        .await
        .ok();
    assert_eq!(out["outcome"], "resolved", "{out}");
    assert_eq!(
        types(&w.oncall("prod").await),
        ["deploy.regression/resolve"]
    );
    w.stop(vec![gate, notifier]).await;
}

#[tokio::test]
async fn auto_rollback_freezes_and_rolls_a_regression_back_once() {
    let w = World::new().await;
    let prod = w.env("prod");
    let mut gate = w.gate("prod").await;
    let mut notifier = w
        .notifier("prod", &[("AUTO_ROLLBACK_ON_REGRESSION", "true")])
        .await;
    let deployment = w.deploy_v124(&mut gate, &mut notifier).await;
    assert!(w.aws.service(prod).await.task_definition.ends_with(":3"));

    let out = notifier
        .invoke(&alarm(
            "prod",
            "5xx",
            "ALARM",
            "2026-11-26T09:03:00Z",
            "a-1",
        ))
        .await
        .ok();
    assert_eq!(out["outcome"], "rolled_back", "{out}");
    assert_eq!(out["rolled_back_to"], "menotime-backend-prod:2");
    assert_eq!(out["froze"], true);
    // ECS runs the previous revision, in a new deployment; deploys are frozen.
    let after = w.aws.service(prod).await;
    assert!(after.task_definition.ends_with(":2"), "{after:?}");
    let rollback = w.aws.primary_deployment(prod).await;
    assert_ne!(rollback, deployment, "forceNewDeployment starts a new one");
    let freeze = w.aws.service_tag(prod, FREEZE).await.expect("frozen");
    assert!(
        freeze.starts_with(&format!(
            "deployment {deployment} regressed at 2026-11-26T09:03:00Z"
        )),
        "{freeze}"
    );
    let pages = w.oncall("prod").await;
    assert_eq!(types(&pages), ["deploy.rolled_back/trigger"]);
    assert_eq!(
        pages[0].payload["details"]["rolled_back_to"],
        "menotime-backend-prod:2"
    );
    assert_eq!(
        pages[0].payload["details"]["rollback_deployment_id"],
        rollback.as_str()
    );

    // Another alarm of the incident: paged with it, never a second rollback.
    let out = notifier
        .invoke(&alarm(
            "prod",
            "latency",
            "ALARM",
            "2026-11-26T09:04:00Z",
            "a-2",
        ))
        .await
        .ok();
    assert_eq!(out["outcome"], "paged", "{out}");
    assert_eq!(w.aws.primary_deployment(prod).await, rollback);
    // After both recover, a new ALARM inside the 30 minutes is a service alarm: the
    // rolled-back deployment is no longer what runs.
    for (what, at, id) in [
        ("5xx", "2026-11-26T09:10:00Z", "ok-1"),
        ("latency", "2026-11-26T09:11:00Z", "ok-2"),
    ] {
        notifier
            .invoke(&alarm("prod", what, "OK", at, id))
            .await
            .ok();
    }
    let out = notifier
        .invoke(&alarm(
            "prod",
            "5xx",
            "ALARM",
            "2026-11-26T09:20:00Z",
            "a-3",
        ))
        .await
        .ok();
    assert_eq!(out["outcome"], "paged", "{out}");
    assert_eq!(w.aws.primary_deployment(prod).await, rollback);
    assert!(w.aws.service(prod).await.task_definition.ends_with(":2"));
    assert_eq!(
        types(&w.oncall("prod").await),
        [
            "deploy.regression/trigger",
            "deploy.regression/resolve",
            "service.alarm/trigger"
        ]
    );
    // scan-gate holds the next image until someone reviews the regression.
    let mut rescan = event("scan-clean-v1.2.4.json");
    rescan["id"] = json!("rescan-after-rollback");
    assert_eq!(gate.invoke(&rescan).await.ok()["outcome"], "frozen");
    w.stop(vec![gate, notifier]).await;
}

#[tokio::test]
async fn memory_pressure_warns_the_team_and_never_pages() {
    let w = World::new().await;
    let mut notifier = w.notifier("prod", &[]).await;
    let out = notifier
        .invoke(&event("cloudwatch-alarm-memory-high.json"))
        .await
        .ok();
    assert_eq!(out["outcome"], "notified", "{out}");
    let msgs = w.notify("prod").await;
    assert_eq!(types(&msgs), ["service.memory_high/notify"]);
    assert_eq!(msgs[0].payload["severity"], "warning");
    assert_eq!(msgs[0].payload["details"]["memory"], "2048");
    assert_eq!(
        msgs[0].payload["details"]["task_definition"],
        "menotime-backend-prod:2"
    );
    assert!(w.oncall("prod").await.is_empty());
    w.stop(vec![notifier]).await;
}

#[tokio::test]
async fn other_environments_alarms_are_ignored_and_other_accounts_refused() {
    let w = World::new().await;
    let mut notifier = w.notifier("prod", &[]).await;
    let out = notifier
        .invoke(&event("bad-alarm-other-environment.json"))
        .await
        .ok();
    assert_eq!(out["outcome"], "ignored", "{out}");
    let (kind, message) = notifier
        .invoke(&event("bad-alarm-other-account.json"))
        .await
        .err();
    assert_eq!(kind, "RejectedEvent", "{message}");
    assert!(message.contains("other accounts"), "{message}");
    assert!(w.oncall("prod").await.is_empty());
    assert!(w.notify("prod").await.is_empty());
    w.stop(vec![notifier]).await;
}

#[tokio::test]
async fn a_task_that_fails_to_start_is_reported_once_per_deployment_and_cause() {
    let w = World::new().await;
    let mut notifier = w.notifier("prod", &[]).await;
    let first = event("ecs-task-failed-to-start.json");
    let out = notifier.invoke(&first).await.ok();
    assert_eq!(out["outcome"], "notified", "{out}");
    let mut second = first.clone();
    second["id"] = json!("another-task-of-the-same-deployment");
    second["detail"]["taskArn"] =
        json!("arn:aws:ecs:us-west-1:123456789012:task/menotime-prod-cluster/0f0e0d0c0b0a49988776655443322110");
    let out = notifier.invoke(&second).await.ok();
    assert_eq!(out["outcome"], "duplicate", "{out}");
    let msgs = w.notify("prod").await;
    assert_eq!(types(&msgs), ["task.start_failed/notify"]);
    let d = &msgs[0].payload["details"];
    assert_eq!(d["cause"], "image-pull");
    assert_eq!(d["deployment_id"], "ecs-svc/4231880795355584839");
    // The security group is the service's own, as moto reports it.
    let groups = d["security_groups"].as_array().unwrap();
    assert!(
        groups.len() == 1 && groups[0].as_str().unwrap().starts_with("sg-"),
        "{d}"
    );
    // A Spot interruption: the team hears it (a warning in prod, which should not
    // run on Spot).
    let out = notifier
        .invoke(&event("ecs-task-spot-interrupted.json"))
        .await
        .ok();
    assert_eq!(out["outcome"], "notified", "{out}");
    let msgs = w.notify("prod").await;
    assert_eq!(types(&msgs), ["task.interrupted/notify"]);
    assert_eq!(msgs[0].payload["severity"], "warning");
    assert!(w.oncall("prod").await.is_empty());
    w.stop(vec![notifier]).await;
}

#[tokio::test]
async fn scan_gate_deploys_to_prod_only_with_the_manuals_safety_net() {
    let w = World::new().await;
    let prod = w.env("prod");
    let mut gate = w.gate("prod").await;
    // Someone turned the circuit breaker off and let deployments stop half the tasks.
    w.aws.set_deployment_configuration(prod, 50, false).await;
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "blocked", "{out}");
    assert!(
        w.aws.service(prod).await.task_definition.ends_with(":2"),
        "nothing deployed"
    );
    let msgs = w.notify("prod").await;
    assert_eq!(types(&msgs), ["deploy.blocked/notify"]);
    let d = &msgs[0].payload["details"];
    assert_eq!(d["blocked_by"], "deployment_configuration");
    let missing: Vec<&str> = d["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(missing[0].starts_with("deploymentCircuitBreaker is not enabled"));
    assert!(missing[1].starts_with("minimumHealthyPercent is 50, not 100"));
    // The command in the notification restores it (moto takes the same document).
    let cmd = d["restore_command"].as_str().unwrap();
    let doc: Value = serde_json::from_str(
        cmd.split_once("--deployment-configuration '")
            .unwrap()
            .1
            .strip_suffix('\'')
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        doc["deploymentCircuitBreaker"],
        json!({"enable": true, "rollback": true})
    );
    w.aws
        .set_deployment_configuration(
            prod,
            doc["minimumHealthyPercent"].as_i64().unwrap() as i32,
            doc["deploymentCircuitBreaker"]["enable"].as_bool().unwrap(),
        )
        .await;
    let mut again = event("scan-clean-v1.2.4.json");
    again["id"] = json!("rescan-after-restore");
    assert_eq!(gate.invoke(&again).await.ok()["outcome"], "deployed");
    // Staging has no such requirement unless asked for (moto's staging service has
    // no circuit breaker).
    let mut staging = w.gate("staging").await;
    assert_eq!(
        staging.invoke(&event("scan-main.json")).await.ok()["outcome"],
        "deployed"
    );
    w.stop(vec![gate, staging]).await;
}
