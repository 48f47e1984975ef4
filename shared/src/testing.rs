//! Test support, behind the `test-util` feature: one in-memory AWS that implements
//! every adapter trait ([`EcsApi`], [`EcrApi`], [`ScalingApi`], [`Publisher`]), records
//! every call in order and fails the calls a test chooses; the configuration a test
//! starts from; and SDK clients over aws-smithy-mocks that retry without waiting.
//!
//! Handlers are generic over the adapter traits, so a test hands the same
//! [`FakeAws`] (cloned: clones share one state) to each of the handler's dependencies:
//!
//! ```ignore
//! let aws = FakeAws::new(Environment::Prod, FakeRevision::new(Environment::Prod, 7, &image, &[]));
//! let gate = ScanGate::new(cfg, aws.clone(), aws.clone(), aws.clone());
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[cfg(feature = "test-util")]
pub use aws_smithy_mocks;

use crate::aws::autoscaling::{validate, ScalingApi};
use crate::aws::ecr::{EcrApi, ScanFindings};
use crate::aws::ecs::{EcsApi, Revision};
use crate::config::{CommonConfig, Environment};
use crate::domain::deploy::{RevisionFacts, RevisionSummary};
use crate::domain::offhours::ScalableTarget;
use crate::domain::service::{
    CircuitBreaker, DeploymentConfiguration, DeploymentState, ServiceState, ServiceTags,
};
use crate::notify::{Publisher, Rendered};
use crate::{Error, Retry};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-west-1";
/// The container whose image scan-gate replaces, as in the manual.
pub const CONTAINER: &str = "menotime-backend";

/// The configuration every function shares, for `env`, with the manual's names.
pub fn common(env: Environment) -> CommonConfig {
    CommonConfig {
        environment: env,
        region: REGION.into(),
        account: ACCOUNT.into(),
        partition: "aws".into(),
        cluster: format!("menotime-{env}-cluster"),
        service: format!("menotime-{env}-service"),
        notify_topic_arn: format!("arn:aws:sns:{REGION}:{ACCOUNT}:menotime-{env}-notify"),
        oncall_topic_arn: format!("arn:aws:sns:{REGION}:{ACCOUNT}:menotime-{env}-oncall"),
        dry_run: false,
        log_group: format!("/aws/ecs/menotime-{env}"),
    }
}

/// The security group of the fake service's tasks.
pub const SECURITY_GROUP: &str = "sg-0a1b2c3d4e5f60718";

/// The manual's deployment configuration of `env`: prod rolls with the circuit
/// breaker (with rollback) and 100% minimum healthy; staging keeps one of two tasks;
/// dev replaces all at once.
pub fn manual_deployment_configuration(env: Environment) -> DeploymentConfiguration {
    match env {
        Environment::Prod => DeploymentConfiguration {
            maximum_percent: Some(150),
            minimum_healthy_percent: Some(100),
            circuit_breaker: Some(CircuitBreaker {
                enable: true,
                rollback: true,
            }),
            alarms: None,
        },
        Environment::Staging => DeploymentConfiguration {
            maximum_percent: Some(200),
            minimum_healthy_percent: Some(50),
            ..Default::default()
        },
        Environment::Dev => DeploymentConfiguration {
            maximum_percent: Some(200),
            minimum_healthy_percent: Some(0),
            ..Default::default()
        },
    }
}

/// The ARN of revision `n` of `menotime-backend-<env>`.
pub fn td_arn(env: Environment, n: u32) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/menotime-backend-{env}:{n}")
}

/// The image repository's registry path, `<registry>/menotime/backend`.
pub fn repository_uri() -> String {
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/menotime/backend")
}

/// Standard retries (3 attempts) without the waits, for clients over aws-smithy-mocks.
pub fn fast_retries() -> aws_smithy_types::retry::RetryConfig {
    crate::sdk::retry_config().with_initial_backoff(Duration::from_millis(1))
}

/// An SDK client of `$krate` answered by aws-smithy-mocks `$rules` in order, retrying
/// as the functions do but without waiting.
#[cfg(feature = "test-util")]
#[macro_export]
macro_rules! mock_client {
    ($krate:ident, $rules:expr) => {
        $crate::testing::aws_smithy_mocks::mock_client!(
            $krate,
            $crate::testing::aws_smithy_mocks::RuleMode::Sequential,
            $rules,
            |c| c.retry_config($crate::testing::fast_retries())
        )
    };
}

