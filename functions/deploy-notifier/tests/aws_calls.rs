//! deploy-notifier through the real AWS adapters, with the SDK's HTTP layer replaced
//! by aws-smithy-mocks: the exact requests a page sends, in order, and what AWS
//! throttling does to them (moto cannot fault on demand; these can).
#![cfg(test)]

use std::sync::{Arc, Mutex};

use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
use aws_sdk_ecs::operation::tag_resource::{TagResourceInput, TagResourceOutput};
use aws_sdk_ecs::types::{
    ContainerDefinition, Deployment, DeploymentRolloutState, Service, ServiceField, Tag,
    TaskDefinition, TaskDefinitionField,
};
use aws_sdk_sns::operation::publish::{PublishInput, PublishOutput};
use aws_smithy_mocks::mock;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde_json::{json, Value};

use deploy_notifier::{Decision, DeployNotifier};
use menotime_shared::aws::{ecs::Ecs, sns::Sns};
use menotime_shared::config::{Environment, NotifierConfig, WatchConfig};
use menotime_shared::testing::common;
use menotime_shared::{mock_client, Retry};

const ACCOUNT: &str = "123456789012";
const CLUSTER: &str = "menotime-prod-cluster";
const SERVICE: &str = "menotime-prod-service";
const DEPLOYMENT: &str = "ecs-svc/4231880795355584839";
/// SNS speaks the AWS query protocol: errors are XML.
const THROTTLED: &str = "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r-1</RequestId></ErrorResponse>";

fn service_arn() -> String {
    format!("arn:aws:ecs:us-west-1:{ACCOUNT}:service/{CLUSTER}/{SERVICE}")
}

fn td(n: u32) -> String {
    format!("arn:aws:ecs:us-west-1:{ACCOUNT}:task-definition/menotime-backend-prod:{n}")
}

fn config() -> NotifierConfig {
    NotifierConfig {
        common: common(Environment::Prod),
        freeze_on_failure: true,
        container: Some("menotime-backend".into()),
        watch: WatchConfig::defaults(Environment::Prod),
    }
}

fn failed_event() -> Value {
    json!({
        "version": "0", "id": "ddca6449-b258-46c0-8653-e0e3a6d0468c",
        "detail-type": "ECS Deployment State Change", "source": "aws.ecs",
        "account": ACCOUNT, "time": "2025-06-02T18:01:02Z", "region": "us-west-1",
        "resources": [service_arn()],
        "detail": {
            "eventType": "ERROR", "eventName": "SERVICE_DEPLOYMENT_FAILED",
            "deploymentId": DEPLOYMENT, "updatedAt": "2025-06-02T18:00:59.870Z",
            "reason": "ECS deployment circuit breaker: task failed to start."
        }
    })
}

/// ECS during a circuit-breaker rollback: the failed deployment ACTIVE, the rollback
/// PRIMARY.
fn services_output() -> DescribeServicesOutput {
    let deployment = |id: &str, status: &str, rev: u32, state| {
        Deployment::builder()
            .id(id)
            .status(status)
            .task_definition(td(rev))
            .rollout_state(state)
            .build()
    };
    DescribeServicesOutput::builder()
        .services(
            Service::builder()
                .service_arn(service_arn())
                .service_name(SERVICE)
                .status("ACTIVE")
                .task_definition(td(47))
                .desired_count(2)
                .running_count(1)
                .deployments(deployment(
                    "ecs-svc/6177963417134325488",
                    "PRIMARY",
                    47,
                    DeploymentRolloutState::InProgress,
                ))
                .deployments(deployment(
                    DEPLOYMENT,
                    "ACTIVE",
                    48,
                    DeploymentRolloutState::Failed,
                ))
                .tags(Tag::builder().key("application").value("menotime").build())
                .build(),
        )
        .build()
}

