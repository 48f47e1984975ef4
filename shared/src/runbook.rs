//! The manual's runbook commands with real names filled in, for the "what to do next"
//! part of every notification. Names are validated at start-up (letters, digits, `-`,
//! `_`, `/`), so nothing here needs shell quoting beyond the JSON of `put-events`.

use serde_json::json;

use chrono::{DateTime, Utc};

use crate::config::CommonConfig;
use crate::domain::offhours::{utc_second, OffhoursTag, Snapshot};
use crate::domain::scan::{APPROVER_PLACEHOLDER, DETAIL_APPROVAL, REASON_PLACEHOLDER, SOURCE_OPS};
use crate::domain::service::DeploymentConfiguration;
use crate::domain::severity::ReviewedCounts;
use crate::tags;

/// One next step: what it is for, the AWS CLI command that does it, and the operator
/// CLI's (`menotime-ops`) equivalent when it has one. The AWS CLI command is what
/// machines get (e.g. `details.approve_command`); people see both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub what: String,
    pub command: String,
    /// The same step with `menotime-ops`, shown before the AWS CLI command.
    pub cli: Option<String>,
}

impl Step {
    pub fn new(what: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            command: command.into(),
            cli: None,
        }
    }

    /// The `menotime-ops` equivalent: `args` after the program name, followed by the
    /// environment and, where they differ from the manual's, the cluster and service.
    pub fn with_cli(mut self, c: &CommonConfig, args: &str) -> Self {
        self.cli = Some(ops_command(c, args));
        self
    }
}

/// What the `menotime-ops` commands in notifications put where a human must write
/// why (`unfreeze --reason`); the CLI refuses it unchanged.
pub const UNFREEZE_REASON_PLACEHOLDER: &str = "WHAT_WAS_REVIEWED";

/// `menotime-ops <args> --env <env> [--cluster ..] [--service ..] --region <region>`:
/// the cluster and service are named only when they are not the manual's
/// (`menotime-<env>-cluster`, `menotime-<env>-service`), which the CLI assumes.
pub fn ops_command(c: &CommonConfig, args: &str) -> String {
    let env = c.environment;
    let mut cmd = format!("menotime-ops {args} --env {env}");
    if c.cluster != format!("menotime-{env}-cluster") {
        cmd.push_str(&format!(" --cluster {}", c.cluster));
    }
    if c.service != format!("menotime-{env}-service") {
        cmd.push_str(&format!(" --service {}", c.service));
    }
    cmd.push_str(&format!(" --region {}", c.region));
    cmd
}

/// The service's ARN, in the function's own partition.
pub fn service_arn(c: &CommonConfig) -> String {
    format!(
        "arn:{}:ecs:{}:{}:service/{}/{}",
        c.partition, c.region, c.account, c.cluster, c.service
    )
}

/// The ARN of `short` (`family:revision`), in the function's own partition.
pub fn task_definition_arn(c: &CommonConfig, short: &str) -> String {
    format!(
        "arn:{}:ecs:{}:{}:task-definition/{short}",
        c.partition, c.region, c.account
    )
}

pub fn describe_deployments(c: &CommonConfig) -> Step {
    Step::new(
        "See the service's deployments",
        format!(
            "aws ecs describe-services --region {} --cluster {} --services {} --query 'services[0].deployments'",
            c.region, c.cluster, c.service
        ),
    )
    .with_cli(c, "status")
}

pub fn tail_logs(c: &CommonConfig) -> Step {
    Step::new(
        "Follow the containers' logs",
        format!(
            "aws logs tail {} --region {} --follow --since 30m",
            c.log_group, c.region
        ),
    )
}

/// Roll the service back to `revision` (`family:revision`), as the manual's rollback
/// procedure does: a new deployment of that revision (`--force-new-deployment`).
pub fn roll_back(c: &CommonConfig, revision: &str) -> Step {
    Step::new(
        format!("Roll back to the previous revision ({revision})"),
        format!(
            "aws ecs update-service --region {} --cluster {} --service {} --task-definition {revision} --force-new-deployment",
            c.region, c.cluster, c.service
        ),
    )
    // The CLI freezes first, then starts a new deployment of the revision.
    .with_cli(c, &format!("rollback --to {revision}"))
}

