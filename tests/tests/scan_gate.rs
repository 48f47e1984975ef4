//! scan-gate end to end: the built binary, driven through the Lambda Runtime API with
//! the files in `events/`, against moto's server seeded with the manual's three
//! environments. Assertions are on moto's resulting state and on what reached the
//! SQS queues subscribed to the two topics.

use menotime_e2e::*;
use serde_json::Value;

struct World {
    moto: Moto,
    seed: Seed,
    aws: Aws,
}

impl World {
    async fn new() -> World {
        Self::with_running(2).await
    }

    /// `running`: tasks moto reports running per service; below a service's desired
    /// count its deployment stays IN_PROGRESS.
    async fn with_running(running: u32) -> World {
        let moto = Moto::start_with_running(running).await;
        let seed = moto.seed().await;
        let aws = Aws::new(&moto).await;
        World { moto, seed, aws }
    }

    async fn gate(&self, env: &str) -> Function {
        self.gate_with(env, &[]).await
    }

    async fn gate_with(&self, env: &str, extra: &[(&str, &str)]) -> Function {
        let mut vars = scan_gate_env(&self.moto, &self.seed, env);
        for (k, v) in extra {
            vars = with_var(vars, k, v);
        }
        Function::start(
            &build_binary("scan-gate", "scan-gate"),
            &format!("menotime-{env}-scan-gate"),
            &vars,
        )
        .await
    }

    fn env(&self, env: &str) -> &SeedEnv {
        self.seed.env(env)
    }

