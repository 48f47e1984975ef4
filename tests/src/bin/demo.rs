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
//! 3. offhours-scaler: a week of prod under its window (`Mon-Fri 07:00-20:00
//!    America/Los_Angeles`, Thanksgiving a holiday), reconciled every five minutes:
//!    weekday nights, the weekend, the holiday, a redriven scale-down skipped as stale,
//!    a hold for a launch that expires, and missed runs healed by the next one.
//! 4. The manual's watch after a deploy (deploy-notifier and scan-gate, each run on a
//!    freshly seeded moto): v1.2.4 deploys, three minutes later the 5xx alarm fires
//!    and the page names the way back, the alarm recovers and the page resolves;
//!    a second run with AUTO_ROLLBACK_ON_REGRESSION rolls it back by itself; then
//!    memory pressure, a task that will not start, and scan-gate refusing a prod
//!    service without the circuit breaker. Time moves through the events' own
//!    timestamps.

use serde_json::{json, Value};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

use menotime_e2e::alarms::{alarm, completed};
use menotime_e2e::http::Receiver;
use menotime_e2e::offhours::{windowed_env, Capacities, InProcessScaler};
use menotime_e2e::proxy::Proxy;
use menotime_e2e::{
    build_binary, event, notifier_env, scan_gate_env, Aws, Delivered, Function, Invocation, Moto,
    SeedEnv, ServiceView,
};
use menotime_shared::domain::uptime::{Holidays, Uptime, Window, Zone};

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
                "   $ aws ecs update-service --cluster {} --service {} --task-definition {} --force-new-deployment",
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

    act_four(false).await;
    act_four(true).await;
    act_five().await;
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

