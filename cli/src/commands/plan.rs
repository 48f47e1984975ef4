//! `plan`: what the automation would do now, changing nothing, decided by the very
//! functions the Lambda functions call: scan-gate's `policy::gate` and `deploy::plan`
//! (with the freeze checked between them, in scan-gate's order), and the scaler's
//! `offhours::plan_down` / `offhours::plan_up`.

use chrono::{DateTime, Utc};
use regex_lite::Regex;
use serde_json::{json, Value};
use std::cmp::Ordering;
use std::collections::BTreeSet;

use menotime_shared::arn::Arn;
use menotime_shared::aws::autoscaling::ScalingApi;
use menotime_shared::aws::ecr::EcrApi;
use menotime_shared::aws::ecs::EcsApi;
use menotime_shared::domain::deploy::{self, Candidate, Plan, Skip};
use menotime_shared::domain::image::{
    compare_releases, pinned_uri, valid_repository_name, ImageRef,
};
use menotime_shared::domain::offhours::{Capacity, DownPlan, Targets, UpPlan};
use menotime_shared::domain::policy::{self, Gate};
use menotime_shared::domain::reconcile::{self, Intent, Leave, RestoreWhy, Step};
use menotime_shared::domain::routing::route;
use menotime_shared::domain::service::ServiceState;
use menotime_shared::domain::severity::Severity;
use menotime_shared::domain::uptime::{Holidays, Uptime, Window};
use menotime_shared::Error as SharedError;

use super::approve::{pattern, severities};
use super::offhours::scaler_reading;
use super::{Ctx, Names};
use crate::args::PlanArgs;
use crate::aws::Image;
use crate::error::Failure;
use crate::output::{Page, Report};
use crate::time::{from_now, utc};

/// The command line, checked before AWS is asked.
#[derive(Clone, Debug)]
pub struct Checked {
    pub pattern: Regex,
    pub block: BTreeSet<Severity>,
    pub review: BTreeSet<Severity>,
    pub targets: Targets,
    /// The off-hours window the scaler reconciles towards.
    pub window: Window,
}

/// The template's default `OffhoursUptime`.
pub const DEFAULT_UPTIME: &str = "Mon-Fri 07:00-20:00 America/Los_Angeles";

pub fn check_args(a: &PlanArgs, names: &Names) -> Result<Checked, Failure> {
    if !valid_repository_name(&a.images.repository) {
        return Err(Failure::usage(format!(
            "--repository {:?} is not an ECR repository name such as menotime/backend",
            a.images.repository
        )));
    }
    let pattern = pattern(a.pattern.as_deref(), names)?;
    let (block, review) = severities(&a.policy)?;
    // The scaler's documented defaults: prod 1, staging 1, dev 0; prod never below 1.
    let default = match names.env {
        menotime_shared::config::Environment::Dev => 0,
        _ => 1,
    };
    let floor = names.env.task_floor();
    let count = |flag: &str, v: Option<i32>| -> Result<i32, Failure> {
        let n = v.unwrap_or(default);
        if n < floor {
            return Err(Failure::usage(format!(
                "{flag} {n}: {} may never run fewer than {floor} task(s)",
                names.env
            )));
        }
        Ok(n)
    };
    let targets = Targets {
        min_capacity: count("--offhours-min-capacity", a.offhours_min_capacity)?,
        desired_count: count("--offhours-desired-count", a.offhours_desired_count)?,
    };
    let uptime = Uptime::parse(a.uptime.as_deref().unwrap_or(DEFAULT_UPTIME))
        .map_err(|e| Failure::usage(format!("--uptime: {e}")))?;
    let holidays = match a.holidays.as_deref() {
        None => Holidays::default(),
        Some(h) => Holidays::parse(h).map_err(|e| Failure::usage(format!("--holidays: {e}")))?,
    };
    Ok(Checked {
        pattern,
        block,
        review,
        targets,
        window: Window { uptime, holidays },
    })
}

/// What scan-gate would decide for an image, in its own words (its outcomes, §6.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No image of the repository has a tag of this environment.
    NoImage,
    /// The scan is not finished (or never ran): scan-gate acts when it completes.
    ScanPending(String),
    Blocked(String),
    ReviewRequired(String),
    Frozen(String),
    Skipped(String),
    /// Another rollout is in progress: scan-gate defers the image until it completes.
    Deferred(String),
    /// It deploys: registers a revision, or reuses one an interrupted attempt left.
    Deploys {
        reuse: Option<String>,
    },
}

