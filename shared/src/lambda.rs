//! What every function's `main` does around its handler, written once: stop at
//! start-up with one line when the configuration is wrong, then serve invocations
//! through the Lambda Runtime API, logging each decision (or error) with its request id.

use std::future::Future;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;

/// An invocation result, as the log line "decided" shows it.
pub trait Decided {
    /// The outcome, e.g. `deployed`, `paged`, `scaled_down`.
    fn decision(&self) -> String;
    /// One sentence saying why.
    fn reason(&self) -> &str;
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
pub async fn serve<H, Fut, O>(handle: H) -> Result<(), lambda_runtime::Error>
where
    H: Fn(Value, String) -> Fut,
    Fut: Future<Output = Result<O, Error>>,
    O: Serialize + Decided,
{
    let handle = &handle;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let request_id = event.context.request_id.clone();
        // Boxed: the handler's future is deep, and the runtime's stays small.
        match Box::pin(handle(event.payload, request_id.clone())).await {
            Ok(outcome) => {
                tracing::info!(%request_id, outcome = %outcome.decision(), reason = %outcome.reason(), "decided");
                Ok::<O, Diagnostic>(outcome)
            }
            Err(e) => {
                tracing::error!(%request_id, error_type = e.kind(), retry = ?e.retry(), "{e}");
                Err(e.into())
            }
        }
    }))
    .await
}

/// The snake_case name serde gives a decision enum.
pub fn decision_name<D: Serialize>(d: &D) -> String {
    serde_json::to_value(d)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
