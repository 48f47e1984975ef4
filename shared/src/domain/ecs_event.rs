//! deploy-notifier's input: the three ECS event kinds it accepts (docs/reference.md §5), checked
//! against this stack's account, region, cluster and service, and normalised.
//!
//! Field notes (docs/reference.md §5.3; samples in `shared/fixtures/reference/`):
//! cluster and service come from `resources[0]`; `detail.clusterArn` is optional on
//! deployment events; a rollback is a SERVICE_DEPLOYMENT_IN_PROGRESS whose reason
//! starts with "ECS deployment circuit breaker: rolling back"; an out-of-memory kill
//! shows only in `containers[].reason`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::scan::{accept_envelope, Envelope};
use crate::arn::Arn;
use crate::error::Error;

pub const SOURCE_ECS: &str = "aws.ecs";
pub const DETAIL_DEPLOYMENT: &str = "ECS Deployment State Change";
pub const DETAIL_SERVICE_ACTION: &str = "ECS Service Action";
pub const DETAIL_TASK: &str = "ECS Task State Change";
/// The reason of the SERVICE_DEPLOYMENT_IN_PROGRESS that starts a rollback.
pub const ROLLBACK_PREFIX: &str = "ECS deployment circuit breaker: rolling back";
/// The container reason of a task killed for using too much memory.
pub const OOM_PREFIX: &str = "OutOfMemoryError";
/// Service actions that mean the service cannot run its tasks.
pub const IMPAIRMENTS: [&str; 3] = [
    "SERVICE_TASK_START_IMPAIRED",
    "SERVICE_TASK_PLACEMENT_FAILURE",
    "SERVICE_DISCOVERY_INSTANCE_UNHEALTHY",
];
pub const STEADY_STATE: &str = "SERVICE_STEADY_STATE";
/// The stop code of a task that stopped before it ran.
pub const TASK_FAILED_TO_START: &str = "TaskFailedToStart";
/// The stop code of a Fargate Spot task whose capacity AWS took back.
pub const SPOT_INTERRUPTION: &str = "SpotInterruption";

/// What an event is checked against: the function's own account, region, cluster and
/// service.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub cluster: &'a str,
    pub service: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EcsEvent {
    Deployment(DeploymentEvent),
    Service(ServiceEvent),
    Task(TaskEvent),
}

impl EcsEvent {
    pub fn envelope(&self) -> &Envelope {
        match self {
            EcsEvent::Deployment(e) => &e.envelope,
            EcsEvent::Service(e) => &e.envelope,
            EcsEvent::Task(e) => &e.envelope,
        }
    }
}

/// What happened to a deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeploymentChange {
    InProgress,
    /// The circuit breaker rolls the deployment back, to this deployment if named.
    Rollback {
        to: Option<String>,
    },
    Completed,
    Failed,
}