pub fn unfreeze(c: &CommonConfig) -> Step {
    Step::new(
        "After review, lift the freeze so deployments resume",
        format!(
            "aws ecs untag-resource --region {} --resource-arn {} --tag-keys {}",
            c.region,
            service_arn(c),
            tags::DEPLOY_FREEZE
        ),
    )
    .with_cli(
        c,
        &format!("unfreeze --reason '{UNFREEZE_REASON_PLACEHOLDER}'"),
    )
}

/// Hold deployments, e.g. before rolling back by hand, so that a rescan of the newer
/// image does not deploy it again. `why` ends up in the tag (no quotes in it).
pub fn freeze(c: &CommonConfig, why: &str) -> Step {
    Step::new(
        "Before rolling back by hand, freeze deployments so a rescan does not redeploy the image",
        format!(
            "aws ecs tag-resource --region {} --resource-arn {} --tags 'key={},value={}'",
            c.region,
            service_arn(c),
            tags::DEPLOY_FREEZE,
            tags::value(why)
        ),
    )
    .with_cli(c, &format!("freeze --reason '{}'", tags::value(why)))
}

pub fn show_freeze(c: &CommonConfig) -> Step {
    Step::new(
        "See why the service is frozen",
        format!(
            "aws ecs list-tags-for-resource --region {} --resource-arn {}",
            c.region,
            service_arn(c)
        ),
    )
    .with_cli(c, "status")
}

/// The service's recent events: why tasks cannot start or be placed.
pub fn service_events(c: &CommonConfig) -> Step {
    Step::new(
        "See why ECS cannot run the tasks (the service's latest events)",
        format!(
            "aws ecs describe-services --region {} --cluster {} --services {} --query 'services[0].events[:10]'",
            c.region, c.cluster, c.service
        ),
    )
}

/// A stopped task's details (ECS keeps stopped tasks for about an hour).
pub fn describe_task(c: &CommonConfig, task_id: &str) -> Step {
    Step::new(
        "See the stopped task (kept by ECS for about an hour)",
        format!(
            "aws ecs describe-tasks --region {} --cluster {} --tasks {task_id}",
            c.region, c.cluster
        ),
    )
}

/// The manual's "Task Won't Start" check: why the stopped task stopped (`task` is its
/// ARN or id; ECS keeps stopped tasks for about an hour).
pub fn stopped_reason(c: &CommonConfig, task: &str) -> Step {
    Step::new(
        "Inspect the stopped task (ECS keeps it for about an hour)",
        format!(
            "aws ecs describe-tasks --region {} --cluster {} --tasks {task} --query 'tasks[0].{{lastStatus:lastStatus,stopCode:stopCode,stoppedReason:stoppedReason}}'",
            c.region, c.cluster
        ),
    )
}

/// The manual's "Task Health Check Failing" debug: the task's network interface.
pub fn task_eni(c: &CommonConfig, task: &str) -> Step {
    Step::new(
        "Get the task's network interface (ENI)",
        format!(
            "aws ecs describe-tasks --region {} --cluster {} --tasks {task} --query 'tasks[0].attachments[0].details[?name==`networkInterfaceId`].value'",
            c.region, c.cluster
        ),
    )
}

/// The manual's check that the security groups allow port 8000 (and, for a task
/// that must pull its image and secrets, HTTPS out). When the service reported no
/// groups (`groups` empty), the command looks them up itself, from the service's
/// `awsvpcConfiguration`, so the check is never left out.
pub fn security_groups(c: &CommonConfig, groups: &[String]) -> Step {
    let ids = if groups.is_empty() {
        format!(
            "$(aws ecs describe-services --region {} --cluster {} --services {} --query 'services[0].networkConfiguration.awsvpcConfiguration.securityGroups' --output text)",
            c.region, c.cluster, c.service
        )
    } else {
        groups.join(" ")
    };
    Step::new(
        if groups.is_empty() {
            "Check the service's security groups (looked up from the service, which did not report them) allow port 8000 in (and HTTPS out to ECR and Secrets Manager)"
        } else {
            "Check the service's security groups allow port 8000 in (and HTTPS out to ECR and Secrets Manager)"
        },
        format!(
            "aws ec2 describe-security-groups --region {} --group-ids {ids} --query 'SecurityGroups[].{{id:GroupId,in:IpPermissions,out:IpPermissionsEgress}}'",
            c.region,
        ),
    )
}

