//! offhours-scaler's end-to-end helpers: its environment, windows that make *now* day
//! or night for the built binary (which runs on the real clock), and what moto holds
//! about a service's capacity (the scalable target, the desired count, the off-hours
//! tags).

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use menotime_shared::aws::autoscaling::{AutoScaling, ScalingApi};
use menotime_shared::domain::offhours::{Capacity, ScalableTarget};
use menotime_shared::tags;

use crate::{common_env, with_var, Aws, Moto, Seed, SeedEnv};

/// offhours-scaler's environment for one of the seeded environments (docs/reference.md §2): the
/// common variables; `OFFHOURS_*` keep their per-environment defaults (no window).
pub fn offhours_env(moto: &Moto, seed: &Seed, env: &str) -> Vec<(String, String)> {
    common_env(moto, seed, env)
}

/// A window up around the clock: whenever a test runs, it is day.
pub const ALWAYS_UP: &str = "Mon-Sun 00:00-24:00 UTC";

/// The window of [`offhours_env`] plus `OFFHOURS_UPTIME` and `OFFHOURS_HOLIDAYS`.
pub fn windowed_env(
    moto: &Moto,
    seed: &Seed,
    env: &str,
    uptime: &str,
    holidays: &str,
) -> Vec<(String, String)> {
    let vars = with_var(offhours_env(moto, seed, env), "OFFHOURS_UPTIME", uptime);
    if holidays.is_empty() {
        vars
    } else {
        with_var(vars, "OFFHOURS_HOLIDAYS", holidays)
    }
}

/// It is day now: [`ALWAYS_UP`], no holidays.
pub fn day_now(moto: &Moto, seed: &Seed, env: &str) -> Vec<(String, String)> {
    windowed_env(moto, seed, env, ALWAYS_UP, "")
}

/// It is night now, by holidays: [`ALWAYS_UP`] with yesterday, today and tomorrow (UTC)
/// as holidays, so a test that runs across midnight still sees night.
pub fn holiday_now(moto: &Moto, seed: &Seed, env: &str) -> Vec<(String, String)> {
    windowed_env(moto, seed, env, ALWAYS_UP, &holidays_around(Utc::now()))
}