impl DeploymentChange {
    /// A short stable name, used in the incident marker.
    pub fn name(&self) -> &'static str {
        match self {
            DeploymentChange::InProgress => "in_progress",
            DeploymentChange::Rollback { .. } => "rollback",
            DeploymentChange::Completed => "completed",
            DeploymentChange::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentEvent {
    pub envelope: Envelope,
    pub change: DeploymentChange,
    pub event_name: String,
    pub deployment_id: String,
    pub reason: String,
    /// `detail.updatedAt`, or the envelope's time when absent.
    pub at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceChange {
    Impaired,
    SteadyState,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEvent {
    pub envelope: Envelope,
    pub change: ServiceChange,
    pub event_name: String,
    pub reason: Option<String>,
    /// `detail.createdAt`, or the envelope's time when absent.
    pub at: DateTime<Utc>,
}

/// A container killed for using too much memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OomKill {
    pub container: String,
    pub reason: String,
    pub exit_code: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEvent {
    pub envelope: Envelope,
    pub task_arn: String,
    pub task_definition_arn: Option<String>,
    pub last_status: String,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    /// The deployment that started the task.
    pub started_by: Option<String>,
    pub stopped_reason: Option<String>,
    pub stop_code: Option<String>,
    /// `FARGATE` or `FARGATE_SPOT`, when the task ran through a capacity provider.
    pub capacity_provider: Option<String>,
    pub at: DateTime<Utc>,
    pub oom: Option<OomKill>,
}

impl TaskEvent {
    /// The task id, the last part of its ARN.
    pub fn task_id(&self) -> &str {
        self.task_arn.rsplit('/').next().unwrap_or(&self.task_arn)
    }

    fn stopped_with(&self, code: &str) -> bool {
        self.last_status == "STOPPED" && self.stop_code.as_deref() == Some(code)
    }

    /// Why a task that never ran did not start: STOPPED with stop code
    /// `TaskFailedToStart`, classified by its `stoppedReason`.
    pub fn start_failure(&self) -> Option<StartCause> {
        self.stopped_with(TASK_FAILED_TO_START)
            .then(|| StartCause::classify(self.stopped_reason.as_deref().unwrap_or_default()))
    }

    /// A Fargate Spot task stopped because AWS took its capacity back.
    pub fn spot_interrupted(&self) -> bool {
        self.stopped_with(SPOT_INTERRUPTION)
    }
}

/// Why a task failed to start, by the manual's causes ("Task Won't Start") and the
/// error ECS puts first in `stoppedReason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartCause {
    /// `CannotPullContainerError`: the image does not exist, or cannot be reached.
    ImagePull,
    /// `ResourceInitializationError`: what the task needs before its container starts
    /// (secrets, SSM parameters, registry auth, its log group, the network to reach them).
    ResourceInit(ResourceInit),
    /// `CannotStartContainerError`: the container was created but would not start.
    ContainerStart,
    /// Fargate has no capacity for the task.
    Capacity,
    /// Anything else (`CannotCreateContainerError`, an unknown reason).
    Other,
}

/// What a `ResourceInitializationError` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceInit {
    /// Secrets Manager (`asm`).
    Secrets,
    /// SSM Parameter Store.
    Ssm,
    /// A network timeout on the way to ECR, Secrets Manager or SSM.
    Network,
    /// The awslogs log group.
    Logs,
    /// The reason does not say which.
    Unspecified,
}

impl StartCause {
    /// Classifies a `stoppedReason`, e.g. `CannotPullContainerError: pull image
    /// manifest has been retried 5 time(s): ... not found`.
    pub fn classify(reason: &str) -> StartCause {
        let lower = reason.to_ascii_lowercase();
        if lower.starts_with("cannotpullcontainererror") {
            return StartCause::ImagePull;
        }
        if lower.starts_with("resourceinitializationerror") {
            let kind = if lower.contains("ssm") {
                ResourceInit::Ssm
            } else if lower.contains("asm") || lower.contains("secretsmanager") {
                ResourceInit::Secrets
            } else if [
                "i/o timeout",
                "dial tcp",
                "context deadline exceeded",
                "no route",
            ]
            .iter()
            .any(|n| lower.contains(n))
            {
                ResourceInit::Network
            } else if lower.contains("log group") || lower.contains("logger") {
                ResourceInit::Logs
            } else {
                ResourceInit::Unspecified
            };
            return StartCause::ResourceInit(kind);
        }
        if lower.starts_with("cannotstartcontainererror") {
            return StartCause::ContainerStart;
        }
        if lower.contains("capacity") || lower.contains("resource:") {
            return StartCause::Capacity;
        }
        StartCause::Other
    }

    /// The cause's short name: tasks failing for one cause are reported once per
    /// deployment (`image-pull`, `resource-init`, `container-start`, `capacity`,
    /// `other`).
    pub fn key(self) -> &'static str {
        match self {
            StartCause::ImagePull => "image-pull",
            StartCause::ResourceInit(_) => "resource-init",
            StartCause::ContainerStart => "container-start",
            StartCause::Capacity => "capacity",
            StartCause::Other => "other",
        }
    }

    /// The cause of a [`StartCause::key`], as a marker keeps it (a resource-init cause
    /// without what it named).
    pub fn from_key(key: &str) -> Option<StartCause> {
        match key {
            "image-pull" => Some(StartCause::ImagePull),
            "resource-init" => Some(StartCause::ResourceInit(ResourceInit::Unspecified)),
            "container-start" => Some(StartCause::ContainerStart),
            "capacity" => Some(StartCause::Capacity),
            "other" => Some(StartCause::Other),
            _ => None,
        }
    }

    /// The cause in words.
    pub fn describe(self) -> &'static str {
        match self {
            StartCause::ImagePull => "the image cannot be pulled (CannotPullContainerError)",
            StartCause::ResourceInit(ResourceInit::Secrets) => {
                "the task's secrets cannot be read from Secrets Manager (ResourceInitializationError)"
            }
            StartCause::ResourceInit(ResourceInit::Ssm) => {
                "the task's SSM parameters cannot be read (ResourceInitializationError)"
            }
            StartCause::ResourceInit(ResourceInit::Network) => {
                "the task cannot reach ECR, Secrets Manager or SSM over the network (ResourceInitializationError)"
            }
            StartCause::ResourceInit(ResourceInit::Logs) => {
                "the task's log group cannot be used (ResourceInitializationError)"
            }
            StartCause::ResourceInit(ResourceInit::Unspecified) => {
                "the task's secrets, parameters or network are not ready (ResourceInitializationError)"
            }
            StartCause::ContainerStart => "the container does not start (CannotStartContainerError)",
            StartCause::Capacity => "Fargate has no capacity for the task",
            StartCause::Other => "the task failed to start",
        }
    }
}

