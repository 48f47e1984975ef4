//! What every function's `main` does around its handler, written once: stop at
//! start-up with one line when the configuration is wrong, then serve invocations
//! through the Lambda Runtime API, logging each decision (or error) once.

use std::fmt;
use std::future::Future;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;

/// Logs to stdout as Lambda's logging controls ask: JSON lines when
/// `AWS_LAMBDA_LOG_FORMAT=JSON` (the template sets it), the level from
/// `AWS_LAMBDA_LOG_LEVEL` (else `RUST_LOG`, a level name; else INFO). Each line carries
/// the invocation's span (its `requestId`) once, without the span list.
pub fn init_logging() {
    use tracing_subscriber::filter::LevelFilter;
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let level = var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| var("RUST_LOG"))
        .and_then(|l| l.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .without_time();
    if json {
        fmt.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        fmt.init();
    }
}

/// The configuration, or one clear line naming the variable and exit code 2, so that
/// Lambda reports the failed init.
pub fn config_or_exit<T>(config: Result<T, Error>) -> T {
    match config {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            std::process::exit(2);
        }
    }
}

/// Serves invocations with `handle(payload, request_id)` until the runtime stops.
/// Lambda keeps the request id across the retries of an asynchronous invocation,
/// which is why handlers get it.
///
/// Each invocation logs one line: `decided` with the result's `outcome` and `reason`
/// (every handler's result is a JSON object with both), or, for an error, the line the
/// runtime itself writes at ERROR, which shows a [`Failure`]. The request id is in the
/// runtime's span of every line, so it is not repeated as a field.
pub async fn serve<H, Fut, O>(handle: H) -> Result<(), lambda_runtime::Error>
where
    H: Fn(Value, String) -> Fut,
    Fut: Future<Output = Result<O, Error>>,
    O: Serialize,
{
    let handle = &handle;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Boxed: the handler's future is deep, and the runtime's stays small.
        match Box::pin(handle(event.payload, event.context.request_id)).await {
            Ok(outcome) => {
                let result = serde_json::to_value(&outcome).map_err(|e| {
                    Failure(Error::Misconfigured(format!(
                        "the invocation result could not be serialised: {e}"
                    )))
                })?;
                let field = |k: &str| result.get(k).and_then(Value::as_str).unwrap_or_default();
                let dry_run = result.get("dry_run").and_then(Value::as_bool) == Some(true);
                tracing::info!(
                    outcome = field("outcome"),
                    reason = field("reason"),
                    dry_run,
                    "decided"
                );
                Ok::<Value, Failure>(result)
            }
            Err(e) => Err(Failure(e)),
        }
    }))
    .await
}

/// A failed invocation. The runtime logs it once, at ERROR, in its `Debug` form (its
/// type, whether a retry can help, and the sentence saying what to do), and reports it
/// to Lambda as the error's type and message.
pub struct Failure(pub Error);

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let retry = match self.0.retry() {
            crate::Retry::Later => "a retry may succeed",
            crate::Retry::Never => "a retry will fail the same way",
        };
        write!(f, "{} ({retry}): {}", self.0.kind(), self.0)
    }
}

impl From<Failure> for Diagnostic {
    fn from(f: Failure) -> Diagnostic {
        f.0.into()
    }
}