/// What a revision needs to start: its execution role, image, secrets and port.
pub fn revision_startup(c: &CommonConfig, revision: &str) -> Step {
    Step::new(
        format!("See what {revision} needs to start (execution role, image, secrets, port)"),
        format!(
            "aws ecs describe-task-definition --region {} --task-definition {revision} --query 'taskDefinition.{{executionRoleArn:executionRoleArn,containers:containerDefinitions[].{{name:name,image:image,secrets:secrets,portMappings:portMappings}}}}'",
            c.region
        ),
    )
}

/// Whether the image a task could not pull exists in ECR.
pub fn ecr_image(c: &CommonConfig, repository: &str, id: &str) -> Step {
    Step::new(
        "Check that the image exists in ECR",
        format!(
            "aws ecr describe-images --region {} --repository-name {repository} --image-ids {id}",
            c.region
        ),
    )
}

/// A revision's task size (the manual's fix for high memory is a bigger one).
pub fn revision_size(c: &CommonConfig, revision: &str) -> Step {
    Step::new(
        format!("See the task size of {revision}"),
        format!(
            "aws ecs describe-task-definition --region {} --task-definition {revision} --query 'taskDefinition.{{cpu:cpu,memory:memory}}'",
            c.region
        ),
    )
}

/// An alarm's recent state changes.
pub fn alarm_history(c: &CommonConfig, alarm: &str) -> Step {
    Step::new(
        format!("See {alarm}'s recent state changes"),
        format!(
            "aws cloudwatch describe-alarm-history --region {} --alarm-name {alarm} --history-item-type StateUpdate --max-items 5",
            c.region
        ),
    )
}

/// The service's deployment configuration as the manual wants it for prod, with the
/// rest kept (`config` is the restored configuration). Changing it starts no deployment.
pub fn restore_safety_net(c: &CommonConfig, config: &DeploymentConfiguration) -> Step {
    let mut doc = serde_json::Map::new();
    if let Some(m) = config.maximum_percent {
        doc.insert("maximumPercent".into(), json!(m));
    }
    if let Some(m) = config.minimum_healthy_percent {
        doc.insert("minimumHealthyPercent".into(), json!(m));
    }
    if let Some(cb) = config.circuit_breaker {
        doc.insert(
            "deploymentCircuitBreaker".into(),
            json!({"enable": cb.enable, "rollback": cb.rollback}),
        );
    }
    if let Some(a) = &config.alarms {
        doc.insert(
            "alarms".into(),
            json!({"alarmNames": a.names, "enable": a.enable, "rollback": a.rollback}),
        );
    }
    Step::new(
        "Restore the manual's deployment safety net (it starts no deployment), then scan or approve the image again",
        format!(
            "aws ecs update-service --region {} --cluster {} --service {} --deployment-configuration '{}'",
            c.region,
            c.cluster,
            c.service,
            serde_json::Value::Object(doc)
        ),
    )
}

/// The manual's third fix for high memory usage: find the OutOfMemory messages.
pub fn oom_logs(c: &CommonConfig) -> Step {
    Step::new(
        "Find the OutOfMemory messages in the containers' logs",
        format!(
            "aws logs tail {} --region {} --since 2h --filter-pattern OutOfMemory",
            c.log_group, c.region
        ),
    )
}

/// The manual's way to find the previous revision of a family.
pub fn list_revisions(c: &CommonConfig, family: &str) -> Step {
    Step::new(
        "Find the previous revision",
        format!(
            "aws ecs list-task-definitions --region {} --family-prefix {family} --sort DESCENDING --max-items 5",
            c.region
        ),
    )
}

pub fn scan_findings(c: &CommonConfig, repository: &str, digest: &str) -> Step {
    Step::new(
        "Read the scan findings",
        format!(
            "aws ecr describe-image-scan-findings --region {} --repository-name {repository} --image-id imageDigest={digest}",
            c.region
        ),
    )
}

