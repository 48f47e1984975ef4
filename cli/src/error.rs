//! Why a command stopped, as one line on stderr and an exit status (docs/reference.md
//! §7.2). Every message says what to do next.

use std::fmt;
use std::process::ExitCode;

use menotime_shared::{Error as SharedError, Retry};

/// The exit statuses of `menotime-ops`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 1: the service's state or the image's findings do not allow the action (a
    /// rollout in progress, blocking findings, nothing to roll back to). Nothing changed.
    Refused,
    /// 2: the command line is wrong (unknown environment, malformed time or name).
    /// Nothing was asked of AWS.
    Usage,
    /// 3: AWS failed or cannot be reached: no region or credentials, access denied, a
    /// resource that does not exist, throttling, a network fault.
    Aws,
}

impl Kind {
    pub fn code(self) -> u8 {
        match self {
            Kind::Refused => 1,
            Kind::Usage => 2,
            Kind::Aws => 3,
        }
    }
}

/// A command's failure: one line for people, and the exit status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
}

impl Failure {
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Refused,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Usage,
            message: message.into(),
        }
    }

    pub fn aws(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Aws,
            message: message.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.code())
    }

    /// The same failure with `context` in front, e.g. what had already been done.
    pub fn context(self, context: &str) -> Self {
        Self {
            message: format!("{context}: {}", self.message),
            ..self
        }
    }
}

/// One line: line breaks and runs of spaces become single spaces.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&one_line(&self.message))
    }
}

pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The shared crate's errors say what a Lambda function's operator should check; at a
/// terminal the advice is about the caller's own credentials and flags instead.
impl From<SharedError> for Failure {
    fn from(e: SharedError) -> Self {
        match e {
            SharedError::Aws {
                operation,
                message,
                retry,
                ..
            } => Failure::aws(format!(
                "AWS {operation} failed: {}. {}",
                trim_sentence(&concise(&message)),
                aws_advice(&message, retry)
            )),
            SharedError::Misconfigured(m) => Failure::aws(format!(
                "{}. Check --env, or name the resources with --cluster, --service, --repository or --container",
                trim_sentence(&strip_lambda_advice(&m))
            )),
            SharedError::Rejected(m) => Failure::refused(strip_rejected(&m)),
            SharedError::NotNow(m) => Failure::refused(m),
            SharedError::Config { var, problem } => {
                Failure::usage(format!("{var} {problem}"))
            }
        }
    }
}

/// The SDK's error text (`DisplayErrorContext`) said briefly: AWS's own error code and
/// message when the text carries them (`ClusterNotFoundException: Cluster not found.`),
/// else the chain of causes without the debug dump of the whole response that ends it.
pub fn concise(message: &str) -> String {
    let quoted = |key: &str| -> Option<String> {
        let re =
            regex_lite::Regex::new(&format!(r#"{key}: (?:Some\()?"((?:[^"\\]|\\.)*)""#)).ok()?;
        re.captures(message)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().replace("\\\"", "\""))
    };
    if let Some(code) = quoted("code") {
        return match quoted("message") {
            Some(m) if !m.is_empty() => format!("{code}: {m}"),
            _ => code,
        };
    }
    // The debug dump starts at " (" followed by a type name and "(" or " {".
    let mut text = message;
    let dump = regex_lite::Regex::new(r" \([A-Z][A-Za-z]+(\(| \{)").ok();
    if let Some(at) = dump.as_ref().and_then(|re| re.find(text)) {
        text = &text[..at.start()];
    }
    let text = text.strip_prefix("service error: ").unwrap_or(text);
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        let part = part.trim();
        let seen = parts
            .iter()
            .any(|p| p.trim_end_matches('.') == part.trim_end_matches('.'));
        if !part.is_empty() && !seen {
            parts.push(part);
        }
    }
    parts.join(": ")
}

fn trim_sentence(s: &str) -> String {
    one_line(s).trim_end_matches(['.', ' ']).to_owned()
}

/// The Lambda-side advice (`; check CLUSTER_NAME and SERVICE_NAME`) is wrong here.
fn strip_lambda_advice(m: &str) -> String {
    m.split("; check ")
        .next()
        .unwrap_or(m)
        .trim_end()
        .to_owned()
}