impl Verdict {
    pub fn outcome(&self) -> &'static str {
        match self {
            Verdict::NoImage => "no_image",
            Verdict::ScanPending(_) => "scan_pending",
            Verdict::Blocked(_) => "blocked",
            Verdict::ReviewRequired(_) => "review_required",
            Verdict::Frozen(_) => "frozen",
            Verdict::Skipped(_) => "skipped",
            Verdict::Deferred(_) => "deferred",
            Verdict::Deploys { .. } => "deployed",
        }
    }
}

/// The newest image with a tag of this environment, with the tag it routes by: the
/// highest release (`v1.2.6` after `v1.2.5`, as scan-gate orders them), else the latest
/// pushed; ties broken by digest, so the answer is stable.
pub fn newest(images: &[Image], pattern: &Regex) -> Option<(Image, String)> {
    images
        .iter()
        .filter_map(|i| route(&i.tags, pattern).map(|t| (i, t.to_owned())))
        .max_by(|(a, at), (b, bt)| {
            compare_releases(at, bt)
                .unwrap_or(Ordering::Equal)
                .then_with(|| a.pushed_at.cmp(&b.pushed_at))
                .then_with(|| a.digest.cmp(&b.digest))
        })
        .map(|(i, t)| (i.clone(), t))
}

pub async fn run(ctx: &Ctx, a: &PlanArgs, c: Checked) -> Result<Report, Failure> {
    let service = ctx.service().await?;
    let (image, verdict, counts, scan_status) = scan_gate(ctx, a, &c, &service).await?;
    let scaler = scaler(ctx, &service, c.targets, &c.window).await?;
    // What runs now, for context (a revision that cannot be read only loses the line).
    let running = ctx
        .aws
        .revision(&service.task_definition)
        .await
        .ok()
        .map(|r| {
            let image = r.summary.image_line(Some(&a.images.container));
            let digest = ImageRef::parse(&image).digest.map(str::to_owned);
            let tag = r
                .summary
                .image_tag()
                .map(str::to_owned)
                .or_else(|| ImageRef::parse(&image).tag.map(str::to_owned));
            (r.summary.short(), tag, digest)
        });
    let runs_it = matches!(
        (&running, &image),
        (Some((_, _, Some(d))), Some((i, _))) if *d == i.digest
    );

    let reason = match &verdict {
        Verdict::NoImage => format!(
            "no image in {} has a tag matching {}",
            a.images.repository,
            c.pattern.as_str()
        ),
        Verdict::ScanPending(s)
        | Verdict::Blocked(s)
        | Verdict::ReviewRequired(s)
        | Verdict::Frozen(s)
        | Verdict::Skipped(s)
        | Verdict::Deferred(s) => s.clone(),
        Verdict::Deploys { reuse: None } => {
            "the image is cleared and newer than what runs: scan-gate registers a revision pinned by digest and updates the service".to_owned()
        }
        Verdict::Deploys { reuse: Some(arn) } => format!(
            "the image is cleared: scan-gate updates the service to {arn}, which an interrupted earlier attempt registered"
        ),
    };
    let next = match (&verdict, &image) {
        (Verdict::ReviewRequired(_), Some((i, tag))) => Some(ctx.ops(&format!(
            "approve --tag {tag} --digest {} --reason '...'",
            i.digest
        ))),
        (Verdict::Frozen(_), _) => Some(ctx.ops("unfreeze --reason '...'")),
        _ => None,
    };
    let image_json = image.as_ref().map(|(i, tag)| {
        json!({
            "tag": tag,
            "tags": i.tags,
            "digest": i.digest,
            "pushed_at": i.pushed_at.map(utc),
            "scan_status": scan_status,
            "counts": counts,
        })
    });
    let json = json!({
        "command": "plan",
        "environment": ctx.names.env.as_str(),
        "cluster": ctx.names.cluster,
        "service": ctx.names.service,
        "scan_gate": {
            "pattern": c.pattern.as_str(),
            "running": running.as_ref().map(|(rev, tag, digest)| json!({
                "revision": rev,
                "image_tag": tag,
                "digest": digest,
            })),
            "image_is_running": runs_it,
            "image": image_json,
            "outcome": verdict.outcome(),
            "reason": reason,
            "next": next,
        },
        "scaler": scaler.json,
    });

    let style = ctx.style;
    let mut p = Page::new(style);
    p.line(&style.bold(&format!(
        "{} / {} ({}): what the automation would do now",
        ctx.names.cluster, ctx.names.service, ctx.names.env
    )));
    let mut rows = vec![];
    match &image {
        Some((i, tag)) => {
            rows.push(("newest image", format!("{}:{tag}", a.images.repository)));
            rows.push(("digest", i.digest.clone()));
            if let Some(at) = i.pushed_at {
                rows.push(("pushed", utc(at)));
            }
            if let Some(s) = &scan_status {
                rows.push(("scan", s.clone()));
            }
        }
        None => rows.push((
            "newest image",
            format!("none matching {}", c.pattern.as_str()),
        )),
    }
    let outcome = match &verdict {
        Verdict::Deploys { .. } => style.good("deployed"),
        Verdict::Blocked(_) | Verdict::Frozen(_) => style.bad(verdict.outcome()),
        _ => style.warn(verdict.outcome()),
    };
    if let Some((rev, tag, _)) = &running {
        let what = tag.as_deref().unwrap_or("an untagged image");
        let now = if runs_it {
            format!("{rev} ({what}), this very image")
        } else {
            format!("{rev} ({what})")
        };
        rows.push(("runs now", now));
    }
    rows.push(("would be", outcome));
    rows.push(("because", reason));
    if let Some(n) = &next {
        rows.push(("next", n.clone()));
    }
    p.section("scan-gate", &rows);
    p.section("offhours-scaler", &scaler.rows);
    Ok(Report {
        human: p.finish(),
        json,
    })
}

