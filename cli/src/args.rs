//! The command line (docs/reference.md §7): one subcommand per hand procedure of the
//! manual, each with `--env` and the flags that name the environment's resources.

use clap::{Args, Parser, Subcommand, ValueEnum};

use menotime_shared::config::Environment;

/// The operator's CLI for MenoTime's ECS services: where an environment stands,
/// approvals, freezes, rollbacks, off-hours holds, and what the automation would do.
///
/// Names default to the manual's (menotime-<env>-cluster, menotime-<env>-service,
/// menotime-<env>-approvals). AWS_PROFILE, AWS_REGION and AWS_ENDPOINT_URL are
/// honoured. Exit status: 0 done (or nothing to do), 1 refused (the service's state
/// or the scan findings do not allow it; nothing changed), 2 bad command line,
/// 3 AWS failed or is not reachable (region, credentials, a missing resource).
#[derive(Debug, Parser)]
#[command(name = "menotime-ops", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Where the environment stands: running image and revision, rollout, freeze,
    /// incidents, off-hours state (changes nothing).
    Status(StatusArgs),
    /// Approve an image held for review: checks its current findings, then puts a
    /// Deploy Approval on the approvals bus for scan-gate.
    Approve(ApproveArgs),
    /// Freeze deployments: scan-gate deploys nothing while menotime:deploy-freeze is set.
    Freeze(FreezeArgs),
    /// Lift the freeze after review (a no-op, said so, when the service is not frozen).
    Unfreeze(UnfreezeArgs),
    /// Roll back as the manual does: freeze, then deploy the previous revision (or the
    /// one named) with a new deployment.
    Rollback(RollbackArgs),
    /// Hold or release the off-hours scale-down (menotime:offhours=skip-until=...).
    #[command(subcommand)]
    Offhours(OffhoursCommand),
    /// What scan-gate would do with the newest image for this environment, and what
    /// the off-hours scaler would do next, and why (changes nothing).
    Plan(PlanArgs),
}