/// `rejected event: ... Nothing was changed` comes from the functions' event checks.
fn strip_rejected(m: &str) -> String {
    m.strip_prefix("rejected event: ")
        .unwrap_or(m)
        .trim_end_matches(". Nothing was changed")
        .to_owned()
}

/// What to do about a failed AWS call, at a terminal.
pub fn aws_advice(message: &str, retry: Retry) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("accessdenied")
        || m.contains("access denied")
        || m.contains("unauthorized")
        || m.contains("not authorized")
    {
        "Your credentials do not allow this call: use the operators' role (AWS_PROFILE or --profile)"
    } else if m.contains("expiredtoken") || m.contains("expired") && m.contains("token") {
        "Your credentials have expired: sign in again (e.g. aws sso login) and retry"
    } else if m.contains("credentials") {
        "No usable AWS credentials: set AWS_PROFILE (or --profile), or sign in (aws sso login)"
    } else if m.contains("event bus") && m.contains("not") {
        "Check --bus, and that the environment's stack (which creates the approvals bus) is deployed"
    } else if m.contains("clusternotfound") || m.contains("servicenotfound") {
        "Check --env, or name them with --cluster and --service"
    } else if m.contains("repositorynotfound") || m.contains("imagenotfound") {
        "Check the tag and --repository"
    } else if retry == Retry::Later {
        "This looks transient (throttling, a network fault, or AWS_ENDPOINT_URL unreachable): retry in a moment"
    } else {
        "Check the names and your access, then retry"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        let f = Failure::aws("a\nb   c\n");
        assert_eq!(f.to_string(), "a b c");
        assert_eq!(Kind::Refused.code(), 1);
        assert_eq!(Kind::Usage.code(), 2);
        assert_eq!(Kind::Aws.code(), 3);
    }

    #[test]
    fn sdk_errors_are_said_briefly() {
        let sdk = "service error: ClusterNotFoundException: Cluster not found.: ClusterNotFoundException: Cluster not found. (ServiceError(ServiceError { source: ClusterNotFoundException(ClusterNotFoundException { message: Some(\"Cluster not found.\"), meta: ErrorMetadata { code: Some(\"ClusterNotFoundException\"), message: Some(\"Cluster not found.\") } }), raw: Response { status: 400 } }))";
        assert_eq!(concise(sdk), "ClusterNotFoundException: Cluster not found.");
        let unhandled = "unhandled error (ResourceNotFoundException): Error { code: \"ResourceNotFoundException\", message: \"Event bus menotime-staging-approvals does not exist.\", aws_request_id: \"X4k8\" } (ServiceError(ServiceError { }))";
        assert_eq!(
            concise(unhandled),
            "ResourceNotFoundException: Event bus menotime-staging-approvals does not exist."
        );
        let dispatch = "dispatch failure: io error: error trying to connect: tcp connect error: Connection refused (os error 111) (DispatchFailure(DispatchFailure { source: ConnectorError { kind: Io } }))";
        assert_eq!(
            concise(dispatch),
            "dispatch failure: io error: error trying to connect: tcp connect error: Connection refused (os error 111)"
        );
        assert_eq!(concise("plain"), "plain");
    }

    #[test]
    fn lambda_advice_is_replaced() {
        let f: Failure = SharedError::Misconfigured(
            "ECS service x not found in cluster y (MISSING); check CLUSTER_NAME and SERVICE_NAME"
                .into(),
        )
        .into();
        assert_eq!(f.kind, Kind::Aws);
        assert!(!f.message.contains("CLUSTER_NAME"), "{f}");
        assert!(f.message.contains("--cluster"), "{f}");
        let f: Failure = SharedError::Aws {
            operation: "ecs:TagResource",
            message: "service error: AccessDeniedException: not allowed".into(),
            advice: "The function's IAM policy does not allow this call: check the policies in template.yaml",
            retry: Retry::Never,
        }
        .into();
        assert!(!f.message.contains("template.yaml"), "{f}");
        assert!(f.message.contains("operators' role"), "{f}");
        let f: Failure = SharedError::rejected("ECR has no image x").into();
        assert_eq!(f.kind, Kind::Refused);
        assert_eq!(f.message, "ECR has no image x");
    }
}
