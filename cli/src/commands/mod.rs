//! One module per command. Each reads the service through the shared adapters, decides
//! with the shared domain functions (the same ones the Lambda functions call), writes
//! only what it says it writes, and returns a [`Report`].

pub mod approve;
pub mod freeze;
pub mod offhours;
pub mod plan;
pub mod rollback;
pub mod status;

use chrono::{DateTime, Utc};

use menotime_shared::aws::ecs::EcsApi;
use menotime_shared::config::Environment;
use menotime_shared::domain::service::ServiceState;
use menotime_shared::runbook;

use crate::args::{Cli, Command, OffhoursCommand, Target};
use crate::aws::{connect, Session};
use crate::error::Failure;
use crate::output::{Report, Style};
use crate::values::caller_name;

/// Runs the command line's command.
pub async fn run(cli: Cli, style: Style) -> Result<Report, Failure> {
    let names = Names::of(cli.command.target())?;
    // Everything the command line can get wrong is checked before AWS is asked.
    match cli.command {
        Command::Status(a) => {
            let ctx = Ctx::new(&a.target, names, style).await?;
            status::run(&ctx, &a).await
        }
        Command::Approve(a) => {
            let checked = approve::check_args(&a, &names)?;
            let ctx = Ctx::new(&a.target, names, style).await?;
            approve::run(&ctx, &a, checked).await
        }
        Command::Freeze(a) => {
            freeze::check_reason(&a.reason)?;
            let ctx = Ctx::new(&a.target, names, style).await?;
            freeze::freeze(&ctx, &a).await
        }
        Command::Unfreeze(a) => {
            freeze::check_reason(&a.reason)?;
            let ctx = Ctx::new(&a.target, names, style).await?;
            freeze::unfreeze(&ctx, &a).await
        }
        Command::Rollback(a) => {
            let to = rollback::check_args(&a)?;
            let ctx = Ctx::new(&a.target, names, style).await?;
            rollback::run(&ctx, &a, to).await
        }
        Command::Offhours(OffhoursCommand::Hold(a)) => {
            let until = offhours::check_until(&a.until, Utc::now())?;
            let ctx = Ctx::new(&a.target, names, style).await?;
            offhours::hold(&ctx, &a, until).await
        }
        Command::Offhours(OffhoursCommand::Release(a)) => {
            let ctx = Ctx::new(&a.target, names, style).await?;
            offhours::release(&ctx, &a).await
        }
        Command::Plan(a) => {
            let checked = plan::check_args(&a, &names)?;
            let ctx = Ctx::new(&a.target, names, style).await?;
            plan::run(&ctx, &a, checked).await
        }
    }
}

/// The environment and the names of its resources: the manual's, unless overridden.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub env: Environment,
    pub cluster: String,
    pub service: String,
}

impl Names {
    pub fn of(t: &Target) -> Result<Names, Failure> {
        let env: Environment = t.env.into();
        let cluster = t
            .cluster
            .clone()
            .unwrap_or_else(|| format!("menotime-{env}-cluster"));
        let service = t
            .service
            .clone()
            .unwrap_or_else(|| format!("menotime-{env}-service"));
        for (flag, v) in [("--cluster", &cluster), ("--service", &service)] {
            if !valid_ecs_name(v) {
                return Err(Failure::usage(format!(
                    "{flag} {v:?} is not an ECS name (letters, digits, - and _, at most 255)"
                )));
            }
        }
        if let Some(r) = &t.region {
            let ok = !r.is_empty()
                && r.len() <= 32
                && r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(Failure::usage(format!(
                    "--region {r:?} is not an AWS region such as us-west-1"
                )));
            }
        }
        Ok(Names {
            env,
            cluster,
            service,
        })
    }
}

fn valid_ecs_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What a command works with: the names, the AWS session, the output style, and one
/// `now` for the whole command.
pub struct Ctx {
    pub names: Names,
    pub aws: Session,
    pub style: Style,
    pub now: DateTime<Utc>,
}

impl Ctx {
    pub async fn new(target: &Target, names: Names, style: Style) -> Result<Ctx, Failure> {
        let style = if target.json { Style::PLAIN } else { style };
        let aws = connect(target).await?;
        Ok(Ctx {
            names,
            aws,
            style,
            now: Utc::now(),
        })
    }

    /// The service, described with its tags (the shared adapter the functions use).
    pub async fn service(&self) -> Result<ServiceState, Failure> {
        let n = &self.names;
        self.aws
            .ecs
            .describe_service(&n.cluster, &n.service)
            .await
            .map_err(|e| {
                let f = Failure::from(e);
                if f.message.contains(&format!("in cluster {}", n.cluster)) {
                    f
                } else {
                    f.context(&format!("service {} in cluster {}", n.service, n.cluster))
                }
            })
    }