/// How a chosen call fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failing {
    /// The next `n` calls of the operation fail, then it works again.
    Times(usize),
    Always,
}

/// A revision held by the fake ECS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeRevision {
    pub facts: RevisionFacts,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    /// Every container's (name, image); empty means one [`CONTAINER`] running
    /// `facts.image`.
    pub containers: Vec<(String, String)>,
}

impl FakeRevision {
    /// Revision `n` of `menotime-backend-<env>` running `image`, with `tags`, at the
    /// manual's task size for the environment.
    pub fn new(env: Environment, n: u32, image: &str, tags: &[(&str, &str)]) -> FakeRevision {
        let (cpu, memory) = match env {
            Environment::Prod => ("1024", "2048"),
            _ => ("256", "1024"),
        };
        FakeRevision {
            facts: RevisionFacts {
                arn: td_arn(env, n),
                family: format!("menotime-backend-{env}"),
                revision: n,
                image: image.to_owned(),
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            cpu: Some(cpu.into()),
            memory: Some(memory.into()),
            containers: Vec::new(),
        }
    }

    pub fn summary(&self) -> RevisionSummary {
        RevisionSummary {
            arn: self.facts.arn.clone(),
            family: self.facts.family.clone(),
            revision: self.facts.revision,
            images: if self.containers.is_empty() {
                vec![(CONTAINER.to_owned(), self.facts.image.clone())]
            } else {
                self.containers.clone()
            },
            cpu: self.cpu.clone(),
            memory: self.memory.clone(),
            tags: self.facts.tags.clone(),
        }
    }
}

/// Everything the fake AWS holds. Tests read and change it through [`FakeAws::world`].
#[derive(Debug, Default)]
pub struct World {
    /// The service; its `tags` are re-read from `tags` at every DescribeServices.
    pub service: ServiceState,
    /// The service's tags as ECS stores them.
    pub tags: BTreeMap<String, String>,
    pub revisions: Vec<FakeRevision>,
    /// The service's Application Auto Scaling target, if it has one.
    pub target: Option<ScalableTarget>,
    /// ECR scans by digest, with the tag the image carries.
    pub findings: HashMap<String, (String, ScanFindings)>,
    /// What was published, in order.
    pub sent: Vec<Rendered>,
    /// Every call, in order (`ecs:DescribeServices`, `sns:Publish`, ...).
    pub calls: Vec<&'static str>,
    /// The id UpdateService gives the deployment it starts.
    pub next_deployment: String,
    /// The last UpdateService that started a deployment: the revision, and whether it
    /// forced a new deployment.
    pub last_update: Option<(String, bool)>,
    /// The family's newest revision lacks the watched container (a revision registered
    /// by hand for something else).
    pub latest_lacks_container: bool,
    /// New tasks never start (no capacity, a missing image): a higher desired count
    /// leaves them pending. Otherwise, like moto, the running count follows the desired
    /// count at once.
    pub tasks_fail_to_start: bool,
    failing: BTreeMap<&'static str, Failing>,
    /// Calls made since the fake was created, whatever the operation.
    pub call_count: usize,
    /// Calls (by their number in `call_count`) that fail, whatever the operation.
    failing_calls: std::collections::BTreeSet<usize>,
}

/// The in-memory AWS. Clones share one [`World`].
#[derive(Clone, Debug, Default)]
pub struct FakeAws(Arc<Mutex<World>>);

impl FakeAws {
    /// An environment's service running `running` (whose revision also is the family's
    /// newest), one completed deployment, no tags, 2 tasks.
    pub fn new(env: Environment, running: FakeRevision) -> FakeAws {
        let world = World {
            service: ServiceState {
                arn: format!(
                    "arn:aws:ecs:{REGION}:{ACCOUNT}:service/menotime-{env}-cluster/menotime-{env}-service"
                ),
                status: "ACTIVE".into(),
                task_definition: running.facts.arn.clone(),
                tags: ServiceTags::default(),
                deployments: vec![DeploymentState {
                    id: "ecs-svc/0".into(),
                    status: "PRIMARY".into(),
                    rollout_state: Some("COMPLETED".into()),
                    task_definition: running.facts.arn.clone(),
                    ..Default::default()
                }],
                desired_count: 2,
                running_count: 2,
                pending_count: 0,
                deployment_configuration: Some(manual_deployment_configuration(env)),
                security_groups: vec![SECURITY_GROUP.into()],
                events: Vec::new(),
            },
            revisions: vec![running],
            next_deployment: "ecs-svc/1111".into(),
            ..Default::default()
        };
        FakeAws(Arc::new(Mutex::new(world)))
    }