type ScanGateView = (
    Option<(Image, String)>,
    Verdict,
    Option<Value>,
    Option<String>,
);

/// scan-gate's steps 3 to 6 for the newest image, as if its scan had just completed.
async fn scan_gate(
    ctx: &Ctx,
    a: &PlanArgs,
    c: &Checked,
    service: &ServiceState,
) -> Result<ScanGateView, Failure> {
    let repo = &a.images.repository;
    let images = ctx.aws.tagged_images(repo).await?;
    let Some((image, tag)) = newest(&images, &c.pattern) else {
        return Ok((None, Verdict::NoImage, None, None));
    };
    let found = match ctx.aws.ecr.scan_findings(repo, &image.digest, &tag).await {
        Ok(f) => f,
        Err(SharedError::Rejected(why)) => {
            let v = Verdict::ScanPending(why);
            return Ok((Some((image, tag)), v, None, None));
        }
        Err(e) => return Err(e.into()),
    };
    let complete = found.is_complete();
    let status = if complete || found.description.is_empty() {
        found.status.clone()
    } else {
        format!("{} ({})", found.status, found.description)
    };
    let Some(counts) = found.counts.filter(|_| complete) else {
        let v = Verdict::ScanPending(format!(
            "the scan of {tag} is {}: scan-gate acts when it completes",
            found.status
        ));
        return Ok((Some((image, tag)), v, None, Some(status)));
    };
    let shown = Some(counts.to_json());
    let status = Some(format!("{status}: {counts}"));
    let v = match policy::gate(&counts, &c.block, &c.review, false) {
        Gate::Block(f) => Verdict::Blocked(format!(
            "{tag} has {}: blocking severities are never deployed",
            policy::describe(&f)
        )),
        Gate::Review(f) => Verdict::ReviewRequired(format!(
            "{tag} has {}: it waits for a human's approval",
            policy::describe(&f)
        )),
        Gate::Pass => match &service.tags.freeze {
            Some(why) => Verdict::Frozen(format!(
                "{} is frozen ({why}): scan-gate deploys nothing",
                ctx.names.service
            )),
            None => {
                let deploy_plan =
                    plan_deploy(ctx, a, service, &image, &tag, found.completed_at).await?;
                verdict_of(deploy_plan, &tag)
            }
        },
    };
    Ok((Some((image, tag)), v, shown, status))
}

async fn plan_deploy(
    ctx: &Ctx,
    a: &PlanArgs,
    service: &ServiceState,
    image: &Image,
    tag: &str,
    completed_at: Option<DateTime<Utc>>,
) -> Result<Plan, Failure> {
    let container = &a.images.container;
    let running = ctx
        .aws
        .ecs
        .describe_revision(&service.task_definition, container)
        .await
        .map_err(Failure::from)?;
    let family = running.facts.family.clone();
    let latest = match ctx.aws.ecs.describe_revision(&family, container).await {
        Ok(l) => l,
        // As scan-gate: a newer revision without the container is nothing to reuse.
        Err(SharedError::Misconfigured(_)) => running.clone(),
        Err(e) => return Err(e.into()),
    };
    let account = Arn::parse(&service.arn)
        .map(|a| a.account)
        .unwrap_or_default();
    let candidate = Candidate {
        digest: image.digest.clone(),
        tag: tag.to_owned(),
        image: pinned_uri(
            &account,
            &ctx.aws.region,
            &a.images.repository,
            &image.digest,
        ),
        scanned_at: completed_at.unwrap_or(ctx.now),
        // What automation would do: an approval is a separate, deliberate act.
        approved: false,
    };
    Ok(deploy::plan(
        &candidate,
        service,
        &running.facts,
        &latest.facts,
    ))
}

