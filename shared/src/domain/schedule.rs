//! The scheduler's input to offhours-scaler (docs/reference.md §5), accepted strictly:
//! anything that is not exactly an action the scaler knows is refused before any AWS
//! call.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;

/// What the scheduler asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    ScaleDown,
    ScaleUp,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ScaleDown => "scale-down",
            Action::ScaleUp => "scale-up",
        }
    }
}

/// The scheduler's input, accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub action: Action,
    pub dry_run: bool,
    /// The scheduler's execution id, when the schedule passes it (`executionId`).
    pub execution_id: Option<String>,
    /// The scheduled time, when the schedule passes it (`scheduledTime`).
    pub scheduled_time: Option<DateTime<Utc>>,
}

const ACCEPTED: &str = r#"offhours-scaler accepts only the scheduler's input {"action": "scale-down"} or {"action": "scale-up"}, optionally with "dry_run": true"#;

/// A value for an error message: its JSON, cut to a readable length.
fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 80 {
        s
    } else {
        format!("{}...", s.chars().take(77).collect::<String>())
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The first non-empty string among `keys` (an execution id, a time).
fn string_field<'a>(o: &'a serde_json::Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .filter_map(|k| o.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .find(|s| !s.is_empty())
}

/// Accepts the scheduler's input (docs/reference.md §5), strictly: `action` exactly `scale-down`
/// or `scale-up`, `dry_run` absent or a boolean; other fields are ignored.
pub fn parse_request(event: &Value) -> Result<Request, Error> {
    let Some(o) = event.as_object() else {
        return Err(Error::rejected(format!(
            "{ACCEPTED}; got a JSON {} ({})",
            kind(event),
            shown(event)
        )));
    };
    let action = match o.get("action") {
        Some(Value::String(a)) if a == "scale-down" => Action::ScaleDown,
        Some(Value::String(a)) if a == "scale-up" => Action::ScaleUp,
        Some(other) => {
            return Err(Error::rejected(format!(
                "unknown action {}: {ACCEPTED}",
                shown(other)
            )))
        }
        None if o.contains_key("detail-type") || o.contains_key("source") => {
            return Err(Error::rejected(format!(
                "got an EventBridge event (detail-type {}, source {}) without an action, such as the scheduler's default input; set the schedule's input to {{\"action\": \"scale-down\"}} or {{\"action\": \"scale-up\"}}. {ACCEPTED}",
                shown(o.get("detail-type").unwrap_or(&Value::Null)),
                shown(o.get("source").unwrap_or(&Value::Null)),
            )))
        }
        None => {
            return Err(Error::rejected(format!(
                "the input has no \"action\" ({}): {ACCEPTED}",
                shown(event)
            )))
        }
    };
    let dry_run = match o.get("dry_run") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(Error::rejected(format!(
                "\"dry_run\" must be true or false, not {}: {ACCEPTED}",
                shown(other)
            )))
        }
    };
    let execution_id = string_field(o, &["executionId", "execution_id"])
        .map(|s| s.chars().take(256).collect::<String>());
    let scheduled_time = string_field(o, &["scheduledTime", "scheduled_time"])
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(Request {
        action,
        dry_run,
        execution_id,
        scheduled_time,
    })
}