/// A week of prod under its window, run every five minutes as the schedule would, in
/// seconds: the handler runs in this process against moto with the real SDK adapters
/// and a clock the demo moves (the deployed binary reads the real clock).
async fn act_three(aws: &Aws, moto: &Moto, seed: &menotime_e2e::Seed) {
    const UPTIME: &str = "Mon-Fri 07:00-20:00 America/Los_Angeles";
    const THANKSGIVING: &str = "2026-11-26";
    println!("\n== offhours-scaler: a week of prod, reconciled every 5 minutes ==\n");
    println!("   OFFHOURS_UPTIME={UPTIME}, OFFHOURS_HOLIDAYS={THANKSGIVING} (Thanksgiving)");
    println!(
        "   The schedule sends {{\"action\": \"reconcile\"}} every 5 minutes; the handler runs in this\n   process against moto, on a clock the demo moves. Times are America/Los_Angeles.\n"
    );
    let prod = seed.env("prod");
    let caps = Capacities::new(moto).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let vars = windowed_env(moto, seed, "prod", UPTIME, THANKSGIVING);
    let window = Window {
        uptime: Uptime::parse(UPTIME).expect("the demo's window"),
        holidays: Holidays::parse(THANKSGIVING).expect("the demo's holiday"),
    };
    let zone = window.uptime.zone().clone();
    let local = |at: DateTime<Utc>| zone.local(at).format("%a %m-%d %H:%M").to_string();
    let pacific = |s: &str| -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("a local time");
        zone.instant(naive).expect("a time the clock shows")
    };

    // Sunday evening, the weekend still on, to Monday morning a week later.
    let start = pacific("2026-11-22 18:00");
    let end = pacific("2026-11-30 07:30");
    let scaler = InProcessScaler::new(&vars, &proxy.url, start).await;
    // Besides the schedule: a late delivery, an operator's hold, lost runs.
    let redrive_at = pacific("2026-11-23 10:00");
    let hold_at = pacific("2026-11-24 17:00");
    let hold_until = pacific("2026-11-24 22:00");
    let missed = (pacific("2026-11-25 20:00"), pacific("2026-11-25 20:25"));

    println!(
        "   {:<16} {:<36} {:<12} capacity after",
        "when", "what", "outcome"
    );
    let mut week = Week::new(zone.clone());
    let mut tick = start;
    let mut before: Option<(bool, Option<String>)> = None;
    proxy.take_calls();
    while tick <= end {
        if tick == redrive_at {
            week.flush_idle();
            let friday = pacific("2026-11-20 20:00");
            let event = json!({"action": "scale-down", "scheduledTime": friday.to_rfc3339(), "executionId": "redriven-friday"});
            scaler.set_time(tick);
            let out = scaler.invoke(&event, "demo-redrive").await;
            fail_on_error(&out, &local(tick));
            proxy.take_calls();
            week.row(
                &local(tick),
                "Friday's scale-down, redriven",
                out,
                &caps,
                aws,
                prod,
            )
            .await;
        }
        if tick == hold_at {
            week.flush_idle();
            let until = hold_until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let step = menotime_shared::runbook::hold(
                &common_config(&vars),
                &prod.service_arn,
                hold_until,
            );
            aws.tag_service(prod, "menotime:offhours", &format!("skip-until={until}"))
                .await;
            println!(
                "   {:<16} an operator holds prod up until {} for a launch:\n   {:<16}   $ {}",
                local(tick),
                local(hold_until),
                "",
                step.command
            );
        }
        if (missed.0..=missed.1).contains(&tick) {
            if tick == missed.0 {
                week.flush_idle();
                println!(
                    "   {:<16} the schedule's runs from {} to {} are lost (throttled, say)",
                    local(tick),
                    local(missed.0),
                    local(missed.1)
                );
            }
            tick += TimeDelta::minutes(5);
            continue;
        }

        scaler.set_time(tick);
        let event = json!({"action": "reconcile", "scheduledTime": tick.to_rfc3339(), "executionId": format!("tick-{}", tick.timestamp())});
        let out = scaler
            .invoke(&event, &format!("demo-{}", tick.timestamp()))
            .await;
        fail_on_error(&out, &local(tick));
        week.runs += 1;
        let calls = proxy.take_calls().len();
        // A row when something was done or said, or the window turned.
        let now = out.as_ref().ok().map(|o| {
            (
                o["window"]["up"] == true,
                o["window"]["holiday"].as_str().map(str::to_owned),
            )
        });
        // Day turned to night or back, or a holiday began.
        let turned = match (&before, &now) {
            (Some((up, holiday)), Some((up_now, holiday_now))) => {
                up != up_now || (holiday.is_none() && holiday_now.is_some())
            }
            _ => false,
        };
        before = now.or(before);
        let quiet = matches!(&out, Ok(o) if o["notifications"].as_array().is_some_and(|n| n.is_empty())
            && (o["wake"].is_null() || o["wake"] == "waiting")
            && o["hold_removed"] == false);
        if quiet && !turned {
            week.idle += 1;
            week.idle_calls += calls;
            tick += TimeDelta::minutes(5);
            continue;
        }
        week.flush_idle();
        let what = match &out {
            Ok(o) if o["wake"] == "reached" => "reconcile: the tasks run".to_owned(),
            Ok(o) if o["hold_removed"] == true => "reconcile: the hold has ended".to_owned(),
            Ok(_) if tick == missed.1 + TimeDelta::minutes(5) => {
                "reconcile: the first run after them".to_owned()
            }
            Ok(o) if o["window"]["holiday"].is_string() && turned => {
                format!("reconcile: {THANKSGIVING} is a holiday")
            }
            Ok(o) if turned && o["window"]["up"] == true => "reconcile: the day begins".to_owned(),
            Ok(_) if turned => "reconcile: the night begins".to_owned(),
            _ => "reconcile".to_owned(),
        };
        week.row(&local(tick), &what, out, &caps, aws, prod).await;
        tick += TimeDelta::minutes(5);
    }
    week.flush_idle();

    println!("\n   {:<16} {:>8} {:>10}", "night from", "hours", "saved");
    let (mut hours, mut usd) = (0.0, 0.0);
    for (at, h, d) in &week.nights {
        println!("   {at:<16} {h:>8.2} {:>10}", format!("${d:.2}"));
        hours += h;
        usd += d;
    }
    println!(
        "   {:<16} {hours:>8.2} {:>10}   one task of 1 vCPU and 2 GB, at the manual's Fargate prices",
        "in all",
        format!("${usd:.2}")
    );
    println!(
        "\n   {} reconcile runs, {} of them with nothing to do ({} reads, nothing sent);\n   the team got {} message(s) in the week, on-call {}.",
        week.runs, week.idle_runs, week.idle_reads, week.messages, week.pages
    );
    proxy.stop();
    println!();
}

/// No run of the demo's week fails: it has no fault in it, so an error is a broken
/// demo (or scaler), and `make demo` must say so rather than print it as a row.
fn fail_on_error(out: &Result<Value, (String, String)>, when: &str) {
    if let Err((kind, message)) = out {
        panic!("the demo's week: the run at {when} failed ({kind}): {message}");
    }
}

