//! scan-gate's input: the three EventBridge events it accepts (docs/reference.md §5), checked
//! and normalised into one shape, whatever scanner or human sent them.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::image::{valid_digest, valid_tag};
use super::severity::{ReviewedCounts, Severity, SeverityCounts};
use crate::arn::Arn;
use crate::error::Error;

pub const SOURCE_ECR: &str = "aws.ecr";
pub const DETAIL_ECR_SCAN: &str = "ECR Image Scan";
pub const SOURCE_INSPECTOR: &str = "aws.inspector2";
pub const DETAIL_INSPECTOR_SCAN: &str = "Inspector2 Scan";
pub const SOURCE_OPS: &str = "menotime.ops";
pub const DETAIL_APPROVAL: &str = "Deploy Approval";
/// What the approval command in a review notification says until a human edits it.
pub const APPROVER_PLACEHOLDER: &str = "YOUR_NAME";
pub const REASON_PLACEHOLDER: &str = "WHY_THE_FINDINGS_ARE_ACCEPTABLE";

/// What an event is checked against: the function's own account, region and repository.
#[derive(Clone, Copy, Debug)]
pub struct Expect<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub repository: &'a str,
}

/// Facts of the EventBridge envelope every accepted event carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub id: String,
    pub time: DateTime<Utc>,
    pub source: String,
    pub detail_type: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scanner {
    /// ECR basic scanning ("ECR Image Scan").
    Basic,
    /// ECR enhanced scanning by Amazon Inspector ("Inspector2 Scan").
    Enhanced,
}

impl Scanner {
    pub fn label(self) -> &'static str {
        match self {
            Scanner::Basic => "ECR basic scan",
            Scanner::Enhanced => "Inspector2 enhanced scan",
        }
    }
}

/// A finished scan of one image in the watched repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanReport {
    pub envelope: Envelope,
    pub scanner: Scanner,
    pub digest: String,
    pub tags: Vec<String>,
    pub counts: SeverityCounts,
}

/// A human's "Deploy Approval" for an image held for review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub envelope: Envelope,
    pub digest: String,
    pub tag: String,
    pub approved_by: String,
    pub reason: String,
    /// The counts the approver reviewed (`reviewed-counts`).
    pub reviewed: ReviewedCounts,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    Scan(ScanReport),
    Approval(Approval),
}

/// Checks an incoming event and normalises it. Anything not accepted is
/// [`Error::Rejected`] with a sentence saying why.
pub fn parse_trigger(event: &Value, expect: Expect<'_>) -> Result<Trigger, Error> {
    let envelope: EventBridgeEvent<Value> = serde_json::from_value(event.clone()).map_err(|e| {
        Error::rejected(format!(
            "not an EventBridge event ({e}); scan-gate accepts \"{DETAIL_ECR_SCAN}\", \"{DETAIL_INSPECTOR_SCAN}\" and \"{DETAIL_APPROVAL}\" events"
        ))
    })?;
    let kind = match (envelope.source.as_str(), envelope.detail_type.as_str()) {
        (SOURCE_ECR, DETAIL_ECR_SCAN) => Kind::Basic,
        (SOURCE_INSPECTOR, DETAIL_INSPECTOR_SCAN) => Kind::Enhanced,
        (SOURCE_OPS, DETAIL_APPROVAL) => Kind::Approval,
        (source, detail_type) => {
            return Err(Error::rejected(format!(
                "scan-gate does not handle source {source:?} with detail-type {detail_type:?}; it accepts {SOURCE_ECR}/\"{DETAIL_ECR_SCAN}\", {SOURCE_INSPECTOR}/\"{DETAIL_INSPECTOR_SCAN}\" and {SOURCE_OPS}/\"{DETAIL_APPROVAL}\""
            )))
        }
    };
    let head = check_envelope(&envelope, expect)?;
    let detail = &envelope.detail;
    if !detail.is_object() {
        return Err(Error::rejected(format!(
            "{} event has no detail object",
            head.detail_type
        )));
    }
    match kind {
        Kind::Basic => parse_basic(head, detail, expect),
        Kind::Enhanced => parse_enhanced(head, detail, expect),
        Kind::Approval => parse_approval(head, detail, expect),
    }
}

enum Kind {
    Basic,
    Enhanced,
    Approval,
}

fn check_envelope(e: &EventBridgeEvent<Value>, expect: Expect<'_>) -> Result<Envelope, Error> {
    accept_envelope(e, expect.account, expect.region)
}

