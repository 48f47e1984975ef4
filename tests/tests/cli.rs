//! menotime-ops end to end: the built binary run as a subprocess, as an operator runs
//! it, against moto's server seeded with the manual's three environments (prod runs
//! `menotime-backend-prod:2` with v1.2.3; `:1`, v1.2.2, is the previous ACTIVE revision).
//! Assertions are on what it printed, its exit status, and what moto holds afterwards;
//! every failure must be one line on stderr that changed nothing.
//!
//! The approval is followed all the way: the CLI's event, as EventBridge delivers it
//! from the approvals bus (captured by a rule with an SQS target), is handed to the
//! scan-gate binary through the Runtime API host, and deploys.

#![cfg(test)]

use std::time::Duration;

use serde_json::Value;

use menotime_e2e::offhours::{holidays_around, ALWAYS_UP};
use menotime_e2e::ops::{approvals_capture, captured, Ops, Run};
use menotime_e2e::*;
use menotime_shared::tags;

struct World {
    moto: Moto,
    seed: Seed,
    aws: Aws,
    ops: Ops,
}

impl World {
    async fn new() -> World {
        Self::with_running(2).await
    }

    /// `running`: tasks moto reports running per service; below a service's desired
    /// count its deployment stays IN_PROGRESS (a rollout in progress).
    async fn with_running(running: u32) -> World {
        let moto = Moto::start_with_running(running).await;
        let seed = moto.seed().await;
        let aws = Aws::new(&moto).await;
        let ops = Ops::new(&moto);
        World {
            moto,
            seed,
            aws,
            ops,
        }
    }

    fn env(&self, env: &str) -> &SeedEnv {
        self.seed.env(env)
    }

    async fn ops(&self, args: &[&str]) -> Run {
        self.ops.run(args).await
    }

    async fn tag(&self, env: &str, key: &str) -> Option<String> {
        self.aws.service_tag(self.env(env), key).await
    }

    fn td(&self, env: &str, revision: u32) -> String {
        format!(
            "arn:aws:ecs:us-west-1:123456789012:task-definition/{}:{revision}",
            self.env(env).family
        )
    }

    async fn stop(self) {
        self.moto.stop().await;
    }
}

fn no_colour(r: &Run) {
    assert!(
        !r.stdout.contains('\x1b'),
        "no colour when stdout is not a terminal: {r:#?}"
    );
}