    fn pinned(&self, image: &str) -> String {
        format!(
            "123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend@{}",
            self.seed.digest(image)
        )
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

fn types(msgs: &[Delivered]) -> Vec<&str> {
    msgs.iter().map(|m| m.event_type()).collect()
}

#[tokio::test]
async fn a_clean_release_deploys_to_prod_exactly_once() {
    let w = World::new().await;
    let prod = w.env("prod");
    let before = w.aws.service(prod).await;
    assert!(before.image.ends_with(":v1.2.3"));
    let revisions_before = w.aws.revisions(&prod.family).await.len();
    let mut gate = w.gate("prod").await;

    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");
    assert_eq!(out["image_tag"], "v1.2.4");
    assert_eq!(out["reused_revision"], false);
    let after = w.aws.service(prod).await;
    assert_eq!(
        after.image,
        w.pinned("v1.2.4"),
        "what was scanned is exactly what runs"
    );
    assert_ne!(after.task_definition, before.task_definition);
    assert_eq!(out["task_definition"], after.task_definition.as_str());
    assert_eq!(
        out["previous_task_definition"],
        before.task_definition.as_str()
    );
    assert_eq!(
        w.aws.revisions(&prod.family).await.len(),
        revisions_before + 1
    );

    let msgs = w.notify("prod").await;
    assert_eq!(types(&msgs), ["deploy.started"]);
    let m = &msgs[0];
    assert_eq!(
        m.subject,
        "[PROD] Deploying v1.2.4 to menotime-prod-service"
    );
    assert_eq!(m.payload["schema"], "menotime.ops/v1");
    assert_eq!(m.payload["severity"], "info");
    assert_eq!(m.payload["action"], "notify");
    assert_eq!(
        m.payload["source_event_id"],
        event("scan-clean-v1.2.4.json")["id"]
    );
    assert_eq!(m.payload["details"]["image"], w.pinned("v1.2.4").as_str());
    assert_eq!(
        m.payload["details"]["task_definition"],
        after.task_definition.as_str()
    );
    assert_eq!(m.attribute("severity"), Some("info"));
    assert_eq!(m.attribute("environment"), Some("prod"));
    assert_eq!(m.attribute("event_type"), Some("deploy.started"));
    assert_eq!(m.attribute("action"), Some("notify"));
    assert!(
        w.oncall("prod").await.is_empty(),
        "a deployment start pages nobody"
    );

    // EventBridge delivers at least once; Inspector may report the same image too.
    for again in ["scan-clean-v1.2.4.json", "inspector-clean-v1.2.4.json"] {
        let out = gate.invoke(&event(again)).await.ok();
        assert_eq!(out["outcome"], "skipped", "{again}: {out}");
        assert_eq!(
            w.aws.service(prod).await,
            after,
            "{again} changed the service"
        );
        assert_eq!(
            w.aws.revisions(&prod.family).await.len(),
            revisions_before + 1
        );
    }
    assert_eq!(
        types(&w.notify("prod").await),
        ["deploy.skipped", "deploy.skipped"]
    );
    w.stop(gate).await;
}

/// The new revision is the prod task definition of the manual in every field but the
/// image: roles, network mode, cpu, memory, compatibilities, runtime platform,
/// ephemeral storage, volumes, tags, and in the container environment, secrets,
/// health check, log configuration, port mappings, mount points, ulimits...
#[tokio::test]
async fn the_new_revision_keeps_every_field_of_the_running_one() {
    let w = World::new().await;
    let prod = w.env("prod");
    let mut gate = w.gate("prod").await;
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");

    let describe = |arn: String| {
        let ecs = w.aws.ecs.clone();
        async move {
            let o = ecs
                .describe_task_definition()
                .task_definition(arn)
                .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
                .send()
                .await
                .unwrap();
            (o.task_definition.unwrap(), o.tags.unwrap_or_default())
        }
    };
    let (old, old_tags) = describe(prod.task_definition.clone()).await;
    let (mut new, new_tags) = describe(out["task_definition"].as_str().unwrap().to_owned()).await;

    let c = new
        .container_definitions
        .as_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c.name() == Some("menotime-backend"))
        .unwrap();
    assert_eq!(c.image.as_deref(), Some(w.pinned("v1.2.4").as_str()));
    c.image = old.container_definitions()[0].image.clone();
    // What ECS sets on every revision by itself.
    new.task_definition_arn = old.task_definition_arn.clone();
    new.revision = old.revision;
    new.registered_at = old.registered_at;
    new.registered_by = old.registered_by.clone();
    assert_eq!(
        new, old,
        "the new revision differs from the running one in more than the image"
    );
    // Spot-check that the manual's fields really were there to compare.
    assert_eq!(old.cpu(), Some("1024"));
    assert_eq!(old.memory(), Some("2048"));
    assert_eq!(old.ephemeral_storage().map(|e| e.size_in_gib()), Some(30));
    assert!(old.runtime_platform().is_some());
    assert_eq!(old.volumes().len(), 1);
    let oc = &old.container_definitions()[0];
    assert_eq!(oc.secrets().len(), 2);
    assert_eq!(oc.environment().len(), 5);
    assert!(oc.health_check().is_some());
    assert!(oc.log_configuration().is_some());

    for t in &old_tags {
        assert!(new_tags.contains(t), "tag {t:?} was not carried over");
    }
    let tag = |k: &str| {
        new_tags
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    assert_eq!(tag("menotime:image-tag").as_deref(), Some("v1.2.4"));
    assert_eq!(
        tag("menotime:source-event"),
        event("scan-clean-v1.2.4.json")["id"]
            .as_str()
            .map(str::to_owned)
    );
    // The logs are JSON lines, and no secret ARN or environment value of the task
    // definition reaches them.
    let logs = gate.logs();
    assert!(logs.len() > 3, "{logs:?}");
    for line in &logs {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not a JSON log line: {line}"
        );
        for secret in [
            "secretsmanager",
            "stripe",
            "SENTRY_SAMPLE_RATE",
            "production",
        ] {
            assert!(!line.contains(secret), "{secret:?} in the logs: {line}");
        }
    }
    w.stop(gate).await;
}

#[tokio::test]
async fn critical_blocks_medium_waits_for_review_and_an_approval_deploys() {
    let w = World::new().await;
    let prod = w.env("prod");
    let before = w.aws.service(prod).await;
    let revisions = w.aws.revisions(&prod.family).await.len();
    let mut gate = w.gate("prod").await;

    let out = gate.invoke(&event("scan-critical-v1.2.5.json")).await.ok();
    assert_eq!(out["outcome"], "blocked", "{out}");
    // Inspector's view of the same image (HIGH), and an approval: still blocked.
    for e in [
        "inspector-high-v1.2.5.json",
        "approval-critical-v1.2.5.json",
    ] {
        let out = gate.invoke(&event(e)).await.ok();
        assert_eq!(out["outcome"], "blocked", "{e}: {out}");
    }
    let msgs = w.notify("prod").await;
    assert_eq!(
        types(&msgs),
        ["deploy.blocked", "deploy.blocked", "deploy.blocked"]
    );
    assert_eq!(
        msgs[0].subject,
        "[PROD] Deploy blocked: v1.2.5 has 1 CRITICAL, 2 HIGH"
    );
    assert_eq!(msgs[0].payload["severity"], "warning");
    assert_eq!(
        msgs[0].payload["details"]["counts"],
        serde_json::json!({"CRITICAL": 1, "HIGH": 2, "MEDIUM": 4})
    );

    let out = gate.invoke(&event("scan-medium-v1.2.6.json")).await.ok();
    assert_eq!(out["outcome"], "review_required", "{out}");
    let msgs = w.notify("prod").await;
    assert_eq!(types(&msgs), ["deploy.review_required"]);
    assert_eq!(
        msgs[0].subject,
        "[PROD] Review required before deploying v1.2.6: 2 MEDIUM"
    );
    assert_eq!(
        w.aws.service(prod).await,
        before,
        "nothing deployed before the approval"
    );
    assert_eq!(w.aws.revisions(&prod.family).await.len(), revisions);

    let out = gate.invoke(&event("approval-v1.2.6.json")).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");
    assert_eq!(out["approved_by"], "jdoe");
    assert_eq!(w.aws.service(prod).await.image, w.pinned("v1.2.6"));
    let msgs = w.notify("prod").await;
    assert_eq!(types(&msgs), ["deploy.started"]);
    assert_eq!(msgs[0].payload["details"]["approved_by"], "jdoe");
    assert_eq!(
        msgs[0].payload["details"]["approval_reason"],
        "MEDIUM CVE-2026-1234 is in an image library the API never loads"
    );
    assert!(w.oncall("prod").await.is_empty());
    w.stop(gate).await;
}

#[tokio::test]
async fn prod_is_never_downgraded_by_a_rescan() {
    let w = World::new().await;
    let prod = w.env("prod");
    let before = w.aws.service(prod).await;
    let mut gate = w.gate("prod").await;
    let out = gate
        .invoke(&event("scan-rescan-old-v1.2.2.json"))
        .await
        .ok();
    assert_eq!(out["outcome"], "skipped", "{out}");
    assert!(
        out["reason"]
            .as_str()
            .unwrap()
            .contains("older than v1.2.3"),
        "{out}"
    );
    assert_eq!(w.aws.service(prod).await, before);
    let msgs = w.notify("prod").await;
    assert_eq!(types(&msgs), ["deploy.skipped"]);
    assert_eq!(
        msgs[0].subject,
        "[PROD] Deploy skipped: v1.2.2 is older than running v1.2.3"
    );
    w.stop(gate).await;
}

#[tokio::test]
async fn a_frozen_service_gets_nothing() {
    let w = World::new().await;
    let prod = w.env("prod");
    w.aws
        .tag_service(
            prod,
            "menotime:deploy-freeze",
            "ecs-svc/4231880795355584839 failed 2026-11-25T18:00:59Z",
        )
        .await;
    let before = w.aws.service(prod).await;
    let revisions = w.aws.revisions(&prod.family).await.len();
    let mut gate = w.gate("prod").await;
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "frozen", "{out}");
    assert_eq!(w.aws.service(prod).await, before);
    assert_eq!(w.aws.revisions(&prod.family).await.len(), revisions);
    let msgs = w.notify("prod").await;
    assert_eq!(types(&msgs), ["deploy.frozen"]);
    assert_eq!(
        msgs[0].payload["details"]["freeze"],
        "ecs-svc/4231880795355584839 failed 2026-11-25T18:00:59Z"
    );
    w.stop(gate).await;
}

