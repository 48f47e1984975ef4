//! The end-to-end harness: moto's server as AWS, a Lambda Runtime API host driving the
//! built function binaries, and readers for what the functions left in moto (ECS state,
//! SNS messages delivered to SQS queues), and the operator CLI run as an operator runs it
//! (`ops`). Used by the tests in `tests/` and by the demo.

pub mod alarms;
pub mod http;
pub mod moto;
pub mod offhours;
pub mod ops;
pub mod proxy;
pub mod runtime;
pub mod tls;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use moto::{Moto, Seed, SeedEnv};
pub use runtime::{build_binary, Function, Invocation};

/// The repository's root (the workspace).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// An event file from `events/`. An operator's approval (`menotime.ops`) gets the
/// current time, as `aws events put-events` gives it: scan-gate refuses approvals
/// older than `APPROVAL_MAX_AGE_HOURS`.
pub fn event(name: &str) -> Value {
    let path = workspace_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if v["source"] == "menotime.ops" {
        v["time"] = Value::String(now_minus(60));
    }
    v
}

/// RFC 3339, `seconds` ago.
pub fn now_minus(seconds: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The variables every function needs (docs/reference.md §2) for one of the seeded
/// environments, pointed at moto.
pub fn common_env(moto: &Moto, seed: &Seed, env: &str) -> Vec<(String, String)> {
    let e = seed.env(env);
    let mut vars = moto.aws_env();
    vars.extend(
        [
            ("ENVIRONMENT", env),
            ("CLUSTER_NAME", &e.cluster),
            ("SERVICE_NAME", &e.service),
            ("NOTIFY_TOPIC_ARN", &e.notify_topic_arn),
            ("ONCALL_TOPIC_ARN", &e.oncall_topic_arn),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    vars
}

/// scan-gate's environment for one of the seeded environments (docs/reference.md §2).
pub fn scan_gate_env(moto: &Moto, seed: &Seed, env: &str) -> Vec<(String, String)> {
    let e = seed.env(env);
    let mut vars = common_env(moto, seed, env);
    vars.push(("REPOSITORY_NAME".into(), seed.repository.clone()));
    vars.push(("CONTAINER_NAME".into(), e.container.clone()));
    vars
}

/// deploy-notifier's environment for one of the seeded environments.
pub fn notifier_env(moto: &Moto, seed: &Seed, env: &str) -> Vec<(String, String)> {
    let e = seed.env(env);
    let mut vars = common_env(moto, seed, env);
    vars.push(("CONTAINER_NAME".into(), e.container.clone()));
    vars
}

/// Sets (or adds) one variable.
pub fn with_var(mut vars: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    vars.retain(|(k, _)| k != key);
    vars.push((key.to_owned(), value.to_owned()));
    vars
}

/// A message SNS delivered to an SQS queue.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub subject: String,
    /// The `sqs` key of the JSON message: the machine payload.
    pub payload: Value,
    pub attributes: Vec<(String, String)>,
}

impl Delivered {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn event_type(&self) -> &str {
        self.payload["event_type"].as_str().unwrap_or_default()
    }
}

/// Reads what AWS holds: ECS state and queue contents.
pub struct Aws {
    pub ecs: aws_sdk_ecs::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub sns: aws_sdk_sns::Client,
}

/// The service as ECS reports it, with the image of its container.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceView {
    pub task_definition: String,
    pub image: String,
    pub tags: Vec<(String, String)>,
}

impl Aws {
    pub async fn new(moto: &Moto) -> Aws {
        let conf = moto.sdk_config().await;
        Aws {
            ecs: aws_sdk_ecs::Client::new(&conf),
            sqs: aws_sdk_sqs::Client::new(&conf),
            ecr: aws_sdk_ecr::Client::new(&conf),
            sns: aws_sdk_sns::Client::new(&conf),
        }
    }

    pub async fn service(&self, env: &SeedEnv) -> ServiceView {
        let out = self
            .ecs
            .describe_services()
            .cluster(&env.cluster)
            .services(&env.service)
            .include(aws_sdk_ecs::types::ServiceField::Tags)
            .send()
            .await
            .expect("describe-services");
        let svc = &out.services()[0];
        let td = svc.task_definition().unwrap().to_owned();
        let def = self
            .ecs
            .describe_task_definition()
            .task_definition(&td)
            .send()
            .await
            .expect("describe-task-definition");
        let image = def
            .task_definition()
            .unwrap()
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(env.container.as_str()))
            .and_then(|c| c.image())
            .unwrap_or_default()
            .to_owned();
        ServiceView {
            task_definition: td,
            image,
            tags: svc
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
        }
    }

    /// Revisions of a task-definition family, oldest first.
    pub async fn revisions(&self, family: &str) -> Vec<String> {
        self.ecs
            .list_task_definitions()
            .family_prefix(family)
            .send()
            .await
            .expect("list-task-definitions")
            .task_definition_arns()
            .to_vec()
    }

    pub async fn tag_service(&self, env: &SeedEnv, key: &str, value: &str) {
        self.ecs
            .tag_resource()
            .resource_arn(&env.service_arn)
            .tags(
                aws_sdk_ecs::types::Tag::builder()
                    .key(key)
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .expect("tag-resource");
    }

    pub async fn untag_service(&self, env: &SeedEnv, key: &str) {
        self.ecs
            .untag_resource()
            .resource_arn(&env.service_arn)
            .tag_keys(key)
            .send()
            .await
            .expect("untag-resource");
    }

    /// One tag of the service, if set.
    pub async fn service_tag(&self, env: &SeedEnv, key: &str) -> Option<String> {
        self.service(env)
            .await
            .tags
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The service's deployments as ECS lists them: (id, rollout state).
    pub async fn deployments(&self, env: &SeedEnv) -> Vec<(String, String)> {
        let out = self
            .ecs
            .describe_services()
            .cluster(&env.cluster)
            .services(&env.service)
            .send()
            .await
            .expect("describe-services");
        out.services()[0]
            .deployments()
            .iter()
            .map(|d| {
                (
                    d.id().unwrap_or_default().to_owned(),
                    d.rollout_state()
                        .map(|r| r.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Takes every message waiting in `queue_url` (SNS → SQS envelopes).
    pub async fn drain(&self, queue_url: &str) -> Vec<Delivered> {
        let mut out = Vec::new();
        loop {
            let resp = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive-message");
            let msgs = resp.messages();
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                let envelope: Value =
                    serde_json::from_str(m.body().unwrap_or("{}")).expect("SNS envelope");
                let message = envelope["Message"].as_str().unwrap_or_default();
                let mut attributes: Vec<(String, String)> = envelope["MessageAttributes"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    v["Value"].as_str().unwrap_or_default().to_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                attributes.sort();
                out.push(Delivered {
                    subject: envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                    payload: serde_json::from_str(message)
                        .unwrap_or(Value::String(message.to_owned())),
                    attributes,
                });
                self.sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete-message");
            }
        }
        out
    }
}