#[tokio::test]
async fn every_command_has_help() {
    let ops = Ops {
        bin: build_binary("menotime-ops", "menotime-ops"),
        env: Vec::new(),
    };
    let top = ops.run(&["--help"]).await;
    top.ok();
    for word in [
        "status",
        "approve",
        "freeze",
        "unfreeze",
        "rollback",
        "offhours",
        "plan",
        "Exit status",
    ] {
        assert!(top.stdout.contains(word), "{word}: {}", top.stdout);
    }
    for cmd in [
        vec!["status"],
        vec!["approve"],
        vec!["freeze"],
        vec!["unfreeze"],
        vec!["rollback"],
        vec!["offhours"],
        vec!["offhours", "hold"],
        vec!["offhours", "release"],
        vec!["plan"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let r = ops.run(&args).await;
        r.ok();
        assert!(
            r.stdout
                .contains(&format!("Usage: menotime-ops {}", cmd.join(" "))),
            "{r:#?}"
        );
        if cmd != ["offhours"] {
            assert!(r.stdout.contains("--env <ENV>"), "{r:#?}");
            assert!(r.stdout.contains("--json"), "{r:#?}");
        }
        let writes = [
            "approve", "freeze", "unfreeze", "rollback", "hold", "release",
        ];
        if writes.contains(cmd.last().unwrap()) {
            assert!(r.stdout.contains("--dry-run"), "{r:#?}");
        }
    }
    // No command: one line saying where the list is.
    let line = ops.run(&[]).await.failed(2);
    assert!(line.contains("`menotime-ops --help`"), "{line}");
    let line = ops.run(&["offhours"]).await.failed(2);
    assert!(line.contains("`menotime-ops offhours --help`"), "{line}");
    let v = ops.run(&["--version"]).await;
    assert!(v.ok().stdout.starts_with("menotime-ops "), "{v:#?}");
}

#[tokio::test]
async fn status_shows_where_prod_stands() {
    let w = World::new().await;
    let prod = w.env("prod");
    let freeze = "deployment ecs-svc/42 failed at 2026-11-26T09:00:00Z: ECS deployment circuit breaker: task failed to start.";
    w.aws.tag_service(prod, tags::DEPLOY_FREEZE, freeze).await;
    w.aws
        .tag_service(
            prod,
            tags::DEPLOY_INCIDENT,
            "deployment=ecs-svc/42 sent=failed state=open at=2026-11-26T09:00:01.000Z request=r1",
        )
        .await;
    w.aws
        .tag_service(prod, tags::SERVICE_INCIDENT, "garbage")
        .await;
    w.aws
        .tag_service(
            prod,
            tags::OFFHOURS_SNAPSHOT,
            "min=2 max=4 desired=2 suspended=none saved=2026-11-26T04:00:00Z",
        )
        .await;
    w.aws
        .tag_service(prod, tags::OFFHOURS, "skip-until=2099-01-01T00:00:00Z")
        .await;
    // An image waiting for a rollout, as scan-gate writes it.
    let waiting = format!("sha256:{}", "ab".repeat(32));
    w.aws
        .tag_service(
            prod,
            tags::DEPLOY_DEFERRED,
            &format!("digest={waiting} tag=v1.2.9 scanned=2026-11-26T09:00:00Z event=e-9"),
        )
        .await;
    // State a newer release keeps is shown as it is, never hidden.
    w.aws
        .tag_service(prod, "menotime:next-release-state", "v1.2.9 sha256:ab")
        .await;

    let j = w.ops(&["status", "--env", "prod", "--json"]).await.json();
    assert_eq!(j["environment"], "prod");
    assert_eq!(j["cluster"], "menotime-prod-cluster");
    assert_eq!(j["service"], "menotime-prod-service");
    assert_eq!(j["service_arn"], prod.service_arn.as_str());
    assert_eq!(j["tasks"]["desired"], 2);
    assert_eq!(
        j["rollout"],
        Value::Null,
        "moto reports the rollout COMPLETED"
    );
    assert_eq!(j["deployments"][0]["status"], "PRIMARY");
    assert_eq!(j["revision"]["arn"], w.td("prod", 2).as_str());
    assert_eq!(j["revision"]["revision"], "menotime-backend-prod:2");
    assert_eq!(j["revision"]["status"], "ACTIVE");
    assert_eq!(j["revision"]["image_tag"], "v1.2.3");
    assert_eq!(j["revision"]["digest_pinned"], false);
    assert_eq!(
        j["revision"]["digest"],
        w.seed.digest("v1.2.3"),
        "what the tag names now"
    );
    assert_eq!(j["freeze"]["value"], freeze);
    assert_eq!(j["freeze"]["by"], "deploy-notifier");
    assert_eq!(j["freeze"]["at"], "2026-11-26T09:00:00Z");
    assert_eq!(j["incidents"]["deployment"]["state"], "open");
    assert_eq!(j["incidents"]["deployment"]["deployment"], "ecs-svc/42");
    assert_eq!(
        j["incidents"]["deployment"]["sent"],
        serde_json::json!(["failed"])
    );
    assert_eq!(
        j["incidents"]["deployment"]["at"],
        "2026-11-26T09:00:01.000Z"
    );
    assert_eq!(j["incidents"]["service"]["state"], "unreadable");
    assert_eq!(j["offhours"]["snapshot"]["desired"], 2);
    assert_eq!(j["offhours"]["snapshot"]["min"], 2);
    assert_eq!(j["offhours"]["exclusion"]["kind"], "hold");
    assert_eq!(j["offhours"]["exclusion"]["until"], "2099-01-01T00:00:00Z");
    assert_eq!(j["offhours"]["exclusion"]["active"], true);
    // offhours-scaler honours the hold until its time, and status says so.
    assert_eq!(j["offhours"]["exclusion"]["honoured_by_scaler"], true);
    assert_eq!(j["offhours"]["scalable_target"]["min"], 2);
    assert_eq!(j["offhours"]["scalable_target"]["max"], 4);
    assert_eq!(j["deferred_deploy"]["tag"], "v1.2.9");
    assert_eq!(j["deferred_deploy"]["digest"], waiting.as_str());
    assert_eq!(
        j["other_state_tags"]["menotime:next-release-state"],
        "v1.2.9 sha256:ab"
    );
    assert_eq!(j["notes"], serde_json::json!([]));

    let r = w.ops(&["status", "--env", "prod"]).await;
    r.ok();
    no_colour(&r);
    for needle in [
        "menotime-prod-cluster / menotime-prod-service (prod)",
        "2 running of 2 desired",
        "menotime-backend-prod:2 (ACTIVE)",
        "v1.2.3",
        "FROZEN: scan-gate deploys nothing",
        "by deploy-notifier at 2026-11-26T09:00:00Z",
        "menotime-ops unfreeze --reason '...' --env prod",
        "OPEN deployment ecs-svc/42, sent failed",
        "unreadable",
        "HELD until 2099-01-01T00:00:00Z",
        "scaled down; saved min=2 max=4 desired=2",
        "min=2 max=4 suspended=none",
        "v1.2.9 (sha256:abab",
        "menotime:next-release-state",
    ] {
        assert!(
            r.stdout.contains(needle),
            "{needle:?} missing:\n{}",
            r.stdout
        );
    }
    // Another environment, by the manual's names.
    let dev = w.ops(&["status", "--env", "dev", "--json"]).await.json();
    assert_eq!(dev["service"], "menotime-dev-service");
    assert_eq!(dev["freeze"], Value::Null);
    assert_eq!(dev["offhours"]["scalable_target"], Value::Null);
    w.stop().await;
}

#[tokio::test]
async fn freeze_and_unfreeze_keep_who_why_and_when() {
    let w = World::new().await;
    let prod = w.env("prod");

    let r = w
        .ops(&[
            "freeze",
            "--env",
            "prod",
            "--reason",
            "INC-42 bad release",
            "--dry-run",
        ])
        .await;
    assert!(r.ok().stdout.contains("Would freeze"), "{r:#?}");
    assert_eq!(
        w.tag("prod", tags::DEPLOY_FREEZE).await,
        None,
        "a dry run writes nothing"
    );

    let j = w
        .ops(&[
            "freeze",
            "--env",
            "prod",
            "--reason",
            "INC-42 bad release",
            "--json",
        ])
        .await
        .json();
    assert_eq!(j["result"], "frozen");
    assert_eq!(
        j["freeze"]["by"], "moto",
        "the caller, from STS GetCallerIdentity"
    );
    let value = w.tag("prod", tags::DEPLOY_FREEZE).await.expect("frozen");
    assert_eq!(j["freeze"]["value"], value.as_str());
    assert!(value.starts_with("by moto at 20"), "{value}");
    assert!(value.ends_with("Z: INC-42 bad release"), "{value}");

    // Already frozen: kept as it is, said so, success.
    let r = w
        .ops(&[
            "freeze", "--env", "prod", "--reason", "again", "--as", "ann",
        ])
        .await;
    assert!(
        r.ok().stdout.contains("already frozen; nothing changed"),
        "{r:#?}"
    );
    assert_eq!(
        w.tag("prod", tags::DEPLOY_FREEZE).await,
        Some(value.clone())
    );

    let r = w
        .ops(&[
            "unfreeze",
            "--env",
            "prod",
            "--reason",
            "fixed in v1.2.7",
            "--dry-run",
        ])
        .await;
    assert!(r.ok().stdout.contains("Would lift"), "{r:#?}");
    assert_eq!(
        w.tag("prod", tags::DEPLOY_FREEZE).await,
        Some(value.clone())
    );

    let j = w
        .ops(&[
            "unfreeze",
            "--env",
            "prod",
            "--reason",
            "fixed in v1.2.7",
            "--as",
            "Jane Doe",
            "--json",
        ])
        .await
        .json();
    assert_eq!(j["result"], "unfrozen");
    assert_eq!(w.tag("prod", tags::DEPLOY_FREEZE).await, None);
    let record = w
        .tag("prod", tags::DEPLOY_UNFROZEN)
        .await
        .expect("recorded");
    assert!(record.starts_with("by Jane Doe at 20"), "{record}");
    assert!(
        record.contains(": fixed in v1.2.7 - was: by moto at "),
        "{record}"
    );
    assert_eq!(j["unfrozen"]["by"], "Jane Doe");

    // Not frozen: a no-op that says so.
    let j = w
        .ops(&["unfreeze", "--env", "prod", "--reason", "again", "--json"])
        .await
        .json();
    assert_eq!(j["result"], "not_frozen");
    let r = w
        .ops(&["unfreeze", "--env", "prod", "--reason", "again"])
        .await;
    assert!(
        r.ok().stdout.contains("is not frozen; nothing changed"),
        "{r:#?}"
    );

    // The status shows the last unfreeze.
    let s = w.ops(&["status", "--env", "prod", "--json"]).await.json();
    assert_eq!(s["freeze"], Value::Null);
    assert_eq!(s["last_unfreeze"]["by"], "Jane Doe");

    // A placeholder pasted from a notification is refused before anything is asked.
    w.ops(&["freeze", "--env", "prod", "--reason", "again"])
        .await
        .ok();
    let frozen = w.aws.service(prod).await;
    let line = w
        .ops(&["unfreeze", "--env", "prod", "--reason", "WHAT_WAS_REVIEWED"])
        .await
        .failed(2);
    assert!(line.contains("placeholder"), "{line}");
    assert_eq!(w.aws.service(prod).await, frozen, "still frozen");
    w.stop().await;
}

#[tokio::test]
async fn rollback_freezes_then_deploys_the_previous_revision() {
    let w = World::new().await;
    let prod = w.env("prod");
    let before = w.aws.service(prod).await;
    assert_eq!(before.task_definition, w.td("prod", 2));

    let r = w.ops(&["rollback", "--env", "prod", "--dry-run"]).await;
    assert!(r.ok().stdout.contains("Would roll menotime-prod-service back from menotime-backend-prod:2 to menotime-backend-prod:1"), "{r:#?}");
    assert_eq!(
        w.aws.service(prod).await,
        before,
        "a dry run changes nothing"
    );

    let j = w.ops(&["rollback", "--env", "prod", "--json"]).await.json();
    assert_eq!(j["result"], "rolling_back");
    assert_eq!(j["from"], w.td("prod", 2).as_str());
    assert_eq!(j["to"], w.td("prod", 1).as_str());
    assert_eq!(j["chosen"], "previous_active");
    assert_eq!(j["freeze"]["written"], true);
    assert!(j["watch"]
        .as_str()
        .unwrap()
        .starts_with("aws ecs describe-services"));
    let after = w.aws.service(prod).await;
    assert_eq!(after.task_definition, w.td("prod", 1));
    assert!(after.image.ends_with(":v1.2.2"), "{after:?}");
    let freeze = w
        .tag("prod", tags::DEPLOY_FREEZE)
        .await
        .expect("frozen first");
    assert!(
        freeze.ends_with(": rollback from menotime-backend-prod:2 to menotime-backend-prod:1"),
        "{freeze}"
    );

    // Nothing older than :1 is ACTIVE: refused, nothing changed.
    let line = w.ops(&["rollback", "--env", "prod"]).await.failed(1);
    assert!(line.contains("no earlier ACTIVE revision"), "{line}");
    assert!(line.contains("--to"), "{line}");

    // Forward again by name; the freeze is kept as it is.
    let r = w.ops(&["rollback", "--env", "prod", "--to", "2"]).await;
    r.ok();
    assert!(r.stdout.contains("kept (already frozen)"), "{r:#?}");
    assert!(
        r.stdout.contains("menotime-ops status --env prod"),
        "{r:#?}"
    );
    assert_eq!(w.aws.service(prod).await.task_definition, w.td("prod", 2));
    assert_eq!(
        w.tag("prod", tags::DEPLOY_FREEZE).await,
        Some(freeze.clone())
    );

    // The revision the running one replaced (scan-gate's menotime:replaces) comes first.
    let third = w
        .aws
        .ecs
        .register_task_definition()
        .family(&prod.family)
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("menotime-backend")
                .memory(512)
                .image("123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend:v1.2.4")
                .build(),
        )
        .tags(
            aws_sdk_ecs::types::Tag::builder()
                .key(tags::REPLACES)
                .value("menotime-backend-prod:1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let third = third
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_owned();
    assert_eq!(third, w.td("prod", 3));
    w.aws
        .ecs
        .update_service()
        .cluster(&prod.cluster)
        .service(&prod.service)
        .task_definition(&third)
        .send()
        .await
        .unwrap();
    let j = w.ops(&["rollback", "--env", "prod", "--json"]).await.json();
    assert_eq!(j["chosen"], "replaces");
    assert_eq!(j["to"], w.td("prod", 1).as_str());
    assert_eq!(w.aws.service(prod).await.task_definition, w.td("prod", 1));

    // Bad targets: refused, nothing changed.
    let before = w.aws.service(prod).await;
    let line = w
        .ops(&[
            "rollback",
            "--env",
            "prod",
            "--to",
            "menotime-backend-prod:1",
        ])
        .await
        .failed(1);
    assert!(
        line.contains("already runs menotime-backend-prod:1"),
        "{line}"
    );
    let line = w
        .ops(&["rollback", "--env", "prod", "--to", "9"])
        .await
        .failed(3);
    assert!(
        line.contains("no task definition menotime-backend-prod:9"),
        "{line}"
    );
    let line = w
        .ops(&["rollback", "--env", "prod", "--to", "latest"])
        .await
        .failed(2);
    assert!(line.contains("is not a revision"), "{line}");
    assert_eq!(w.aws.service(prod).await, before);
    w.stop().await;
}

#[tokio::test]
async fn rollback_waits_for_a_rollout_unless_forced_and_plan_says_why() {
    // No task runs: every seeded deployment stays IN_PROGRESS.
    let w = World::with_running(0).await;
    let prod = w.env("prod");
    let before = w.aws.service(prod).await;
    let line = w.ops(&["rollback", "--env", "prod"]).await.failed(1);
    assert!(line.contains("rollout in progress"), "{line}");
    assert!(line.contains("--force"), "{line}");
    assert_eq!(w.aws.service(prod).await, before, "not even frozen");

    // scan-gate would defer the clean staging image; the scaler's reconcile waits for
    // the rollout (at night) or has nothing to do (by day).
    let j = w.ops(&["plan", "--env", "staging", "--json"]).await.json();
    assert_eq!(j["scan_gate"]["image"]["tag"], "main");
    assert_eq!(j["scan_gate"]["outcome"], "deferred");
    assert_eq!(j["scaler"]["reconcile"]["outcome"], "skipped");

    let j = w
        .ops(&["rollback", "--env", "prod", "--force", "--json"])
        .await
        .json();
    assert_eq!(j["to"], w.td("prod", 1).as_str());
    assert_eq!(w.aws.service(prod).await.task_definition, w.td("prod", 1));
    assert!(w.tag("prod", tags::DEPLOY_FREEZE).await.is_some());
    w.stop().await;
}

#[tokio::test]
async fn an_approval_from_the_cli_deploys_through_scan_gate() {
    let w = World::new().await;
    let prod = w.env("prod");
    let queue = approvals_capture(&w.moto, &w.aws, "prod").await;
    let digest = w.seed.digest("v1.2.6").to_owned();

    // The plan says what waits, and how to approve it.
    let plan = w.ops(&["plan", "--env", "prod", "--json"]).await.json();
    assert_eq!(plan["scan_gate"]["image"]["tag"], "v1.2.6");
    assert_eq!(plan["scan_gate"]["outcome"], "review_required");
    assert!(plan["scan_gate"]["next"]
        .as_str()
        .unwrap()
        .starts_with(&format!(
            "menotime-ops approve --tag v1.2.6 --digest {digest}"
        )));

    let reason = "MEDIUM CVE-2026-1234 not reachable from the API";
    let r = w
        .ops(&[
            "approve",
            "--env",
            "prod",
            "--tag",
            "v1.2.6",
            "--reason",
            reason,
            "--dry-run",
        ])
        .await;
    assert!(r.ok().stdout.contains("Would approve v1.2.6"), "{r:#?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        captured(&w.aws, &queue).await.is_empty(),
        "a dry run sends nothing"
    );

    let j = w
        .ops(&[
            "approve", "--env", "prod", "--tag", "v1.2.6", "--digest", &digest, "--reason", reason,
            "--json",
        ])
        .await
        .json();
    assert_eq!(j["result"], "approved");
    assert_eq!(j["event_bus"], "menotime-prod-approvals");
    assert_eq!(j["detail"]["approved-by"], "moto");
    assert_eq!(
        j["detail"]["reviewed-counts"],
        serde_json::json!({"MEDIUM": 2, "LOW": 1})
    );
    let id = j["event_id"].as_str().expect("event id").to_owned();

    let events = captured(&w.aws, &queue).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["source"], "menotime.ops");
    assert_eq!(event["detail-type"], "Deploy Approval");
    assert_eq!(event["detail"]["image-digest"], digest.as_str());
    assert_eq!(event["detail"]["reason"], reason);

    // scan-gate takes the event as EventBridge delivered it, and deploys.
    let mut gate = Function::start(
        &build_binary("scan-gate", "scan-gate"),
        "menotime-prod-scan-gate",
        &scan_gate_env(&w.moto, &w.seed, "prod"),
    )
    .await;
    let out = gate.invoke(event).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");
    assert_eq!(out["approved_by"], "moto");
    assert_eq!(out["source_event_id"], id.as_str());
    let after = w.aws.service(prod).await;
    assert_eq!(
        after.image,
        format!("123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend@{digest}")
    );
    let s = w.ops(&["status", "--env", "prod", "--json"]).await.json();
    assert_eq!(s["revision"]["approved_by"], "moto");
    assert_eq!(s["revision"]["digest"], digest.as_str());
    assert_eq!(s["revision"]["digest_pinned"], true);
    assert_eq!(s["revision"]["replaces"], "menotime-backend-prod:2");
    // A rescan of what runs now would be held for review again, as scan-gate would; the
    // plan says it is the running image.
    let plan = w.ops(&["plan", "--env", "prod", "--json"]).await.json();
    assert_eq!(plan["scan_gate"]["outcome"], "review_required");
    assert_eq!(plan["scan_gate"]["image_is_running"], true);
    assert_eq!(plan["scan_gate"]["running"]["image_tag"], "v1.2.6");
    gate.stop().await;
    w.stop().await;
}

#[tokio::test]
async fn approve_refuses_what_cannot_be_approved() {
    let w = World::new().await;
    let queue = approvals_capture(&w.moto, &w.aws, "prod").await;
    let approve = |tag: &'static str, extra: &'static [&'static str]| {
        let mut args = vec![
            "approve", "--env", "prod", "--tag", tag, "--reason", "reviewed",
        ];
        args.extend_from_slice(extra);
        args
    };

    let line = w.ops(&approve("v1.2.5", &[])).await.failed(1);
    assert!(line.contains("1 CRITICAL, 2 HIGH"), "{line}");
    assert!(line.contains("never deployed"), "{line}");
    let line = w.ops(&approve("v9.9.9", &[])).await.failed(3);
    assert!(line.contains("no image tagged v9.9.9"), "{line}");
    let other = w.seed.digest("v1.2.4").to_owned();
    let line = w
        .ops(&[
            "approve", "--env", "prod", "--tag", "v1.2.6", "--digest", &other, "--reason", "r",
        ])
        .await
        .failed(1);
    assert!(line.contains(&format!("not {other}")), "{line}");
    let line = w.ops(&approve("develop", &[])).await.failed(2);
    assert!(
        line.contains("does not match prod's deploy pattern"),
        "{line}"
    );
    let line = w
        .ops(&[
            "approve",
            "--env",
            "prod",
            "--tag",
            "v1.2.6",
            "--reason",
            "WHY_THE_FINDINGS_ARE_ACCEPTABLE",
        ])
        .await
        .failed(2);
    assert!(line.contains("placeholder"), "{line}");
    let line = w
        .ops(&[
            "approve",
            "--env",
            "prod",
            "--tag",
            "v1.2.6",
            "--digest",
            "sha256:12",
            "--reason",
            "r",
        ])
        .await
        .failed(2);
    assert!(line.contains("not an image digest"), "{line}");
    // staging has no approvals bus in this world: EventBridge refuses.
    let line = w
        .ops(&[
            "approve", "--env", "staging", "--tag", "main", "--reason", "r",
        ])
        .await
        .failed(3);
    assert!(line.contains("menotime-staging-approvals"), "{line}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        captured(&w.aws, &queue).await.is_empty(),
        "nothing was sent"
    );
    w.stop().await;
}

#[tokio::test]
async fn offhours_hold_and_release() {
    let w = World::new().await;
    let staging = w.env("staging");

    let r = w
        .ops(&[
            "offhours",
            "hold",
            "--env",
            "staging",
            "--until",
            "+2h",
            "--dry-run",
        ])
        .await;
    assert!(
        r.ok()
            .stdout
            .contains("Would hold menotime-staging-service at its current capacity until"),
        "{r:#?}"
    );
    assert!(!r.stdout.contains("NOT in force"), "{r:#?}");
    assert_eq!(w.tag("staging", tags::OFFHOURS).await, None);

    let start = chrono::Utc::now();
    let j = w
        .ops(&[
            "offhours", "hold", "--env", "staging", "--until", "+2h", "--json",
        ])
        .await
        .json();
    assert_eq!(j["result"], "held");
    assert_eq!(
        j["honoured_by_scaler"], true,
        "offhours-scaler keeps a held service at full capacity"
    );
    let value = w.tag("staging", tags::OFFHOURS).await.expect("held");
    assert_eq!(j["value"], value.as_str());
    let until = value
        .strip_prefix("skip-until=")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("not skip-until=<RFC 3339>: {value}"));
    assert!(value.ends_with('Z') && value.len() == "skip-until=2026-12-01T18:00:00Z".len());
    let off = until.with_timezone(&chrono::Utc) - start - chrono::Duration::hours(2);
    assert!(off.num_seconds().abs() <= 10, "{value} vs {start}");

    // An RFC 3339 time with an offset is stored in UTC; it replaces the hold.
    let j = w
        .ops(&[
            "offhours",
            "hold",
            "--env",
            "staging",
            "--until",
            &until_in_la(),
            "--json",
        ])
        .await
        .json();
    assert_eq!(j["replaced"], value.as_str());
    assert!(w
        .tag("staging", tags::OFFHOURS)
        .await
        .unwrap()
        .ends_with("Z"));

    // Malformed and past times: one line, status 2, nothing changed.
    let held = w.tag("staging", tags::OFFHOURS).await;
    for bad in ["tomorrow", "18:00", "+2x", "2020-01-01T00:00:00Z", "+40d"] {
        let line = w
            .ops(&["offhours", "hold", "--env", "staging", "--until", bad])
            .await
            .failed(2);
        assert!(line.contains("--until"), "{line}");
    }
    assert_eq!(w.tag("staging", tags::OFFHOURS).await, held);

    let j = w
        .ops(&["offhours", "release", "--env", "staging", "--json"])
        .await
        .json();
    assert_eq!(j["result"], "released");
    assert_eq!(w.tag("staging", tags::OFFHOURS).await, None);
    let r = w.ops(&["offhours", "release", "--env", "staging"]).await;
    assert!(r.ok().stdout.contains("nothing changed"), "{r:#?}");

    // An exclusion with no end is not shortened into a hold.
    w.aws.tag_service(staging, tags::OFFHOURS, "skip").await;
    let line = w
        .ops(&["offhours", "hold", "--env", "staging", "--until", "+1h"])
        .await
        .failed(1);
    assert!(line.contains("no end"), "{line}");
    assert_eq!(
        w.tag("staging", tags::OFFHOURS).await.as_deref(),
        Some("skip")
    );
    w.stop().await;
}

