//! The AWS side of the CLI: the SDK configuration (profiles, SSO, region, endpoint),
//! the shared adapters the functions use, and the few calls only an operator makes
//! (EventBridge PutEvents, STS GetCallerIdentity, listing images and revisions, a
//! forced new deployment).

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_ecr::operation::describe_images::DescribeImagesError;
use aws_sdk_ecr::types::{ImageIdentifier, TagStatus};
use aws_sdk_ecs::types::{SortOrder, TaskDefinitionField, TaskDefinitionStatus};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, Utc};

use menotime_shared::arn::Arn;
use menotime_shared::aws::autoscaling::AutoScaling;
use menotime_shared::aws::aws_error;
use menotime_shared::aws::ecr::Ecr;
use menotime_shared::aws::ecs::{summary, Ecs};
use menotime_shared::domain::deploy::RevisionSummary;
use menotime_shared::sdk::retry_config;

use crate::args::Target;
use crate::error::{concise, Failure};

/// The clients of one command, built once from one SDK configuration.
pub struct Session {
    pub region: String,
    /// The shared adapters, as the functions use them.
    pub ecs: Ecs,
    pub ecr: Ecr,
    pub scaling: AutoScaling,
    ecs_client: aws_sdk_ecs::Client,
    ecr_client: aws_sdk_ecr::Client,
    events: aws_sdk_eventbridge::Client,
    sts: aws_sdk_sts::Client,
}

/// Loads the standard configuration (AWS_PROFILE or `--profile`; `--region`, AWS_REGION,
/// AWS_DEFAULT_REGION or the profile's region; AWS_ENDPOINT_URL; SSO and credential
/// processes),
/// and checks that a region and credentials exist before any call, so that their
/// absence is one clear line rather than a failed request.
pub async fn connect(target: &Target) -> Result<Session, Failure> {
    // rustls on ring, like the functions, trusting the system's roots too (and
    // SSL_CERT_FILE's, for a TLS-inspecting proxy).
    let ssl_cert_file = std::env::var("SSL_CERT_FILE")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let http = menotime_shared::sdk::http_client_with_system_roots(ssl_cert_file.as_deref())
        .map_err(|e| Failure::usage(e.to_string()))?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(retry_config())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(15))
                .operation_timeout(Duration::from_secs(40))
                .build(),
        );
    if let Some(p) = &target.profile {
        loader = loader.profile_name(p);
    }
    // --region, then AWS_REGION (the SDK's own), then AWS_DEFAULT_REGION (which the
    // AWS CLI reads and operators often set), then the profile's region.
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let region = target.region.clone().or_else(|| {
        env("AWS_REGION")
            .is_none()
            .then(|| env("AWS_DEFAULT_REGION"))
            .flatten()
    });
    if let Some(r) = region {
        loader = loader.region(Region::new(r));
    }
    let conf = loader.load().await;
    let region = conf.region().map(|r| r.to_string()).ok_or_else(|| {
        Failure::aws(
            "no AWS region: set AWS_REGION, pass --region, or use a profile (AWS_PROFILE or --profile) that has one",
        )
    })?;
    let profile = target
        .profile
        .clone()
        .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()));
    check_credentials(&conf, profile.as_deref()).await?;
    Ok(Session {
        region,
        ecs: Ecs::new(aws_sdk_ecs::Client::new(&conf)),
        ecr: Ecr::new(aws_sdk_ecr::Client::new(&conf)),
        scaling: AutoScaling::from_conf(&conf),
        ecs_client: aws_sdk_ecs::Client::new(&conf),
        ecr_client: aws_sdk_ecr::Client::new(&conf),
        events: aws_sdk_eventbridge::Client::new(&conf),
        sts: aws_sdk_sts::Client::new(&conf),
    })
}

async fn check_credentials(conf: &SdkConfig, profile: Option<&str>) -> Result<(), Failure> {
    let advice = "set AWS_PROFILE (or --profile) to the operators' profile, or sign in first (aws sso login)";
    let whose = match profile {
        Some(p) => format!(" for profile {p}"),
        None => String::new(),
    };
    let Some(provider) = conf.credentials_provider() else {
        return Err(Failure::aws(format!("no AWS credentials{whose}: {advice}")));
    };
    provider.provide_credentials().await.map_err(|e| match e {
        CredentialsError::CredentialsNotLoaded(_) => Failure::aws(format!(
            "no AWS credentials found{whose} (environment, profile, SSO, web identity, container and instance metadata were tried): {advice}"
        )),
        other => Failure::aws(format!(
            "the AWS credentials{whose} cannot be used ({}): {advice}",
            concise(&DisplayErrorContext(&other).to_string())
        )),
    })?;
    Ok(())
}

/// An image of the repository, as DescribeImages lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: Option<DateTime<Utc>>,
}

fn image_of(d: &aws_sdk_ecr::types::ImageDetail) -> Option<Image> {
    Some(Image {
        digest: d.image_digest()?.to_owned(),
        tags: d.image_tags().to_vec(),
        pushed_at: d
            .image_pushed_at()
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
    })
}

/// A revision and whether ECS still lets services use it.
#[derive(Clone, Debug)]
pub struct RevisionInfo {
    pub summary: RevisionSummary,
    /// `ACTIVE`, `INACTIVE` (deregistered) or `DELETE_IN_PROGRESS`.
    pub status: String,
}

