//! The manual's watch end to end: the built binaries through the Lambda Runtime API
//! against moto. A deployment scan-gate made completes; the service's alarms change
//! state (CloudWatch's own event shape, time driven by the events' timestamps), in
//! order, late or twice; deploy-notifier pages, resolves, rolls back (or, in a dry run
//! or without a way back, does not); tasks fail to start or lose their Spot capacity;
//! scan-gate refuses a prod service without the manual's safety net. Assertions are on
//! moto's state, on what reached the SQS queues behind the two topics (and, where the
//! wording matters, the text an HTTP subscriber receives), and on the AWS calls a proxy
//! counted.
#![cfg(test)]

use menotime_e2e::alarms::{alarm, completed};
use menotime_e2e::http::Receiver;
use menotime_e2e::proxy::Proxy;
use menotime_e2e::*;
use serde_json::{json, Value};

const WATCH: &str = "menotime:deploy-watch";
const FREEZE: &str = "menotime:deploy-freeze";
const INCIDENT: &str = "menotime:alarm-incident";

struct World {
    moto: Moto,
    seed: Seed,
    aws: Aws,
    /// Counts the AWS calls of the functions started with `counted_notifier`.
    proxy: Proxy,
}

impl World {
    async fn new() -> World {
        let moto = Moto::start().await;
        let seed = moto.seed().await;
        let aws = Aws::new(&moto).await;
        let proxy = Proxy::start(&moto.endpoint).await;
        World {
            moto,
            seed,
            aws,
            proxy,
        }
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

    /// deploy-notifier talking to moto through the proxy, which records its calls.
    async fn counted_notifier(&self, env: &str, extra: &[(&str, &str)]) -> Function {
        let mut vars = extra.to_vec();
        vars.push(("AWS_ENDPOINT_URL", &self.proxy.url));
        self.notifier(env, &vars).await
    }

    /// The operations the counted functions called since the last look.
    fn calls(&self) -> Vec<String> {
        Proxy::operations(&self.proxy.take_calls())
    }

    /// An HTTP subscriber of `topic`: it receives the text people read (`default`).
    async fn reader(&self, topic: &str) -> Receiver {
        let receiver = Receiver::start().await.expect("http receiver");
        self.aws
            .sns
            .subscribe()
            .topic_arn(topic)
            .protocol("http")
            .endpoint(&receiver.url)
            .send()
            .await
            .expect("subscribe the http receiver");
        receiver
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
        self.proxy.stop();
        self.moto.stop().await;
    }
}

/// The texts people read (SNS's `default`) that reached `receiver`, in order.
fn texts(receiver: &Receiver) -> Vec<String> {
    receiver
        .take()
        .iter()
        .filter_map(|body| serde_json::from_str::<Value>(body).ok())
        .filter(|envelope| envelope["Type"] == "Notification")
        .filter_map(|envelope| envelope["Message"].as_str().map(str::to_owned))
        .collect()
}

/// The value of the fact `label` in a text for people (`Label:   value`).
fn fact<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(label)?.strip_prefix(':'))
        .map(str::trim)
}

/// Unix seconds of an RFC 3339 time, as the alarm incident records a state change.
fn unix(at: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(at)
        .expect("RFC 3339")
        .timestamp()
}