#[tokio::test]
async fn a_page_sends_exactly_these_five_requests() {
    let tagged: Arc<Mutex<Option<TagResourceInput>>> = Arc::default();
    let published: Arc<Mutex<Option<PublishInput>>> = Arc::default();
    let describe = mock!(aws_sdk_ecs::Client::describe_services)
        .match_requests(|r| {
            r.cluster() == Some(CLUSTER)
                && r.services() == [SERVICE]
                && r.include() == [ServiceField::Tags]
        })
        .then_output(services_output);
    let describe_td = mock!(aws_sdk_ecs::Client::describe_task_definition)
        .match_requests(|r| {
            r.task_definition() == Some(td(48).as_str())
                && r.include() == [TaskDefinitionField::Tags]
        })
        .then_output(|| {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(
                    TaskDefinition::builder()
                        .task_definition_arn(td(48))
                        .family("menotime-backend-prod")
                        .revision(48)
                        .container_definitions(
                            ContainerDefinition::builder()
                                .name("menotime-backend")
                                .image("123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend@sha256:abc")
                                .build(),
                        )
                        .build(),
                )
                .tags(Tag::builder().key("menotime:image-tag").value("v1.2.4").build())
                .build()
        });
    let t = tagged.clone();
    let tag = mock!(aws_sdk_ecs::Client::tag_resource).then_compute_output(move |input| {
        *t.lock().unwrap() = Some(input.clone());
        TagResourceOutput::builder().build()
    });
    let p = published.clone();
    let publish = mock!(aws_sdk_sns::Client::publish).then_compute_output(move |input| {
        *p.lock().unwrap() = Some(input.clone());
        PublishOutput::builder().message_id("m-1").build()
    });
    let confirmed: Arc<Mutex<Option<TagResourceInput>>> = Arc::default();
    let c = confirmed.clone();
    let confirm = mock!(aws_sdk_ecs::Client::tag_resource).then_compute_output(move |input| {
        *c.lock().unwrap() = Some(input.clone());
        TagResourceOutput::builder().build()
    });
    let notifier = DeployNotifier::new(
        config(),
        Ecs::new(mock_client!(
            aws_sdk_ecs,
            [&describe, &describe_td, &tag, &confirm]
        )),
        Sns::new(mock_client!(aws_sdk_sns, [&publish])),
    );
    let out = notifier.handle(failed_event(), "req-1").await.unwrap();
    assert_eq!(out.decision, Decision::Paged, "{}", out.reason);
    for (name, rule) in [
        ("DescribeServices", &describe),
        ("DescribeTaskDefinition", &describe_td),
        ("TagResource (record)", &tag),
        ("Publish", &publish),
        ("TagResource (confirm)", &confirm),
    ] {
        assert_eq!(rule.num_calls(), 1, "{name}");
    }

    // The record: one TagResource on the service, the marker with the page pending and
    // the freeze, nothing else.
    let input = tagged.lock().unwrap().take().unwrap();
    assert_eq!(input.resource_arn(), Some(service_arn().as_str()));
    let mut keys: Vec<&str> = input.tags().iter().filter_map(|t| t.key()).collect();
    keys.sort();
    assert_eq!(keys, ["menotime:deploy-freeze", "menotime:deploy-incident"]);
    let marker = |i: &TagResourceInput| {
        i.tags()
            .iter()
            .find(|t| t.key() == Some("menotime:deploy-incident"))
            .and_then(|t| t.value())
            .unwrap()
            .to_owned()
    };
    assert!(
        marker(&input).contains(" sent= pending=failed state=open "),
        "{}",
        marker(&input)
    );
    // The confirmation, after the publish: the marker alone, the page sent.
    let done = confirmed.lock().unwrap().take().unwrap();
    assert_eq!(done.resource_arn(), Some(service_arn().as_str()));
    assert_eq!(done.tags().len(), 1);
    assert!(
        marker(&done).contains(" sent=failed state=open "),
        "{}",
        marker(&done)
    );
    for t in input.tags() {
        let v = t.value().unwrap();
        assert!(v.len() <= 256, "{v}");
        assert!(
            v.chars()
                .all(|c| c.is_ascii_alphanumeric() || " +-=._:/@".contains(c)),
            "only characters ECS tag values allow: {v}"
        );
    }

    // Publish: to on-call, MessageStructure=json, the four String attributes.
    let input = published.lock().unwrap().take().unwrap();
    assert_eq!(
        input.topic_arn(),
        Some(format!("arn:aws:sns:us-west-1:{ACCOUNT}:menotime-prod-oncall").as_str())
    );
    assert_eq!(input.message_structure(), Some("json"));
    assert_eq!(
        input.subject(),
        Some("[PROD] Deployment failed: menotime-prod-service")
    );
    let attrs = input.message_attributes().unwrap();
    for (k, v) in [
        ("severity", "critical"),
        ("environment", "prod"),
        ("event_type", "deploy.failed"),
        ("action", "trigger"),
    ] {
        assert_eq!(attrs[k].data_type(), "String");
        assert_eq!(attrs[k].string_value(), Some(v), "{k}");
    }
    let message: Value = serde_json::from_str(input.message().unwrap()).unwrap();
    let payload: Value = serde_json::from_str(message["sqs"].as_str().unwrap()).unwrap();
    assert_eq!(payload["details"]["previous_task_definition"], td(47));
    assert_eq!(payload["details"]["image_tag"], "v1.2.4");
    assert!(message["sms"].as_str().unwrap().len() <= 140);
}

