//! The fault suite: every state-changing path of the three functions, with AWS
//! answering badly. A proxy between the built binaries and moto throttles, fails with
//! 500s, drops connections and slows answers on a share of the calls (a seeded,
//! reproducible choice); each event is delivered as Lambda delivers an asynchronous
//! invocation (up to 3 attempts with the same request id), then the final state is
//! checked against the invariants:
//!
//! - scan-gate: the service runs the image exactly once, its revision marked deployed;
//!   no orphan revision; the duplicate delivery deploys nothing.
//! - deploy-notifier: at least one page, more only after a failed tag write (same
//!   dedup_key), prod frozen, the duplicate silent, one resolve; what went to the
//!   failure queue is redriven and finishes.
//! - offhours-scaler: the snapshot is never overwritten or lost; the morning restores
//!   exactly the capacity of the evening; the repeats change nothing. With its window,
//!   whatever the faults did to a reconcile run, the next clean run finishes the job.
//!
//! The figures (calls, faults injected, attempts, outcomes) are printed; run with
//! `cargo test -p menotime-e2e --test faults -- --nocapture` to see them.
//! `MENOTIME_FAULT_ROUNDS` sets the rounds per function (default 4).

use std::time::Duration;

use serde_json::{json, Value};

use menotime_e2e::offhours::{day_now, holiday_now, offhours_env, snapshot, Capacities};
use menotime_e2e::proxy::{Call, Fault, FaultPlan, Proxy};
use menotime_e2e::*;

const RATE: f64 = 0.3;

