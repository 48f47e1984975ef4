//! Late, redriven and half-failed events, end to end: the built binaries against moto
//! through the counting and fault-injecting proxy (which can also show a rollout
//! under way, since moto never changes one).
//!
//! - scan-gate: an image cleared during a rollout waits and is deployed when the
//!   rollout completes (its completion sent to scan-gate); a newer image replaces it;
//!   an operator's rollback is never undone by a redelivered scan; a stale approval
//!   is refused and one whose counts grew is held for review again.
//! - deploy-notifier: SNS failing through all of Lambda's attempts, then a redrive
//!   under a new request id, pages exactly once; TagResource failing through the
//!   first attempt leaves prod frozen after the retry.
#![cfg(test)]

use serde_json::{json, Value};

use menotime_e2e::proxy::{Fault, FaultPlan, Proxy};
use menotime_e2e::*;

const DEFERRED: &str = "menotime:deploy-deferred";
const FREEZE: &str = "menotime:deploy-freeze";

struct World {
    moto: Moto,
    seed: Seed,
    aws: Aws,
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

    async fn start(&self, package: &str, env: Vec<(String, String)>) -> Function {
        let env = with_var(env, "AWS_ENDPOINT_URL", &self.proxy.url);
        Function::start(&build_binary(package, package), package, &env).await
    }

    async fn gate(&self) -> Function {
        self.start("scan-gate", scan_gate_env(&self.moto, &self.seed, "prod"))
            .await
    }

    async fn notifier(&self) -> Function {
        self.start(
            "deploy-notifier",
            notifier_env(&self.moto, &self.seed, "prod"),
        )
        .await
    }

    fn prod(&self) -> &SeedEnv {
        self.seed.env("prod")
    }

    fn pinned(&self, image: &str) -> String {
        format!(
            "123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend@{}",
            self.seed.digest(image)
        )
    }

    async fn notify(&self) -> Vec<Delivered> {
        self.aws.drain(&self.prod().notify_queue_url).await
    }

    async fn oncall(&self) -> Vec<Delivered> {
        self.aws.drain(&self.prod().oncall_queue_url).await
    }

    async fn stop(self, fs: Vec<Function>) {
        for f in fs {
            f.stop().await;
        }
        self.proxy.stop();
        self.moto.stop().await;
    }
}

