//! What the scan-gate test files share: prod's configuration as the template sets it.

use std::collections::HashMap;

use menotime_shared::config::{ScanGateConfig, Vars};

/// prod's configuration, with `extra` variables set or overridden.
pub fn prod_config(extra: &[(&str, &str)]) -> ScanGateConfig {
    let mut vars: HashMap<&str, &str> = HashMap::from([
        ("ENVIRONMENT", "prod"),
        ("AWS_REGION", "us-west-1"),
        ("CLUSTER_NAME", "menotime-prod-cluster"),
        ("SERVICE_NAME", "menotime-prod-service"),
        (
            "NOTIFY_TOPIC_ARN",
            "arn:aws:sns:us-west-1:123456789012:menotime-prod-notify",
        ),
        (
            "ONCALL_TOPIC_ARN",
            "arn:aws:sns:us-west-1:123456789012:menotime-prod-oncall",
        ),
        ("REPOSITORY_NAME", "menotime/backend"),
        ("CONTAINER_NAME", "menotime-backend"),
    ]);
    vars.extend(extra.iter().copied());
    ScanGateConfig::from_vars(&Vars(|k: &str| vars.get(k).map(|v| v.to_string()))).unwrap()
}
