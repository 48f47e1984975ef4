//! Adapters: the few AWS calls the functions make, behind narrow traits so the
//! handlers can be driven by fakes in tests. Each adapter turns SDK types into the
//! plain types of [`crate::domain`] and SDK errors into [`Error::Aws`].

pub mod autoscaling;
pub mod ecr;
pub mod ecs;
pub mod sns;

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::{Error, Retry};

/// Error codes AWS uses for transient conditions worth another attempt later.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "ServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "KMSThrottling",
    "KMSThrottlingException",
    "ConcurrentUpdateException",
];

/// Maps an SDK error (after the SDK's own retries) to [`Error::Aws`], deciding whether
/// Lambda should try the whole invocation again and what a human should check.
pub fn aws_error<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    let status = err.raw_response().map(|r| r.status().as_u16());
    let retry = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Retry::Later
        }
        _ if code
            .as_deref()
            .is_some_and(|c| TRANSIENT_CODES.contains(&c)) =>
        {
            Retry::Later
        }
        _ if status.is_some_and(|s| s == 429 || s >= 500) => Retry::Later,
        _ => Retry::Never,
    };
    let advice = match (code.as_deref(), retry) {
        (_, Retry::Later) => "This is transient; Lambda retries the event and keeps it in the failure queue if retries run out",
        (Some(c), _)
            if c.contains("AccessDenied")
                || c.contains("Unauthorized")
                || c == "AuthorizationError" =>
        {
            "The function's IAM policy does not allow this call: check the policies in template.yaml"
        }
        (Some("ClusterNotFoundException" | "ServiceNotFoundException" | "RepositoryNotFoundException"), _) => {
            "Check CLUSTER_NAME, SERVICE_NAME and REPOSITORY_NAME in the stack's parameters"
        }
        _ => "Check the request and the resource named above; the event is kept in the failure queue for a retry after the fix",
    };
    Error::Aws {
        operation,
        message: DisplayErrorContext(&err).to_string(),
        advice,
        retry,
    }
}

/// Converts an SDK timestamp to chrono.
pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