fn types(msgs: &[Delivered]) -> Vec<String> {
    msgs.iter()
        .map(|m| {
            format!(
                "{}/{}",
                m.event_type(),
                m.payload["details"]["skip_reason"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// The completion of a prod deployment, as the rollout-completed rule delivers it.
fn completed(id: &str) -> Value {
    let mut e = event("ecs-deployment-completed.json");
    e["id"] = json!(id);
    e["time"] = json!(now_minus(5));
    e["detail"]["updatedAt"] = json!(now_minus(5));
    e
}

#[tokio::test]
async fn an_image_cleared_during_a_rollout_is_deployed_when_it_completes() {
    let w = World::new().await;
    let mut gate = w.gate().await;
    let before = w.aws.service(w.prod()).await;

    // A rollout is under way (another deployment, 30 minutes long: far beyond
    // Lambda's two retries).
    w.proxy.set_rollout(Some("IN_PROGRESS"));
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "deferred", "{out}");
    let waiting = w
        .aws
        .service_tag(w.prod(), DEFERRED)
        .await
        .expect("waiting");
    assert!(waiting.contains(w.seed.digest("v1.2.4")), "{waiting}");
    assert_eq!(types(&w.notify().await), ["deploy.deferred/"]);
    let unchanged = w.aws.service(w.prod()).await;
    assert_eq!(unchanged.task_definition, before.task_definition);
    // A redelivery during the rollout changes nothing but says so again.
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "deferred", "{out}");
    w.notify().await;

    // The rollout completes; its completion reaches scan-gate.
    w.proxy.set_rollout(None);
    let out = gate.invoke(&completed("rollout-done-1")).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");
    assert_eq!(out["deferred_event"], event("scan-clean-v1.2.4.json")["id"]);
    let after = w.aws.service(w.prod()).await;
    assert_eq!(after.image, w.pinned("v1.2.4"));
    assert_eq!(w.aws.service_tag(w.prod(), DEFERRED).await, None);
    assert_eq!(types(&w.notify().await), ["deploy.started/"]);
    // The same completion again (EventBridge delivers at least once): nothing.
    let out = gate.invoke(&completed("rollout-done-1")).await.ok();
    assert_eq!(out["outcome"], "not_routed", "{out}");
    assert!(w.notify().await.is_empty());
    assert_eq!(w.aws.service(w.prod()).await, after);
    w.stop(vec![gate]).await;
}

#[tokio::test]
async fn a_newer_image_replaces_the_one_waiting_which_is_reported_superseded() {
    let w = World::new().await;
    let mut gate = w.gate().await;
    w.proxy.set_rollout(Some("IN_PROGRESS"));
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "deferred", "{out}");
    w.notify().await;
    // v1.2.6 is approved meanwhile: it waits instead of v1.2.4.
    let out = gate.invoke(&event("approval-v1.2.6.json")).await.ok();
    assert_eq!(out["outcome"], "deferred", "{out}");
    let msgs = w.notify().await;
    assert_eq!(
        types(&msgs),
        ["deploy.deferred/", "deploy.skipped/superseded"]
    );
    assert_eq!(
        msgs[1].payload["details"]["image_digest"],
        w.seed.digest("v1.2.4")
    );
    assert!(w
        .aws
        .service_tag(w.prod(), DEFERRED)
        .await
        .unwrap()
        .contains("tag=v1.2.6"));
    // The rollout completes: v1.2.6 deploys, as approved (its findings read again).
    w.proxy.set_rollout(None);
    let out = gate.invoke(&completed("rollout-done-2")).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");
    assert_eq!(out["approved_by"], "jdoe");
    assert_eq!(w.aws.service(w.prod()).await.image, w.pinned("v1.2.6"));
    assert_eq!(w.aws.service_tag(w.prod(), DEFERRED).await, None);
    w.stop(vec![gate]).await;
}

#[tokio::test]
async fn an_operator_rollback_is_never_undone_by_a_redelivered_scan() {
    let w = World::new().await;
    let mut gate = w.gate().await;
    let before = w.aws.service(w.prod()).await;
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");
    w.notify().await;
    // The operator rolls back to the previous revision (a new deployment).
    w.aws
        .ecs
        .update_service()
        .cluster(&w.prod().cluster)
        .service(&w.prod().service)
        .task_definition(&before.task_definition)
        .force_new_deployment(true)
        .send()
        .await
        .expect("roll back");
    // EventBridge redelivers the scan (or it is redriven, or ECR rescans the image).
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "skipped", "{out}");
    assert!(
        out["reason"].as_str().unwrap().contains("was deployed as"),
        "{out}"
    );
    assert_eq!(
        w.aws.service(w.prod()).await.task_definition,
        before.task_definition,
        "still rolled back"
    );
    let msgs = w.notify().await;
    assert_eq!(types(&msgs), ["deploy.skipped/rolled_back"]);
    assert!(msgs[0].payload["details"]["rolled_back_at"].is_string());
    assert_eq!(
        msgs[0].subject,
        "[PROD] Deploy skipped: v1.2.4 was rolled back"
    );
    w.stop(vec![gate]).await;
}

#[tokio::test]
async fn a_stale_approval_is_refused_and_one_whose_counts_grew_is_held_again() {
    let w = World::new().await;
    let mut gate = w.gate().await;
    let before = w.aws.service(w.prod()).await;
    let mut stale = event("approval-v1.2.6.json");
    stale["time"] = json!(now_minus(169 * 3600));
    let (error_type, message) = gate.invoke(&stale).await.err();
    assert_eq!(error_type, "RejectedEvent");
    assert!(message.contains("APPROVAL_MAX_AGE_HOURS"), "{message}");
    let mut missing = event("approval-v1.2.6.json");
    missing["detail"]
        .as_object_mut()
        .unwrap()
        .remove("reviewed-counts");
    let (error_type, message) = gate.invoke(&missing).await.err();
    assert_eq!(error_type, "RejectedEvent");
    assert!(message.contains("reviewed-counts"), "{message}");
    assert!(w.notify().await.is_empty());
    // The approver saw 1 MEDIUM; ECR reports 2 now.
    let mut grown = event("approval-v1.2.6.json");
    grown["detail"]["reviewed-counts"] = json!({"MEDIUM": 1});
    let out = gate.invoke(&grown).await.ok();
    assert_eq!(out["outcome"], "review_required", "{out}");
    assert_eq!(w.aws.service(w.prod()).await, before);
    let msgs = w.notify().await;
    assert_eq!(types(&msgs), ["deploy.review_required/"]);
    let details = &msgs[0].payload["details"];
    assert_eq!(details["counts"]["MEDIUM"], 2);
    assert_eq!(details["reviewed_counts"], json!({"MEDIUM": 2}));
    assert_eq!(details["grown_since_review"][0]["reviewed"], 1);
    // Approved again with what it shows now: deployed.
    let out = gate.invoke(&event("approval-v1.2.6.json")).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");
    w.stop(vec![gate]).await;
}

/// moto's one deployment of prod, failed.
async fn failure(w: &World) -> Value {
    let deployment = w.aws.deployments(w.prod()).await.remove(0).0;
    let mut e = event("ecs-deployment-failed.json");
    e["detail"]["deploymentId"] = json!(deployment);
    e["time"] = json!(now_minus(60));
    e["detail"]["updatedAt"] = json!(now_minus(60));
    e
}

#[tokio::test]
async fn sns_failing_through_every_attempt_then_a_redrive_pages_exactly_once() {
    let w = World::new().await;
    let mut notifier = w.notifier().await;
    let failed = failure(&w).await;
    // Every Publish fails: the SDK's 3 attempts in each of Lambda's 3 attempts, all
    // with one request id.
    w.proxy.set_plan(FaultPlan {
        fail_first: vec![("Publish".into(), 9, Fault::ServerError)],
        ..Default::default()
    });
    let id = notifier.next_request_id();
    for attempt in 1..=3 {
        let (error_type, message) = notifier.invoke_as(&id, &failed).await.err();
        assert_eq!(
            error_type, "AwsTransientError",
            "attempt {attempt}: {message}"
        );
    }
    let calls = w.proxy.take_calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.operation == "Publish" && c.fault.is_some())
            .count(),
        9
    );
    assert!(w.oncall().await.is_empty(), "nothing got through");
    // The page and the freeze were recorded by the first attempt.
    assert!(w.aws.service_tag(w.prod(), FREEZE).await.is_some());
    // Hours later the failure queue is redriven: a new request id.
    w.proxy.set_plan(FaultPlan::default());
    let out = notifier.invoke(&failed).await.ok();
    assert_eq!(out["outcome"], "paged", "{out}");
    assert_eq!(out["resent"], true);
    let pages = w.oncall().await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].payload["action"], "trigger");
    // A second redrive (or EventBridge's duplicate): nothing more.
    let out = notifier.invoke(&failed).await.ok();
    assert_eq!(out["outcome"], "duplicate", "{out}");
    assert!(w.oncall().await.is_empty());
    w.stop(vec![notifier]).await;
}

