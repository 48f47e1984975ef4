//! `make bench`: what scan-gate costs, measured in one run on this machine.
//!
//! - cold start: spawning the release binary until its first answer through the
//!   Runtime API (configuration, SDK set-up, runtime start; a not_routed event, so no
//!   AWS call is in the figure);
//! - warm latency of each path against moto, next to moto's own cost of one call,
//!   so the figures can be read as "number of calls x moto's latency + ours";
//! - the size of the release binary.
//!
//! Figures are medians (with the 10th and 90th percentiles) over repeated runs: the
//! machine is shared and noisy. moto is much slower than AWS, so only the ratios and
//! our own overhead carry over to Lambda.

use std::time::{Duration, Instant};

use menotime_e2e::{build_binary, event, scan_gate_env, Aws, Function, Moto};
use serde_json::{json, Value};

const COLD_RUNS: usize = 15;
const WARM_RUNS: usize = 41;

struct Stats {
    p10: Duration,
    median: Duration,
    p90: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Stats {
        p10: at(0.1),
        median: at(0.5),
        p90: at(0.9),
    }
}

fn ms(d: Duration) -> String {
    format!("{:8.2} ms", d.as_secs_f64() * 1000.0)
}

fn row(label: &str, s: &Stats, extra: &str) {
    println!(
        "{label:<44} {}  (p10 {}, p90 {}){extra}",
        ms(s.median),
        ms(s.p10).trim(),
        ms(s.p90).trim()
    );
}

async fn timed(gate: &mut Function, e: &Value, expect: &str) -> Duration {
    let t = Instant::now();
    let out = gate.invoke(e).await.ok();
    let d = t.elapsed();
    assert_eq!(out["outcome"], expect, "{out}");
    d
}

#[tokio::main]
async fn main() {
    if cfg!(debug_assertions) {
        eprintln!("note: run with --release (make bench) for meaningful figures");
    }
    let bin = build_binary("scan-gate", "scan-gate");
    let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    println!(
        "scan-gate benchmark: {} ({:.1} MiB)\n",
        bin.display(),
        size as f64 / 1048576.0
    );

    let moto = Moto::start().await;
    let seed = moto.seed().await;
    let aws = Aws::new(&moto).await;
    let prod_env = scan_gate_env(&moto, &seed, "prod");
    let not_routed = event("scan-pr-42.json");

    // Cold start.
    let mut cold = Vec::new();
    for _ in 0..COLD_RUNS {
        let t = Instant::now();
        let mut f = Function::start(&bin, "bench-cold", &prod_env).await;
        let out = f.invoke(&not_routed).await.ok();
        cold.push(t.elapsed());
        assert_eq!(out["outcome"], "not_routed");
        f.stop().await;
    }

    // moto's own latency for one call, from this process with the same SDK.
    let prod = seed.env("prod").clone();
    let mut one_call = Vec::new();
    for _ in 0..WARM_RUNS {
        let t = Instant::now();
        aws.ecs
            .describe_services()
            .cluster(&prod.cluster)
            .services(&prod.service)
            .send()
            .await
            .unwrap();
        one_call.push(t.elapsed());
    }

    // Warm paths, prod.
    let mut gate = Function::start(&bin, "bench-prod", &prod_env).await;
    let mut nr = Vec::new();
    for _ in 0..WARM_RUNS {
        nr.push(timed(&mut gate, &not_routed, "not_routed").await);
    }
    let blocked_event = event("scan-critical-v1.2.5.json");
    let mut blocked = Vec::new();
    for _ in 0..WARM_RUNS {
        blocked.push(timed(&mut gate, &blocked_event, "blocked").await);
    }
    let clean = event("scan-clean-v1.2.4.json");
    timed(&mut gate, &clean, "deployed").await;
    let mut skipped = Vec::new();
    for _ in 0..WARM_RUNS {
        skipped.push(timed(&mut gate, &clean, "skipped").await);
    }
    gate.stop().await;

    // Deployments: dev, alternating two images under the moving `develop` tag, each
    // event scanned a minute after the previous one, so every one is a real deploy.
    let mut dev_gate =
        Function::start(&bin, "bench-dev", &scan_gate_env(&moto, &seed, "dev")).await;
    let digests = [
        seed.digest("develop").to_owned(),
        seed.digest("main").to_owned(),
    ];
    let mut deployed = Vec::new();
    for i in 0..WARM_RUNS {
        let mut e = event("scan-develop.json");
        e["id"] = json!(format!("bench-{i}"));
        e["time"] = json!(format!("2026-11-26T{:02}:{:02}:00Z", 10 + i / 60, i % 60));
        e["detail"]["image-digest"] = json!(digests[i % 2]);
        e["detail"]["image-tags"] = json!(["develop"]);
        deployed.push(timed(&mut dev_gate, &e, "deployed").await);
    }
    dev_gate.stop().await;
    moto.stop().await;

    let call = stats(one_call);
    let per_call = |s: &Stats, calls: u32| {
        if calls == 0 {
            String::new()
        } else {
            format!(
                "  = {:.1} x one moto call",
                s.median.as_secs_f64() / call.median.as_secs_f64()
            )
        }
    };
    println!("{COLD_RUNS} cold starts, {WARM_RUNS} warm invocations per path; medians:\n");
    row("cold start to first answer (no AWS call)", &stats(cold), "");
    row("one moto call (DescribeServices), for scale", &call, "");
    for (label, samples, calls) in [
        ("not_routed (0 AWS calls)", nr, 0),
        ("blocked (1 call: Publish)", blocked, 1),
        ("skipped, a duplicate (3 calls)", skipped, 3),
        ("deployed (5 calls)", deployed, 5),
    ] {
        let s = stats(samples);
        row(label, &s, &per_call(&s, calls));
    }
    println!("\nrelease binary size: {size} bytes (host target; `cargo lambda build --release --arm64` for Lambda)");
}
