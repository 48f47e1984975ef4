//! scan-gate through the real AWS adapters, with the SDK's HTTP layer replaced by
//! aws-smithy-mocks: the exact requests each path sends, in order, and what happens
//! when AWS throttles or fails half-way. (moto cannot fault on demand; these can.)
#![cfg(test)]

mod common;

use std::sync::{Arc, Mutex};

use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
use aws_sdk_ecs::operation::register_task_definition::{
    RegisterTaskDefinitionInput, RegisterTaskDefinitionOutput,
};
use aws_sdk_ecs::operation::tag_resource::{TagResourceInput, TagResourceOutput};
use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, Deployment, DeploymentCircuitBreaker,
    DeploymentConfiguration, DeploymentRolloutState, EphemeralStorage, HealthCheck, KeyValuePair,
    LogConfiguration, LogDriver, MountPoint, NetworkMode, PortMapping, RuntimePlatform, Secret,
    Service, ServiceField, Tag, TaskDefinition, TaskDefinitionField, TransportProtocol, Volume,
};
use aws_sdk_sns::operation::publish::{PublishInput, PublishOutput};
use aws_smithy_mocks::mock;
use serde_json::{json, Value};

use menotime_shared::aws::{ecr::Ecr, ecs::Ecs, sns::Sns};
use menotime_shared::{mock_client, Retry};
use scan_gate::{Decision, ScanGate};

const ACCOUNT: &str = "123456789012";
const CLUSTER: &str = "menotime-prod-cluster";
const SERVICE: &str = "menotime-prod-service";
const FAMILY: &str = "menotime-backend-prod";
const DIGEST: &str = "sha256:093db6dbbe70b9445a1a065cb426f65c1d4ba77bb53e65f52c8d31120187c7cb";
const REGISTRY: &str = "123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend";
const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;

fn td_arn(n: i32) -> String {
    format!("arn:aws:ecs:us-west-1:{ACCOUNT}:task-definition/{FAMILY}:{n}")
}

fn pinned() -> String {
    format!("{REGISTRY}@{DIGEST}")
}

fn kv(name: &str, value: &str) -> KeyValuePair {
    KeyValuePair::builder().name(name).value(value).build()
}

/// The manual's prod task definition, as DescribeTaskDefinition returns it, plus the
/// fields the manual leaves at their defaults.
fn prod_task_definition(revision: i32, image: &str) -> TaskDefinition {
    let container = ContainerDefinition::builder()
        .name("menotime-backend")
        .image(image)
        .cpu(0)
        .essential(true)
        .port_mappings(
            PortMapping::builder()
                .container_port(8000)
                .host_port(8000)
                .protocol(TransportProtocol::Tcp)
                .build(),
        )
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", "/aws/ecs/menotime-prod")
                .options("awslogs-region", "us-west-1")
                .options("awslogs-stream-prefix", "ecs")
                .options("awslogs-datetime-format", "%Y-%m-%d %H:%M:%S")
                .build()
                .unwrap(),
        )
        .environment(kv("ENVIRONMENT", "production"))
        .environment(kv("LOG_LEVEL", "WARNING"))
        .environment(kv("API_DEBUG", "false"))
        .environment(kv("SENTRY_SAMPLE_RATE", "0.1"))
        .secrets(
            Secret::builder()
                .name("DATABASE_URL")
                .value_from("arn:aws:secretsmanager:us-west-1:123456789012:secret:menotime/db/prod")
                .build()
                .unwrap(),
        )
        .secrets(
            Secret::builder()
                .name("API_KEY_STRIPE")
                .value_from(
                    "arn:aws:secretsmanager:us-west-1:123456789012:secret:menotime/api/stripe-live",
                )
                .build()
                .unwrap(),
        )
        .health_check(
            HealthCheck::builder()
                .command("CMD-SHELL")
                .command("curl -f http://localhost:8000/health || exit 1")
                .interval(30)
                .timeout(5)
                .retries(3)
                .start_period(60)
                .build()
                .unwrap(),
        )
        .mount_points(
            MountPoint::builder()
                .source_volume("scratch")
                .container_path("/tmp/scratch")
                .build(),
        )
        .build();
    let sidecar = ContainerDefinition::builder()
        .name("otel-collector")
        .image("public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0")
        .essential(false)
        .build();
    TaskDefinition::builder()
        .task_definition_arn(td_arn(revision))
        .family(FAMILY)
        .revision(revision)
        .task_role_arn("arn:aws:iam::123456789012:role/menotime-ecs-task-role")
        .execution_role_arn("arn:aws:iam::123456789012:role/ecsTaskExecutionRole")
        .network_mode(NetworkMode::Awsvpc)
        .container_definitions(container)
        .container_definitions(sidecar)
        .volumes(Volume::builder().name("scratch").build())
        .requires_compatibilities(Compatibility::Fargate)
        .compatibilities(Compatibility::Ec2)
        .compatibilities(Compatibility::Fargate)
        .cpu("1024")
        .memory("2048")
        .runtime_platform(
            RuntimePlatform::builder()
                .cpu_architecture(aws_sdk_ecs::types::CpuArchitecture::X8664)
                .operating_system_family(aws_sdk_ecs::types::OsFamily::Linux)
                .build(),
        )
        .ephemeral_storage(EphemeralStorage::builder().size_in_gib(30).build())
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .registered_at(aws_smithy_types::DateTime::from_secs(1_780_000_000))
        .registered_by("arn:aws:iam::123456789012:role/deployer")
        .build()
}

