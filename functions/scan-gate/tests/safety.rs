//! scan-gate's safety net over fakes: prod deploys only to a service that rolls a
//! failing deployment back (the manual's circuit breaker with rollback and
//! minimumHealthyPercent 100); outside prod only when `REQUIRE_SAFE_ROLLOUT` asks.
#![cfg(test)]

mod common;

use serde_json::{json, Value};

use menotime_shared::config::Environment;
use menotime_shared::domain::service::{CircuitBreaker, DeploymentAlarms, DeploymentConfiguration};
use menotime_shared::notify::Rendered;
use menotime_shared::testing::{manual_deployment_configuration, FakeAws, FakeRevision};
use scan_gate::{Decision, ScanGate};

const REGISTRY: &str = "123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend";
const CLEAN: &str = "sha256:093db6dbbe70b9445a1a065cb426f65c1d4ba77bb53e65f52c8d31120187c7cb";

fn rig(
    env: Environment,
    extra: &[(&str, &str)],
    config: Option<DeploymentConfiguration>,
) -> (ScanGate<FakeAws, FakeAws, FakeAws>, FakeAws) {
    let aws = FakeAws::new(
        Environment::Prod,
        FakeRevision::new(Environment::Prod, 7, &format!("{REGISTRY}:v1.2.3"), &[]),
    );
    aws.world().service.deployment_configuration = config;
    let mut vars: Vec<(&str, &str)> = vec![
        ("ENVIRONMENT", env.as_str()),
        ("DEPLOY_TAG_PATTERN", r"^v[0-9]+\.[0-9]+\.[0-9]+$"),
    ];
    vars.extend_from_slice(extra);
    let gate = ScanGate::new(
        common::prod_config(&vars),
        aws.clone(),
        aws.clone(),
        aws.clone(),
    );
    (gate, aws)
}

