//! offhours-scaler's Lambda entry point: logging, configuration, clients built once,
//! run. The story of an invocation is in `lib.rs`.

use menotime_shared::aws::{autoscaling::AutoScaling, ecs::Ecs, sns::Sns};
use menotime_shared::config::OffhoursConfig;
use menotime_shared::lambda::{config_or_exit, serve};
use offhours_scaler::OffhoursScaler;

// One thread: Lambda sends one invocation at a time, and the AWS calls of one
// invocation run in turn.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    menotime_shared::lambda::init_logging();

    let cfg = config_or_exit(OffhoursConfig::from_env());
    let aws = config_or_exit(menotime_shared::sdk::config());
    tracing::info!(
        environment = %cfg.common.environment,
        cluster = %cfg.common.cluster,
        service = %cfg.common.service,
        min_capacity = cfg.min_capacity,
        desired_count = cfg.desired_count,
        uptime = cfg.window.as_ref().map(|w| w.uptime.render()),
        holidays = cfg.window.as_ref().map(|w| w.holidays.render()),
        wake_timeout_minutes = cfg.wake_timeout_minutes,
        tzdb = menotime_shared::domain::uptime::TZDB_VERSION,
        dry_run = cfg.common.dry_run,
        "offhours-scaler starting"
    );

    let scaler = OffhoursScaler::new(
        cfg,
        Ecs::new(aws_sdk_ecs::Client::new(&aws)),
        AutoScaling::new(aws_sdk_applicationautoscaling::Client::new(&aws)),
        Sns::new(aws_sdk_sns::Client::new(&aws)),
    )
    .with_function_name(std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok());
    let scaler = &scaler;

    serve(|event, request_id| async move { scaler.handle(event, &request_id).await }).await
}