/// DescribeTaskDefinition of the running revision :7 (v1.2.3, by tag).
fn running_revision() -> DescribeTaskDefinitionOutput {
    DescribeTaskDefinitionOutput::builder()
        .task_definition(prod_task_definition(7, &format!("{REGISTRY}:v1.2.3")))
        .build()
}

/// RegisterTaskDefinition's answer: revision :8 with the pinned image.
fn registered_revision() -> RegisterTaskDefinitionOutput {
    RegisterTaskDefinitionOutput::builder()
        .task_definition(prod_task_definition(8, &pinned()))
        .build()
}

fn td_tags() -> Vec<Tag> {
    vec![
        Tag::builder().key("application").value("menotime").build(),
        Tag::builder()
            .key("aws:cloudformation:stack-name")
            .value("menotime-prod")
            .build(),
    ]
}

fn service_output(
    task_definition: &str,
    rollout: DeploymentRolloutState,
) -> DescribeServicesOutput {
    DescribeServicesOutput::builder()
        .services(
            Service::builder()
                .service_arn(format!(
                    "arn:aws:ecs:us-west-1:{ACCOUNT}:service/{CLUSTER}/{SERVICE}"
                ))
                .service_name(SERVICE)
                .status("ACTIVE")
                .task_definition(task_definition)
                .tags(Tag::builder().key("environment").value("prod").build())
                // The manual's prod configuration: the circuit breaker with rollback,
                // 100% minimum healthy.
                .deployment_configuration(
                    DeploymentConfiguration::builder()
                        .maximum_percent(150)
                        .minimum_healthy_percent(100)
                        .deployment_circuit_breaker(
                            DeploymentCircuitBreaker::builder()
                                .enable(true)
                                .rollback(true)
                                .build(),
                        )
                        .build(),
                )
                .deployments(
                    Deployment::builder()
                        .id("ecs-svc/6177963417134325488")
                        .status("PRIMARY")
                        .rollout_state(rollout)
                        .task_definition(task_definition)
                        .build(),
                )
                .build(),
        )
        .build()
}

fn scan_event() -> Value {
    json!({
        "version": "0", "id": "5c0a1e7d-0001-4e3a-9b1d-2f6c8e4a0001", "detail-type": "ECR Image Scan",
        "source": "aws.ecr", "account": ACCOUNT, "time": "2026-11-25T09:46:41Z", "region": "us-west-1",
        "resources": ["arn:aws:ecr:us-west-1:123456789012:repository/menotime/backend"],
        "detail": {"scan-status": "COMPLETE", "repository-name": "menotime/backend",
                   "finding-severity-counts": {"LOW": 3}, "image-digest": DIGEST, "image-tags": ["v1.2.4", "latest"]}
    })
}