fn verdict_of(p: Plan, tag: &str) -> Verdict {
    match p {
        Plan::Skip(Skip::AlreadyRunning) => {
            Verdict::Skipped(format!("{tag} is what the service already runs"))
        }
        Plan::Skip(Skip::Older { running }) => {
            Verdict::Skipped(format!("{tag} is older than the running release {running}"))
        }
        Plan::Skip(Skip::OutOfOrder { running_scanned_at }) => Verdict::Skipped(format!(
            "the running {tag} was cleared by a newer scan ({})",
            utc(running_scanned_at)
        )),
        Plan::Skip(Skip::Superseded { by_tag, by_digest }) => Verdict::Skipped(format!(
            "a newer image waits for the rollout under way ({by_tag}, {by_digest}): it deploys instead"
        )),
        Plan::Skip(Skip::RolledBack {
            revision, left_at, ..
        }) => Verdict::Skipped(format!(
            "{tag} was deployed as {revision} and rolled back{}: automation never deploys it again; approve it to deploy it on purpose",
            left_at
                .map(|t| format!(" (the service left it at {})", utc(t)))
                .unwrap_or_default()
        )),
        Plan::Busy(r) => Verdict::Deferred(format!(
            "deployment {} is {}: scan-gate defers the image (menotime:deploy-deferred) and deploys it when that rollout completes",
            r.deployment, r.state
        )),
        Plan::Register => Verdict::Deploys { reuse: None },
        Plan::Reuse { arn } => Verdict::Deploys { reuse: Some(arn) },
    }
}

