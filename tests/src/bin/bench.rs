//! `make bench`: what each function costs a user, measured in one run on this machine.
//! A benchmark, not a test: it prints a table and writes `target/bench/results.json`,
//! and fails only if a function misbehaves (a target missed is reported, not fatal).
//!
//! For scan-gate, deploy-notifier and offhours-scaler:
//!
//! - **bootstrap size**: x86_64 is the host release binary this run measures; arm64 is
//!   `target/lambda/<function>/bootstrap` from `cargo lambda build --release --arm64`
//!   (`make bench` runs `make build-lambda` first);
//! - **cold start**: from just before the process is spawned to its first Runtime API
//!   `GET /invocation/next` (configuration read, SDK configuration and clients built,
//!   runtime started; no AWS call), over [`STARTS`] starts of each function;
//! - **the floor**: the same for a std-only bootstrap compiled here (it GETs `next` and
//!   POSTs `{}` as the response, on a blocking socket), the least any process costs
//!   under this harness. Every cold start is also reported as a ratio to the floor's.
//!   Starts are interleaved (floor, scan-gate, deploy-notifier, offhours-scaler, then
//!   again) so that noise from other work on the machine falls on all of them alike;
//! - **first and second invocation** of the same light event that calls AWS (scan-gate:
//!   a rescan of the running image; deploy-notifier: a steady state with nothing open;
//!   offhours-scaler: a scale-up with nothing saved): the first must not be more than
//!   1 ms slower than the second, so no lazy set-up moves into the first request;
//! - **a representative invocation** against moto, direct (no proxy): scan-gate a
//!   deployment (dev, `develop` moving between two images), deploy-notifier a page
//!   (prod, a failed deployment; the harness lifts the marker and the freeze
//!   afterwards, as an operator would), offhours-scaler prod's scale-down (followed by
//!   a scale-up);
//! - **peak resident memory** (`VmHWM`) of each process after its invocations;
//! - **the same over TLS** (rows marked `[tls]`): the same binaries, talking to moto
//!   through a loopback TLS front (`menotime_e2e::tls`) whose private CA they trust
//!   through `SSL_CERT_FILE`. Their first light invocation pays a real handshake
//!   (rustls on ring, the certificate chain checked against the loaded roots); the
//!   second reuses the connection;
//! - **AWS calls** of each scenario (deploy, block, page, resolve, scale-down,
//!   scale-up), counted by the proxy between a fresh set of processes and a fresh moto.
//!
//! moto is much slower than AWS (a call costs it a few ms on loopback), so invocation
//! times carry over only as "calls x latency + our own work".
//!
//! Comparing builds (a lever's before and after) in one interleaved run:
//! `MENOTIME_BENCH_BINS=<dir>` measures the x86_64 binaries in `<dir>` instead of
//! building them; `MENOTIME_BENCH_COMPARE=name=<dir>[,K=V...][;name=<dir>...]` adds
//! the binaries in each `<dir>` as another variant, started in turn with the others in
//! every round (with its own extra variables, e.g. `SSL_CERT_FILE=...`);
//! `MENOTIME_BENCH_LAMBDA_DIR=<dir>` reads `<dir>/<function>/bootstrap` for arm64;
//! `MENOTIME_BENCH_ENV=K=V,K=V` adds variables to the measured binaries' environment;
//! `MENOTIME_BENCH_STARTS=<n>` changes the number of starts (default [`STARTS`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use menotime_e2e::offhours::offhours_env;
use menotime_e2e::proxy::Proxy;
use menotime_e2e::tls::TlsFront;
use menotime_e2e::*;
use serde_json::{json, Value};

/// Cold starts per function.
const STARTS: usize = 25;

/// The targets: cold start at most this many times the floor's, ...
const COLD_START_FLOOR_RATIO: f64 = 3.0;
/// ... peak memory, ...
const PEAK_RSS_MIB: f64 = 8.0;
/// ... the deployable package, ...
const ARM64_BOOTSTRAP_MIB: f64 = 5.0;
/// ... and the first light invocation no slower than the second by more than this.
const FIRST_INVOCATION_EXTRA_MS: f64 = 1.0;