#[tokio::test]
async fn tag_writes_failing_through_the_first_attempt_leave_prod_frozen_after_the_retry() {
    let w = World::new().await;
    let mut notifier = w.notifier().await;
    let failed = failure(&w).await;
    // Every TagResource of the first attempt fails (the record, then the
    // confirmation that would carry the freeze: 3 SDK attempts each).
    w.proxy.set_plan(FaultPlan {
        fail_first: vec![("TagResource".into(), 6, Fault::ServerError)],
        ..Default::default()
    });
    let id = notifier.next_request_id();
    let (error_type, message) = notifier.invoke_as(&id, &failed).await.err();
    assert_eq!(error_type, "RetryLater", "{message}");
    assert!(message.contains("could not be frozen"), "{message}");
    let pages = w.oncall().await;
    assert_eq!(pages.len(), 1, "the page was not held back");
    assert_eq!(pages[0].payload["details"]["frozen"], false);
    assert_eq!(w.aws.service_tag(w.prod(), FREEZE).await, None);
    // Lambda's retry (same request id) writes the freeze.
    let out = notifier.invoke_as(&id, &failed).await.ok();
    assert_eq!(out["froze"], true, "{out}");
    assert!(w.aws.service_tag(w.prod(), FREEZE).await.is_some());
    // Its page is the documented second one, with the same dedup_key.
    let again = w.oncall().await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].payload["dedup_key"], pages[0].payload["dedup_key"]);
    w.stop(vec![notifier]).await;
}

/// moto keeps a deployment IN_PROGRESS for ever when fewer tasks run than desired: the
/// completion event is believed for the rollout it ends, whatever ECS still shows.
#[tokio::test]
async fn the_completion_is_believed_even_while_ecs_still_shows_the_rollout() {
    let moto = Moto::start_with_running(1).await;
    let seed = moto.seed().await;
    let aws = Aws::new(&moto).await;
    let prod = seed.env("prod").clone();
    let mut gate = Function::start(
        &build_binary("scan-gate", "scan-gate"),
        "scan-gate",
        &scan_gate_env(&moto, &seed, "prod"),
    )
    .await;
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "deferred", "{out}");
    let (deployment, state) = aws.deployments(&prod).await.remove(0);
    assert_eq!(state, "IN_PROGRESS");
    let mut done = completed("rollout-done-3");
    done["detail"]["deploymentId"] = json!(deployment);
    let out = gate.invoke(&done).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");
    assert!(aws
        .service(&prod)
        .await
        .image
        .contains(seed.digest("v1.2.4")));
    gate.stop().await;
    moto.stop().await;
}
