//! Configuration from the environment (docs/reference.md §2).
//!
//! Everything is read once at start-up. A missing or malformed variable is a
//! [`Error::Config`] naming the variable, which `main` prints as one line before it exits.
//! Reading goes through a lookup function so the rules are tested without touching the
//! process environment.

use std::collections::BTreeSet;
use std::fmt;

use regex_lite::Regex;

use crate::arn::{Arn, TopicArn};
use crate::domain::severity::Severity;
use crate::domain::uptime::{Holidays, Uptime, Window};
use crate::error::Error;

/// The three MenoTime environments. Each copy of the stack watches exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Environment {
    Dev,
    Staging,
    Prod,
}

impl Environment {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "dev" => Some(Self::Dev),
            "staging" => Some(Self::Staging),
            "prod" => Some(Self::Prod),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Staging => "staging",
            Self::Prod => "prod",
        }
    }

    /// `[PROD]`, the prefix of every SNS subject.
    pub fn subject_tag(self) -> String {
        format!("[{}]", self.as_str().to_ascii_uppercase())
    }

    /// Tags this environment deploys when `DEPLOY_TAG_PATTERN` is not set (the manual's
    /// tagging strategy: `develop` to dev, `main` to staging, semantic versions to prod).
    pub fn default_deploy_tag_pattern(self) -> &'static str {
        match self {
            Self::Dev => "^develop$",
            Self::Staging => "^main$",
            Self::Prod => r"^v[0-9]+\.[0-9]+\.[0-9]+$",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every function needs: where it runs, which service it watches, where it reports.
#[derive(Clone, Debug)]
pub struct CommonConfig {
    pub environment: Environment,
    /// `AWS_REGION`: the function's own region; events from elsewhere are refused.
    pub region: String,
    /// The function's own account, taken from `NOTIFY_TOPIC_ARN` (the topic belongs to
    /// the stack, so no STS call is needed); events from elsewhere are refused.
    pub account: String,
    /// The function's partition (`aws`, `aws-cn`, `aws-us-gov`), also from
    /// `NOTIFY_TOPIC_ARN`: the ARNs it writes into commands use it.
    pub partition: String,
    pub cluster: String,
    pub service: String,
    pub notify_topic_arn: String,
    pub oncall_topic_arn: String,
    pub dry_run: bool,
    /// CloudWatch log group of the service's containers, for the `aws logs tail` line
    /// of the runbook in notifications. Optional `LOG_GROUP_NAME`; defaults to the
    /// manual's `/aws/ecs/menotime-<env>`.
    pub log_group: String,
}

/// scan-gate's own settings on top of [`CommonConfig`].
#[derive(Clone, Debug)]
pub struct ScanGateConfig {
    pub common: CommonConfig,
    pub repository: String,
    pub container: String,
    pub deploy_tag_pattern: Regex,
    pub block_severities: BTreeSet<Severity>,
    pub review_severities: BTreeSet<Severity>,
    /// Optional `APPROVAL_EVENT_BUS`: the event bus the approval command in review
    /// notifications puts its event on (the stack's approvals bus, on which only the
    /// operators' role may put events). Defaults to `menotime-<env>-approvals`.
    pub approval_event_bus: String,
    /// `REQUIRE_SAFE_ROLLOUT`: deploy only to a service with the manual's prod
    /// deployment configuration (circuit breaker with rollback, minimumHealthyPercent
    /// 100). Always true in prod; false (the default) elsewhere.
    pub require_safe_rollout: bool,
    /// `APPROVAL_MAX_AGE_HOURS`: an approval whose event `time` is older than this is
    /// refused (default 168, a week).
    pub approval_max_age_hours: u32,
}

/// deploy-notifier's settings on top of [`CommonConfig`].
#[derive(Clone, Debug)]
pub struct NotifierConfig {
    pub common: CommonConfig,
    /// `FREEZE_ON_FAILURE`: tag the service `menotime:deploy-freeze` after a failed
    /// deployment (default: true in prod, false elsewhere).
    pub freeze_on_failure: bool,
    /// Optional `CONTAINER_NAME`: whose image a page names; all containers' otherwise.
    pub container: Option<String>,
    /// The post-deployment watch: `WATCH_MINUTES`, `AUTO_ROLLBACK_ON_REGRESSION`,
    /// `ALARM_PREFIX`.
    pub watch: WatchConfig,
}

/// deploy-notifier's post-deployment watch and alarms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchConfig {
    /// `WATCH_MINUTES`: how long after a deployment completes an alarm counts as its
    /// regression (default 30, the manual's).
    pub minutes: i64,
    /// `AUTO_ROLLBACK_ON_REGRESSION`: freeze and roll back to the previous revision by
    /// itself on a regression (default false).
    pub auto_rollback: bool,
    /// `ALARM_PREFIX`: this environment's alarms are named with it (default
    /// `menotime-<env>-`).
    pub alarm_prefix: String,
}