const FUNCTIONS: [&str; 3] = ["scan-gate", "deploy-notifier", "offhours-scaler"];

/// Scenario, function, the issue's target, and why ours differs where it does.
const SCENARIOS: [(&str, &str, u32, &str); 6] = [
    (
        "deploy",
        "scan-gate",
        5,
        "by design: the revision marked deployed so a rollback is never undone",
    ),
    ("block", "scan-gate", 1, ""),
    (
        "page",
        "deploy-notifier",
        2,
        "by design: duplicate check, failed image, page recorded with the freeze, Publish, page confirmed",
    ),
    ("resolve", "deploy-notifier", 0, ""),
    (
        "scale-down",
        "offhours-scaler",
        4,
        "by design: snapshot before lowering, target and count, saving estimate",
    ),
    (
        "scale-up",
        "offhours-scaler",
        4,
        "by design: target and count, snapshot removed last, saving estimate",
    ),
];

const MIB: f64 = 1024.0 * 1024.0;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of `samples` (sorted here), in ms.
fn pct(samples: &[Duration], q: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort();
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    ms(s[rank - 1])
}

fn median_kib(samples: &[u64]) -> u64 {
    let mut s = samples.to_vec();
    s.sort();
    s[(s.len() - 1) / 2]
}

/// Builds the three functions in release (one cargo invocation; a no-op when up to
/// date) and returns each binary's path.
fn build_release() -> BTreeMap<String, PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["build", "--release", "--message-format=json"];
    for f in FUNCTIONS {
        args.extend(["-p", f, "--bin", f]);
    }
    eprintln!("building the release binaries: cargo {}", args.join(" "));
    let out = std::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args(&args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build");
    assert!(out.status.success(), "cargo build --release failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact")
        .filter_map(|v| {
            let name = v["target"]["name"].as_str()?.to_owned();
            let exe = v["executable"].as_str()?;
            FUNCTIONS
                .contains(&name.as_str())
                .then(|| (name, PathBuf::from(exe)))
        })
        .collect()
}

/// The binaries to measure: built here, or taken from `MENOTIME_BENCH_BINS`.
fn binaries() -> BTreeMap<String, PathBuf> {
    match std::env::var_os("MENOTIME_BENCH_BINS") {
        Some(dir) => FUNCTIONS
            .iter()
            .map(|f| (f.to_string(), Path::new(&dir).join(f)))
            .collect(),
        None => build_release(),
    }
}

