//! `make demo`: the functions end to end on this machine, no AWS account.
//!
//! Starts moto's server on a loopback port, seeds the manual's three environments,
//! runs the built binaries as Lambda custom runtimes, and tells the story with the
//! events in `events/`: for each step the decision, the notifications that reached
//! the topics' subscribers, and the service before and after.
//!
//! 1. scan-gate: scans of releases, an operator's rollback that a redelivered scan
//!    does not undo, a block, a review and its approval.
//! 2. deploy-notifier with scan-gate: a failed prod deployment pages on-call and
//!    freezes deploys; the rollback completes and the page is resolved, deploys stay
//!    frozen; after review the freeze is lifted and the next deployment goes out.
//! 3. offhours-scaler: a night and a morning of all three environments.

use serde_json::{json, Value};

use menotime_e2e::http::Receiver;
use menotime_e2e::offhours::{offhours_env, snapshot, Capacities};
use menotime_e2e::{
    build_binary, event, notifier_env, scan_gate_env, Aws, Delivered, Function, Invocation, Moto,
    SeedEnv, ServiceView,
};

/// A step that is an operator's hand, not an event.
const ROLL_BACK_BY_HAND: &str = "!roll-back";

const STEPS: &[(&str, &str)] = &[
    (
        "A clean v1.2.4 finishes its ECR scan (3 LOW, 4 INFORMATIONAL)",
        "scan-clean-v1.2.4.json",
    ),
    (
        "An operator does not like v1.2.4 and rolls back to the previous revision by hand",
        ROLL_BACK_BY_HAND,
    ),
    (
        "Hours later, EventBridge redelivers v1.2.4's scan (or it is redriven, or ECR rescans it)",
        "scan-clean-v1.2.4.json",
    ),
    ("v1.2.5 has a CRITICAL finding", "scan-critical-v1.2.5.json"),
    ("v1.2.6 has 2 MEDIUM findings", "scan-medium-v1.2.6.json"),
    (
        "jdoe reviews the MEDIUM findings and approves v1.2.6",
        "approval-v1.2.6.json",
    ),
    (
        "EventBridge delivers the approval a second time",
        "approval-v1.2.6.json",
    ),
    (
        "A weekly rescan of the old v1.2.2 completes",
        "scan-rescan-old-v1.2.2.json",
    ),
    (
        "A pull-request image finishes its scan (pr-42)",
        "scan-pr-42.json",
    ),
];

fn short_image(image: &str) -> String {
    let (name, rest) = image
        .rsplit_once('@')
        .map(|(n, d)| (n, format!("@{}", &d[..d.len().min(19)])))
        .or_else(|| image.rsplit_once(':').map(|(n, t)| (n, format!(":{t}"))))
        .unwrap_or((image, String::new()));
    let repo = name.split_once('/').map_or(name, |(_, r)| r);
    format!("{repo}{rest}")
}