#[tokio::test]
async fn a_deployment_sends_exactly_these_six_requests() {
    let registered: Arc<Mutex<Option<RegisterTaskDefinitionInput>>> = Arc::default();
    let published: Arc<Mutex<Option<PublishInput>>> = Arc::default();

    let describe_services = mock!(aws_sdk_ecs::Client::describe_services)
        .match_requests(|r| {
            r.cluster() == Some(CLUSTER)
                && r.services() == [SERVICE]
                && r.include() == [ServiceField::Tags]
        })
        .then_output(|| service_output(&td_arn(7), DeploymentRolloutState::Completed));
    // The family's latest revision is the running one: one describe suffices.
    let describe_latest = mock!(aws_sdk_ecs::Client::describe_task_definition)
        .match_requests(|r| {
            r.task_definition() == Some(FAMILY) && r.include() == [TaskDefinitionField::Tags]
        })
        .then_output(|| {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(prod_task_definition(7, &format!("{REGISTRY}:v1.2.3")))
                .set_tags(Some(td_tags()))
                .build()
        });
    let reg = registered.clone();
    let register =
        mock!(aws_sdk_ecs::Client::register_task_definition).then_compute_output(move |input| {
            *reg.lock().unwrap() = Some(input.clone());
            RegisterTaskDefinitionOutput::builder()
                .task_definition(prod_task_definition(8, &pinned()))
                .build()
        });
    let update = mock!(aws_sdk_ecs::Client::update_service)
        .match_requests(|r| {
            r.cluster() == Some(CLUSTER)
                && r.service() == Some(SERVICE)
                && r.task_definition() == Some(td_arn(8).as_str())
                && r.desired_count().is_none()
                && r.force_new_deployment().is_none()
        })
        .then_output(|| UpdateServiceOutput::builder().build());
    let marked: Arc<Mutex<Option<TagResourceInput>>> = Arc::default();
    let m = marked.clone();
    let mark = mock!(aws_sdk_ecs::Client::tag_resource).then_compute_output(move |input| {
        *m.lock().unwrap() = Some(input.clone());
        TagResourceOutput::builder().build()
    });
    let publ = published.clone();
    let publish = mock!(aws_sdk_sns::Client::publish).then_compute_output(move |input| {
        *publ.lock().unwrap() = Some(input.clone());
        PublishOutput::builder().message_id("m-1").build()
    });

    let ecs = mock_client!(
        aws_sdk_ecs,
        [
            &describe_services,
            &describe_latest,
            &register,
            &update,
            &mark
        ]
    );
    let ecr = mock_client!(aws_sdk_ecr, Vec::<&aws_smithy_mocks::Rule>::new());
    let sns = mock_client!(aws_sdk_sns, [&publish]);
    let gate = ScanGate::new(
        common::prod_config(&[]),
        Ecs::new(ecs),
        Ecr::new(ecr),
        Sns::new(sns),
    );

    let out = gate.handle(scan_event()).await.unwrap();
    assert_eq!(out.decision, Decision::Deployed, "{}", out.reason);
    for (name, rule) in [
        ("DescribeServices", &describe_services),
        ("DescribeTaskDefinition", &describe_latest),
        ("RegisterTaskDefinition", &register),
        ("UpdateService", &update),
        ("TagResource", &mark),
        ("Publish", &publish),
    ] {
        assert_eq!(rule.num_calls(), 1, "{name}");
    }

    // After UpdateService, before the notification: the new revision is marked
    // deployed (so a rollback of it is never undone by a later event), nothing else.
    let m = marked.lock().unwrap().take().unwrap();
    assert_eq!(m.resource_arn(), Some(td_arn(8).as_str()));
    assert_eq!(m.tags().len(), 1);
    assert_eq!(m.tags()[0].key(), Some("menotime:deployed"));
    let v = m.tags()[0].value().unwrap();
    assert!(v.starts_with("at=20"), "{v}");

    // RegisterTaskDefinition: the running revision, field for field, but the image.
    let input = registered.lock().unwrap().take().unwrap();
    let running = prod_task_definition(7, &format!("{REGISTRY}:v1.2.3"));
    assert_eq!(input.family(), running.family());
    assert_eq!(input.task_role_arn(), running.task_role_arn());
    assert_eq!(input.execution_role_arn(), running.execution_role_arn());
    assert_eq!(input.network_mode(), running.network_mode());
    assert_eq!(input.cpu(), running.cpu());
    assert_eq!(input.memory(), running.memory());
    assert_eq!(
        input.requires_compatibilities(),
        running.requires_compatibilities()
    );
    assert_eq!(input.runtime_platform(), running.runtime_platform());
    assert_eq!(input.ephemeral_storage(), running.ephemeral_storage());
    assert_eq!(input.volumes(), running.volumes());
    assert_eq!(
        input.placement_constraints(),
        running.placement_constraints()
    );
    let mut expected = running.container_definitions().to_vec();
    expected[0].image = Some(pinned());
    assert_eq!(
        input.container_definitions(),
        expected.as_slice(),
        "only the app container's image changes"
    );
    let tags: Vec<(&str, &str)> = input
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert!(tags.contains(&("application", "menotime")));
    assert!(tags.contains(&("menotime:image-tag", "v1.2.4")));
    assert!(tags.contains(&("menotime:scanned-at", "2026-11-25T09:46:41Z")));
    assert!(
        !tags.iter().any(|(k, _)| k.starts_with("aws:")),
        "aws: tags are reserved: {tags:?}"
    );

    // Publish: MessageStructure=json with the four String attributes.
    let p = published.lock().unwrap().take().unwrap();
    assert_eq!(
        p.topic_arn(),
        Some("arn:aws:sns:us-west-1:123456789012:menotime-prod-notify")
    );
    assert_eq!(p.message_structure(), Some("json"));
    assert_eq!(
        p.subject(),
        Some("[PROD] Deploying v1.2.4 to menotime-prod-service")
    );
    let attrs = p.message_attributes().unwrap();
    for (k, v) in [
        ("severity", "info"),
        ("environment", "prod"),
        ("event_type", "deploy.started"),
        ("action", "notify"),
    ] {
        assert_eq!(attrs[k].data_type(), "String");
        assert_eq!(attrs[k].string_value(), Some(v), "{k}");
    }
    let message: Value = serde_json::from_str(p.message().unwrap()).unwrap();
    for k in ["default", "email", "sms", "sqs", "lambda", "https"] {
        assert!(message[k].is_string(), "{k}");
    }
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_and_the_deploy_goes_on() {
    let describe_services = mock!(aws_sdk_ecs::Client::describe_services)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(2)
        .output(|| service_output(&td_arn(7), DeploymentRolloutState::Completed))
        .build();
    let describe_latest =
        mock!(aws_sdk_ecs::Client::describe_task_definition).then_output(running_revision);
    let register =
        mock!(aws_sdk_ecs::Client::register_task_definition).then_output(registered_revision);
    let update = mock!(aws_sdk_ecs::Client::update_service)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .output(|| UpdateServiceOutput::builder().build())
        .build();
    let mark = mock!(aws_sdk_ecs::Client::tag_resource)
        .then_output(|| TagResourceOutput::builder().build());
    let publish = mock!(aws_sdk_sns::Client::publish)
        .sequence()
        .http_status(
            400,
            Some(
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"
                    .into(),
            ),
        )
        .output(|| PublishOutput::builder().message_id("m-1").build())
        .build();

    let ecs = mock_client!(
        aws_sdk_ecs,
        [
            &describe_services,
            &describe_latest,
            &register,
            &update,
            &mark
        ]
    );
    let gate = ScanGate::new(
        common::prod_config(&[]),
        Ecs::new(ecs),
        Ecr::new(mock_client!(
            aws_sdk_ecr,
            Vec::<&aws_smithy_mocks::Rule>::new()
        )),
        Sns::new(mock_client!(aws_sdk_sns, [&publish])),
    );
    let out = gate.handle(scan_event()).await.unwrap();
    assert_eq!(out.decision, Decision::Deployed);
    assert_eq!(
        describe_services.num_calls(),
        3,
        "two throttles, then success"
    );
    assert_eq!(update.num_calls(), 2);
    assert_eq!(publish.num_calls(), 2);
    assert_eq!(register.num_calls(), 1);
}

#[tokio::test]
async fn throttling_that_outlasts_the_sdk_fails_the_invocation_for_lambda_to_retry() {
    let describe_services = mock!(aws_sdk_ecs::Client::describe_services)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .repeatedly()
        .build();
    let ecs = mock_client!(aws_sdk_ecs, [&describe_services]);
    let gate = ScanGate::new(
        common::prod_config(&[]),
        Ecs::new(ecs),
        Ecr::new(mock_client!(
            aws_sdk_ecr,
            Vec::<&aws_smithy_mocks::Rule>::new()
        )),
        Sns::new(mock_client!(
            aws_sdk_sns,
            Vec::<&aws_smithy_mocks::Rule>::new()
        )),
    );
    let err = gate.handle(scan_event()).await.unwrap_err();
    assert_eq!(err.retry(), Retry::Later, "{err}");
    assert_eq!(err.kind(), "AwsTransientError");
    assert!(err.to_string().contains("ecs:DescribeServices"), "{err}");
    assert_eq!(describe_services.num_calls(), 3, "the SDK's 3 attempts");
}

/// UpdateService fails for good after RegisterTaskDefinition succeeded. The retry of the
/// same event finds the revision the first attempt left and updates the service to it,
/// registering nothing.
#[tokio::test]
async fn update_service_failing_after_register_is_finished_by_the_retry() {
    // First attempt.
    let describe_services = mock!(aws_sdk_ecs::Client::describe_services)
        .then_output(|| service_output(&td_arn(7), DeploymentRolloutState::Completed));
    let describe_latest =
        mock!(aws_sdk_ecs::Client::describe_task_definition).then_output(running_revision);
    let register =
        mock!(aws_sdk_ecs::Client::register_task_definition).then_output(registered_revision);
    let update_fails = mock!(aws_sdk_ecs::Client::update_service)
        .sequence()
        .http_status(
            500,
            Some(r#"{"__type":"ServerException","message":"internal error"}"#.into()),
        )
        .repeatedly()
        .build();
    let ecs = mock_client!(
        aws_sdk_ecs,
        [
            &describe_services,
            &describe_latest,
            &register,
            &update_fails
        ]
    );
    let gate = ScanGate::new(
        common::prod_config(&[]),
        Ecs::new(ecs),
        Ecr::new(mock_client!(
            aws_sdk_ecr,
            Vec::<&aws_smithy_mocks::Rule>::new()
        )),
        Sns::new(mock_client!(
            aws_sdk_sns,
            Vec::<&aws_smithy_mocks::Rule>::new()
        )),
    );
    let err = gate.handle(scan_event()).await.unwrap_err();
    assert_eq!(err.retry(), Retry::Later, "{err}");
    assert!(err.to_string().contains("ecs:UpdateService"));
    assert_eq!(register.num_calls(), 1);

    // The retry: the service still runs :7, the family's newest revision is :8 with the
    // digest. Sequential rules: a RegisterTaskDefinition here would hit no rule and fail.
    let describe_services = mock!(aws_sdk_ecs::Client::describe_services)
        .then_output(|| service_output(&td_arn(7), DeploymentRolloutState::Completed));
    let describe_latest = mock!(aws_sdk_ecs::Client::describe_task_definition)
        .match_requests(|r| r.task_definition() == Some(FAMILY))
        .then_output(|| {
            // What the first attempt registered, with scan-gate's provenance tags.
            DescribeTaskDefinitionOutput::builder()
                .task_definition(prod_task_definition(8, &pinned()))
                .tags(
                    Tag::builder()
                        .key("menotime:image-tag")
                        .value("v1.2.4")
                        .build(),
                )
                .tags(
                    Tag::builder()
                        .key("menotime:source-event")
                        .value("5c0a1e7d-0001-4e3a-9b1d-2f6c8e4a0001")
                        .build(),
                )
                .build()
        });
    let describe_running = mock!(aws_sdk_ecs::Client::describe_task_definition)
        .match_requests(|r| r.task_definition() == Some(td_arn(7).as_str()))
        .then_output(running_revision);
    let update = mock!(aws_sdk_ecs::Client::update_service)
        .match_requests(|r| r.task_definition() == Some(td_arn(8).as_str()))
        .then_output(|| UpdateServiceOutput::builder().build());
    let mark = mock!(aws_sdk_ecs::Client::tag_resource)
        .match_requests(|r| r.resource_arn() == Some(td_arn(8).as_str()))
        .then_output(|| TagResourceOutput::builder().build());
    let publish = mock!(aws_sdk_sns::Client::publish)
        .then_output(|| PublishOutput::builder().message_id("m").build());
    let ecs = mock_client!(
        aws_sdk_ecs,
        [
            &describe_services,
            &describe_latest,
            &describe_running,
            &update,
            &mark
        ]
    );
    let gate = ScanGate::new(
        common::prod_config(&[]),
        Ecs::new(ecs),
        Ecr::new(mock_client!(
            aws_sdk_ecr,
            Vec::<&aws_smithy_mocks::Rule>::new()
        )),
        Sns::new(mock_client!(aws_sdk_sns, [&publish])),
    );
    let out = gate.handle(scan_event()).await.unwrap();
    assert_eq!(out.decision, Decision::Deployed);
    assert!(out.reused_revision);
    assert_eq!(out.task_definition.as_deref(), Some(td_arn(8).as_str()));
    for rule in [
        &describe_services,
        &describe_latest,
        &describe_running,
        &update,
        &mark,
        &publish,
    ] {
        assert_eq!(rule.num_calls(), 1);
    }
}

#[tokio::test]
async fn a_missing_permission_is_a_permanent_error_that_names_the_fix() {
    let describe_services = mock!(aws_sdk_ecs::Client::describe_services).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"AccessDeniedException","message":"User is not authorized to perform: ecs:DescribeServices"}"#,
            ),
        )
    });
    let gate = ScanGate::new(
        common::prod_config(&[]),
        Ecs::new(mock_client!(aws_sdk_ecs, [&describe_services])),
        Ecr::new(mock_client!(
            aws_sdk_ecr,
            Vec::<&aws_smithy_mocks::Rule>::new()
        )),
        Sns::new(mock_client!(
            aws_sdk_sns,
            Vec::<&aws_smithy_mocks::Rule>::new()
        )),
    );
    let err = gate.handle(scan_event()).await.unwrap_err();
    assert_eq!(err.retry(), Retry::Never);
    assert!(err.to_string().contains("IAM policy"), "{err}");
    assert_eq!(describe_services.num_calls(), 1, "not retried");
}

