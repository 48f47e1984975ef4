//! scan-gate's Lambda entry point: logging, configuration, clients built once, run.
//! The story of an invocation is in `lib.rs`.

// Production code never panics on a missing value: every fallible step returns an
// Error that says what to do (tests may unwrap). Enforced by clippy in CI.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

use menotime_shared::aws::{ecr::Ecr, ecs::Ecs, sns::Sns};
use menotime_shared::config::ScanGateConfig;
use scan_gate::{Outcome, ScanGate};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();

    let cfg = match ScanGateConfig::from_env() {
        Ok(cfg) => cfg,
        Err(e) => {
            // One clear line naming the variable, then stop: Lambda reports the failed init.
            tracing::error!("{e}");
            std::process::exit(2);
        }
    };
    tracing::info!(
        environment = %cfg.common.environment,
        cluster = %cfg.common.cluster,
        service = %cfg.common.service,
        repository = %cfg.repository,
        pattern = %cfg.deploy_tag_pattern,
        dry_run = cfg.common.dry_run,
        "scan-gate starting"
    );

    let aws = menotime_shared::sdk::load().await;
    let gate = ScanGate::new(
        cfg,
        Ecs::new(aws_sdk_ecs::Client::new(&aws)),
        Ecr::new(aws_sdk_ecr::Client::new(&aws)),
        Sns::new(aws_sdk_sns::Client::new(&aws)),
    );
    let gate = &gate;

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let request_id = event.context.request_id.clone();
        match gate.handle(event.payload).await {
            Ok(outcome) => {
                tracing::info!(%request_id, outcome = ?outcome.outcome, reason = %outcome.reason, "decided");
                Ok::<Outcome, Diagnostic>(outcome)
            }
            Err(e) => {
                tracing::error!(%request_id, error_type = e.kind(), retry = ?e.retry(), "{e}");
                Err(e.into())
            }
        }
    }))
    .await
}
