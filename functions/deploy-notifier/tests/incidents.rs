//! A property test over deploy-notifier's incident state machine, the handler itself
//! over the in-memory AWS: generated sequences of ECS events (failures, rollbacks,
//! completions, impairments, steady states, duplicates), each delivered as Lambda
//! delivers an asynchronous event (up to 3 attempts with one request id), with a
//! transient fault injected at any call; what still fails goes to the failure queue
//! and is redriven at the end under a new request id, AWS healthy again.
//!
//! Invariants, whatever the interleaving and the faults:
//! - never zero pages: every incident page that was decided (recorded or published)
//!   reaches on-call at least once;
//! - never more than one page per incident and kind, unless a TagResource failed
//!   (the documented cases: the freeze retried by Lambda, a lost confirmation);
//! - every resolve follows a page with the same dedup_key, and no page of an incident
//!   arrives after its resolve without a newer trigger;
//! - prod ends frozen after a failure.
//!
//! proptest shrinks a failing case to a short sequence; `PROPTEST_CASES` raises the
//! number of cases.
#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{json, Value};

use deploy_notifier::{Decision, DeployNotifier, Outcome};
use menotime_shared::config::{Environment, NotifierConfig, WatchConfig};
use menotime_shared::domain::incident::Marker;
use menotime_shared::domain::service::DeploymentState;
use menotime_shared::notify::Rendered;
use menotime_shared::testing::{common, repository_uri, td_arn, FakeAws, FakeRevision};
use menotime_shared::{tags, Error};

const PROD: Environment = Environment::Prod;
const DEPLOYMENTS: [&str; 2] = ["ecs-svc/1111", "ecs-svc/2222"];
const IMPAIRMENTS: [&str; 2] = [
    "SERVICE_TASK_START_IMPAIRED",
    "SERVICE_TASK_PLACEMENT_FAILURE",
];

/// One ECS event, at minute `at` of the hour.
#[derive(Clone, Debug)]
enum Ev {
    Failed { deployment: usize, at: u8 },
    Rollback { deployment: usize, at: u8 },
    Completed { at: u8 },
    Impaired { name: usize, at: u8 },
    Steady { at: u8 },
}

#[derive(Clone, Debug)]
enum Step {
    /// A new event, delivered by Lambda (up to 3 attempts).
    Deliver(Ev),
    /// EventBridge delivers the n-th earlier event again (a new request).
    Duplicate(usize),
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        3 => (0..2usize, 0..60u8).prop_map(|(deployment, at)| Ev::Failed { deployment, at }),
        2 => (0..2usize, 0..60u8).prop_map(|(deployment, at)| Ev::Rollback { deployment, at }),
        2 => (0..60u8).prop_map(|at| Ev::Completed { at }),
        2 => (0..2usize, 0..60u8).prop_map(|(name, at)| Ev::Impaired { name, at }),
        2 => (0..60u8).prop_map(|at| Ev::Steady { at }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => ev().prop_map(Step::Deliver),
        1 => (0..8usize).prop_map(Step::Duplicate),
    ]
}

fn time(at: u8) -> String {
    format!("2025-06-02T18:{at:02}:00Z")
}

fn arn() -> String {
    "arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service".into()
}

fn event(e: &Ev, id: &str) -> Value {
    let envelope = |detail_type: &str, detail: Value, at: u8| {
        json!({
            "version": "0", "id": id, "detail-type": detail_type, "source": "aws.ecs",
            "account": "123456789012", "time": time(at), "region": "us-west-1",
            "resources": [arn()], "detail": detail
        })
    };
    match e {
        Ev::Failed { deployment, at } => envelope(
            "ECS Deployment State Change",
            json!({"eventType": "ERROR", "eventName": "SERVICE_DEPLOYMENT_FAILED",
                   "deploymentId": DEPLOYMENTS[*deployment], "updatedAt": time(*at),
                   "reason": "ECS deployment circuit breaker: tasks failed to start."}),
            *at,
        ),
        Ev::Rollback { deployment, at } => envelope(
            "ECS Deployment State Change",
            json!({"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_IN_PROGRESS",
                   "deploymentId": DEPLOYMENTS[*deployment], "updatedAt": time(*at),
                   "reason": "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/0."}),
            *at,
        ),
        Ev::Completed { at } => envelope(
            "ECS Deployment State Change",
            json!({"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED",
                   "deploymentId": "ecs-svc/0", "updatedAt": time(*at),
                   "reason": "ECS deployment ecs-svc/0 completed."}),
            *at,
        ),
        Ev::Impaired { name, at } => envelope(
            "ECS Service Action",
            json!({"eventType": "WARN", "eventName": IMPAIRMENTS[*name], "createdAt": time(*at),
                   "clusterArn": "arn:aws:ecs:us-west-1:123456789012:cluster/menotime-prod-cluster"}),
            *at,
        ),
        Ev::Steady { at } => envelope(
            "ECS Service Action",
            json!({"eventType": "INFO", "eventName": "SERVICE_STEADY_STATE", "createdAt": time(*at),
                   "clusterArn": "arn:aws:ecs:us-west-1:123456789012:cluster/menotime-prod-cluster"}),
            *at,
        ),
    }
}