/// The configuration the demo's commands are written with (prod's names).
fn common_config(vars: &[(String, String)]) -> menotime_shared::config::CommonConfig {
    use menotime_shared::config::{CommonConfig, Vars};
    CommonConfig::from_vars(&Vars(|k: &str| {
        vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }))
    .expect("prod's configuration")
}

/// The week as it is told: runs with nothing to do are counted and summed up in one
/// line; the others get a row.
struct Week {
    /// The window's zone, for local times.
    zone: Zone,
    runs: usize,
    idle: usize,
    idle_calls: usize,
    idle_runs: usize,
    idle_reads: usize,
    messages: usize,
    pages: usize,
    /// (from, hours, USD) of each scale-down's night, from its notification.
    nights: Vec<(String, f64, f64)>,
}

impl Week {
    fn new(zone: Zone) -> Week {
        Week {
            zone,
            runs: 0,
            idle: 0,
            idle_calls: 0,
            idle_runs: 0,
            idle_reads: 0,
            messages: 0,
            pages: 0,
            nights: Vec::new(),
        }
    }

    /// `Mon 11-23 20:00`, on the window's clock.
    fn local(&self, at: DateTime<Utc>) -> String {
        self.zone.local(at).format("%a %m-%d %H:%M").to_string()
    }

    /// How many runs in a row had nothing to do, and what they cost.
    fn flush_idle(&mut self) {
        if self.idle > 0 {
            println!(
                "   {:<16} {} run(s) with nothing to do: {} read(s), nothing sent",
                "...", self.idle, self.idle_calls
            );
        }
        self.idle_runs += self.idle;
        self.idle_reads += self.idle_calls;
        self.idle = 0;
        self.idle_calls = 0;
    }

    /// One row: when, what, the outcome and the capacity after; then what was said (the
    /// notifications' subjects), or why nothing was.
    #[allow(clippy::too_many_arguments)]
    async fn row(
        &mut self,
        when: &str,
        what: &str,
        out: Result<Value, (String, String)>,
        caps: &Capacities,
        aws: &Aws,
        env: &SeedEnv,
    ) {
        let capacity = caps.capacity(aws, env).await.to_string();
        let o = match out {
            Ok(o) => o,
            Err((kind, message)) => {
                println!(
                    "   {when:<16} {what:<36} {kind:<12} {capacity}\n   {:<16}   {message}",
                    ""
                );
                return;
            }
        };
        println!(
            "   {when:<16} {what:<36} {:<12} {capacity}",
            o["outcome"].as_str().unwrap_or("?")
        );
        let notify = aws.drain(&env.notify_queue_url).await;
        let oncall = aws.drain(&env.oncall_queue_url).await;
        self.messages += notify.len();
        self.pages += oncall.len();
        for m in notify.iter().chain(&oncall) {
            println!(
                "   {:<16}   said: {}   [{} {}]",
                "",
                m.subject,
                m.event_type(),
                m.attribute("action").unwrap_or("?")
            );
            let d = &m.payload["details"];
            if m.event_type() == "scale.down" {
                let (h, usd) = (
                    d["night_hours"].as_f64().unwrap_or(0.0),
                    d["estimated_saving_usd"].as_f64().unwrap_or(0.0),
                );
                println!(
                    "   {:<16}         a night of {h} h, until the window's next day: ${usd:.2} saved",
                    ""
                );
                self.nights.push((when.to_owned(), h, usd));
            }
            if d["hold_removed"] == true {
                println!("   {:<16}         the ended hold's tag was removed", "");
            }
            if d["skip_reason"] == "stale" {
                let scheduled = d["scheduled_time"]
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&Utc));
                if let Some(t) = scheduled {
                    println!(
                        "   {:<16}         scheduled for {}, arrived during uptime: left alone",
                        "",
                        self.local(t)
                    );
                }
            }
        }
        if notify.is_empty() && oncall.is_empty() {
            let why = if o["wake"] == "reached" {
                "the scale-up's tasks run, so its wake-up check ends (marker removed)"
            } else {
                o["reason"].as_str().unwrap_or_default()
            };
            println!("   {:<16}   nothing sent: {why}", "");
        }
    }
}

/// A freshly seeded moto with prod's scan-gate and deploy-notifier, and an on-call
/// subscriber over HTTP that receives the text people read.
struct Stage {
    moto: Moto,
    aws: Aws,
    prod: SeedEnv,
    gate: Function,
    notifier: Function,
    receiver: Receiver,
}

