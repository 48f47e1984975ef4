//! Notifications (docs/reference.md §4), written once for all three functions.
//!
//! A [`Notification`] is built from plain facts; [`Notification::render`] turns it into
//! exactly what SNS receives: the topic, a subject, a `MessageStructure=json` message
//! with a text for people (`default`, `email`), one short line for `sms` and the
//! machine payload for `sqs`, `lambda` and `https`, and the four message attributes.
//! Rendering is pure; [`Publisher`] is the one AWS call.

use std::fmt::Write as _;
use std::future::Future;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::config::{CommonConfig, Environment};
use crate::error::Error;
use crate::runbook::Step;

pub const SCHEMA: &str = "menotime.ops/v1";
/// The reference promises at most 100; SNS's API reference says "less than 100", so 99
/// satisfies both.
pub const SUBJECT_MAX: usize = 99;
pub const SMS_MAX: usize = 140;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    DeployStarted,
    DeployBlocked,
    DeployReviewRequired,
    DeployFrozen,
    DeploySkipped,
    DeployInProgress,
    DeployRollback,
    DeployFailed,
    DeployCompleted,
    ServiceImpaired,
    ServiceRecovered,
    TaskOom,
    ScaleDown,
    ScaleUp,
    ScaleSkipped,
    DeployDeferred,
    ScaleFailed,
    DeployRegression,
    DeployRolledBack,
    ServiceAlarm,
    ServiceMemoryHigh,
    TaskStartFailed,
    TaskInterrupted,
}

impl EventType {
    pub const ALL: [EventType; 23] = [
        EventType::DeployStarted,
        EventType::DeployBlocked,
        EventType::DeployReviewRequired,
        EventType::DeployFrozen,
        EventType::DeploySkipped,
        EventType::DeployInProgress,
        EventType::DeployRollback,
        EventType::DeployFailed,
        EventType::DeployCompleted,
        EventType::ServiceImpaired,
        EventType::ServiceRecovered,
        EventType::TaskOom,
        EventType::ScaleDown,
        EventType::ScaleUp,
        EventType::ScaleSkipped,
        EventType::DeployDeferred,
        EventType::ScaleFailed,
        EventType::DeployRegression,
        EventType::DeployRolledBack,
        EventType::ServiceAlarm,
        EventType::ServiceMemoryHigh,
        EventType::TaskStartFailed,
        EventType::TaskInterrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::DeployStarted => "deploy.started",
            EventType::DeployBlocked => "deploy.blocked",
            EventType::DeployReviewRequired => "deploy.review_required",
            EventType::DeployFrozen => "deploy.frozen",
            EventType::DeploySkipped => "deploy.skipped",
            EventType::DeployInProgress => "deploy.in_progress",
            EventType::DeployRollback => "deploy.rollback",
            EventType::DeployFailed => "deploy.failed",
            EventType::DeployCompleted => "deploy.completed",
            EventType::ServiceImpaired => "service.impaired",
            EventType::ServiceRecovered => "service.recovered",
            EventType::TaskOom => "task.oom",
            EventType::ScaleDown => "scale.down",
            EventType::ScaleUp => "scale.up",
            EventType::ScaleSkipped => "scale.skipped",
            EventType::DeployDeferred => "deploy.deferred",
            EventType::ScaleFailed => "scale.failed",
            EventType::DeployRegression => "deploy.regression",
            EventType::DeployRolledBack => "deploy.rolled_back",
            EventType::ServiceAlarm => "service.alarm",
            EventType::ServiceMemoryHigh => "service.memory_high",
            EventType::TaskStartFailed => "task.start_failed",
            EventType::TaskInterrupted => "task.interrupted",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Opens or updates a page.
    Trigger,
    /// Closes a page.
    Resolve,
    /// No page.
    Notify,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Trigger => "trigger",
            Action::Resolve => "resolve",
            Action::Notify => "notify",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// The team's topic (`NOTIFY_TOPIC_ARN`).
    Notify,
    /// The topic that pages on-call (`ONCALL_TOPIC_ARN`).
    Oncall,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub topic: Topic,
    pub severity: Severity,
    pub action: Action,
}

/// The table of docs/reference.md §4.5: where each event type goes, in each environment.
pub fn delivery(event_type: EventType, env: Environment) -> Delivery {
    use EventType::*;
    let notify = |severity| Delivery {
        topic: Topic::Notify,
        severity,
        action: Action::Notify,
    };
    match event_type {
        DeployStarted | DeploySkipped | DeployInProgress | DeployCompleted | ScaleDown
        | ScaleUp | ScaleSkipped | DeployDeferred => notify(Severity::Info),
        DeployBlocked | DeployReviewRequired | DeployFrozen | TaskOom | ServiceMemoryHigh
        | TaskStartFailed => notify(Severity::Warning),
        // A Fargate Spot interruption is expected outside prod (the manual's Spot
        // configuration is for non-production); in prod, which runs on demand, it is not.
        TaskInterrupted => match env {
            Environment::Prod => notify(Severity::Warning),
            _ => notify(Severity::Info),
        },
        DeployRollback | DeployFailed | ServiceImpaired | ScaleFailed | DeployRegression
        | DeployRolledBack | ServiceAlarm => match env {
            Environment::Prod => Delivery {
                topic: Topic::Oncall,
                severity: Severity::Critical,
                action: Action::Trigger,
            },
            _ => notify(Severity::Warning),
        },
        ServiceRecovered => Delivery {
            topic: Topic::Oncall,
            severity: Severity::Info,
            action: Action::Resolve,
        },
    }
}

/// `menotime/<env>/<service>/<incident>`: the same incident always has the same key.
pub fn dedup_key(env: Environment, service: &str, incident: &str) -> String {
    format!("menotime/{env}/{service}/{incident}")
}

/// One notification, as facts. Build with [`Notification::new`] and the `with_*`
/// methods; render with [`Notification::render`].
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub event_type: EventType,
    pub delivery: Delivery,
    pub environment: Environment,
    pub cluster: String,
    pub service: String,
    /// One line, without the `[ENV]` prefix.
    pub summary: String,
    pub facts: Vec<(String, String)>,
    pub steps: Vec<Step>,
    pub console_url: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub source_event_id: String,
    pub dedup_key: String,
    pub details: Map<String, Value>,
}

