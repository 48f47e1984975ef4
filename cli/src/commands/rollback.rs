//! `rollback`: the manual's rollback, made safe. Freeze first (so a rescan of the
//! newer image does not deploy it again), then UpdateService to the previous revision
//! with a new deployment. Refused while a rollout is in progress unless `--force`.

use serde_json::json;

use menotime_shared::arn::{task_definition_short, Arn};
use menotime_shared::aws::ecs::EcsApi;
use menotime_shared::domain::deploy::RevisionSummary;
use menotime_shared::tags;

use super::{check_text, refuse_placeholder, Ctx, PLACEHOLDERS};
use crate::args::RollbackArgs;
use crate::error::Failure;
use crate::output::{Page, Report};
use crate::values::stamped;

/// What `--to` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum To {
    /// A revision number of the running revision's family.
    Number(u32),
    /// `family:revision` (from an ARN too).
    Short { family: String, revision: u32 },
}

impl To {
    pub fn parse(s: &str) -> Result<To, String> {
        let s = s.trim();
        let bad = || {
            format!(
                "--to {s:?} is not a revision: give a number of the running family (47), family:revision (menotime-backend-prod:47) or a task-definition ARN"
            )
        };
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .map(To::Number)
                .ok_or_else(bad);
        }
        let short = if s.starts_with("arn:") {
            Arn::parse(s)
                .as_ref()
                .and_then(|a| a.task_definition().map(|(f, r)| format!("{f}:{r}")))
                .ok_or_else(bad)?
        } else {
            s.to_owned()
        };
        let (family, rev) = short.rsplit_once(':').ok_or_else(bad)?;
        let family_ok = !family.is_empty()
            && family.len() <= 255
            && family
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        let revision: u32 = rev.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
        if !family_ok || !rev.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(To::Short {
            family: family.to_owned(),
            revision,
        })
    }

    /// `family:revision`, the running family filling in a bare number.
    pub fn short(&self, running_family: &str) -> String {
        match self {
            To::Number(n) => format!("{running_family}:{n}"),
            To::Short { family, revision } => format!("{family}:{revision}"),
        }
    }
}

/// Why this revision was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chosen {
    /// `--to`.
    Named,
    /// The running revision's `menotime:replaces` (scan-gate recorded what it replaced).
    Replaces,
    /// The family's newest ACTIVE revision before the running one.
    PreviousActive,
}

impl Chosen {
    pub fn as_str(self) -> &'static str {
        match self {
            Chosen::Named => "named",
            Chosen::Replaces => "replaces",
            Chosen::PreviousActive => "previous_active",
        }
    }

    fn explain(self) -> &'static str {
        match self {
            Chosen::Named => "named with --to",
            Chosen::Replaces => "the revision the running one replaced (its menotime:replaces tag)",
            Chosen::PreviousActive => "the family's previous ACTIVE revision",
        }
    }
}

/// The revision the running one replaced, when scan-gate recorded it and it is another
/// revision.
pub fn recorded_previous(running: &RevisionSummary) -> Option<String> {
    let short = running.replaces()?;
    matches!(To::parse(short), Ok(To::Short { .. }))
        .then(|| short.to_owned())
        .filter(|s| *s != running.short())
}

pub fn check_args(a: &RollbackArgs) -> Result<Option<To>, Failure> {
    if let Some(r) = &a.reason {
        check_text("--reason", r, 200)?;
        refuse_placeholder("--reason", r, &PLACEHOLDERS)?;
    }
    if let Some(w) = &a.who {
        check_text("--as", w, 64)?;
        refuse_placeholder("--as", w, &PLACEHOLDERS)?;
    }
    a.to.as_deref()
        .map(To::parse)
        .transpose()
        .map_err(Failure::usage)
}