#[tokio::test]
async fn a_rollout_in_progress_defers_the_image_and_changes_nothing_else() {
    // One task running of the two desired: prod's deployment is still IN_PROGRESS.
    let w = World::with_running(1).await;
    let prod = w.env("prod");
    let before = w.aws.service(prod).await;
    let revisions = w.aws.revisions(&prod.family).await.len();
    let mut gate = w.gate("prod").await;
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "deferred", "{out}");
    assert!(
        out["reason"].as_str().unwrap().contains("IN_PROGRESS"),
        "{out}"
    );
    let after = w.aws.service(prod).await;
    assert_eq!(after.task_definition, before.task_definition);
    assert_eq!(after.image, before.image);
    assert!(after
        .tags
        .iter()
        .any(|(k, v)| k == "menotime:deploy-deferred" && v.contains("tag=v1.2.4")));
    assert_eq!(w.aws.revisions(&prod.family).await.len(), revisions);
    let msgs = w.notify("prod").await;
    assert_eq!(types(&msgs), ["deploy.deferred"]);
    assert_eq!(
        msgs[0].subject,
        "[PROD] Deploy deferred: v1.2.4 waits for the rollout of menotime-prod-service"
    );
    w.stop(gate).await;
}

#[tokio::test]
async fn a_revision_left_by_an_interrupted_attempt_is_reused() {
    let w = World::new().await;
    let prod = w.env("prod");
    // What an attempt that died between RegisterTaskDefinition and UpdateService
    // leaves behind: the newest revision runs the image, the service does not.
    let running = w
        .aws
        .ecs
        .describe_task_definition()
        .task_definition(&prod.task_definition)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let req = menotime_shared::aws::ecs::copy_with_image(
        w.aws.ecs.register_task_definition(),
        running.task_definition().unwrap(),
        "menotime-backend",
        &w.pinned("v1.2.4"),
        &[
            ("menotime:image-tag".into(), "v1.2.4".into()),
            (
                "menotime:source-event".into(),
                "5c0a1e7d-0001-4e3a-9b1d-2f6c8e4a0001".into(),
            ),
        ],
    )
    .unwrap();
    let left = req
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap()
        .task_definition_arn
        .unwrap();
    let revisions = w.aws.revisions(&prod.family).await.len();

    let mut gate = w.gate("prod").await;
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");
    assert_eq!(out["reused_revision"], true);
    assert_eq!(out["task_definition"], left.as_str());
    assert_eq!(w.aws.service(prod).await.task_definition, left);
    assert_eq!(
        w.aws.revisions(&prod.family).await.len(),
        revisions,
        "nothing registered twice"
    );
    w.stop(gate).await;
}

