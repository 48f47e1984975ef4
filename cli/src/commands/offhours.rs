//! `offhours hold` and `offhours release`: write or remove `menotime:offhours`
//! (docs/reference.md §3.6). A hold is `skip-until=<UTC time>`; an indefinite `skip`
//! set by someone on purpose is never shortened into a hold.

use chrono::{DateTime, Utc};
use serde_json::json;

use menotime_shared::aws::ecs::EcsApi;
use menotime_shared::domain::offhours::Exclusion;
use menotime_shared::domain::service::ServiceTags;
use menotime_shared::tags;

use super::Ctx;
use crate::args::{HoldArgs, ReleaseArgs};
use crate::error::Failure;
use crate::output::{Page, Report};
use crate::time::{from_now, parse_until, utc};
use crate::values::{hold as hold_value, read_exclusion, OffhoursValue};

pub fn check_until(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Failure> {
    parse_until(s, now).map_err(Failure::usage)
}

/// How offhours-scaler reads the `menotime:offhours` tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    /// The scaler acts on the value (the shared domain reads it).
    pub honoured: bool,
    /// What that means, for people.
    pub says: String,
}

/// How the scaler reads the `menotime:offhours` tag in `tags` at `now`: the shared
/// domain decides ([`Exclusion::at`], as offhours-scaler reads it).
pub fn scaler_reading(tags: &ServiceTags, now: DateTime<Utc>) -> Option<Reading> {
    tags.offhours.as_ref()?;
    Some(match Exclusion::at(tags.offhours.as_ref(), now) {
        Exclusion::None => return None,
        Exclusion::Skip => Reading {
            honoured: true,
            says: "offhours-scaler leaves the service alone (a service excluded while scaled down is restored when its day begins)".to_owned(),
        },
        Exclusion::Held { until } => Reading {
            honoured: true,
            says: format!(
                "offhours-scaler keeps the service at full capacity until {} (restoring it at its next run if it is down)",
                utc(until)
            ),
        },
        Exclusion::Expired { until } => Reading {
            honoured: false,
            says: format!(
                "the hold ended at {}: it means nothing now, and offhours-scaler removes the tag at its next run",
                utc(until)
            ),
        },
        Exclusion::Unreadable { problem, .. } => Reading {
            honoured: false,
            says: format!(
                "UNREADABLE ({problem}): offhours-scaler never lowers the service while it is there; fix it or remove it"
            ),
        },
    })
}

pub async fn hold(ctx: &Ctx, a: &HoldArgs, until: DateTime<Utc>) -> Result<Report, Failure> {
    let service = ctx.service().await?;
    let n = &ctx.names;
    let existing = service.tags.raw.get(tags::OFFHOURS).cloned();
    if let Some(v) = &existing {
        if read_exclusion(v) == OffhoursValue::Skip {
            return Err(Failure::refused(format!(
                "{} is already excluded from off-hours scaling with no end ({}={v}); nothing changed. To replace it with a hold, run {} first",
                n.service,
                tags::OFFHOURS,
                ctx.ops("offhours release")
            )));
        }
    }
    let value = hold_value(until);
    if !a.dry_run {
        ctx.aws
            .ecs
            .tag_service(&service.arn, &[(tags::OFFHOURS.to_owned(), value.clone())])
            .await
            .map_err(Failure::from)?;
    }
    let after = service
        .tags
        .with(&[(tags::OFFHOURS.to_owned(), value.clone())]);
    let reading = scaler_reading(&after, ctx.now);
    let honoured = reading.as_ref().is_some_and(|r| r.honoured);
    let verb = if a.dry_run { "Would hold" } else { "Held" };
    let mut page = Page::new(ctx.style);
    if honoured {
        page.line(&format!(
            "{verb} {} at its current capacity until {} ({}): the off-hours scaler leaves it alone until then.",
            n.service,
            utc(until),
            from_now(until, ctx.now)
        ));
    } else {
        page.line(&ctx.style.bad(&format!(
            "{} the hold until {} on {}, but offhours-scaler does not honour it: the hold is NOT in force.",
            if a.dry_run { "Would write" } else { "Wrote" },
            utc(until),
            n.service
        )));
    }
    let mut rows = vec![
        ("tag", format!("{}={value}", tags::OFFHOURS)),
        (
            "until",
            format!("{} ({})", utc(until), from_now(until, ctx.now)),
        ),
    ];
    if let Some(v) = &existing {
        rows.push(("replaced", v.clone()));
    }
    if let Some(r) = &reading {
        rows.push(("scaler", ctx.style.warn(&r.says)));
    }
    if let Some(snapshot) = service.tags.raw.get(tags::OFFHOURS_SNAPSHOT) {
        rows.push((
            "note",
            format!(
                "the service is scaled down now ({}={snapshot}); offhours-scaler restores it at its next run (within 5 minutes)",
                tags::OFFHOURS_SNAPSHOT
            ),
        ));
    }
    rows.push(("release", ctx.ops("offhours release")));
    page.section("Off-hours hold", &rows);
    Ok(Report {
        human: page.finish(),
        json: json!({
            "command": "offhours hold",
            "result": if a.dry_run { "would_hold" } else { "held" },
            "dry_run": a.dry_run,
            "service": n.service,
            "cluster": n.cluster,
            "value": value,
            "until": utc(until),
            "replaced": existing,
            "honoured_by_scaler": honoured,
            "scaler": reading.map(|r| r.says),
        }),
    })
}

pub async fn release(ctx: &Ctx, a: &ReleaseArgs) -> Result<Report, Failure> {
    let service = ctx.service().await?;
    let n = &ctx.names;
    let mut page = Page::new(ctx.style);
    let Some(existing) = service.tags.raw.get(tags::OFFHOURS).cloned() else {
        page.line(&format!(
            "{} has no off-hours hold or exclusion; nothing changed.",
            n.service
        ));
        return Ok(Report {
            human: page.finish(),
            json: json!({
                "command": "offhours release",
                "result": "not_held",
                "dry_run": a.dry_run,
                "service": n.service,
                "cluster": n.cluster,
                "removed": null,
            }),
        });
    };
    if !a.dry_run {
        ctx.aws
            .ecs
            .untag_service(&service.arn, &[tags::OFFHOURS.to_owned()])
            .await
            .map_err(Failure::from)?;
    }
    let what = match read_exclusion(&existing) {
        OffhoursValue::Skip => "exclusion (no end)".to_owned(),
        OffhoursValue::Until(t) if t > ctx.now => format!("hold until {}", utc(t)),
        OffhoursValue::Until(t) => format!("hold that ended at {}", utc(t)),
        OffhoursValue::Other(_) => "value the scaler cannot read".to_owned(),
    };
    let verb = if a.dry_run { "Would remove" } else { "Removed" };
    page.line(&format!(
        "{verb} the off-hours {what} of {}: the schedule applies again from its next run.",
        n.service
    ))
    .section(
        "Off-hours",
        &[("removed", format!("{}={existing}", tags::OFFHOURS))],
    );
    Ok(Report {
        human: page.finish(),
        json: json!({
            "command": "offhours release",
            "result": if a.dry_run { "would_release" } else { "released" },
            "dry_run": a.dry_run,
            "service": n.service,
            "cluster": n.cluster,
            "removed": existing,
        }),
    })
}
