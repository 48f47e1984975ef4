//! offhours-scaler's end-to-end helpers: its environment, and what moto holds about a
//! service's capacity (the scalable target, the desired count, the snapshot tag).

use menotime_shared::aws::autoscaling::{AutoScaling, ScalingApi};
use menotime_shared::domain::offhours::{Capacity, ScalableTarget};
use menotime_shared::tags;

use crate::{common_env, Aws, Moto, Seed, SeedEnv};

/// offhours-scaler's environment for one of the seeded environments (docs/reference.md §2): the
/// common variables; `OFFHOURS_*` keep their per-environment defaults.
pub fn offhours_env(moto: &Moto, seed: &Seed, env: &str) -> Vec<(String, String)> {
    common_env(moto, seed, env)
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

/// The `menotime:offhours-snapshot` tag on the service, if any.
pub async fn snapshot(aws: &Aws, env: &SeedEnv) -> Option<String> {
    aws.service(env)
        .await
        .tags
        .into_iter()
        .find(|(k, _)| k == tags::OFFHOURS_SNAPSHOT)
        .map(|(_, v)| v)
}
