//! The manual's safety net for prod deployments: "Rolling Deployment with Circuit
//! Breaker", `minimumHealthyPercent` 100 and `deploymentCircuitBreaker` enabled with
//! rollback. scan-gate checks the service has it before it deploys (when
//! `REQUIRE_SAFE_ROLLOUT`, always in prod): without it a bad image takes the service
//! down instead of being rolled back.

use super::service::{CircuitBreaker, DeploymentConfiguration};

/// The manual's prod `maximumPercent`, used when the service sets none.
pub const MANUAL_MAXIMUM_PERCENT: i32 = 150;

/// One thing the service's deployment configuration lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gap {
    /// ECS reports no deployment configuration at all.
    NoConfiguration,
    /// The circuit breaker is off (or absent).
    CircuitBreakerOff,
    /// The circuit breaker stops a failing deployment but does not roll it back.
    NoRollback,
    /// `minimumHealthyPercent` is below 100 (or unset): a deployment may take tasks away.
    MinimumHealthyPercent(Option<i32>),
}

impl Gap {
    pub fn describe(&self) -> String {
        match self {
            Gap::NoConfiguration => "ECS reports no deploymentConfiguration for the service".into(),
            Gap::CircuitBreakerOff => {
                "deploymentCircuitBreaker is not enabled (a failing deployment is not stopped)".into()
            }
            Gap::NoRollback => {
                "deploymentCircuitBreaker.rollback is false (a failed deployment is not rolled back)"
                    .into()
            }
            Gap::MinimumHealthyPercent(Some(p)) => format!(
                "minimumHealthyPercent is {p}, not 100 (a deployment may stop healthy tasks first)"
            ),
            Gap::MinimumHealthyPercent(None) => {
                "minimumHealthyPercent is not set, not 100 (a deployment may stop healthy tasks first)"
                    .into()
            }
        }
    }
}

/// What the configuration lacks of the manual's prod configuration; empty when it has
/// it all.
pub fn gaps(config: Option<&DeploymentConfiguration>) -> Vec<Gap> {
    let Some(c) = config else {
        return vec![
            Gap::NoConfiguration,
            Gap::CircuitBreakerOff,
            Gap::MinimumHealthyPercent(None),
        ];
    };
    let mut out = Vec::new();
    match c.circuit_breaker {
        Some(CircuitBreaker {
            enable: true,
            rollback: true,
        }) => {}
        Some(CircuitBreaker {
            enable: true,
            rollback: false,
        }) => out.push(Gap::NoRollback),
        _ => out.push(Gap::CircuitBreakerOff),
    }
    if c.minimum_healthy_percent.is_none_or(|p| p < 100) {
        out.push(Gap::MinimumHealthyPercent(c.minimum_healthy_percent));
    }
    out
}

/// The configuration with the safety net restored and everything else kept: the
/// service's `maximumPercent` (the manual's 150 when it has none, since 100 healthy
/// needs room above) and its deployment alarms.
pub fn restored(config: Option<&DeploymentConfiguration>) -> DeploymentConfiguration {
    let c = config.cloned().unwrap_or_default();
    let maximum = c
        .maximum_percent
        .filter(|m| *m > 100)
        .unwrap_or(MANUAL_MAXIMUM_PERCENT);
    DeploymentConfiguration {
        maximum_percent: Some(maximum),
        minimum_healthy_percent: Some(100),
        circuit_breaker: Some(CircuitBreaker {
            enable: true,
            rollback: true,
        }),
        alarms: c.alarms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::service::DeploymentAlarms;

    fn cfg(min: Option<i32>, cb: Option<(bool, bool)>) -> DeploymentConfiguration {
        DeploymentConfiguration {
            maximum_percent: Some(200),
            minimum_healthy_percent: min,
            circuit_breaker: cb.map(|(enable, rollback)| CircuitBreaker { enable, rollback }),
            alarms: None,
        }
    }

    #[test]
    fn the_manuals_prod_configuration_has_no_gap() {
        assert!(gaps(Some(&cfg(Some(100), Some((true, true))))).is_empty());
        assert!(gaps(Some(&restored(None))).is_empty());
    }

    #[test]
    fn each_gap_is_named() {
        assert_eq!(
            gaps(Some(&cfg(Some(50), Some((true, true))))),
            [Gap::MinimumHealthyPercent(Some(50))]
        );
        assert_eq!(
            gaps(Some(&cfg(Some(100), Some((true, false))))),
            [Gap::NoRollback]
        );
        assert_eq!(
            gaps(Some(&cfg(Some(100), Some((false, true))))),
            [Gap::CircuitBreakerOff]
        );
        assert_eq!(
            gaps(Some(&cfg(None, None))),
            [Gap::CircuitBreakerOff, Gap::MinimumHealthyPercent(None)]
        );
        let none = gaps(None);
        assert_eq!(none[0], Gap::NoConfiguration);
        assert!(none.iter().all(|g| !g.describe().is_empty()));
        assert!(Gap::MinimumHealthyPercent(Some(50))
            .describe()
            .contains("50, not 100"));
    }

    #[test]
    fn restoring_keeps_the_rest() {
        let mut c = cfg(Some(50), None);
        c.alarms = Some(DeploymentAlarms {
            names: vec!["menotime-prod-5xx".into()],
            enable: true,
            rollback: true,
        });
        let r = restored(Some(&c));
        assert_eq!(r.maximum_percent, Some(200));
        assert_eq!(r.minimum_healthy_percent, Some(100));
        assert_eq!(r.alarms, c.alarms);
        // 100 healthy needs room above 100.
        let tight = DeploymentConfiguration {
            maximum_percent: Some(100),
            ..Default::default()
        };
        assert_eq!(restored(Some(&tight)).maximum_percent, Some(150));
        assert_eq!(restored(None).maximum_percent, Some(150));
    }
}