/// The ready-to-paste approval (docs/reference.md §5): replace YOUR_NAME and the reason.
/// `reviewed` fills in `reviewed-counts`: the counts the approver is shown, which the
/// approval will hold scan-gate to.
/// The entry names `event_bus`, the stack's approvals bus (`APPROVAL_EVENT_BUS`): the
/// approval rule listens there only, and only the operators' role may put events on it.
/// EventBridge delivers the same event whatever the bus, so scan-gate sees exactly the
/// approval event of docs/reference.md §5.2.
pub fn approve(
    c: &CommonConfig,
    event_bus: &str,
    repository: &str,
    digest: &str,
    tag: &str,
    reviewed: &ReviewedCounts,
) -> Step {
    let detail = json!({
        "repository-name": repository,
        "image-digest": digest,
        "image-tag": tag,
        "approved-by": APPROVER_PLACEHOLDER,
        "reason": REASON_PLACEHOLDER,
        "reviewed-counts": reviewed.to_json(),
    });
    let entries = json!([{
        "Source": SOURCE_OPS,
        "DetailType": DETAIL_APPROVAL,
        "Detail": detail.to_string(),
        "EventBusName": event_bus,
    }]);
    // The CLI fills in approved-by (the caller's identity) and reviewed-counts itself.
    let mut cli = format!("approve --tag {tag} --digest {digest} --reason '{REASON_PLACEHOLDER}'");
    if event_bus != format!("menotime-{}-approvals", c.environment) {
        cli.push_str(&format!(" --bus {event_bus}"));
    }
    if repository != DEFAULT_REPOSITORY {
        cli.push_str(&format!(" --repository {repository}"));
    }
    Step::new(
        "After reviewing the findings, approve the deployment (edit approved-by and reason)",
        format!(
            "aws events put-events --region {} --entries '{entries}'",
            c.region
        ),
    )
    .with_cli(c, &cli)
}

/// The manual's ECR repository, which `menotime-ops` assumes unless told otherwise.
pub const DEFAULT_REPOSITORY: &str = "menotime/backend";

/// The service's scalable target (min, max, suspended state).
pub fn describe_scalable_target(c: &CommonConfig) -> Step {
    Step::new(
        "See the scalable target (min, max, suspended state)",
        format!(
            "aws application-autoscaling describe-scalable-targets --region {} --service-namespace ecs --scalable-dimension ecs:service:DesiredCount --resource-ids {}",
            c.region,
            resource_id(c)
        ),
    )
    .with_cli(c, "status")
}

/// The service's task counts.
pub fn task_counts(c: &CommonConfig) -> Step {
    Step::new(
        "See the service's task counts",
        format!(
            "aws ecs describe-services --region {} --cluster {} --services {} --query 'services[0].{{desired:desiredCount,running:runningCount,pending:pendingCount}}'",
            c.region, c.cluster, c.service
        ),
    )
    .with_cli(c, "status")
}

/// The off-hours snapshot and exclusion tags, on `arn` (the service).
pub fn show_offhours_tags(c: &CommonConfig, arn: &str) -> Step {
    Step::new(
        format!(
            "See the saved capacity (tag {}) and the exclusion (tag {})",
            tags::OFFHOURS_SNAPSHOT,
            tags::OFFHOURS
        ),
        format!(
            "aws ecs list-tags-for-resource --region {} --resource-arn {arn}",
            c.region
        ),
    )
    .with_cli(c, "status")
}

/// The commands that restore `snapshot` by hand, in the scaler's own order: the
/// scalable target, the desired count, then the snapshot tag removed.
pub fn restore_snapshot(c: &CommonConfig, arn: &str, snapshot: Option<&Snapshot>) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(s) = snapshot {
        if let Some(t) = s.target {
            let suspended = t
                .suspended
                .map(|s| {
                    format!(
                        " --suspended-state DynamicScalingInSuspended={},DynamicScalingOutSuspended={},ScheduledScalingSuspended={}",
                        s.dynamic_in, s.dynamic_out, s.scheduled
                    )
                })
                .unwrap_or_default();
            steps.push(Step::new(
                "Restore the scalable target",
                format!(
                    "aws application-autoscaling register-scalable-target --region {} --service-namespace ecs --scalable-dimension ecs:service:DesiredCount --resource-id {} --min-capacity {} --max-capacity {}{suspended}",
                    c.region,
                    resource_id(c),
                    t.min,
                    t.max
                ),
            ));
        }
        let desired = s.target.map_or(s.desired, |t| s.desired.max(t.min));
        steps.push(Step::new(
            "Restore the desired count",
            format!(
                "aws ecs update-service --region {} --cluster {} --service {} --desired-count {desired}",
                c.region, c.cluster, c.service
            ),
        ));
    }
    steps.push(Step::new(
        "Then remove the snapshot",
        format!(
            "aws ecs untag-resource --region {} --resource-arn {arn} --tag-keys {}",
            c.region,
            tags::OFFHOURS_SNAPSHOT
        ),
    ));
    steps
}