fn approval_event(tag: &str) -> Value {
    json!({
        "version": "0", "id": "5c0a1e7d-0004-4e3a-9b1d-2f6c8e4a0004", "detail-type": "Deploy Approval",
        "source": "menotime.ops", "account": ACCOUNT, "time": chrono::Utc::now().to_rfc3339(), "region": "us-west-1",
        "resources": [],
        "detail": {"repository-name": "menotime/backend", "image-digest": DIGEST, "image-tag": tag,
                   "approved-by": "jdoe", "reason": "MEDIUM CVE-2026-1234 not reachable from the API",
                   "reviewed-counts": {"MEDIUM": 2}}
    })
}

/// The approval's safety rests on asking ECR for the digest *and* the tag together: a
/// tag moved to another image since the notification is refused by ECR, and the
/// operator is told what to do.
#[tokio::test]
async fn an_approval_asks_ecr_for_the_digest_and_the_tag_together() {
    use aws_sdk_ecr::operation::describe_image_scan_findings::DescribeImageScanFindingsError;
    use aws_sdk_ecr::types::error::ImageNotFoundException;
    let findings = mock!(aws_sdk_ecr::Client::describe_image_scan_findings)
        .match_requests(|r| {
            r.repository_name() == Some("menotime/backend")
                && r.image_id().and_then(|i| i.image_digest()) == Some(DIGEST)
                && r.image_id().and_then(|i| i.image_tag()) == Some("v1.2.9")
        })
        .then_error(|| {
            DescribeImageScanFindingsError::ImageNotFoundException(
                ImageNotFoundException::builder()
                    .message("The image with imageId {imageDigest:'sha256:093d...', imageTag:'v1.2.9'} does not exist")
                    .build(),
            )
        });
    let gate = ScanGate::new(
        common::prod_config(&[]),
        Ecs::new(mock_client!(
            aws_sdk_ecs,
            Vec::<&aws_smithy_mocks::Rule>::new()
        )),
        Ecr::new(mock_client!(aws_sdk_ecr, [&findings])),
        Sns::new(mock_client!(
            aws_sdk_sns,
            Vec::<&aws_smithy_mocks::Rule>::new()
        )),
    );
    let err = gate.handle(approval_event("v1.2.9")).await.unwrap_err();
    assert_eq!(findings.num_calls(), 1);
    assert_eq!(err.kind(), "RejectedEvent", "{err}");
    let msg = err.to_string();
    assert!(msg.contains("the tag may have moved"), "{msg}");
    assert!(msg.contains("aws ecr describe-images --repository-name menotime/backend --image-ids imageTag=v1.2.9"), "{msg}");
}

