//! `status`: where the environment stands, from the service's description and tags
//! read into types by the shared crate (`ServiceTags`), the running revision, and the
//! scalable target. Changes nothing.
//!
//! Every `menotime:` tag of the service is shown: the ones this release reads, in their
//! sections, and any other (a newer release's state) under "Other state tags", as it is.

use serde_json::{json, Value};

use menotime_shared::aws::autoscaling::ScalingApi;
use menotime_shared::domain::image::ImageRef;
use menotime_shared::domain::incident::Marker;
use menotime_shared::domain::offhours::Snapshot;
use menotime_shared::domain::service::{ServiceState, Tagged};
use menotime_shared::tags;

use super::freeze::stamp_json;
use super::offhours::scaler_reading;
use super::Ctx;
use crate::args::StatusArgs;
use crate::aws::RevisionInfo;
use crate::error::Failure;
use crate::output::{or_dash, Page, Report, Style};
use crate::time::{from_now, utc};
use crate::values::{read_exclusion, read_stamp, OffhoursValue};

/// The service tags `status` shows in their own sections.
const KNOWN: [&str; 7] = [
    tags::DEPLOY_FREEZE,
    tags::DEPLOY_DEFERRED,
    tags::DEPLOY_UNFROZEN,
    tags::DEPLOY_INCIDENT,
    tags::SERVICE_INCIDENT,
    tags::OFFHOURS_SNAPSHOT,
    tags::OFFHOURS,
];

pub async fn run(ctx: &Ctx, a: &StatusArgs) -> Result<Report, Failure> {
    let service = ctx.service().await?;
    let revision = ctx.aws.revision(&service.task_definition).await;
    let target = ctx
        .aws
        .scaling
        .describe_target(&ctx.names.cluster, &ctx.names.service)
        .await;
    // What the running image's tag names now, when the revision runs a tag, not a digest.
    let image = revision
        .as_ref()
        .ok()
        .map(|r| r.summary.image_line(Some(&a.images.container)));
    let tag_now = match image.as_deref().map(ImageRef::parse) {
        Some(ImageRef {
            name,
            tag: Some(tag),
            digest: None,
        }) if name.ends_with(&format!("/{}", a.images.repository)) => ctx
            .aws
            .image_by_tag(&a.images.repository, tag)
            .await
            .ok()
            .map(|i| i.digest),
        _ => None,
    };

    let mut notes = Vec::new();
    let revision = match revision {
        Ok(r) => Some(r),
        Err(e) => {
            notes.push(format!("the running revision could not be read: {e}"));
            None
        }
    };
    let target = match target {
        Ok(t) => t,
        Err(e) => {
            notes.push(format!(
                "the scalable target could not be read: {}",
                Failure::from(e)
            ));
            None
        }
    };
    let json = status_json(
        ctx,
        &service,
        revision.as_ref(),
        image.as_deref(),
        tag_now.as_deref(),
        target.as_ref(),
        &notes,
    );
    let human = status_text(ctx, &json, ctx.style);
    Ok(Report { human, json })
}

fn marker_json(m: Option<&Tagged<Marker>>) -> Value {
    match m {
        None => Value::Null,
        Some(Tagged::Read(m)) => json!({
            "state": if m.open { "open" } else { "resolved" },
            "deployment": m.deployment,
            "sent": m.sent.iter().collect::<Vec<_>>(),
            "at": m.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }),
        Some(Tagged::Unreadable { value, problem }) => json!({
            "state": "unreadable",
            "value": value,
            "problem": problem,
        }),
    }
}

