//! `make demo`: scan-gate end to end on this machine, no AWS account.
//!
//! Starts moto's server on a loopback port, seeds the manual's three environments,
//! runs the built scan-gate binary as a Lambda custom runtime for prod, and tells a
//! story with the events in `events/`: for each step the decision, the notifications
//! that reached the topics' queues, and the service's image before and after.

use menotime_e2e::{
    build_binary, event, scan_gate_env, Aws, Delivered, Function, Invocation, Moto, ServiceView,
};

const STEPS: &[(&str, &str)] = &[
    (
        "A clean v1.2.4 finishes its ECR scan (3 LOW, 4 INFORMATIONAL)",
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
        println!("{}. {what}   (events/{file})", n + 1);
        let before = aws.service(&prod).await;
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
    gate.stop().await;
    moto.stop().await;
    println!("moto stopped.");
}