impl WatchConfig {
    /// The defaults for `env`: 30 minutes, no automatic rollback, `menotime-<env>-`.
    pub fn defaults(env: Environment) -> WatchConfig {
        WatchConfig {
            minutes: 30,
            auto_rollback: false,
            alarm_prefix: format!("menotime-{env}-"),
        }
    }
}

/// offhours-scaler's settings on top of [`CommonConfig`].
#[derive(Clone, Debug)]
pub struct OffhoursConfig {
    pub common: CommonConfig,
    /// `OFFHOURS_MIN_CAPACITY`: the Application Auto Scaling minimum at night.
    pub min_capacity: i32,
    /// `OFFHOURS_DESIRED_COUNT`: the task count at night.
    pub desired_count: i32,
    /// Optional `OFFHOURS_UPTIME` and `OFFHOURS_HOLIDAYS`: when the service runs at full
    /// capacity. `None`: no window; the scheduled actions are trusted as they come, and
    /// `reconcile` is refused.
    pub window: Option<Window>,
    /// `OFFHOURS_WAKE_TIMEOUT_MINUTES`: after a scale-up, the running count must reach
    /// the desired count within this many minutes (default 15).
    pub wake_timeout_minutes: u32,
}

impl OffhoursConfig {
    /// [`OffhoursConfig::wake_timeout_minutes`] as a duration.
    pub fn wake_timeout(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::minutes(i64::from(self.wake_timeout_minutes))
    }
}

impl Environment {
    /// The fewest tasks this environment may ever run: prod is never below 1.
    pub fn task_floor(self) -> i32 {
        match self {
            Environment::Prod => 1,
            _ => 0,
        }
    }
}

impl NotifierConfig {
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(&Vars(process_env))
    }

    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Self, Error> {
        let common = CommonConfig::from_vars(vars)?;
        let freeze_on_failure = bool_var(
            vars,
            "FREEZE_ON_FAILURE",
            common.environment == Environment::Prod,
        )?;
        let container = match vars.optional("CONTAINER_NAME") {
            None => None,
            Some(_) => Some(name_var(vars, "CONTAINER_NAME")?),
        };
        let defaults = WatchConfig::defaults(common.environment);
        let minutes = match vars.optional("WATCH_MINUTES") {
            None => defaults.minutes,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|m| (1..=1440).contains(m))
                .ok_or_else(|| Error::Config {
                    var: "WATCH_MINUTES",
                    problem: format!(
                        "must be a whole number of minutes between 1 and 1440, not {raw:?}"
                    ),
                })?,
        };
        let auto_rollback = bool_var(vars, "AUTO_ROLLBACK_ON_REGRESSION", defaults.auto_rollback)?;
        let alarm_prefix = match vars.optional("ALARM_PREFIX") {
            None => defaults.alarm_prefix,
            Some(p) => {
                if p.len() > 200 || !p.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(Error::Config {
                        var: "ALARM_PREFIX",
                        problem: format!(
                            "{p:?} is not the start of a CloudWatch alarm name (printable ASCII without spaces, at most 200 characters)"
                        ),
                    });
                }
                p
            }
        };
        Ok(Self {
            common,
            freeze_on_failure,
            container,
            watch: WatchConfig {
                minutes,
                auto_rollback,
                alarm_prefix,
            },
        })
    }
}

