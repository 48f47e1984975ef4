//! The scheduler's input to offhours-scaler (docs/reference.md §5.4), accepted strictly:
//! anything that is not exactly an action the scaler knows is refused before any AWS
//! call.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Error;

/// What the scheduler (or an operator) asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Lower the service for the night.
    ScaleDown,
    /// Restore the service from its snapshot.
    ScaleUp,
    /// Bring the service to what the window, the holidays and its tags say it should
    /// be now.
    Reconcile,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ScaleDown => "scale-down",
            Action::ScaleUp => "scale-up",
            Action::Reconcile => "reconcile",
        }
    }
}

/// The scheduler's input, accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub action: Action,
    pub dry_run: bool,
    /// `"force": true`: a `scale-down` during uptime is carried out instead of being
    /// skipped as stale. Means nothing to the other actions.
    pub force: bool,
    /// The scheduler's execution id, when the schedule passes it (`executionId`).
    pub execution_id: Option<String>,
    /// The scheduled time, when the schedule passes it (`scheduledTime`).
    pub scheduled_time: Option<DateTime<Utc>>,
}

const ACCEPTED: &str = r#"offhours-scaler accepts only the scheduler's input {"action": "scale-down"}, {"action": "scale-up"} or {"action": "reconcile"}, optionally with "scheduledTime" (RFC 3339), "executionId", "dry_run": true and "force": true"#;

/// How EventBridge Scheduler's context attributes start (`<aws.scheduler.scheduled-time>`,
/// `<aws.scheduler.execution-id>`, ...). The scheduler replaces them when a schedule
/// runs; one still in the input means the schedule's Input was sent by hand.
const PLACEHOLDER: &str = "<aws.scheduler.";

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

/// The first of `keys` present: its name and value.
fn field<'a>(
    o: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Option<(&'static str, &'a Value)> {
    keys.iter().find_map(|k| o.get(*k).map(|v| (*k, v)))
}

/// An optional text field (`executionId`, `scheduledTime`): absent, null or blank is
/// `None`; an unfilled scheduler placeholder is refused.
fn text<'a>(
    o: &'a Map<String, Value>,
    keys: &[&'static str],
) -> Result<Option<(&'static str, &'a str)>, Error> {
    let Some((key, v)) = field(o, keys) else {
        return Ok(None);
    };
    let s = match v {
        Value::Null => return Ok(None),
        Value::String(s) => s.trim(),
        other => {
            return Err(Error::rejected(format!(
                "\"{key}\" must be a string, not a {} ({}): {ACCEPTED}",
                kind(other),
                shown(other)
            )))
        }
    };
    if s.contains(PLACEHOLDER) {
        return Err(Error::rejected(format!(
            "\"{key}\" is still the placeholder {}: EventBridge Scheduler fills it in only when \
             the schedule runs, so this input was sent by hand. To run an action by hand, leave \
             \"scheduledTime\" and \"executionId\" out, e.g. {{\"action\": \"reconcile\"}}",
            shown(v)
        )));
    }
    Ok(Some((key, s)).filter(|(_, s)| !s.is_empty()))
}

fn flag(o: &Map<String, Value>, key: &'static str) -> Result<bool, Error> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(Error::rejected(format!(
            "\"{key}\" must be true or false, not {}: {ACCEPTED}",
            shown(other)
        ))),
    }
}

