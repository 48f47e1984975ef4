//! The operator CLI, `menotime-ops`, as an operator runs it: the built binary as a
//! subprocess with only the environment given (pointed at moto), and the approvals bus
//! of an environment with a rule that hands its events to an SQS queue, where a test
//! picks up exactly what EventBridge would deliver to scan-gate.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::{build_binary, Aws, Moto};

/// One run of `menotime-ops`: its exit status and what it printed.
#[derive(Clone, Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Succeeded (status 0) and said nothing on stderr.
    pub fn ok(&self) -> &Run {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        assert!(self.stderr.is_empty(), "stderr on success: {self:#?}");
        self
    }

    /// The JSON document of a successful `--json` run.
    pub fn json(&self) -> Value {
        self.ok();
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:#?}"))
    }

    /// Failed with `code`, printing nothing on stdout and exactly one line on stderr
    /// (`menotime-ops: ...`), without a panic or a backtrace. Returns that line.
    pub fn failed(&self, code: i32) -> String {
        assert_eq!(self.code, Some(code), "exit status: {self:#?}");
        assert!(self.stdout.is_empty(), "stdout on failure: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {self:#?}");
        assert!(lines[0].starts_with("menotime-ops: "), "{self:#?}");
        for never in ["panicked", "backtrace", "RUST_BACKTRACE"] {
            assert!(!self.stderr.contains(never), "{self:#?}");
        }
        lines[0].to_owned()
    }
}

/// Runs the built `menotime-ops` with a clean environment.
#[derive(Clone, Debug)]
pub struct Ops {
    pub bin: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Ops {
    /// Pointed at `moto` (AWS_ENDPOINT_URL, AWS_REGION, test credentials, no profile
    /// files, no instance metadata).
    pub fn new(moto: &Moto) -> Ops {
        Ops {
            bin: build_binary("menotime-ops", "menotime-ops"),
            env: moto.aws_env(),
        }
    }

    /// With `key` set to `value`, or removed when `value` is `None`.
    pub fn with_var(&self, key: &str, value: Option<&str>) -> Ops {
        let mut env = self.env.clone();
        env.retain(|(k, _)| k != key);
        if let Some(v) = value {
            env.push((key.to_owned(), v.to_owned()));
        }
        Ops {
            bin: self.bin.clone(),
            env,
        }
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        let out = Command::new(&self.bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .stdin(Stdio::null())
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), out)
            .await
            .unwrap_or_else(|_| panic!("menotime-ops {args:?} did not finish within 120 s"))
            .expect("run menotime-ops");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Creates `menotime-<env>-approvals` with a rule for "Deploy Approval" events that
/// hands each one to a new SQS queue; returns the queue's URL.
///
/// The target passes the event whole (`<aws.events.event.json>`, as a Lambda target
/// receives it): moto 5.2's default delivery to SQS leaves `account` out of the
/// envelope, which AWS always sets and scan-gate requires.
pub async fn approvals_capture(moto: &Moto, aws: &Aws, env: &str) -> String {
    let events = aws_sdk_eventbridge::Client::new(&moto.sdk_config().await);
    let bus = format!("menotime-{env}-approvals");
    events
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("create-event-bus");
    let queue = aws
        .sqs
        .create_queue()
        .queue_name(format!("menotime-{env}-approvals-capture"))
        .send()
        .await
        .expect("create-queue")
        .queue_url()
        .unwrap()
        .to_owned();
    let queue_arn = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("get-queue-attributes")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .unwrap()
        .to_owned();
    let rule = format!("menotime-{env}-scan-gate-approval");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(r#"{"source": ["menotime.ops"], "detail-type": ["Deploy Approval"]}"#)
        .send()
        .await
        .expect("put-rule");
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("capture")
                .arn(queue_arn)
                .input_transformer(
                    aws_sdk_eventbridge::types::InputTransformer::builder()
                        .input_template("<aws.events.event.json>")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("put-targets");
    queue
}

/// The events waiting in `queue` (each message body is one EventBridge event).
pub async fn captured(aws: &Aws, queue: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let resp = aws
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive-message");
        if resp.messages().is_empty() {
            return out;
        }
        for m in resp.messages() {
            out.push(serde_json::from_str(m.body().unwrap_or("null")).expect("event JSON"));
            aws.sqs
                .delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete-message");
        }
    }
}
