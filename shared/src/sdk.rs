//! The AWS SDK configuration every function loads once at start-up.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;

/// Standard AWS configuration (region, credentials, and `AWS_ENDPOINT_URL` to point
/// every client at an emulator), with bounded time: a call that hangs must not eat the
/// whole Lambda timeout, and throttling is retried with backoff by the SDK (3 attempts)
/// before the invocation itself fails and Lambda retries it.
pub async fn load() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(25))
                .build(),
        )
        .load()
        .await
}

/// Standard retry mode: throttling, 5xx and transient network errors are retried up to
/// 3 attempts in all, with exponential backoff and jitter.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}