    /// `--as NAME`, or the caller's name from STS GetCallerIdentity.
    pub async fn who(&self, given: Option<&str>) -> Result<String, Failure> {
        if let Some(name) = given {
            return Ok(name.trim().to_owned());
        }
        let arn = self.aws.caller_arn().await?;
        caller_name(&arn).ok_or_else(|| {
            Failure::aws(format!(
                "cannot tell who you are from {arn}: name yourself with --as NAME"
            ))
        })
    }

    /// The `menotime-ops` command line for `args` in this environment, with the
    /// names given explicitly when they are not the manual's (for "next" hints).
    pub fn ops(&self, args: &str) -> String {
        let env = self.names.env;
        let mut cmd = format!("menotime-ops {args} --env {env}");
        if self.names.cluster != format!("menotime-{env}-cluster") {
            cmd.push_str(&format!(" --cluster {}", self.names.cluster));
        }
        if self.names.service != format!("menotime-{env}-service") {
            cmd.push_str(&format!(" --service {}", self.names.service));
        }
        cmd
    }

    /// The manual's command to watch the rollout.
    pub fn watch_command(&self) -> String {
        format!(
            "aws ecs describe-services --region {} --cluster {} --services {} --query 'services[0].deployments'",
            self.aws.region, self.names.cluster, self.names.service
        )
    }
}

/// `--as NAME` and free text: one line, not empty, bounded.
pub fn check_text(flag: &str, v: &str, max: usize) -> Result<(), Failure> {
    let v = v.trim();
    if v.is_empty() {
        return Err(Failure::usage(format!(
            "{flag} is empty: say it in a few words"
        )));
    }
    if v.chars().count() > max {
        return Err(Failure::usage(format!(
            "{flag} is longer than {max} characters"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(Failure::usage(format!(
            "{flag} spans several lines or has control characters: keep it to one line"
        )));
    }
    Ok(())
}

/// A placeholder from a notification's command, pasted unedited.
pub fn refuse_placeholder(flag: &str, v: &str, placeholders: &[&str]) -> Result<(), Failure> {
    if placeholders.contains(&v.trim()) {
        return Err(Failure::usage(format!(
            "{flag} {v:?} is the placeholder of the notification's command: write the real one"
        )));
    }
    Ok(())
}

/// The placeholders of the runbook's `menotime-ops` commands.
pub const PLACEHOLDERS: [&str; 3] = [
    runbook::UNFREEZE_REASON_PLACEHOLDER,
    menotime_shared::domain::scan::REASON_PLACEHOLDER,
    menotime_shared::domain::scan::APPROVER_PLACEHOLDER,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Env;

    fn target(env: Env, cluster: Option<&str>, service: Option<&str>) -> Target {
        Target {
            env,
            cluster: cluster.map(str::to_owned),
            service: service.map(str::to_owned),
            region: None,
            profile: None,
            json: false,
        }
    }

    #[test]
    fn the_manuals_names_unless_overridden() {
        let n = Names::of(&target(Env::Staging, None, None)).unwrap();
        assert_eq!(n.cluster, "menotime-staging-cluster");
        assert_eq!(n.service, "menotime-staging-service");
        let n = Names::of(&target(Env::Prod, Some("blue"), Some("api_2"))).unwrap();
        assert_eq!((n.cluster.as_str(), n.service.as_str()), ("blue", "api_2"));
        for bad in ["", "a b", "a/b", &"x".repeat(256)] {
            let e = Names::of(&target(Env::Dev, Some(bad), None)).unwrap_err();
            assert_eq!(e.kind, crate::error::Kind::Usage, "{bad:?}");
        }
        let mut t = target(Env::Dev, None, None);
        t.region = Some("US West".into());
        assert!(Names::of(&t).is_err());
    }

    #[test]
    fn free_text_is_one_bounded_line_and_no_placeholder() {
        assert!(check_text("--reason", "fine", 10).is_ok());
        assert!(check_text("--reason", "  ", 10).is_err());
        assert!(check_text("--reason", "two\nlines", 100).is_err());
        assert!(check_text("--reason", &"x".repeat(11), 10).is_err());
        assert!(refuse_placeholder("--reason", "WHAT_WAS_REVIEWED", &PLACEHOLDERS).is_err());
        assert!(refuse_placeholder("--as", "YOUR_NAME", &PLACEHOLDERS).is_err());
        assert!(refuse_placeholder("--reason", "reviewed", &PLACEHOLDERS).is_ok());
    }
}