/// Run the scaler's scale-up now (`function` is its Lambda function name).
pub fn invoke_scale_up(c: &CommonConfig, function: &str) -> Step {
    Step::new(
        "To restore the daytime capacity early, run the scale-up now",
        format!(
            "aws lambda invoke --region {} --function-name {function} --cli-binary-format raw-in-base64-out --payload '{{\"action\": \"scale-up\"}}' /dev/stdout",
            c.region
        ),
    )
}

/// Hold the service at full capacity until `until` (`menotime:offhours=skip-until=`):
/// reconcile restores it at its next run and keeps it up until then.
pub fn hold(c: &CommonConfig, arn: &str, until: DateTime<Utc>) -> Step {
    let value = OffhoursTag::SkipUntil(until).render();
    Step::new(
        format!(
            "To keep the service at full capacity until {} (e.g. for a launch), hold it; the next reconcile restores it within 5 minutes",
            utc_second(until)
        ),
        format!(
            "aws ecs tag-resource --region {} --resource-arn {arn} --tags '[{{\"key\":\"{}\",\"value\":\"{value}\"}}]'",
            c.region,
            tags::OFFHOURS
        ),
    )
}

/// Remove the hold (or the exclusion): the window decides again.
pub fn release_hold(c: &CommonConfig, arn: &str) -> Step {
    Step::new(
        "To let the window decide again, remove the hold",
        format!(
            "aws ecs untag-resource --region {} --resource-arn {arn} --tag-keys {}",
            c.region,
            tags::OFFHOURS
        ),
    )
}

/// The manual's "Task Won't Start" check, for the service's latest stopped tasks: why
/// each stopped (image missing, secrets, network, no Fargate capacity).
pub fn stopped_tasks(c: &CommonConfig) -> Step {
    Step::new(
        "See why the latest tasks stopped (the manual's Task Won't Start check: capacity, image, security group)",
        format!(
            "aws ecs describe-tasks --region {r} --cluster {cl} --tasks $(aws ecs list-tasks --region {r} --cluster {cl} --service-name {s} --desired-status STOPPED --query 'taskArns[:5]' --output text) --query 'tasks[].{{lastStatus:lastStatus, stoppedReason:stoppedReason}}'",
            r = c.region,
            cl = c.cluster,
            s = c.service
        ),
    )
}

/// The off-hours scaler's own log (what it did and why), for `function`.
pub fn function_logs(c: &CommonConfig, function: &str) -> Step {
    Step::new(
        "See what the off-hours scaler did, and its errors",
        format!(
            "aws logs tail /aws/lambda/{function} --region {} --since 2h",
            c.region
        ),
    )
}

/// `service/<cluster>/<service>`, the Application Auto Scaling resource id.
fn resource_id(c: &CommonConfig) -> String {
    crate::aws::autoscaling::resource_id(&c.cluster, &c.service)
}

pub fn service_console(c: &CommonConfig) -> String {
    format!(
        "https://{r}.console.aws.amazon.com/ecs/v2/clusters/{}/services/{}/deployments?region={r}",
        c.cluster,
        c.service,
        r = c.region
    )
}