pub async fn run(ctx: &Ctx, a: &RollbackArgs, to: Option<To>) -> Result<Report, Failure> {
    let n = &ctx.names;
    let service = ctx.service().await?;
    if let (Some(r), false) = (service.rollout(), a.force) {
        return Err(Failure::refused(format!(
            "{} has a rollout in progress (deployment {} is {}); nothing changed. Watch it with {}, or replace it with --force",
            n.service,
            r.deployment,
            r.state,
            ctx.ops("status")
        )));
    }
    let running = ctx.aws.revision(&service.task_definition).await?.summary;
    let (target, chosen) = match &to {
        Some(t) => (t.short(&running.family), Chosen::Named),
        None => match recorded_previous(&running) {
            Some(p) => (p, Chosen::Replaces),
            None => match ctx
                .aws
                .previous_active(&running.family, running.revision)
                .await?
            {
                Some(arn) => (task_definition_short(&arn), Chosen::PreviousActive),
                None => {
                    return Err(Failure::refused(format!(
                        "{} runs {}, and no earlier ACTIVE revision of {} exists to roll back to; nothing changed. Name one with --to",
                        n.service,
                        running.short(),
                        running.family
                    )))
                }
            },
        },
    };
    if target == running.short() {
        return Err(Failure::refused(format!(
            "{} already runs {target}; nothing changed. Name another revision with --to",
            n.service
        )));
    }
    let target_rev = ctx.aws.revision(&target).await?;
    if target_rev.status != "ACTIVE" {
        return Err(Failure::refused(format!(
            "{target} is {} (deregistered), so ECS cannot deploy it; nothing changed. Name an ACTIVE revision with --to (aws ecs list-task-definitions --family-prefix {} --status ACTIVE --sort DESCENDING)",
            target_rev.status, target_rev.summary.family
        )));
    }

    // Freeze first; a freeze already there (deploy-notifier's, or an operator's) is kept.
    let freeze = match &service.tags.freeze {
        Some(existing) => Freeze::Kept(existing.clone()),
        None => {
            let who = ctx.who(a.who.as_deref()).await?;
            let why = a
                .reason
                .clone()
                .unwrap_or_else(|| format!("rollback from {} to {target}", running.short()));
            let value = stamped(&who, ctx.now, &why);
            if !a.dry_run {
                ctx.aws
                    .ecs
                    .tag_service(
                        &service.arn,
                        &[(tags::DEPLOY_FREEZE.to_owned(), value.clone())],
                    )
                    .await
                    .map_err(|e| Failure::from(e).context("nothing changed: the freeze could not be written, so the rollback was not started"))?;
            }
            Freeze::Written(value)
        }
    };
    let deployment = if a.dry_run {
        None
    } else {
        ctx.aws
            .ecs
            .force_deploy(&n.cluster, &n.service, &target_rev.summary.arn)
            .await
            .map_err(|e| {
                Failure::from(e).context(&format!(
                    "{} is frozen but the rollback to {target} did NOT start; run the same command again",
                    n.service
                ))
            })?
    };

    let image = target_rev.summary.image_line(None);
    let mut page = Page::new(ctx.style);
    page.line(&if a.dry_run {
        format!(
            "Would roll {} back from {} to {target}, after freezing deployments.",
            n.service,
            running.short()
        )
    } else {
        format!(
            "Rolling {} back from {} to {target}: a new deployment started, deployments are frozen.",
            n.service,
            running.short()
        )
    });
    let freeze_row = match &freeze {
        Freeze::Kept(v) => format!("kept (already frozen): {v}"),
        Freeze::Written(v) if a.dry_run => format!("would write {}={v}", tags::DEPLOY_FREEZE),
        Freeze::Written(v) => format!("written: {v}"),
    };
    page.section(
        "Rollback",
        &[
            ("from", running.short()),
            ("to", format!("{target} ({})", chosen.explain())),
            ("image", image.clone()),
            ("freeze", freeze_row),
            (
                "deployment",
                deployment.clone().unwrap_or_else(|| {
                    if a.dry_run {
                        "(dry run)".into()
                    } else {
                        "(not reported)".into()
                    }
                }),
            ),
        ],
    )
    .section(
        "Next",
        &[
            (
                "watch",
                format!("{}\n{}", ctx.ops("status"), ctx.watch_command()),
            ),
            ("then", ctx.ops("unfreeze --reason '...'")),
        ],
    );
    Ok(Report {
        human: page.finish(),
        json: json!({
            "command": "rollback",
            "result": if a.dry_run { "would_roll_back" } else { "rolling_back" },
            "dry_run": a.dry_run,
            "service": n.service,
            "cluster": n.cluster,
            "from": running.arn,
            "to": target_rev.summary.arn,
            "chosen": chosen.as_str(),
            "image": image,
            "freeze": match &freeze {
                Freeze::Kept(v) => json!({"written": false, "value": v}),
                Freeze::Written(v) => json!({"written": !a.dry_run, "value": v}),
            },
            "deployment_id": deployment,
            "watch": ctx.watch_command(),
        }),
    })
}

enum Freeze {
    Kept(String),
    Written(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn revisions_are_named_three_ways() {
        assert_eq!(To::parse("47"), Ok(To::Number(47)));
        let short = To::Short {
            family: "menotime-backend-prod".into(),
            revision: 47,
        };
        assert_eq!(To::parse("menotime-backend-prod:47"), Ok(short.clone()));
        assert_eq!(
            To::parse(
                "arn:aws:ecs:us-west-1:123456789012:task-definition/menotime-backend-prod:47"
            ),
            Ok(short.clone())
        );
        assert_eq!(
            To::Number(47).short("menotime-backend-prod"),
            "menotime-backend-prod:47"
        );
        assert_eq!(short.short("other"), "menotime-backend-prod:47");
        for bad in [
            "",
            "0",
            "-1",
            "latest",
            "menotime-backend-prod",
            "menotime-backend-prod:",
            "menotime-backend-prod:x",
            "fam ily:1",
            "arn:aws:ecs:us-west-1:1:service/a/b",
            ":4",
        ] {
            assert!(To::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_recorded_previous_revision_must_be_another_one() {
        let rev = |replaces: Option<&str>| RevisionSummary {
            arn: "arn:aws:ecs:us-west-1:123456789012:task-definition/menotime-backend-prod:48"
                .into(),
            family: "menotime-backend-prod".into(),
            revision: 48,
            tags: replaces
                .map(|r| BTreeMap::from([(tags::REPLACES.to_owned(), r.to_owned())]))
                .unwrap_or_default(),
            ..Default::default()
        };
        assert_eq!(
            recorded_previous(&rev(Some("menotime-backend-prod:47"))).as_deref(),
            Some("menotime-backend-prod:47")
        );
        assert_eq!(recorded_previous(&rev(None)), None);
        assert_eq!(
            recorded_previous(&rev(Some("menotime-backend-prod:48"))),
            None
        );
        assert_eq!(recorded_previous(&rev(Some("garbage"))), None);
    }
}