impl Notification {
    pub fn new(
        event_type: EventType,
        site: &CommonConfig,
        summary: impl Into<String>,
        occurred_at: DateTime<Utc>,
        source_event_id: impl Into<String>,
        dedup_key: impl Into<String>,
    ) -> Self {
        Self {
            event_type,
            delivery: delivery(event_type, site.environment),
            environment: site.environment,
            cluster: site.cluster.clone(),
            service: site.service.clone(),
            summary: summary.into(),
            facts: Vec::new(),
            steps: Vec::new(),
            console_url: None,
            occurred_at,
            source_event_id: source_event_id.into(),
            dedup_key: dedup_key.into(),
            details: Map::new(),
        }
    }

    pub fn with_fact(mut self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.facts.push((label.into(), value.into()));
        self
    }

    pub fn with_step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    pub fn with_console(mut self, url: String) -> Self {
        self.console_url = Some(url);
        self
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// The same incident, closed on the on-call topic (e.g. a completed deployment
    /// after a page for the failed one).
    pub fn resolving(mut self) -> Self {
        self.delivery = Delivery {
            topic: Topic::Oncall,
            severity: Severity::Info,
            action: Action::Resolve,
        };
        self
    }

    /// What a dry run sends instead of this notification: a dry run never pages. A
    /// page or a resolve for on-call goes to the team topic instead, as a notice
    /// (`action` `notify`), its summary starting `dry run:`, with `details.dry_run` true
    /// and `details.would_page` saying what it would have done; the text says that
    /// nothing was recorded or frozen. Other notifications are left as they are (they
    /// already say what a dry run would have done).
    pub fn as_dry_run(mut self) -> Self {
        if self.delivery.topic != Topic::Oncall {
            return self;
        }
        let would = self.delivery;
        if !self.summary.starts_with("dry run") {
            self.summary = format!("dry run: {}", self.summary);
        }
        let (verb, severity) = match would.action {
            Action::Resolve => ("resolved", Severity::Info),
            _ => ("opened", Severity::Warning),
        };
        self.facts.push((
            "Dry run".into(),
            format!(
                "DRY_RUN=true: this would have {verb} a page on the on-call topic; it went to the team topic instead. Nothing was recorded and nothing was frozen"
            ),
        ));
        self.details.insert("dry_run".into(), Value::Bool(true));
        self.details.insert(
            "would_page".into(),
            json!({
                "topic": "oncall",
                "severity": would.severity.as_str(),
                "action": would.action.as_str(),
            }),
        );
        self.delivery = Delivery {
            topic: Topic::Notify,
            severity,
            action: Action::Notify,
        };
        self
    }

    /// `[PROD] Deployment failed: menotime-prod-service`: at most 99 printable ASCII
    /// characters, one line.
    pub fn subject(&self) -> String {
        one_line_ascii(
            &format!("{} {}", self.environment.subject_tag(), self.summary),
            SUBJECT_MAX,
        )
    }

    /// One line of at most 140 characters.
    pub fn sms(&self) -> String {
        one_line_ascii(
            &format!("{} {}", self.environment.subject_tag(), self.summary),
            SMS_MAX,
        )
    }

    /// The machine payload (`sqs`, `lambda`, `https`).
    pub fn payload(&self) -> Value {
        json!({
            "schema": SCHEMA,
            "event_type": self.event_type.as_str(),
            "severity": self.delivery.severity.as_str(),
            "action": self.delivery.action.as_str(),
            "dedup_key": self.dedup_key,
            "environment": self.environment.as_str(),
            "cluster": self.cluster,
            "service": self.service,
            "summary": self.summary,
            "occurred_at": self.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "source_event_id": self.source_event_id,
            "details": Value::Object(self.details.clone()),
        })
    }

    /// The text for people (`default`, `email`): summary, facts, next steps, console.
    pub fn text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "{} {}", self.environment.subject_tag(), self.summary);
        t.push('\n');
        let mut facts: Vec<(&str, &str)> = vec![
            ("Environment", self.environment.as_str()),
            ("Cluster", &self.cluster),
            ("Service", &self.service),
        ];
        facts.extend(self.facts.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let width = facts.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
        for (k, v) in facts {
            let _ = writeln!(t, "{:<width$} {}", format!("{k}:"), v);
        }
        if !self.steps.is_empty() {
            t.push_str("\nWhat to do next:\n");
            for s in &self.steps {
                // Each command alone on its line, so it can be copied (or extracted) whole.
                match &s.cli {
                    Some(cli) => {
                        let _ = writeln!(
                            t,
                            "- {}, with menotime-ops or the AWS CLI:\n    {cli}\n    {}",
                            s.what, s.command
                        );
                    }
                    None => {
                        let _ = writeln!(t, "- {}:\n    {}", s.what, s.command);
                    }
                }
            }
        }
        if let Some(url) = &self.console_url {
            let _ = writeln!(t, "\nConsole: {url}");
        }
        let _ = write!(
            t,
            "\n-- {} {} ({}, {}) from event {} at {}",
            SCHEMA,
            self.event_type.as_str(),
            self.delivery.severity.as_str(),
            self.delivery.action.as_str(),
            self.source_event_id,
            self.occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        t
    }

    /// Exactly what SNS Publish receives.
    pub fn render(&self, topics: &Topics) -> Rendered {
        let text = self.text();
        let payload = self.payload().to_string();
        let message = json!({
            "default": text,
            "email": text,
            "sms": self.sms(),
            "sqs": payload,
            "lambda": payload,
            "https": payload,
        })
        .to_string();
        Rendered {
            topic_arn: match self.delivery.topic {
                Topic::Notify => topics.notify.clone(),
                Topic::Oncall => topics.oncall.clone(),
            },
            subject: self.subject(),
            message,
            attributes: vec![
                ("severity", self.delivery.severity.as_str().to_owned()),
                ("environment", self.environment.as_str().to_owned()),
                ("event_type", self.event_type.as_str().to_owned()),
                ("action", self.delivery.action.as_str().to_owned()),
            ],
        }
    }
}

/// Printable ASCII on one line, at most `max` characters (cut with `...`).
fn one_line_ascii(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = true;
    for c in s.chars() {
        let c = match c {
            c if c.is_whitespace() => ' ',
            c if (' '..='~').contains(&c) => c,
            _ => '?',
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
    }
    let out = out.trim_end().to_owned();
    if out.len() <= max {
        out
    } else {
        format!("{}...", out[..max - 3].trim_end())
    }
}

/// The stack's two topics.
#[derive(Clone, Debug)]
pub struct Topics {
    pub notify: String,
    pub oncall: String,
}

impl Topics {
    pub fn from_config(c: &CommonConfig) -> Self {
        Self {
            notify: c.notify_topic_arn.clone(),
            oncall: c.oncall_topic_arn.clone(),
        }
    }
}

/// What one publish sent, for the invocation result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub event_type: EventType,
    pub action: Action,
    pub message_id: String,
}

impl Sent {
    /// `event_type/action`, as invocation results list what they published.
    pub fn label(&self) -> String {
        format!("{}/{}", self.event_type.as_str(), self.action.as_str())
    }
}

/// Renders notifications for the stack's two topics and publishes them: the one way
/// every function notifies.
#[derive(Clone, Debug)]
pub struct Notifier<P> {
    topics: Topics,
    publisher: P,
    dry_run: bool,
}

impl<P: Publisher> Notifier<P> {
    pub fn new(c: &CommonConfig, publisher: P) -> Self {
        Self {
            topics: Topics::from_config(c),
            publisher,
            dry_run: c.dry_run,
        }
    }