impl OffhoursConfig {
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(&Vars(process_env))
    }

    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Self, Error> {
        let common = CommonConfig::from_vars(vars)?;
        // The documented defaults: prod 1, staging 1, dev 0.
        let default = match common.environment {
            Environment::Dev => 0,
            Environment::Staging | Environment::Prod => 1,
        };
        let floor = common.environment.task_floor();
        let count = |var: &'static str| -> Result<i32, Error> {
            let v =
                match vars.optional(var) {
                    None => default,
                    Some(raw) => raw.parse::<i32>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                        Error::Config {
                            var,
                            problem: format!(
                                "must be a whole number of tasks (0 or more), not {raw:?}"
                            ),
                        }
                    })?,
                };
            if v < floor {
                return Err(Error::Config {
                    var,
                    problem: format!(
                        "is {v}, but {} may never run fewer than {floor} task(s)",
                        common.environment
                    ),
                });
            }
            Ok(v)
        };
        let min_capacity = count("OFFHOURS_MIN_CAPACITY")?;
        let desired_count = count("OFFHOURS_DESIRED_COUNT")?;
        if desired_count < min_capacity {
            return Err(Error::Config {
                var: "OFFHOURS_DESIRED_COUNT",
                problem: format!(
                    "is {desired_count}, below OFFHOURS_MIN_CAPACITY {min_capacity}; the autoscaler would raise it at once"
                ),
            });
        }
        let uptime = match vars.optional("OFFHOURS_UPTIME") {
            None => None,
            Some(raw) => Some(Uptime::parse(&raw).map_err(|e| Error::Config {
                var: "OFFHOURS_UPTIME",
                problem: format!("{raw:?} cannot be read: {e}"),
            })?),
        };
        let holidays = match vars.optional("OFFHOURS_HOLIDAYS") {
            None => Holidays::default(),
            Some(raw) => Holidays::parse(&raw).map_err(|e| Error::Config {
                var: "OFFHOURS_HOLIDAYS",
                problem: format!("{raw:?} cannot be read: {e}"),
            })?,
        };
        let window = match uptime {
            Some(uptime) => Some(Window { uptime, holidays }),
            None if holidays.is_empty() => None,
            None => {
                return Err(Error::Config {
                    var: "OFFHOURS_HOLIDAYS",
                    problem: "is set but OFFHOURS_UPTIME is not: holidays are dates in the \
                              uptime's time zone and mean nothing without a window"
                        .into(),
                })
            }
        };
        let wake_timeout_minutes = match vars.optional("OFFHOURS_WAKE_TIMEOUT_MINUTES") {
            None => 15,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|m| (1..=1440).contains(m))
                .ok_or_else(|| Error::Config {
                    var: "OFFHOURS_WAKE_TIMEOUT_MINUTES",
                    problem: format!(
                        "must be a whole number of minutes from 1 to 1440, not {raw:?}"
                    ),
                })?,
        };
        Ok(Self {
            common,
            min_capacity,
            desired_count,
            window,
            wake_timeout_minutes,
        })
    }
}

fn bool_var<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
    var: &'static str,
    default: bool,
) -> Result<bool, Error> {
    match vars.optional(var) {
        None => Ok(default),
        Some(v) => parse_bool(&v).ok_or_else(|| Error::Config {
            var,
            problem: format!("must be true or false, not {v:?}"),
        }),
    }
}

/// Reads variables through `lookup` so tests can supply a map instead of the process
/// environment.
pub struct Vars<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    fn optional(&self, var: &'static str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, var: &'static str) -> Result<String, Error> {
        self.optional(var).ok_or_else(|| Error::Config {
            var,
            problem: "is required but not set".into(),
        })
    }
}

/// Process environment lookup.
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

