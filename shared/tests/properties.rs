//! Property tests over generated hostile and malformed input: event parsing and every
//! decision function must never panic (a panic is a crashed invocation; with
//! `panic = "abort"` a killed sandbox) and must keep their invariants. A seeded
//! generator keeps the cases reproducible;
//! `MENOTIME_PROPERTY_CASES` raises the number of cases.
#![cfg(test)]

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use menotime_shared::config::{
    CommonConfig, Environment, NotifierConfig, OffhoursConfig, ScanGateConfig, Vars,
};
use menotime_shared::domain::deploy::{Deferred, DeployedMark};
use menotime_shared::domain::ecs_event::{parse_ecs_event, EcsEvent, Site};
use menotime_shared::domain::incident::{self, Marker};
use menotime_shared::domain::offhours::{
    self, Capacity, DownPlan, Exclusion, ScalableTarget, Snapshot, Suspended, Targets, UpPlan,
};
use menotime_shared::domain::pricing;
use menotime_shared::domain::scan::{parse_trigger, Expect, Trigger};
use menotime_shared::domain::service::{DeploymentState, Rollout, ServiceState, ServiceTags};
use menotime_shared::notify::{dedup_key, EventType, Notification};
use menotime_shared::{tags, Error};

fn cases() -> usize {
    std::env::var("MENOTIME_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

/// A seeded generator (fastrand), one per property, so a failure is reproducible.
struct Gen(fastrand::Rng);

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen(fastrand::Rng::with_seed(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.u64(..)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0.usize(..n.max(1))
    }

    fn chance(&mut self, p: f64) -> bool {
        self.0.f64() <= p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn int(&mut self) -> i64 {
        *self.pick(&[
            0,
            1,
            -1,
            2,
            4,
            137,
            i64::MAX,
            i64::MIN,
            i32::MAX as i64,
            1 << 53,
        ])
    }

    /// Strings that hurt: unicode, control characters, separators, huge, empty.
    fn string(&mut self) -> String {
        let pieces = [
            "", "a", "sha256:", "v1.2.4", "menotime/backend", "arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service",
            "arn:", ":", "/", "=", "+", " ", "\n", "\t", "\u{0}", "ü", "日本", "🙂", "\u{202e}", "'", "\"", "\\",
            "{", "}", "%", "sent=failed", "state=open", "at=2025-06-02T18:00:00Z", "request=r", "min=2", "max=4",
            "desired=2", "suspended=in+out", "saved=", "deployment=ecs-svc/1", "ecs-svc/", "OutOfMemoryError",
            "ECS deployment circuit breaker: rolling back to deploymentId ", "2025-06-02T18:01:00.114Z", "-1",
            "99999999999999999999", "NaN",
        ];
        let mut s = String::new();
        for _ in 0..self.below(6) {
            let piece: &str = self.pick::<&str>(&pieces[..]);
            s.push_str(piece);
        }
        if self.chance(0.02) {
            s = s.repeat(500);
        }
        s
    }

    fn value(&mut self, depth: usize) -> Value {
        match self.below(if depth > 2 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json!(self.chance(0.5)),
            2 => json!(self.int()),
            3 => json!(self.string()),
            4 => json!(1.5e300),
            5 => Value::Array((0..self.below(3)).map(|_| self.value(depth + 1)).collect()),
            _ => {
                let mut m = Map::new();
                for _ in 0..self.below(3) {
                    m.insert(self.string(), self.value(depth + 1));
                }
                Value::Object(m)
            }
        }
    }

    /// A copy of `v` with a few of its nodes replaced, removed or retyped.
    fn mutate(&mut self, v: &Value) -> Value {
        let mut out = v.clone();
        for _ in 0..1 + self.below(3) {
            let mut paths = Vec::new();
            collect_paths(&out, String::new(), &mut paths);
            let path = self.pick(&paths).clone();
            let Some(node) = out.pointer_mut(&path) else {
                continue;
            };
            match self.below(4) {
                0 => *node = self.value(0),
                1 => *node = Value::Null,
                2 => {
                    if let Value::Object(m) = node {
                        if let Some(k) = m.keys().next().cloned() {
                            m.remove(&k);
                        }
                    } else {
                        *node = json!(self.string());
                    }
                }
                _ => {
                    if let Value::String(s) = node {
                        s.push_str(&self.string());
                    } else {
                        *node = json!(self.string());
                    }
                }
            }
        }
        out
    }
}

fn collect_paths(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                collect_paths(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                collect_paths(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn fixtures() -> Vec<Value> {
    let mut out = Vec::new();
    for dir in ["fixtures/reference", "../events"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files {
            if f.extension().is_some_and(|e| e == "json") {
                out.push(serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap());
            }
        }
    }
    out
}

const EXPECT: Expect<'static> = Expect {
    account: "123456789012",
    region: "us-west-1",
    repository: "menotime/backend",
};

const SITE: Site<'static> = Site {
    account: "123456789012",
    region: "us-west-1",
    cluster: "menotime-prod-cluster",
    service: "menotime-prod-service",
};

fn rejected_sentence(e: &Error) {
    let msg = e.to_string();
    assert!(!msg.is_empty());
    assert!(
        matches!(e, Error::Rejected(_)),
        "parsing only ever rejects: {e:?}"
    );
}

/// Mutated real events: never a panic; what is not accepted is a Rejected error; what
/// is accepted still belongs to this account, region and repository or service.
#[test]
fn parsing_mutated_events_never_panics() {
    let base = fixtures();
    let mut g = Gen::new(0x5EED_0001);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..cases() {
        let picked = g.pick(&base).clone();
        let event = g.mutate(&picked);
        match parse_trigger(&event, EXPECT) {
            Ok(Trigger::Scan(s)) => {
                accepted += 1;
                assert_eq!(event["account"], "123456789012");
                assert_eq!(event["region"], "us-west-1");
                assert!(s.digest.starts_with("sha256:"));
            }
            Ok(Trigger::Approval(a)) => {
                accepted += 1;
                assert_eq!(event["account"], "123456789012");
                assert!(!a.approved_by.is_empty());
            }
            Err(e) => {
                refused += 1;
                rejected_sentence(&e)
            }
        }
        match parse_ecs_event(&event, SITE) {
            Ok(ev) => {
                accepted += 1;
                assert_eq!(event["account"], "123456789012");
                assert_eq!(event["region"], "us-west-1");
                if let EcsEvent::Deployment(d) = ev {
                    assert!(!d.deployment_id.is_empty());
                }
            }
            Err(e) => {
                refused += 1;
                rejected_sentence(&e)
            }
        }
        // Arbitrary JSON, not even an event.
        let junk = g.value(0);
        if let Err(e) = parse_trigger(&junk, EXPECT) {
            rejected_sentence(&e);
        }
        if let Err(e) = parse_ecs_event(&junk, SITE) {
            rejected_sentence(&e);
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "the generator reaches both sides: {accepted} / {refused}"
    );
}

/// Forged envelopes are refused whatever else they carry.
#[test]
fn events_from_elsewhere_are_always_refused() {
    let base = fixtures();
    let mut g = Gen::new(0x5EED_0002);
    for _ in 0..cases() {
        let mut event = g.pick(&base).clone();
        if !event.is_object() || event.get("account").is_none() {
            continue;
        }
        match g.below(3) {
            0 => event["account"] = json!(format!("{:012}", g.next() % 1_000_000_000_000)),
            1 => {
                event["region"] = json!(g
                    .pick(&["us-east-1", "eu-west-1", "", "us-west-2"])
                    .to_string())
            }
            _ => event["account"] = json!(g.string()),
        }
        if event["account"] == "123456789012" && event["region"] == "us-west-1" {
            continue;
        }
        assert!(parse_trigger(&event, EXPECT).is_err(), "{event}");
        assert!(parse_ecs_event(&event, SITE).is_err(), "{event}");
    }
}

#[test]
fn tag_values_and_markers_survive_anything() {
    let mut g = Gen::new(0x5EED_0003);
    for _ in 0..cases() {
        let s = g.string();
        let v = tags::value(&s);
        assert!(v.len() <= 256);
        assert!(
            v.chars()
                .all(|c| c.is_ascii_alphanumeric() || " +-=._:/@".contains(c)),
            "{v:?}"
        );
        let _ = Marker::parse(&s);
        let _ = Snapshot::parse(&s);
        if let Ok(m) = Marker::parse(&s) {
            // What parses renders to a valid tag value that parses back the same way.
            let r = m.render();
            assert_eq!(tags::value(&r), r);
        }
        if let Ok(snap) = Snapshot::parse(&s) {
            assert_eq!(Snapshot::parse(&snap.render()).ok(), Some(snap));
        }
        if let Ok(d) = Deferred::parse(&s) {
            let r = d.render();
            assert_eq!(tags::value(&r), r);
            if r.len() < 256 {
                assert_eq!(Deferred::parse(&r).ok(), Some(d));
            }
        }
        if let Ok(m) = DeployedMark::parse(&s) {
            assert_eq!(DeployedMark::parse(&m.render()).ok(), Some(m));
        }
    }
}

fn capacity(g: &mut Gen) -> Capacity {
    let target = g.chance(0.7).then(|| {
        let min = g.below(6) as i32;
        ScalableTarget {
            min,
            max: min + g.below(6) as i32,
            suspended: Suspended {
                dynamic_in: g.chance(0.2),
                dynamic_out: g.chance(0.2),
                scheduled: g.chance(0.2),
            },
        }
    });
    Capacity {
        target,
        desired: g.below(8) as i32,
    }
}

/// The off-hours decisions over generated capacities and snapshot tags: never a
/// panic; scale-down never raises anything and respects the floor; scale-up restores
/// a capacity AWS would accept.
#[test]
fn offhours_decisions_keep_their_invariants() {
    let mut g = Gen::new(0x5EED_0004);
    for _ in 0..cases() {
        let current = capacity(&mut g);
        let saved = capacity(&mut g);
        let snapshot = match g.below(3) {
            0 => None,
            1 => Some(Snapshot::of(&saved).render()),
            _ => Some(g.string()),
        };
        let floor = g.below(2) as i32;
        let targets = Targets {
            min_capacity: g.below(3) as i32,
            desired_count: g.below(3) as i32,
        };
        let exclude = g.chance(0.1).then(|| {
            g.pick(&[
                "skip",
                "SKIP ",
                "no",
                "",
                "skip-until=2026-01-05T20:00:00Z",
                "skip-until=2030-01-01T00:00:00Z",
                "skip-until=soon",
            ])
            .to_string()
        });
        let rollout = g.chance(0.1).then(|| Rollout {
            deployment: "ecs-svc/1".to_owned(),
            state: "IN_PROGRESS".to_owned(),
        });
        // The tags as the adapter reads them.
        let mut raw = BTreeMap::new();
        if let Some(s) = &snapshot {
            raw.insert(tags::OFFHOURS_SNAPSHOT.to_owned(), s.clone());
        }
        if let Some(e) = &exclude {
            raw.insert(tags::OFFHOURS.to_owned(), e.clone());
        }
        let read = ServiceTags::read(raw);
        let now = "2026-06-01T20:00:00Z".parse().unwrap();
        let exclusion = Exclusion::at(read.offhours.as_ref(), now);
        match offhours::plan_down(
            &current,
            read.offhours_snapshot.as_ref(),
            &exclusion,
            rollout.clone(),
            targets,
            floor,
        ) {
            DownPlan::Lower { save, to } => {
                assert!(rollout.is_none());
                assert!(to.desired <= current.desired, "{current} -> {to}");
                assert!(to.desired >= floor.min(current.desired));
                if let (Some(a), Some(b)) = (current.target, to.target) {
                    assert!(b.min <= a.min && b.max == a.max && b.suspended == a.suspended);
                }
                if snapshot.is_some() {
                    assert!(save.is_none(), "a snapshot is never overwritten");
                }
            }
            DownPlan::Postpone(r) => assert_eq!(Some(r), rollout),
            DownPlan::Hold { tag, problem } => {
                assert!(problem.contains(tag), "{problem}");
                assert!(tag == tags::OFFHOURS_SNAPSHOT || tag == tags::OFFHOURS);
            }
            DownPlan::Skip(_) => {}
        }
        match offhours::plan_up(&current, read.offhours_snapshot.as_ref(), &exclusion) {
            UpPlan::Restore { to, .. } => {
                if let Some(t) = to.target {
                    assert!(t.min <= t.max);
                    assert!(to.desired >= t.min && to.desired <= t.max, "{to}");
                }
                assert!(to.desired >= 0);
            }
            UpPlan::Skip(_) => {}
            UpPlan::Hold { tag, problem } => {
                assert_eq!(tag, tags::OFFHOURS_SNAPSHOT);
                assert!(problem.contains(tag), "{problem}");
            }
        }
        let _ = pricing::saving(g.next() as u32, g.next() as u32, g.int() as i32, 11.0);
    }
}

/// deploy-notifier's decisions over generated services, markers and event orders:
/// never a panic, and once the marker records a page for a deployment and kind, any
/// other request is a duplicate.
#[test]
fn incident_decisions_never_page_twice() {
    let reference: Vec<Value> = fixtures()
        .into_iter()
        .filter(|e| e["source"] == "aws.ecs")
        .collect();
    let mut g = Gen::new(0x5EED_0005);
    let mut total_pages = 0;
    for case in 0..cases() / 10 {
        let mut service = ServiceState {
            task_definition: "arn:aws:ecs:us-west-1:123456789012:task-definition/f:2".into(),
            deployments: (0..g.below(3))
                .map(|i| DeploymentState {
                    id: format!("ecs-svc/{i}"),
                    status: g.pick(&["PRIMARY", "ACTIVE"]).to_string(),
                    rollout_state: Some(
                        g.pick(&["IN_PROGRESS", "COMPLETED", "FAILED"]).to_string(),
                    ),
                    task_definition: format!(
                        "arn:aws:ecs:us-west-1:123456789012:task-definition/f:{i}"
                    ),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let mut raw: BTreeMap<String, String> = BTreeMap::new();
        let mut pages = 0usize;
        for step in 0..12 {
            let mut event = g.pick(&reference).clone();
            if event["detail"].get("deploymentId").is_some() {
                event["detail"]["deploymentId"] = json!(format!("ecs-svc/{}", g.below(3)));
                event["detail"]["updatedAt"] =
                    json!(format!("2025-06-02T18:{:02}:00Z", g.below(60)));
            }
            let Ok(EcsEvent::Deployment(d)) = parse_ecs_event(&event, SITE) else {
                continue;
            };
            let request = format!("r{case}-{step}");
            service.tags = ServiceTags::read(raw.clone());
            let marker = service
                .tags
                .deploy_incident
                .as_ref()
                .and_then(|m| m.read().cloned());
            match d.change.name() {
                "failed" | "rollback" => {
                    let already = marker.as_ref().is_some_and(|m| {
                        m.deployment.as_deref() == Some(d.deployment_id.as_str())
                            && m.sent.contains(d.change.name())
                    });
                    let decision =
                        incident::on_alarm(&d, &service, marker.as_ref(), &request, true);
                    if already {
                        assert_eq!(
                            decision,
                            incident::Alarm::Duplicate,
                            "case {case}: paged twice"
                        );
                    }
                    if let incident::Alarm::Page { marker, freeze, .. } = decision {
                        pages += 1;
                        // Published and confirmed.
                        let marker = marker.confirmed([d.change.name()]);
                        raw.insert(tags::DEPLOY_INCIDENT.into(), marker.render());
                        if let Some(f) = freeze {
                            raw.insert(tags::DEPLOY_FREEZE.into(), f);
                        }
                    }
                }
                "completed" => {
                    if g.chance(0.5) {
                        raw.remove(tags::DEPLOY_FREEZE);
                    }
                    if let incident::Completion::Resolve { marker } =
                        incident::on_completed(&d, marker.as_ref(), &request, true)
                    {
                        let all = marker.pending_in_order();
                        let marker = marker.confirmed(all.iter().map(String::as_str));
                        raw.insert(tags::DEPLOY_INCIDENT.into(), marker.render());
                    }
                }
                _ => {
                    let _ = incident::in_progress_is_late(&d, &service);
                }
            }
        }
        total_pages += pages;
    }
    assert!(total_pages > 0, "the generator reaches pages");
}

fn site(env: Environment) -> CommonConfig {
    CommonConfig {
        environment: env,
        region: "us-west-1".into(),
        account: "123456789012".into(),
        partition: "aws".into(),
        cluster: "c".into(),
        service: "s".into(),
        notify_topic_arn: "arn:aws:sns:us-west-1:123456789012:n".into(),
        oncall_topic_arn: "arn:aws:sns:us-west-1:123456789012:o".into(),
        dry_run: false,
        log_group: "/aws/ecs/x".into(),
    }
}

/// Whatever a summary contains, the subject and SMS obey SNS's rules and the message
/// is valid JSON.
#[test]
fn notifications_render_safely_from_any_text() {
    let mut g = Gen::new(0x5EED_0006);
    for _ in 0..cases() {
        let env = *g.pick(&[Environment::Dev, Environment::Staging, Environment::Prod]);
        let c = site(env);
        let n = Notification::new(
            *g.pick(&EventType::ALL),
            &c,
            g.string(),
            chrono::Utc::now(),
            g.string(),
            dedup_key(env, &c.service, &g.string()),
        )
        .with_fact(g.string(), g.string())
        .with_detail("x", g.value(0));
        let subject = n.subject();
        assert!(
            subject.len() <= 99 && subject.chars().all(|c| (' '..='~').contains(&c)),
            "{subject:?}"
        );
        assert!(n.sms().len() <= 140 && !n.sms().contains('\n'));
        let r = n.render(&menotime_shared::notify::Topics::from_config(&c));
        let m: Value = serde_json::from_str(&r.message).unwrap();
        assert!(m["sqs"].is_string() && m["default"].is_string());
    }
}

/// Any environment, any values: configuration is read or refused, never a panic.
#[test]
fn configuration_never_panics() {
    let names = [
        "ENVIRONMENT",
        "AWS_REGION",
        "CLUSTER_NAME",
        "SERVICE_NAME",
        "NOTIFY_TOPIC_ARN",
        "ONCALL_TOPIC_ARN",
        "REPOSITORY_NAME",
        "CONTAINER_NAME",
        "DEPLOY_TAG_PATTERN",
        "BLOCK_SEVERITIES",
        "REVIEW_SEVERITIES",
        "DRY_RUN",
        "FREEZE_ON_FAILURE",
        "OFFHOURS_MIN_CAPACITY",
        "OFFHOURS_DESIRED_COUNT",
        "OFFHOURS_UPTIME",
        "OFFHOURS_HOLIDAYS",
        "OFFHOURS_WAKE_TIMEOUT_MINUTES",
    ];
    let good: BTreeMap<&str, &str> = BTreeMap::from([
        ("ENVIRONMENT", "prod"),
        ("AWS_REGION", "us-west-1"),
        ("CLUSTER_NAME", "c"),
        ("SERVICE_NAME", "s"),
        ("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-west-1:123456789012:n"),
        ("ONCALL_TOPIC_ARN", "arn:aws:sns:us-west-1:123456789012:o"),
        ("REPOSITORY_NAME", "menotime/backend"),
        ("CONTAINER_NAME", "menotime-backend"),
    ]);
    let mut g = Gen::new(0x5EED_0007);
    for _ in 0..cases() {
        let mut env: BTreeMap<String, String> = good
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for _ in 0..1 + g.below(3) {
            let name = g.pick(&names).to_string();
            env.insert(name, g.string());
        }
        let vars = Vars(|k: &str| env.get(k).cloned());
        if let Err(e) = ScanGateConfig::from_vars(&vars) {
            assert!(matches!(e, Error::Config { .. }));
        }
        let _ = NotifierConfig::from_vars(&vars);
        if let Ok(c) = OffhoursConfig::from_vars(&vars) {
            if c.common.environment == Environment::Prod {
                assert!(
                    c.min_capacity >= 1 && c.desired_count >= 1,
                    "prod never below 1 task"
                );
            }
        }
    }
}