    /// Renders `n`, publishes it, and logs one line saying where it went. With
    /// `DRY_RUN=true` what would page goes to the team instead
    /// ([`Notification::as_dry_run`]): the returned [`Sent`] says what was really sent.
    pub async fn send(&self, n: &Notification) -> Result<Sent, Error> {
        let dry;
        let n = if self.dry_run {
            dry = n.clone().as_dry_run();
            &dry
        } else {
            n
        };
        let rendered = n.render(&self.topics);
        let message_id = self.publisher.publish(&rendered).await?;
        tracing::info!(
            event_type = n.event_type.as_str(),
            action = n.delivery.action.as_str(),
            topic = %rendered.topic_arn,
            %message_id,
            subject = %rendered.subject,
            "notified"
        );
        Ok(Sent {
            event_type: n.event_type,
            action: n.delivery.action,
            message_id,
        })
    }
}

/// A notification ready for SNS Publish with `MessageStructure=json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub topic_arn: String,
    pub subject: String,
    pub message: String,
    pub attributes: Vec<(&'static str, String)>,
}

/// Sends rendered notifications (SNS in production, a recorder in tests).
pub trait Publisher {
    /// Publishes and returns the message id.
    fn publish(&self, message: &Rendered) -> impl Future<Output = Result<String, Error>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook;