pub fn image_console(c: &CommonConfig, repository: &str, digest: &str) -> String {
    format!(
        "https://{r}.console.aws.amazon.com/ecr/repositories/private/{}/{repository}/_/image/{digest}/scan-results?region={r}",
        c.account,
        r = c.region
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CommonConfig, Environment};

    pub(crate) fn prod() -> CommonConfig {
        CommonConfig {
            environment: Environment::Prod,
            region: "us-west-1".into(),
            account: "123456789012".into(),
            partition: "aws".into(),
            cluster: "menotime-prod-cluster".into(),
            service: "menotime-prod-service".into(),
            notify_topic_arn: "arn:aws:sns:us-west-1:123456789012:n".into(),
            oncall_topic_arn: "arn:aws:sns:us-west-1:123456789012:o".into(),
            dry_run: false,
            log_group: "/aws/ecs/menotime-prod".into(),
        }
    }

    #[test]
    fn the_watch_and_start_failure_commands_carry_real_names() {
        let c = prod();
        let task = "arn:aws:ecs:us-west-1:123456789012:task/menotime-prod-cluster/8a33d8a97eda4bd89eb5f8893f322fd7";
        assert_eq!(
            stopped_reason(&c, task).command,
            format!("aws ecs describe-tasks --region us-west-1 --cluster menotime-prod-cluster --tasks {task} --query 'tasks[0].{{lastStatus:lastStatus,stopCode:stopCode,stoppedReason:stoppedReason}}'")
        );
        assert!(task_eni(&c, task)
            .command
            .contains("details[?name==`networkInterfaceId`].value"));
        assert_eq!(
            security_groups(&c, &["sg-1".into(), "sg-2".into()]).command,
            "aws ec2 describe-security-groups --region us-west-1 --group-ids sg-1 sg-2 --query 'SecurityGroups[].{id:GroupId,in:IpPermissions,out:IpPermissionsEgress}'"
        );
        // The service reported none: the command finds them, the check stays.
        let lookup = security_groups(&c, &[]);
        assert_eq!(
            lookup.command,
            "aws ec2 describe-security-groups --region us-west-1 --group-ids $(aws ecs describe-services --region us-west-1 --cluster menotime-prod-cluster --services menotime-prod-service --query 'services[0].networkConfiguration.awsvpcConfiguration.securityGroups' --output text) --query 'SecurityGroups[].{id:GroupId,in:IpPermissions,out:IpPermissionsEgress}'"
        );
        assert!(lookup.what.contains("port 8000"), "{}", lookup.what);
        let restored = crate::domain::safety::restored(None);
        let cmd = restore_safety_net(&c, &restored).command;
        assert!(cmd.starts_with("aws ecs update-service --region us-west-1 --cluster menotime-prod-cluster --service menotime-prod-service --deployment-configuration '"), "{cmd}");
        let doc: serde_json::Value = serde_json::from_str(
            cmd.split_once("--deployment-configuration '")
                .unwrap()
                .1
                .strip_suffix('\'')
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"maximumPercent": 150, "minimumHealthyPercent": 100, "deploymentCircuitBreaker": {"enable": true, "rollback": true}})
        );
    }

    #[test]
    fn commands_carry_real_names() {
        let c = prod();
        assert_eq!(
            roll_back(&c, "menotime-backend-prod:48").command,
            "aws ecs update-service --region us-west-1 --cluster menotime-prod-cluster --service menotime-prod-service --task-definition menotime-backend-prod:48 --force-new-deployment"
        );
        assert_eq!(
            unfreeze(&c).command,
            "aws ecs untag-resource --region us-west-1 --resource-arn arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service --tag-keys menotime:deploy-freeze"
        );
        assert!(tail_logs(&c)
            .command
            .starts_with("aws logs tail /aws/ecs/menotime-prod "));
    }

    /// Next to the AWS CLI commands, the operator CLI's, with the manual's names
    /// left to the CLI's defaults and other names spelled out.
    #[test]
    fn cli_equivalents_name_only_what_differs_from_the_manual() {
        let c = prod();
        assert_eq!(
            roll_back(&c, "menotime-backend-prod:48").cli.as_deref(),
            Some(
                "menotime-ops rollback --to menotime-backend-prod:48 --env prod --region us-west-1"
            )
        );
        assert_eq!(
            unfreeze(&c).cli.as_deref(),
            Some(
                "menotime-ops unfreeze --reason 'WHAT_WAS_REVIEWED' --env prod --region us-west-1"
            )
        );
        assert_eq!(
            freeze(&c, "manual rollback by {x}").cli.as_deref(),
            Some("menotime-ops freeze --reason 'manual rollback by _x_' --env prod --region us-west-1")
        );
        assert_eq!(
            describe_deployments(&c).cli.as_deref(),
            Some("menotime-ops status --env prod --region us-west-1")
        );
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            approve(&c, "menotime-prod-approvals", "menotime/backend", &digest, "v1.2.4", &ReviewedCounts::new([])).cli,
            Some(format!("menotime-ops approve --tag v1.2.4 --digest {digest} --reason 'WHY_THE_FINDINGS_ARE_ACCEPTABLE' --env prod --region us-west-1"))
        );
        assert_eq!(
            approve(&c, "ops-approvals", "team/api", &digest, "v1.2.4", &ReviewedCounts::new([])).cli,
            Some(format!("menotime-ops approve --tag v1.2.4 --digest {digest} --reason 'WHY_THE_FINDINGS_ARE_ACCEPTABLE' --bus ops-approvals --repository team/api --env prod --region us-west-1"))
        );
        let other = CommonConfig {
            cluster: "blue".into(),
            service: "api".into(),
            ..prod()
        };
        assert_eq!(
            describe_deployments(&other).cli.as_deref(),
            Some("menotime-ops status --env prod --cluster blue --service api --region us-west-1")
        );
        // Steps the CLI has no command for keep only the AWS CLI's.
        assert_eq!(tail_logs(&c).cli, None);
        assert_eq!(scan_findings(&c, "menotime/backend", &digest).cli, None);
    }

    #[test]
    fn the_hold_command_writes_the_value_the_scaler_reads() {
        let c = prod();
        let until: DateTime<Utc> = "2026-11-27T06:00:00Z".parse().unwrap();
        let cmd = hold(&c, &service_arn(&c), until).command;
        assert_eq!(
            cmd,
            "aws ecs tag-resource --region us-west-1 --resource-arn arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service --tags '[{\"key\":\"menotime:offhours\",\"value\":\"skip-until=2026-11-27T06:00:00Z\"}]'"
        );
        let quoted = cmd
            .split_once("--tags '")
            .unwrap()
            .1
            .strip_suffix('\'')
            .unwrap();
        let tags: serde_json::Value = serde_json::from_str(quoted).unwrap();
        assert_eq!(
            OffhoursTag::parse(tags[0]["value"].as_str().unwrap()),
            Ok(OffhoursTag::SkipUntil(until))
        );
        assert!(stopped_tasks(&c)
            .command
            .contains("--service-name menotime-prod-service --desired-status STOPPED"));
    }

    /// The approval command, pasted into a shell, sends exactly the event scan-gate accepts.
    #[test]
    fn approval_command_round_trips() {
        use crate::domain::scan::{parse_trigger, Expect, Trigger};
        let c = prod();
        let digest = format!("sha256:{}", "ab".repeat(32));
        let cmd = approve(
            &c,
            "menotime-prod-approvals",
            "menotime/backend",
            &digest,
            "v1.2.4",
            &ReviewedCounts::new([(crate::domain::severity::Severity::Medium, 2)]),
        )
        .command;
        assert!(
            cmd.starts_with("aws events put-events --region us-west-1 --entries '"),
            "{cmd}"
        );
        let quoted = cmd
            .split_once("--entries '")
            .unwrap()
            .1
            .strip_suffix('\'')
            .unwrap();
        assert!(!quoted.contains('\''));
        // One entry, on the approvals bus: the default bus has no approval rule.
        let entries: serde_json::Value = serde_json::from_str(quoted).unwrap();
        assert_eq!(entries.as_array().unwrap().len(), 1);
        let keys: Vec<&str> = entries[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 4, "{keys:?}");
        assert_eq!(entries[0]["EventBusName"], "menotime-prod-approvals");
        assert_eq!(entries[0]["Source"], SOURCE_OPS);
        assert_eq!(entries[0]["DetailType"], DETAIL_APPROVAL);
        // What EventBridge delivers for the command's entry, as pasted or as edited: the
        // event names no bus, so the approval scan-gate sees is the one it always saw.
        let delivered = |quoted: &str| {
            let entries: serde_json::Value = serde_json::from_str(quoted).unwrap();
            let entry = &entries[0];
            let detail: serde_json::Value =
                serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
            json!({
                "version": "0", "id": "e1", "detail-type": entry["DetailType"], "source": entry["Source"],
                "account": "123456789012", "time": "2026-11-26T09:00:00Z", "region": "us-west-1",
                "resources": [], "detail": detail,
            })
        };
        let expect = Expect {
            account: "123456789012",
            region: "us-west-1",
            repository: "menotime/backend",
        };
        // Pasted without editing, the placeholders are refused...
        let err = parse_trigger(&delivered(quoted), expect).unwrap_err();
        assert!(err.to_string().contains("placeholder"), "{err}");
        // ...and once edited, it is exactly the approval scan-gate accepts.
        let edited = quoted.replace("YOUR_NAME", "jdoe").replace(
            "WHY_THE_FINDINGS_ARE_ACCEPTABLE",
            "not reachable from the API",
        );
        match parse_trigger(&delivered(&edited), expect).unwrap() {
            Trigger::Approval(a) => {
                assert_eq!(a.digest, digest);
                assert_eq!(a.tag, "v1.2.4");
                assert_eq!(a.approved_by, "jdoe");
                assert_eq!(a.reviewed.get(crate::domain::severity::Severity::Medium), 2);
            }
            other => panic!("{other:?}"),
        }
    }
}
