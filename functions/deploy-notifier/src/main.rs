//! deploy-notifier's Lambda entry point: logging, configuration, clients built once,
//! run. The story of an invocation is in `lib.rs`.

use deploy_notifier::DeployNotifier;
use menotime_shared::aws::{ecs::Ecs, sns::Sns};
use menotime_shared::config::NotifierConfig;
use menotime_shared::lambda::{config_or_exit, serve};

// One thread: Lambda sends one invocation at a time, and the AWS calls of one
// invocation run in turn.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    menotime_shared::lambda::init_logging();

    let cfg = config_or_exit(NotifierConfig::from_env());
    let aws = config_or_exit(menotime_shared::sdk::config());
    tracing::info!(
        environment = %cfg.common.environment,
        cluster = %cfg.common.cluster,
        service = %cfg.common.service,
        freeze_on_failure = cfg.freeze_on_failure,
        dry_run = cfg.common.dry_run,
        "deploy-notifier starting"
    );

    let notifier = DeployNotifier::new(
        cfg,
        Ecs::new(aws_sdk_ecs::Client::new(&aws)),
        Sns::new(aws_sdk_sns::Client::new(&aws)),
    );
    let notifier = &notifier;

    serve(|event, request_id| async move { notifier.handle(event, &request_id).await }).await
}