impl CommonConfig {
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(&Vars(process_env))
    }

    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Self, Error> {
        let environment = {
            let raw = vars.required("ENVIRONMENT")?;
            Environment::parse(&raw).ok_or_else(|| Error::Config {
                var: "ENVIRONMENT",
                problem: format!("must be dev, staging or prod, not {raw:?}"),
            })?
        };
        let region = vars.required("AWS_REGION")?;
        let cluster = name_var(vars, "CLUSTER_NAME")?;
        let service = name_var(vars, "SERVICE_NAME")?;
        let notify = topic_var(vars, "NOTIFY_TOPIC_ARN", &region)?;
        let oncall = topic_var(vars, "ONCALL_TOPIC_ARN", &region)?;
        if notify.account != oncall.account {
            return Err(Error::Config {
                var: "ONCALL_TOPIC_ARN",
                problem: format!(
                    "is in account {} but NOTIFY_TOPIC_ARN is in account {}; both topics belong to this stack",
                    oncall.account, notify.account
                ),
            });
        }
        let dry_run = bool_var(vars, "DRY_RUN", false)?;
        let log_group = vars
            .optional("LOG_GROUP_NAME")
            .unwrap_or_else(|| format!("/aws/ecs/menotime-{environment}"));
        Ok(Self {
            environment,
            region,
            account: notify.account.clone(),
            partition: notify.partition.clone(),
            cluster,
            service,
            notify_topic_arn: notify.arn,
            oncall_topic_arn: oncall.arn,
            dry_run,
            log_group,
        })
    }
}

impl ScanGateConfig {
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(&Vars(process_env))
    }

    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Self, Error> {
        let common = CommonConfig::from_vars(vars)?;
        let repository = vars.required("REPOSITORY_NAME")?;
        if !crate::domain::image::valid_repository_name(&repository) {
            return Err(Error::Config {
                var: "REPOSITORY_NAME",
                problem: format!(
                    "{repository:?} is not an ECR repository name such as menotime/backend"
                ),
            });
        }
        let container = name_var(vars, "CONTAINER_NAME")?;
        let pattern_src = vars
            .optional("DEPLOY_TAG_PATTERN")
            .unwrap_or_else(|| common.environment.default_deploy_tag_pattern().to_owned());
        if !(pattern_src.starts_with('^') && pattern_src.ends_with('$')) {
            return Err(Error::Config {
                var: "DEPLOY_TAG_PATTERN",
                problem: format!(
                    "{pattern_src:?} must be anchored (start with ^ and end with $) so that a tag like pr-42-v1.2.3 cannot match by accident"
                ),
            });
        }
        let deploy_tag_pattern = Regex::new(&pattern_src).map_err(|e| Error::Config {
            var: "DEPLOY_TAG_PATTERN",
            problem: format!("is not a valid regular expression: {e}"),
        })?;
        let block_severities = severities_var(vars, "BLOCK_SEVERITIES", "CRITICAL,HIGH")?;
        let review_severities = severities_var(vars, "REVIEW_SEVERITIES", "MEDIUM")?;
        // A severity in both lists blocks: blocking is checked first.
        if !block_severities.contains(&Severity::Critical) {
            return Err(Error::Config {
                var: "BLOCK_SEVERITIES",
                problem: "must include CRITICAL: the manual forbids deploying an image with a critical CVE".into(),
            });
        }
        let approval_event_bus = vars
            .optional("APPROVAL_EVENT_BUS")
            .unwrap_or_else(|| format!("menotime-{}-approvals", common.environment));
        if !valid_event_bus_name(&approval_event_bus) {
            return Err(Error::Config {
                var: "APPROVAL_EVENT_BUS",
                problem: format!(
                    "{approval_event_bus:?} is not an event bus name such as menotime-prod-approvals (letters, digits, . _ - /, at most 256)"
                ),
            });
        }
        let prod = common.environment == Environment::Prod;
        let require_safe_rollout = bool_var(vars, "REQUIRE_SAFE_ROLLOUT", prod)?;
        if prod && !require_safe_rollout {
            return Err(Error::Config {
                var: "REQUIRE_SAFE_ROLLOUT",
                problem: "may be false outside prod only: prod deploys only with the circuit breaker (with rollback) and minimumHealthyPercent 100".into(),
            });
        }
        let approval_max_age_hours = match vars.optional("APPROVAL_MAX_AGE_HOURS") {
            None => 168,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|h| (1..=8760).contains(h))
                .ok_or_else(|| Error::Config {
                    var: "APPROVAL_MAX_AGE_HOURS",
                    problem: format!("must be a whole number of hours from 1 to 8760, not {raw:?}"),
                })?,
        };
        Ok(Self {
            common,
            repository,
            container,
            deploy_tag_pattern,
            block_severities,
            review_severities,
            approval_event_bus,
            require_safe_rollout,
            approval_max_age_hours,
        })
    }
}

