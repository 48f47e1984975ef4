//! Events for the post-deployment watch, made from the files in `events/`: a
//! deployment's completion and the state changes of the service's alarms, at the times
//! a test or the demo chooses (time is driven through the events' own timestamps).

use serde_json::{json, Value};

use crate::{event, Aws, SeedEnv};

/// SERVICE_DEPLOYMENT_COMPLETED of `deployment` in `env`, at `at` (RFC 3339).
pub fn completed(env: &str, deployment: &str, at: &str) -> Value {
    let text = event("ecs-deployment-completed.json")
        .to_string()
        .replace("menotime-prod-", &format!("menotime-{env}-"));
    let mut v: Value = serde_json::from_str(&text).unwrap_or_default();
    v["id"] = json!(format!("completed-{deployment}-{at}"));
    v["time"] = json!(at);
    v["detail"]["deploymentId"] = json!(deployment);
    v["detail"]["updatedAt"] = json!(at);
    v["detail"]["reason"] = json!(format!("ECS deployment {deployment} completed."));
    v
}

/// `2026-11-26T09:03:00Z` as CloudWatch writes it in an alarm event:
/// `2026-11-26T09:03:00.000+0000`.
pub fn cloudwatch_time(at: &str) -> String {
    format!("{}.000+0000", at.trim_end_matches('Z'))
}

/// The alarm `menotime-<env>-<what>` went to `state` (`ALARM`, `OK`) at `at`
/// (RFC 3339, whole seconds), delivered as event `id`.
pub fn alarm(env: &str, what: &str, state: &str, at: &str, id: &str) -> Value {
    let name = format!("menotime-{env}-{what}");
    let mut v = event("cloudwatch-alarm-5xx.json");
    v["id"] = json!(id);
    v["time"] = json!(at);
    v["resources"] = json!([format!(
        "arn:aws:cloudwatch:us-west-1:123456789012:alarm:{name}"
    )]);
    v["detail"]["alarmName"] = json!(name);
    v["detail"]["state"]["value"] = json!(state);
    v["detail"]["state"]["timestamp"] = json!(cloudwatch_time(at));
    v["detail"]["previousState"]["value"] = json!(if state == "OK" { "ALARM" } else { "OK" });
    if state == "OK" {
        v["detail"]["state"]["reason"] =
            json!("Threshold Crossed: 3 out of the last 3 datapoints were not greater than the threshold (5.0).");
    }
    v
}

impl Aws {
    /// The id of the service's PRIMARY deployment, as moto reports it.
    pub async fn primary_deployment(&self, env: &SeedEnv) -> String {
        self.deployments(env)
            .await
            .into_iter()
            .next()
            .map(|(id, _)| id)
            .unwrap_or_default()
    }

    /// Sets the service's deploymentConfiguration with UpdateService (moto keeps it
    /// from UpdateService only).
    pub async fn set_deployment_configuration(
        &self,
        env: &SeedEnv,
        min_healthy: i32,
        circuit_breaker: bool,
    ) {
        use aws_sdk_ecs::types::{DeploymentCircuitBreaker, DeploymentConfiguration};
        self.ecs
            .update_service()
            .cluster(&env.cluster)
            .service(&env.service)
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .maximum_percent(200)
                    .minimum_healthy_percent(min_healthy)
                    .deployment_circuit_breaker(
                        DeploymentCircuitBreaker::builder()
                            .enable(circuit_breaker)
                            .rollback(circuit_breaker)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("update-service --deployment-configuration");
    }
}
