//! The AWS SDK configuration every function loads once at start-up, and the time
//! budget it implies.
//!
//! Every call is bounded: at most [`ATTEMPTS`] attempts of at most [`ATTEMPT_TIMEOUT`]
//! each (connecting included), with waits of at most [`MAX_BACKOFF`] between them, and
//! never longer than [`OPERATION_TIMEOUT`] in all. A path's worst case is that bound
//! times its number of calls ([`PATHS`]), and every path must end well within its
//! function's Lambda timeout ([`LAMBDA_TIMEOUTS`], the template's `Timeout`): Lambda must
//! never kill an invocation between a change (UpdateService, a freeze) and the
//! notification that reports it. The tests below check it, path by path.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;

/// Attempts per call, the first included (standard retry mode: throttling, 5xx,
/// timeouts and network faults are retried).
pub const ATTEMPTS: u32 = 3;
/// Connecting to the endpoint (part of an attempt).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One attempt, from sending the request to reading the whole answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// The first wait before a retry; later waits double, jittered, up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// One call, all attempts and waits included: 3 × 3 s + 2 × 1 s.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(11);
/// What is left of a function's Lambda timeout after its slowest path must be at
/// least this share of it (time to log, to answer the Runtime API, and for the
/// handler's own work).
pub const MARGIN_PERCENT: u64 = 25;

/// Standard AWS configuration (region, credentials, and `AWS_ENDPOINT_URL` to point
/// every client at an emulator), with bounded time.
pub async fn load() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await
}

/// Standard retry mode: [`ATTEMPTS`] attempts in all, exponential backoff with jitter
/// from [`INITIAL_BACKOFF`] up to [`MAX_BACKOFF`].
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The longest one call can take: every attempt timing out, with the longest waits
/// between them, cut by the operation timeout.
pub fn worst_call() -> Duration {
    let attempts = ATTEMPT_TIMEOUT * ATTEMPTS + MAX_BACKOFF * (ATTEMPTS - 1);
    attempts.min(OPERATION_TIMEOUT)
}

/// The longest a path of `calls` calls can spend in AWS.
pub fn worst_path(calls: usize) -> Duration {
    worst_call() * u32::try_from(calls).unwrap_or(u32::MAX)
}

/// Each function's Lambda `Timeout` in template.yaml, in seconds.
pub const LAMBDA_TIMEOUTS: &[(&str, u64)] = &[
    ("scan-gate", 180),
    ("deploy-notifier", 120),
    ("offhours-scaler", 120),
];

/// One path of a function: its AWS calls in order, at most (the e2e call budgets check
/// the real sequences against these).
#[derive(Clone, Copy, Debug)]
pub struct PathCalls {
    pub function: &'static str,
    pub path: &'static str,
    pub calls: &'static [&'static str],
}

const DS: &str = "ecs:DescribeServices";
const DTD: &str = "ecs:DescribeTaskDefinition";
const REGISTER: &str = "ecs:RegisterTaskDefinition";
const UPDATE: &str = "ecs:UpdateService";
const TAG: &str = "ecs:TagResource";
const UNTAG: &str = "ecs:UntagResource";
const PUBLISH: &str = "sns:Publish";
const FINDINGS: &str = "ecr:DescribeImageScanFindings";
const TARGETS: &str = "application-autoscaling:DescribeScalableTargets";
const REGISTER_TARGET: &str = "application-autoscaling:RegisterScalableTarget";

/// Every path that changes something or notifies, with its longest sequence of calls.
pub const PATHS: &[PathCalls] = &[
    PathCalls {
        function: "scan-gate",
        path: "deploy a clean image",
        calls: &[DS, DTD, REGISTER, UPDATE, TAG, PUBLISH],
    },
    PathCalls {
        function: "scan-gate",
        path: "deploy an approved image, replacing a deferred one",
        calls: &[
            FINDINGS, DS, DTD, DTD, REGISTER, UPDATE, TAG, PUBLISH, PUBLISH, UNTAG,
        ],
    },
    PathCalls {
        function: "scan-gate",
        path: "defer an image during a rollout, superseding a deferred one",
        calls: &[DS, DTD, DTD, TAG, PUBLISH, PUBLISH],
    },
    PathCalls {
        function: "scan-gate",
        path: "resume a deferred image when the rollout completes",
        calls: &[
            DS, FINDINGS, DTD, DTD, REGISTER, UPDATE, TAG, PUBLISH, UNTAG,
        ],
    },
    PathCalls {
        function: "scan-gate",
        path: "skip a running image, writing its missing deployed mark",
        calls: &[FINDINGS, DS, DTD, DTD, TAG, PUBLISH, UNTAG],
    },
    PathCalls {
        function: "deploy-notifier",
        path: "page a failed deployment and freeze",
        calls: &[DS, DTD, TAG, PUBLISH, TAG],
    },
    PathCalls {
        function: "deploy-notifier",
        path: "page a new incident, delivering the last one's undelivered page first",
        calls: &[DS, DTD, TAG, PUBLISH, PUBLISH, TAG],
    },
    PathCalls {
        function: "deploy-notifier",
        path: "resolve, delivering an undelivered page first",
        calls: &[DS, TAG, PUBLISH, PUBLISH, PUBLISH, TAG],
    },
    PathCalls {
        function: "deploy-notifier",
        path: "page an impairment",
        calls: &[DS, TAG, PUBLISH, PUBLISH, TAG],
    },
    PathCalls {
        function: "offhours-scaler",
        path: "scale down (prod: snapshot, target, count)",
        calls: &[DS, TARGETS, TAG, REGISTER_TARGET, UPDATE, DTD, PUBLISH],
    },
    PathCalls {
        function: "offhours-scaler",
        path: "scale up (restore, then remove the snapshot)",
        calls: &[DS, TARGETS, REGISTER_TARGET, UPDATE, UNTAG, DTD, PUBLISH],
    },
];