fn scan() -> Value {
    let path = format!(
        "{}/../../events/scan-clean-v1.2.4.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn payload(r: &Rendered) -> Value {
    let m: Value = serde_json::from_str(&r.message).unwrap();
    serde_json::from_str(m["sqs"].as_str().unwrap()).unwrap()
}

fn text(r: &Rendered) -> String {
    let m: Value = serde_json::from_str(&r.message).unwrap();
    m["default"].as_str().unwrap().to_owned()
}

fn breaker(enable: bool, rollback: bool, min: i32) -> DeploymentConfiguration {
    DeploymentConfiguration {
        maximum_percent: Some(200),
        minimum_healthy_percent: Some(min),
        circuit_breaker: Some(CircuitBreaker { enable, rollback }),
        alarms: None,
    }
}

#[tokio::test]
async fn prod_with_the_manuals_configuration_deploys() {
    let (gate, aws) = rig(
        Environment::Prod,
        &[],
        Some(manual_deployment_configuration(Environment::Prod)),
    );
    let o = gate.handle(scan()).await.unwrap();
    assert_eq!(o.decision, Decision::Deployed, "{}", o.reason);
    assert!(aws.calls().contains(&"ecs:UpdateService"));
}

#[tokio::test]
async fn prod_without_the_safety_net_is_blocked_with_what_is_missing_and_the_fix() {
    let cases: [(Option<DeploymentConfiguration>, &[&str]); 4] = [
        (
            None,
            &[
                "ECS reports no deploymentConfiguration",
                "deploymentCircuitBreaker is not enabled",
                "minimumHealthyPercent is not set",
            ],
        ),
        (
            Some(breaker(false, false, 100)),
            &["deploymentCircuitBreaker is not enabled"],
        ),
        (
            Some(breaker(true, false, 100)),
            &["deploymentCircuitBreaker.rollback is false"],
        ),
        (
            Some(breaker(true, true, 50)),
            &["minimumHealthyPercent is 50, not 100"],
        ),
    ];
    for (config, missing) in cases {
        let (gate, aws) = rig(Environment::Prod, &[], config.clone());
        let o = gate.handle(scan()).await.unwrap();
        assert_eq!(o.decision, Decision::Blocked, "{config:?}: {}", o.reason);
        assert_eq!(
            aws.calls(),
            [
                "ecs:DescribeServices",
                "ecs:DescribeTaskDefinition",
                "sns:Publish"
            ],
            "{config:?}: nothing registered, nothing updated"
        );
        let sent = aws.sent();
        let p = payload(&sent[0]);
        assert_eq!(p["event_type"], "deploy.blocked");
        assert_eq!(p["severity"], "warning");
        assert_eq!(p["details"]["blocked_by"], "deployment_configuration");
        assert_eq!(p["details"]["findings"], Value::Null);
        assert_eq!(
            p["details"]["missing"].as_array().unwrap().len(),
            missing.len()
        );
        assert_eq!(
            sent[0].subject,
            "[PROD] Deploy blocked: v1.2.4 not deployed, menotime-prod-service lacks the rollout safety net"
        );
        let t = text(&sent[0]);
        for m in missing {
            assert!(t.contains(m), "missing {m:?} in\n{t}");
            assert!(o.reason.contains(m), "{}", o.reason);
        }
        let cmd = p["details"]["restore_command"].as_str().unwrap();
        assert!(t.contains(cmd), "{t}");
        assert!(cmd.starts_with("aws ecs update-service --region us-west-1 --cluster menotime-prod-cluster --service menotime-prod-service --deployment-configuration '"), "{cmd}");
        let doc: Value = serde_json::from_str(
            cmd.split_once("--deployment-configuration '")
                .unwrap()
                .1
                .strip_suffix('\'')
                .unwrap(),
        )
        .unwrap();
        assert_eq!(doc["minimumHealthyPercent"], 100);
        assert_eq!(
            doc["deploymentCircuitBreaker"],
            json!({"enable": true, "rollback": true})
        );
        let expected_max = if config.is_some() { 200 } else { 150 };
        assert_eq!(
            doc["maximumPercent"], expected_max,
            "the service's own maximum is kept"
        );
    }
}

#[tokio::test]
async fn the_restore_command_keeps_the_services_deployment_alarms() {
    let mut config = breaker(true, true, 50);
    config.alarms = Some(DeploymentAlarms {
        names: vec!["menotime-prod-5xx".into(), "menotime-prod-latency".into()],
        enable: true,
        rollback: true,
    });
    let (gate, aws) = rig(Environment::Prod, &[], Some(config));
    assert_eq!(
        gate.handle(scan()).await.unwrap().decision,
        Decision::Blocked
    );
    let p = payload(&aws.sent()[0]);
    let cmd = p["details"]["restore_command"].as_str().unwrap();
    assert!(
        cmd.contains(r#""alarms":{"alarmNames":["menotime-prod-5xx","menotime-prod-latency"],"enable":true,"rollback":true}"#),
        "{cmd}"
    );
}

#[tokio::test]
async fn outside_prod_the_check_is_relaxed_unless_asked_for() {
    let staging = Some(manual_deployment_configuration(Environment::Staging));
    let (gate, _) = rig(Environment::Staging, &[], staging.clone());
    assert_eq!(
        gate.handle(scan()).await.unwrap().decision,
        Decision::Deployed
    );
    let (gate, aws) = rig(
        Environment::Staging,
        &[("REQUIRE_SAFE_ROLLOUT", "true")],
        staging,
    );
    let o = gate.handle(scan()).await.unwrap();
    assert_eq!(o.decision, Decision::Blocked, "{}", o.reason);
    assert!(
        o.reason.contains("minimumHealthyPercent is 50, not 100"),
        "{}",
        o.reason
    );
    assert!(!aws.calls().contains(&"ecs:UpdateService"));
}

#[tokio::test]
async fn an_image_already_running_is_skipped_not_blocked() {
    let (gate, aws) = rig(Environment::Prod, &[], None);
    aws.world().revisions[0].facts.image = format!("{REGISTRY}@{CLEAN}");
    let o = gate.handle(scan()).await.unwrap();
    assert_eq!(o.decision, Decision::Skipped, "{}", o.reason);
}