/// An incident marker without its `request` field (the invocation's request id).
fn marker(value: Option<String>) -> Option<String> {
    value.map(|v| match v.rsplit_once(" request=") {
        Some((head, _)) => head.to_owned(),
        None => v,
    })
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

/// A Fargate Spot task of `env`'s service stopped by an interruption, in the shape ECS
/// sends ("ECS Task State Change", STOPPED, stop code `SpotInterruption`; the fields of a
/// real Fargate stop event, with the capacity provider a Spot task carries).
/// `last_status` `DEPROVISIONING` is the event ECS sends before the final STOPPED.
fn spot_interrupted(env: &str, last_status: &str) -> Value {
    let task_id = "8e4d2c1b0a9f47e6b5d4c3b2a1f0e9d8";
    let cluster = format!("menotime-{env}-cluster");
    let task_arn = format!("arn:aws:ecs:us-west-1:123456789012:task/{cluster}/{task_id}");
    let stopped = last_status == "STOPPED";
    let mut e = json!({
        "version": "0",
        "id": format!("6d2a9f0e-3b7c-4e51-9a08-{:012x}", env.len() * 2 + usize::from(stopped)),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": if stopped { "2026-11-26T14:21:47Z" } else { "2026-11-26T14:20:16Z" },
        "region": "us-west-1",
        "resources": [task_arn],
        "detail": {
            "attachments": [{
                "id": "1c7e5a90-3f2b-4d8e-a6c1-9b0f7e2d4a35",
                "type": "eni",
                "status": if stopped { "DELETED" } else { "ATTACHED" },
                "details": [
                    {"name": "subnetId", "value": "subnet-0f1e2d3c4b5a69788"},
                    {"name": "networkInterfaceId", "value": "eni-0a1b2c3d4e5f60718"},
                    {"name": "macAddress", "value": "06:3e:91:b2:7c:4d"},
                    {"name": "privateIPv4Address", "value": "10.0.2.87"}
                ]
            }],
            "availabilityZone": "us-west-1c",
            "capacityProviderName": "FARGATE_SPOT",
            "clusterArn": format!("arn:aws:ecs:us-west-1:123456789012:cluster/{cluster}"),
            "containers": [{
                "containerArn": format!("arn:aws:ecs:us-west-1:123456789012:container/{cluster}/{task_id}/4b3a2918-07f6-4e5d-8c4b-3a29180f7e6d"),
                "exitCode": 143,
                "lastStatus": "STOPPED",
                "name": "menotime-backend",
                "image": "123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend:latest",
                "imageDigest": "sha256:5f0c4e6b1a2d3c4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6",
                "runtimeId": format!("{task_id}-2714032119"),
                "taskArn": task_arn,
                "networkInterfaces": [{
                    "attachmentId": "1c7e5a90-3f2b-4d8e-a6c1-9b0f7e2d4a35",
                    "privateIpv4Address": "10.0.2.87"
                }],
                "cpu": "0"
            }],
            "createdAt": "2026-11-26T08:02:11.407Z",
            "launchType": "FARGATE",
            "cpu": "256",
            "memory": "1024",
            "desiredStatus": "STOPPED",
            "group": format!("service:menotime-{env}-service"),
            "lastStatus": last_status,
            "overrides": {"containerOverrides": [{"name": "menotime-backend"}]},
            "connectivity": "CONNECTED",
            "connectivityAt": "2026-11-26T08:02:17.923Z",
            "pullStartedAt": "2026-11-26T08:02:26.118Z",
            "pullStoppedAt": "2026-11-26T08:02:34.771Z",
            "startedAt": "2026-11-26T08:02:41.530Z",
            "startedBy": "ecs-svc/7302946158203317465",
            "stoppingAt": "2026-11-26T14:19:45.002Z",
            "executionStoppedAt": "2026-11-26T14:20:16Z",
            "stoppedReason": "Your Spot Task was interrupted.",
            "stopCode": "SpotInterruption",
            "updatedAt": if stopped { "2026-11-26T14:21:47.316Z" } else { "2026-11-26T14:20:16.204Z" },
            "taskArn": task_arn,
            "taskDefinitionArn": format!("arn:aws:ecs:us-west-1:123456789012:task-definition/menotime-backend-{env}:1"),
            "version": if stopped { 5 } else { 4 },
            "platformVersion": "1.4.0"
        }
    });
    if stopped {
        e["detail"]["stoppedAt"] = json!("2026-11-26T14:21:47.316Z");
    }
    e
}

#[tokio::test]
async fn a_spot_interruption_outside_prod_is_information_and_never_pages() {
    let w = World::new().await;
    let mut fs = Vec::new();
    for env in ["staging", "dev"] {
        let mut notifier = w.counted_notifier(env, &[]).await;
        w.calls();
        // ECS first reports the task deprovisioning: not yet a stop, nothing sent.
        let out = notifier
            .invoke(&spot_interrupted(env, "DEPROVISIONING"))
            .await
            .ok();
        assert_eq!(out["outcome"], "ignored", "{env}: {out}");
        assert!(w.notify(env).await.is_empty(), "{env}");
        let out = notifier
            .invoke(&spot_interrupted(env, "STOPPED"))
            .await
            .ok();
        assert_eq!(out["outcome"], "notified", "{env}: {out}");
        // One Publish: nothing read or changed in ECS.
        assert_eq!(w.calls(), ["Publish"], "{env}");
        let msgs = w.notify(env).await;
        assert_eq!(types(&msgs), ["task.interrupted/notify"], "{env}");
        let m = &msgs[0];
        assert_eq!(m.payload["severity"], "info", "{env}");
        assert_eq!(m.attribute("severity"), Some("info"), "{env}");
        assert_eq!(m.attribute("action"), Some("notify"), "{env}");
        assert_eq!(
            m.payload["dedup_key"],
            format!("menotime/{env}/menotime-{env}-service/task-interrupted/8e4d2c1b0a9f47e6b5d4c3b2a1f0e9d8"),
        );
        assert_eq!(
            m.payload["occurred_at"], "2026-11-26T14:21:47.316Z",
            "{env}"
        );
        let d = &m.payload["details"];
        assert_eq!(d["stop_code"], "SpotInterruption", "{env}");
        assert_eq!(d["capacity_provider"], "FARGATE_SPOT", "{env}");
        assert_eq!(d["started_by"], "ecs-svc/7302946158203317465", "{env}");
        assert!(w.oncall(env).await.is_empty(), "{env}: never a page");
        fs.push(notifier);
    }
    w.stop(fs).await;
}

/// A stack trying AUTO_ROLLBACK_ON_REGRESSION in a dry run on a deployment it already
/// watches: the regression is reported with what would have been done, and nothing in
/// ECS changes.
#[tokio::test]
async fn auto_rollback_in_a_dry_run_says_what_it_would_do_and_changes_nothing() {
    let w = World::new().await;
    let prod = w.env("prod");
    let mut gate = w.gate("prod").await;
    let mut notifier = w.notifier("prod", &[]).await;
    // A dry run records no watch (docs/reference.md §3.10): the deployment was watched
    // before the stack was switched to a dry run to try the setting.
    let deployment = w.deploy_v124(&mut gate, &mut notifier).await;
    notifier.stop().await;
    let mut dry = w
        .counted_notifier(
            "prod",
            &[("DRY_RUN", "true"), ("AUTO_ROLLBACK_ON_REGRESSION", "true")],
        )
        .await;
    let before = w.aws.service(prod).await;
    assert!(before.task_definition.ends_with(":3"), "{before:?}");
    let deployments = w.aws.deployments(prod).await;
    let team = w.reader(&prod.notify_topic_arn).await;
    w.calls();

    let out = dry
        .invoke(&alarm(
            "prod",
            "5xx",
            "ALARM",
            "2026-11-26T09:03:00Z",
            "a-1",
        ))
        .await
        .ok();
    assert_eq!(out["outcome"], "notified", "{out}");
    assert_eq!(out["dry_run"], true, "{out}");
    assert_eq!(out["rolled_back_to"], Value::Null, "{out}");
    assert_eq!(out["froze"], false, "{out}");
    // Read, then tell: no UpdateService, no TagResource (no freeze, no marker).
    assert_eq!(
        w.calls(),
        ["DescribeServices", "DescribeTaskDefinition", "Publish"]
    );
    assert_eq!(
        w.aws.service(prod).await,
        before,
        "revision, image and tags"
    );
    assert_eq!(
        w.aws.deployments(prod).await,
        deployments,
        "no new deployment"
    );

    // A dry run never pages: the regression goes to the team, saying what it would do.
    assert!(w.oncall("prod").await.is_empty());
    let msgs = w.notify("prod").await;
    assert_eq!(types(&msgs), ["deploy.regression/notify"]);
    let p = &msgs[0].payload;
    assert_eq!(p["severity"], "warning");
    assert_eq!(
        p["dedup_key"],
        format!("menotime/prod/menotime-prod-service/regression/{deployment}")
    );
    assert_eq!(
        p["summary"],
        "dry run: Regression after deploying menotime-backend-prod:3: menotime-prod-5xx in ALARM"
    );
    let d = &p["details"];
    assert_eq!(d["dry_run"], true);
    assert_eq!(
        d["would_page"],
        json!({"topic": "oncall", "severity": "critical", "action": "trigger"})
    );
    assert_eq!(d["auto_rollback"], true);
    assert_eq!(d["previous_task_definition"], "menotime-backend-prod:2");
    assert_eq!(d["rolled_back_to"], Value::Null);
    assert_eq!(d["rollback_deployment_id"], Value::Null);
    assert_eq!(d["froze"], false);
    assert_eq!(d["frozen"], false);
    let texts = texts(&team);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(
        fact(&texts[0], "Automatic rollback"),
        Some("dry run: would have frozen deploys and rolled back to menotime-backend-prod:2; nothing was changed"),
        "{}",
        texts[0]
    );
    team.stop();
    w.stop(vec![gate, dry]).await;
}

/// The first revision of the family, deployed by hand: no deployment was watched
/// before it, ECS lists no other, and it carries no `menotime:replaces`. The automatic
/// rollback has nowhere to go: it pages instead, and never calls UpdateService.
#[tokio::test]
async fn auto_rollback_without_a_previous_revision_pages_and_never_updates_the_service() {
    let w = World::new().await;
    let prod = w.env("prod");
    let first = format!("{}:1", prod.family);
    w.aws
        .ecs
        .update_service()
        .cluster(&prod.cluster)
        .service(&prod.service)
        .task_definition(&first)
        .force_new_deployment(true)
        .send()
        .await
        .expect("deploy revision 1 by hand");
    let deployment = w.aws.primary_deployment(prod).await;
    let mut notifier = w
        .counted_notifier("prod", &[("AUTO_ROLLBACK_ON_REGRESSION", "true")])
        .await;
    let out = notifier
        .invoke(&completed("prod", &deployment, "2026-11-26T09:00:00Z"))
        .await
        .ok();
    assert_eq!(out["outcome"], "notified", "{out}");
    assert_eq!(
        w.aws.service_tag(prod, WATCH).await,
        Some(format!(
            "deployment={deployment} revision=menotime-backend-prod:1 completed=2026-11-26T09:00:00.000Z"
        )),
        "watched, with no way back"
    );
    w.notify("prod").await;
    let oncall = w.reader(&prod.oncall_topic_arn).await;
    w.calls();

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
    assert_eq!(out["outcome"], "paged", "{out}");
    assert_eq!(out["rolled_back_to"], Value::Null, "{out}");
    assert_eq!(out["froze"], false, "{out}");
    // The page's two phases and nothing else: no UpdateService.
    assert_eq!(
        w.calls(),
        [
            "DescribeServices",
            "DescribeTaskDefinition",
            "TagResource",
            "Publish",
            "TagResource"
        ]
    );
    let after = w.aws.service(prod).await;
    assert!(after.task_definition.ends_with(":1"), "{after:?}");
    assert_eq!(w.aws.primary_deployment(prod).await, deployment);
    assert_eq!(w.aws.service_tag(prod, FREEZE).await, None, "not frozen");
    assert_eq!(
        marker(w.aws.service_tag(prod, INCIDENT).await),
        Some(format!(
            "deployment={deployment} sent=5xx@A{} state=open at=2026-11-26T09:03:00.000Z",
            unix("2026-11-26T09:03:00Z")
        )),
        "no rollback recorded"
    );

    let pages = w.oncall("prod").await;
    assert_eq!(types(&pages), ["deploy.regression/trigger"]);
    let p = &pages[0].payload;
    assert_eq!(p["severity"], "critical");
    assert_eq!(
        p["dedup_key"],
        format!("menotime/prod/menotime-prod-service/regression/{deployment}")
    );
    let d = &p["details"];
    assert_eq!(d["deployment_id"], deployment.as_str());
    assert_eq!(d["task_definition"], "menotime-backend-prod:1");
    assert_eq!(d["auto_rollback"], true);
    assert_eq!(d["previous_task_definition"], Value::Null);
    assert_eq!(d["rolled_back_to"], Value::Null);
    assert_eq!(d["froze"], false);
    assert!(w.notify("prod").await.is_empty());
    let texts = texts(&oncall);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(
        fact(&texts[0], "Automatic rollback"),
        Some("NOT DONE: the previous revision cannot be determined (ECS, the watch and the revision's tags name none)"),
        "{}",
        texts[0]
    );
    assert_eq!(
        fact(&texts[0], "Previous revision"),
        Some("unknown (see list-task-definitions below)")
    );
    assert!(
        texts[0].contains("aws ecs list-task-definitions"),
        "{}",
        texts[0]
    );
    oncall.stop();
    w.stop(vec![notifier]).await;
}

/// CloudWatch: 5xx went to ALARM at 09:03 and back to OK at 09:07. EventBridge delivers
/// the OK first, then the ALARM, then the ALARM again.
#[tokio::test]
async fn an_ok_delivered_before_its_alarm_pages_nobody() {
    let w = World::new().await;
    let prod = w.env("prod");
    let mut gate = w.gate("prod").await;
    let mut notifier = w.notifier("prod", &[]).await;
    let deployment = w.deploy_v124(&mut gate, &mut notifier).await;

    let ok = alarm("prod", "5xx", "OK", "2026-11-26T09:07:00Z", "ok-1");
    let out = notifier.invoke(&ok).await.ok();
    assert_eq!(out["outcome"], "ignored", "{out}");
    // Recorded, resolved: a late copy of its ALARM is recognised.
    let recorded = w.aws.service_tag(prod, INCIDENT).await;
    assert_eq!(
        marker(recorded.clone()),
        Some(format!(
            "sent=5xx@O{} state=resolved at=2026-11-26T09:07:00.000Z",
            unix("2026-11-26T09:07:00Z")
        ))
    );
    let fired = alarm("prod", "5xx", "ALARM", "2026-11-26T09:03:00Z", "a-1");
    let out = notifier.invoke(&fired).await.ok();
    assert_eq!(out["outcome"], "late", "{out}");
    // Delivered again, after the OK: still late.
    let out = notifier.invoke(&fired).await.ok();
    assert_eq!(out["outcome"], "late", "{out}");
    assert!(w.oncall("prod").await.is_empty(), "no page");
    assert!(w.notify("prod").await.is_empty());
    assert_eq!(
        w.aws.service_tag(prod, INCIDENT).await,
        recorded,
        "unchanged"
    );
    assert_eq!(w.aws.service_tag(prod, FREEZE).await, None);

    // The alarm fires again at 09:15, inside the watch: that ALARM is new, and pages.
    let again = alarm("prod", "5xx", "ALARM", "2026-11-26T09:15:00Z", "a-2");
    let out = notifier.invoke(&again).await.ok();
    assert_eq!(out["outcome"], "paged", "{out}");
    let pages = w.oncall("prod").await;
    assert_eq!(types(&pages), ["deploy.regression/trigger"]);
    assert_eq!(pages[0].payload["severity"], "critical");
    assert_eq!(
        pages[0].payload["dedup_key"],
        format!("menotime/prod/menotime-prod-service/regression/{deployment}")
    );
    assert_eq!(pages[0].payload["occurred_at"], "2026-11-26T09:15:00.000Z");
    assert_eq!(
        marker(w.aws.service_tag(prod, INCIDENT).await),
        Some(format!(
            "deployment={deployment} sent=5xx@A{} state=open at=2026-11-26T09:15:00.000Z",
            unix("2026-11-26T09:15:00Z")
        ))
    );
    w.stop(vec![gate, notifier]).await;
}

/// A page, its resolve, and then EventBridge delivers the ALARM once more.
#[tokio::test]
async fn an_alarm_delivered_again_after_its_ok_does_not_page_again() {
    let w = World::new().await;
    let prod = w.env("prod");
    let mut gate = w.gate("prod").await;
    let mut notifier = w.notifier("prod", &[]).await;
    let deployment = w.deploy_v124(&mut gate, &mut notifier).await;
    let key = format!("menotime/prod/menotime-prod-service/regression/{deployment}");

    let fired = alarm("prod", "5xx", "ALARM", "2026-11-26T09:03:00Z", "a-1");
    assert_eq!(notifier.invoke(&fired).await.ok()["outcome"], "paged");
    let ok = alarm("prod", "5xx", "OK", "2026-11-26T09:06:00Z", "ok-1");
    assert_eq!(notifier.invoke(&ok).await.ok()["outcome"], "resolved");
    let msgs = w.oncall("prod").await;
    assert_eq!(
        types(&msgs),
        ["deploy.regression/trigger", "deploy.regression/resolve"]
    );
    assert_eq!(
        msgs.iter()
            .map(|m| (
                m.payload["severity"].as_str(),
                m.payload["dedup_key"].as_str()
            ))
            .collect::<Vec<_>>(),
        [
            (Some("critical"), Some(key.as_str())),
            (Some("info"), Some(key.as_str()))
        ]
    );
    let resolved = w.aws.service_tag(prod, INCIDENT).await;
    assert_eq!(
        marker(resolved.clone()),
        Some(format!(
            "deployment={deployment} sent=5xx@O{} state=resolved at=2026-11-26T09:06:00.000Z",
            unix("2026-11-26T09:06:00Z")
        ))
    );

    let out = notifier.invoke(&fired).await.ok();
    assert_eq!(out["outcome"], "late", "{out}");
    assert!(w.oncall("prod").await.is_empty(), "no second page");
    assert!(w.notify("prod").await.is_empty());
    assert_eq!(
        w.aws.service_tag(prod, INCIDENT).await,
        resolved,
        "unchanged"
    );
    w.stop(vec![gate, notifier]).await;
}

/// While 5xx's page is open, latency goes to ALARM at 09:05 and OK at 09:08, and
/// EventBridge delivers latency's OK before its ALARM. Then 5xx recovers: the page
/// must resolve (nothing of the incident is in ALARM any more).
///
/// An OK of an alarm the open incident does not know is recorded (not dropped), so
/// its late ALARM is recognised as late: it neither joins and pages nor keeps the page
/// open after the other alarm's OK.
#[tokio::test]
async fn an_ok_delivered_before_its_alarm_during_an_open_page_does_not_keep_it_open() {
    let w = World::new().await;
    let prod = w.env("prod");
    let mut gate = w.gate("prod").await;
    let mut notifier = w.notifier("prod", &[]).await;
    let deployment = w.deploy_v124(&mut gate, &mut notifier).await;
    let key = format!("menotime/prod/menotime-prod-service/regression/{deployment}");

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
    assert_eq!(out["outcome"], "paged", "{out}");
    assert_eq!(
        types(&w.oncall("prod").await),
        ["deploy.regression/trigger"]
    );

    let out = notifier
        .invoke(&alarm(
            "prod",
            "latency",
            "OK",
            "2026-11-26T09:08:00Z",
            "ok-latency",
        ))
        .await
        .ok();
    assert_eq!(out["outcome"], "ignored", "{out}");
    assert!(w.oncall("prod").await.is_empty());
    let out = notifier
        .invoke(&alarm(
            "prod",
            "latency",
            "ALARM",
            "2026-11-26T09:05:00Z",
            "a-latency",
        ))
        .await
        .ok();
    assert_eq!(out["outcome"], "late", "{out}");
    assert!(
        w.oncall("prod").await.is_empty(),
        "the late ALARM pages nobody"
    );

    let out = notifier
        .invoke(&alarm(
            "prod",
            "5xx",
            "OK",
            "2026-11-26T09:10:00Z",
            "ok-5xx",
        ))
        .await
        .ok();
    assert_eq!(out["outcome"], "resolved", "{out}");
    let msgs = w.oncall("prod").await;
    assert_eq!(types(&msgs), ["deploy.regression/resolve"]);
    assert_eq!(msgs[0].payload["dedup_key"], key.as_str());
    let incident = w.aws.service_tag(prod, INCIDENT).await.unwrap_or_default();
    assert!(incident.contains(" state=resolved "), "{incident}");
    w.stop(vec![gate, notifier]).await;
}