/// A function's Lambda timeout.
pub fn lambda_timeout(function: &str) -> Option<Duration> {
    LAMBDA_TIMEOUTS
        .iter()
        .find(|(f, _)| *f == function)
        .map(|(_, s)| Duration::from_secs(*s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_is_bounded_by_its_attempts_and_waits() {
        assert_eq!(
            ATTEMPT_TIMEOUT * ATTEMPTS + MAX_BACKOFF * (ATTEMPTS - 1),
            OPERATION_TIMEOUT,
            "the operation timeout is exactly the attempts and waits"
        );
        assert!(CONNECT_TIMEOUT < ATTEMPT_TIMEOUT);
        assert!(INITIAL_BACKOFF <= MAX_BACKOFF);
        assert_eq!(worst_call(), Duration::from_secs(11));
    }

    /// Σ over a path's calls of (attempts × attempt timeout + waits) stays below the
    /// function's Lambda timeout, with [`MARGIN_PERCENT`] to spare, for every path.
    #[test]
    fn every_path_ends_well_within_its_lambda_timeout() {
        let mut table = Vec::new();
        for p in PATHS {
            let timeout = lambda_timeout(p.function)
                .unwrap_or_else(|| panic!("no Lambda timeout for {}", p.function));
            let worst = worst_path(p.calls.len());
            let limit = timeout * (100 - MARGIN_PERCENT as u32) / 100;
            table.push(format!(
                "{:<16} {:<72} {:>2} calls  worst {:>4}s of {}s",
                p.function,
                p.path,
                p.calls.len(),
                worst.as_secs(),
                timeout.as_secs()
            ));
            assert!(
                worst <= limit,
                "{} / {}: {} calls may take {:?}, more than {:?} ({}% of the {:?} Lambda timeout)",
                p.function,
                p.path,
                p.calls.len(),
                worst,
                limit,
                100 - MARGIN_PERCENT,
                timeout
            );
        }
        eprintln!("{}", table.join("\n"));
        for (f, _) in LAMBDA_TIMEOUTS {
            assert!(PATHS.iter().any(|p| p.function == *f), "{f} has no path");
        }
    }

    /// The timeouts above are the template's: Globals' `Timeout` and each function's
    /// own, read from template.yaml.
    #[test]
    fn the_template_sets_these_lambda_timeouts() {
        let template = include_str!("../../template.yaml");
        let global = template_timeout(template, "Globals:").expect("Globals Timeout");
        for (function, logical) in [
            ("scan-gate", "ScanGateFunction:"),
            ("deploy-notifier", "DeployNotifierFunction:"),
            ("offhours-scaler", "OffhoursScalerFunction:"),
        ] {
            let set = template_timeout(template, &format!("  {logical}")).unwrap_or(global);
            assert_eq!(
                Some(Duration::from_secs(set)),
                lambda_timeout(function),
                "{function}: template.yaml says Timeout {set}"
            );
        }
    }

    /// The `Timeout:` of the block that starts with the line `header` (up to the next
    /// line indented as little as the header).
    fn template_timeout(template: &str, header: &str) -> Option<u64> {
        let mut lines = template.lines().skip_while(|l| l.trim_end() != header);
        let head = lines.next()?;
        let indent = head.len() - head.trim_start().len();
        lines
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
            .filter(|l| !l.trim_start().starts_with('#'))
            .find_map(|l| l.trim().strip_prefix("Timeout:"))
            .and_then(|v| v.trim().parse().ok())
    }
}
