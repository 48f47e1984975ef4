//! The AWS SDK configuration every function builds once at start-up, from what Lambda
//! puts in the environment, and nothing else.
//!
//! Lambda gives a function its region (`AWS_REGION`) and its role's credentials
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) as environment
//! variables, so the configuration is read from them directly: no profile files, no
//! instance metadata, no SSO or process credentials, none of which a function uses.
//! `AWS_ENDPOINT_URL` points every client at an emulator (moto's server, in tests).
//!
//! TLS is rustls on ring. The trust store holds the roots that sign AWS's endpoints
//! (Amazon Trust Services: Amazon Root CA 1-4 and Starfield Services Root G2), compiled
//! in, so a start reads no certificate files. To trust another CA as well (a
//! TLS-inspecting proxy, a private endpoint), point `SSL_CERT_FILE` at a PEM file: its
//! certificates are added, and a file that cannot be read stops the function at
//! start-up with one line naming the variable.
//!
//! Every call is bounded: at most [`ATTEMPTS`] attempts of at most [`ATTEMPT_TIMEOUT`]
//! each (connecting included), with waits of at most [`MAX_BACKOFF`] between them, and
//! never longer than [`OPERATION_TIMEOUT`] in all. A path's worst case is that bound
//! times its number of calls ([`PATHS`]), and every path must end well within its
//! function's Lambda timeout ([`LAMBDA_TIMEOUTS`], the template's `Timeout`): Lambda must
//! never kill an invocation between a change (UpdateService, a freeze) and the
//! notification that reports it. The tests below check it, path by path.

use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_async::rt::sleep::{SharedAsyncSleep, TokioSleep};
use aws_smithy_async::time::{SharedTimeSource, SystemTimeSource};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::Region;
use aws_types::SdkConfig;

use crate::error::Error;

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

/// Amazon Trust Services' roots, in PEM (with their fingerprints in a comment).
const AWS_TRUST_ROOTS: &str = include_str!("aws-trust-roots.pem");

/// The configuration of every client, from the process environment.
pub fn config() -> Result<SdkConfig, Error> {
    config_from(&|k: &str| std::env::var(k).ok())
}

/// [`config`] over `var`, so the rules are tested without touching the environment.
pub fn config_from(var: &dyn Fn(&str) -> Option<String>) -> Result<SdkConfig, Error> {
    let get = |k: &'static str| var(k).filter(|v| !v.trim().is_empty());
    let required = |k: &'static str| {
        get(k).ok_or(Error::Config {
            var: k,
            problem: "is required but not set (Lambda sets it for every function)".into(),
        })
    };
    let region = required("AWS_REGION")?;
    let credentials = Credentials::new(
        required("AWS_ACCESS_KEY_ID")?,
        required("AWS_SECRET_ACCESS_KEY")?,
        get("AWS_SESSION_TOKEN"),
        None,
        "lambda-environment",
    );
    let mut b = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(http_client(get("SSL_CERT_FILE").as_deref())?)
        .sleep_impl(SharedAsyncSleep::new(TokioSleep::new()))
        .time_source(SharedTimeSource::new(SystemTimeSource::new()))
        .retry_config(retry_config())
        .timeout_config(timeout_config());
    if let Some(url) = get("AWS_ENDPOINT_URL") {
        b = b.endpoint_url(url);
    }
    Ok(b.build())
}

/// The HTTPS client every SDK client of a function shares: rustls on ring, trusting
/// AWS's roots and the certificates of `extra_ca_file` (`SSL_CERT_FILE`), if given.
/// The trust store is built when the first request connects.
pub fn http_client(extra_ca_file: Option<&str>) -> Result<SharedHttpClient, Error> {
    https(
        TrustStore::empty().with_pem_certificate(AWS_TRUST_ROOTS),
        extra_ca_file,
    )
}

/// The same client for a tool on an operator's machine (the CLI): the system's trusted
/// roots as well, as every other tool there trusts them.
pub fn http_client_with_system_roots(
    extra_ca_file: Option<&str>,
) -> Result<SharedHttpClient, Error> {
    https(
        TrustStore::default().with_pem_certificate(AWS_TRUST_ROOTS),
        extra_ca_file,
    )
}

fn https(mut trust: TrustStore, extra_ca_file: Option<&str>) -> Result<SharedHttpClient, Error> {
    if let Some(path) = extra_ca_file {
        let pem = std::fs::read(path).map_err(|e| Error::Config {
            var: "SSL_CERT_FILE",
            problem: format!("names {path}, which cannot be read: {e}"),
        })?;
        let certs = pem_certificates(&pem).map_err(|problem| Error::Config {
            var: "SSL_CERT_FILE",
            problem: format!("names {path}, {problem}"),
        })?;
        tracing::debug!(
            path,
            certs,
            "trusting the certificates of SSL_CERT_FILE too"
        );
        trust = trust.with_pem_certificate(pem);
    }
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| Error::Config {
            var: "SSL_CERT_FILE",
            problem: format!("cannot be used as a TLS trust store: {e}"),
        })?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https())
}