/// The circuit breaker rolled the deployment of v1.2.4 back (moto cannot): the family's
/// newest revision is the one scan-gate deployed and marked, the service runs :7 again.
/// The same scan redelivered reads the two revisions, deploys nothing, and says so.
#[tokio::test]
async fn a_circuit_breaker_rollback_is_never_undone_by_a_redelivered_scan() {
    let describe_services = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
        let mut out = service_output(&td_arn(7), DeploymentRolloutState::Completed);
        let svc = &mut out.services.as_mut().unwrap()[0];
        svc.deployments = Some(vec![Deployment::builder()
            .id("ecs-svc/rollback")
            .status("PRIMARY")
            .rollout_state(DeploymentRolloutState::Completed)
            .task_definition(td_arn(7))
            .created_at(aws_smithy_types::DateTime::from_secs(1_795_600_000))
            .build()]);
        out
    });
    let describe_latest = mock!(aws_sdk_ecs::Client::describe_task_definition)
        .match_requests(|r| r.task_definition() == Some(FAMILY))
        .then_output(|| {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(prod_task_definition(8, &pinned()))
                .tags(
                    Tag::builder()
                        .key("menotime:image-tag")
                        .value("v1.2.4")
                        .build(),
                )
                .tags(
                    Tag::builder()
                        .key("menotime:source-event")
                        .value("5c0a1e7d-0001-4e3a-9b1d-2f6c8e4a0001")
                        .build(),
                )
                .tags(
                    Tag::builder()
                        .key("menotime:deployed")
                        .value("deployment=ecs-svc/4231880795355584839 at=2026-11-25T09:50:00Z")
                        .build(),
                )
                .build()
        });
    let describe_running = mock!(aws_sdk_ecs::Client::describe_task_definition)
        .match_requests(|r| r.task_definition() == Some(td_arn(7).as_str()))
        .then_output(running_revision);
    let published: Arc<Mutex<Option<PublishInput>>> = Arc::default();
    let p = published.clone();
    let publish = mock!(aws_sdk_sns::Client::publish).then_compute_output(move |input| {
        *p.lock().unwrap() = Some(input.clone());
        PublishOutput::builder().message_id("m").build()
    });
    let gate = ScanGate::new(
        common::prod_config(&[]),
        Ecs::new(mock_client!(
            aws_sdk_ecs,
            [&describe_services, &describe_latest, &describe_running]
        )),
        Ecr::new(mock_client!(
            aws_sdk_ecr,
            Vec::<&aws_smithy_mocks::Rule>::new()
        )),
        Sns::new(mock_client!(aws_sdk_sns, [&publish])),
    );
    let out = gate.handle(scan_event()).await.unwrap();
    assert_eq!(out.decision, Decision::Skipped, "{}", out.reason);
    for rule in [
        &describe_services,
        &describe_latest,
        &describe_running,
        &publish,
    ] {
        assert_eq!(rule.num_calls(), 1);
    }
    let p = published.lock().unwrap().take().unwrap();
    assert_eq!(
        p.subject(),
        Some("[PROD] Deploy skipped: v1.2.4 was rolled back")
    );
    let message: Value = serde_json::from_str(p.message().unwrap()).unwrap();
    let payload: Value = serde_json::from_str(message["sqs"].as_str().unwrap()).unwrap();
    assert_eq!(payload["details"]["skip_reason"], "rolled_back");
    assert_eq!(payload["details"]["deployed_at"], "2026-11-25T09:50:00Z");
    assert_eq!(
        payload["details"]["deployed_deployment_id"],
        "ecs-svc/4231880795355584839"
    );
    assert_eq!(payload["details"]["rolled_back_at"], "2026-11-25T09:46:40Z");
}

