//! `approve`: the "Deploy Approval" of docs/reference.md §5, built from what ECR says
//! now. The tag is resolved to its digest, the image's current findings are read (the
//! same call scan-gate makes, which also returns Inspector's findings under enhanced
//! scanning) and judged with the same policy function; blocking findings are refused
//! here already, and `reviewed-counts` records exactly what the approver saw.

use std::collections::BTreeSet;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use regex_lite::Regex;
use serde_json::{json, Map, Value};

use menotime_shared::aws::ecr::EcrApi;
use menotime_shared::domain::image::{valid_digest, valid_repository_name, valid_tag};
use menotime_shared::domain::policy::{self, Gate};
use menotime_shared::domain::routing::route;
use menotime_shared::domain::scan::{DETAIL_APPROVAL, SOURCE_OPS};
use menotime_shared::domain::severity::{Severity, SeverityCounts};

use super::{check_text, refuse_placeholder, Ctx, Names, PLACEHOLDERS};
use crate::args::{ApproveArgs, Policy};
use crate::error::Failure;
use crate::output::{Page, Report};

/// The command line, checked before AWS is asked.
#[derive(Clone, Debug)]
pub struct Checked {
    pub bus: String,
    pub pattern: Regex,
    pub block: BTreeSet<Severity>,
    pub review: BTreeSet<Severity>,
}

/// `--pattern` (or the environment's default deploy pattern), anchored like scan-gate's
/// DEPLOY_TAG_PATTERN must be.
pub fn pattern(given: Option<&str>, names: &Names) -> Result<Regex, Failure> {
    let src = given.unwrap_or(names.env.default_deploy_tag_pattern());
    if !(src.starts_with('^') && src.ends_with('$')) {
        return Err(Failure::usage(format!(
            "--pattern {src:?} must be anchored (start with ^ and end with $), as scan-gate's DEPLOY_TAG_PATTERN is"
        )));
    }
    Regex::new(src).map_err(|e| {
        Failure::usage(format!(
            "--pattern {src:?} is not a regular expression: {e}"
        ))
    })
}

/// `--block-severities` and `--review-severities`, read as scan-gate reads them.
pub fn severities(p: &Policy) -> Result<(BTreeSet<Severity>, BTreeSet<Severity>), Failure> {
    let read = |flag: &str, list: &str| -> Result<BTreeSet<Severity>, Failure> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                Severity::parse(s).ok_or_else(|| {
                    Failure::usage(format!(
                        "{flag}: {s:?} is not a severity (CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNDEFINED)"
                    ))
                })
            })
            .collect()
    };
    let block = read("--block-severities", &p.block_severities)?;
    let review = read("--review-severities", &p.review_severities)?;
    if !block.contains(&Severity::Critical) {
        return Err(Failure::usage(
            "--block-severities must include CRITICAL: the manual forbids deploying an image with a critical CVE",
        ));
    }
    Ok((block, review))
}

pub fn check_args(a: &ApproveArgs, names: &Names) -> Result<Checked, Failure> {
    if !valid_tag(&a.tag) {
        return Err(Failure::usage(format!(
            "--tag {:?} is not an image tag (letters, digits, _ . -, at most 128)",
            a.tag
        )));
    }
    if let Some(d) = &a.digest {
        if !valid_digest(d) {
            return Err(Failure::usage(format!(
                "--digest {d:?} is not an image digest (sha256: and 64 hex digits)"
            )));
        }
    }
    if !valid_repository_name(&a.images.repository) {
        return Err(Failure::usage(format!(
            "--repository {:?} is not an ECR repository name such as menotime/backend",
            a.images.repository
        )));
    }
    // The limits scan-gate applies to the approval's free text.
    check_text("--reason", &a.reason, 1024)?;
    refuse_placeholder("--reason", &a.reason, &PLACEHOLDERS)?;
    if let Some(w) = &a.approver {
        check_text("--as", w, 128)?;
        refuse_placeholder("--as", w, &PLACEHOLDERS)?;
    }
    let bus = a
        .bus
        .clone()
        .unwrap_or_else(|| format!("menotime-{}-approvals", names.env));
    let bus_ok = !bus.is_empty()
        && bus.len() <= 256
        && bus
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if !bus_ok {
        return Err(Failure::usage(format!(
            "--bus {bus:?} is not an event bus name such as menotime-prod-approvals"
        )));
    }
    let pattern = pattern(a.pattern.as_deref(), names)?;
    if route(std::slice::from_ref(&a.tag), &pattern).is_none() {
        return Err(Failure::usage(format!(
            "--tag {} does not match {}'s deploy pattern {}: scan-gate there would ignore the approval. Check --env (or --pattern, if the stack sets another DEPLOY_TAG_PATTERN)",
            a.tag,
            names.env,
            pattern.as_str()
        )));
    }
    let (block, review) = severities(&a.policy)?;
    Ok(Checked {
        bus,
        pattern,
        block,
        review,
    })
}