fn rig() -> (DeployNotifier<FakeAws, FakeAws>, FakeAws) {
    let running = FakeRevision::new(PROD, 47, &format!("{}:v1.2.3", repository_uri()), &[]);
    let aws = FakeAws::new(PROD, running);
    aws.add_revision(FakeRevision::new(
        PROD,
        48,
        &format!("{}:v1.2.4", repository_uri()),
        &[],
    ));
    {
        let mut w = aws.world();
        // Both deployments still listed and not completed: their rollbacks are news.
        w.service.deployments = vec![
            DeploymentState {
                id: "ecs-svc/0".into(),
                status: "PRIMARY".into(),
                rollout_state: Some("IN_PROGRESS".into()),
                task_definition: td_arn(PROD, 47),
                ..Default::default()
            },
            DeploymentState {
                id: DEPLOYMENTS[0].into(),
                status: "ACTIVE".into(),
                rollout_state: Some("FAILED".into()),
                task_definition: td_arn(PROD, 48),
                ..Default::default()
            },
            DeploymentState {
                id: DEPLOYMENTS[1].into(),
                status: "ACTIVE".into(),
                rollout_state: Some("FAILED".into()),
                task_definition: td_arn(PROD, 48),
                ..Default::default()
            },
        ];
    }
    let cfg = NotifierConfig {
        common: common(PROD),
        freeze_on_failure: true,
        container: Some("menotime-backend".into()),
        watch: WatchConfig::defaults(PROD),
    };
    (DeployNotifier::new(cfg, aws.clone(), aws.clone()), aws)
}

/// What one published message was.
#[derive(Clone, Debug)]
struct Msg {
    event_type: String,
    action: String,
    dedup_key: String,
    deployment: Option<String>,
    event_name: Option<String>,
}

fn msg(r: &Rendered) -> Msg {
    let m: Value = serde_json::from_str(&r.message).unwrap();
    let p: Value = serde_json::from_str(m["sqs"].as_str().unwrap()).unwrap();
    let s = |v: &Value| v.as_str().map(str::to_owned);
    Msg {
        event_type: s(&p["event_type"]).unwrap(),
        action: s(&p["action"]).unwrap(),
        dedup_key: s(&p["dedup_key"]).unwrap(),
        deployment: s(&p["details"]["deployment_id"]),
        event_name: s(&p["details"]["event_name"]),
    }
}

/// The incident and kind a trigger is about: (deployment or "service", kind).
fn page_of(m: &Msg) -> (String, String) {
    match m.event_type.as_str() {
        "deploy.failed" => (m.deployment.clone().unwrap(), "failed".into()),
        "deploy.rollback" => (m.deployment.clone().unwrap(), "rollback".into()),
        _ => ("service".into(), m.event_name.clone().unwrap()),
    }
}

/// The marker entries ever seen: (incident, kind) recorded pending or sent.
fn seen_in_markers(aws: &FakeAws, into: &mut BTreeSet<(String, String)>) {
    for (key, incident) in [
        (tags::DEPLOY_INCIDENT, None),
        (tags::SERVICE_INCIDENT, Some("service")),
    ] {
        if let Some(m) = aws.tag(key).and_then(|v| Marker::parse(&v).ok()) {
            let who = incident
                .map(str::to_owned)
                .or(m.deployment.clone())
                .unwrap();
            for kind in m.pending.iter().chain(&m.sent) {
                if kind != "resolve" {
                    into.insert((who.clone(), kind.clone()));
                }
            }
        }
    }
}

struct Run {
    outcomes: Vec<(Ev, Outcome)>,
    published: Vec<Msg>,
    recorded: BTreeSet<(String, String)>,
    tag_faults: bool,
    frozen: bool,
    faults: BTreeSet<usize>,
}

/// One attempt of one event; notes what the markers hold afterwards, and whether a
/// TagResource failed.
async fn attempt(
    notifier: &DeployNotifier<FakeAws, FakeAws>,
    aws: &FakeAws,
    e: &Ev,
    id: &str,
    req: &str,
    run: &mut Run,
) -> Result<Outcome, Error> {
    let first = aws.world().call_count;
    let r = notifier.handle(event(e, id), req).await;
    seen_in_markers(aws, &mut run.recorded);
    let w = aws.world();
    let failed_tag = (first..w.call_count)
        .any(|n| run.faults.contains(&n) && w.calls.get(n) == Some(&"ecs:TagResource"));
    run.tag_faults |= failed_tag;
    drop(w);
    r
}