/// Checks an incoming event and normalises it. Anything not accepted is
/// [`Error::Rejected`] with a sentence saying why; nothing has been changed.
pub fn parse_ecs_event(event: &Value, site: Site<'_>) -> Result<EcsEvent, Error> {
    let envelope: EventBridgeEvent<Value> = serde_json::from_value(event.clone()).map_err(|e| {
        Error::rejected(format!(
            "not an EventBridge event ({e}); deploy-notifier accepts \"{DETAIL_DEPLOYMENT}\", \"{DETAIL_SERVICE_ACTION}\" and \"{DETAIL_TASK}\" events from {SOURCE_ECS}"
        ))
    })?;
    if envelope.source != SOURCE_ECS
        || ![DETAIL_DEPLOYMENT, DETAIL_SERVICE_ACTION, DETAIL_TASK]
            .contains(&envelope.detail_type.as_str())
    {
        return Err(Error::rejected(format!(
            "deploy-notifier does not handle source {:?} with detail-type {:?}; it accepts {SOURCE_ECS} \"{DETAIL_DEPLOYMENT}\", \"{DETAIL_SERVICE_ACTION}\" and \"{DETAIL_TASK}\", and {} \"{}\"",
            envelope.source,
            envelope.detail_type,
            super::alarm_event::SOURCE_CLOUDWATCH,
            super::alarm_event::DETAIL_ALARM
        )));
    }
    let head = accept_envelope(&envelope, site.account, site.region)?;
    let detail = &envelope.detail;
    if !detail.is_object() {
        return Err(Error::rejected(format!(
            "{} event {} has no detail object",
            head.detail_type, head.id
        )));
    }
    let resources = envelope.resources.as_deref().unwrap_or_default();
    match head.detail_type.as_str() {
        DETAIL_DEPLOYMENT => parse_deployment(head, resources, detail, site),
        DETAIL_SERVICE_ACTION => parse_service_action(head, resources, detail, site),
        _ => parse_task(head, detail, site),
    }
}

fn malformed(head: &Envelope, e: impl std::fmt::Display) -> Error {
    Error::rejected(format!(
        "{} event {} has a malformed detail: {e}",
        head.detail_type, head.id
    ))
}