/// Accepts the scheduler's input (docs/reference.md §5.4), strictly: `action` exactly
/// `scale-down`, `scale-up` or `reconcile`; `dry_run` and `force` absent or booleans;
/// `scheduledTime` absent or an RFC 3339 time; neither it nor `executionId` an
/// unfilled `<aws.scheduler.*>` placeholder. Other fields are ignored.
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
        Some(Value::String(a)) if a == "reconcile" => Action::Reconcile,
        Some(other) => {
            return Err(Error::rejected(format!(
                "unknown action {}: {ACCEPTED}",
                shown(other)
            )))
        }
        None if o.contains_key("detail-type") || o.contains_key("source") => {
            return Err(Error::rejected(format!(
                "got an EventBridge event (detail-type {}, source {}) without an action, such as the scheduler's default input; set the schedule's input to {{\"action\": \"reconcile\"}}. {ACCEPTED}",
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
    let dry_run = flag(o, "dry_run")?;
    let force = flag(o, "force")?;
    let execution_id =
        text(o, &["executionId", "execution_id"])?.map(|(_, s)| s.chars().take(256).collect());
    let scheduled_time = match text(o, &["scheduledTime", "scheduled_time"])? {
        None => None,
        Some((key, s)) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|e| {
                    Error::rejected(format!(
                        "\"{key}\" {} is not an RFC 3339 time such as 2026-11-26T20:00:00Z ({e}): \
                         {ACCEPTED}",
                        shown(&Value::String(s.to_owned()))
                    ))
                })?
                .with_timezone(&Utc),
        ),
    };
    Ok(Request {
        action,
        dry_run,
        force,
        execution_id,
        scheduled_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rejected(v: Value) -> String {
        match parse_request(&v) {
            Err(e @ Error::Rejected(_)) => e.to_string(),
            other => panic!("{v}: expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn the_three_actions_with_their_options() {
        let r = parse_request(&json!({
            "action": "reconcile",
            "executionId": "d32c5kddcf5bb8c3",
            "scheduledTime": "2026-11-26T20:05:00Z",
            "scheduleArn": "arn:aws:scheduler:us-west-1:123456789012:schedule/g/n",
            "attemptNumber": "1",
        }))
        .unwrap();
        assert_eq!(r.action, Action::Reconcile);
        assert_eq!(r.execution_id.as_deref(), Some("d32c5kddcf5bb8c3"));
        assert_eq!(
            r.scheduled_time,
            Some("2026-11-26T20:05:00Z".parse().unwrap())
        );
        assert!(!r.dry_run && !r.force);
        let r = parse_request(&json!({"action": "scale-down", "force": true, "dry_run": true}))
            .unwrap();
        assert_eq!(
            (r.action, r.force, r.dry_run, r.scheduled_time),
            (Action::ScaleDown, true, true, None)
        );
        // Other offsets are read as the same instant; the snake_case names work too.
        let r = parse_request(&json!({"action": "scale-up", "scheduled_time": "2026-11-26T12:00:00-08:00", "execution_id": " e1 "}))
            .unwrap();
        assert_eq!(
            r.scheduled_time,
            Some("2026-11-26T20:00:00Z".parse().unwrap())
        );
        assert_eq!(r.execution_id.as_deref(), Some("e1"));
        // Null or blank optional fields are absent.
        let r = parse_request(&json!({"action": "scale-up", "scheduledTime": " ", "executionId": null, "force": null}))
            .unwrap();
        assert_eq!(
            (r.scheduled_time, r.execution_id, r.force),
            (None, None, false)
        );
    }

    #[test]
    fn unfilled_scheduler_placeholders_are_refused() {
        // The template's Input, sent by hand as a new user would.
        let e = rejected(json!({
            "action": "reconcile",
            "executionId": "<aws.scheduler.execution-id>",
            "scheduledTime": "<aws.scheduler.scheduled-time>",
        }));
        assert!(e.contains("placeholder"), "{e}");
        assert!(e.contains("<aws.scheduler.execution-id>"), "{e}");
        assert!(
            e.contains("leave \"scheduledTime\" and \"executionId\" out"),
            "{e}"
        );
        assert!(e.ends_with("Nothing was changed"), "{e}");
        let e = rejected(
            json!({"action": "scale-down", "scheduledTime": "<aws.scheduler.scheduled-time>"}),
        );
        assert!(
            e.contains("\"scheduledTime\" is still the placeholder"),
            "{e}"
        );
        let e = rejected(
            json!({"action": "scale-up", "execution_id": " <aws.scheduler.execution-id> "}),
        );
        assert!(
            e.contains("\"execution_id\" is still the placeholder"),
            "{e}"
        );
    }

    #[test]
    fn a_scheduled_time_that_does_not_parse_is_refused() {
        for bad in [
            json!("2026-11-26 20:00"),
            json!("tomorrow"),
            json!("2026-11-26"),
            json!("2026-13-26T20:00:00Z"),
        ] {
            let e = rejected(json!({"action": "scale-down", "scheduledTime": bad}));
            assert!(e.contains("is not an RFC 3339 time"), "{bad}: {e}");
        }
        let e = rejected(json!({"action": "scale-down", "scheduledTime": 1764187200}));
        assert!(
            e.contains("\"scheduledTime\" must be a string, not a number"),
            "{e}"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for (v, needle) in [
            (
                json!({"action": "scale_down"}),
                "unknown action \"scale_down\"",
            ),
            (json!({"action": "Reconcile"}), "unknown action"),
            (json!({"action": ["reconcile"]}), "unknown action"),
            (
                json!({"action": "scale-down", "dry_run": "yes"}),
                "\"dry_run\" must be true or false",
            ),
            (
                json!({"action": "scale-down", "force": 1}),
                "\"force\" must be true or false",
            ),
            (json!({}), "has no \"action\""),
            (json!("reconcile"), "got a JSON string"),
            (
                json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": "{}"}),
                "without an action",
            ),
        ] {
            let e = rejected(v.clone());
            assert!(e.contains(needle), "{v}: {e}");
            assert!(e.contains(r#"{"action": "reconcile"}"#), "{v}: {e}");
        }
    }
}