impl Session {
    /// STS GetCallerIdentity: the caller's ARN.
    pub async fn caller_arn(&self) -> Result<String, Failure> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| Failure::from(aws_error("sts:GetCallerIdentity", e)))?;
        out.arn().map(str::to_owned).ok_or_else(|| {
            Failure::aws("STS GetCallerIdentity returned no ARN: name yourself with --as NAME")
        })
    }

    /// ECR DescribeImages of one tag: the image it names now.
    pub async fn image_by_tag(&self, repository: &str, tag: &str) -> Result<Image, Failure> {
        let out = self
            .ecr_client
            .describe_images()
            .repository_name(repository)
            .image_ids(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(DescribeImagesError::ImageNotFoundException(_)) => Failure::aws(format!(
                    "ECR has no image tagged {tag} in {repository}: check the tag (aws ecr describe-images --repository-name {repository})"
                )),
                Some(DescribeImagesError::RepositoryNotFoundException(_)) => Failure::aws(format!(
                    "ECR has no repository {repository}: name it with --repository"
                )),
                _ => Failure::from(aws_error("ecr:DescribeImages", e)),
            })?;
        out.image_details()
            .iter()
            .find_map(image_of)
            .ok_or_else(|| {
                Failure::aws(format!(
                    "ECR has no image tagged {tag} in {repository}: check the tag"
                ))
            })
    }

    /// Every tagged image of the repository (DescribeImages, all pages).
    pub async fn tagged_images(&self, repository: &str) -> Result<Vec<Image>, Failure> {
        let mut images = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .ecr_client
                .describe_images()
                .repository_name(repository)
                .filter(
                    aws_sdk_ecr::types::DescribeImagesFilter::builder()
                        .tag_status(TagStatus::Tagged)
                        .build(),
                )
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| match e.as_service_error() {
                    Some(DescribeImagesError::RepositoryNotFoundException(_)) => Failure::aws(
                        format!("ECR has no repository {repository}: name it with --repository"),
                    ),
                    _ => Failure::from(aws_error("ecr:DescribeImages", e)),
                })?;
            images.extend(out.image_details().iter().filter_map(image_of));
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                _ => return Ok(images),
            }
        }
    }

    /// DescribeTaskDefinition(include=[TAGS]) of an ARN or `family:revision`.
    pub async fn revision(&self, task_definition: &str) -> Result<RevisionInfo, Failure> {
        let out = self
            .ecs_client
            .describe_task_definition()
            .task_definition(task_definition)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| {
                let code = aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&e)
                    .map(str::to_owned);
                match code.as_deref() {
                    Some("ClientException") => Failure::aws(format!(
                        "ECS has no task definition {task_definition}: check the revision (aws ecs list-task-definitions --family-prefix <family>)"
                    )),
                    _ => Failure::from(aws_error("ecs:DescribeTaskDefinition", e)),
                }
            })?;
        let td = out.task_definition().ok_or_else(|| {
            Failure::aws(format!(
                "ECS returned no task definition for {task_definition}"
            ))
        })?;
        Ok(RevisionInfo {
            summary: summary(td, out.tags()),
            status: td.status().map_or("ACTIVE", |s| s.as_str()).to_owned(),
        })
    }

    /// The newest ACTIVE revision of `family` below `below` (ListTaskDefinitions,
    /// newest first, page by page until one is found), as an ARN.
    pub async fn previous_active(
        &self,
        family: &str,
        below: u32,
    ) -> Result<Option<String>, Failure> {
        let mut next: Option<String> = None;
        loop {
            let out = self
                .ecs_client
                .list_task_definitions()
                .family_prefix(family)
                .status(TaskDefinitionStatus::Active)
                .sort(SortOrder::Desc)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| Failure::from(aws_error("ecs:ListTaskDefinitions", e)))?;
            // The prefix also matches other families (menotime-backend-prod-canary):
            // only this family's revisions count.
            let found = out.task_definition_arns().iter().find(|arn| {
                Arn::parse(arn)
                    .as_ref()
                    .and_then(Arn::task_definition)
                    .is_some_and(|(f, r)| f == family && r < below)
            });
            if let Some(arn) = found {
                return Ok(Some(arn.clone()));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                _ => return Ok(None),
            }
        }
    }

    /// EventBridge PutEvents of one entry; the event id.
    pub async fn put_event(&self, entry: PutEventsRequestEntry) -> Result<String, Failure> {
        let bus = entry.event_bus_name().unwrap_or("default").to_owned();
        let out = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| Failure::from(aws_error("events:PutEvents", e)))?;
        let Some(result) = out.entries().first() else {
            return Err(Failure::aws(format!(
                "EventBridge accepted the request but returned no entry for bus {bus}; check with aws events describe-event-bus --name {bus}"
            )));
        };
        if let Some(code) = result.error_code() {
            return Err(Failure::aws(format!(
                "EventBridge refused the approval on bus {bus}: {code}: {}. Check that the bus exists and that your role may put events on it",
                result.error_message().unwrap_or("no message")
            )));
        }
        result.event_id().map(str::to_owned).ok_or_else(|| {
            Failure::aws(format!(
                "EventBridge returned no event id for the approval on bus {bus}"
            ))
        })
    }
}
