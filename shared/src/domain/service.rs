//! The ECS service as the functions see it: its deployments, its counts, and the
//! state kept in its tags (docs/reference.md §3), read into types once, when the
//! service is described. Decisions never parse tag values themselves.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::deploy::Deferred;
use super::incident::Marker;
use super::offhours::{OffhoursTag, Snapshot};
use super::wake::Wake;
use super::watch::Watch;
use crate::tags;

/// The ECS service as DescribeServices(include=[TAGS]) shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceState {
    pub arn: String,
    pub status: String,
    /// The task definition the service runs (its PRIMARY deployment's).
    pub task_definition: String,
    pub tags: ServiceTags,
    pub deployments: Vec<DeploymentState>,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    /// The service's `deploymentConfiguration`, when ECS reports one.
    pub deployment_configuration: Option<DeploymentConfiguration>,
    /// The security groups of the service's tasks (`awsvpc` network configuration).
    pub security_groups: Vec<String>,
    /// The service's latest events (DescribeServices `events`), newest first, at most
    /// [`ServiceState::EVENTS_KEPT`]: why ECS cannot start or place tasks.
    pub events: Vec<ServiceEvent>,
}

/// How ECS rolls a deployment out, as DescribeServices reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentConfiguration {
    pub maximum_percent: Option<i32>,
    pub minimum_healthy_percent: Option<i32>,
    /// `deploymentCircuitBreaker`.
    pub circuit_breaker: Option<CircuitBreaker>,
    /// `alarms`: CloudWatch alarms that fail (and may roll back) a deployment.
    pub alarms: Option<DeploymentAlarms>,
}

/// The deployment circuit breaker: `enable` stops a deployment whose tasks keep failing,
/// `rollback` then goes back to the last completed deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

/// `deploymentConfiguration.alarms`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentAlarms {
    pub names: Vec<String>,
    pub enable: bool,
    pub rollback: bool,
}

/// One of the service's events, e.g. `(service menotime-prod-service) was unable to
/// place a task because no container instance met all of its requirements.`
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceEvent {
    pub at: Option<DateTime<Utc>>,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentState {
    pub id: String,
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: String,
    /// IN_PROGRESS, COMPLETED or FAILED, when ECS reports it.
    pub rollout_state: Option<String>,
    /// The revision this deployment runs.
    pub task_definition: String,
    /// When ECS created the deployment (the service moved to its revision then).
    pub created_at: Option<DateTime<Utc>>,
    /// When ECS last changed the deployment.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A deployment still rolling out, and in what state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollout {
    pub deployment: String,
    /// `IN_PROGRESS`, or `replacing N older deployment(s)`.
    pub state: String,
}

impl ServiceState {
    /// How many of the service's latest events are kept.
    pub const EVENTS_KEPT: usize = 5;

    pub fn deployment(&self, id: &str) -> Option<&DeploymentState> {
        self.deployments.iter().find(|d| d.id == id)
    }

    /// The PRIMARY deployment: the one ECS is (or has finished) rolling out.
    pub fn primary(&self) -> Option<&DeploymentState> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }

    /// The revision deployment `id` runs. The PRIMARY deployment runs the service's
    /// task definition by definition (ECS sets both together; emulators may keep
    /// the deployment's field as it was at creation).
    pub fn deployment_task_definition(&self, id: &str) -> Option<&str> {
        let d = self.deployment(id)?;
        let td = if d.status == "PRIMARY" && !self.task_definition.is_empty() {
            &self.task_definition
        } else {
            &d.task_definition
        };
        Some(td.as_str()).filter(|t| !t.is_empty())
    }

    /// A deployment still rolling out: one whose rollout state is IN_PROGRESS, or an
    /// ACTIVE (older) deployment still being replaced by the PRIMARY one.
    pub fn rollout(&self) -> Option<Rollout> {
        if let Some(d) = self
            .deployments
            .iter()
            .find(|d| d.rollout_state.as_deref() == Some("IN_PROGRESS"))
        {
            return Some(Rollout {
                deployment: d.id.clone(),
                state: "IN_PROGRESS".to_owned(),
            });
        }
        let live = self
            .deployments
            .iter()
            .filter(|d| d.status != "INACTIVE")
            .count();
        let primary = self
            .deployments
            .iter()
            .find(|d| d.status == "PRIMARY")
            .or(self.deployments.first())?;
        (live > 1).then(|| Rollout {
            deployment: primary.id.clone(),
            state: format!("replacing {} older deployment(s)", live - 1),
        })
    }

    /// The service as it is once deployment `completed` has completed at `at`: ECS may
    /// still show that rollout in progress for a moment after its completion event.
    /// Unless the PRIMARY deployment is another one, created after `at` (a rollout
    /// started since), the PRIMARY deployment is complete and the older ones drained.
    pub fn after_completion(&self, completed: &str, at: DateTime<Utc>) -> ServiceState {
        let mut s = self.clone();
        let newer_rollout = s
            .primary()
            .is_some_and(|p| p.id != completed && p.created_at.is_some_and(|t| t > at));
        if newer_rollout {
            return s;
        }
        for d in &mut s.deployments {
            match d.status.as_str() {
                "PRIMARY" => d.rollout_state = Some("COMPLETED".to_owned()),
                "ACTIVE" => d.status = "INACTIVE".to_owned(),
                _ => {}
            }
        }
        s
    }

    /// `2 running of 2 desired` (with pending ones when there are).
    pub fn tasks_line(&self) -> String {
        let mut line = format!(
            "{} running of {} desired",
            self.running_count, self.desired_count
        );
        if self.pending_count > 0 {
            line.push_str(&format!(", {} pending", self.pending_count));
        }
        line
    }
}