    /// The world, to read or change.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the calls made so far.
    pub fn calls(&self) -> Vec<&'static str> {
        std::mem::take(&mut self.world().calls)
    }

    /// Takes the messages published so far.
    pub fn sent(&self) -> Vec<Rendered> {
        std::mem::take(&mut self.world().sent)
    }

    /// The next `times` calls of `operation` fail with a transient error (a throttle,
    /// or the sandbox dying at that point), then it works again.
    pub fn fail(&self, operation: &'static str, times: usize) {
        self.world()
            .failing
            .insert(operation, Failing::Times(times));
    }

    /// Every call of `operation` fails, until [`FakeAws::heal`].
    pub fn fail_always(&self, operation: &'static str) {
        self.world().failing.insert(operation, Failing::Always);
    }

    pub fn heal(&self, operation: &'static str) {
        self.world().failing.remove(operation);
    }

    /// The calls numbered `numbers` (counting every call since the fake was created,
    /// from 0) fail with a transient error, whatever their operation: a fault at any
    /// step.
    pub fn fail_calls(&self, numbers: impl IntoIterator<Item = usize>) {
        self.world().failing_calls.extend(numbers);
    }

    /// No call fails any more.
    pub fn heal_all(&self) {
        let mut w = self.world();
        w.failing.clear();
        w.failing_calls.clear();
    }

    /// One tag of the service.
    pub fn tag(&self, key: &str) -> Option<String> {
        self.world().tags.get(key).cloned()
    }

    pub fn set_tag(&self, key: &str, value: &str) {
        self.world().tags.insert(key.to_owned(), value.to_owned());
    }

    pub fn remove_tag(&self, key: &str) {
        self.world().tags.remove(key);
    }

    /// The revision the service runs.
    pub fn running(&self) -> RevisionFacts {
        let w = self.world();
        w.revisions
            .iter()
            .find(|r| r.facts.arn == w.service.task_definition)
            .map(|r| r.facts.clone())
            .expect("the service runs a known revision")
    }

    /// Adds a revision (an older one, or one registered by hand).
    pub fn add_revision(&self, r: FakeRevision) {
        self.world().revisions.push(r);
    }

    /// The rollout the service is in finishes: one PRIMARY deployment, COMPLETED.
    pub fn settle(&self) {
        let mut w = self.world();
        w.service.deployments.truncate(1);
        if let Some(d) = w.service.deployments.first_mut() {
            d.rollout_state = Some("COMPLETED".into());
            d.status = "PRIMARY".into();
        }
    }