fn short_td(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn show_service(label: &str, s: &ServiceView) {
    println!(
        "   {label:<9} {}  {}",
        short_td(&s.task_definition),
        short_image(&s.image)
    );
}

fn show_messages(topic: &str, msgs: &[Delivered]) {
    for m in msgs {
        println!(
            "   notified  {topic}: {}   [{} {} {}]",
            m.subject,
            m.event_type(),
            m.attribute("severity").unwrap_or("?"),
            m.attribute("action").unwrap_or("?"),
        );
        if let Some(cmd) = m.payload["details"]["approve_command"].as_str() {
            println!("             to approve: {cmd}");
        }
        if let Some(usd) = m.payload["details"]["estimated_saving_usd"].as_f64() {
            println!(
                "             estimated saving of one {} h night: ${usd:.2} ({} task(s) of {} CPU units / {} MiB)",
                m.payload["details"]["night_hours"],
                m.payload["details"]["tasks_changed"],
                m.payload["details"]["task_cpu"].as_str().unwrap_or("?"),
                m.payload["details"]["task_memory"].as_str().unwrap_or("?"),
            );
        }
    }
}

#[tokio::main]
async fn main() {
    println!(
        "menotime-ops demo: scan-gate against a local AWS (moto's server), no account needed\n"
    );
    let bin = build_binary("scan-gate", "scan-gate");
    let moto = Moto::start().await;
    println!(
        "moto's server on {}; seeding the three environments of the manual...",
        moto.endpoint
    );
    let seed = moto.seed().await;
    let aws = Aws::new(&moto).await;
    let prod = seed.env("prod").clone();
    println!(
        "  prod: cluster {}, service {} (desired 2, circuit breaker on), topics {} / {}",
        prod.cluster,
        prod.service,
        prod.notify_topic_arn.rsplit(':').next().unwrap_or_default(),
        prod.oncall_topic_arn.rsplit(':').next().unwrap_or_default(),
    );
    println!(
        "  ECR menotime/backend: {} images with completed scans\n",
        seed.images.len()
    );

    let mut gate = Function::start(
        &bin,
        "menotime-prod-scan-gate",
        &scan_gate_env(&moto, &seed, "prod"),
    )
    .await;
    println!(
        "scan-gate for prod runs as a Lambda custom runtime ({})\n",
        bin.display()
    );

    let revisions_before = aws.revisions(&prod.family).await.len();
    for (n, (what, file)) in STEPS.iter().enumerate() {
        let before = aws.service(&prod).await;
        if *file == ROLL_BACK_BY_HAND {
            println!("{}. {what}", n + 1);
            show_service("before", &before);
            let revisions = aws.revisions(&prod.family).await;
            let previous = revisions[revisions.len() - 2].clone();
            println!(
                "   $ aws ecs update-service --cluster {} --service {} --task-definition {}",
                prod.cluster,
                prod.service,
                short_td(&previous)
            );
            aws.ecs
                .update_service()
                .cluster(&prod.cluster)
                .service(&prod.service)
                .task_definition(&previous)
                .force_new_deployment(true)
                .send()
                .await
                .expect("the operator's rollback");
            show_service("after", &aws.service(&prod).await);
            println!();
            continue;
        }
        println!("{}. {what}   (events/{file})", n + 1);
        show_service("before", &before);
        match gate.invoke(&event(file)).await {
            Invocation::Ok(out) => {
                println!(
                    "   decision  {}: {}",
                    out["outcome"].as_str().unwrap_or("?"),
                    out["reason"].as_str().unwrap_or_default()
                );
            }
            Invocation::Err {
                error_type,
                error_message,
            } => {
                println!("   error     {error_type}: {error_message}");
            }
        }
        let notify = aws.drain(&prod.notify_queue_url).await;
        let oncall = aws.drain(&prod.oncall_queue_url).await;
        if notify.is_empty() && oncall.is_empty() {
            println!("   notified  nobody");
        }
        show_messages("notify", &notify);
        show_messages("on-call", &oncall);
        let after = aws.service(&prod).await;
        show_service("after", &after);
        if after == before {
            println!("             (service unchanged)");
        }
        println!();
    }

    let revisions_after = aws.revisions(&prod.family).await;
    let final_view = aws.service(&prod).await;
    println!(
        "In all: {} task-definition revision(s) registered for {} ({} -> {}); prod runs {}.",
        revisions_after.len() - revisions_before,
        prod.family,
        revisions_before,
        revisions_after.len(),
        short_image(&final_view.image)
    );

    act_two(&aws, &moto, &seed, &prod, &mut gate).await;
    act_three(&aws, &moto, &seed).await;

    gate.stop().await;
    moto.stop().await;
    println!("moto stopped.");
}

fn decision(inv: Invocation) -> Value {
    match inv {
        Invocation::Ok(out) => {
            println!(
                "   decision  {}: {}",
                out["outcome"].as_str().unwrap_or("?"),
                out["reason"].as_str().unwrap_or_default()
            );
            out
        }
        Invocation::Err {
            error_type,
            error_message,
        } => {
            println!("   error     {error_type}: {error_message}");
            Value::Null
        }
    }
}

async fn show_delivered(aws: &Aws, env: &SeedEnv) {
    let notify = aws.drain(&env.notify_queue_url).await;
    let oncall = aws.drain(&env.oncall_queue_url).await;
    if notify.is_empty() && oncall.is_empty() {
        println!("   notified  nobody");
    }
    show_messages("notify", &notify);
    show_messages("on-call", &oncall);
}

/// An ECS event from `events/` with a new id and time (and deployment, if given).
fn ecs_event(file: &str, id: &str, at: &str, deployment: Option<&str>) -> Value {
    let mut v = event(file);
    v["id"] = json!(id);
    v["time"] = json!(at);
    for key in ["updatedAt", "createdAt"] {
        if v["detail"].get(key).is_some() {
            v["detail"][key] = json!(at);
        }
    }
    if let Some(d) = deployment {
        v["detail"]["deploymentId"] = json!(d);
    }
    v
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("   | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The circuit-breaker story of the manual, across scan-gate and deploy-notifier.
async fn act_two(
    aws: &Aws,
    moto: &Moto,
    seed: &menotime_e2e::Seed,
    prod: &SeedEnv,
    gate: &mut Function,
) {
    println!(
        "\n== deploy-notifier: a failed prod deployment, a page, a freeze, and the way back ==\n"
    );
    let mut notifier = Function::start(
        &build_binary("deploy-notifier", "deploy-notifier"),
        "menotime-prod-deploy-notifier",
        &notifier_env(moto, seed, "prod"),
    )
    .await;
    // An on-call subscriber over HTTP receives the text people read (the `default`
    // and `email` variant); the SQS subscriber receives the machine payload.
    let receiver = Receiver::start().await.expect("http receiver");
    aws.sns
        .subscribe()
        .topic_arn(&prod.oncall_topic_arn)
        .protocol("http")
        .endpoint(&receiver.url)
        .send()
        .await
        .expect("subscribe the http receiver");
    let deployment = aws.deployments(prod).await.remove(0).0;

    println!("1. The v1.2.6 deployment fails: the circuit breaker gives up   (events/ecs-deployment-failed.json)");
    let failed = ecs_event(
        "ecs-deployment-failed.json",
        "demo-failed",
        "2026-11-26T03:10:00Z",
        Some(&deployment),
    );
    decision(notifier.invoke(&failed).await);
    let pages = aws.drain(&prod.oncall_queue_url).await;
    show_messages("on-call", &pages);
    println!(
        "   freeze    {}",
        aws.service_tag(prod, "menotime:deploy-freeze")
            .await
            .unwrap_or_default()
    );
    println!("\n   The page as on-call receives it:");
    if let Some(p) = pages.first() {
        println!("   -- subject: {}", p.subject);
    }
    for body in receiver.take() {
        let envelope: Value = serde_json::from_str(&body).unwrap_or_default();
        println!("   -- e-mail / default text (HTTP subscriber):");
        println!("{}", indent(envelope["Message"].as_str().unwrap_or(&body)));
    }
    if let Some(sms) = notifier
        .logs()
        .iter()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|l| l["fields"]["sms"].as_str().map(str::to_owned))
    {
        println!("   -- sms:\n   | {sms}");
    }
    if let Some(p) = pages.first() {
        println!("   -- sqs / lambda / https payload:");
        println!(
            "{}",
            indent(&serde_json::to_string_pretty(&p.payload).unwrap_or_default())
        );
    }

    println!("\n2. EventBridge delivers the failure a second time");
    decision(notifier.invoke(&failed).await);
    show_delivered(aws, prod).await;

    println!("\n3. ECS rolls back to the previous revision (played here by the demo), and jdoe approves v1.2.6 again");
    let revisions = aws.revisions(&prod.family).await;
    let previous = revisions[revisions.len() - 2].clone();
    aws.ecs
        .update_service()
        .cluster(&prod.cluster)
        .service(&prod.service)
        .task_definition(&previous)
        .send()
        .await
        .expect("play ECS's rollback");
    show_service("running", &aws.service(prod).await);
    let mut approval = event("approval-v1.2.6.json");
    approval["id"] = json!("demo-approval-2");
    approval["time"] = json!(menotime_e2e::now_minus(40));
    decision(gate.invoke(&approval).await);
    show_delivered(aws, prod).await;

    println!("\n4. The rollback completes: the service is healthy again; deploys stay frozen");
    let rolled_back = ecs_event(
        "ecs-deployment-completed.json",
        "demo-rollback-done",
        "2026-11-26T03:15:00Z",
        Some("ecs-svc/rollback"),
    );
    decision(notifier.invoke(&rolled_back).await);
    show_delivered(aws, prod).await;
    for body in receiver.take() {
        let envelope: Value = serde_json::from_str(&body).unwrap_or_default();
        let first = envelope["Message"]
            .as_str()
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        println!("   http      on-call receives: {first}");
    }

    println!("\n5. The on-call engineer reviews and lifts the freeze, as the page says:");
    println!(
        "   $ aws ecs untag-resource --resource-arn {} --tag-keys menotime:deploy-freeze",
        prod.service_arn
    );
    aws.untag_service(prod, "menotime:deploy-freeze").await;

    println!("\n6. jdoe approves v1.2.6 once more");
    approval["id"] = json!("demo-approval-3");
    approval["time"] = json!(menotime_e2e::now_minus(20));
    decision(gate.invoke(&approval).await);
    show_delivered(aws, prod).await;
    show_service("running", &aws.service(prod).await);

    println!("\n7. That deployment completes");
    let completed = ecs_event(
        "ecs-deployment-completed.json",
        "demo-completed",
        "2026-11-26T03:45:00Z",
        Some("ecs-svc/next"),
    );
    decision(notifier.invoke(&completed).await);
    show_delivered(aws, prod).await;

    println!("\n8. The completion is delivered again (informational notices keep no state: the team hears it twice; pages and resolves never double), and ECS repeats its steady state");
    decision(notifier.invoke(&completed).await);
    for (i, at) in ["03:50", "04:00"].iter().enumerate() {
        let steady = ecs_event(
            "ecs-service-steady-state.json",
            &format!("demo-steady-{i}"),
            &format!("2026-11-26T{at}:00Z"),
            None,
        );
        decision(notifier.invoke(&steady).await);
    }
    show_delivered(aws, prod).await;
    receiver.stop();
    notifier.stop().await;
}

/// A night and a morning of the three environments.
async fn act_three(aws: &Aws, moto: &Moto, seed: &menotime_e2e::Seed) {
    println!("\n== offhours-scaler: a night and a morning of dev, staging and prod ==\n");
    let bin = build_binary("offhours-scaler", "offhours-scaler");
    let caps = Capacities::new(moto).await;
    let mut rows = Vec::new();
    for name in ["dev", "staging", "prod"] {
        let env = seed.env(name);
        let mut scaler = Function::start(
            &bin,
            &format!("menotime-{name}-offhours-scaler"),
            &offhours_env(moto, seed, name),
        )
        .await;
        let before = caps.capacity(aws, env).await;
        println!("{name}: before the night  {before}");
        for (label, action, at) in [
            ("20:00 scale-down", "scale-down", "2026-11-26T04:00:00Z"),
            (
                "20:05 scale-down again (a retried schedule)",
                "scale-down",
                "2026-11-26T04:05:00Z",
            ),
        ] {
            let input = json!({"action": action, "executionId": format!("{name}-{action}-{at}"), "scheduledTime": at});
            println!("   {label}");
            decision(scaler.invoke(&input).await);
            show_delivered(aws, env).await;
        }
        let night = caps.capacity(aws, env).await;
        println!("   at night           {night}");
        println!(
            "   snapshot           {}",
            snapshot(aws, env).await.unwrap_or_else(|| "(none)".into())
        );
        for (label, action, at) in [
            ("07:00 scale-up", "scale-up", "2026-11-26T15:00:00Z"),
            ("07:05 scale-up again", "scale-up", "2026-11-26T15:05:00Z"),
        ] {
            let input = json!({"action": action, "executionId": format!("{name}-{action}-{at}"), "scheduledTime": at});
            println!("   {label}");
            decision(scaler.invoke(&input).await);
            show_delivered(aws, env).await;
        }
        let after = caps.capacity(aws, env).await;
        println!(
            "   in the morning     {after}   {}\n",
            if after == before {
                "(exactly as before)"
            } else {
                "(DIFFERS from before)"
            }
        );
        rows.push((name, before, night, after));
        scaler.stop().await;
    }
    println!(
        "{:<8} {:<36} {:<36} {:<36}",
        "", "before", "night", "morning"
    );
    for (name, before, night, after) in rows {
        println!(
            "{name:<8} {:<36} {:<36} {:<36}",
            before.to_string(),
            night.to_string(),
            after.to_string()
        );
    }
    println!();
}