/// Three hours from now, written in Los Angeles' winter offset.
fn until_in_la() -> String {
    let la = chrono::FixedOffset::west_opt(8 * 3600).unwrap();
    (chrono::Utc::now() + chrono::Duration::hours(3))
        .with_timezone(&la)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

#[tokio::test]
async fn plan_tells_what_the_automation_would_do() {
    let w = World::new().await;
    // Night now, whenever the test runs: an always-up window with today a holiday.
    let holidays = holidays_around(chrono::Utc::now());
    let night = ["--uptime", ALWAYS_UP, "--holidays", holidays.as_str()];
    let r = w
        .ops(&[&["plan", "--env", "prod"][..], &night[..]].concat())
        .await;
    r.ok();
    no_colour(&r);
    for needle in [
        "newest image  menotime/backend:v1.2.6",
        "would be      review_required",
        "2 MEDIUM",
        "menotime-ops approve --tag v1.2.6",
        "night (holiday",
        "reconcile now  scaled_down: saves min=2 max=4 desired=2 suspended=none in the snapshot tag, then lowers to min=1 max=4 desired=1",
    ] {
        assert!(r.stdout.contains(needle), "{needle:?} missing:\n{}", r.stdout);
    }
    let staging = w.ops(&["plan", "--env", "staging", "--json"]).await.json();
    assert_eq!(staging["scan_gate"]["image"]["tag"], "main");
    assert_eq!(staging["scan_gate"]["outcome"], "deployed");
    assert_eq!(
        staging["scan_gate"]["running"]["revision"],
        "menotime-backend-staging:1"
    );
    assert_eq!(staging["scan_gate"]["image_is_running"], false);
    let dev = w
        .ops(&[&["plan", "--env", "dev", "--json"][..], &night[..]].concat())
        .await
        .json();
    assert_eq!(dev["scan_gate"]["image"]["tag"], "develop");
    assert_eq!(dev["scaler"]["now"], "night");
    assert_eq!(dev["scaler"]["reconcile"]["outcome"], "scaled_down");
    // By day (the same window without holidays) there is nothing to do.
    let day = w
        .ops(&["plan", "--env", "dev", "--json", "--uptime", ALWAYS_UP])
        .await
        .json();
    assert_eq!(day["scaler"]["now"], "day");
    assert_eq!(day["scaler"]["reconcile"]["outcome"], "skipped");
    // An always-up window without holidays never turns: no next change.
    assert!(day["scaler"]["next"].is_null(), "{day}");

    // A blocking image, a frozen service, and a night already saved.
    let line = w
        .ops(&[
            "plan",
            "--env",
            "prod",
            "--pattern",
            "^v1\\.2\\.5$",
            "--json",
        ])
        .await
        .json();
    assert_eq!(line["scan_gate"]["outcome"], "blocked");
    w.ops(&["freeze", "--env", "staging", "--reason", "hold"])
        .await
        .ok();
    w.aws
        .tag_service(
            w.env("staging"),
            tags::OFFHOURS_SNAPSHOT,
            "min=1 max=2 desired=2",
        )
        .await;
    let staging = w
        .ops(&["plan", "--env", "staging", "--json", "--uptime", ALWAYS_UP])
        .await
        .json();
    assert_eq!(staging["scan_gate"]["outcome"], "frozen");
    assert!(staging["scan_gate"]["next"]
        .as_str()
        .unwrap()
        .starts_with("menotime-ops unfreeze"));
    // Day, and a night's snapshot still there: reconcile restores it.
    assert_eq!(staging["scaler"]["reconcile"]["outcome"], "scaled_up");
    // The plan changed nothing.
    assert_eq!(w.tag("prod", tags::OFFHOURS_SNAPSHOT).await, None);
    w.stop().await;
}

#[tokio::test]
async fn bad_input_is_one_line_and_changes_nothing() {
    let w = World::new().await;
    let prod = w.env("prod");
    let before = w.aws.service(prod).await;

    let line = w.ops(&["status", "--env", "qa"]).await.failed(2);
    assert!(
        line.contains("'qa'") && line.contains("dev, staging, prod"),
        "{line}"
    );
    let line = w.ops(&["freeze", "--reason", "x"]).await.failed(2);
    assert!(line.contains("--env"), "{line}");
    let line = w
        .ops(&["status", "--env", "prod", "--bogus"])
        .await
        .failed(2);
    assert!(line.contains("--bogus"), "{line}");
    let line = w
        .ops(&["status", "--env", "prod", "--service", "no such"])
        .await
        .failed(2);
    assert!(line.contains("not an ECS name"), "{line}");

    let no_region = w
        .ops
        .with_var("AWS_REGION", None)
        .with_var("AWS_DEFAULT_REGION", None);
    let line = no_region
        .run(&["freeze", "--env", "prod", "--reason", "x"])
        .await
        .failed(3);
    assert!(line.contains("no AWS region"), "{line}");
    // --region supplies it, and so does AWS_DEFAULT_REGION, as for the AWS CLI.
    no_region
        .run(&["status", "--env", "prod", "--region", "us-west-1"])
        .await
        .ok();
    no_region
        .with_var("AWS_DEFAULT_REGION", Some("us-west-1"))
        .run(&["status", "--env", "prod"])
        .await
        .ok();

    let no_credentials = w
        .ops
        .with_var("AWS_ACCESS_KEY_ID", None)
        .with_var("AWS_SECRET_ACCESS_KEY", None)
        .with_var("AWS_SESSION_TOKEN", None);
    let line = no_credentials
        .run(&["freeze", "--env", "prod", "--reason", "x"])
        .await
        .failed(3);
    assert!(line.contains("credentials"), "{line}");
    let line = no_credentials
        .with_var("AWS_PROFILE", Some("operators"))
        .run(&["status", "--env", "prod"])
        .await
        .failed(3);
    assert!(line.contains("credentials"), "{line}");

    let line = w
        .ops(&[
            "freeze",
            "--env",
            "prod",
            "--service",
            "menotime-nope-service",
            "--reason",
            "x",
        ])
        .await
        .failed(3);
    assert!(line.contains("menotime-nope-service"), "{line}");
    assert!(
        !line.contains("SERVICE_NAME"),
        "CLI advice, not the Lambda's: {line}"
    );
    let line = w
        .ops(&[
            "unfreeze",
            "--env",
            "prod",
            "--cluster",
            "menotime-nope-cluster",
            "--reason",
            "x",
        ])
        .await
        .failed(3);
    assert!(line.contains("menotime-nope-cluster"), "{line}");

    // AWS unreachable: the SDK retries, then one line.
    let line = w
        .ops
        .with_var("AWS_ENDPOINT_URL", Some("http://127.0.0.1:9"))
        .run(&["freeze", "--env", "prod", "--reason", "x"])
        .await
        .failed(3);
    assert!(line.contains("ecs:DescribeServices"), "{line}");

    assert_eq!(w.aws.service(prod).await, before, "nothing changed");
    w.stop().await;
}