#[tokio::test]
async fn dry_run_decides_and_notifies_but_changes_nothing() {
    let w = World::new().await;
    let prod = w.env("prod");
    let before = w.aws.service(prod).await;
    let revisions = w.aws.revisions(&prod.family).await.len();
    let mut gate = w.gate_with("prod", &[("DRY_RUN", "true")]).await;
    let out = gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok();
    assert_eq!(out["outcome"], "deployed", "{out}");
    assert_eq!(out["dry_run"], true);
    assert!(out["reason"]
        .as_str()
        .unwrap()
        .starts_with("dry run: would deploy v1.2.4"));
    assert_eq!(w.aws.service(prod).await, before);
    assert_eq!(w.aws.revisions(&prod.family).await.len(), revisions);
    let msgs = w.notify("prod").await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0].subject,
        "[PROD] dry run: would deploy v1.2.4 to menotime-prod-service"
    );
    assert_eq!(msgs[0].payload["details"]["dry_run"], true);
    w.stop(gate).await;
}

#[tokio::test]
async fn each_environment_deploys_only_its_own_tags() {
    let w = World::new().await;
    for (env, own, image) in [
        ("dev", "scan-develop.json", "develop"),
        ("staging", "scan-main.json", "main"),
    ] {
        let e = w.env(env);
        let before = w.aws.service(e).await;
        let mut gate = w.gate(env).await;
        for other in [
            "scan-clean-v1.2.4.json",
            "scan-pr-42.json",
            if env == "dev" {
                "scan-main.json"
            } else {
                "scan-develop.json"
            },
        ] {
            let out = gate.invoke(&event(other)).await.ok();
            assert_eq!(out["outcome"], "not_routed", "{env} {other}: {out}");
        }
        assert_eq!(w.aws.service(e).await, before);
        assert!(w.notify(env).await.is_empty(), "not_routed notifies nobody");
        let out = gate.invoke(&event(own)).await.ok();
        assert_eq!(out["outcome"], "deployed", "{env}: {out}");
        assert_eq!(w.aws.service(e).await.image, w.pinned(image));
        assert_eq!(types(&w.notify(env).await), ["deploy.started"]);
        gate.stop().await;
    }
    // Prod saw none of it.
    assert!(w
        .aws
        .service(w.env("prod"))
        .await
        .image
        .ends_with(":v1.2.3"));
    w.moto.stop().await;
}