/// A tag value read into its type, or why it could not be: a value someone edited by
/// hand is reported, never guessed at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tagged<T> {
    Read(T),
    Unreadable { value: String, problem: String },
}

impl<T> Tagged<T> {
    fn parse(value: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Self {
        match parse(value) {
            Ok(t) => Tagged::Read(t),
            Err(problem) => Tagged::Unreadable {
                value: value.to_owned(),
                problem,
            },
        }
    }

    /// The value, when it could be read.
    pub fn read(&self) -> Option<&T> {
        match self {
            Tagged::Read(t) => Some(t),
            Tagged::Unreadable { .. } => None,
        }
    }
}

/// The service's state tags, read into types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceTags {
    /// `menotime:deploy-freeze`: present means scan-gate deploys nothing; the value
    /// says why (free text).
    pub freeze: Option<String>,
    /// `menotime:deploy-unfrozen`: who lifted the last freeze, when and why (free text,
    /// written by `menotime-ops unfreeze`).
    pub unfrozen: Option<String>,
    /// `menotime:deploy-incident`: deploy-notifier's memory of a failed deployment.
    pub deploy_incident: Option<Tagged<Marker>>,
    /// `menotime:service-incident`: deploy-notifier's memory of an impairment.
    pub service_incident: Option<Tagged<Marker>>,
    /// `menotime:deploy-watch`: the last completed deployment and its way back.
    pub watch: Option<Tagged<Watch>>,
    /// `menotime:alarm-incident`: deploy-notifier's memory of the alarm incident.
    pub alarm_incident: Option<Tagged<Marker>>,
    /// `menotime:task-start-incident`: start failures already reported.
    pub task_start_incident: Option<Tagged<Marker>>,
    /// `menotime:offhours-snapshot`: the capacity saved for the morning.
    pub offhours_snapshot: Option<Tagged<Snapshot>>,
    /// `menotime:offhours`: an operator's exclusion (`skip`) or hold (`skip-until=`).
    pub offhours: Option<Tagged<OffhoursTag>>,
    /// `menotime:deploy-deferred`: an image scan-gate deploys when the rollout under
    /// way completes.
    pub deferred: Option<Tagged<Deferred>>,
    /// `menotime:offhours-wake`: a scale-up waiting for its tasks to run.
    pub offhours_wake: Option<Tagged<Wake>>,
    /// Every tag as ECS returned it.
    pub raw: BTreeMap<String, String>,
}

impl ServiceTags {
    /// Reads the tags ECS returned.
    pub fn read(raw: BTreeMap<String, String>) -> ServiceTags {
        let get = |k: &str| raw.get(k).map(String::as_str);
        ServiceTags {
            freeze: get(tags::DEPLOY_FREEZE).map(str::to_owned),
            unfrozen: get(tags::DEPLOY_UNFROZEN).map(str::to_owned),
            deploy_incident: get(tags::DEPLOY_INCIDENT).map(|v| Tagged::parse(v, Marker::parse)),
            service_incident: get(tags::SERVICE_INCIDENT).map(|v| Tagged::parse(v, Marker::parse)),
            watch: get(tags::DEPLOY_WATCH).map(|v| Tagged::parse(v, Watch::parse)),
            alarm_incident: get(tags::ALARM_INCIDENT).map(|v| Tagged::parse(v, Marker::parse)),
            task_start_incident: get(tags::TASK_START_INCIDENT)
                .map(|v| Tagged::parse(v, Marker::parse)),
            offhours_snapshot: get(tags::OFFHOURS_SNAPSHOT)
                .map(|v| Tagged::parse(v, Snapshot::parse)),
            offhours: get(tags::OFFHOURS).map(|v| Tagged::parse(v, OffhoursTag::parse)),
            deferred: get(tags::DEPLOY_DEFERRED).map(|v| Tagged::parse(v, Deferred::parse)),
            offhours_wake: get(tags::OFFHOURS_WAKE).map(|v| Tagged::parse(v, Wake::parse)),
            raw,
        }
    }

