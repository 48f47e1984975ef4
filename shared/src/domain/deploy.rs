//! Whether and how to deploy a cleared image to the service: the checks that make a
//! deployment safe and exactly-once, as pure functions over plain snapshots of ECS.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use super::image::{compare_releases, release_version, ImageRef};
use super::service::{Rollout, ServiceState};
use super::severity::{ReviewedCounts, Severity};
use crate::tags;

/// What matters of a task-definition revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionFacts {
    pub arn: String,
    pub family: String,
    pub revision: u32,
    /// The image of the watched container.
    pub image: String,
    pub tags: BTreeMap<String, String>,
}

impl RevisionFacts {
    /// `family:revision`
    pub fn short(&self) -> String {
        format!("{}:{}", self.family, self.revision)
    }

    /// The human tag of what runs: our `menotime:image-tag`, or the tag in the image
    /// reference (`...backend:v1.2.3`), as the manual's task definitions have it.
    pub fn image_tag(&self) -> Option<&str> {
        self.tags
            .get(tags::IMAGE_TAG)
            .map(String::as_str)
            .or_else(|| ImageRef::parse(&self.image).tag)
    }

    pub fn digest(&self) -> Option<&str> {
        ImageRef::parse(&self.image).digest
    }

    /// When the scan that cleared this revision's image completed, if scan-gate made it.
    pub fn scanned_at(&self) -> Option<DateTime<Utc>> {
        self.tags
            .get(tags::SCANNED_AT)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    }

    /// scan-gate registered this revision (it carries `menotime:source-event`).
    pub fn registered_by_scan_gate(&self) -> bool {
        self.tags.contains_key(tags::SOURCE_EVENT)
    }

    /// scan-gate deployed this revision: `menotime:deployed` is present (its value, if
    /// it can be read, says when and which deployment).
    pub fn deployed(&self) -> Option<Option<DeployedMark>> {
        self.tags
            .get(tags::DEPLOYED)
            .map(|v| DeployedMark::parse(v).ok())
    }
}

/// `menotime:deployed` on a revision: which deployment scan-gate started with it, and
/// when (`deployment=ecs-svc/123 at=2026-11-26T10:00:00Z`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployedMark {
    pub deployment: Option<String>,
    pub at: DateTime<Utc>,
}

impl DeployedMark {
    pub fn render(&self) -> String {
        let at = format!("at={}", self.at.to_rfc3339_opts(SecondsFormat::Secs, true));
        tags::value(&match &self.deployment {
            Some(d) => format!("deployment={d} {at}"),
            None => at,
        })
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let (mut deployment, mut at) = (None, None);
        for part in s.split_whitespace() {
            match part.split_once('=') {
                Some(("deployment", d)) => deployment = Some(d.to_owned()),
                Some(("at", t)) => {
                    at = Some(
                        DateTime::parse_from_rfc3339(t)
                            .map_err(|e| format!("at {t:?}: {e}"))?
                            .with_timezone(&Utc),
                    )
                }
                _ => return Err(format!("{part:?} is not deployment=... or at=...")),
            }
        }
        Ok(DeployedMark {
            deployment,
            at: at.ok_or("no at=")?,
        })
    }
}