async fn play(steps: &[Step], faults: &BTreeSet<usize>) -> Run {
    let (notifier, aws) = rig();
    aws.fail_calls(faults.iter().copied());
    let mut run = Run {
        outcomes: Vec::new(),
        published: Vec::new(),
        recorded: BTreeSet::new(),
        tag_faults: false,
        frozen: false,
        faults: faults.clone(),
    };
    let mut delivered: Vec<(Ev, String)> = Vec::new();
    let mut dlq: Vec<(Ev, String)> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let (e, id) = match s {
            Step::Deliver(e) => (e.clone(), format!("event-{i}")),
            Step::Duplicate(n) if !delivered.is_empty() => delivered[n % delivered.len()].clone(),
            Step::Duplicate(_) => continue,
        };
        let req = format!("req-{i}");
        let mut done = None;
        for _ in 0..3 {
            if let Ok(o) = attempt(&notifier, &aws, &e, &id, &req, &mut run).await {
                done = Some(o);
                break;
            }
        }
        match done {
            Some(o) => run.outcomes.push((e.clone(), o)),
            None => dlq.push((e.clone(), id.clone())),
        }
        if matches!(s, Step::Deliver(_)) {
            delivered.push((e, id));
        }
    }
    // Later, AWS is healthy again; the failure queue is redriven (new request ids).
    aws.heal_all();
    for (n, (e, id)) in dlq.into_iter().enumerate() {
        let o = attempt(&notifier, &aws, &e, &id, &format!("redrive-{n}"), &mut run)
            .await
            .unwrap_or_else(|err| panic!("a redrive on a healthy AWS failed: {err}"));
        run.outcomes.push((e, o));
    }
    run.published = aws.world().sent.iter().map(msg).collect();
    run.frozen = aws.tag(tags::DEPLOY_FREEZE).is_some();
    run
}

fn check(run: &Run) -> Result<(), TestCaseError> {
    let triggers: Vec<&Msg> = run
        .published
        .iter()
        .filter(|m| m.action == "trigger")
        .collect();
    // Never zero pages: whatever was recorded reached on-call.
    let paged: BTreeSet<(String, String)> = triggers.iter().map(|m| page_of(m)).collect();
    for r in &run.recorded {
        prop_assert!(
            paged.contains(r),
            "recorded {r:?} but never paged: {:?}",
            run.published
        );
    }
    for (e, o) in &run.outcomes {
        if matches!(o.decision, Decision::Paged) {
            prop_assert!(!o.notifications.is_empty(), "{e:?}");
        }
    }
    // Never more than one page per incident and kind, but for the documented cases.
    // An incident ends with its resolve: a page after it belongs to a new incident.
    let mut count: BTreeMap<((String, String), usize), usize> = BTreeMap::new();
    let mut epoch: BTreeMap<String, usize> = BTreeMap::new();
    for m in &run.published {
        match m.action.as_str() {
            "trigger" => {
                let e = epoch.get(&m.dedup_key).copied().unwrap_or(0);
                *count.entry((page_of(m), e)).or_default() += 1;
            }
            "resolve" => *epoch.entry(m.dedup_key.clone()).or_default() += 1,
            _ => {}
        }
    }
    if !run.tag_faults {
        for (k, n) in &count {
            prop_assert!(
                *n <= 1,
                "{k:?} paged {n} times without a TagResource fault: {:?}",
                run.published
            );
        }
    }
    // Every resolve follows a page of its key.
    let mut open: BTreeSet<String> = BTreeSet::new();
    let mut ever: BTreeSet<String> = BTreeSet::new();
    for m in &run.published {
        match m.action.as_str() {
            "trigger" => {
                open.insert(m.dedup_key.clone());
                ever.insert(m.dedup_key.clone());
            }
            "resolve" => {
                prop_assert!(
                    ever.contains(&m.dedup_key),
                    "a resolve of {} without a page before it: {:?}",
                    m.dedup_key,
                    run.published
                );
                open.remove(&m.dedup_key);
            }
            _ => {}
        }
    }
    // Prod ends frozen after a failure.
    if triggers.iter().any(|m| m.event_type.starts_with("deploy.")) {
        prop_assert!(
            run.frozen,
            "a deployment page went out but prod is not frozen"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn incidents_page_once_resolve_after_and_end_frozen(
        steps in prop::collection::vec(step(), 1..10),
        faults in prop::collection::btree_set(0..80usize, 0..6),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let run = rt.block_on(play(&steps, &faults));
        check(&run)?;
    }
}

/// The scenario of the issue, spelled out: every Publish fails through the three
/// attempts of one request id, then a redrive under a new one pages exactly once.
#[tokio::test]
async fn three_failed_attempts_then_a_redrive_page_exactly_once() {
    let (notifier, aws) = rig();
    aws.fail_always("sns:Publish");
    let e = event(
        &Ev::Failed {
            deployment: 0,
            at: 1,
        },
        "evt-1",
    );
    for _ in 0..3 {
        assert!(notifier.handle(e.clone(), "req-1").await.is_err());
    }
    aws.heal("sns:Publish");
    let o = notifier.handle(e.clone(), "redrive-1").await.unwrap();
    assert_eq!(o.decision, Decision::Paged);
    assert_eq!(aws.world().sent.len(), 1);
    assert!(aws.tag(tags::DEPLOY_FREEZE).is_some());
    let o = notifier.handle(e, "redrive-2").await.unwrap();
    assert_eq!(o.decision, Decision::Duplicate);
    assert_eq!(aws.world().sent.len(), 1);
}