struct ScalerView {
    json: Value,
    rows: Vec<(&'static str, String)>,
}

/// What offhours-scaler's reconcile would do now (it runs every 5 minutes), and what
/// comes next: the same decision (`reconcile::plan`) over the same window.
async fn scaler(
    ctx: &Ctx,
    service: &ServiceState,
    targets: Targets,
    window: &Window,
) -> Result<ScalerView, Failure> {
    let n = &ctx.names;
    let target = ctx
        .aws
        .scaling
        .describe_target(&n.cluster, &n.service)
        .await
        .map_err(Failure::from)?;
    let current = Capacity {
        target,
        desired: service.desired_count,
    };
    let p = reconcile::plan(
        window,
        &service.tags,
        &current,
        service.rollout(),
        targets,
        n.env.task_floor(),
        ctx.now,
    );
    let (outcome, why) = describe_step(&p.step);
    let mut why = why;
    if let Some(until) = p.remove_expired_hold {
        why.push_str(&format!(
            "; the hold that ended at {} is removed",
            utc(until)
        ));
    }
    let now = if p.moment.up { "day" } else { "night" };
    let now_line = match p.moment.holiday {
        Some(d) => format!("{now} (holiday {d})"),
        None => now.to_owned(),
    };
    let next = p.next.as_ref().map(|x| {
        json!({
            "at": utc(x.at),
            "window": if x.up { "day" } else { "night" },
            "wants": describe_intent(&x.intent),
        })
    });
    let mut rows = vec![
        ("window", window.uptime.render()),
        ("now", now_line.clone()),
        ("capacity now", current.to_string()),
        ("reconcile now", format!("{outcome}: {why}")),
    ];
    match &p.next {
        Some(x) => rows.push((
            "next change",
            format!(
                "{} ({}): {}, reconcile will want to {}",
                utc(x.at),
                from_now(x.at, ctx.now),
                if x.up { "day" } else { "night" },
                describe_intent(&x.intent)
            ),
        )),
        None => rows.push(("next change", "none within a year".to_owned())),
    }
    let reading = scaler_reading(&service.tags, ctx.now).map(|r| r.says);
    if let Some(r) = &reading {
        rows.push(("exclusion", r.clone()));
    }
    Ok(ScalerView {
        json: json!({
            "window": window.uptime.render(),
            "holidays": window.holidays.render(),
            "now": now,
            "holiday": p.moment.holiday.map(|d| d.to_string()),
            "capacity": current.to_string(),
            "reconcile": {"outcome": outcome, "reason": why},
            "next": next,
            "exclusion": reading,
        }),
        rows,
    })
}

/// What reconcile's step does, in the scaler's outcomes (§6.5), and why.
fn describe_step(step: &Step) -> (&'static str, String) {
    match step {
        Step::Down(DownPlan::Skip(r)) | Step::Up(UpPlan::Skip(r)) => ("skipped", r.to_string()),
        Step::Down(DownPlan::Postpone(r)) => (
            "skipped",
            format!(
                "deployment {} is {}: lowering capacity under it would fight it; the next reconcile tries again",
                r.deployment, r.state
            ),
        ),
        Step::Down(DownPlan::Hold { problem, .. }) | Step::Up(UpPlan::Hold { problem, .. }) => {
            ("held", problem.clone())
        }
        Step::Down(DownPlan::Lower { save, to }) => (
            "scaled_down",
            match save {
                Some(s) => format!("saves {s} in the snapshot tag, then lowers to {to}"),
                None => format!("keeps the snapshot already saved, lowers to {to}"),
            },
        ),
        Step::Up(UpPlan::Restore { to, notes, .. }) => {
            let mut why = format!("restores {to} and removes the snapshot tag");
            for n in notes {
                why.push_str("; ");
                why.push_str(n);
            }
            ("scaled_up", why)
        }
        Step::Leave(l) => ("skipped", leave_reason(l)),
        Step::Blocked(b) => ("held", b.problem()),
    }
}

fn leave_reason(l: &Leave) -> String {
    match l {
        Leave::Day => {
            "it is day and nothing is saved: the service is at its daytime capacity".to_owned()
        }
        Leave::Excluded => "the service is tagged menotime:offhours=skip".to_owned(),
        Leave::Held { until } => format!(
            "the service is held at full capacity until {} and nothing is saved",
            utc(*until)
        ),
    }
}

/// What reconcile will want, in words.
fn describe_intent(i: &Intent) -> String {
    match i {
        Intent::Lower => "scale the service down for the night".to_owned(),
        Intent::KeepDown => "keep it at its night capacity".to_owned(),
        Intent::Restore(RestoreWhy::Day) => "restore the saved daytime capacity".to_owned(),
        Intent::Restore(RestoreWhy::Held { until }) => format!(
            "restore it: a hold keeps it at full capacity until {}",
            utc(*until)
        ),
        Intent::Leave(l) => format!("leave it as it is ({})", leave_reason(l)),
        Intent::Blocked(b) => format!("nothing, until a human fixes {}", b.tag()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<DateTime<Utc>> {
        Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
    }

    fn img(digest: &str, tags: &[&str], at: &str) -> Image {
        Image {
            digest: digest.into(),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            pushed_at: t(at),
        }
    }

    #[test]
    fn the_newest_image_of_the_environment() {
        let prod = Regex::new(r"^v[0-9]+\.[0-9]+\.[0-9]+$").unwrap();
        let images = [
            img("sha256:a", &["v1.2.3"], "2026-11-01T00:00:00Z"),
            img("sha256:b", &["v1.2.4", "latest"], "2026-11-02T00:00:00Z"),
            // Pushed later, but an older release: a rebuilt hotfix of an old line.
            img("sha256:e", &["v1.1.9"], "2026-11-05T00:00:00Z"),
            img("sha256:c", &["pr-42"], "2026-11-03T00:00:00Z"),
            img("sha256:d", &["develop"], "2026-11-04T00:00:00Z"),
        ];
        let (i, tag) = newest(&images, &prod).unwrap();
        assert_eq!((i.digest.as_str(), tag.as_str()), ("sha256:b", "v1.2.4"));
        let dev = Regex::new("^develop$").unwrap();
        assert_eq!(newest(&images, &dev).unwrap().1, "develop");
        let staging = Regex::new("^main$").unwrap();
        assert_eq!(newest(&images, &staging), None);
    }

    #[test]
    fn deploy_plans_read_as_scan_gate_outcomes() {
        assert_eq!(verdict_of(Plan::Register, "v1").outcome(), "deployed");
        assert_eq!(
            verdict_of(Plan::Skip(Skip::AlreadyRunning), "v1").outcome(),
            "skipped"
        );
        assert_eq!(
            verdict_of(
                Plan::Skip(Skip::Older {
                    running: "v2".into()
                }),
                "v1"
            ),
            Verdict::Skipped("v1 is older than the running release v2".into())
        );
        assert_eq!(
            verdict_of(
                Plan::Reuse {
                    arn: "arn:x".into()
                },
                "v1"
            ),
            Verdict::Deploys {
                reuse: Some("arn:x".into())
            }
        );
    }
}
