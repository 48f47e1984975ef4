//! ECR: re-read an image's scan results (for "Deploy Approval").

use std::future::Future;

use aws_sdk_ecr::operation::describe_image_scan_findings::DescribeImageScanFindingsError as ScanError;
use aws_sdk_ecr::types::ImageIdentifier;
use chrono::{DateTime, Utc};

use super::{aws_error, to_chrono};
use crate::domain::severity::{Severity, SeverityCounts};
use crate::error::Error;

/// The scan of one image as ECR reports it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanFindings {
    /// COMPLETE, IN_PROGRESS, FAILED, ACTIVE (enhanced), ...
    pub status: String,
    /// ECR's words for the status.
    pub description: String,
    /// `None` when ECR returned no findings summary at all: unknown, not clean.
    pub counts: Option<SeverityCounts>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl ScanFindings {
    /// Basic scanning says COMPLETE; enhanced scanning keeps an image ACTIVE (monitored)
    /// once its scan is done.
    pub fn is_complete(&self) -> bool {
        matches!(self.status.as_str(), "COMPLETE" | "ACTIVE")
    }
}

pub trait EcrApi {
    /// DescribeImageScanFindings for the image `digest`, which must carry `tag`: asking
    /// for both makes ECR refuse a tag that no longer points at this digest.
    fn scan_findings(
        &self,
        repository: &str,
        digest: &str,
        tag: &str,
    ) -> impl Future<Output = Result<ScanFindings, Error>> + Send;
}

#[derive(Clone, Debug)]
pub struct Ecr {
    client: aws_sdk_ecr::Client,
}

impl Ecr {
    pub fn new(client: aws_sdk_ecr::Client) -> Self {
        Self { client }
    }
}

impl EcrApi for Ecr {
    async fn scan_findings(
        &self,
        repository: &str,
        digest: &str,
        tag: &str,
    ) -> Result<ScanFindings, Error> {
        let out = self
            .client
            .describe_image_scan_findings()
            .repository_name(repository)
            .image_id(ImageIdentifier::builder().image_digest(digest).image_tag(tag).build())
            // Only the counts are needed, not the findings themselves.
            .max_results(1)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(ScanError::ImageNotFoundException(_)) => Error::rejected(format!(
                    "ECR has no image {digest} tagged {tag} in {repository}: the tag may have moved to another image. Approve the digest the tag names now (aws ecr describe-images --repository-name {repository} --image-ids imageTag={tag})"
                )),
                Some(ScanError::ScanNotFoundException(_)) => Error::rejected(format!(
                    "image {digest} ({tag}) of {repository} has never been scanned: start a scan (aws ecr start-image-scan --repository-name {repository} --image-id imageDigest={digest}) and approve once it completes"
                )),
                _ => aws_error("ecr:DescribeImageScanFindings", e),
            })?;
        let status = out.image_scan_status();
        let findings = out.image_scan_findings();
        let counts = findings.map(|f| {
            let mut known = Vec::new();
            let mut unclassified = 0u64;
            for (sev, n) in f.finding_severity_counts().into_iter().flatten() {
                let n = u64::try_from(*n).unwrap_or(0);
                match Severity::parse(sev.as_str()) {
                    Some(s) => known.push((s, n)),
                    None => unclassified += n, // UNTRIAGED and severities unknown to us
                }
            }
            SeverityCounts::complete(known, unclassified)
        });
        Ok(ScanFindings {
            status: status
                .and_then(|s| s.status())
                .map_or("UNKNOWN", |s| s.as_str())
                .to_owned(),
            description: status
                .and_then(|s| s.description())
                .unwrap_or_default()
                .to_owned(),
            counts,
            completed_at: findings
                .and_then(|f| f.image_scan_completed_at())
                .and_then(to_chrono),
        })
    }
}