/// The envelope checks every function makes: an id, a time, and the function's own
/// account and region (events from elsewhere are refused).
pub(crate) fn accept_envelope(
    e: &EventBridgeEvent<Value>,
    own_account: &str,
    own_region: &str,
) -> Result<Envelope, Error> {
    let what = &e.detail_type;
    let id =
        e.id.clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::rejected(format!("{what} event has no id")))?;
    let account = e
        .account
        .as_deref()
        .ok_or_else(|| Error::rejected(format!("{what} event {id} has no account")))?;
    if account != own_account {
        return Err(Error::rejected(format!(
            "{what} event {id} comes from account {account}, but this function serves account {own_account}; events from other accounts are refused"
        )));
    }
    let region = e
        .region
        .as_deref()
        .ok_or_else(|| Error::rejected(format!("{what} event {id} has no region")))?;
    if region != own_region {
        return Err(Error::rejected(format!(
            "{what} event {id} comes from region {region}, but this function serves {own_region}; events from other regions are refused"
        )));
    }
    let time = e
        .time
        .ok_or_else(|| Error::rejected(format!("{what} event {id} has no time")))?;
    Ok(Envelope {
        id,
        time,
        source: e.source.clone(),
        detail_type: e.detail_type.clone(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ScanDetail {
    scan_status: Option<String>,
    repository_name: Option<String>,
    image_digest: Option<String>,
    image_tags: Option<Vec<String>>,
    finding_severity_counts: Option<serde_json::Map<String, Value>>,
}

fn scan_detail(head: &Envelope, detail: &Value) -> Result<ScanDetail, Error> {
    serde_json::from_value(detail.clone()).map_err(|e| {
        Error::rejected(format!(
            "{} event {} has a malformed detail: {e}",
            head.detail_type, head.id
        ))
    })
}

fn field<T>(head: &Envelope, name: &str, v: Option<T>) -> Result<T, Error> {
    v.ok_or_else(|| {
        Error::rejected(format!(
            "{} event {} is missing detail.{name}",
            head.detail_type, head.id
        ))
    })
}

fn check_digest(head: &Envelope, digest: String) -> Result<String, Error> {
    if valid_digest(&digest) {
        Ok(digest)
    } else {
        Err(Error::rejected(format!(
            "{} event {} has image-digest {digest:?}, which is not a sha256 digest",
            head.detail_type, head.id
        )))
    }
}

fn check_repository(head: &Envelope, got: &str, expect: Expect<'_>) -> Result<(), Error> {
    if got == expect.repository {
        Ok(())
    } else {
        Err(Error::rejected(format!(
            "{} event {} is for repository {got:?}, but this function watches {:?}",
            head.detail_type, head.id, expect.repository
        )))
    }
}

/// Counts as integers ≥ 0; JSON numbers only.
fn counts(
    head: &Envelope,
    raw: &serde_json::Map<String, Value>,
) -> Result<Vec<(String, u64)>, Error> {
    raw.iter()
        .map(|(k, v)| {
            v.as_u64().map(|n| (k.to_ascii_uppercase(), n)).ok_or_else(|| {
                Error::rejected(format!(
                    "{} event {} has finding-severity-counts.{k} = {v}, which is not a non-negative integer",
                    head.detail_type, head.id
                ))
            })
        })
        .collect()
}

fn parse_basic(head: Envelope, detail: &Value, expect: Expect<'_>) -> Result<Trigger, Error> {
    let d = scan_detail(&head, detail)?;
    let status = field(&head, "scan-status", d.scan_status)?;
    if status != "COMPLETE" {
        return Err(Error::rejected(format!(
            "{} event {} has scan-status {status:?}; only a COMPLETE scan can clear an image",
            head.detail_type, head.id
        )));
    }
    let repo = field(&head, "repository-name", d.repository_name)?;
    check_repository(&head, &repo, expect)?;
    let digest = check_digest(&head, field(&head, "image-digest", d.image_digest)?)?;
    let tags = field(&head, "image-tags", d.image_tags)?;
    let raw = field(&head, "finding-severity-counts", d.finding_severity_counts)?;
    let mut known = Vec::new();
    let mut unclassified = 0u64;
    for (k, n) in counts(&head, &raw)? {
        match Severity::parse(&k) {
            Some(s) => known.push((s, n)),
            None => unclassified = unclassified.saturating_add(n),
        }
    }
    Ok(Trigger::Scan(ScanReport {
        envelope: head,
        scanner: Scanner::Basic,
        digest,
        tags,
        counts: SeverityCounts::complete(known, unclassified),
    }))
}

fn parse_enhanced(head: Envelope, detail: &Value, expect: Expect<'_>) -> Result<Trigger, Error> {
    let d = scan_detail(&head, detail)?;
    let status = field(&head, "scan-status", d.scan_status)?;
    if status != "INITIAL_SCAN_COMPLETE" {
        return Err(Error::rejected(format!(
            "{} event {} has scan-status {status:?}; only INITIAL_SCAN_COMPLETE is handled",
            head.detail_type, head.id
        )));
    }
    // Inspector2 names the repository by its ARN.
    let repo_arn = field(&head, "repository-name", d.repository_name)?;
    let arn = Arn::parse(&repo_arn).ok_or_else(|| {
        Error::rejected(format!(
            "{} event {} has repository-name {repo_arn:?}, which is not an ECR repository ARN",
            head.detail_type, head.id
        ))
    })?;
    let name = arn.ecr_repository().ok_or_else(|| {
        Error::rejected(format!(
            "{} event {} has repository-name {repo_arn:?}, which is not an ECR repository ARN",
            head.detail_type, head.id
        ))
    })?;
    if arn.account != expect.account || arn.region != expect.region {
        return Err(Error::rejected(format!(
            "{} event {} is for a repository in {}/{}, but this function serves {}/{}",
            head.detail_type, head.id, arn.account, arn.region, expect.account, expect.region
        )));
    }
    check_repository(&head, name, expect)?;
    let digest = check_digest(&head, field(&head, "image-digest", d.image_digest)?)?;
    let tags = field(&head, "image-tags", d.image_tags)?;
    let raw = field(&head, "finding-severity-counts", d.finding_severity_counts)?;
    let mut known = Vec::new();
    let mut total = None;
    for (k, n) in counts(&head, &raw)? {
        if k == "TOTAL" {
            total = Some(n);
        } else if let Some(s) = Severity::parse(&k) {
            known.push((s, n));
        }
    }
    let classified: u64 = known.iter().map(|(_, n)| n).sum();
    let reported: Vec<Severity> = [Severity::Critical, Severity::High, Severity::Medium]
        .into_iter()
        .chain(known.iter().map(|(s, _)| *s))
        .collect();
    let unclassified = total.unwrap_or(classified).saturating_sub(classified);
    Ok(Trigger::Scan(ScanReport {
        envelope: head,
        scanner: Scanner::Enhanced,
        digest,
        tags,
        counts: SeverityCounts::partial(reported, known, unclassified),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ApprovalDetail {
    repository_name: Option<String>,
    image_digest: Option<String>,
    image_tag: Option<String>,
    approved_by: Option<String>,
    reason: Option<String>,
    reviewed_counts: Option<Value>,
}

/// Free text from a human: trimmed, one line, bounded, no control characters.
fn human_text(head: &Envelope, name: &str, v: Option<String>, max: usize) -> Result<String, Error> {
    let v = field(head, name, v)?.trim().to_owned();
    if v.is_empty() {
        return Err(Error::rejected(format!(
            "{} event {} has an empty {name}",
            head.detail_type, head.id
        )));
    }
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(Error::rejected(format!(
            "{} event {} has a {name} that is longer than {max} characters or spans several lines",
            head.detail_type, head.id
        )));
    }
    Ok(v)
}

fn parse_approval(head: Envelope, detail: &Value, expect: Expect<'_>) -> Result<Trigger, Error> {
    let d: ApprovalDetail = serde_json::from_value(detail.clone()).map_err(|e| {
        Error::rejected(format!(
            "{} event {} has a malformed detail: {e}",
            head.detail_type, head.id
        ))
    })?;
    let repo = field(&head, "repository-name", d.repository_name)?;
    check_repository(&head, &repo, expect)?;
    let digest = check_digest(&head, field(&head, "image-digest", d.image_digest)?)?;
    let tag = field(&head, "image-tag", d.image_tag)?;
    if !valid_tag(&tag) {
        return Err(Error::rejected(format!(
            "{} event {} has image-tag {tag:?}, which is not an image tag",
            head.detail_type, head.id
        )));
    }
    let approved_by = human_text(&head, "approved-by", d.approved_by, 128)?;
    let reason = human_text(&head, "reason", d.reason, 1024)?;
    if approved_by == APPROVER_PLACEHOLDER || reason == REASON_PLACEHOLDER {
        return Err(Error::rejected(format!(
            "{} event {} still has the placeholder approved-by or reason of the command in the notification; put your name and why the findings are acceptable",
            head.detail_type, head.id
        )));
    }
    let reviewed = d.reviewed_counts.ok_or_else(|| {
        Error::rejected(format!(
            "{} event {} has no reviewed-counts: an approval names the finding counts its approver reviewed, e.g. \"reviewed-counts\": {{\"MEDIUM\": 2}}; the command in the review notification fills them in",
            head.detail_type, head.id
        ))
    })?;
    let reviewed = ReviewedCounts::from_json(&reviewed).map_err(|why| {
        Error::rejected(format!(
            "{} event {} has unreadable reviewed-counts: {why}",
            head.detail_type, head.id
        ))
    })?;
    Ok(Trigger::Approval(Approval {
        envelope: head,
        digest,
        tag,
        approved_by,
        reason,
        reviewed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = "sha256:d4a96ee9443e641fc100e763a0c10928720b50c6e3ea3342d05d7c3435fc5355";

    fn expect() -> Expect<'static> {
        Expect {
            account: "123456789012",
            region: "us-west-1",
            repository: "menotime/backend",
        }
    }

    /// AWS's own examples, copied from the reference set (see shared/fixtures/README.md).
    fn reference(name: &str) -> Value {
        let path = format!("{}/fixtures/reference/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn approval(detail: Value) -> Value {
        json!({
            "version": "0", "id": "7f1d9a2e-0000-4000-8000-000000000001",
            "detail-type": "Deploy Approval", "source": "menotime.ops",
            "account": "123456789012", "time": "2026-11-26T09:00:00Z", "region": "us-west-1",
            "resources": [], "detail": detail
        })
    }

    fn approval_detail() -> Value {
        json!({
            "repository-name": "menotime/backend", "image-digest": DIGEST, "image-tag": "v1.2.4",
            "approved-by": "jdoe", "reason": "MEDIUM CVE-2026-1234 not reachable from the API",
            "reviewed-counts": {"MEDIUM": 2}
        })
    }

    fn rejected(v: &Value) -> String {
        match parse_trigger(v, expect()) {
            Err(Error::Rejected(m)) => m,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn basic_scan_with_all_severities() {
        let Trigger::Scan(s) =
            parse_trigger(&reference("ecr-image-scan-complete.json"), expect()).unwrap()
        else {
            panic!()
        };
        assert_eq!(s.scanner, Scanner::Basic);
        assert_eq!(s.digest, DIGEST);
        assert_eq!(s.tags, vec!["1.4.2", "latest"]);
        assert_eq!(s.counts.get(Severity::Critical), 1);
        assert_eq!(s.counts.get(Severity::Informational), 4);
        assert_eq!(s.counts.get(Severity::Undefined), 0);
        assert_eq!(s.envelope.id, "85fc3613-e913-7fc4-a80c-a3753e4aa9ae");
        assert_eq!(s.envelope.time.to_rfc3339(), "2025-06-02T17:41:07+00:00");
    }

    #[test]
    fn basic_scan_missing_severities_count_zero() {
        let Trigger::Scan(s) = parse_trigger(
            &reference("ecr-image-scan-complete-missing-severities.json"),
            expect(),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(s.counts.get(Severity::High), 0);
        assert_eq!(s.counts.get(Severity::Low), 0);
        assert_eq!(s.counts.get(Severity::Critical), 10);
        assert!(s.tags.is_empty());
        assert!(s.counts.reports(Severity::Low));
    }

    #[test]
    fn empty_counts_mean_a_clean_image() {
        let mut e = reference("ecr-image-scan-complete.json");
        e["detail"]["finding-severity-counts"] = json!({});
        let Trigger::Scan(s) = parse_trigger(&e, expect()).unwrap() else {
            panic!()
        };
        assert_eq!(s.counts.total(), 0);
    }

    #[test]
    fn inspector_scan_names_the_repository_by_arn_and_has_no_low() {
        let Trigger::Scan(s) = parse_trigger(&reference("inspector2-scan.json"), expect()).unwrap()
        else {
            panic!()
        };
        assert_eq!(s.scanner, Scanner::Enhanced);
        assert_eq!(s.counts.get(Severity::High), 4);
        assert_eq!(s.counts.get(Severity::Low), 0);
        assert!(!s.counts.reports(Severity::Low));
        assert_eq!(s.counts.unclassified(), 23 - 1 - 4 - 12);
    }

    #[test]
    fn inspector_counts_without_total_or_with_missing_keys() {
        let mut e = reference("inspector2-scan.json");
        e["detail"]["finding-severity-counts"] = json!({"MEDIUM": 2});
        let Trigger::Scan(s) = parse_trigger(&e, expect()).unwrap() else {
            panic!()
        };
        assert_eq!(s.counts.get(Severity::Critical), 0);
        assert_eq!(s.counts.get(Severity::Medium), 2);
        assert_eq!(s.counts.unclassified(), 0);
    }

    #[test]
    fn approval_event() {
        let Trigger::Approval(a) = parse_trigger(&approval(approval_detail()), expect()).unwrap()
        else {
            panic!()
        };
        assert_eq!(a.tag, "v1.2.4");
        assert_eq!(a.approved_by, "jdoe");
        assert_eq!(a.digest, DIGEST);
        assert_eq!(a.reviewed.get(Severity::Medium), 2);
        let mut d = approval_detail();
        d["reviewed-counts"] = json!({"MEDIUM": "two"});
        assert!(rejected(&approval(d)).contains("reviewed-counts"));
        // The rule matches the plain name only (docs/reference.md §5); an ARN is refused.
        let mut d = approval_detail();
        d["repository-name"] =
            json!("arn:aws:ecr:us-west-1:123456789012:repository/menotime/backend");
        assert!(parse_trigger(&approval(d), expect()).is_err());
    }

    #[test]
    fn approval_needs_every_field() {
        for f in [
            "repository-name",
            "image-digest",
            "image-tag",
            "approved-by",
            "reason",
            "reviewed-counts",
        ] {
            let mut d = approval_detail();
            d.as_object_mut().unwrap().remove(f);
            assert!(rejected(&approval(d.clone())).contains(f), "{f}");
            d[f] = json!("  ");
            rejected(&approval(d));
        }
        let mut d = approval_detail();
        d["reason"] = json!("two\nlines");
        rejected(&approval(d));
        let mut d = approval_detail();
        d["image-tag"] = json!("v1.2.4; rm -rf /");
        rejected(&approval(d));
        let mut d = approval_detail();
        d["repository-name"] =
            json!("arn:aws:ecr:us-west-1:999999999999:repository/menotime/backend");
        rejected(&approval(d));
    }

    #[test]
    fn unknown_events_are_rejected() {
        for (source, dt) in [
            ("aws.ecr", "ECR Image Action"),
            ("aws.inspector2", "Inspector2 Finding"),
            ("aws.ecs", "ECS Deployment State Change"),
            ("menotime.ops", "Deploy Rejection"),
            ("evil.ops", "Deploy Approval"),
        ] {
            let mut e = approval(approval_detail());
            e["source"] = json!(source);
            e["detail-type"] = json!(dt);
            assert!(rejected(&e).contains("does not handle"), "{source} {dt}");
        }
        assert!(rejected(&json!({"action": "scale-down"})).contains("not an EventBridge event"));
        assert!(rejected(&json!("hello")).contains("not an EventBridge event"));
    }

    #[test]
    fn other_accounts_regions_and_repositories_are_refused() {
        let base = reference("ecr-image-scan-complete.json");
        let mut e = base.clone();
        e["account"] = json!("999999999999");
        assert!(rejected(&e).contains("other accounts"));
        let mut e = base.clone();
        e["region"] = json!("us-east-1");
        assert!(rejected(&e).contains("other regions"));
        let mut e = base.clone();
        e["detail"]["repository-name"] = json!("menotime/frontend");
        assert!(rejected(&e).contains("menotime/frontend"));
        let mut e = reference("inspector2-scan.json");
        e["detail"]["repository-name"] = json!("menotime/backend");
        assert!(rejected(&e).contains("not an ECR repository ARN"));
        let mut e = reference("inspector2-scan.json");
        e["detail"]["repository-name"] =
            json!("arn:aws:ecr:us-east-1:123456789012:repository/menotime/backend");
        rejected(&e);
    }

    #[test]
    fn missing_or_malformed_scan_fields_are_rejected() {
        let base = reference("ecr-image-scan-complete.json");
        for f in [
            "scan-status",
            "repository-name",
            "image-digest",
            "image-tags",
            "finding-severity-counts",
        ] {
            let mut e = base.clone();
            e["detail"].as_object_mut().unwrap().remove(f);
            assert!(rejected(&e).contains(f), "{f}");
        }
        for top in ["id", "account", "region", "time"] {
            let mut e = base.clone();
            e.as_object_mut().unwrap().remove(top);
            rejected(&e);
        }
        let mut e = base.clone();
        e["detail"]["scan-status"] = json!("FAILED");
        assert!(rejected(&e).contains("COMPLETE"));
        let mut e = base.clone();
        e["detail"]["finding-severity-counts"]["HIGH"] = json!(-1);
        rejected(&e);
        let mut e = base.clone();
        e["detail"]["finding-severity-counts"]["HIGH"] = json!("2");
        rejected(&e);
        let mut e = base.clone();
        e["detail"]["image-digest"] = json!("latest");
        rejected(&e);
        let mut e = base.clone();
        e["detail"] = json!("{}");
        rejected(&e);
    }
}