    fn site(env: Environment) -> CommonConfig {
        CommonConfig {
            environment: env,
            region: "us-west-1".into(),
            account: "123456789012".into(),
            partition: "aws".into(),
            cluster: format!("menotime-{env}-cluster"),
            service: format!("menotime-{env}-service"),
            notify_topic_arn: "arn:aws:sns:us-west-1:123456789012:notify".into(),
            oncall_topic_arn: "arn:aws:sns:us-west-1:123456789012:oncall".into(),
            dry_run: false,
            log_group: format!("/aws/ecs/menotime-{env}"),
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-06-02T18:01:02Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn sample(event_type: EventType, env: Environment, summary: &str) -> Notification {
        let s = site(env);
        Notification::new(
            event_type,
            &s,
            summary,
            at(),
            "ddca6449-b258-46c0-8653-e0e3a6d0468c",
            dedup_key(env, &s.service, "deployment"),
        )
        .with_fact("Deployment", "ecs-svc/4231880795355584839")
        .with_fact(
            "Reason",
            "ECS deployment circuit breaker: task failed to start.",
        )
        .with_step(runbook::describe_deployments(&s))
        .with_step(runbook::tail_logs(&s))
        .with_step(runbook::roll_back(&s, "menotime-backend-prod:47"))
        .with_step(runbook::unfreeze(&s))
        .with_console(runbook::service_console(&s))
        .with_detail("deployment_id", "ecs-svc/4231880795355584839")
    }

    #[test]
    fn routing_table_matches_the_reference() {
        use Action as A;
        use EventType::*;
        use Severity as S;
        use Topic as T;
        let expect = |e, env, topic, sev, action| {
            assert_eq!(
                delivery(e, env),
                Delivery {
                    topic,
                    severity: sev,
                    action
                },
                "{e:?} in {env}"
            );
        };
        for env in [Environment::Dev, Environment::Staging, Environment::Prod] {
            expect(DeployStarted, env, T::Notify, S::Info, A::Notify);
            expect(DeployBlocked, env, T::Notify, S::Warning, A::Notify);
            expect(DeployReviewRequired, env, T::Notify, S::Warning, A::Notify);
            expect(DeployFrozen, env, T::Notify, S::Warning, A::Notify);
            expect(DeploySkipped, env, T::Notify, S::Info, A::Notify);
            expect(DeployInProgress, env, T::Notify, S::Info, A::Notify);
            expect(DeployCompleted, env, T::Notify, S::Info, A::Notify);
            expect(ServiceRecovered, env, T::Oncall, S::Info, A::Resolve);
            expect(TaskOom, env, T::Notify, S::Warning, A::Notify);
            expect(ScaleDown, env, T::Notify, S::Info, A::Notify);
            expect(ScaleUp, env, T::Notify, S::Info, A::Notify);
            expect(ScaleSkipped, env, T::Notify, S::Info, A::Notify);
            expect(ServiceMemoryHigh, env, T::Notify, S::Warning, A::Notify);
            expect(TaskStartFailed, env, T::Notify, S::Warning, A::Notify);
            if env == Environment::Prod {
                expect(TaskInterrupted, env, T::Notify, S::Warning, A::Notify);
            } else {
                expect(TaskInterrupted, env, T::Notify, S::Info, A::Notify);
            }
            expect(DeployDeferred, env, T::Notify, S::Info, A::Notify);
            for paging in [
                DeployRollback,
                DeployFailed,
                ServiceImpaired,
                ScaleFailed,
                DeployRegression,
                DeployRolledBack,
                ServiceAlarm,
            ] {
                if env == Environment::Prod {
                    expect(paging, env, T::Oncall, S::Critical, A::Trigger);
                } else {
                    expect(paging, env, T::Notify, S::Warning, A::Notify);
                }
            }
        }
        let names: std::collections::HashSet<&str> =
            EventType::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(names.len(), EventType::ALL.len());
    }

    #[test]
    fn subject_rules() {
        let n = sample(
            EventType::DeployFailed,
            Environment::Prod,
            "Deployment failed: menotime-prod-service",
        );
        assert_eq!(
            n.subject(),
            "[PROD] Deployment failed: menotime-prod-service"
        );
        let long = sample(
            EventType::DeployBlocked,
            Environment::Staging,
            &format!("Blocked\n\tmain → {} ünïcode", "x".repeat(200)),
        );
        let s = long.subject();
        assert!(s.len() <= SUBJECT_MAX, "{}", s.len());
        assert!(s.starts_with("[STAGING] Blocked main ? x"));
        assert!(s.ends_with("..."));
        assert!(s.chars().all(|c| (' '..='~').contains(&c)));
    }

    #[test]
    fn sms_is_one_short_line() {
        let n = sample(EventType::DeployFailed, Environment::Prod, &"y".repeat(300));
        let sms = n.sms();
        assert!(sms.len() <= SMS_MAX);
        assert!(!sms.contains('\n'));
        assert!(sms.starts_with("[PROD] "));
    }

    #[test]
    fn rendered_message_has_every_protocol_and_attribute() {
        let n = sample(
            EventType::DeployFailed,
            Environment::Prod,
            "Deployment failed: menotime-prod-service",
        );
        let r = n.render(&Topics {
            notify: "arn:notify".into(),
            oncall: "arn:oncall".into(),
        });
        assert_eq!(r.topic_arn, "arn:oncall");
        let m: Value = serde_json::from_str(&r.message).unwrap();
        for k in ["default", "email", "sms", "sqs", "lambda", "https"] {
            assert!(m[k].is_string(), "{k}");
        }
        assert_eq!(m["default"], m["email"]);
        let payload: Value = serde_json::from_str(m["sqs"].as_str().unwrap()).unwrap();
        assert_eq!(m["sqs"], m["lambda"]);
        assert_eq!(m["sqs"], m["https"]);
        assert_eq!(
            payload,
            json!({
                "schema": "menotime.ops/v1",
                "event_type": "deploy.failed",
                "severity": "critical",
                "action": "trigger",
                "dedup_key": "menotime/prod/menotime-prod-service/deployment",
                "environment": "prod",
                "cluster": "menotime-prod-cluster",
                "service": "menotime-prod-service",
                "summary": "Deployment failed: menotime-prod-service",
                "occurred_at": "2025-06-02T18:01:02.000Z",
                "source_event_id": "ddca6449-b258-46c0-8653-e0e3a6d0468c",
                "details": {"deployment_id": "ecs-svc/4231880795355584839"}
            })
        );
        assert_eq!(
            r.attributes,
            vec![
                ("severity", "critical".to_owned()),
                ("environment", "prod".to_owned()),
                ("event_type", "deploy.failed".to_owned()),
                ("action", "trigger".to_owned()),
            ]
        );
    }

    #[test]
    fn text_has_summary_facts_steps_and_console() {
        let n = sample(
            EventType::DeployFailed,
            Environment::Prod,
            "Deployment failed: menotime-prod-service",
        );
        let t = n.text();
        let first = t.lines().next().unwrap();
        assert_eq!(first, "[PROD] Deployment failed: menotime-prod-service");
        for needle in [
            "Environment: prod",
            "Cluster:",
            "menotime-prod-cluster",
            "ecs-svc/4231880795355584839",
            "What to do next:",
            "aws ecs describe-services --region us-west-1 --cluster menotime-prod-cluster --services menotime-prod-service",
            "aws logs tail /aws/ecs/menotime-prod",
            "--task-definition menotime-backend-prod:47",
            "aws ecs untag-resource",
            "Console: https://us-west-1.console.aws.amazon.com/ecs/v2/clusters/menotime-prod-cluster/services/menotime-prod-service",
        ] {
            assert!(t.contains(needle), "missing {needle:?} in\n{t}");
        }
        // A step with an operator CLI command shows it first, the AWS CLI's after it;
        // a step without one shows the AWS CLI's alone.
        assert!(
            t.contains("- Roll back to the previous revision (menotime-backend-prod:47), with menotime-ops or the AWS CLI:\n    menotime-ops rollback --to menotime-backend-prod:47 --env prod --region us-west-1\n    aws ecs update-service --region us-west-1 --cluster menotime-prod-cluster --service menotime-prod-service --task-definition menotime-backend-prod:47 --force-new-deployment\n"),
            "{t}"
        );
        assert!(
            t.contains("- Follow the containers' logs:\n    aws logs tail /aws/ecs/menotime-prod --region us-west-1 --follow --since 30m\n"),
            "{t}"
        );
        // The machine payload carries no command text.
        assert!(!n.payload().to_string().contains("menotime-ops"));
    }

    #[test]
    fn a_dry_run_never_pages() {
        for (n, verb) in [
            (
                sample(
                    EventType::DeployFailed,
                    Environment::Prod,
                    "Deployment failed: x",
                ),
                "opened",
            ),
            (
                sample(
                    EventType::ServiceRecovered,
                    Environment::Prod,
                    "Recovered: x",
                ),
                "resolved",
            ),
        ] {
            assert_eq!(n.delivery.topic, Topic::Oncall);
            let d = n.clone().as_dry_run();
            assert_eq!(d.delivery.topic, Topic::Notify);
            assert_eq!(d.delivery.action, Action::Notify);
            assert!(
                d.subject().starts_with("[PROD] dry run: "),
                "{}",
                d.subject()
            );
            let p = d.payload();
            assert_eq!(p["action"], "notify");
            assert_eq!(p["details"]["dry_run"], true);
            assert_eq!(p["details"]["would_page"]["topic"], "oncall");
            assert_eq!(
                p["details"]["would_page"]["action"],
                n.delivery.action.as_str()
            );
            assert!(d.text().contains(&format!("would have {verb} a page")));
            assert!(d
                .text()
                .contains("Nothing was recorded and nothing was frozen"));
            let r = d.render(&Topics {
                notify: "arn:notify".into(),
                oncall: "arn:oncall".into(),
            });
            assert_eq!(r.topic_arn, "arn:notify");
            assert_eq!(d.clone().as_dry_run(), d, "idempotent");
        }
        // What never pages is sent as it is.
        let info = sample(EventType::DeployStarted, Environment::Prod, "Deploying");
        assert_eq!(info.clone().as_dry_run(), info);
    }

    #[test]
    fn resolve_keeps_the_incident_key() {
        let n = sample(
            EventType::DeployCompleted,
            Environment::Prod,
            "Deployment completed",
        );
        assert_eq!(n.delivery.topic, Topic::Notify);
        let r = n.clone().resolving();
        assert_eq!(r.delivery.topic, Topic::Oncall);
        assert_eq!(r.delivery.action, Action::Resolve);
        assert_eq!(r.dedup_key, n.dedup_key);
        assert_eq!(r.payload()["action"], "resolve");
    }
}