/// How many certificates a PEM file holds; an error if it holds none, or one that is
/// not well formed (the TLS layer would otherwise fail on the first connection).
fn pem_certificates(pem: &[u8]) -> Result<usize, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("which is not a PEM file of certificates ({e})"))?;
    if certs.is_empty() {
        return Err("which holds no PEM certificate".into());
    }
    Ok(certs.len())
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
    ("deploy-notifier", 180),
    ("offhours-scaler", 180),
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
        function: "deploy-notifier",
        path: "page a regression and roll it back",
        calls: &[DS, DTD, TAG, UPDATE, PUBLISH, TAG],
    },
    PathCalls {
        function: "deploy-notifier",
        path:
            "escalate an open alarm incident to a regression, roll back, resolve the earlier page",
        calls: &[DS, DTD, TAG, UPDATE, PUBLISH, PUBLISH, TAG],
    },
    PathCalls {
        function: "deploy-notifier",
        path: "escalate and roll back, delivering the open incident's undelivered page first",
        calls: &[DS, DTD, PUBLISH, TAG, UPDATE, PUBLISH, PUBLISH, TAG],
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
    PathCalls {
        function: "offhours-scaler",
        path: "page a failed wake-up (recorded, sent, confirmed), then restore",
        calls: &[
            DS,
            TAG,
            PUBLISH,
            TAG,
            TARGETS,
            REGISTER_TARGET,
            UPDATE,
            UNTAG,
            DTD,
            PUBLISH,
        ],
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
    use std::collections::HashMap;

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

    fn vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = [
            ("AWS_REGION", "us-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    fn build(m: &HashMap<String, String>) -> Result<SdkConfig, Error> {
        config_from(&|k| m.get(k).cloned())
    }

    #[tokio::test]
    async fn config_comes_from_lambdas_environment() {
        let c = build(&vars(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")])).unwrap();
        assert_eq!(c.region().map(|r| r.as_ref()), Some("us-west-1"));
        assert_eq!(c.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert!(c.credentials_provider().is_some());
        assert!(c.http_client().is_some());
        assert_eq!(c.retry_config().map(|r| r.max_attempts()), Some(3));
        let c = build(&vars(&[])).unwrap();
        assert_eq!(c.endpoint_url(), None);
    }

    #[tokio::test]
    async fn a_missing_variable_is_named() {
        for var in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            let mut m = vars(&[]);
            m.remove(var);
            match build(&m) {
                Err(Error::Config { var: v, .. }) => assert_eq!(v, var),
                other => panic!("{var}: {other:?}"),
            }
        }
        // A session token is optional (long-term keys in a local run).
        let mut m = vars(&[]);
        m.remove("AWS_SESSION_TOKEN");
        assert!(build(&m).is_ok());
    }

    #[tokio::test]
    async fn ssl_cert_file_adds_a_ca_or_stops_the_start() {
        let dir = std::env::temp_dir().join(format!("menotime-sdk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("ca.pem");
        std::fs::write(&good, AWS_TRUST_ROOTS).unwrap();
        assert!(build(&vars(&[("SSL_CERT_FILE", good.to_str().unwrap())])).is_ok());
        let bad = dir.join("bad.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        for path in [bad.to_str().unwrap(), "/nonexistent/ca.pem"] {
            match build(&vars(&[("SSL_CERT_FILE", path)])) {
                Err(Error::Config { var, problem }) => {
                    assert_eq!(var, "SSL_CERT_FILE");
                    assert!(problem.contains(path), "{problem}");
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The compiled-in roots are exactly Amazon Trust Services' five, as the file's
    /// comment lists them.
    #[test]
    fn the_compiled_in_roots_are_amazon_trust_services() {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::CertificateDer;
        let certs: Vec<CertificateDer<'_>> =
            CertificateDer::pem_slice_iter(AWS_TRUST_ROOTS.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(certs.len(), 5);
        let listed: Vec<String> = AWS_TRUST_ROOTS
            .lines()
            .filter_map(|l| l.strip_prefix("#   "))
            .filter_map(|l| l.rsplit_once(": ").map(|(_, fp)| fp.to_owned()))
            .collect();
        let actual: Vec<String> = certs
            .iter()
            .map(|c| {
                ring::digest::digest(&ring::digest::SHA256, c.as_ref())
                    .as_ref()
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect()
            })
            .collect();
        assert_eq!(actual, listed);
    }
}