/// A clean image during another rollout: the deferral is written on the service (that
/// one tag key) before `deploy.deferred` is published; nothing is registered.
#[tokio::test]
async fn a_deferral_writes_its_tag_before_it_notifies() {
    let describe_services = mock!(aws_sdk_ecs::Client::describe_services)
        .then_output(|| service_output(&td_arn(7), DeploymentRolloutState::InProgress));
    let describe_latest =
        mock!(aws_sdk_ecs::Client::describe_task_definition).then_output(running_revision);
    let tagged: Arc<Mutex<Option<TagResourceInput>>> = Arc::default();
    let t = tagged.clone();
    let tag = mock!(aws_sdk_ecs::Client::tag_resource).then_compute_output(move |input| {
        *t.lock().unwrap() = Some(input.clone());
        TagResourceOutput::builder().build()
    });
    let publish = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| {
            r.subject()
                == Some(
                    "[PROD] Deploy deferred: v1.2.4 waits for the rollout of menotime-prod-service",
                )
        })
        .then_output(|| PublishOutput::builder().message_id("m").build());
    let gate = ScanGate::new(
        common::prod_config(&[]),
        Ecs::new(mock_client!(
            aws_sdk_ecs,
            [&describe_services, &describe_latest, &tag]
        )),
        Ecr::new(mock_client!(
            aws_sdk_ecr,
            Vec::<&aws_smithy_mocks::Rule>::new()
        )),
        Sns::new(mock_client!(aws_sdk_sns, [&publish])),
    );
    let out = gate.handle(scan_event()).await.unwrap();
    assert_eq!(out.decision, Decision::Deferred, "{}", out.reason);
    for rule in [&describe_services, &describe_latest, &tag, &publish] {
        assert_eq!(rule.num_calls(), 1);
    }
    let input = tagged.lock().unwrap().take().unwrap();
    assert_eq!(
        input.resource_arn(),
        Some(format!("arn:aws:ecs:us-west-1:{ACCOUNT}:service/{CLUSTER}/{SERVICE}").as_str())
    );
    assert_eq!(input.tags().len(), 1);
    assert_eq!(input.tags()[0].key(), Some("menotime:deploy-deferred"));
    assert_eq!(
        input.tags()[0].value(),
        Some(format!("digest={DIGEST} tag=v1.2.4 scanned=2026-11-25T09:46:41Z event=5c0a1e7d-0001-4e3a-9b1d-2f6c8e4a0001").as_str())
    );
}