impl Stage {
    async fn new(notifier_vars: &[(&str, &str)]) -> Stage {
        let moto = Moto::start().await;
        let seed = moto.seed().await;
        let aws = Aws::new(&moto).await;
        let prod = seed.env("prod").clone();
        let gate = Function::start(
            &build_binary("scan-gate", "scan-gate"),
            "menotime-prod-scan-gate",
            &scan_gate_env(&moto, &seed, "prod"),
        )
        .await;
        let mut vars = notifier_env(&moto, &seed, "prod");
        for (k, v) in notifier_vars {
            vars.retain(|(key, _)| key != k);
            vars.push((k.to_string(), v.to_string()));
        }
        let notifier = Function::start(
            &build_binary("deploy-notifier", "deploy-notifier"),
            "menotime-prod-deploy-notifier",
            &vars,
        )
        .await;
        let receiver = Receiver::start().await.expect("http receiver");
        aws.sns
            .subscribe()
            .topic_arn(&prod.oncall_topic_arn)
            .protocol("http")
            .endpoint(&receiver.url)
            .send()
            .await
            .expect("subscribe the http receiver");
        Stage {
            moto,
            aws,
            prod,
            gate,
            notifier,
            receiver,
        }
    }

    /// The lines of the texts on-call received since the last call that match `keep`.
    fn oncall_text(&self, keep: &[&str]) {
        for body in self.receiver.take() {
            let envelope: Value = serde_json::from_str(&body).unwrap_or_default();
            let text = envelope["Message"].as_str().unwrap_or(&body).to_owned();
            let mut lines = text.lines();
            if let Some(first) = lines.next() {
                println!("   | {first}");
            }
            let mut next_is_command = false;
            for line in lines {
                if next_is_command || keep.iter().any(|k| line.contains(k)) {
                    println!("   | {line}");
                }
                next_is_command = keep
                    .iter()
                    .any(|k| line.starts_with("- ") && line.contains(k));
            }
        }
    }

    async fn stop(self) {
        self.receiver.stop();
        self.gate.stop().await;
        self.notifier.stop().await;
        self.moto.stop().await;
    }
}