impl Command {
    /// The environment and output flags every command has.
    pub fn target(&self) -> &Target {
        match self {
            Command::Status(a) => &a.target,
            Command::Approve(a) => &a.target,
            Command::Freeze(a) => &a.target,
            Command::Unfreeze(a) => &a.target,
            Command::Rollback(a) => &a.target,
            Command::Offhours(OffhoursCommand::Hold(a)) => &a.target,
            Command::Offhours(OffhoursCommand::Release(a)) => &a.target,
            Command::Plan(a) => &a.target,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum OffhoursCommand {
    /// Keep the service at day capacity until TIME: the scaler leaves it alone until
    /// then (menotime:offhours=skip-until=<UTC time>).
    Hold(HoldArgs),
    /// Remove the hold (or any menotime:offhours exclusion) so the schedule applies again.
    Release(ReleaseArgs),
}

/// The environments of the manual.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Env {
    Dev,
    Staging,
    Prod,
}

impl From<Env> for Environment {
    fn from(e: Env) -> Self {
        match e {
            Env::Dev => Environment::Dev,
            Env::Staging => Environment::Staging,
            Env::Prod => Environment::Prod,
        }
    }
}

/// What every command takes: the environment, the names of its resources, the AWS
/// profile and region, and the output form.
#[derive(Clone, Debug, Args)]
pub struct Target {
    /// The environment: dev, staging or prod.
    #[arg(long, value_enum)]
    pub env: Env,
    /// The ECS cluster [default: menotime-<env>-cluster].
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The ECS service [default: menotime-<env>-service].
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// The AWS region [default: AWS_REGION, or the profile's region].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The AWS profile [default: AWS_PROFILE, or the default profile].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Print the machine form (JSON, one document on stdout) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Where the environment's images are, and which container runs them.
#[derive(Clone, Debug, Args)]
pub struct Images {
    /// The ECR repository.
    #[arg(long, value_name = "NAME", default_value = "menotime/backend")]
    pub repository: String,
    /// The container whose image the service runs.
    #[arg(long, value_name = "NAME", default_value = "menotime-backend")]
    pub container: String,
}

/// The scan policy scan-gate is configured with (BLOCK_SEVERITIES, REVIEW_SEVERITIES).
#[derive(Clone, Debug, Args)]
pub struct Policy {
    /// Severities that block a deploy (scan-gate's BLOCK_SEVERITIES).
    #[arg(long, value_name = "LIST", default_value = "CRITICAL,HIGH")]
    pub block_severities: String,
    /// Severities that need a human approval (scan-gate's REVIEW_SEVERITIES).
    #[arg(long, value_name = "LIST", default_value = "MEDIUM")]
    pub review_severities: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub images: Images,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub target: Target,
    /// The image tag to approve, e.g. v1.2.6.
    #[arg(long, value_name = "TAG")]
    pub tag: String,
    /// The digest the review was about; refused if the tag now names another image.
    #[arg(long, value_name = "DIGEST")]
    pub digest: Option<String>,
    /// Why the findings are acceptable (recorded in the approval and on the revision).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Who approves [default: the caller's identity, from STS GetCallerIdentity].
    #[arg(long = "as", value_name = "NAME")]
    pub approver: Option<String>,
    /// The approvals event bus [default: menotime-<env>-approvals].
    #[arg(long, value_name = "NAME")]
    pub bus: Option<String>,
    /// The environment's deploy tag pattern (scan-gate's DEPLOY_TAG_PATTERN)
    /// [default: dev ^develop$, staging ^main$, prod ^v[0-9]+\.[0-9]+\.[0-9]+$].
    #[arg(long, value_name = "REGEX")]
    pub pattern: Option<String>,
    #[command(flatten)]
    pub images: Images,
    #[command(flatten)]
    pub policy: Policy,
    /// Check and print the approval event, but put nothing on the bus.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct FreezeArgs {
    #[command(flatten)]
    pub target: Target,
    /// Why deployments are frozen (kept in the tag with who and when).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Who freezes [default: the caller's identity, from STS GetCallerIdentity].
    #[arg(long = "as", value_name = "NAME")]
    pub who: Option<String>,
    /// Say what would be written, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UnfreezeArgs {
    #[command(flatten)]
    pub target: Target,
    /// What was reviewed (kept in menotime:deploy-unfrozen with who and when).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Who unfreezes [default: the caller's identity, from STS GetCallerIdentity].
    #[arg(long = "as", value_name = "NAME")]
    pub who: Option<String>,
    /// Say what would be removed, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub target: Target,
    /// The revision to deploy: a number of the running family (47), family:revision,
    /// or an ARN [default: the running revision's menotime:replaces, else the family's
    /// previous ACTIVE revision].
    #[arg(long, value_name = "REVISION")]
    pub to: Option<String>,
    /// Why (kept in the freeze with who and when) [default: the rollback itself].
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Who rolls back [default: the caller's identity, from STS GetCallerIdentity].
    #[arg(long = "as", value_name = "NAME")]
    pub who: Option<String>,
    /// Roll back even while a rollout is in progress (it is replaced).
    #[arg(long)]
    pub force: bool,
    /// Say what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    #[command(flatten)]
    pub target: Target,
    /// Until when: an RFC 3339 time (2026-12-01T18:00:00Z, 2026-12-01T10:00:00-08:00)
    /// or a duration from now (+2h, +90m, +1d, +1h30m); at most 30 days ahead.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: String,
    /// Say what would be written, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub target: Target,
    /// Say what would be removed, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub target: Target,
    /// The environment's deploy tag pattern (scan-gate's DEPLOY_TAG_PATTERN)
    /// [default: dev ^develop$, staging ^main$, prod ^v[0-9]+\.[0-9]+\.[0-9]+$].
    #[arg(long, value_name = "REGEX")]
    pub pattern: Option<String>,
    #[command(flatten)]
    pub images: Images,
    #[command(flatten)]
    pub policy: Policy,
    /// The scaler's night minimum (OFFHOURS_MIN_CAPACITY) [default: prod 1, staging 1, dev 0].
    #[arg(long, value_name = "N")]
    pub offhours_min_capacity: Option<i32>,
    /// The scaler's night task count (OFFHOURS_DESIRED_COUNT) [default: prod 1, staging 1, dev 0].
    #[arg(long, value_name = "N")]
    pub offhours_desired_count: Option<i32>,
    /// When the service runs at full capacity (the stack's OFFHOURS_UPTIME), e.g.
    /// 'Mon-Fri 07:00-20:00 America/Los_Angeles' [default: the template's default].
    #[arg(long, value_name = "WINDOW")]
    pub uptime: Option<String>,
    /// Dates that are night all day (the stack's OFFHOURS_HOLIDAYS), e.g.
    /// 2026-12-25,2027-01-01.
    #[arg(long, value_name = "DATES")]
    pub holidays: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_takes_env_and_json() {
        for args in [
            vec!["status"],
            vec!["approve", "--tag", "v1", "--reason", "r"],
            vec!["freeze", "--reason", "r"],
            vec!["unfreeze", "--reason", "r"],
            vec!["rollback"],
            vec!["offhours", "hold", "--until", "+2h"],
            vec!["offhours", "release"],
            vec!["plan"],
        ] {
            let mut argv = vec!["menotime-ops"];
            argv.extend(&args);
            argv.extend(["--env", "prod", "--json"]);
            assert!(Cli::try_parse_from(&argv).is_ok(), "{argv:?}");
            let without_env: Vec<&str> = argv
                .iter()
                .copied()
                .filter(|a| *a != "--env" && *a != "prod")
                .collect();
            assert!(Cli::try_parse_from(&without_env).is_err(), "{argv:?}");
        }
        let e = Cli::try_parse_from(["menotime-ops", "status", "--env", "qa"]).unwrap_err();
        assert!(e.to_string().contains("qa"), "{e}");
    }

    #[test]
    fn relative_times_that_start_with_a_sign_are_values() {
        let cli = Cli::try_parse_from([
            "menotime-ops",
            "offhours",
            "hold",
            "--env",
            "dev",
            "--until",
            "+2h",
        ])
        .unwrap();
        match cli.command {
            Command::Offhours(OffhoursCommand::Hold(h)) => assert_eq!(h.until, "+2h"),
            other => panic!("{other:?}"),
        }
    }
}