fn missing(head: &Envelope, field: &str) -> Error {
    Error::rejected(format!(
        "{} event {} is missing {field}",
        head.detail_type, head.id
    ))
}

/// A timestamp of the detail; the envelope's time when absent or unreadable (the
/// formats vary and the time only orders events, so it never costs a page).
fn time_or(head: &Envelope, t: Option<&str>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(head.time)
}

/// The cluster name of `arn:aws:ecs:REGION:ACCOUNT:cluster/NAME`.
fn cluster_name(arn: &str) -> Option<String> {
    let a = Arn::parse(arn)?;
    (a.service == "ecs")
        .then(|| a.resource.strip_prefix("cluster/").map(str::to_owned))
        .flatten()
}

/// The service the event is about: `resources[0]`, in the long form
/// `...:service/CLUSTER/SERVICE`, or the old short form `...:service/SERVICE` with the
/// cluster from `detail.clusterArn`. It must be this stack's service.
fn check_service(
    head: &Envelope,
    resources: &[String],
    cluster_arn: Option<&str>,
    site: Site<'_>,
) -> Result<(), Error> {
    let first = resources
        .first()
        .ok_or_else(|| missing(head, "resources[0] (the service ARN)"))?;
    let arn = Arn::parse(first)
        .filter(|a| a.service == "ecs")
        .ok_or_else(|| {
            Error::rejected(format!(
                "{} event {} names {first:?}, which is not an ECS service ARN",
                head.detail_type, head.id
            ))
        })?;
    if arn.account != site.account || arn.region != site.region {
        return Err(Error::rejected(format!(
            "{} event {} is about {first}, outside this function's account {} and region {}; refused",
            head.detail_type, head.id, site.account, site.region
        )));
    }
    let path = arn.resource.strip_prefix("service/").ok_or_else(|| {
        Error::rejected(format!(
            "{} event {} names {first:?}, which is not an ECS service ARN",
            head.detail_type, head.id
        ))
    })?;
    let (cluster, service) = match path.split_once('/') {
        Some((c, s)) => (Some(c.to_owned()), s),
        None => (cluster_arn.and_then(cluster_name), path),
    };
    let cluster = cluster.ok_or_else(|| {
        Error::rejected(format!(
            "{} event {} names {first} without a cluster, and has no detail.clusterArn",
            head.detail_type, head.id
        ))
    })?;
    if cluster != site.cluster || service != site.service {
        return Err(Error::rejected(format!(
            "{} event {} is about service {service} in cluster {cluster}; this function watches {} in {} only",
            head.detail_type, head.id, site.service, site.cluster
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentDetail {
    event_name: Option<String>,
    deployment_id: Option<String>,
    updated_at: Option<String>,
    reason: Option<String>,
    cluster_arn: Option<String>,
}

fn parse_deployment(
    head: Envelope,
    resources: &[String],
    detail: &Value,
    site: Site<'_>,
) -> Result<EcsEvent, Error> {
    let d: DeploymentDetail =
        serde_json::from_value(detail.clone()).map_err(|e| malformed(&head, e))?;
    check_service(&head, resources, d.cluster_arn.as_deref(), site)?;
    let event_name = d
        .event_name
        .ok_or_else(|| missing(&head, "detail.eventName"))?;
    let deployment_id = d
        .deployment_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing(&head, "detail.deploymentId"))?;
    let reason = d.reason.unwrap_or_default();
    let change = match event_name.as_str() {
        "SERVICE_DEPLOYMENT_IN_PROGRESS" if reason.starts_with(ROLLBACK_PREFIX) => {
            DeploymentChange::Rollback {
                to: rollback_target(&reason),
            }
        }
        "SERVICE_DEPLOYMENT_IN_PROGRESS" => DeploymentChange::InProgress,
        "SERVICE_DEPLOYMENT_COMPLETED" => DeploymentChange::Completed,
        "SERVICE_DEPLOYMENT_FAILED" => DeploymentChange::Failed,
        other => {
            return Err(Error::rejected(format!(
                "{} event {} has eventName {other:?}; deploy-notifier handles SERVICE_DEPLOYMENT_IN_PROGRESS, _COMPLETED and _FAILED",
                head.detail_type, head.id
            )))
        }
    };
    let at = time_or(&head, d.updated_at.as_deref());
    Ok(EcsEvent::Deployment(DeploymentEvent {
        envelope: head,
        change,
        event_name,
        deployment_id,
        reason,
        at,
    }))
}

/// `... rolling back to deploymentId ecs-svc/123.` → `ecs-svc/123`.
fn rollback_target(reason: &str) -> Option<String> {
    let rest = reason.split("deploymentId").nth(1)?.trim();
    let id = rest.trim_end_matches('.').split_whitespace().next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceDetail {
    event_name: Option<String>,
    created_at: Option<String>,
    reason: Option<String>,
    cluster_arn: Option<String>,
}

fn parse_service_action(
    head: Envelope,
    resources: &[String],
    detail: &Value,
    site: Site<'_>,
) -> Result<EcsEvent, Error> {
    let d: ServiceDetail =
        serde_json::from_value(detail.clone()).map_err(|e| malformed(&head, e))?;
    check_service(&head, resources, d.cluster_arn.as_deref(), site)?;
    let event_name = d
        .event_name
        .ok_or_else(|| missing(&head, "detail.eventName"))?;
    let change = if IMPAIRMENTS.contains(&event_name.as_str()) {
        ServiceChange::Impaired
    } else if event_name == STEADY_STATE {
        ServiceChange::SteadyState
    } else {
        return Err(Error::rejected(format!(
            "{} event {} has eventName {event_name:?}; deploy-notifier handles {STEADY_STATE} and {}",
            head.detail_type,
            head.id,
            IMPAIRMENTS.join(", ")
        )));
    };
    let at = time_or(&head, d.created_at.as_deref());
    Ok(EcsEvent::Service(ServiceEvent {
        envelope: head,
        change,
        event_name,
        reason: d.reason.filter(|r| !r.is_empty()),
        at,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskDetail {
    task_arn: Option<String>,
    cluster_arn: Option<String>,
    group: Option<String>,
    last_status: Option<String>,
    task_definition_arn: Option<String>,
    cpu: Option<String>,
    memory: Option<String>,
    started_by: Option<String>,
    stopped_reason: Option<String>,
    stop_code: Option<String>,
    stopped_at: Option<String>,
    capacity_provider_name: Option<String>,
    #[serde(default)]
    containers: Vec<ContainerDetail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerDetail {
    name: Option<String>,
    reason: Option<String>,
    exit_code: Option<i64>,
}

fn parse_task(head: Envelope, detail: &Value, site: Site<'_>) -> Result<EcsEvent, Error> {
    let d: TaskDetail = serde_json::from_value(detail.clone()).map_err(|e| malformed(&head, e))?;
    let task_arn = d
        .task_arn
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing(&head, "detail.taskArn"))?;
    let cluster_arn = d
        .cluster_arn
        .ok_or_else(|| missing(&head, "detail.clusterArn"))?;
    let arn = Arn::parse(&cluster_arn).filter(|a| a.service == "ecs");
    let Some(arn) = arn else {
        return Err(malformed(
            &head,
            format!("clusterArn {cluster_arn:?} is not an ARN"),
        ));
    };
    if arn.account != site.account || arn.region != site.region {
        return Err(Error::rejected(format!(
            "{} event {} is about cluster {cluster_arn}, outside this function's account {} and region {}; refused",
            head.detail_type, head.id, site.account, site.region
        )));
    }
    let cluster = cluster_name(&cluster_arn).unwrap_or_default();
    let group = d.group.unwrap_or_default();
    let expected_group = format!("service:{}", site.service);
    if cluster != site.cluster || group != expected_group {
        return Err(Error::rejected(format!(
            "{} event {} is about a task of {group:?} in cluster {cluster}; this function watches service {} in {} only",
            head.detail_type, head.id, site.service, site.cluster
        )));
    }
    let last_status = d
        .last_status
        .ok_or_else(|| missing(&head, "detail.lastStatus"))?;
    let oom = d.containers.into_iter().find_map(|c| {
        let reason = c.reason?;
        reason.starts_with(OOM_PREFIX).then(|| OomKill {
            container: c.name.unwrap_or_default(),
            reason,
            exit_code: c.exit_code,
        })
    });
    let at = time_or(&head, d.stopped_at.as_deref());
    Ok(EcsEvent::Task(TaskEvent {
        envelope: head,
        task_arn,
        task_definition_arn: d.task_definition_arn,
        last_status,
        cpu: d.cpu,
        memory: d.memory,
        started_by: d.started_by,
        stopped_reason: d.stopped_reason,
        stop_code: d.stop_code,
        capacity_provider: d.capacity_provider_name,
        at,
        oom,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_cause_key_reads_back() {
        for cause in [
            StartCause::ImagePull,
            StartCause::ResourceInit(ResourceInit::Secrets),
            StartCause::ContainerStart,
            StartCause::Capacity,
            StartCause::Other,
        ] {
            let back = StartCause::from_key(cause.key()).unwrap();
            assert_eq!(back.key(), cause.key());
        }
        assert_eq!(StartCause::from_key("nonsense"), None);
    }
    use serde_json::json;

    const SITE: Site<'static> = Site {
        account: "123456789012",
        region: "us-west-1",
        cluster: "menotime-prod-cluster",
        service: "menotime-prod-service",
    };

    fn reference(name: &str) -> Value {
        let path = format!(
            "{}/fixtures/reference/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn parse(v: &Value) -> Result<EcsEvent, Error> {
        parse_ecs_event(v, SITE)
    }

    #[test]
    fn every_reference_deployment_event_parses() {
        let cases = [
            ("ecs-deployment-in-progress", "in_progress"),
            ("ecs-deployment-in-progress-with-clusterArn", "in_progress"),
            ("ecs-deployment-in-progress-rollback", "rollback"),
            ("ecs-deployment-completed", "completed"),
            ("ecs-deployment-failed", "failed"),
        ];
        for (file, change) in cases {
            match parse(&reference(file)).unwrap() {
                EcsEvent::Deployment(d) => {
                    assert_eq!(d.change.name(), change, "{file}");
                    assert_eq!(d.deployment_id, "ecs-svc/4231880795355584839");
                }
                other => panic!("{file}: {other:?}"),
            }
        }
        match parse(&reference("ecs-deployment-in-progress-rollback")).unwrap() {
            EcsEvent::Deployment(d) => {
                assert_eq!(
                    d.change,
                    DeploymentChange::Rollback {
                        to: Some("ecs-svc/6177963417134325488".into())
                    }
                );
                assert_eq!(d.at.to_rfc3339(), "2025-06-02T18:01:00.114+00:00");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_reference_service_action_parses() {
        for (file, change) in [
            ("ecs-service-steady-state", ServiceChange::SteadyState),
            (
                "ecs-service-action-task-start-impaired",
                ServiceChange::Impaired,
            ),
            (
                "ecs-service-action-task-placement-failure",
                ServiceChange::Impaired,
            ),
            (
                "ecs-service-action-discovery-instance-unhealthy",
                ServiceChange::Impaired,
            ),
        ] {
            match parse(&reference(file)).unwrap() {
                EcsEvent::Service(s) => assert_eq!(s.change, change, "{file}"),
                other => panic!("{file}: {other:?}"),
            }
        }
    }

    #[test]
    fn oom_task_stop_is_recognised() {
        let mut v = reference("ecs-task-stopped");
        v["detail"]["group"] = json!("service:menotime-prod-service");
        match parse(&v).unwrap() {
            EcsEvent::Task(t) => {
                let oom = t.oom.clone().unwrap();
                assert_eq!(oom.container, "backend");
                assert_eq!(oom.exit_code, Some(137));
                assert_eq!(t.memory.as_deref(), Some("1024"));
                assert_eq!(t.task_id(), "c13b4cb40f1f4fe4a2971f76ae5a47ad");
                assert_eq!(t.last_status, "STOPPED");
            }
            other => panic!("{other:?}"),
        }
        v["detail"]["containers"][0]["reason"] = json!("Essential container exited");
        match parse(&v).unwrap() {
            EcsEvent::Task(t) => assert_eq!(t.oom, None),
            other => panic!("{other:?}"),
        }
        v["detail"]["containers"] = json!([]);
        assert!(matches!(parse(&v).unwrap(), EcsEvent::Task(t) if t.oom.is_none()));
    }

    #[test]
    fn a_task_that_failed_to_start_is_classified_by_its_reason() {
        let v = reference("ecs-task-stopped-failed-to-start");
        let t = match parse(&v).unwrap() {
            EcsEvent::Task(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(t.start_failure(), Some(StartCause::ImagePull));
        assert_eq!(t.started_by.as_deref(), Some("ecs-svc/5550001234567890123"));
        assert!(t.oom.is_none() && !t.spot_interrupted());
        let cases = [
            ("CannotPullContainerError: pull image manifest has been retried 5 time(s): not found", StartCause::ImagePull),
            ("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 5 time(s): AccessDeniedException", StartCause::ResourceInit(ResourceInit::Secrets)),
            ("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: AccessDeniedException", StartCause::ResourceInit(ResourceInit::Ssm)),
            ("ResourceInitializationError: unable to pull secrets or registry auth: pull command failed: : dial tcp 52.94.0.1:443: i/o timeout", StartCause::ResourceInit(ResourceInit::Network)),
            ("ResourceInitializationError: failed to validate logger args: The specified log group does not exist.", StartCause::ResourceInit(ResourceInit::Logs)),
            ("ResourceInitializationError: something new", StartCause::ResourceInit(ResourceInit::Unspecified)),
            ("CannotStartContainerError: Error response from daemon: failed to create shim task", StartCause::ContainerStart),
            ("Capacity is unavailable at this time. Please try again later or in a different availability zone", StartCause::Capacity),
            ("CannotCreateContainerError: Error response from daemon: devmapper", StartCause::Other),
            ("", StartCause::Other),
        ];
        for (reason, cause) in cases {
            assert_eq!(StartCause::classify(reason), cause, "{reason}");
        }
        // Only a STOPPED task with that stop code failed to start.
        let mut running = t.clone();
        running.last_status = "DEPROVISIONING".into();
        assert_eq!(running.start_failure(), None);
        let mut exited = t.clone();
        exited.stop_code = Some("EssentialContainerExited".into());
        assert_eq!(exited.start_failure(), None);
        let mut spot = t;
        spot.stop_code = Some(SPOT_INTERRUPTION.into());
        assert!(spot.spot_interrupted());
        assert_eq!(spot.start_failure(), None);
    }

    #[test]
    fn the_short_service_arn_form_takes_the_cluster_from_the_detail() {
        let mut v = reference("ecs-deployment-in-progress-with-clusterArn");
        v["resources"] =
            json!(["arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-service"]);
        assert!(parse(&v).is_ok());
        let mut v = reference("ecs-deployment-in-progress");
        v["resources"] =
            json!(["arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-service"]);
        assert!(parse(&v).is_err(), "no cluster anywhere");
    }

    /// Every way an event can be foreign or broken is refused with a sentence.
    #[test]
    fn foreign_and_malformed_events_are_refused() {
        let failed = reference("ecs-deployment-failed");
        let mut task = reference("ecs-task-stopped");
        task["detail"]["group"] = json!("service:menotime-prod-service");
        let cases: Vec<(&str, Value, &str)> = vec![
            ("source", with(&failed, "/source", json!("aws.ecr")), "does not handle"),
            (
                "detail-type",
                with(&failed, "/detail-type", json!("ECS Container Instance State Change")),
                "does not handle",
            ),
            ("account", with(&failed, "/account", json!("999999999999")), "other accounts"),
            ("region", with(&failed, "/region", json!("eu-west-1")), "other regions"),
            (
                "other service",
                with(
                    &failed,
                    "/resources",
                    json!(["arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/other"]),
                ),
                "watches menotime-prod-service",
            ),
            (
                "other cluster",
                with(
                    &failed,
                    "/resources",
                    json!(["arn:aws:ecs:us-west-1:123456789012:service/menotime-staging-cluster/menotime-prod-service"]),
                ),
                "watches menotime-prod-service",
            ),
            (
                "resource in another account",
                with(
                    &failed,
                    "/resources",
                    json!(["arn:aws:ecs:us-west-1:999999999999:service/menotime-prod-cluster/menotime-prod-service"]),
                ),
                "outside",
            ),
            ("no resources", with(&failed, "/resources", json!([])), "missing resources"),
            ("not an arn", with(&failed, "/resources", json!(["menotime"])), "not an ECS service ARN"),
            ("no id", with(&failed, "/id", json!("")), "no id"),
            ("no deployment id", without(&failed, "deploymentId"), "deploymentId"),
            ("no event name", without(&failed, "eventName"), "eventName"),
            (
                "unknown event name",
                with(&failed, "/detail/eventName", json!("SERVICE_DEPLOYMENT_PAUSED")),
                "SERVICE_DEPLOYMENT_PAUSED",
            ),
            ("wrong type", with(&failed, "/detail/reason", json!(42)), "malformed"),
            ("detail not an object", with(&failed, "/detail", json!("{}")), "no detail object"),
            (
                "unknown service action",
                with(
                    &reference("ecs-service-steady-state"),
                    "/detail/eventName",
                    json!("CAPACITY_PROVIDER_STEADY_STATE"),
                ),
                "CAPACITY_PROVIDER_STEADY_STATE",
            ),
            (
                "task of another service",
                with(&task, "/detail/group", json!("service:other")),
                "watches service menotime-prod-service",
            ),
            (
                "task started by RunTask",
                with(&task, "/detail/group", json!("family:menotime-backend")),
                "watches service",
            ),
            (
                "task in another account",
                with(
                    &task,
                    "/detail/clusterArn",
                    json!("arn:aws:ecs:us-west-1:999999999999:cluster/menotime-prod-cluster"),
                ),
                "outside",
            ),
            ("task without arn", without(&task, "taskArn"), "taskArn"),
            ("not an event", json!([1, 2, 3]), "not an EventBridge event"),
        ];
        for (what, event, needle) in cases {
            let err = parse(&event).expect_err(what);
            assert!(matches!(err, Error::Rejected(_)), "{what}: {err:?}");
            assert!(err.to_string().contains(needle), "{what}: {err}");
        }
    }

    fn with(v: &Value, pointer: &str, new: Value) -> Value {
        let mut v = v.clone();
        *v.pointer_mut(pointer).unwrap() = new;
        v
    }

    fn without(v: &Value, key: &str) -> Value {
        let mut v = v.clone();
        v["detail"].as_object_mut().unwrap().remove(key);
        v
    }

    #[test]
    fn unreadable_times_fall_back_to_the_envelope() {
        let v = with(
            &reference("ecs-deployment-failed"),
            "/detail/updatedAt",
            json!("Jun 2, 2025"),
        );
        match parse(&v).unwrap() {
            EcsEvent::Deployment(d) => assert_eq!(d.at, d.envelope.time),
            other => panic!("{other:?}"),
        }
    }
}
