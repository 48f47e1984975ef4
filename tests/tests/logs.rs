//! Logs and notifications of the three functions, from the built binaries with
//! `AWS_LAMBDA_LOG_FORMAT=JSON` (as the template sets `LoggingConfig: JSON`): every line
//! is JSON, each invocation's decision is logged with its request id, and no value of
//! the task definition's `environment` or `secrets` ever appears, although every
//! function reads the task definition (scan-gate copies it, deploy-notifier names its
//! image, offhours-scaler reads its size).

use serde_json::{json, Value};

use menotime_e2e::offhours::offhours_env;
use menotime_e2e::*;

/// What the seeded task definitions hold that must never be shown.
const NEVER: &[&str] = &[
    "5f0c1e2d9a7b4c3e",
    "ingest.sentry.io",
    "SENTRY_DSN",
    "secretsmanager",
    "menotime/db/",
    "stripe",
    "DATABASE_URL",
    "API_KEY_STRIPE",
];

fn check_logs(function: &str, logs: &[String], request_ids: &[String]) {
    assert!(!logs.is_empty(), "{function}: no logs");
    for line in logs {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{function}: not a JSON log line ({e}): {line}"));
        assert!(v.is_object(), "{function}: {line}");
        for secret in NEVER {
            assert!(
                !line.contains(secret),
                "{function}: {secret:?} in the logs: {line}"
            );
        }
    }
    // One line per decision or error, with the request id (in the runtime's span, not
    // repeated as a field of ours).
    for id in request_ids {
        let ended: Vec<&String> = logs
            .iter()
            .filter(|l| {
                l.contains(id.as_str())
                    && (l.contains("\"decided\"") || l.contains("\"level\":\"ERROR\""))
            })
            .collect();
        assert_eq!(
            ended.len(),
            1,
            "{function}: not exactly one decision or error logged with request id {id}:\n{}",
            logs.join("\n")
        );
        let id_fields = ended[0].matches(id.as_str()).count();
        assert!(
            !ended[0].contains("\"request_id\""),
            "{function}: the request id is logged twice ({id_fields} times): {}",
            ended[0]
        );
    }
}

fn check_messages(function: &str, msgs: &[Delivered]) {
    for m in msgs {
        let text = format!("{} {}", m.subject, m.payload);
        for secret in NEVER {
            assert!(
                !text.contains(secret),
                "{function}: {secret:?} in a notification: {text}"
            );
        }
    }
}

#[tokio::test]
async fn logs_are_json_with_request_id_and_decision_and_never_show_secrets() {
    let moto = Moto::start().await;
    let seed = moto.seed().await;
    let aws = Aws::new(&moto).await;
    let prod = seed.env("prod").clone();
    let mut delivered = Vec::new();

    // scan-gate deploys: it reads and copies the whole task definition.
    let mut gate = Function::start(
        &build_binary("scan-gate", "scan-gate"),
        "scan-gate",
        &scan_gate_env(&moto, &seed, "prod"),
    )
    .await;
    let mut ids = Vec::new();
    for file in [
        "scan-clean-v1.2.4.json",
        "scan-critical-v1.2.5.json",
        "bad-other-account.json",
    ] {
        let id = gate.next_request_id();
        gate.invoke_as(&id, &event(file)).await;
        ids.push(id);
    }
    check_logs("scan-gate", &gate.logs(), &ids);
    gate.stop().await;

    // The copy kept the container's environment and secrets (only names are logged).
    let td = aws
        .ecs
        .describe_task_definition()
        .task_definition(aws.service(&prod).await.task_definition)
        .send()
        .await
        .unwrap();
    let copied = td.task_definition().unwrap().container_definitions()[0].clone();
    assert!(copied
        .environment()
        .iter()
        .any(|e| e.name() == Some("SENTRY_DSN")));
    assert_eq!(copied.secrets().len(), 2);

    // deploy-notifier pages: it reads the failed revision.
    let mut notifier = Function::start(
        &build_binary("deploy-notifier", "deploy-notifier"),
        "deploy-notifier",
        &notifier_env(&moto, &seed, "prod"),
    )
    .await;
    let deployment = aws.deployments(&prod).await.remove(0).0;
    let mut failed = event("ecs-deployment-failed.json");
    failed["detail"]["deploymentId"] = json!(deployment);
    let mut ids = Vec::new();
    for e in [
        failed,
        event("ecs-task-oom.json"),
        event("bad-ecs-other-account.json"),
    ] {
        let id = notifier.next_request_id();
        notifier.invoke_as(&id, &e).await;
        ids.push(id);
    }
    check_logs("deploy-notifier", &notifier.logs(), &ids);
    notifier.stop().await;

    // offhours-scaler scales down and up: it reads the task definition's size.
    let mut scaler = Function::start(
        &build_binary("offhours-scaler", "offhours-scaler"),
        "offhours-scaler",
        &offhours_env(&moto, &seed, "prod"),
    )
    .await;
    let mut ids = Vec::new();
    for e in [
        json!({"action": "scale-down"}),
        json!({"action": "scale-up"}),
        json!({"action": "reboot"}),
    ] {
        let id = scaler.next_request_id();
        scaler.invoke_as(&id, &e).await;
        ids.push(id);
    }
    check_logs("offhours-scaler", &scaler.logs(), &ids);
    scaler.stop().await;

    delivered.extend(aws.drain(&prod.notify_queue_url).await);
    delivered.extend(aws.drain(&prod.oncall_queue_url).await);
    assert!(delivered.len() >= 5, "{}", delivered.len());
    check_messages("all", &delivered);
    moto.stop().await;
}