#[tokio::test]
async fn bad_input_is_rejected_and_changes_nothing() {
    let w = World::new().await;
    let prod = w.env("prod");
    let before = w.aws.service(prod).await;
    let revisions = w.aws.revisions(&prod.family).await.len();
    let mut gate = w.gate("prod").await;
    let cases: Vec<(Value, &str)> = vec![
        (event("bad-other-account.json"), "other accounts"),
        (event("bad-other-region.json"), "other regions"),
        (event("bad-other-repository.json"), "menotime/frontend"),
        (event("bad-missing-digest.json"), "image-digest"),
        (event("bad-unhandled-push.json"), "ECR Image Action"),
        (
            serde_json::json!({"action": "scale-down"}),
            "not an EventBridge event",
        ),
    ];
    for (e, needle) in cases {
        let (error_type, message) = gate.invoke(&e).await.err();
        assert_eq!(error_type, "RejectedEvent", "{message}");
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
        assert!(message.contains("Nothing was changed"), "{message}");
    }
    assert_eq!(w.aws.service(prod).await, before);
    assert_eq!(w.aws.revisions(&prod.family).await.len(), revisions);
    assert!(w.notify("prod").await.is_empty());
    assert!(w.oncall("prod").await.is_empty());
    // The function is still serving.
    assert_eq!(
        gate.invoke(&event("scan-clean-v1.2.4.json")).await.ok()["outcome"],
        "deployed"
    );
    w.stop(gate).await;
}

#[tokio::test]
async fn missing_configuration_stops_the_function_at_start_up() {
    let moto = Moto::start().await;
    let seed = moto.seed().await;
    let bin = build_binary("scan-gate", "scan-gate");
    for (var, value) in [
        ("SERVICE_NAME", None),
        ("ENVIRONMENT", Some("production")),
        ("NOTIFY_TOPIC_ARN", Some("topic")),
    ] {
        let mut vars = scan_gate_env(&moto, &seed, "prod");
        vars.retain(|(k, _)| k != var);
        if let Some(v) = value {
            vars.push((var.to_owned(), v.to_owned()));
        }
        let (code, output) = runtime::run_to_exit(&bin, &vars).await;
        assert_ne!(code, Some(0));
        let line = output
            .lines()
            .find(|l| l.contains("configuration error"))
            .unwrap_or_default();
        assert!(line.contains(var), "{var}: {output}");
    }
    moto.stop().await;
}

/// The events in `events/` name images the local environment really has.
#[tokio::test]
async fn sample_events_name_seeded_images() {
    let moto = Moto::start().await;
    let seed = moto.seed().await;
    let digests: Vec<&str> = seed.images.values().map(|i| i.digest.as_str()).collect();
    let dir = workspace_root().join("events");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".json") {
            continue; // events/env holds the variables for a local run
        }
        let e = event(&name);
        let digest = e["detail"]["image-digest"].as_str();
        if let Some(d) = digest {
            assert!(
                digests.contains(&d),
                "{name} names digest {d}, which the seed does not push"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} events checked");
    moto.stop().await;
}

/// An approval whose tag no longer names its digest (the tag moved since the review
/// notification) is refused by ECR itself, and nothing is deployed.
#[tokio::test]
async fn an_approval_for_a_moved_tag_is_refused() {
    let w = World::new().await;
    let prod = w.env("prod");
    let before = w.aws.service(prod).await;
    let mut gate = w.gate("prod").await;
    let mut e = event("approval-v1.2.6.json");
    e["detail"]["image-digest"] = serde_json::json!(w.seed.digest("v1.2.4"));
    let (error_type, message) = gate.invoke(&e).await.err();
    assert_eq!(error_type, "RejectedEvent");
    assert!(message.contains("the tag may have moved"), "{message}");
    assert_eq!(w.aws.service(prod).await, before);
    assert!(w.notify("prod").await.is_empty());
    w.stop(gate).await;
}