/// The manual's post-deployment watch: "CloudWatch alarms checked for 30 minutes; if
/// anomalies detected, roll back". `auto`: AUTO_ROLLBACK_ON_REGRESSION=true.
async fn act_four(auto: bool) {
    if auto {
        println!(
            "\n== the same deploy again, on a fresh moto, with AUTO_ROLLBACK_ON_REGRESSION=true ==\n"
        );
    } else {
        println!(
            "\n== deploy-notifier: the manual's 30-minute watch after a prod deploy (a fresh moto) ==\n"
        );
    }
    let vars: &[(&str, &str)] = if auto {
        &[("AUTO_ROLLBACK_ON_REGRESSION", "true")]
    } else {
        &[]
    };
    let mut st = Stage::new(vars).await;
    let prod = st.prod.clone();

    println!(
        "1. 08:58 v1.2.4 finishes its scan; scan-gate deploys it   (events/scan-clean-v1.2.4.json)"
    );
    show_service("before", &st.aws.service(&prod).await);
    decision(st.gate.invoke(&event("scan-clean-v1.2.4.json")).await);
    st.aws.drain(&prod.notify_queue_url).await;
    show_service("after", &st.aws.service(&prod).await);

    println!("\n2. 09:00 ECS completes the deployment: deploy-notifier starts watching it");
    let deployment = st.aws.primary_deployment(&prod).await;
    decision(
        st.notifier
            .invoke(&completed("prod", &deployment, "2026-11-26T09:00:00Z"))
            .await,
    );
    println!(
        "   watch     {}",
        st.aws
            .service_tag(&prod, "menotime:deploy-watch")
            .await
            .unwrap_or_default()
    );
    show_delivered(&st.aws, &prod).await;

    println!(
        "\n3. 09:03 three minutes later the 5xx alarm fires   (events/cloudwatch-alarm-5xx.json)"
    );
    let fired = event("cloudwatch-alarm-5xx.json");
    decision(st.notifier.invoke(&fired).await);
    show_delivered(&st.aws, &prod).await;
    println!("   The page as on-call reads it (facts and next steps, abridged):");
    st.oncall_text(&[
        "Deployment:",
        "Image tag:",
        "Previous revision:",
        "Automatic rollback:",
        "Deploys:",
        "roll back to the previous revision",
        "freeze deployments",
    ]);
    show_service("service", &st.aws.service(&prod).await);
    if let Some(f) = st.aws.service_tag(&prod, "menotime:deploy-freeze").await {
        println!("   freeze    {f}");
    }

    println!("\n4. EventBridge delivers the alarm a second time");
    decision(st.notifier.invoke(&fired).await);
    show_delivered(&st.aws, &prod).await;

    if auto {
        println!("\n5. 09:04 the latency alarm fires too: it joins the incident, nothing is rolled back twice");
        decision(
            st.notifier
                .invoke(&alarm(
                    "prod",
                    "latency",
                    "ALARM",
                    "2026-11-26T09:04:00Z",
                    "demo-latency",
                ))
                .await,
        );
        show_delivered(&st.aws, &prod).await;
        st.receiver.take();
        show_service("service", &st.aws.service(&prod).await);
        println!("\n6. 09:10 both alarms recover");
        for (what, at, id) in [
            ("latency", "2026-11-26T09:10:00Z", "demo-latency-ok"),
            ("5xx", "2026-11-26T09:12:00Z", "demo-5xx-ok"),
        ] {
            decision(st.notifier.invoke(&alarm("prod", what, "OK", at, id)).await);
        }
        show_delivered(&st.aws, &prod).await;
        st.receiver.take();
        println!("\n7. v1.2.4 is scanned again: deploys stay frozen until someone reviews the regression");
        let mut rescan = event("scan-clean-v1.2.4.json");
        rescan["id"] = json!("demo-rescan-after-rollback");
        rescan["time"] = json!("2026-11-26T09:20:00Z");
        decision(st.gate.invoke(&rescan).await);
        show_delivered(&st.aws, &prod).await;
    } else {
        println!("\n5. 09:12 the alarm recovers   (events/cloudwatch-alarm-5xx-ok.json)");
        decision(
            st.notifier
                .invoke(&event("cloudwatch-alarm-5xx-ok.json"))
                .await,
        );
        show_delivered(&st.aws, &prod).await;
        for body in st.receiver.take() {
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
        println!("\n6. 09:45 the latency alarm fires, long after the 30 minutes: a service alarm, not the deployment's");
        decision(
            st.notifier
                .invoke(&alarm(
                    "prod",
                    "latency",
                    "ALARM",
                    "2026-11-26T09:45:00Z",
                    "demo-latency",
                ))
                .await,
        );
        decision(
            st.notifier
                .invoke(&alarm(
                    "prod",
                    "latency",
                    "OK",
                    "2026-11-26T09:49:00Z",
                    "demo-latency-ok",
                ))
                .await,
        );
        show_delivered(&st.aws, &prod).await;
        st.receiver.take();
    }
    st.stop().await;
}

/// Memory pressure, a task that will not start, and the prod safety net.
async fn act_five() {
    println!("\n== the manual's troubleshooting: memory, tasks that will not start, the circuit breaker (a fresh moto) ==\n");
    let mut st = Stage::new(&[]).await;
    let prod = st.prod.clone();

    println!(
        "1. 11:40 memory above 85% for three minutes   (events/cloudwatch-alarm-memory-high.json)"
    );
    decision(
        st.notifier
            .invoke(&event("cloudwatch-alarm-memory-high.json"))
            .await,
    );
    show_delivered(&st.aws, &prod).await;

    println!("\n2. A task cannot pull its image, then the next task of the same deployment   (events/ecs-task-failed-to-start.json)");
    let first = event("ecs-task-failed-to-start.json");
    decision(st.notifier.invoke(&first).await);
    let mut second = first.clone();
    second["id"] = json!("demo-second-task");
    decision(st.notifier.invoke(&second).await);
    let msgs = st.aws.drain(&prod.notify_queue_url).await;
    show_messages("notify", &msgs);
    if let Some(m) = msgs.first() {
        println!(
            "             cause {}, security groups {}",
            m.payload["details"]["cause"], m.payload["details"]["security_groups"]
        );
    }

    println!("\n3. Someone turned prod's circuit breaker off; a clean v1.2.4 is scanned");
    st.aws.set_deployment_configuration(&prod, 50, false).await;
    decision(st.gate.invoke(&event("scan-clean-v1.2.4.json")).await);
    let msgs = st.aws.drain(&prod.notify_queue_url).await;
    show_messages("notify", &msgs);
    if let Some(cmd) = msgs
        .first()
        .and_then(|m| m.payload["details"]["restore_command"].as_str())
    {
        println!("             to restore: {cmd}");
    }
    show_service("service", &st.aws.service(&prod).await);
    st.stop().await;
    println!();
}
