//! scan-gate's Lambda entry point: logging, configuration, clients built once, run.
//! The story of an invocation is in `lib.rs`.

use menotime_shared::aws::{ecr::Ecr, ecs::Ecs, sns::Sns};
use menotime_shared::config::ScanGateConfig;
use menotime_shared::lambda::{config_or_exit, serve};
use scan_gate::ScanGate;

// One thread: Lambda sends one invocation at a time, and the AWS calls of one
// invocation run in turn.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    menotime_shared::lambda::init_logging();

    let cfg = config_or_exit(ScanGateConfig::from_env());
    let aws = config_or_exit(menotime_shared::sdk::config());
    tracing::info!(
        environment = %cfg.common.environment,
        cluster = %cfg.common.cluster,
        service = %cfg.common.service,
        repository = %cfg.repository,
        pattern = %cfg.deploy_tag_pattern,
        dry_run = cfg.common.dry_run,
        "scan-gate starting"
    );

    let gate = ScanGate::new(
        cfg,
        Ecs::new(aws_sdk_ecs::Client::new(&aws)),
        Ecr::new(aws_sdk_ecr::Client::new(&aws)),
        Sns::new(aws_sdk_sns::Client::new(&aws)),
    );
    let gate = &gate;

    serve(|event, _request_id| gate.handle(event)).await
}