/// `reviewed-counts`: every severity ECR reports findings of, by its ECR name.
pub fn reviewed_counts(counts: &SeverityCounts) -> Value {
    let mut m = Map::new();
    for (s, n) in counts.nonzero() {
        m.insert(s.as_str().to_owned(), n.into());
    }
    Value::Object(m)
}

/// The approval's `detail`, exactly the fields of docs/reference.md §5.
pub fn detail(
    repository: &str,
    digest: &str,
    tag: &str,
    approved_by: &str,
    reason: &str,
    reviewed: Value,
) -> Value {
    json!({
        "repository-name": repository,
        "image-digest": digest,
        "image-tag": tag,
        "approved-by": approved_by,
        "reason": reason.trim(),
        "reviewed-counts": reviewed,
    })
}

pub async fn run(ctx: &Ctx, a: &ApproveArgs, c: Checked) -> Result<Report, Failure> {
    let repo = &a.images.repository;
    let tag = &a.tag;
    let image = ctx.aws.image_by_tag(repo, tag).await?;
    let digest = image.digest.clone();
    if let Some(reviewed) = &a.digest {
        if *reviewed != digest {
            return Err(Failure::refused(format!(
                "{repo}:{tag} now names {digest}, not {reviewed} which was reviewed; nothing sent. Review the new image's findings and approve it with --digest {digest}"
            )));
        }
    }
    let findings = ctx
        .aws
        .ecr
        .scan_findings(repo, &digest, tag)
        .await
        .map_err(Failure::from)?;
    if !findings.is_complete() {
        return Err(Failure::refused(format!(
            "the scan of {tag} ({digest}) is {} ({}); nothing sent. Approve once it completes (start one with aws ecr start-image-scan --repository-name {repo} --image-id imageDigest={digest})",
            findings.status,
            if findings.description.is_empty() { "no description" } else { &findings.description }
        )));
    }
    let Some(counts) = findings.counts else {
        return Err(Failure::refused(format!(
            "ECR reports the scan of {tag} ({digest}) {} but no findings summary, so it cannot be checked; nothing sent. Scan it again and approve once it completes",
            findings.status
        )));
    };
    match policy::gate(&counts, &c.block, &c.review, true) {
        Gate::Pass => {}
        Gate::Block(f) => {
            return Err(Failure::refused(format!(
                "{tag} ({digest}) has {}: blocking severities are never deployed, not even with an approval; nothing sent. Fix the image and push a new one",
                policy::describe(&f)
            )))
        }
        Gate::Review(f) => {
            return Err(Failure::refused(format!(
                "{tag} ({digest}) has {}, which may be blocking severities the scanner does not tell apart; an approval cannot waive them, nothing sent",
                policy::describe(&f)
            )))
        }
    }
    let needed = matches!(
        policy::gate(&counts, &c.block, &c.review, false),
        Gate::Review(_)
    );
    let who = ctx.who(a.approver.as_deref()).await?;
    let reviewed = reviewed_counts(&counts);
    let detail = detail(repo, &digest, tag, &who, &a.reason, reviewed.clone());
    let frozen = ctx.service().await.ok().and_then(|s| s.tags.freeze);

    let event_id = if a.dry_run {
        None
    } else {
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE_OPS)
            .detail_type(DETAIL_APPROVAL)
            .detail(detail.to_string())
            .event_bus_name(&c.bus)
            .build();
        Some(ctx.aws.put_event(entry).await?)
    };

    let mut page = Page::new(ctx.style);
    page.line(&match &event_id {
        Some(id) => format!(
            "Approved {tag} for {}: event {id} is on {}.",
            ctx.names.env, c.bus
        ),
        None => format!(
            "Would approve {tag} for {} on {} (dry run: nothing sent).",
            ctx.names.env, c.bus
        ),
    });
    let mut rows = vec![
        ("image", format!("{repo}:{tag}")),
        ("digest", digest.clone()),
        ("scan", format!("{} ({})", findings.status, counts)),
        ("reviewed-counts", reviewed.to_string()),
        ("approved-by", who.clone()),
        ("reason", a.reason.trim().to_owned()),
        ("bus", c.bus.clone()),
    ];
    if let Some(id) = &event_id {
        rows.push(("event id", id.clone()));
    }
    if !needed {
        rows.push((
            "note",
            "nothing in its findings needs review: scan-gate deploys it as it would a clean scan"
                .to_owned(),
        ));
    }
    if let Some(f) = &frozen {
        rows.push((
            "warning",
            ctx.style.bad(&format!(
                "{} is FROZEN ({f}): scan-gate will hold this image; unfreeze after review, then approve again",
                ctx.names.service
            )),
        ));
    }
    rows.push(("next", ctx.ops("status")));
    page.section("Deploy Approval", &rows);
    Ok(Report {
        human: page.finish(),
        json: json!({
            "command": "approve",
            "result": if a.dry_run { "would_approve" } else { "approved" },
            "dry_run": a.dry_run,
            "event_id": event_id,
            "event_bus": c.bus,
            "source": SOURCE_OPS,
            "detail_type": DETAIL_APPROVAL,
            "detail": detail,
            "scan_status": findings.status,
            "review_needed": needed,
            "frozen": frozen,
            "pattern": c.pattern.as_str(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detail_has_exactly_the_approval_fields() {
        let counts = SeverityCounts::complete([(Severity::Medium, 2), (Severity::Low, 1)], 3);
        let d = detail(
            "menotime/backend",
            "sha256:ab",
            "v1.2.6",
            "jdoe",
            " not reachable ",
            reviewed_counts(&counts),
        );
        assert_eq!(
            d,
            json!({
                "repository-name": "menotime/backend",
                "image-digest": "sha256:ab",
                "image-tag": "v1.2.6",
                "approved-by": "jdoe",
                "reason": "not reachable",
                "reviewed-counts": {"MEDIUM": 2, "LOW": 1},
            })
        );
    }

    /// The detail, as EventBridge delivers it, is an approval scan-gate accepts.
    #[test]
    fn scan_gate_accepts_the_detail() {
        use menotime_shared::domain::scan::{parse_trigger, Expect, Trigger};
        let digest = format!("sha256:{}", "ab".repeat(32));
        let counts = SeverityCounts::complete([(Severity::Medium, 2)], 0);
        let event = json!({
            "version": "0", "id": "e1", "detail-type": DETAIL_APPROVAL, "source": SOURCE_OPS,
            "account": "123456789012", "time": "2026-11-26T09:00:00Z", "region": "us-west-1",
            "resources": [],
            "detail": detail("menotime/backend", &digest, "v1.2.6", "jdoe", "fine", reviewed_counts(&counts)),
        });
        let expect = Expect {
            account: "123456789012",
            region: "us-west-1",
            repository: "menotime/backend",
        };
        match parse_trigger(&event, expect).unwrap() {
            Trigger::Approval(a) => {
                assert_eq!(
                    (a.digest.as_str(), a.tag.as_str()),
                    (digest.as_str(), "v1.2.6")
                );
                assert_eq!(
                    (a.approved_by.as_str(), a.reason.as_str()),
                    ("jdoe", "fine")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn severities_are_read_like_scan_gates() {
        let (b, r) = severities(&Policy {
            block_severities: "critical, HIGH".into(),
            review_severities: "MEDIUM,LOW".into(),
        })
        .unwrap();
        assert_eq!(b, BTreeSet::from([Severity::Critical, Severity::High]));
        assert_eq!(r, BTreeSet::from([Severity::Medium, Severity::Low]));
        assert!(severities(&Policy {
            block_severities: "HIGH".into(),
            review_severities: "MEDIUM".into(),
        })
        .is_err());
        assert!(severities(&Policy {
            block_severities: "CRITICAL,SEVERE".into(),
            review_severities: "MEDIUM".into(),
        })
        .is_err());
    }
}