    /// The tags as they would read after TagResource with `new` (for fakes and for
    /// reasoning about a write before it is made).
    pub fn with(&self, new: &[(String, String)]) -> ServiceTags {
        let mut raw = self.raw.clone();
        raw.extend(new.iter().cloned());
        ServiceTags::read(raw)
    }

    /// The tags as they would read after UntagResource of `keys`.
    pub fn without(&self, keys: &[String]) -> ServiceTags {
        let mut raw = self.raw.clone();
        for k in keys {
            raw.remove(k);
        }
        ServiceTags::read(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployments(list: &[(&str, Option<&str>)]) -> ServiceState {
        ServiceState {
            deployments: list
                .iter()
                .enumerate()
                .map(|(i, (status, rollout))| DeploymentState {
                    id: format!("ecs-svc/{i}"),
                    status: status.to_string(),
                    rollout_state: rollout.map(str::to_owned),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn rollouts() {
        assert_eq!(
            deployments(&[("PRIMARY", Some("COMPLETED"))]).rollout(),
            None
        );
        assert_eq!(deployments(&[]).rollout(), None);
        assert_eq!(
            deployments(&[("PRIMARY", Some("IN_PROGRESS"))]).rollout(),
            Some(Rollout {
                deployment: "ecs-svc/0".into(),
                state: "IN_PROGRESS".into()
            })
        );
        // No rollout state (older ECS): two live deployments mean one replaces the other.
        assert_eq!(
            deployments(&[("PRIMARY", None), ("ACTIVE", None)]).rollout(),
            Some(Rollout {
                deployment: "ecs-svc/0".into(),
                state: "replacing 1 older deployment(s)".into()
            })
        );
        assert_eq!(
            deployments(&[("PRIMARY", None), ("INACTIVE", None)]).rollout(),
            None
        );
    }

    #[test]
    fn a_completed_rollout_is_over_whatever_ecs_still_shows() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut s = deployments(&[("PRIMARY", Some("IN_PROGRESS")), ("ACTIVE", None)]);
        s.deployments[0].created_at = Some(t("2026-11-26T10:00:00Z"));
        assert!(s.rollout().is_some());
        // Its completion (named, or older than the event): no rollout left.
        assert_eq!(
            s.after_completion("ecs-svc/0", t("2026-11-26T10:30:00Z"))
                .rollout(),
            None
        );
        assert_eq!(
            s.after_completion("ecs-svc/9", t("2026-11-26T10:30:00Z"))
                .rollout(),
            None
        );
        // A rollout started after that completion still counts.
        assert!(s
            .after_completion("ecs-svc/9", t("2026-11-26T09:00:00Z"))
            .rollout()
            .is_some());
    }

    #[test]
    fn tags_are_read_once_and_unreadable_values_say_why() {
        let t = ServiceTags::read(BTreeMap::from([
            (
                tags::DEPLOY_FREEZE.to_owned(),
                "deployment x failed".to_owned(),
            ),
            (
                tags::OFFHOURS_SNAPSHOT.to_owned(),
                "min=2 max=4 desired=2".to_owned(),
            ),
            (tags::OFFHOURS.to_owned(), "skpi".to_owned()),
            (tags::DEPLOY_INCIDENT.to_owned(), "nonsense".to_owned()),
            ("team".to_owned(), "menotime".to_owned()),
        ]));
        assert_eq!(t.freeze.as_deref(), Some("deployment x failed"));
        assert_eq!(
            t.offhours_snapshot
                .as_ref()
                .and_then(|s| s.read())
                .map(|s| s.desired),
            Some(2)
        );
        assert!(matches!(t.offhours, Some(Tagged::Unreadable { .. })));
        assert!(matches!(t.deploy_incident, Some(Tagged::Unreadable { .. })));
        assert_eq!(t.service_incident, None);
        assert_eq!(t.raw.len(), 5);
        let t = t.without(&[tags::DEPLOY_FREEZE.to_owned()]);
        assert_eq!(t.freeze, None);
        let t = t.with(&[(tags::OFFHOURS.to_owned(), "SKIP".to_owned())]);
        assert_eq!(t.offhours, Some(Tagged::Read(OffhoursTag::Skip)));
    }
}