/// Throttled twice, the SDK's own retries get the page through; throttled for good,
/// the invocation fails as retryable after the state was written, so Lambda's retry
/// (same request id) publishes it.
#[tokio::test]
async fn throttling_is_retried_by_the_sdk_and_then_by_lambda() {
    let throttled =
        || HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::from(THROTTLED));
    let describe = mock!(aws_sdk_ecs::Client::describe_services).then_output(services_output);
    let describe_td = mock!(aws_sdk_ecs::Client::describe_task_definition)
        .then_output(|| DescribeTaskDefinitionOutput::builder().build());
    let tag = mock!(aws_sdk_ecs::Client::tag_resource)
        .then_output(|| TagResourceOutput::builder().build());
    let confirm = mock!(aws_sdk_ecs::Client::tag_resource)
        .then_output(|| TagResourceOutput::builder().build());
    let publish = mock!(aws_sdk_sns::Client::publish)
        .sequence()
        .http_response(throttled)
        .times(2)
        .output(|| PublishOutput::builder().message_id("m-1").build())
        .build();
    let notifier = DeployNotifier::new(
        config(),
        Ecs::new(mock_client!(
            aws_sdk_ecs,
            [&describe, &describe_td, &tag, &confirm]
        )),
        Sns::new(mock_client!(aws_sdk_sns, [&publish])),
    );
    let out = notifier.handle(failed_event(), "req-1").await.unwrap();
    assert_eq!(out.decision, Decision::Paged);
    assert_eq!(
        publish.num_calls(),
        3,
        "two throttled attempts, then success"
    );

    let always_throttled = mock!(aws_sdk_sns::Client::publish)
        .sequence()
        .http_response(throttled)
        .times(3)
        .build();
    let describe = mock!(aws_sdk_ecs::Client::describe_services).then_output(services_output);
    let describe_td = mock!(aws_sdk_ecs::Client::describe_task_definition)
        .then_output(|| DescribeTaskDefinitionOutput::builder().build());
    let tag = mock!(aws_sdk_ecs::Client::tag_resource)
        .then_output(|| TagResourceOutput::builder().build());
    let notifier = DeployNotifier::new(
        config(),
        Ecs::new(mock_client!(aws_sdk_ecs, [&describe, &describe_td, &tag])),
        Sns::new(mock_client!(aws_sdk_sns, [&always_throttled])),
    );
    let err = notifier.handle(failed_event(), "req-2").await.unwrap_err();
    assert_eq!(err.retry(), Retry::Later);
    assert_eq!(err.kind(), "AwsTransientError");
    assert!(err.to_string().contains("sns:Publish"), "{err}");
    assert_eq!(
        tag.num_calls(),
        1,
        "the page was recorded before the publish"
    );
}
