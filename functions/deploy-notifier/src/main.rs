//! deploy-notifier's Lambda entry point: logging, configuration, clients built once,
//! run. The story of an invocation is in `lib.rs`.

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

use deploy_notifier::{DeployNotifier, Outcome};
use menotime_shared::aws::{ecs::Ecs, sns::Sns};
use menotime_shared::config::NotifierConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();

    let cfg = match NotifierConfig::from_env() {
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
        freeze_on_failure = cfg.freeze_on_failure,
        dry_run = cfg.common.dry_run,
        "deploy-notifier starting"
    );

    let aws = menotime_shared::sdk::load().await;
    let notifier = DeployNotifier::new(
        cfg,
        Ecs::new(aws_sdk_ecs::Client::new(&aws)),
        Sns::new(aws_sdk_sns::Client::new(&aws)),
    );
    let notifier = &notifier;

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let request_id = event.context.request_id.clone();
        match notifier.handle(event.payload, &request_id).await {
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
