//! deploy-notifier end to end: the built binary through the Lambda Runtime API against
//! moto, with scan-gate alongside for the cross-function story. Assertions are on the
//! service's tags in moto and on what reached the SQS queues behind the two topics.
//!
//! moto keeps one deployment per service and never fails one, so the failure events
//! name moto's own deployment (which moto reports COMPLETED); the page's content in
//! a real rollback (failed and previous revisions) is covered by the handler tests.

use menotime_e2e::*;
use serde_json::{json, Value};

const FREEZE: &str = "menotime:deploy-freeze";
const INCIDENT: &str = "menotime:deploy-incident";

struct World {
    moto: Moto,
    seed: Seed,
    aws: Aws,
}

impl World {
    async fn new() -> World {
        Self::with_running(2).await
    }

    async fn with_running(running: u32) -> World {
        let moto = Moto::start_with_running(running).await;
        let seed = moto.seed().await;
        let aws = Aws::new(&moto).await;
        World { moto, seed, aws }
    }

    async fn notifier(&self, env: &str) -> Function {
        Function::start(
            &build_binary("deploy-notifier", "deploy-notifier"),
            &format!("menotime-{env}-deploy-notifier"),
            &notifier_env(&self.moto, &self.seed, env),
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

    /// moto's one deployment of the service.
    async fn deployment(&self, env: &str) -> (String, String) {
        self.aws.deployments(self.env(env)).await.remove(0)
    }
}

/// An event from `events/` (prod's), moved to `env` and given a new id and time.
fn ecs_event(file: &str, env: &str, id: &str, at: &str) -> Value {
    let text = event(file)
        .to_string()
        .replace("menotime-prod-", &format!("menotime-{env}-"));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["id"] = json!(id);
    v["time"] = json!(at);
    for key in ["updatedAt", "createdAt"] {
        if v["detail"].get(key).is_some() {
            v["detail"][key] = json!(at);
        }
    }
    v
}

fn deployment_event(file: &str, env: &str, id: &str, at: &str, deployment: &str) -> Value {
    let mut v = ecs_event(file, env, id, at);
    v["detail"]["deploymentId"] = json!(deployment);
    v
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

/// The manual's circuit-breaker story across both functions: a prod deployment fails
/// → on-call is paged and the service frozen → scan-gate holds a clean image → an
/// operator lifts the freeze → scan-gate deploys → the deployment completes → the
/// page is resolved. Duplicates and late events along the way change nothing.
#[tokio::test]
async fn a_failed_prod_deployment_pages_freezes_and_resolves_after_review() {
    let w = World::new().await;
    let prod = w.env("prod");
    let mut notifier = w.notifier("prod").await;
    let mut gate = w.gate("prod").await;

    // scan-gate deploys v1.2.4.
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");
    let deployed_td = out["task_definition"].as_str().unwrap().to_owned();
    w.notify("prod").await;
    let (deployment, _) = w.deployment("prod").await;

    // The deployment fails: one page, and the service is frozen.
    let failed = deployment_event(
        "ecs-deployment-failed.json",
        "prod",
        "failed-1",
        "2026-11-26T03:10:00Z",
        &deployment,
    );
    let out = notifier.invoke(&failed).await.ok();
    assert_eq!(out["outcome"], "paged", "{out}");
    assert_eq!(out["froze"], true);
    let pages = w.oncall("prod").await;
    assert_eq!(types(&pages), ["deploy.failed/trigger"]);
    let page = &pages[0];
    assert_eq!(
        page.subject,
        "[PROD] Deployment failed: menotime-prod-service"
    );
    assert_eq!(page.payload["severity"], "critical");
    assert_eq!(
        page.payload["dedup_key"],
        "menotime/prod/menotime-prod-service/deployment"
    );
    assert_eq!(page.payload["source_event_id"], "failed-1");
    assert_eq!(page.attribute("action"), Some("trigger"));
    assert!(
        w.notify("prod").await.is_empty(),
        "the page goes to on-call only"
    );
    let freeze = w.aws.service_tag(prod, FREEZE).await.expect("frozen");
    assert!(
        freeze.starts_with(&format!(
            "deployment {deployment} failed at 2026-11-26T03:10:00Z"
        )),
        "{freeze}"
    );
    assert!(w
        .aws
        .service_tag(prod, INCIDENT)
        .await
        .unwrap()
        .contains("state=open"));

    // EventBridge delivers the failure again: nothing is sent.
    let out = notifier.invoke(&failed).await.ok();
    assert_eq!(out["outcome"], "duplicate", "{out}");
    assert!(w.oncall("prod").await.is_empty());

    // A clean image scanned meanwhile is held, not deployed.
    let mut rescan = event("scan-clean-v1.2.4.json");
    rescan["id"] = json!("rescan-1");
    rescan["time"] = json!("2026-11-26T03:20:00Z");
    let out = gate.invoke(&rescan).await.ok();
    assert_eq!(out["outcome"], "frozen", "{out}");
    assert_eq!(types(&w.notify("prod").await), ["deploy.frozen/notify"]);

    // An operator reviews and lifts the freeze, as the page says.
    w.aws.untag_service(prod, FREEZE).await;
    // ECS had rolled back; a new scan of a clean image deploys again.
    w.aws
        .ecs
        .update_service()
        .cluster(&prod.cluster)
        .service(&prod.service)
        .task_definition(w.aws.revisions(&prod.family).await[1].clone())
        .send()
        .await
        .expect("play ECS's rollback");
    // The rolled-back image, rescanned, is not deployed again by automation...
    let mut rescan2 = rescan.clone();
    rescan2["id"] = json!("rescan-2");
    rescan2["time"] = json!("2026-11-26T03:40:00Z");
    let out = gate.invoke(&rescan2).await.ok();
    assert_eq!(out["outcome"], "skipped", "{out}");
    let skipped = w.notify("prod").await;
    assert_eq!(
        skipped[0].payload["details"]["rolled_back_task_definition"],
        deployed_td.as_str()
    );
    // ...the fix, approved after review, is.
    let out = gate.invoke(&event("approval-v1.2.6.json")).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");
    w.notify("prod").await;

    // That deployment completes: the page is resolved, once.
    let completed = deployment_event(
        "ecs-deployment-completed.json",
        "prod",
        "completed-2",
        "2026-11-26T03:45:00Z",
        "ecs-svc/next",
    );
    let out = notifier.invoke(&completed).await.ok();
    assert_eq!(out["outcome"], "resolved", "{out}");
    let resolves = w.oncall("prod").await;
    assert_eq!(types(&resolves), ["deploy.completed/resolve"]);
    assert_eq!(resolves[0].payload["dedup_key"], page.payload["dedup_key"]);
    assert_eq!(resolves[0].payload["severity"], "info");
    assert_eq!(types(&w.notify("prod").await), ["deploy.completed/notify"]);
    assert!(w
        .aws
        .service_tag(prod, INCIDENT)
        .await
        .unwrap()
        .contains("state=resolved"));

    // The completion again, and a late IN_PROGRESS of the deployment moto shows
    // COMPLETED: nothing.
    let out = notifier.invoke(&completed).await.ok();
    assert_eq!(out["outcome"], "late", "{out}");
    let late = deployment_event(
        "ecs-deployment-in-progress.json",
        "prod",
        "late-1",
        "2026-11-26T03:05:00Z",
        &deployment,
    );
    let out = notifier.invoke(&late).await.ok();
    assert_eq!(out["outcome"], "late", "{out}");
    assert!(w.oncall("prod").await.is_empty());
    assert!(w.notify("prod").await.is_empty());

    notifier.stop().await;
    gate.stop().await;
    w.moto.stop().await;
}

#[tokio::test]
async fn a_page_once_published_is_never_sent_again_by_a_retry_or_another_delivery() {
    let w = World::new().await;
    let prod = w.env("prod");
    let mut notifier = w.notifier("prod").await;
    let (deployment, _) = w.deployment("prod").await;
    let failed = deployment_event(
        "ecs-deployment-failed.json",
        "prod",
        "failed-r",
        "2026-11-26T03:10:00Z",
        &deployment,
    );
    let request = notifier.next_request_id();
    notifier.invoke_as(&request, &failed).await.ok();
    assert_eq!(w.oncall("prod").await.len(), 1);
    // The page was confirmed sent in its marker: a Lambda retry of the same request
    // (say its answer was lost) sends nothing more...
    let out = notifier.invoke_as(&request, &failed).await.ok();
    assert_eq!(out["outcome"], "duplicate", "{out}");
    assert!(w.oncall("prod").await.is_empty());
    // ...nor does any other delivery.
    let out = notifier.invoke(&failed).await.ok();
    assert_eq!(out["outcome"], "duplicate");
    assert!(w.oncall("prod").await.is_empty());
    assert!(w.aws.service_tag(prod, FREEZE).await.is_some());
    notifier.stop().await;
    w.moto.stop().await;
}

#[tokio::test]
async fn an_impairment_pages_once_and_repeated_steady_states_resolve_once() {
    let w = World::new().await;
    let mut notifier = w.notifier("prod").await;
    let impaired = ecs_event(
        "ecs-service-task-start-impaired.json",
        "prod",
        "imp-1",
        "2026-11-26T04:00:00Z",
    );
    assert_eq!(notifier.invoke(&impaired).await.ok()["outcome"], "paged");
    let again = ecs_event(
        "ecs-service-task-start-impaired.json",
        "prod",
        "imp-2",
        "2026-11-26T04:05:00Z",
    );
    assert_eq!(notifier.invoke(&again).await.ok()["outcome"], "duplicate");
    let pages = w.oncall("prod").await;
    assert_eq!(types(&pages), ["service.impaired/trigger"]);
    assert_eq!(
        pages[0].payload["dedup_key"],
        "menotime/prod/menotime-prod-service/service"
    );
    for (i, at) in ["04:10", "04:15", "04:20", "04:25"].iter().enumerate() {
        let steady = ecs_event(
            "ecs-service-steady-state.json",
            "prod",
            &format!("steady-{i}"),
            &format!("2026-11-26T{at}:00Z"),
        );
        let out = notifier.invoke(&steady).await.ok();
        assert_eq!(
            out["outcome"],
            if i == 0 { "resolved" } else { "ignored" },
            "{out}"
        );
    }
    let resolves = w.oncall("prod").await;
    assert_eq!(types(&resolves), ["service.recovered/resolve"]);
    assert_eq!(
        resolves[0].payload["dedup_key"],
        pages[0].payload["dedup_key"]
    );
    assert!(w.notify("prod").await.is_empty());
    notifier.stop().await;
    w.moto.stop().await;
}

#[tokio::test]
async fn staging_notifies_the_team_and_never_freezes_or_pages() {
    let w = World::new().await;
    let staging = w.env("staging");
    let mut notifier = w.notifier("staging").await;
    let (deployment, _) = w.deployment("staging").await;
    let failed = deployment_event(
        "ecs-deployment-failed.json",
        "staging",
        "s-failed",
        "2026-11-26T03:10:00Z",
        &deployment,
    );
    let out = notifier.invoke(&failed).await.ok();
    assert_eq!(out["outcome"], "notified", "{out}");
    let msgs = w.notify("staging").await;
    assert_eq!(types(&msgs), ["deploy.failed/notify"]);
    assert_eq!(msgs[0].payload["severity"], "warning");
    assert_eq!(
        msgs[0].subject,
        "[STAGING] Deployment failed: menotime-staging-service"
    );
    assert!(w.oncall("staging").await.is_empty());
    assert_eq!(w.aws.service_tag(staging, FREEZE).await, None);
    notifier.stop().await;
    w.moto.stop().await;
}

#[tokio::test]
async fn an_in_progress_deployment_and_an_oom_kill_notify_the_team() {
    // Below the desired count moto keeps the deployment IN_PROGRESS.
    let w = World::with_running(0).await;
    let mut notifier = w.notifier("prod").await;
    let (deployment, state) = w.deployment("prod").await;
    assert_eq!(state, "IN_PROGRESS");
    let started = deployment_event(
        "ecs-deployment-in-progress.json",
        "prod",
        "ip-1",
        "2026-11-26T03:00:00Z",
        &deployment,
    );
    assert_eq!(notifier.invoke(&started).await.ok()["outcome"], "notified");
    let oom = notifier.invoke(&event("ecs-task-oom.json")).await.ok();
    assert_eq!(oom["outcome"], "notified", "{oom}");
    let scale_in = notifier
        .invoke(&event("ecs-task-stopped-scale-in.json"))
        .await
        .ok();
    assert_eq!(scale_in["outcome"], "ignored", "{scale_in}");
    let msgs = w.notify("prod").await;
    assert_eq!(
        types(&msgs),
        ["deploy.in_progress/notify", "task.oom/notify"]
    );
    assert_eq!(msgs[1].payload["severity"], "warning");
    assert_eq!(msgs[1].payload["details"]["memory"], "2048");
    assert!(w.oncall("prod").await.is_empty());
    notifier.stop().await;
    w.moto.stop().await;
}

#[tokio::test]
async fn forged_and_foreign_events_are_refused_and_change_nothing() {
    let w = World::new().await;
    let prod = w.env("prod");
    let mut notifier = w.notifier("prod").await;
    for file in [
        "bad-ecs-other-account.json",
        "bad-ecs-other-service.json",
        "scan-clean-v1.2.4.json",
    ] {
        let (kind, message) = notifier.invoke(&event(file)).await.err();
        assert_eq!(kind, "RejectedEvent", "{file}: {message}");
        assert!(message.contains("Nothing was changed"), "{message}");
    }
    assert!(w.oncall("prod").await.is_empty());
    assert!(w.notify("prod").await.is_empty());
    assert_eq!(w.aws.service_tag(prod, FREEZE).await, None);
    notifier.stop().await;
    w.moto.stop().await;
}

#[tokio::test]
async fn a_missing_variable_stops_the_function_at_start_with_one_line() {
    let w = World::new().await;
    let vars = notifier_env(&w.moto, &w.seed, "prod")
        .into_iter()
        .filter(|(k, _)| k != "ONCALL_TOPIC_ARN")
        .collect::<Vec<_>>();
    let (code, out) =
        runtime::run_to_exit(&build_binary("deploy-notifier", "deploy-notifier"), &vars).await;
    assert_eq!(code, Some(2));
    assert!(out.contains("ONCALL_TOPIC_ARN"), "{out}");
    w.moto.stop().await;
}