/// `yesterday, today, tomorrow` as UTC dates around `at`.
pub fn holidays_around(at: DateTime<Utc>) -> String {
    [-1, 0, 1]
        .iter()
        .map(|d| (at + TimeDelta::days(*d)).format("%Y-%m-%d").to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An RFC 3339 time `minutes` from now (negative: in the past), to the second.
pub fn minutes_from_now(minutes: i64) -> String {
    (Utc::now() + TimeDelta::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Reads (and, for a test's setup, sets) what the scaler works on, in moto.
pub struct Capacities {
    pub scaling: AutoScaling,
}

impl Capacities {
    pub async fn new(moto: &Moto) -> Capacities {
        Capacities {
            scaling: AutoScaling::from_conf(&moto.sdk_config().await),
        }
    }

    /// The service's scalable target, as Application Auto Scaling reports it.
    pub async fn target(&self, env: &SeedEnv) -> Option<ScalableTarget> {
        self.scaling
            .describe_target(&env.cluster, &env.service)
            .await
            .expect("describe-scalable-targets")
    }

    /// Sets the service's scalable target, as an operator would.
    pub async fn set_target(&self, env: &SeedEnv, target: &ScalableTarget) {
        self.scaling
            .register_target(&env.cluster, &env.service, target)
            .await
            .expect("register-scalable-target")
    }

    /// The scalable target and the service's desired count.
    pub async fn capacity(&self, aws: &Aws, env: &SeedEnv) -> Capacity {
        Capacity {
            target: self.target(env).await,
            desired: desired_count(aws, env).await,
        }
    }
}

/// The service's desired count, as ECS reports it.
pub async fn desired_count(aws: &Aws, env: &SeedEnv) -> i32 {
    let out = aws
        .ecs
        .describe_services()
        .cluster(&env.cluster)
        .services(&env.service)
        .send()
        .await
        .expect("describe-services");
    out.services()[0].desired_count()
}

/// Sets the service's desired count, as an operator (or ECS) would; moto then reports
/// that many tasks running.
pub async fn set_desired_count(aws: &Aws, env: &SeedEnv, desired: i32) {
    aws.ecs
        .update_service()
        .cluster(&env.cluster)
        .service(&env.service)
        .desired_count(desired)
        .send()
        .await
        .expect("update-service");
}

/// The service's running count, as ECS reports it.
pub async fn running_count(aws: &Aws, env: &SeedEnv) -> i32 {
    let out = aws
        .ecs
        .describe_services()
        .cluster(&env.cluster)
        .services(&env.service)
        .send()
        .await
        .expect("describe-services");
    out.services()[0].running_count()
}

/// The `menotime:offhours-snapshot` tag on the service, if any.
pub async fn snapshot(aws: &Aws, env: &SeedEnv) -> Option<String> {
    aws.service(env)
        .await
        .tags
        .into_iter()
        .find(|(k, _)| k == tags::OFFHOURS_SNAPSHOT)
        .map(|(_, v)| v)
}

/// offhours-scaler's handler run in this process, with the real SDK adapters against
/// `endpoint` (moto, or the counting proxy in front of it), on a clock the caller
/// moves: how the demo tells a week in seconds. The deployed binary has no such switch;
/// it reads the real clock.
pub struct InProcessScaler {
    scaler: offhours_scaler::OffhoursScaler<
        menotime_shared::aws::ecs::Ecs,
        AutoScaling,
        menotime_shared::aws::sns::Sns,
    >,
    clock: std::sync::Arc<std::sync::Mutex<DateTime<Utc>>>,
}

impl InProcessScaler {
    /// The scaler configured by `vars` (as the function's environment), talking to
    /// `endpoint`, its clock at `now`.
    pub async fn new(vars: &[(String, String)], endpoint: &str, now: DateTime<Utc>) -> Self {
        use menotime_shared::config::{OffhoursConfig, Vars};
        let cfg = OffhoursConfig::from_vars(&Vars(|k: &str| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        }))
        .expect("offhours-scaler's configuration");
        let conf = sdk_config(endpoint).await;
        let clock = std::sync::Arc::new(std::sync::Mutex::new(now));
        let read = clock.clone();
        let scaler = offhours_scaler::OffhoursScaler::new(
            cfg,
            menotime_shared::aws::ecs::Ecs::new(aws_sdk_ecs::Client::new(&conf)),
            AutoScaling::from_conf(&conf),
            menotime_shared::aws::sns::Sns::new(aws_sdk_sns::Client::new(&conf)),
        )
        .with_clock(move || *read.lock().unwrap_or_else(|e| e.into_inner()))
        .with_function_name(Some("menotime-prod-offhours-scaler".into()));
        InProcessScaler { scaler, clock }
    }

    pub fn set_time(&self, at: DateTime<Utc>) {
        *self.clock.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    /// One invocation: the result, or `(errorType, errorMessage)` as Lambda reports it.
    pub async fn invoke(
        &self,
        event: &serde_json::Value,
        request_id: &str,
    ) -> Result<serde_json::Value, (String, String)> {
        match self.scaler.handle(event.clone(), request_id).await {
            Ok(out) => Ok(serde_json::to_value(&out).unwrap_or_default()),
            Err(e) => Err((e.kind().to_owned(), e.to_string())),
        }
    }
}

/// An SDK configuration for a local endpoint (moto, or the proxy), with moto's test
/// credentials and the functions' own HTTP client (the SDK crates are built without a
/// default one: without it every call fails with "No HTTP client was available").
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(menotime_shared::sdk::http_client(None).expect("the HTTP client"))
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(crate::moto::REGION))
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}