/// A revision as notifications show it, whatever container matters: every
/// container's image, the task size, and the revision's tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevisionSummary {
    pub arn: String,
    pub family: String,
    pub revision: u32,
    /// (container name, image) in the order of the task definition.
    pub images: Vec<(String, String)>,
    /// Task-level CPU units and memory (MiB), as ECS reports them (strings).
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl RevisionSummary {
    /// `family:revision`
    pub fn short(&self) -> String {
        format!("{}:{}", self.family, self.revision)
    }

    /// `menotime-backend=...backend:v1.2.3, sidecar=...`: every container's image, or
    /// only `container`'s when it is named and present.
    pub fn image_line(&self, container: Option<&str>) -> String {
        let chosen: Vec<&(String, String)> = match container {
            Some(c) if self.images.iter().any(|(n, _)| n == c) => {
                self.images.iter().filter(|(n, _)| n == c).collect()
            }
            _ => self.images.iter().collect(),
        };
        match chosen.as_slice() {
            [] => "(no container images)".to_owned(),
            [(_, image)] => image.clone(),
            many => many
                .iter()
                .map(|(n, i)| format!("{n}={i}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The human tag scan-gate recorded on the revision, if scan-gate made it.
    pub fn image_tag(&self) -> Option<&str> {
        self.tags.get(tags::IMAGE_TAG).map(String::as_str)
    }

    /// The revision (`family:revision`) scan-gate replaced with this one.
    pub fn replaces(&self) -> Option<&str> {
        self.tags.get(tags::REPLACES).map(String::as_str)
    }
}

/// The image to deploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub digest: String,
    /// The tag it was routed by (matches `DEPLOY_TAG_PATTERN`).
    pub tag: String,
    /// `<registry>/<repository>@<digest>`
    pub image: String,
    /// When the scan that cleared it completed.
    pub scanned_at: DateTime<Utc>,
    /// A human approved it: deploying it on purpose, even if it was rolled back.
    pub approved: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The service already runs this digest (a duplicate event, or a rescan).
    AlreadyRunning,
    /// A release older than the one running (a rescan of v1.2.2 while v1.2.3 runs).
    Older { running: String },
    /// The same moving tag (`develop`, `main`) cleared by an older scan than the one
    /// that produced the running revision: an event delivered late or retried.
    OutOfOrder { running_scanned_at: DateTime<Utc> },
    /// scan-gate deployed this image before (its revision carries `menotime:deployed`)
    /// and the service left it: the circuit breaker or an operator rolled it back.
    /// Automation never deploys it again; an approval does.
    /// A newer image for this environment waits for the rollout under way
    /// (`menotime:deploy-deferred`): this one would only be replaced by it.
    Superseded { by_tag: String, by_digest: String },
    RolledBack {
        /// The revision scan-gate deployed it as (`family:revision`).
        revision: String,
        revision_arn: String,
        /// When and how it was deployed, when the mark can be read.
        deployed: Option<DeployedMark>,
        /// When the service moved to what it runs now (its PRIMARY deployment's
        /// creation), when ECS says.
        left_at: Option<DateTime<Utc>>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Skip(Skip),
    /// Another deployment is rolling out: the image waits for it to complete
    /// (`menotime:deploy-deferred`).
    Busy(Rollout),
    /// Register a copy of the running revision with the new image, then update.
    Register,
    /// An earlier attempt already registered this revision (and failed before
    /// UpdateService): update the service to it, register nothing.
    Reuse {
        arn: String,
    },
}

/// Decide what to do with a cleared image, given the service, the revision it runs
/// and the newest revision of the family.
///
/// Order matters: an already-running digest is a no-op even while its own deployment
/// rolls out (so a duplicate event never fails and never deploys twice); staleness is
/// judged before busyness because a stale image never becomes deployable by waiting.
pub fn plan(
    candidate: &Candidate,
    service: &ServiceState,
    running: &RevisionFacts,
    latest: &RevisionFacts,
) -> Plan {
    if running.digest() == Some(candidate.digest.as_str()) {
        return Plan::Skip(Skip::AlreadyRunning);
    }
    if !candidate.approved && ours_for(candidate, running, latest) {
        if let Some(deployed) = latest.deployed() {
            return Plan::Skip(Skip::RolledBack {
                revision: latest.short(),
                revision_arn: latest.arn.clone(),
                deployed,
                left_at: service.primary().and_then(|d| d.created_at),
            });
        }
    }
    if let Some(running_tag) = running.image_tag() {
        if compare_releases(&candidate.tag, running_tag) == Some(Ordering::Less) {
            return Plan::Skip(Skip::Older {
                running: running_tag.to_owned(),
            });
        }
        if running_tag == candidate.tag && release_version(running_tag).is_none() {
            if let Some(at) = running.scanned_at() {
                if candidate.scanned_at < at {
                    return Plan::Skip(Skip::OutOfOrder {
                        running_scanned_at: at,
                    });
                }
            }
        }
    }
    if let Some(rollout) = service.rollout() {
        return Plan::Busy(rollout);
    }
    if left_by_an_interrupted_attempt(candidate, running, latest) {
        return Plan::Reuse {
            arn: latest.arn.clone(),
        };
    }
    Plan::Register
}

/// The family's newest revision is one scan-gate registered for this very image and
/// tag after the running one, and never deployed: an attempt that died between
/// RegisterTaskDefinition and UpdateService (or one deployed and left, which only an
/// approval deploys again). A revision registered by anyone else, or older than the
/// running one, is never reused.
fn left_by_an_interrupted_attempt(
    candidate: &Candidate,
    running: &RevisionFacts,
    latest: &RevisionFacts,
) -> bool {
    ours_for(candidate, running, latest) && (latest.deployed().is_none() || candidate.approved)
}

/// The family's newest revision is one scan-gate registered for this very image and
/// tag, after the running one.
fn ours_for(candidate: &Candidate, running: &RevisionFacts, latest: &RevisionFacts) -> bool {
    latest.arn != running.arn
        && latest.family == running.family
        && latest.revision > running.revision
        && latest.digest() == Some(candidate.digest.as_str())
        && latest.registered_by_scan_gate()
        && latest.tags.get(tags::IMAGE_TAG) == Some(&candidate.tag)
}

/// Tags of the new revision: the running revision's own tags (without the `aws:`
/// ones AWS reserves, and without scan-gate's, which describe the old image), plus
/// what identifies the new image.
pub fn revision_tags(
    running: &RevisionFacts,
    candidate: &Candidate,
    source_event_id: &str,
    approved_by: Option<&str>,
) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = running
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with("aws:") && !tags::OWNED_ON_REVISIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert(tags::IMAGE_TAG.into(), tags::value(&candidate.tag));
    out.insert(
        tags::SCANNED_AT.into(),
        candidate
            .scanned_at
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    out.insert(tags::SOURCE_EVENT.into(), tags::value(source_event_id));
    out.insert(tags::REPLACES.into(), tags::value(&running.short()));
    if let Some(who) = approved_by {
        out.insert(tags::APPROVED_BY.into(), tags::value(who));
    }
    out.into_iter().collect()
}

/// `menotime:deploy-deferred` on the service: an image cleared while another rollout
/// was under way, waiting for that rollout to complete. Written before `deploy.deferred`
/// is published and removed only after the image's fate is published, so a crash at
/// any point leaves it for the next attempt; the plan's checks make a repeat harmless.
///
/// `digest=sha256:... tag=v1.2.4 scanned=2026-11-26T10:00:00Z event=<id> reviewed=MEDIUM:2 approved-by=j doe`
/// (`reviewed` and `approved-by` only after an approval; `approved-by` last, since it
/// may hold spaces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deferred {
    pub digest: String,
    /// The tag it was routed by.
    pub tag: String,
    /// When the scan that cleared it completed.
    pub scanned_at: DateTime<Utc>,
    /// The event that cleared it (the scan, or the approval).
    pub event: String,
    /// After an approval: who approved, and the counts they reviewed.
    pub approved_by: Option<String>,
    pub reviewed: Option<ReviewedCounts>,
}

impl Deferred {
    pub fn render(&self) -> String {
        let mut parts = vec![
            format!("digest={}", self.digest),
            format!("tag={}", self.tag),
            format!(
                "scanned={}",
                self.scanned_at.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            format!("event={}", self.event),
        ];
        if let Some(r) = &self.reviewed {
            let counts: Vec<String> = Severity::ALL
                .iter()
                .filter(|s| r.get(**s) > 0 || r.to_json().get(s.as_str()).is_some())
                .map(|s| format!("{}:{}", s.as_str(), r.get(*s)))
                .collect();
            parts.push(format!("reviewed={}", counts.join("+")));
        }
        if let Some(by) = &self.approved_by {
            parts.push(format!("approved-by={by}"));
        }
        tags::value(&parts.join(" "))
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let (head, approved_by) = match s.split_once(" approved-by=") {
            Some((h, by)) => (h, Some(by.trim().to_owned())),
            None => (s, None),
        };
        let (mut digest, mut tag, mut scanned, mut event, mut reviewed) =
            (None, None, None, None, None);
        for part in head.split_whitespace() {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not key=value"))?;
            match k {
                "digest" => digest = Some(v.to_owned()),
                "tag" => tag = Some(v.to_owned()),
                "scanned" => {
                    scanned = Some(
                        DateTime::parse_from_rfc3339(v)
                            .map_err(|e| format!("scanned {v:?}: {e}"))?
                            .with_timezone(&Utc),
                    )
                }
                "event" => event = Some(v.to_owned()),
                "reviewed" => {
                    let mut counts = Vec::new();
                    for c in v.split('+').filter(|c| !c.is_empty()) {
                        let (sev, n) = c
                            .split_once(':')
                            .ok_or_else(|| format!("reviewed {c:?} is not SEVERITY:N"))?;
                        let sev = Severity::parse(sev)
                            .ok_or_else(|| format!("reviewed {sev:?} is not a severity"))?;
                        let n = n
                            .parse::<u64>()
                            .map_err(|_| format!("reviewed {c:?}: {n:?} is not a count"))?;
                        counts.push((sev, n));
                    }
                    reviewed = Some(ReviewedCounts::new(counts));
                }
                _ => return Err(format!("unknown key {k:?}")),
            }
        }
        let digest = digest.ok_or("no digest=")?;
        if !super::image::valid_digest(&digest) {
            return Err(format!("digest {digest:?} is not a sha256 digest"));
        }
        Ok(Deferred {
            digest,
            tag: tag.ok_or("no tag=")?,
            scanned_at: scanned.ok_or("no scanned=")?,
            event: event.ok_or("no event=")?,
            approved_by,
            reviewed,
        })
    }
}

/// What a cleared image means for the image waiting in `menotime:deploy-deferred`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// No image waits.
    Nothing,
    /// This very image waits already.
    Same,
    /// An older image waits: this one goes first, and the older one is reported
    /// superseded.
    Older(Deferred),
    /// A newer image waits: this one is superseded by it.
    Newer(Deferred),
}

pub fn waiting(candidate: &Candidate, deferred: Option<&Deferred>) -> Waiting {
    match deferred {
        None => Waiting::Nothing,
        Some(d) if d.digest == candidate.digest => Waiting::Same,
        Some(d)
            if newer(
                (&d.tag, d.scanned_at),
                (&candidate.tag, candidate.scanned_at),
            ) =>
        {
            Waiting::Newer(d.clone())
        }
        Some(d) => Waiting::Older(d.clone()),
    }
}

/// Whether image `a` (tag, scan time) is newer than image `b` for this environment:
/// by release order when both tags are releases, else by when their scans completed.
pub fn newer(a: (&str, DateTime<Utc>), b: (&str, DateTime<Utc>)) -> bool {
    match compare_releases(a.0, b.0) {
        Some(Ordering::Equal) | None => a.1 > b.1,
        Some(o) => o == Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::service::DeploymentState;

    const D_OLD: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D_NEW: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const REG: &str = "123456789012.dkr.ecr.us-west-1.amazonaws.com/menotime/backend";

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn rev(n: u32, image: &str, tags: &[(&str, &str)]) -> RevisionFacts {
        RevisionFacts {
            arn: format!(
                "arn:aws:ecs:us-west-1:123456789012:task-definition/menotime-backend-prod:{n}"
            ),
            family: "menotime-backend-prod".into(),
            revision: n,
            image: image.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn service(running: &RevisionFacts, deployments: &[(&str, Option<&str>)]) -> ServiceState {
        ServiceState {
            arn: "arn:aws:ecs:us-west-1:123456789012:service/menotime-prod-cluster/menotime-prod-service".into(),
            status: "ACTIVE".into(),
            task_definition: running.arn.clone(),
            tags: Default::default(),
            deployments: deployments
                .iter()
                .enumerate()
                .map(|(i, (status, rollout))| DeploymentState {
                    id: format!("ecs-svc/{i}"),
                    status: status.to_string(),
                    rollout_state: rollout.map(str::to_owned),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn cand(tag: &str, digest: &str, at: &str) -> Candidate {
        Candidate {
            digest: digest.into(),
            tag: tag.into(),
            image: format!("{REG}@{digest}"),
            scanned_at: t(at),
            approved: false,
        }
    }

    const STEADY: &[(&str, Option<&str>)] = &[("PRIMARY", Some("COMPLETED"))];

    #[test]
    fn clean_new_release_registers() {
        let running = rev(7, &format!("{REG}:v1.2.3"), &[]);
        let s = service(&running, STEADY);
        assert_eq!(
            plan(
                &cand("v1.2.4", D_NEW, "2026-01-01T00:00:00Z"),
                &s,
                &running,
                &running
            ),
            Plan::Register
        );
    }

    #[test]
    fn same_digest_is_skipped_even_mid_rollout() {
        let running = rev(
            8,
            &format!("{REG}@{D_NEW}"),
            &[("menotime:image-tag", "v1.2.4")],
        );
        for deps in [
            STEADY,
            &[
                ("PRIMARY", Some("IN_PROGRESS")),
                ("ACTIVE", Some("COMPLETED")),
            ],
        ] {
            let s = service(&running, deps);
            assert_eq!(
                plan(
                    &cand("v1.2.4", D_NEW, "2026-01-01T00:00:00Z"),
                    &s,
                    &running,
                    &running
                ),
                Plan::Skip(Skip::AlreadyRunning)
            );
        }
    }

    #[test]
    fn older_release_is_never_deployed() {
        let running = rev(7, &format!("{REG}:v1.2.3"), &[]);
        let s = service(&running, STEADY);
        assert_eq!(
            plan(
                &cand("v1.2.2", D_OLD, "2026-01-01T00:00:00Z"),
                &s,
                &running,
                &running
            ),
            Plan::Skip(Skip::Older {
                running: "v1.2.3".into()
            })
        );
        // Our own tag wins over the reference's tag.
        let running = rev(
            8,
            &format!("{REG}@{D_OLD}"),
            &[("menotime:image-tag", "v1.2.10")],
        );
        assert_eq!(
            plan(
                &cand("v1.2.9", D_NEW, "2026-01-01T00:00:00Z"),
                &s,
                &running,
                &running
            ),
            Plan::Skip(Skip::Older {
                running: "v1.2.10".into()
            })
        );
        // Same version pushed again with another digest: a rebuild, deployed.
        let running = rev(
            8,
            &format!("{REG}@{D_OLD}"),
            &[("menotime:image-tag", "v1.2.4")],
        );
        assert_eq!(
            plan(
                &cand("v1.2.4", D_NEW, "2026-01-01T00:00:00Z"),
                &s,
                &running,
                &running
            ),
            Plan::Register
        );
    }

    #[test]
    fn late_scan_of_a_moving_tag_is_out_of_order() {
        let running = rev(
            12,
            &format!("{REG}@{D_OLD}"),
            &[
                ("menotime:image-tag", "develop"),
                ("menotime:scanned-at", "2026-01-02T00:00:00Z"),
            ],
        );
        let s = service(&running, STEADY);
        assert_eq!(
            plan(
                &cand("develop", D_NEW, "2026-01-01T23:59:59Z"),
                &s,
                &running,
                &running
            ),
            Plan::Skip(Skip::OutOfOrder {
                running_scanned_at: t("2026-01-02T00:00:00Z")
            })
        );
        assert_eq!(
            plan(
                &cand("develop", D_NEW, "2026-01-02T00:00:01Z"),
                &s,
                &running,
                &running
            ),
            Plan::Register
        );
        // Without our tag there is nothing to compare: deploy.
        let untagged = rev(12, &format!("{REG}:develop"), &[]);
        assert_eq!(
            plan(
                &cand("develop", D_NEW, "2020-01-01T00:00:00Z"),
                &s,
                &untagged,
                &untagged
            ),
            Plan::Register
        );
    }

    #[test]
    fn another_rollout_makes_it_busy() {
        let running = rev(7, &format!("{REG}:v1.2.3"), &[]);
        let c = cand("v1.2.4", D_NEW, "2026-01-01T00:00:00Z");
        let s = service(&running, &[("PRIMARY", Some("IN_PROGRESS"))]);
        assert!(
            matches!(plan(&c, &s, &running, &running), Plan::Busy(ref r) if r.deployment == "ecs-svc/0")
        );
        let s = service(&running, &[("PRIMARY", None), ("ACTIVE", None)]);
        assert!(matches!(plan(&c, &s, &running, &running), Plan::Busy(_)));
        let s = service(
            &running,
            &[("PRIMARY", Some("COMPLETED")), ("INACTIVE", Some("FAILED"))],
        );
        assert_eq!(plan(&c, &s, &running, &running), Plan::Register);
        let s = service(&running, &[]);
        assert_eq!(plan(&c, &s, &running, &running), Plan::Register);
    }

    #[test]
    fn a_revision_left_by_a_failed_attempt_is_reused() {
        let running = rev(7, &format!("{REG}:v1.2.3"), &[]);
        let ours = [
            ("menotime:image-tag", "v1.2.4"),
            ("menotime:source-event", "evt-1"),
        ];
        let left = rev(8, &format!("{REG}@{D_NEW}"), &ours);
        let s = service(&running, STEADY);
        let c = cand("v1.2.4", D_NEW, "2026-01-01T00:00:00Z");
        assert_eq!(
            plan(&c, &s, &running, &left),
            Plan::Reuse {
                arn: left.arn.clone()
            }
        );
        // Not reused: a revision for another image, ...
        let other = rev(8, &format!("{REG}@{D_OLD}"), &ours);
        assert_eq!(plan(&c, &s, &running, &other), Plan::Register);
        // ... one registered by someone else (it may differ in more than the image), ...
        let foreign = rev(
            8,
            &format!("{REG}@{D_NEW}"),
            &[("menotime:image-tag", "v1.2.4")],
        );
        assert_eq!(plan(&c, &s, &running, &foreign), Plan::Register);
        // ... one made for another tag of the same image, ...
        let other_tag = rev(
            8,
            &format!("{REG}@{D_NEW}"),
            &[
                ("menotime:image-tag", "latest"),
                ("menotime:source-event", "e"),
            ],
        );
        assert_eq!(plan(&c, &s, &running, &other_tag), Plan::Register);
        // ... or one older than the running revision (the running one was deregistered).
        let running9 = rev(9, &format!("{REG}:v1.2.3"), &[]);
        assert_eq!(
            plan(&c, &service(&running9, STEADY), &running9, &left),
            Plan::Register
        );
    }

    #[test]
    fn new_revision_tags() {
        let running = rev(
            7,
            &format!("{REG}:v1.2.3"),
            &[
                ("team", "menotime"),
                ("aws:cloudformation:stack-name", "x"),
                ("menotime:image-tag", "v1.2.3"),
                ("menotime:approved-by", "someone-else"),
            ],
        );
        let c = cand("v1.2.4", D_NEW, "2026-01-01T10:00:00.123Z");
        let tags: BTreeMap<_, _> = revision_tags(&running, &c, "evt-1", None)
            .into_iter()
            .collect();
        assert_eq!(tags.get("team").map(String::as_str), Some("menotime"));
        assert!(!tags.contains_key("aws:cloudformation:stack-name"));
        assert!(
            !tags.contains_key("menotime:approved-by"),
            "an old approval does not carry over"
        );
        assert_eq!(tags["menotime:image-tag"], "v1.2.4");
        assert_eq!(tags["menotime:scanned-at"], "2026-01-01T10:00:00Z");
        assert_eq!(tags["menotime:source-event"], "evt-1");
        let approved: BTreeMap<_, _> =
            revision_tags(&running, &c, "evt-2", Some("j.doe@example.com"))
                .into_iter()
                .collect();
        assert_eq!(approved["menotime:approved-by"], "j.doe@example.com");
    }

    #[test]
    fn a_rolled_back_image_is_never_redeployed_by_automation() {
        let running = rev(7, &format!("{REG}:v1.2.3"), &[]);
        let ours = [
            ("menotime:image-tag", "v1.2.4"),
            ("menotime:source-event", "evt-1"),
            (
                "menotime:deployed",
                "deployment=ecs-svc/9 at=2026-01-01T10:00:00Z",
            ),
        ];
        let left = rev(8, &format!("{REG}@{D_NEW}"), &ours);
        let mut s = service(&running, STEADY);
        s.deployments[0].created_at = Some(t("2026-01-01T10:20:00Z"));
        let c = cand("v1.2.4", D_NEW, "2026-01-01T00:00:00Z");
        assert_eq!(
            plan(&c, &s, &running, &left),
            Plan::Skip(Skip::RolledBack {
                revision: left.short(),
                revision_arn: left.arn.clone(),
                deployed: Some(DeployedMark {
                    deployment: Some("ecs-svc/9".into()),
                    at: t("2026-01-01T10:00:00Z")
                }),
                left_at: Some(t("2026-01-01T10:20:00Z")),
            })
        );
        // Even during another rollout, and whatever the release order says.
        let busy = service(&running, &[("PRIMARY", Some("IN_PROGRESS"))]);
        assert!(matches!(
            plan(&c, &busy, &running, &left),
            Plan::Skip(Skip::RolledBack { .. })
        ));
        // An approval deploys it on purpose, reusing its revision.
        let approved = Candidate {
            approved: true,
            ..c.clone()
        };
        assert_eq!(
            plan(&approved, &s, &running, &left),
            Plan::Reuse {
                arn: left.arn.clone()
            }
        );
        // A new digest on the same tag deploys as usual.
        let rebuilt = cand("v1.2.4", D_OLD, "2026-01-02T00:00:00Z");
        assert_eq!(plan(&rebuilt, &s, &running, &left), Plan::Register);
        // A mark someone mangled still means deployed.
        let mangled = rev(
            8,
            &format!("{REG}@{D_NEW}"),
            &[
                ("menotime:image-tag", "v1.2.4"),
                ("menotime:source-event", "evt-1"),
                ("menotime:deployed", "yes"),
            ],
        );
        assert!(matches!(
            plan(&c, &s, &running, &mangled),
            Plan::Skip(Skip::RolledBack { deployed: None, .. })
        ));
    }

    #[test]
    fn marks_and_deferrals_round_trip_as_tag_values() {
        let m = DeployedMark {
            deployment: Some("ecs-svc/4231880795355584839".into()),
            at: t("2026-11-26T10:00:00Z"),
        };
        assert_eq!(DeployedMark::parse(&m.render()), Ok(m.clone()));
        assert_eq!(tags::value(&m.render()), m.render());
        let d = Deferred {
            digest: D_NEW.into(),
            tag: "v1.2.4".into(),
            scanned_at: t("2026-11-26T10:00:00Z"),
            event: "5c0a1e7d-0001-4e3a-9b1d-2f6c8e4a0001".into(),
            approved_by: Some("j doe@example.com".into()),
            reviewed: Some(ReviewedCounts::new([
                (Severity::Medium, 2),
                (Severity::Low, 0),
            ])),
        };
        let v = d.render();
        assert!(v.len() <= 256, "{}", v.len());
        assert_eq!(tags::value(&v), v);
        assert_eq!(Deferred::parse(&v), Ok(d.clone()));
        let plain = Deferred {
            approved_by: None,
            reviewed: None,
            ..d
        };
        assert_eq!(Deferred::parse(&plain.render()), Ok(plain));
        for bad in [
            "",
            "digest=x tag=v scanned=2026-11-26T10:00:00Z event=e",
            "tag=v1",
        ] {
            assert!(Deferred::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn newer_images_by_release_or_by_scan_time() {
        let (early, late) = (t("2026-01-01T00:00:00Z"), t("2026-01-02T00:00:00Z"));
        assert!(newer(("v1.2.5", early), ("v1.2.4", late)));
        assert!(!newer(("v1.2.4", late), ("v1.2.5", early)));
        assert!(newer(("develop", late), ("develop", early)));
        assert!(!newer(("main", early), ("main", late)));
        assert!(newer(("v1.2.4", late), ("v1.2.4", early)), "a rebuild");
    }
}