/// An EventBridge event bus name (not an ARN): letters, digits, `.`, `_`, `-` and `/`,
/// at most 256 characters. Nothing in it needs quoting inside the approval command.
fn valid_event_bus_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Cluster, service and container names: ECS allows letters, digits, hyphens and
/// underscores, up to 255 characters.
fn name_var<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
    var: &'static str,
) -> Result<String, Error> {
    let v = vars.required(var)?;
    let ok = v.len() <= 255
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(v)
    } else {
        Err(Error::Config {
            var,
            problem: format!("{v:?} is not a valid ECS name (letters, digits, - and _)"),
        })
    }
}

fn topic_var<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
    var: &'static str,
    region: &str,
) -> Result<TopicArn, Error> {
    let v = vars.required(var)?;
    let topic = Arn::parse(&v)
        .and_then(|a| a.into_topic())
        .ok_or_else(|| Error::Config {
            var,
            problem: format!("{v:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
        })?;
    if topic.region != region {
        return Err(Error::Config {
            var,
            problem: format!(
                "is in region {} but the function runs in {region}; use this stack's own topic",
                topic.region
            ),
        });
    }
    Ok(topic)
}

fn severities_var<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
    var: &'static str,
    default: &str,
) -> Result<BTreeSet<Severity>, Error> {
    let raw = vars.optional(var).unwrap_or_else(|| default.to_owned());
    let mut out = BTreeSet::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let sev = Severity::parse(part).ok_or_else(|| Error::Config {
            var,
            problem: format!(
                "{part:?} is not a severity; use a comma-separated list of CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNDEFINED"
            ),
        })?;
        out.insert(sev);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("ENVIRONMENT", "prod"),
            ("AWS_REGION", "us-west-1"),
            ("CLUSTER_NAME", "menotime-prod-cluster"),
            ("SERVICE_NAME", "menotime-prod-service"),
            (
                "NOTIFY_TOPIC_ARN",
                "arn:aws:sns:us-west-1:123456789012:menotime-prod-notify",
            ),
            (
                "ONCALL_TOPIC_ARN",
                "arn:aws:sns:us-west-1:123456789012:menotime-prod-oncall",
            ),
            ("REPOSITORY_NAME", "menotime/backend"),
            ("CONTAINER_NAME", "menotime-backend"),
        ])
    }

    fn load(map: &HashMap<&'static str, &'static str>) -> Result<ScanGateConfig, Error> {
        ScanGateConfig::from_vars(&Vars(|k: &str| map.get(k).map(|v| v.to_string())))
    }

    fn err_var(map: &HashMap<&'static str, &'static str>) -> &'static str {
        match load(map) {
            Err(Error::Config { var, .. }) => var,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_reference() {
        let c = load(&base()).unwrap();
        assert_eq!(c.common.environment, Environment::Prod);
        assert_eq!(c.common.account, "123456789012");
        assert!(!c.common.dry_run);
        assert_eq!(c.deploy_tag_pattern.as_str(), r"^v[0-9]+\.[0-9]+\.[0-9]+$");
        assert_eq!(
            c.block_severities,
            BTreeSet::from([Severity::Critical, Severity::High])
        );
        assert_eq!(c.review_severities, BTreeSet::from([Severity::Medium]));
        assert_eq!(c.common.log_group, "/aws/ecs/menotime-prod");
        assert_eq!(c.approval_event_bus, "menotime-prod-approvals");
        assert_eq!(c.approval_max_age_hours, 168);
    }

    #[test]
    fn approval_event_bus_defaults_per_environment_and_is_checked() {
        for env in ["dev", "staging", "prod"] {
            let mut m = base();
            m.insert("ENVIRONMENT", env);
            assert_eq!(
                load(&m).unwrap().approval_event_bus,
                format!("menotime-{env}-approvals")
            );
            m.insert("APPROVAL_EVENT_BUS", "   ");
            assert_eq!(
                load(&m).unwrap().approval_event_bus,
                format!("menotime-{env}-approvals"),
                "blank means the default"
            );
        }
        let mut m = base();
        m.insert("APPROVAL_EVENT_BUS", "ops/menotime-prod_approvals.v2");
        assert_eq!(
            load(&m).unwrap().approval_event_bus,
            "ops/menotime-prod_approvals.v2"
        );
        let long: &'static str = Box::leak("b".repeat(257).into_boxed_str());
        for bad in [
            "menotime prod approvals",
            "menotime-prod-approvals'; rm -rf /",
            "arn:aws:events:us-west-1:123456789012:event-bus/menotime-prod-approvals",
            long,
        ] {
            let mut m = base();
            m.insert("APPROVAL_EVENT_BUS", bad);
            assert_eq!(err_var(&m), "APPROVAL_EVENT_BUS", "{bad}");
        }
    }

    #[test]
    fn default_patterns_per_environment() {
        for (env, pat) in [("dev", "^develop$"), ("staging", "^main$")] {
            let mut m = base();
            m.insert("ENVIRONMENT", env);
            assert_eq!(load(&m).unwrap().deploy_tag_pattern.as_str(), pat);
        }
    }

    #[test]
    fn every_required_variable_is_named_when_missing() {
        for var in [
            "ENVIRONMENT",
            "AWS_REGION",
            "CLUSTER_NAME",
            "SERVICE_NAME",
            "NOTIFY_TOPIC_ARN",
            "ONCALL_TOPIC_ARN",
            "REPOSITORY_NAME",
            "CONTAINER_NAME",
        ] {
            let mut m = base();
            m.remove(var);
            assert_eq!(err_var(&m), var);
            m.insert(var, "   ");
            assert_eq!(err_var(&m), var, "blank counts as missing");
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        let cases: &[(&str, &str)] = &[
            ("ENVIRONMENT", "production"),
            ("DRY_RUN", "maybe"),
            ("NOTIFY_TOPIC_ARN", "menotime-prod-notify"),
            ("NOTIFY_TOPIC_ARN", "arn:aws:sqs:us-west-1:123456789012:q"),
            (
                "ONCALL_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:menotime-prod-oncall",
            ),
            (
                "ONCALL_TOPIC_ARN",
                "arn:aws:sns:us-west-1:999999999999:menotime-prod-oncall",
            ),
            ("DEPLOY_TAG_PATTERN", "v[0-9]+"),
            ("DEPLOY_TAG_PATTERN", "^v[0-9+$"),
            ("BLOCK_SEVERITIES", "CRITICAL,SEVERE"),
            ("BLOCK_SEVERITIES", "HIGH"),
            ("APPROVAL_MAX_AGE_HOURS", "0"),
            ("APPROVAL_MAX_AGE_HOURS", "a week"),
            ("APPROVAL_MAX_AGE_HOURS", "-1"),
            ("CLUSTER_NAME", "menotime prod"),
            ("REPOSITORY_NAME", "Menotime/Backend"),
        ];
        for (var, value) in cases {
            let mut m = base();
            m.insert(var, value);
            assert_eq!(err_var(&m), *var, "{var}={value}");
        }
    }

    #[test]
    fn error_line_names_the_variable() {
        let mut m = base();
        m.remove("SERVICE_NAME");
        let line = load(&m).unwrap_err().to_string();
        assert!(line.contains("SERVICE_NAME"), "{line}");
        assert!(!line.contains('\n'));
    }

    fn vars<'a>(
        map: &'a HashMap<&'static str, &'static str>,
    ) -> Vars<impl Fn(&str) -> Option<String> + 'a> {
        Vars(move |k: &str| map.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn notifier_freezes_by_default_in_prod_only() {
        let mut m = base();
        assert!(
            NotifierConfig::from_vars(&vars(&m))
                .unwrap()
                .freeze_on_failure
        );
        m.insert("ENVIRONMENT", "staging");
        assert!(
            !NotifierConfig::from_vars(&vars(&m))
                .unwrap()
                .freeze_on_failure
        );
        m.insert("FREEZE_ON_FAILURE", "true");
        assert!(
            NotifierConfig::from_vars(&vars(&m))
                .unwrap()
                .freeze_on_failure
        );
        m.insert("FREEZE_ON_FAILURE", "sometimes");
        assert!(matches!(
            NotifierConfig::from_vars(&vars(&m)),
            Err(Error::Config {
                var: "FREEZE_ON_FAILURE",
                ..
            })
        ));
        m.remove("FREEZE_ON_FAILURE");
        m.remove("CONTAINER_NAME");
        assert_eq!(
            NotifierConfig::from_vars(&vars(&m)).unwrap().container,
            None
        );
    }

    #[test]
    fn the_watch_defaults_and_refusals() {
        let mut m = base();
        let w = NotifierConfig::from_vars(&vars(&m)).unwrap().watch;
        assert_eq!(w, WatchConfig::defaults(Environment::Prod));
        assert_eq!((w.minutes, w.auto_rollback), (30, false));
        assert_eq!(w.alarm_prefix, "menotime-prod-");
        m.insert("ENVIRONMENT", "staging");
        assert_eq!(
            NotifierConfig::from_vars(&vars(&m))
                .unwrap()
                .watch
                .alarm_prefix,
            "menotime-staging-"
        );
        m.insert("WATCH_MINUTES", "45");
        m.insert("AUTO_ROLLBACK_ON_REGRESSION", "true");
        m.insert("ALARM_PREFIX", "mt-staging/");
        let w = NotifierConfig::from_vars(&vars(&m)).unwrap().watch;
        assert_eq!(
            (w.minutes, w.auto_rollback, w.alarm_prefix.as_str()),
            (45, true, "mt-staging/")
        );
        for (var, value) in [
            ("WATCH_MINUTES", "0"),
            ("WATCH_MINUTES", "1441"),
            ("WATCH_MINUTES", "half an hour"),
            ("AUTO_ROLLBACK_ON_REGRESSION", "maybe"),
            ("ALARM_PREFIX", "menotime prod"),
        ] {
            let mut m = m.clone();
            m.insert(var, value);
            let got = NotifierConfig::from_vars(&vars(&m));
            match got {
                Err(Error::Config { var: v, .. }) => assert_eq!(v, var, "{var}={value}"),
                other => panic!("{var}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_safe_rollout_check_may_be_relaxed_outside_prod_only() {
        let mut m = base();
        assert!(load(&m).unwrap().require_safe_rollout);
        m.insert("REQUIRE_SAFE_ROLLOUT", "false");
        assert_eq!(err_var(&m), "REQUIRE_SAFE_ROLLOUT");
        m.insert("REQUIRE_SAFE_ROLLOUT", "true");
        assert!(load(&m).unwrap().require_safe_rollout);
        for env in ["dev", "staging"] {
            let mut m = base();
            m.insert("ENVIRONMENT", env);
            assert!(!load(&m).unwrap().require_safe_rollout, "{env}");
            m.insert("REQUIRE_SAFE_ROLLOUT", "true");
            assert!(load(&m).unwrap().require_safe_rollout, "{env}");
            m.insert("REQUIRE_SAFE_ROLLOUT", "sometimes");
            assert_eq!(err_var(&m), "REQUIRE_SAFE_ROLLOUT");
        }
    }

    #[test]
    fn offhours_defaults_and_the_prod_floor() {
        let mut m = base();
        let c = OffhoursConfig::from_vars(&vars(&m)).unwrap();
        assert_eq!((c.min_capacity, c.desired_count), (1, 1));
        assert_eq!(c.window, None);
        assert_eq!(c.wake_timeout_minutes, 15);
        m.insert("ENVIRONMENT", "dev");
        let c = OffhoursConfig::from_vars(&vars(&m)).unwrap();
        assert_eq!((c.min_capacity, c.desired_count), (0, 0));
        m.insert("ENVIRONMENT", "prod");
        for (var, value) in [
            ("OFFHOURS_MIN_CAPACITY", "0"),
            ("OFFHOURS_DESIRED_COUNT", "0"),
            ("OFFHOURS_DESIRED_COUNT", "-1"),
            ("OFFHOURS_DESIRED_COUNT", "two"),
            ("OFFHOURS_WAKE_TIMEOUT_MINUTES", "0"),
            ("OFFHOURS_WAKE_TIMEOUT_MINUTES", "1441"),
            ("OFFHOURS_WAKE_TIMEOUT_MINUTES", "fifteen"),
        ] {
            let mut m = m.clone();
            m.insert(var, value);
            let got = OffhoursConfig::from_vars(&vars(&m));
            match got {
                Err(Error::Config { var: v, .. }) => assert_eq!(v, var, "{var}={value}"),
                other => panic!("{var}={value}: {other:?}"),
            }
        }
        m.insert("OFFHOURS_MIN_CAPACITY", "2");
        m.insert("OFFHOURS_DESIRED_COUNT", "1");
        assert!(matches!(
            OffhoursConfig::from_vars(&vars(&m)),
            Err(Error::Config {
                var: "OFFHOURS_DESIRED_COUNT",
                ..
            })
        ));
    }

    #[test]
    fn the_offhours_window_is_read_once_or_refused_naming_the_variable() {
        let mut m = base();
        m.insert(
            "OFFHOURS_UPTIME",
            " Mon-Fri 07:00-20:00 America/Los_Angeles ",
        );
        m.insert("OFFHOURS_HOLIDAYS", "2026-11-26, 2026-12-25");
        m.insert("OFFHOURS_WAKE_TIMEOUT_MINUTES", "30");
        let c = OffhoursConfig::from_vars(&vars(&m)).unwrap();
        let w = c.window.unwrap();
        assert_eq!(w.uptime.render(), "Mon-Fri 07:00-20:00 America/Los_Angeles");
        assert_eq!(w.holidays.render(), "2026-11-26, 2026-12-25");
        assert_eq!(c.wake_timeout_minutes, 30);
        for (var, value, needle) in [
            ("OFFHOURS_UPTIME", "Mon-Fri 7:00-20:00 UTC", "`7:00`"),
            (
                "OFFHOURS_UPTIME",
                "Mon-Fri 07:00-20:00 Mars/Olympus",
                "not a known IANA time zone",
            ),
            ("OFFHOURS_UPTIME", "weekdays", "`weekdays`"),
            (
                "OFFHOURS_HOLIDAYS",
                "2026-11-26, Christmas",
                "`Christmas` is not a date",
            ),
        ] {
            let mut m = m.clone();
            m.insert(var, value);
            let got = OffhoursConfig::from_vars(&vars(&m));
            match got {
                Err(e @ Error::Config { var: v, .. }) => {
                    assert_eq!(v, var, "{value}");
                    let line = e.to_string();
                    assert!(
                        line.starts_with(&format!("configuration error: {var} ")),
                        "{line}"
                    );
                    assert!(line.contains(needle), "{line}");
                    assert!(!line.contains('\n'), "{line}");
                }
                other => panic!("{var}={value}: {other:?}"),
            }
        }
        // Holidays without a window mean nothing: refused rather than ignored.
        m.remove("OFFHOURS_UPTIME");
        assert!(matches!(
            OffhoursConfig::from_vars(&vars(&m)),
            Err(Error::Config {
                var: "OFFHOURS_HOLIDAYS",
                ..
            })
        ));
    }

    #[test]
    fn optional_values_parse() {
        let mut m = base();
        m.insert("DRY_RUN", "TRUE");
        m.insert("BLOCK_SEVERITIES", " critical , high , medium ");
        m.insert("REVIEW_SEVERITIES", "LOW");
        m.insert("LOG_GROUP_NAME", "/custom/group");
        m.insert("APPROVAL_MAX_AGE_HOURS", "24");
        let c = load(&m).unwrap();
        assert_eq!(c.approval_max_age_hours, 24);
        assert!(c.common.dry_run);
        assert_eq!(c.block_severities.len(), 3);
        assert_eq!(c.review_severities, BTreeSet::from([Severity::Low]));
        assert_eq!(c.common.log_group, "/custom/group");
    }
}
