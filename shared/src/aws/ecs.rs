//! ECS: read the service and its revisions, register a revision, update the service.

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder;
use aws_sdk_ecs::types::{ServiceField, Tag, TaskDefinition, TaskDefinitionField};

use super::aws_error;
use crate::arn::Arn;
use crate::domain::deploy::{RevisionFacts, RevisionSummary};
use crate::domain::service::{
    CircuitBreaker, DeploymentAlarms, DeploymentConfiguration, DeploymentState, ServiceEvent,
    ServiceState, ServiceTags,
};
use crate::error::Error;

/// A revision: the facts the decisions need, and the full document (`Doc`) a copy is
/// registered from.
#[derive(Clone, Debug)]
pub struct Revision<D> {
    pub facts: RevisionFacts,
    pub doc: D,
}

/// Every ECS call the functions make, behind one narrow trait.
pub trait EcsApi {
    /// The full task definition, opaque to the domain.
    type Doc: Clone + Send + Sync;

    /// DescribeServices(include=[TAGS]), with the service's tags read into types.
    fn describe_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> impl Future<Output = Result<ServiceState, Error>> + Send;

    /// DescribeTaskDefinition(include=[TAGS]) of an ARN, `family:revision`, or a family
    /// (its latest ACTIVE revision). `container` is the container whose image matters.
    fn describe_revision(
        &self,
        task_definition: &str,
        container: &str,
    ) -> impl Future<Output = Result<Revision<Self::Doc>, Error>> + Send;

    /// DescribeTaskDefinition(include=[TAGS]) of an ARN or `family:revision`, as
    /// notifications show it (every container's image, the task size, the tags).
    fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> impl Future<Output = Result<RevisionSummary, Error>> + Send;