/// The floor: a std-only bootstrap on a blocking socket. It GETs `next`, POSTs `{}` as
/// the response, and asks again, as long as the Runtime API answers.
const FLOOR_BOOTSTRAP: &str = r#"
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
fn request(api: &str, head: &str, body: &str) -> Option<(String, Vec<u8>)> {
    let mut s = TcpStream::connect(api).ok()?;
    let req = format!("{head} HTTP/1.1\r\nHost: {api}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).ok()?;
    let mut r = BufReader::new(s);
    let (mut id, mut len) = (String::new(), 0usize);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 { return None; }
        let line = line.trim_end();
        if line.is_empty() { break; }
        if let Some((k, v)) = line.split_once(':') {
            match k.to_ascii_lowercase().as_str() {
                "lambda-runtime-aws-request-id" => id = v.trim().to_string(),
                "content-length" => len = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some((id, body))
}
fn main() {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap_or_default();
    while let Some((id, _event)) = request(&api, "GET /2018-06-01/runtime/invocation/next", "") {
        let head = format!("POST /2018-06-01/runtime/invocation/{id}/response");
        if request(&api, &head, "{}").is_none() { break; }
    }
}
"#;

/// Compiles the floor into `dir` with `rustc -O`.
fn build_floor(dir: &Path) -> PathBuf {
    let src = dir.join("floor_bootstrap.rs");
    let bin = dir.join("floor-bootstrap");
    std::fs::write(&src, FLOOR_BOOTSTRAP).expect("write the floor's source");
    let ok = std::process::Command::new("rustc")
        .args(["-O", "-C", "strip=symbols", "--edition", "2021", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "rustc could not build the floor bootstrap");
    bin
}

/// Size of an ELF file, if it is one for `machine` (62 x86_64, 183 aarch64).
fn elf_size(path: &Path, machine: u16) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let ok = bytes.len() > 20
        && bytes[..4] == *b"\x7fELF"
        && u16::from_le_bytes([bytes[18], bytes[19]]) == machine;
    ok.then_some(bytes.len() as u64)
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    json!({
        "cpu": cpu,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_gib": (mem_kib as f64 / 1048576.0 * 10.0).round() / 10.0,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "rustc": command_line("rustc", &["-V"]),
        "date": command_line("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Invokes and checks the outcome; returns how long the answer took.
async fn timed(f: &mut Function, e: &Value, expect: &str) -> Duration {
    let t = Instant::now();
    let out = f.invoke(e).await.ok();
    let d = t.elapsed();
    assert_eq!(out["outcome"], expect, "{out}");
    d
}

/// A failed-deployment event for moto's current deployment of `env`.
async fn failure(aws: &Aws, env: &SeedEnv, n: usize) -> Value {
    let deployment = aws.deployments(env).await.remove(0).0;
    let mut e = event("ecs-deployment-failed.json");
    e["id"] = json!(format!("bench-failed-{n}"));
    e["time"] = json!(format!("2026-11-26T03:{:02}:{:02}Z", n / 60, n % 60));
    e["detail"]["updatedAt"] = e["time"].clone();
    e["detail"]["deploymentId"] = json!(deployment);
    e
}

/// What a person does after a page: the freeze and the incident marker lifted.
async fn lift_incident(aws: &Aws, env: &SeedEnv) {
    aws.untag_service(env, menotime_shared::tags::DEPLOY_FREEZE)
        .await;
    aws.untag_service(env, menotime_shared::tags::DEPLOY_INCIDENT)
        .await;
}

fn schedule(action: &str, n: usize) -> Value {
    json!({"action": action, "executionId": format!("bench-{action}-{n}")})
}

/// The AWS calls of each scenario, through the counting proxy, on a fresh moto.
async fn count_calls(bins: &BTreeMap<String, PathBuf>) -> BTreeMap<String, Vec<String>> {
    let moto = Moto::start().await;
    let seed = moto.seed().await;
    let aws = Aws::new(&moto).await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let via_proxy = |env: Vec<(String, String)>| with_var(env, "AWS_ENDPOINT_URL", &proxy.url);
    let prod = seed.env("prod");
    let mut calls = BTreeMap::new();
    let mut record = |name: &str, proxy: &Proxy| {
        calls.insert(name.to_owned(), Proxy::operations(&proxy.take_calls()));
    };

    let mut gate = Function::start(
        &bins["scan-gate"],
        "bench-count-scan-gate",
        &via_proxy(scan_gate_env(&moto, &seed, "prod")),
    )
    .await;
    proxy.take_calls();
    timed(&mut gate, &event("scan-clean-v1.2.4.json"), "deployed").await;
    record("deploy", &proxy);
    timed(&mut gate, &event("scan-critical-v1.2.5.json"), "blocked").await;
    record("block", &proxy);
    gate.stop().await;

    let mut notifier = Function::start(
        &bins["deploy-notifier"],
        "bench-count-deploy-notifier",
        &via_proxy(notifier_env(&moto, &seed, "prod")),
    )
    .await;
    let failed = failure(&aws, prod, 0).await;
    proxy.take_calls();
    timed(&mut notifier, &failed, "paged").await;
    record("page", &proxy);
    aws.untag_service(prod, menotime_shared::tags::DEPLOY_FREEZE)
        .await;
    let mut completed = event("ecs-deployment-completed.json");
    completed["time"] = json!("2026-11-26T04:00:00Z");
    completed["detail"]["updatedAt"] = json!("2026-11-26T04:00:00Z");
    proxy.take_calls();
    timed(&mut notifier, &completed, "resolved").await;
    record("resolve", &proxy);
    notifier.stop().await;

    let mut scaler = Function::start(
        &bins["offhours-scaler"],
        "bench-count-offhours-scaler",
        &via_proxy(offhours_env(&moto, &seed, "prod")),
    )
    .await;
    proxy.take_calls();
    timed(&mut scaler, &schedule("scale-down", 0), "scaled_down").await;
    record("scale-down", &proxy);
    timed(&mut scaler, &schedule("scale-up", 0), "scaled_up").await;
    record("scale-up", &proxy);
    scaler.stop().await;

    proxy.stop();
    moto.stop().await;
    calls
}

#[derive(Default)]
struct Samples {
    cold: Vec<Duration>,
    first: Vec<Duration>,
    second: Vec<Duration>,
    work: Vec<Duration>,
    rss_kib: Vec<u64>,
}

/// A set of binaries measured in the interleaved rounds, with its own extra variables.
struct Variant {
    name: String,
    bins: BTreeMap<String, PathBuf>,
    env: Vec<(String, String)>,
    /// Talks to moto through the TLS front, trusting its CA through `SSL_CERT_FILE`.
    tls: bool,
}

fn env_list(spec: &str) -> Vec<(String, String)> {
    spec.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The variants: the binaries measured (named `current`); the same binaries over TLS
/// (named `tls`: moto behind a loopback TLS front whose private CA is trusted through
/// `SSL_CERT_FILE`, so the first call pays a real handshake and one more root is
/// loaded at start-up); then `MENOTIME_BENCH_COMPARE`'s.
fn variants(current: &BTreeMap<String, PathBuf>) -> Vec<Variant> {
    let env = env_list(&std::env::var("MENOTIME_BENCH_ENV").unwrap_or_default());
    let mut out = vec![
        Variant {
            name: "current".into(),
            bins: current.clone(),
            env: env.clone(),
            tls: false,
        },
        Variant {
            name: "tls".into(),
            bins: current.clone(),
            env,
            tls: true,
        },
    ];
    for spec in std::env::var("MENOTIME_BENCH_COMPARE")
        .unwrap_or_default()
        .split(';')
        .filter(|s| !s.trim().is_empty())
    {
        let (name, rest) = spec.split_once('=').unwrap_or_else(|| {
            panic!("MENOTIME_BENCH_COMPARE: {spec:?} is not name=<dir>[,K=V...]")
        });
        let (dir, env) = rest.split_once(',').unwrap_or((rest, ""));
        let bins = FUNCTIONS
            .iter()
            .map(|f| (f.to_string(), Path::new(dir).join(f)))
            .filter(|(_, p)| p.exists())
            .collect();
        out.push(Variant {
            name: name.to_owned(),
            bins,
            env: env_list(env),
            tls: false,
        });
    }
    out
}

/// Event numbers only grow, so events are never late; scan-gate's dev deployments
/// alternate between two images.
#[derive(Default)]
struct Counter {
    n: usize,
    dev_deploys: usize,
}

impl Counter {
    fn next(&mut self) -> usize {
        self.n += 1;
        self.n
    }
}

/// A scan of `develop` at `digest`, event `i`.
fn develop_scan(i: usize, digest: &str) -> Value {
    let mut e = event("scan-develop.json");
    e["id"] = json!(format!("bench-{i}"));
    e["time"] = json!(format!(
        "2026-11-26T{:02}:{:02}:{:02}Z",
        10 + i / 3600,
        (i / 60) % 60,
        i % 60
    ));
    e["detail"]["image-digest"] = json!(digest);
    e["detail"]["image-tags"] = json!(["develop"]);
    e
}

/// A steady state of prod's service, event `i`.
fn steady(i: usize) -> Value {
    let mut e = event("ecs-service-steady-state.json");
    e["id"] = json!(format!("bench-steady-{i}"));
    e
}

/// One cold start of `function` with its invocations.
#[allow(clippy::too_many_arguments)]
async fn round(
    function: &str,
    v: &Variant,
    moto: &Moto,
    front: &TlsFront,
    seed: &Seed,
    aws: &Aws,
    c: &mut Counter,
    s: &mut Samples,
) {
    let Some(bin) = v.bins.get(function) else {
        return;
    };
    let (env, label) = match function {
        "scan-gate" => (scan_gate_env(moto, seed, "dev"), "dev"),
        "deploy-notifier" => (notifier_env(moto, seed, "prod"), "prod"),
        _ => (offhours_env(moto, seed, "prod"), "prod"),
    };
    let name = format!("menotime-{label}-{function}");
    let env = v
        .env
        .iter()
        .fold(env, |env, (k, val)| with_var(env, k, val));
    let env = if v.tls {
        let ca = front.ca_file.to_string_lossy();
        with_var(
            with_var(env, "AWS_ENDPOINT_URL", &front.url),
            "SSL_CERT_FILE",
            &ca,
        )
    } else {
        env
    };
    let mut f = Function::start(bin, &name, &env).await;
    let cold = f
        .first_next(Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("{function} ({}) never asked for an invocation", v.name));
    let digests = [
        seed.digest("develop").to_owned(),
        seed.digest("main").to_owned(),
    ];
    let (first, second, work) = match function {
        "scan-gate" => {
            // A rescan of what runs, twice; then `develop` moves to the other image.
            let running = digests[c.dev_deploys % 2].clone();
            let first = timed(&mut f, &develop_scan(c.next(), &running), "skipped").await;
            let second = timed(&mut f, &develop_scan(c.next(), &running), "skipped").await;
            c.dev_deploys += 1;
            let moved = digests[c.dev_deploys % 2].clone();
            let work = timed(&mut f, &develop_scan(c.next(), &moved), "deployed").await;
            (first, second, work)
        }
        "deploy-notifier" => {
            let first = timed(&mut f, &steady(c.next()), "ignored").await;
            let second = timed(&mut f, &steady(c.next()), "ignored").await;
            let prod = seed.env("prod");
            let e = failure(aws, prod, c.next()).await;
            let work = timed(&mut f, &e, "paged").await;
            lift_incident(aws, prod).await;
            (first, second, work)
        }
        _ => {
            let first = timed(&mut f, &schedule("scale-up", c.next()), "skipped").await;
            let second = timed(&mut f, &schedule("scale-up", c.next()), "skipped").await;
            let work = timed(&mut f, &schedule("scale-down", c.next()), "scaled_down").await;
            timed(&mut f, &schedule("scale-up", c.next()), "scaled_up").await;
            // The restore leaves its wake-up marker for the next run to check, which
            // would give the next round's first light event one AWS call more than its
            // second. Lift it, as that check would once the tasks run.
            aws.untag_service(seed.env("prod"), menotime_shared::tags::OFFHOURS_WAKE)
                .await;
            (first, second, work)
        }
    };
    let rss = f.peak_rss_kib().expect("VmHWM of the function process");
    f.stop().await;
    s.cold.push(cold);
    s.first.push(first);
    s.second.push(second);
    s.work.push(work);
    s.rss_kib.push(rss);
}

/// One start of the floor: its cold start and memory, after one invocation.
async fn floor_round(bin: &Path, s: &mut Samples) {
    let mut f = Function::start(bin, "bench-floor", &[]).await;
    let cold = f
        .first_next(Duration::from_secs(30))
        .await
        .expect("the floor asks for work");
    let t = Instant::now();
    f.invoke(&json!({})).await.ok();
    s.first.push(t.elapsed());
    let rss = f.peak_rss_kib().expect("VmHWM of the floor process");
    f.stop().await;
    s.cold.push(cold);
    s.rss_kib.push(rss);
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// Median of the rounds' (first - second) invocation times, in ms.
fn first_extra_ms(s: &Samples) -> f64 {
    let mut d: Vec<f64> = s
        .first
        .iter()
        .zip(&s.second)
        .map(|(a, b)| ms(*a) - ms(*b))
        .collect();
    d.sort_by(|a, b| a.total_cmp(b));
    d.get((d.len().max(1) - 1) / 2).copied().unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    let machine = machine();
    let starts: usize = std::env::var("MENOTIME_BENCH_STARTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(STARTS);
    let bins = binaries();
    for f in FUNCTIONS {
        assert!(bins.contains_key(f), "cargo did not report the {f} binary");
    }
    let variants = variants(&bins);
    let root = workspace_root();
    let lambda_dir = std::env::var_os("MENOTIME_BENCH_LAMBDA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/lambda"));
    let bench_dir = root.join("target/bench");
    std::fs::create_dir_all(&bench_dir).expect("create target/bench");
    let floor = build_floor(&bench_dir);
    let mut sizes = BTreeMap::new();
    for f in FUNCTIONS {
        let x86 = elf_size(&bins[f], 62);
        let arm = elf_size(&lambda_dir.join(f).join("bootstrap"), 183);
        sizes.insert(f, (x86, arm));
    }

    eprintln!("counting AWS calls through the proxy ...");
    let calls = count_calls(&bins).await;

    eprintln!(
        "{starts} interleaved cold starts of the floor and of each function{} ...",
        if variants.len() > 1 {
            format!(" in {} variants", variants.len())
        } else {
            String::new()
        }
    );
    let load_before = load_average();
    let moto = Moto::start().await;
    let seed = moto.seed().await;
    let aws = Aws::new(&moto).await;
    let front = TlsFront::start(&moto.endpoint, &bench_dir.join("tls")).await;
    // moto's own latency for one call, from this process, for scale.
    let mut one_call = Vec::new();
    for _ in 0..starts {
        let t = Instant::now();
        aws.deployments(seed.env("prod")).await;
        one_call.push(t.elapsed());
    }
    let mut counter = Counter::default();
    // dev runs the image seeded under `develop` from here on, so that a rescan of it is
    // a light event (skipped) and each round's deployment alternates two images.
    {
        let mut gate = Function::start(
            &bins["scan-gate"],
            "bench-prime",
            &scan_gate_env(&moto, &seed, "dev"),
        )
        .await;
        let e = develop_scan(counter.next(), seed.digest("develop"));
        timed(&mut gate, &e, "deployed").await;
        gate.stop().await;
    }
    // One start of each, not measured: the binaries are read into the page cache.
    let mut discard = Samples::default();
    floor_round(&floor, &mut discard).await;
    for v in &variants {
        for f in FUNCTIONS {
            round(f, v, &moto, &front, &seed, &aws, &mut counter, &mut discard).await;
        }
    }
    let mut floor_s = Samples::default();
    let mut samples: BTreeMap<(String, &str), Samples> = BTreeMap::new();
    for _ in 0..starts {
        floor_round(&floor, &mut floor_s).await;
        for v in &variants {
            for f in FUNCTIONS {
                let s = samples.entry((v.name.clone(), f)).or_default();
                round(f, v, &moto, &front, &seed, &aws, &mut counter, s).await;
            }
        }
    }
    front.stop();
    moto.stop().await;
    let load_after = load_average();
    let floor_ms = pct(&floor_s.cold, 0.5);

    // The table.
    let mut out = String::new();
    let cpu = machine["cpu"].as_str().unwrap_or_default();
    out += &format!(
        "menotime-ops bench, {}: {} x {}, {} GiB, {}; load average {} before, {} after\n\n",
        machine["date"].as_str().unwrap_or_default(),
        machine["cpus"],
        cpu,
        machine["memory_gib"],
        machine["rustc"].as_str().unwrap_or_default(),
        load_before,
        load_after
    );
    let header = format!(
        "{:<28} {:>10} {:>9} {:>19} {:>8} {:>15} {:>17} {:>18}\n",
        "function",
        "x86_64 MiB",
        "arm64 MiB",
        "cold start ms (p90)",
        "x floor",
        "1st - 2nd ms",
        "work inv. ms (p90)",
        "peak RSS MiB (max)"
    );
    out += &header;
    let mib = |b: Option<u64>| {
        b.map(|b| format!("{:.2}", b as f64 / MIB))
            .unwrap_or_else(|| "-".into())
    };
    let floor_rss = median_kib(&floor_s.rss_kib) as f64 / 1024.0;
    out += &format!(
        "{:<28} {:>10} {:>9} {:>19} {:>8} {:>15} {:>17} {:>18}\n",
        "(floor)",
        "",
        "",
        format!("{floor_ms:.2} ({:.2})", pct(&floor_s.cold, 0.9)),
        "1.00",
        "-",
        "-",
        format!(
            "{floor_rss:.1} ({:.1})",
            *floor_s.rss_kib.iter().max().unwrap_or(&0) as f64 / 1024.0
        ),
    );
    let mut functions = serde_json::Map::new();
    let mut compared = serde_json::Map::new();
    let mut met = Vec::new();
    let samples_ms = |v: &[Duration]| {
        v.iter()
            .map(|d| (ms(*d) * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    };
    for v in &variants {
        let current = v.name == "current";
        for f in FUNCTIONS {
            let Some(s) = samples.get(&(v.name.clone(), f)) else {
                continue;
            };
            let (x86, arm) = if current {
                sizes[f]
            } else {
                (v.bins.get(f).and_then(|b| elf_size(b, 62)), None)
            };
            let rss_med = median_kib(&s.rss_kib) as f64 / 1024.0;
            let rss_max = *s.rss_kib.iter().max().unwrap() as f64 / 1024.0;
            let cold_med = pct(&s.cold, 0.5);
            let ratio = cold_med / floor_ms;
            let extra = first_extra_ms(s);
            let label = if current {
                f.to_owned()
            } else {
                format!("{f} [{}]", v.name)
            };
            out += &format!(
                "{:<28} {:>10} {:>9} {:>19} {:>8} {:>15} {:>17} {:>18}\n",
                label,
                mib(x86),
                mib(arm),
                format!("{cold_med:.2} ({:.2})", pct(&s.cold, 0.9)),
                format!("{ratio:.2}"),
                format!("{extra:+.2}"),
                format!("{:.1} ({:.1})", pct(&s.work, 0.5), pct(&s.work, 0.9)),
                format!("{rss_med:.1} ({rss_max:.1})"),
            );
            let entry = json!({
                "bootstrap_bytes": {"x86_64": x86, "arm64": arm},
                "cold_start_ms": {"median": cold_med, "p90": pct(&s.cold, 0.9), "samples": samples_ms(&s.cold)},
                "cold_start_to_floor": ratio,
                "first_invocation_ms": {"median": pct(&s.first, 0.5), "samples": samples_ms(&s.first)},
                "second_invocation_ms": {"median": pct(&s.second, 0.5), "samples": samples_ms(&s.second)},
                "first_minus_second_ms": extra,
                "work_invocation_ms": {"median": pct(&s.work, 0.5), "p90": pct(&s.work, 0.9), "samples": samples_ms(&s.work)},
                "peak_rss_kib": {"median": median_kib(&s.rss_kib), "max": s.rss_kib.iter().max(), "samples": s.rss_kib},
            });
            if current {
                met.push((
                    format!("{f}: cold start <= {COLD_START_FLOOR_RATIO}x the floor ({ratio:.2}x)"),
                    ratio <= COLD_START_FLOOR_RATIO,
                ));
                met.push((
                    format!("{f}: peak RSS <= {PEAK_RSS_MIB} MiB ({rss_max:.1})"),
                    rss_max <= PEAK_RSS_MIB,
                ));
                met.push((
                    format!(
                        "{f}: arm64 bootstrap <= {ARM64_BOOTSTRAP_MIB} MiB ({})",
                        mib(arm)
                    ),
                    arm.is_some_and(|b| b as f64 / MIB <= ARM64_BOOTSTRAP_MIB),
                ));
                met.push((
                    format!(
                        "{f}: first invocation <= {FIRST_INVOCATION_EXTRA_MS} ms slower than the second ({extra:+.2} ms)"
                    ),
                    extra <= FIRST_INVOCATION_EXTRA_MS,
                ));
                functions.insert(f.to_owned(), entry);
            } else {
                compared
                    .entry(v.name.clone())
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .map(|m| m.insert(f.to_owned(), entry));
            }
        }
    }
    out += &format!(
        "\n{starts} starts each, interleaved with the floor's; medians (p90). x floor: cold \
         start / the floor's. 1st - 2nd: the first light invocation's time minus the \
         second's (median of the rounds). Work: scan-gate a deploy, deploy-notifier a page, \
         offhours-scaler prod's scale-down. One moto call takes {:.1} ms here. (floor): a \
         std-only bootstrap that GETs next and POSTs {{}}.\n",
        pct(&one_call, 0.5)
    );
    if sizes.values().any(|(_, arm)| arm.is_none()) {
        out += "arm64: no target/lambda/<function>/bootstrap; `make build-lambda` builds them.\n";
    }

    out += &format!(
        "\n{:<11} {:<16} {:>9} {:>7}  {}\n",
        "scenario", "function", "AWS calls", "target", "calls"
    );
    let mut scenarios = serde_json::Map::new();
    for (scenario, function, target, why) in SCENARIOS {
        let ops = &calls[scenario];
        let n = ops.len() as u32;
        let target_text = if target == 0 {
            "-".to_owned()
        } else {
            format!("<= {target}")
        };
        out += &format!(
            "{:<11} {:<16} {:>9} {:>7}  {}\n",
            scenario,
            function,
            n,
            target_text,
            ops.join(", ")
        );
        if target > 0 {
            met.push((
                format!(
                    "{scenario}: AWS calls <= {target}{}",
                    if n > target && !why.is_empty() {
                        format!(" ({why})")
                    } else {
                        String::new()
                    }
                ),
                n <= target,
            ));
        }
        scenarios.insert(
            scenario.to_owned(),
            json!({"function": function, "calls": n, "operations": ops, "target": (target > 0).then_some(target)}),
        );
    }

    out += "\ntargets:\n";
    for (what, ok) in &met {
        out += &format!("  {:<7} {what}\n", mark(*ok));
    }
    println!("{out}");

    let results = json!({
        "machine": machine,
        "load_average": {"before": load_before, "after": load_after},
        "starts_per_function": starts,
        "moto_one_call_ms": {"median": pct(&one_call, 0.5), "p90": pct(&one_call, 0.9)},
        "floor": {
            "what": "std-only bootstrap on a blocking socket: GET next, POST {} as the response",
            "cold_start_ms": {"median": floor_ms, "p90": pct(&floor_s.cold, 0.9), "samples": samples_ms(&floor_s.cold)},
            "peak_rss_kib": {"median": median_kib(&floor_s.rss_kib), "max": floor_s.rss_kib.iter().max()},
        },
        "functions": functions,
        "compared": compared,
        "scenarios": scenarios,
        "targets": met.iter().map(|(what, ok)| json!({"target": what, "met": ok})).collect::<Vec<_>>(),
    });
    let path = bench_dir.join("results.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&results).unwrap() + "\n",
    )
    .expect("write results.json");
    println!("written: {}", path.display());
}