fn snapshot_json(s: Option<&Tagged<Snapshot>>) -> Value {
    match s {
        None => Value::Null,
        Some(Tagged::Read(s)) => json!({
            "value": s.render(),
            "min": s.target.map(|t| t.min),
            "max": s.target.map(|t| t.max),
            "desired": s.desired,
            "saved": s.saved.map(utc),
        }),
        Some(Tagged::Unreadable { value, problem }) => json!({
            "value": value,
            "problem": problem,
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn status_json(
    ctx: &Ctx,
    s: &ServiceState,
    revision: Option<&RevisionInfo>,
    image: Option<&str>,
    tag_now: Option<&str>,
    target: Option<&menotime_shared::domain::offhours::ScalableTarget>,
    notes: &[String],
) -> Value {
    let t = &s.tags;
    let revision = revision.map(|r| {
        let sum = &r.summary;
        let parsed = image.map(ImageRef::parse);
        let digest = parsed
            .as_ref()
            .and_then(|p| p.digest)
            .map(str::to_owned)
            .or_else(|| tag_now.map(str::to_owned));
        json!({
            "arn": sum.arn,
            "revision": sum.short(),
            "status": r.status,
            "image": image,
            "image_tag": sum.image_tag().map(str::to_owned).or_else(|| parsed.as_ref().and_then(|p| p.tag).map(str::to_owned)),
            "digest": digest,
            "digest_pinned": parsed.as_ref().is_some_and(|p| p.digest.is_some()),
            "replaces": sum.replaces(),
            "approved_by": sum.tags.get(tags::APPROVED_BY),
            "scanned_at": sum.tags.get(tags::SCANNED_AT),
            "source_event": sum.tags.get(tags::SOURCE_EVENT),
            "deployed": sum.tags.get(tags::DEPLOYED),
        })
    });
    let exclusion = t.raw.get(tags::OFFHOURS).map(|v| {
        let (kind, until, active) = match read_exclusion(v) {
            OffhoursValue::Skip => ("skip", None, true),
            OffhoursValue::Until(u) => ("hold", Some(utc(u)), u > ctx.now),
            OffhoursValue::Other(_) => ("other", None, false),
        };
        json!({
            "value": v,
            "kind": kind,
            "until": until,
            "active": active,
            "honoured_by_scaler": scaler_reading(t, ctx.now).is_some_and(|r| r.honoured),
            "scaler": scaler_reading(t, ctx.now).map(|r| r.says),
        })
    });
    let other: serde_json::Map<String, Value> = t
        .raw
        .iter()
        .filter(|(k, _)| k.starts_with("menotime:") && !KNOWN.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "environment": ctx.names.env.as_str(),
        "cluster": ctx.names.cluster,
        "service": ctx.names.service,
        "service_arn": s.arn,
        "tasks": {"desired": s.desired_count, "running": s.running_count, "pending": s.pending_count},
        "rollout": s.rollout().map(|r| json!({"deployment": r.deployment, "state": r.state})),
        "deployments": s.deployments.iter().map(|d| json!({
            "id": d.id,
            "status": d.status,
            "rollout_state": d.rollout_state,
            "task_definition": s.deployment_task_definition(&d.id),
        })).collect::<Vec<_>>(),
        "revision": revision,
        "freeze": t.freeze.as_deref().map(|f| stamp_json(&read_stamp(f))),
        "last_unfreeze": t.unfrozen.as_deref().map(|f| stamp_json(&read_stamp(f))),
        "deferred_deploy": match &t.deferred {
            None => Value::Null,
            Some(Tagged::Read(d)) => json!({
                "tag": d.tag,
                "digest": d.digest,
                "scanned_at": utc(d.scanned_at),
                "event": d.event,
                "approved_by": d.approved_by,
            }),
            Some(Tagged::Unreadable { value, problem }) => json!({
                "value": value,
                "problem": problem,
            }),
        },
        "incidents": {
            "deployment": marker_json(t.deploy_incident.as_ref()),
            "service": marker_json(t.service_incident.as_ref()),
        },
        "offhours": {
            "exclusion": exclusion,
            "snapshot": snapshot_json(t.offhours_snapshot.as_ref()),
            "scalable_target": target.map(|t| json!({"min": t.min, "max": t.max, "suspended": t.suspended.render()})),
        },
        "other_state_tags": other,
        "notes": notes,
    })
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn stamp_line(v: &Value) -> String {
    let mut line = s(&v["value"]);
    if !v["by"].is_null() {
        line = format!("by {} at {}\n{}", s(&v["by"]), s(&v["at"]), s(&v["reason"]));
    }
    line
}

fn status_text(ctx: &Ctx, j: &Value, style: Style) -> String {
    let mut p = Page::new(style);
    p.line(&style.bold(&format!(
        "{} / {} ({})",
        s(&j["cluster"]),
        s(&j["service"]),
        s(&j["environment"])
    )));
    let rollout = match &j["rollout"] {
        Value::Null => style.good("steady (no rollout in progress)"),
        r => style.warn(&format!(
            "{} (deployment {})",
            s(&r["state"]),
            s(&r["deployment"])
        )),
    };
    let mut deployments = Vec::new();
    for d in j["deployments"].as_array().into_iter().flatten() {
        deployments.push(format!(
            "{} {} {} {}",
            s(&d["status"]),
            s(&d["rollout_state"]),
            s(&d["id"]),
            s(&d["task_definition"])
                .rsplit('/')
                .next()
                .unwrap_or_default()
        ));
    }
    p.section(
        "Service",
        &[
            (
                "tasks",
                format!(
                    "{} running of {} desired{}",
                    s(&j["tasks"]["running"]),
                    s(&j["tasks"]["desired"]),
                    match j["tasks"]["pending"].as_i64() {
                        Some(n) if n > 0 => format!(", {n} pending"),
                        _ => String::new(),
                    }
                ),
            ),
            ("rollout", rollout),
            (
                "deployments",
                or_dash(Some(deployments.join("\n")).filter(|d| !d.is_empty())),
            ),
        ],
    );
    let r = &j["revision"];
    if r.is_null() {
        p.section(
            "Running revision",
            &[("revision", "(could not be read)".into())],
        );
    } else {
        let digest = match (&r["digest"], r["digest_pinned"].as_bool()) {
            (Value::Null, _) => "- (the image is not pinned by digest)".to_owned(),
            (d, Some(true)) => s(d),
            (d, _) => format!("{} (what the tag names now; the image is not pinned)", s(d)),
        };
        let mut rows = vec![
            (
                "revision",
                format!("{} ({})", s(&r["revision"]), s(&r["status"])),
            ),
            ("image tag", s(&r["image_tag"])),
            ("digest", digest),
            ("image", s(&r["image"])),
        ];
        for (label, key) in [
            ("replaces", "replaces"),
            ("approved by", "approved_by"),
            ("scanned at", "scanned_at"),
            ("source event", "source_event"),
            ("deployed", "deployed"),
        ] {
            if !r[key].is_null() {
                rows.push((label, s(&r[key])));
            }
        }
        p.section("Running revision", &rows);
    }
    let mut rows = match &j["freeze"] {
        Value::Null => vec![(
            "state",
            style.good("not frozen: scan-gate deploys cleared images"),
        )],
        f => vec![
            ("state", style.bad("FROZEN: scan-gate deploys nothing")),
            ("set", stamp_line(f)),
            ("lift", ctx.ops("unfreeze --reason '...'")),
        ],
    };
    if !j["last_unfreeze"].is_null() {
        rows.push(("last lifted", stamp_line(&j["last_unfreeze"])));
    }
    p.section("Deploy freeze", &rows);
    let deferred = match &j["deferred_deploy"] {
        Value::Null => "none".to_owned(),
        d if !d["problem"].is_null() => style.warn(&format!(
            "UNREADABLE ({}): {}",
            s(&d["problem"]),
            s(&d["value"])
        )),
        d => format!(
            "{} ({}), cleared at {}: deploys when the rollout under way completes",
            s(&d["tag"]),
            s(&d["digest"]),
            s(&d["scanned_at"])
        ),
    };
    p.section("Deferred deploy", &[("waiting", deferred)]);
    let incident = |v: &Value| -> String {
        match v["state"].as_str() {
            None => "none".to_owned(),
            Some("unreadable") => style.warn(&format!(
                "unreadable ({}): {}",
                s(&v["problem"]),
                s(&v["value"])
            )),
            Some(state) => {
                let sent = v["sent"]
                    .as_array()
                    .map(|a| a.iter().map(s).collect::<Vec<_>>().join("+"))
                    .unwrap_or_default();
                let head = if state == "open" {
                    style.bad("OPEN")
                } else {
                    "resolved".to_owned()
                };
                let deployment = match &v["deployment"] {
                    Value::Null => String::new(),
                    d => format!(" deployment {}", s(d)),
                };
                format!("{head}{deployment}, sent {sent}, at {}", s(&v["at"]))
            }
        }
    };
    p.section(
        "Incidents",
        &[
            ("deployment", incident(&j["incidents"]["deployment"])),
            ("service", incident(&j["incidents"]["service"])),
        ],
    );
    let o = &j["offhours"];
    let exclusion = match &o["exclusion"] {
        Value::Null => "none: the schedule applies".to_owned(),
        e => {
            let honoured = e["honoured_by_scaler"].as_bool() == Some(true);
            let head = match (e["kind"].as_str(), e["active"].as_bool()) {
                (Some("skip"), _) => "excluded (skip, no end)".to_owned(),
                (Some("hold"), Some(true)) if !honoured => style.bad(&format!(
                    "NOT IN FORCE: skip-until {} is written, but the scaler does not read it",
                    s(&e["until"])
                )),
                (Some("hold"), Some(true)) => {
                    let until = s(&e["until"]);
                    let when = chrono::DateTime::parse_from_rfc3339(&until)
                        .map(|t| from_now(t.with_timezone(&chrono::Utc), ctx.now))
                        .unwrap_or_default();
                    style.warn(&format!("HELD until {until} ({when})"))
                }
                (Some("hold"), _) => format!("hold ended at {}", s(&e["until"])),
                _ => format!("unknown value {:?}", s(&e["value"])),
            };
            match &e["scaler"] {
                Value::Null => head,
                r => format!("{head}\n{}", s(r)),
            }
        }
    };
    let snapshot = match &o["snapshot"] {
        Value::Null => "none (not scaled down)".to_owned(),
        v if !v["problem"].is_null() => style.warn(&format!(
            "UNREADABLE ({}): {}",
            s(&v["problem"]),
            s(&v["value"])
        )),
        v => format!("scaled down; saved {}", s(&v["value"])),
    };
    let target = match &o["scalable_target"] {
        Value::Null => "none (scaled by hand)".to_owned(),
        t => format!(
            "min={} max={} suspended={}",
            s(&t["min"]),
            s(&t["max"]),
            s(&t["suspended"])
        ),
    };
    p.section(
        "Off-hours",
        &[
            ("hold", exclusion),
            ("snapshot", snapshot),
            ("scalable target", target),
        ],
    );
    if let Some(other) = j["other_state_tags"].as_object().filter(|o| !o.is_empty()) {
        let rows: Vec<(&str, String)> = other.iter().map(|(k, v)| (k.as_str(), s(v))).collect();
        p.section("Other state tags", &rows);
    }
    if let Some(notes) = j["notes"].as_array().filter(|n| !n.is_empty()) {
        let rows: Vec<(&str, String)> = notes.iter().map(|n| ("note", style.warn(&s(n)))).collect();
        p.section("Could not read", &rows);
    }
    p.finish()
}