    /// RegisterTaskDefinition: a copy of `base` identical in every field except the
    /// image of `container`, with `tags`.
    fn register_revision(
        &self,
        base: &Self::Doc,
        container: &str,
        image: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<RevisionFacts, Error>> + Send;

    /// UpdateService to `task_definition`; returns the id of the service's PRIMARY
    /// deployment afterwards, when ECS reports one.
    fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> impl Future<Output = Result<Option<String>, Error>> + Send;

    /// UpdateService to `task_definition` with `forceNewDeployment`: a new deployment
    /// even when the service already names that revision (the manual's rollback).
    /// Returns the id of the PRIMARY deployment afterwards, when ECS reports one.
    fn force_deploy(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> impl Future<Output = Result<Option<String>, Error>> + Send;

    /// UpdateService(desiredCount) only: no new deployment, no other change.
    fn set_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired: i32,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// TagResource on the service: adds or overwrites `tags`, in one call.
    fn tag_service(
        &self,
        service_arn: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// TagResource on a task-definition revision (`menotime:deployed`).
    fn tag_revision(
        &self,
        task_definition_arn: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// UntagResource on the service.
    fn untag_service(
        &self,
        service_arn: &str,
        keys: &[String],
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// [`EcsApi`] over the AWS SDK.
#[derive(Clone, Debug)]
pub struct Ecs {
    client: aws_sdk_ecs::Client,
}

impl Ecs {
    pub fn new(client: aws_sdk_ecs::Client) -> Self {
        Self { client }
    }

    /// UpdateService to `task_definition` (`force`: with forceNewDeployment); the
    /// PRIMARY deployment's id afterwards.
    async fn deploy(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
        force: bool,
    ) -> Result<Option<String>, Error> {
        let out = self
            .client
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(task_definition)
            .set_force_new_deployment(force.then_some(true))
            .send()
            .await
            .map_err(|e| aws_error("ecs:UpdateService", e))?;
        Ok(primary_deployment(&out))
    }
}

/// The full task definition as DescribeTaskDefinition returned it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskDefinitionDoc {
    pub task_definition: TaskDefinition,
    pub tags: Vec<Tag>,
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// The facts of a task definition, for `container`.
pub fn facts(td: &TaskDefinition, tags: &[Tag], container: &str) -> Result<RevisionFacts, Error> {
    let arn = td.task_definition_arn().unwrap_or_default().to_owned();
    let image = td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(container))
        .and_then(|c| c.image())
        .ok_or_else(|| {
            Error::Misconfigured(format!(
                "task definition {arn} has no container named {container:?} with an image; check CONTAINER_NAME"
            ))
        })?
        .to_owned();
    let family = td
        .family()
        .map(str::to_owned)
        .or_else(|| Arn::parse(&arn).and_then(|a| a.task_definition().map(|(f, _)| f.to_owned())))
        .unwrap_or_default();
    Ok(RevisionFacts {
        arn,
        family,
        revision: u32::try_from(td.revision()).unwrap_or(0),
        image,
        tags: tag_map(tags),
    })
}

/// Fields of [`TaskDefinition`] copied into the new revision. Together with
/// [`NOT_COPIED`] they must name every field the SDK has; a test checks it, so a field
/// added by a future SDK cannot be dropped silently.
pub const COPIED: &[&str] = &[
    "family",
    "task_role_arn",
    "execution_role_arn",
    "network_mode",
    "container_definitions",
    "volumes",
    "placement_constraints",
    "requires_compatibilities",
    "cpu",
    "memory",
    "pid_mode",
    "ipc_mode",
    "proxy_configuration",
    "inference_accelerators",
    "ephemeral_storage",
    "runtime_platform",
    "enable_fault_injection",
];

/// Read-only fields ECS sets on every revision itself.
pub const NOT_COPIED: &[&str] = &[
    "task_definition_arn",
    "revision",
    "status",
    "requires_attributes",
    "compatibilities",
    "registered_at",
    "deregistered_at",
    "delete_requested_at",
    "registered_by",
];

fn non_empty<T: Clone>(v: &Option<Vec<T>>) -> Option<Vec<T>> {
    v.clone().filter(|l| !l.is_empty())
}

/// Fills a RegisterTaskDefinition request with a copy of `td` whose `container` runs
/// `image`. Every other field, of the task and of every container, is carried over.
pub fn copy_with_image(
    req: RegisterTaskDefinitionFluentBuilder,
    td: &TaskDefinition,
    container: &str,
    image: &str,
    tags: &[(String, String)],
) -> Result<RegisterTaskDefinitionFluentBuilder, Error> {
    let mut containers = td.container_definitions.clone().unwrap_or_default();
    let target = containers
        .iter_mut()
        .find(|c| c.name.as_deref() == Some(container))
        .ok_or_else(|| {
            Error::Misconfigured(format!(
                "task definition {} has no container named {container:?}; check CONTAINER_NAME",
                td.task_definition_arn().unwrap_or("?")
            ))
        })?;
    target.image = Some(image.to_owned());
    let tags: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    // Empty lists are sent as absent: RegisterTaskDefinition rejects some empty
    // lists (inferenceAccelerators) and treats the others as absent anyway.
    #[allow(deprecated)] // inference accelerators: copied for fidelity, absent in practice
    Ok(req
        .set_family(td.family.clone())
        .set_task_role_arn(td.task_role_arn.clone())
        .set_execution_role_arn(td.execution_role_arn.clone())
        .set_network_mode(td.network_mode.clone())
        .set_container_definitions(Some(containers))
        .set_volumes(non_empty(&td.volumes))
        .set_placement_constraints(non_empty(&td.placement_constraints))
        .set_requires_compatibilities(non_empty(&td.requires_compatibilities))
        .set_cpu(td.cpu.clone())
        .set_memory(td.memory.clone())
        .set_pid_mode(td.pid_mode.clone())
        .set_ipc_mode(td.ipc_mode.clone())
        .set_proxy_configuration(td.proxy_configuration.clone())
        .set_inference_accelerators(non_empty(&td.inference_accelerators))
        .set_ephemeral_storage(td.ephemeral_storage.clone())
        .set_runtime_platform(td.runtime_platform.clone())
        .set_enable_fault_injection(td.enable_fault_injection)
        .set_tags(Some(tags).filter(|t| !t.is_empty())))
}

/// DescribeServices(include=[TAGS]) of one ACTIVE service.
async fn describe_service(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<ServiceState, Error> {
    let out = client
        .describe_services()
        .cluster(cluster)
        .services(service)
        .include(ServiceField::Tags)
        .send()
        .await
        .map_err(|e| aws_error("ecs:DescribeServices", e))?;
    let Some(svc) = out
        .services()
        .iter()
        .find(|s| s.service_name() == Some(service))
    else {
        let why = out
            .failures()
            .iter()
            .filter_map(|f| f.reason())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::Misconfigured(format!(
            "ECS service {service} not found in cluster {cluster} ({}); check CLUSTER_NAME and SERVICE_NAME",
            if why.is_empty() { "no reason given" } else { &why }
        )));
    };
    let status = svc.status().unwrap_or_default().to_owned();
    if status != "ACTIVE" {
        return Err(Error::Misconfigured(format!(
            "ECS service {service} in cluster {cluster} is {status}, not ACTIVE; nothing can be deployed to it"
        )));
    }
    Ok(ServiceState {
        arn: svc.service_arn().unwrap_or_default().to_owned(),
        status,
        task_definition: svc.task_definition().unwrap_or_default().to_owned(),
        tags: ServiceTags::read(tag_map(svc.tags())),
        deployments: svc
            .deployments()
            .iter()
            .map(|d| DeploymentState {
                id: d.id().unwrap_or_default().to_owned(),
                status: d.status().unwrap_or_default().to_owned(),
                rollout_state: d.rollout_state().map(|r| r.as_str().to_owned()),
                task_definition: d.task_definition().unwrap_or_default().to_owned(),
                created_at: d.created_at().and_then(super::to_chrono),
                updated_at: d.updated_at().and_then(super::to_chrono),
            })
            .collect(),
        desired_count: svc.desired_count(),
        running_count: svc.running_count(),
        pending_count: svc.pending_count(),
        deployment_configuration: svc
            .deployment_configuration()
            .map(|c| DeploymentConfiguration {
                maximum_percent: c.maximum_percent(),
                minimum_healthy_percent: c.minimum_healthy_percent(),
                circuit_breaker: c.deployment_circuit_breaker().map(|b| CircuitBreaker {
                    enable: b.enable(),
                    rollback: b.rollback(),
                }),
                alarms: c.alarms().map(|a| DeploymentAlarms {
                    names: a.alarm_names().to_vec(),
                    enable: a.enable(),
                    rollback: a.rollback(),
                }),
            }),
        security_groups: svc
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration())
            .map(|v| v.security_groups().to_vec())
            .unwrap_or_default(),
        events: latest_events(svc.events()),
    })
}

/// The id of the PRIMARY deployment in an UpdateService answer.
fn primary_deployment(
    out: &aws_sdk_ecs::operation::update_service::UpdateServiceOutput,
) -> Option<String> {
    out.service().and_then(|s| {
        s.deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
            .and_then(|d| d.id())
            .map(str::to_owned)
    })
}

/// The service's latest events, newest first (ECS lists them so), at most
/// [`ServiceState::EVENTS_KEPT`].
fn latest_events(events: &[aws_sdk_ecs::types::ServiceEvent]) -> Vec<ServiceEvent> {
    let mut out: Vec<ServiceEvent> = events
        .iter()
        .filter_map(|e| {
            Some(ServiceEvent {
                at: e.created_at().and_then(super::to_chrono),
                message: e.message()?.to_owned(),
            })
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.at));
    out.truncate(ServiceState::EVENTS_KEPT);
    out
}

impl EcsApi for Ecs {
    type Doc = TaskDefinitionDoc;

    async fn describe_service(&self, cluster: &str, service: &str) -> Result<ServiceState, Error> {
        describe_service(&self.client, cluster, service).await
    }

    async fn describe_revision(
        &self,
        task_definition: &str,
        container: &str,
    ) -> Result<Revision<TaskDefinitionDoc>, Error> {
        let out = self
            .client
            .describe_task_definition()
            .task_definition(task_definition)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| aws_error("ecs:DescribeTaskDefinition", e))?;
        let td = out.task_definition.ok_or_else(|| Error::Aws {
            operation: "ecs:DescribeTaskDefinition",
            message: format!("no task definition returned for {task_definition}"),
            advice: "Check that the service's task definition still exists",
            retry: crate::error::Retry::Never,
        })?;
        let tags = out.tags.unwrap_or_default();
        Ok(Revision {
            facts: facts(&td, &tags, container)?,
            doc: TaskDefinitionDoc {
                task_definition: td,
                tags,
            },
        })
    }

    async fn register_revision(
        &self,
        base: &TaskDefinitionDoc,
        container: &str,
        image: &str,
        tags: &[(String, String)],
    ) -> Result<RevisionFacts, Error> {
        let req = copy_with_image(
            self.client.register_task_definition(),
            &base.task_definition,
            container,
            image,
            tags,
        )?;
        let out = req
            .send()
            .await
            .map_err(|e| aws_error("ecs:RegisterTaskDefinition", e))?;
        let td = out.task_definition.ok_or_else(|| Error::Aws {
            operation: "ecs:RegisterTaskDefinition",
            message: "ECS returned no task definition".into(),
            advice: "Retry; if it persists, register the revision by hand",
            retry: crate::error::Retry::Later,
        })?;
        facts(&td, out.tags.as_deref().unwrap_or_default(), container)
    }

    async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<Option<String>, Error> {
        self.deploy(cluster, service, task_definition, false).await
    }

    async fn force_deploy(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<Option<String>, Error> {
        self.deploy(cluster, service, task_definition, true).await
    }

    async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<RevisionSummary, Error> {
        let out = self
            .client
            .describe_task_definition()
            .task_definition(task_definition)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| aws_error("ecs:DescribeTaskDefinition", e))?;
        let td = out.task_definition().ok_or_else(|| Error::Aws {
            operation: "ecs:DescribeTaskDefinition",
            message: format!("no task definition returned for {task_definition}"),
            advice: "Check that the revision still exists",
            retry: crate::error::Retry::Never,
        })?;
        Ok(summary(td, out.tags()))
    }

    async fn tag_service(&self, service_arn: &str, tags: &[(String, String)]) -> Result<(), Error> {
        self.client
            .tag_resource()
            .resource_arn(service_arn)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| aws_error("ecs:TagResource", e))?;
        Ok(())
    }

    async fn tag_revision(&self, arn: &str, tags: &[(String, String)]) -> Result<(), Error> {
        // The same call as on the service; the ARN says what is tagged.
        self.tag_service(arn, tags).await
    }

    async fn untag_service(&self, service_arn: &str, keys: &[String]) -> Result<(), Error> {
        self.client
            .untag_resource()
            .resource_arn(service_arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| aws_error("ecs:UntagResource", e))?;
        Ok(())
    }

    async fn set_desired_count(
        &self,
        cluster: &str,
        service: &str,
        desired: i32,
    ) -> Result<(), Error> {
        self.client
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(desired)
            .send()
            .await
            .map_err(|e| aws_error("ecs:UpdateService", e))?;
        Ok(())
    }
}

/// The summary of a task definition, for notifications.
pub fn summary(td: &TaskDefinition, tags: &[Tag]) -> RevisionSummary {
    let arn = td.task_definition_arn().unwrap_or_default().to_owned();
    let (family, revision) = Arn::parse(&arn)
        .as_ref()
        .and_then(|a| a.task_definition().map(|(f, r)| (f.to_owned(), r)))
        .unwrap_or_else(|| {
            (
                td.family().unwrap_or_default().to_owned(),
                u32::try_from(td.revision()).unwrap_or(0),
            )
        });
    RevisionSummary {
        arn,
        family,
        revision,
        images: td
            .container_definitions()
            .iter()
            .map(|c| {
                (
                    c.name().unwrap_or_default().to_owned(),
                    c.image().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        cpu: td.cpu().map(str::to_owned),
        memory: td.memory().map(str::to_owned),
        tags: tag_map(tags),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `Foo { a: None, b: None }` → {a, b}
    fn debug_fields(debug: &str) -> BTreeSet<String> {
        let inner = &debug[debug.find('{').unwrap() + 1..debug.rfind('}').unwrap()];
        inner
            .split(", ")
            .map(|f| f.split(':').next().unwrap().trim().to_owned())
            .collect()
    }

    #[test]
    fn the_latest_service_events_are_kept_newest_first() {
        let event = |secs: i64, message: &str| {
            aws_sdk_ecs::types::ServiceEvent::builder()
                .id(format!("e{secs}"))
                .created_at(aws_smithy_types::DateTime::from_secs(secs))
                .message(message)
                .build()
        };
        let mut events: Vec<_> = (0..8)
            .map(|i| event(1_764_180_000 + i * 60, &format!("event {i}")))
            .collect();
        events.push(
            aws_sdk_ecs::types::ServiceEvent::builder()
                .id("no-message")
                .build(),
        );
        events.reverse();
        events.swap(0, 3);
        let kept = latest_events(&events);
        assert_eq!(kept.len(), ServiceState::EVENTS_KEPT);
        assert_eq!(
            kept.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
            ["event 7", "event 6", "event 5", "event 4", "event 3"]
        );
        assert_eq!(
            kept[0].at,
            chrono::DateTime::from_timestamp(1_764_180_000 + 7 * 60, 0)
        );
    }

    #[test]
    fn every_task_definition_field_is_either_copied_or_read_only() {
        let sdk = debug_fields(&format!("{:?}", TaskDefinition::builder().build()));
        let ours: BTreeSet<String> = COPIED
            .iter()
            .chain(NOT_COPIED)
            .map(|s| s.to_string())
            .collect();
        assert_eq!(sdk, ours, "the SDK's TaskDefinition fields changed: decide for each new field whether it is copied");
    }

    #[test]
    fn every_register_field_is_filled() {
        let input =
            aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput::builder(
            )
            .build()
            .unwrap();
        let sdk = debug_fields(&format!("{input:?}"));
        let ours: BTreeSet<String> = COPIED
            .iter()
            .map(|s| s.to_string())
            .chain(["tags".to_owned()])
            .collect();
        assert_eq!(
            sdk, ours,
            "RegisterTaskDefinition gained a field: copy it in copy_with_image"
        );
    }
}