fn rounds() -> u64 {
    std::env::var("MENOTIME_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

fn plan(seed: u64) -> FaultPlan {
    FaultPlan {
        kinds: vec![
            Fault::Throttle,
            Fault::ServerError,
            Fault::Drop,
            Fault::Slow(Duration::from_millis(300)),
        ],
        rate: RATE,
        seed,
        ..Default::default()
    }
}

/// What Lambda did with one asynchronous event.
struct Delivery {
    attempts: usize,
    result: Result<Value, (String, String)>,
}

/// Lambda's handling of an asynchronous invocation: the first attempt and up to two
/// retries, all with the same request id; after that the event would go to the
/// failure queue.
async fn deliver(f: &mut Function, event: &Value) -> Delivery {
    let id = f.next_request_id();
    let mut last = Err((String::new(), String::new()));
    for attempt in 1..=3 {
        match f.invoke_as(&id, event).await {
            Invocation::Ok(v) => {
                return Delivery {
                    attempts: attempt,
                    result: Ok(v),
                }
            }
            Invocation::Err {
                error_type,
                error_message,
            } => last = Err((error_type, error_message)),
        }
    }
    Delivery {
        attempts: 3,
        result: last,
    }
}

#[derive(Default)]
struct Tally {
    rounds: u64,
    calls: usize,
    faults: usize,
    deliveries: usize,
    retried: usize,
    to_failure_queue: usize,
    redriven: usize,
    pages_repeated_after_a_failed_tag_write: usize,
}

impl Tally {
    fn add_calls(&mut self, calls: &[Call]) {
        self.calls += calls.len();
        self.faults += calls.iter().filter(|c| c.fault.is_some()).count();
    }

    fn add(&mut self, d: &Delivery) {
        self.deliveries += 1;
        if d.attempts > 1 {
            self.retried += 1;
        }
        if d.result.is_err() {
            self.to_failure_queue += 1;
        }
    }

    fn report(&self, what: &str) {
        eprintln!(
            "fault suite, {what}: {} rounds, {} AWS calls, {} faults injected ({:.0}%), {} deliveries, {} needed a Lambda retry, {} went to the failure queue, {} redriven to completion, {} page(s) repeated (same dedup_key) after a failed tag write; all invariants held",
            self.rounds,
            self.calls,
            self.faults,
            100.0 * self.faults as f64 / self.calls.max(1) as f64,
            self.deliveries,
            self.retried,
            self.to_failure_queue,
            self.redriven,
            self.pages_repeated_after_a_failed_tag_write,
        );
    }
}

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

    async fn stop(self) {
        self.proxy.stop();
        self.moto.stop().await;
    }
}

/// The plan of a round: the random faults, and a burst that defeats every SDK
/// attempt of one call, so the Lambda retry (same request id) has to finish the job.
fn plan_with_burst(seed: u64, ops: &[&str]) -> FaultPlan {
    let op = ops[(seed as usize) % ops.len()];
    FaultPlan {
        fail_first: vec![(op.to_owned(), 3, Fault::ServerError)],
        ..plan(seed)
    }
}

#[tokio::test]
async fn scan_gate_deploys_exactly_once_under_faults() {
    let mut tally = Tally::default();
    for round in 0..rounds() {
        let w = World::new().await;
        let prod = w.seed.env("prod").clone();
        let revisions_before = w.aws.revisions(&prod.family).await.len();
        let mut gate = w
            .start("scan-gate", scan_gate_env(&w.moto, &w.seed, "prod"))
            .await;
        w.proxy.set_plan(plan_with_burst(
            1000 + round,
            &[
                "RegisterTaskDefinition",
                "UpdateService",
                "TagResource",
                "Publish",
                "DescribeServices",
            ],
        ));
        let first = deliver(&mut gate, &event("scan-clean-v1.2.4.json")).await;
        let again = deliver(&mut gate, &event("scan-clean-v1.2.4.json")).await;
        w.proxy.set_plan(FaultPlan::default());
        tally.add(&first);
        tally.add(&again);
        tally.add_calls(&w.proxy.take_calls());

        let view = w.aws.service(&prod).await;
        let revisions = w.aws.revisions(&prod.family).await.len();
        let deployed = first.result.is_ok() || again.result.is_ok();
        if deployed {
            assert!(
                view.image.contains(w.seed.digest("v1.2.4")),
                "round {round}: {view:?}"
            );
            assert_eq!(
                revisions,
                revisions_before + 1,
                "round {round}: one revision, no orphan"
            );
            // ...marked deployed (a lost mark is written by the retry or the duplicate).
            let tags = w
                .aws
                .ecs
                .describe_task_definition()
                .task_definition(&view.task_definition)
                .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
                .send()
                .await
                .unwrap()
                .tags
                .unwrap_or_default();
            assert!(
                tags.iter().any(|t| t.key() == Some("menotime:deployed")),
                "round {round}: the deployed revision is not marked"
            );
        } else {
            // Both deliveries exhausted their retries: nothing half-done remains
            // (at most the one revision a retry from the failure queue reuses).
            assert!(revisions <= revisions_before + 1, "round {round}");
        }
        let notes = w.aws.drain(&prod.notify_queue_url).await;
        let started = notes
            .iter()
            .filter(|m| m.event_type() == "deploy.started")
            .count();
        assert!(
            started <= 1,
            "round {round}: deploy.started {started} times"
        );
        assert!(w.aws.drain(&prod.oncall_queue_url).await.is_empty());
        gate.stop().await;
        w.stop().await;
        tally.rounds += 1;
    }
    tally.report("scan-gate (deploy, then its duplicate)");
}

/// TagResource calls the proxy failed.
fn tag_faults(calls: &[Call]) -> usize {
    calls
        .iter()
        .filter(|c| c.operation == "TagResource" && c.fault.is_some())
        .count()
}

#[tokio::test]
async fn deploy_notifier_pages_once_and_resolves_once_under_faults() {
    let mut tally = Tally::default();
    for round in 0..rounds() {
        let w = World::new().await;
        let prod = w.seed.env("prod").clone();
        let mut notifier = w
            .start("deploy-notifier", notifier_env(&w.moto, &w.seed, "prod"))
            .await;
        let deployment = w.aws.deployments(&prod).await.remove(0).0;
        let mut failed = event("ecs-deployment-failed.json");
        failed["detail"]["deploymentId"] = json!(deployment);
        let mut completed = event("ecs-deployment-completed.json");
        completed["detail"]["updatedAt"] = json!("2026-11-26T04:00:00Z");

        w.proxy.set_plan(plan_with_burst(
            2000 + round,
            &[
                "Publish",
                "TagResource",
                "DescribeTaskDefinition",
                "DescribeServices",
            ],
        ));
        let page = deliver(&mut notifier, &failed).await;
        let duplicate = deliver(&mut notifier, &failed).await;
        let page_calls = w.proxy.take_calls();
        w.proxy.set_plan(FaultPlan::default());
        tally.add(&page);
        tally.add(&duplicate);
        tally.add_calls(&page_calls);
        // What still failed is redriven from the failure queue later (a new request
        // id), AWS healthy again: it must finish.
        if page.result.is_err() && duplicate.result.is_err() {
            let redrive = deliver(&mut notifier, &failed).await;
            assert!(redrive.result.is_ok(), "round {round}: the redrive failed");
            tally.redriven += 1;
        }

        let pages = w.aws.drain(&prod.oncall_queue_url).await;
        let triggers = pages
            .iter()
            .filter(|m| m.payload["action"] == "trigger")
            .count();
        let tag_faulted = tag_faults(&page_calls);
        // Never lost; more than once only when a state write failed (the freeze
        // retried by Lambda, or a confirmation lost), at most once more per such
        // failed attempt, always with the same dedup_key.
        assert!(triggers >= 1, "round {round}: no page");
        if tag_faulted == 0 {
            assert_eq!(triggers, 1, "round {round}: {triggers} pages");
        } else {
            assert!(
                triggers <= 1 + tag_faulted,
                "round {round}: {triggers} pages for {tag_faulted} failed tag writes"
            );
            tally.pages_repeated_after_a_failed_tag_write += triggers - 1;
        }
        assert!(pages
            .iter()
            .all(|m| m.payload["dedup_key"] == pages[0].payload["dedup_key"]));
        // Prod always ends frozen after a failure.
        assert!(
            w.aws
                .service_tag(&prod, "menotime:deploy-freeze")
                .await
                .is_some(),
            "round {round}: not frozen"
        );

        // The freeze is lifted; the next deployment completes: one resolve.
        w.aws.untag_service(&prod, "menotime:deploy-freeze").await;
        w.proxy.set_plan(plan(3000 + round));
        let resolve = deliver(&mut notifier, &completed).await;
        let resolve_again = deliver(&mut notifier, &completed).await;
        w.proxy.set_plan(FaultPlan::default());
        tally.add(&resolve);
        tally.add(&resolve_again);
        let resolve_calls = w.proxy.take_calls();
        tally.add_calls(&resolve_calls);
        if resolve.result.is_err() && resolve_again.result.is_err() {
            let redrive = deliver(&mut notifier, &completed).await;
            assert!(redrive.result.is_ok(), "round {round}: the redrive failed");
            tally.redriven += 1;
        }
        let resolves = w
            .aws
            .drain(&prod.oncall_queue_url)
            .await
            .iter()
            .filter(|m| m.payload["action"] == "resolve")
            .count();
        assert!(resolves >= 1, "round {round}: the page was never resolved");
        if tag_faults(&resolve_calls) == 0 {
            assert_eq!(resolves, 1, "round {round}: resolves");
        }
        notifier.stop().await;
        w.stop().await;
        tally.rounds += 1;
    }
    tally.report("deploy-notifier (page, duplicate, resolve, duplicate; failures redriven)");
}

#[tokio::test]
async fn offhours_scaler_restores_exactly_under_faults() {
    let mut tally = Tally::default();
    for round in 0..rounds() {
        let w = World::new().await;
        let caps = Capacities::new(&w.moto).await;
        let mut scalers = Vec::new();
        for env in ["dev", "prod"] {
            scalers.push((
                env,
                w.start("offhours-scaler", offhours_env(&w.moto, &w.seed, env))
                    .await,
            ));
        }
        for (env, scaler) in scalers.iter_mut() {
            let e = w.seed.env(env).clone();
            let evening = caps.capacity(&w.aws, &e).await;
            w.proxy.set_plan(plan_with_burst(
                4000 + round * 10 + u64::from(*env == "prod"),
                &[
                    "UpdateService",
                    "RegisterScalableTarget",
                    "Publish",
                    "TagResource",
                ],
            ));
            let down = deliver(scaler, &json!({"action": "scale-down"})).await;
            let down_again = deliver(scaler, &json!({"action": "scale-down"})).await;
            w.proxy.set_plan(FaultPlan::default());
            tally.add(&down);
            tally.add(&down_again);
            tally.add_calls(&w.proxy.take_calls());
            let saved = snapshot(&w.aws, &e).await;
            if down.result.is_ok() || down_again.result.is_ok() {
                let saved = saved.clone().expect("a snapshot after a scale-down");
                assert!(
                    saved.contains(&format!("desired={}", evening.desired)),
                    "round {round} {env}: the snapshot {saved} is the evening's {evening}"
                );
                assert!(caps.capacity(&w.aws, &e).await.desired <= evening.desired);
            }
            w.proxy.set_plan(plan_with_burst(
                5000 + round * 10 + u64::from(*env == "prod"),
                &[
                    "UntagResource",
                    "RegisterScalableTarget",
                    "UpdateService",
                    "Publish",
                ],
            ));
            let up = deliver(scaler, &json!({"action": "scale-up"})).await;
            let up_again = deliver(scaler, &json!({"action": "scale-up"})).await;
            w.proxy.set_plan(FaultPlan::default());
            tally.add(&up);
            tally.add(&up_again);
            tally.add_calls(&w.proxy.take_calls());
            let morning = caps.capacity(&w.aws, &e).await;
            if up.result.is_ok() || up_again.result.is_ok() {
                assert_eq!(morning, evening, "round {round} {env}: restored exactly");
                assert_eq!(snapshot(&w.aws, &e).await, None, "round {round} {env}");
            } else {
                // Never restored: the snapshot must still be there for a redrive.
                assert_eq!(
                    snapshot(&w.aws, &e).await,
                    saved,
                    "round {round} {env}: snapshot kept"
                );
            }
            w.aws.drain(&e.notify_queue_url).await;
        }
        for (_, s) in scalers {
            s.stop().await;
        }
        w.stop().await;
        tally.rounds += 1;
    }
    tally.report("offhours-scaler (down, down again, up, up again; dev and prod)");
}

#[tokio::test]
async fn offhours_reconcile_heals_at_the_next_run_under_faults() {
    let mut tally = Tally::default();
    let reconcile = json!({"action": "reconcile"});
    for round in 0..rounds() {
        let w = World::new().await;
        let caps = Capacities::new(&w.moto).await;
        let prod = w.seed.env("prod").clone();
        let evening = caps.capacity(&w.aws, &prod).await;
        let mut night = w
            .start("offhours-scaler", holiday_now(&w.moto, &w.seed, "prod"))
            .await;
        w.proxy.set_plan(plan_with_burst(
            6000 + round,
            &[
                "TagResource",
                "RegisterScalableTarget",
                "UpdateService",
                "Publish",
            ],
        ));
        for _ in 0..2 {
            let d = deliver(&mut night, &reconcile).await;
            tally.add(&d);
        }
        w.proxy.set_plan(FaultPlan::default());
        tally.add_calls(&w.proxy.take_calls());
        // The next clean run finishes whatever the faults left.
        let clean = deliver(&mut night, &reconcile).await;
        assert!(clean.result.is_ok(), "round {round}: {:?}", clean.result);
        let saved = snapshot(&w.aws, &prod)
            .await
            .unwrap_or_else(|| panic!("round {round}: no snapshot at night"));
        assert!(
            saved.starts_with(&format!("min=2 max=4 desired={} ", evening.desired)),
            "round {round}: the snapshot {saved} is the evening's {evening}"
        );
        let at_night = caps.capacity(&w.aws, &prod).await;
        assert_eq!(
            at_night.target.map(|t| t.min),
            Some(1),
            "round {round}: {at_night}"
        );
        night.stop().await;

        let mut day = w
            .start("offhours-scaler", day_now(&w.moto, &w.seed, "prod"))
            .await;
        w.proxy.set_plan(plan_with_burst(
            7000 + round,
            &[
                "TagResource",
                "RegisterScalableTarget",
                "UntagResource",
                "Publish",
            ],
        ));
        for _ in 0..2 {
            let d = deliver(&mut day, &reconcile).await;
            tally.add(&d);
        }
        w.proxy.set_plan(FaultPlan::default());
        tally.add_calls(&w.proxy.take_calls());
        let clean = deliver(&mut day, &reconcile).await;
        assert!(clean.result.is_ok(), "round {round}: {:?}", clean.result);
        assert_eq!(
            caps.capacity(&w.aws, &prod).await,
            evening,
            "round {round}: restored exactly"
        );
        assert_eq!(snapshot(&w.aws, &prod).await, None, "round {round}");
        // Nothing paged: the tasks ran (moto runs them at once).
        assert!(w.aws.drain(&prod.oncall_queue_url).await.is_empty());
        w.aws.drain(&prod.notify_queue_url).await;
        day.stop().await;
        w.stop().await;
        tally.rounds += 1;
    }
    tally.report("offhours-scaler reconcile (night twice, then clean; day twice, then clean)");
}
