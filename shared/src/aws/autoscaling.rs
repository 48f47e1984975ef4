//! Application Auto Scaling: read and set the ECS service's scalable target
//! (`ecs:service:DesiredCount`), for offhours-scaler.

use std::future::Future;

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace, SuspendedState};

use super::aws_error;
use crate::domain::offhours::{ScalableTarget, Suspended};
use crate::error::Error;

/// `service/CLUSTER/SERVICE`, Application Auto Scaling's id of an ECS service.
pub fn resource_id(cluster: &str, service: &str) -> String {
    format!("service/{cluster}/{service}")
}

/// The Application Auto Scaling calls of offhours-scaler.
pub trait ScalingApi {
    /// DescribeScalableTargets(ecs, [service/CLUSTER/SERVICE], ecs:service:DesiredCount):
    /// the service's scalable target, or `None` for a service scaled by hand.
    fn describe_target(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = Result<Option<ScalableTarget>, Error>> + Send;

    /// RegisterScalableTarget on the service's existing target: sets min, max and the
    /// suspended state (all three flags, explicitly). Refuses `min > max` or a negative
    /// value before calling AWS.
    fn register_target(
        &self,
        cluster: &str,
        service: &str,
        target: &ScalableTarget,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Refuses what AWS would refuse (and what moto would wrongly accept): a negative
/// bound, or a minimum above the maximum.
pub fn validate(cluster: &str, service: &str, t: &ScalableTarget) -> Result<(), Error> {
    if t.min < 0 || t.max < 0 || t.min > t.max {
        return Err(Error::Misconfigured(format!(
            "refusing to set the scalable target of {} to min={} max={}: the minimum must be \
             0 or more and at most the maximum. Nothing was changed on the target; check it \
             with aws application-autoscaling describe-scalable-targets --service-namespace ecs \
             --resource-ids {}",
            resource_id(cluster, service),
            t.min,
            t.max,
            resource_id(cluster, service)
        )));
    }
    Ok(())
}

/// [`ScalingApi`] over the AWS SDK.
#[derive(Clone, Debug)]
pub struct AutoScaling {
    client: aws_sdk_applicationautoscaling::Client,
}

impl AutoScaling {
    pub fn new(client: aws_sdk_applicationautoscaling::Client) -> Self {
        Self { client }
    }

    /// A client from a loaded SDK configuration (for callers that do not depend on the
    /// Application Auto Scaling crate themselves, such as the e2e harness).
    pub fn from_conf(conf: &aws_types::SdkConfig) -> Self {
        Self::new(aws_sdk_applicationautoscaling::Client::new(conf))
    }
}

fn suspended_of(s: Option<&SuspendedState>) -> Suspended {
    s.map_or(Suspended::NONE, |s| Suspended {
        dynamic_in: s.dynamic_scaling_in_suspended().unwrap_or(false),
        dynamic_out: s.dynamic_scaling_out_suspended().unwrap_or(false),
        scheduled: s.scheduled_scaling_suspended().unwrap_or(false),
    })
}

impl ScalingApi for AutoScaling {
    async fn describe_target(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<ScalableTarget>, Error> {
        let id = resource_id(cluster, service);
        let out = self
            .client
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(&id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .map_err(|e| aws_error("application-autoscaling:DescribeScalableTargets", e))?;
        Ok(out
            .scalable_targets()
            .iter()
            .find(|t| {
                t.resource_id() == id
                    && *t.scalable_dimension() == ScalableDimension::EcsServiceDesiredCount
            })
            .map(|t| ScalableTarget {
                min: t.min_capacity(),
                max: t.max_capacity(),
                suspended: suspended_of(t.suspended_state()),
            }))
    }

    async fn register_target(
        &self,
        cluster: &str,
        service: &str,
        target: &ScalableTarget,
    ) -> Result<(), Error> {
        validate(cluster, service, target)?;
        let s = target.suspended;
        self.client
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource_id(cluster, service))
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .min_capacity(target.min)
            .max_capacity(target.max)
            .suspended_state(
                SuspendedState::builder()
                    .dynamic_scaling_in_suspended(s.dynamic_in)
                    .dynamic_scaling_out_suspended(s.dynamic_out)
                    .scheduled_scaling_suspended(s.scheduled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws_error("application-autoscaling:RegisterScalableTarget", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i32, max: i32) -> ScalableTarget {
        ScalableTarget {
            min,
            max,
            suspended: Suspended::NONE,
        }
    }

    #[test]
    fn resource_id_is_the_ecs_form() {
        assert_eq!(
            resource_id("menotime-prod-cluster", "menotime-prod-service"),
            "service/menotime-prod-cluster/menotime-prod-service"
        );
    }

    #[test]
    fn min_above_max_and_negatives_are_refused() {
        assert!(validate("c", "s", &t(1, 4)).is_ok());
        assert!(validate("c", "s", &t(0, 0)).is_ok());
        assert!(validate("c", "s", &t(4, 4)).is_ok());
        for bad in [t(5, 4), t(-1, 4), t(0, -1)] {
            let err = validate("c", "s", &bad).unwrap_err();
            assert!(matches!(err, Error::Misconfigured(_)), "{err:?}");
            assert!(err.to_string().contains("service/c/s"), "{err}");
        }
    }

    #[test]
    fn a_missing_suspended_state_means_nothing_suspended() {
        assert_eq!(suspended_of(None), Suspended::NONE);
        let s = SuspendedState::builder()
            .dynamic_scaling_in_suspended(true)
            .build();
        assert_eq!(
            suspended_of(Some(&s)),
            Suspended {
                dynamic_in: true,
                dynamic_out: false,
                scheduled: false
            }
        );
    }
}