    /// Records the call, then fails it if the test chose so.
    fn call(&self, operation: &'static str) -> Result<MutexGuard<'_, World>, Error> {
        let mut w = self.world();
        w.calls.push(operation);
        let number = w.call_count;
        w.call_count += 1;
        let fail = w.failing_calls.remove(&number)
            || match w.failing.get(operation).copied() {
                Some(Failing::Always) => true,
                Some(Failing::Times(n)) if n > 0 => {
                    if n == 1 {
                        w.failing.remove(operation);
                    } else {
                        w.failing.insert(operation, Failing::Times(n - 1));
                    }
                    true
                }
                _ => false,
            };
        if fail {
            return Err(Error::Aws {
                operation,
                message: "injected fault".into(),
                advice: "transient",
                retry: Retry::Later,
            });
        }
        Ok(w)
    }
}

fn not_found(operation: &'static str, what: &str) -> Error {
    Error::Aws {
        operation,
        message: format!("ClientException: Unable to describe task definition {what}"),
        advice: "Check that the service's task definition still exists",
        retry: Retry::Never,
    }
}

impl World {
    /// A new PRIMARY deployment of `td` (an ARN or `family:revision`), rolling out while
    /// the one before drains; returns its id.
    fn start_deployment(&mut self, td: &str, forced: bool) -> String {
        let id = self.next_deployment.clone();
        let arn = self
            .find(td)
            .map(|r| r.facts.arn.clone())
            .unwrap_or_else(|| td.to_owned());
        let previous = self.service.task_definition.clone();
        let (previous_id, previous_created) = self
            .service
            .primary()
            .map(|d| (d.id.clone(), d.created_at))
            .unwrap_or_else(|| ("ecs-svc/0".into(), None));
        let now = chrono::Utc::now();
        self.service.task_definition = arn.clone();
        self.service.deployments = vec![
            DeploymentState {
                id: id.clone(),
                status: "PRIMARY".into(),
                rollout_state: Some("IN_PROGRESS".into()),
                task_definition: arn,
                created_at: Some(now),
                updated_at: Some(now),
            },
            DeploymentState {
                id: previous_id,
                status: "ACTIVE".into(),
                rollout_state: Some("COMPLETED".into()),
                task_definition: previous,
                created_at: previous_created,
                updated_at: Some(now),
            },
        ];
        self.last_update = Some((td.to_owned(), forced));
        id
    }

    /// A revision by ARN, `family:revision`, or family (its newest).
    fn find(&self, td: &str) -> Option<&FakeRevision> {
        if td.starts_with("arn:") {
            return self.revisions.iter().find(|r| r.facts.arn == td);
        }
        match td.rsplit_once(':') {
            Some((family, n)) => self
                .revisions
                .iter()
                .find(|r| r.facts.family == family && r.facts.revision.to_string() == n),
            None => self
                .revisions
                .iter()
                .filter(|r| r.facts.family == td)
                .max_by_key(|r| r.facts.revision),
        }
    }
}

impl EcsApi for FakeAws {
    type Doc = RevisionFacts;

    async fn describe_service(
        &self,
        _cluster: &str,
        _service: &str,
    ) -> Result<ServiceState, Error> {
        let w = self.call("ecs:DescribeServices")?;
        let mut s = w.service.clone();
        s.tags = ServiceTags::read(w.tags.clone());
        Ok(s)
    }

    async fn describe_revision(
        &self,
        td: &str,
        container: &str,
    ) -> Result<Revision<RevisionFacts>, Error> {
        let w = self.call("ecs:DescribeTaskDefinition")?;
        if w.latest_lacks_container && !td.contains(':') {
            return Err(Error::Misconfigured(format!(
                "task definition {td} has no container named {container:?} with an image; check CONTAINER_NAME"
            )));
        }
        let facts = w
            .find(td)
            .map(|r| r.facts.clone())
            .ok_or_else(|| not_found("ecs:DescribeTaskDefinition", td))?;
        Ok(Revision {
            doc: facts.clone(),
            facts,
        })
    }

    async fn describe_task_definition(&self, td: &str) -> Result<RevisionSummary, Error> {
        let w = self.call("ecs:DescribeTaskDefinition")?;
        w.find(td)
            .map(FakeRevision::summary)
            .ok_or_else(|| not_found("ecs:DescribeTaskDefinition", td))
    }

    async fn register_revision(
        &self,
        base: &RevisionFacts,
        _container: &str,
        image: &str,
        tags: &[(String, String)],
    ) -> Result<RevisionFacts, Error> {
        let mut w = self.call("ecs:RegisterTaskDefinition")?;
        let n = w
            .revisions
            .iter()
            .filter(|r| r.facts.family == base.family)
            .map(|r| r.facts.revision)
            .max()
            .unwrap_or(0)
            + 1;
        let prefix = base
            .arn
            .rsplit_once(':')
            .map(|(p, _)| p.to_owned())
            .unwrap_or_default();
        let template = w
            .revisions
            .iter()
            .find(|r| r.facts.arn == base.arn)
            .cloned();
        let facts = RevisionFacts {
            arn: format!("{prefix}:{n}"),
            family: base.family.clone(),
            revision: n,
            image: image.to_owned(),
            tags: tags.iter().cloned().collect(),
        };
        w.revisions.push(FakeRevision {
            facts: facts.clone(),
            cpu: template.as_ref().and_then(|t| t.cpu.clone()),
            memory: template.as_ref().and_then(|t| t.memory.clone()),
            containers: Vec::new(),
        });
        Ok(facts)
    }

