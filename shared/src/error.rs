//! The one error type of the shared crate. Every message says what went wrong and what
//! to do about it, because it ends up in a Lambda error at 3 a.m.

/// Whether Lambda should run the invocation again.
///
/// Asynchronous invocations that fail are retried by Lambda and, once retries are used
/// up, kept by the on-failure destination; that is how nothing is lost. A rejected event
/// fails the same way every time, so retrying it is harmless but useless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Transient: throttling, a deployment in progress, a network fault.
    Later,
    /// Permanent until a human changes something (bad input, missing resource, permissions).
    Never,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A start-up variable is missing or malformed. One line, naming the variable.
    #[error("configuration error: {var} {problem}")]
    Config { var: &'static str, problem: String },

    /// The event is not one this function accepts (unknown kind, missing field, another
    /// repository, account or region). Nothing was changed.
    #[error("rejected event: {0}. Nothing was changed")]
    Rejected(String),

    /// An AWS call failed after the SDK's own retries.
    #[error("AWS {operation} failed: {message}. {advice}")]
    Aws {
        operation: &'static str,
        message: String,
        advice: &'static str,
        retry: Retry,
    },

    /// The world is not in a state where the work can be done safely now; a later
    /// attempt will (e.g. another deployment of the service is still rolling out).
    #[error("{0}")]
    NotNow(String),

    /// The AWS resources are not what the configuration says (service or container
    /// missing); a human has to fix the stack or the service.
    #[error("{0}")]
    Misconfigured(String),
}

impl Error {
    pub fn retry(&self) -> Retry {
        match self {
            Error::Aws { retry, .. } => *retry,
            Error::NotNow(_) => Retry::Later,
            Error::Config { .. } | Error::Rejected(_) | Error::Misconfigured(_) => Retry::Never,
        }
    }

    /// Short, stable name for the Lambda error type (`errorType` in the Runtime API).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config { .. } => "ConfigurationError",
            Error::Rejected(_) => "RejectedEvent",
            Error::Aws {
                retry: Retry::Later,
                ..
            } => "AwsTransientError",
            Error::Aws {
                retry: Retry::Never,
                ..
            } => "AwsError",
            Error::NotNow(_) => "RetryLater",
            Error::Misconfigured(_) => "Misconfigured",
        }
    }

    pub fn rejected(msg: impl Into<String>) -> Self {
        Error::Rejected(msg.into())
    }
}

/// What the Lambda Runtime API reports for a failed invocation: a stable `errorType`
/// and the full sentence as `errorMessage`.
impl From<Error> for lambda_runtime::Diagnostic {
    fn from(e: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.kind().to_owned(),
            error_message: e.to_string(),
        }
    }
}
