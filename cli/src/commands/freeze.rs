//! `freeze` and `unfreeze`: write or remove `menotime:deploy-freeze` (docs/reference.md
//! §3.3). An existing freeze is never overwritten: it may be deploy-notifier's, naming
//! the deployment that failed. Unfreezing keeps who, when and why in
//! `menotime:deploy-unfrozen`.

use serde_json::json;

use menotime_shared::aws::ecs::EcsApi;
use menotime_shared::tags;

use super::{check_text, refuse_placeholder, Ctx, PLACEHOLDERS};
use crate::args::{FreezeArgs, UnfreezeArgs};
use crate::error::Failure;
use crate::output::{Page, Report};
use crate::values::{read_stamp, stamped, unfrozen, Stamp};

pub fn check_reason(reason: &str) -> Result<(), Failure> {
    check_text("--reason", reason, 200)?;
    refuse_placeholder("--reason", reason, &PLACEHOLDERS)
}

fn check_who(who: Option<&str>) -> Result<(), Failure> {
    match who {
        Some(w) => {
            check_text("--as", w, 64)?;
            refuse_placeholder("--as", w, &PLACEHOLDERS)
        }
        None => Ok(()),
    }
}

/// The freeze as a JSON object (`null` when not frozen).
pub fn stamp_json(s: &Stamp) -> serde_json::Value {
    json!({
        "value": s.value,
        "by": s.by,
        "at": s.at.map(crate::time::utc),
        "reason": s.reason,
    })
}

pub async fn freeze(ctx: &Ctx, a: &FreezeArgs) -> Result<Report, Failure> {
    check_who(a.who.as_deref())?;
    let service = ctx.service().await?;
    let n = &ctx.names;
    let mut page = Page::new(ctx.style);
    if let Some(existing) = &service.tags.freeze {
        page.line(&format!(
            "{} is already frozen; nothing changed (the freeze is kept as it is).",
            n.service
        ))
        .section("Freeze", &[("value", existing.clone())]);
        return Ok(Report {
            human: page.finish(),
            json: json!({
                "command": "freeze",
                "result": "already_frozen",
                "dry_run": a.dry_run,
                "service": n.service,
                "cluster": n.cluster,
                "freeze": stamp_json(&read_stamp(existing)),
            }),
        });
    }
    let who = ctx.who(a.who.as_deref()).await?;
    let value = stamped(&who, ctx.now, &a.reason);
    if !a.dry_run {
        ctx.aws
            .ecs
            .tag_service(
                &service.arn,
                &[(tags::DEPLOY_FREEZE.to_owned(), value.clone())],
            )
            .await
            .map_err(Failure::from)?;
    }
    let verb = if a.dry_run { "Would freeze" } else { "Froze" };
    page.line(&format!(
        "{verb} deployments to {}: scan-gate deploys nothing until it is lifted.",
        n.service
    ))
    .section(
        "Freeze",
        &[
            ("tag", tags::DEPLOY_FREEZE.to_owned()),
            ("value", value.clone()),
            ("lift it", ctx.ops("unfreeze --reason '...'")),
        ],
    );
    Ok(Report {
        human: page.finish(),
        json: json!({
            "command": "freeze",
            "result": if a.dry_run { "would_freeze" } else { "frozen" },
            "dry_run": a.dry_run,
            "service": n.service,
            "cluster": n.cluster,
            "freeze": stamp_json(&read_stamp(&value)),
        }),
    })
}

pub async fn unfreeze(ctx: &Ctx, a: &UnfreezeArgs) -> Result<Report, Failure> {
    check_who(a.who.as_deref())?;
    let service = ctx.service().await?;
    let n = &ctx.names;
    let mut page = Page::new(ctx.style);
    let Some(existing) = &service.tags.freeze else {
        page.line(&format!("{} is not frozen; nothing changed.", n.service));
        return Ok(Report {
            human: page.finish(),
            json: json!({
                "command": "unfreeze",
                "result": "not_frozen",
                "dry_run": a.dry_run,
                "service": n.service,
                "cluster": n.cluster,
                "freeze": null,
                "unfrozen": null,
            }),
        });
    };
    let who = ctx.who(a.who.as_deref()).await?;
    let record = unfrozen(&who, ctx.now, &a.reason, existing);
    if !a.dry_run {
        // The record first: if removing the freeze then fails, the service is still
        // frozen (safe) and running the command again finishes it.
        ctx.aws
            .ecs
            .tag_service(
                &service.arn,
                &[(tags::DEPLOY_UNFROZEN.to_owned(), record.clone())],
            )
            .await
            .map_err(Failure::from)?;
        ctx.aws
            .ecs
            .untag_service(&service.arn, &[tags::DEPLOY_FREEZE.to_owned()])
            .await
            .map_err(|e| {
                Failure::from(e).context(
                    "the service is STILL FROZEN (the unfreeze was recorded, the freeze was not removed); run the command again",
                )
            })?;
    }
    let verb = if a.dry_run { "Would lift" } else { "Lifted" };
    page.line(&format!(
        "{verb} the freeze of {}: the next image scan-gate clears deploys (images that arrived while frozen were not deployed; approve or rescan the one you want).",
        n.service
    ))
    .section(
        "Unfreeze",
        &[
            ("was", existing.clone()),
            ("recorded", format!("{} = {record}", tags::DEPLOY_UNFROZEN)),
        ],
    );
    Ok(Report {
        human: page.finish(),
        json: json!({
            "command": "unfreeze",
            "result": if a.dry_run { "would_unfreeze" } else { "unfrozen" },
            "dry_run": a.dry_run,
            "service": n.service,
            "cluster": n.cluster,
            "freeze": stamp_json(&read_stamp(existing)),
            "unfrozen": stamp_json(&read_stamp(&record)),
        }),
    })
}