    /// Like ECS: the service runs the new revision at once, in a new PRIMARY deployment
    /// rolling out while the previous one drains.
    async fn update_service(&self, _c: &str, _s: &str, td: &str) -> Result<Option<String>, Error> {
        let mut w = self.call("ecs:UpdateService")?;
        Ok(Some(w.start_deployment(td, false)))
    }

    async fn force_deploy(&self, _c: &str, _s: &str, td: &str) -> Result<Option<String>, Error> {
        let mut w = self.call("ecs:UpdateService")?;
        if w.find(td).is_none() {
            return Err(not_found("ecs:UpdateService", td));
        }
        Ok(Some(w.start_deployment(td, true)))
    }

    async fn set_desired_count(&self, _c: &str, _s: &str, desired: i32) -> Result<(), Error> {
        let mut w = self.call("ecs:UpdateService")?;
        w.service.desired_count = desired;
        if w.tasks_fail_to_start {
            w.service.running_count = w.service.running_count.min(desired);
        } else {
            w.service.running_count = desired;
        }
        w.service.pending_count = (desired - w.service.running_count).max(0);
        Ok(())
    }

    async fn tag_service(&self, arn: &str, new: &[(String, String)]) -> Result<(), Error> {
        let mut w = self.call("ecs:TagResource")?;
        if arn != w.service.arn {
            return Err(Error::Misconfigured(format!("no service {arn}")));
        }
        w.tags.extend(new.iter().cloned());
        Ok(())
    }

    async fn tag_revision(&self, arn: &str, new: &[(String, String)]) -> Result<(), Error> {
        let mut w = self.call("ecs:TagResource")?;
        let r = w
            .revisions
            .iter_mut()
            .find(|r| r.facts.arn == arn)
            .ok_or_else(|| Error::Misconfigured(format!("no revision {arn}")))?;
        r.facts.tags.extend(new.iter().cloned());
        Ok(())
    }

    async fn untag_service(&self, arn: &str, keys: &[String]) -> Result<(), Error> {
        let mut w = self.call("ecs:UntagResource")?;
        if arn != w.service.arn {
            return Err(Error::Misconfigured(format!("no service {arn}")));
        }
        for k in keys {
            w.tags.remove(k);
        }
        Ok(())
    }
}

impl EcrApi for FakeAws {
    /// Like ECR: asked for a digest and a tag, it knows the image only if both match.
    async fn scan_findings(
        &self,
        _repo: &str,
        digest: &str,
        tag: &str,
    ) -> Result<ScanFindings, Error> {
        let w = self.call("ecr:DescribeImageScanFindings")?;
        match w.findings.get(digest) {
            Some((t, f)) if t == tag => Ok(f.clone()),
            _ => Err(Error::rejected(format!(
                "ECR has no image {digest} tagged {tag}"
            ))),
        }
    }
}

impl ScalingApi for FakeAws {
    async fn describe_target(&self, _c: &str, _s: &str) -> Result<Option<ScalableTarget>, Error> {
        let w = self.call("application-autoscaling:DescribeScalableTargets")?;
        Ok(w.target)
    }

    async fn register_target(&self, c: &str, s: &str, t: &ScalableTarget) -> Result<(), Error> {
        validate(c, s, t)?;
        let mut w = self.call("application-autoscaling:RegisterScalableTarget")?;
        if w.target.is_none() {
            return Err(Error::Misconfigured(
                "the fake updates only an existing scalable target".into(),
            ));
        }
        w.target = Some(*t);
        Ok(())
    }
}

impl Publisher for FakeAws {
    async fn publish(&self, m: &Rendered) -> Result<String, Error> {
        let mut w = self.call("sns:Publish")?;
        w.sent.push(m.clone());
        Ok(format!("msg-{}", w.sent.len()))
    }
}
