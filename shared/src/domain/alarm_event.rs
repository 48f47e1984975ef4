//! deploy-notifier's fourth input: a "CloudWatch Alarm State Change" (docs/reference.md
//! §5.3), checked against this stack's account, region and alarm prefix, and
//! normalised.
//!
//! Field notes: the alarm is `detail.alarmName` (and the ARN in `resources[0]`,
//! `arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME`); its new state is
//! `detail.state.{value, reason, timestamp}`, the one before `detail.previousState`.
//! CloudWatch writes those timestamps as `2026-11-26T09:00:00.000+0000` (no colon in
//! the offset), not RFC 3339; the envelope's `time` is the usual `...Z`.
//! `detail.configuration` differs between single-metric, metric-math and composite
//! alarms, so nothing here reads it.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::scan::{accept_envelope, Envelope};
use crate::arn::Arn;
use crate::error::Error;

pub const SOURCE_CLOUDWATCH: &str = "aws.cloudwatch";
pub const DETAIL_ALARM: &str = "CloudWatch Alarm State Change";

/// The alarms the template creates, by the part of their name after `ALARM_PREFIX`.
pub const TEMPLATE_ALARMS: [&str; 5] = [
    "5xx",
    "latency",
    "unhealthy-hosts",
    "memory-high",
    "db-connections",
];

/// An alarm's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    pub fn parse(s: &str) -> Option<AlarmState> {
        match s {
            "OK" => Some(AlarmState::Ok),
            "ALARM" => Some(AlarmState::Alarm),
            "INSUFFICIENT_DATA" => Some(AlarmState::InsufficientData),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// Which of this environment's alarms, by the part of its name after `ALARM_PREFIX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlarmKind {
    /// `5xx`: the ALB's target 5xx responses as a share of its requests.
    ServerErrors,
    /// `latency`: TargetResponseTime p95.
    Latency,
    /// `unhealthy-hosts`: UnHealthyHostCount of the service's target group.
    UnhealthyHosts,
    /// `memory-high`: the service's MemoryUtilization above 85%.
    MemoryHigh,
    /// `db-connections`: the RDS instance's DatabaseConnections.
    DbConnections,
    /// Another alarm named with the prefix (an operator's own).
    Other(String),
}

impl AlarmKind {
    pub fn from_suffix(suffix: &str) -> AlarmKind {
        match suffix {
            "5xx" => AlarmKind::ServerErrors,
            "latency" => AlarmKind::Latency,
            "unhealthy-hosts" => AlarmKind::UnhealthyHosts,
            "memory-high" => AlarmKind::MemoryHigh,
            "db-connections" => AlarmKind::DbConnections,
            other => AlarmKind::Other(other.to_owned()),
        }
    }

    /// The name after the prefix: `5xx`, `latency`, ...
    pub fn suffix(&self) -> &str {
        match self {
            AlarmKind::ServerErrors => "5xx",
            AlarmKind::Latency => "latency",
            AlarmKind::UnhealthyHosts => "unhealthy-hosts",
            AlarmKind::MemoryHigh => "memory-high",
            AlarmKind::DbConnections => "db-connections",
            AlarmKind::Other(s) => s,
        }
    }

    /// What the alarm watches, in words.
    pub fn describe(&self) -> &str {
        match self {
            AlarmKind::ServerErrors => "the load balancer's target 5xx rate",
            AlarmKind::Latency => "the load balancer's p95 target response time",
            AlarmKind::UnhealthyHosts => "unhealthy targets in the service's target group",
            AlarmKind::MemoryHigh => "the service's memory utilization",
            AlarmKind::DbConnections => "the database's connections",
            AlarmKind::Other(_) => "a metric of this environment",
        }
    }
}

/// One state change of one of this environment's alarms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmEvent {
    pub envelope: Envelope,
    /// The full alarm name, e.g. `menotime-prod-5xx`.
    pub name: String,
    pub kind: AlarmKind,
    pub state: AlarmState,
    pub previous: Option<AlarmState>,
    /// CloudWatch's `state.reason` (empty when absent).
    pub reason: String,
    /// `detail.state.timestamp`, or the envelope's time when absent or unreadable.
    pub at: DateTime<Utc>,
}

/// An accepted alarm event: one of this environment's alarms, or another alarm of the
/// account (whose name lacks `ALARM_PREFIX`), which concerns nobody here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlarmChange {
    Ours(AlarmEvent),
    NotOurs { envelope: Envelope, name: String },
}

/// What an alarm event is checked against.
#[derive(Clone, Copy, Debug)]
pub struct AlarmSite<'a> {
    pub account: &'a str,
    pub region: &'a str,
    /// `ALARM_PREFIX`, e.g. `menotime-prod-`.
    pub prefix: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: Option<String>,
    state: Option<StateDetail>,
    previous_state: Option<StateDetail>,
}

#[derive(Deserialize)]
struct StateDetail {
    value: Option<String>,
    reason: Option<String>,
    timestamp: Option<String>,
}

/// CloudWatch's timestamp, `2026-11-26T09:00:00.000+0000`; RFC 3339 is accepted too.
pub fn parse_cloudwatch_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Checks an alarm event and normalises it. Anything not accepted is
/// [`Error::Rejected`] with a sentence saying why; nothing has been changed.
pub fn parse_alarm_event(event: &Value, site: AlarmSite<'_>) -> Result<AlarmChange, Error> {
    let envelope: EventBridgeEvent<Value> = serde_json::from_value(event.clone())
        .map_err(|e| Error::rejected(format!("not an EventBridge event ({e})")))?;
    if envelope.source != SOURCE_CLOUDWATCH || envelope.detail_type != DETAIL_ALARM {
        return Err(Error::rejected(format!(
            "source {:?} with detail-type {:?} is not a {SOURCE_CLOUDWATCH} \"{DETAIL_ALARM}\"",
            envelope.source, envelope.detail_type
        )));
    }
    let head = accept_envelope(&envelope, site.account, site.region)?;
    if !envelope.detail.is_object() {
        return Err(Error::rejected(format!(
            "{} event {} has no detail object",
            head.detail_type, head.id
        )));
    }
    let d: AlarmDetail = serde_json::from_value(envelope.detail.clone()).map_err(|e| {
        Error::rejected(format!(
            "{} event {} has a malformed detail: {e}",
            head.detail_type, head.id
        ))
    })?;
    let name = d
        .alarm_name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            Error::rejected(format!(
                "{} event {} is missing detail.alarmName",
                head.detail_type, head.id
            ))
        })?;
    // The alarm's ARN, when given, must be this account's and region's, and this alarm.
    if let Some(first) = envelope.resources.as_deref().unwrap_or_default().first() {
        let arn = Arn::parse(first).filter(|a| a.service == "cloudwatch");
        let Some(arn) = arn else {
            return Err(Error::rejected(format!(
                "{} event {} names {first:?}, which is not a CloudWatch alarm ARN",
                head.detail_type, head.id
            )));
        };
        if arn.account != site.account || arn.region != site.region {
            return Err(Error::rejected(format!(
                "{} event {} is about {first}, outside this function's account {} and region {}; refused",
                head.detail_type, head.id, site.account, site.region
            )));
        }
        if arn.resource != format!("alarm:{name}") {
            return Err(Error::rejected(format!(
                "{} event {} names alarm {name:?} but its resource is {first}",
                head.detail_type, head.id
            )));
        }
    }
    let suffix = name.strip_prefix(site.prefix).filter(|s| !s.is_empty());
    let Some(suffix) = suffix else {
        return Ok(AlarmChange::NotOurs {
            envelope: head,
            name,
        });
    };
    let kind = AlarmKind::from_suffix(suffix);
    let state = d.state.ok_or_else(|| {
        Error::rejected(format!(
            "{} event {} is missing detail.state",
            head.detail_type, head.id
        ))
    })?;
    let value = state.value.unwrap_or_default();
    let new_state = AlarmState::parse(&value).ok_or_else(|| {
        Error::rejected(format!(
            "{} event {} has state {value:?}; CloudWatch alarm states are OK, ALARM and INSUFFICIENT_DATA",
            head.detail_type, head.id
        ))
    })?;
    let at = state
        .timestamp
        .as_deref()
        .and_then(parse_cloudwatch_time)
        .unwrap_or(head.time);
    let previous = d
        .previous_state
        .and_then(|p| p.value)
        .and_then(|v| AlarmState::parse(&v));
    Ok(AlarmChange::Ours(AlarmEvent {
        envelope: head,
        name,
        kind,
        state: new_state,
        previous,
        reason: state.reason.unwrap_or_default(),
        at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SITE: AlarmSite<'static> = AlarmSite {
        account: "123456789012",
        region: "us-west-1",
        prefix: "menotime-prod-",
    };

    fn reference() -> Value {
        let path = format!(
            "{}/fixtures/reference/cloudwatch-alarm-state-change.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn cloudwatch_timestamps_parse() {
        assert_eq!(
            parse_cloudwatch_time("2026-11-26T09:00:00.000+0000"),
            Some(t("2026-11-26T09:00:00Z"))
        );
        assert_eq!(
            parse_cloudwatch_time("2026-11-26T09:00:00.123+0000"),
            Some(t("2026-11-26T09:00:00.123Z"))
        );
        // Another offset, without milliseconds, and RFC 3339 all mean the same instant.
        assert_eq!(
            parse_cloudwatch_time("2026-11-26T10:30:00+0130"),
            Some(t("2026-11-26T09:00:00Z"))
        );
        assert_eq!(
            parse_cloudwatch_time("2026-11-26T09:00:00Z"),
            Some(t("2026-11-26T09:00:00Z"))
        );
        assert_eq!(
            parse_cloudwatch_time("2026-11-26T09:00:00.000+00:00"),
            Some(t("2026-11-26T09:00:00Z"))
        );
        for bad in [
            "",
            "2026-11-26",
            "Nov 26, 2026 9:00 AM",
            "2026-11-26T09:00:00.000",
        ] {
            assert_eq!(parse_cloudwatch_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_reference_event_is_the_5xx_alarm_firing() {
        match parse_alarm_event(&reference(), SITE).unwrap() {
            AlarmChange::Ours(a) => {
                assert_eq!(a.name, "menotime-prod-5xx");
                assert_eq!(a.kind, AlarmKind::ServerErrors);
                assert_eq!(a.state, AlarmState::Alarm);
                assert_eq!(a.previous, Some(AlarmState::Ok));
                assert_eq!(a.at, t("2026-11-26T09:00:00Z"));
                assert!(a.reason.starts_with("Threshold Crossed"), "{}", a.reason);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_template_alarm_has_its_kind() {
        for suffix in TEMPLATE_ALARMS {
            let kind = AlarmKind::from_suffix(suffix);
            assert!(!matches!(kind, AlarmKind::Other(_)), "{suffix}");
            assert_eq!(kind.suffix(), suffix);
        }
        assert_eq!(
            AlarmKind::from_suffix("queue-depth"),
            AlarmKind::Other("queue-depth".into())
        );
    }

    fn renamed(name: &str) -> Value {
        let mut v = reference();
        v["detail"]["alarmName"] = json!(name);
        v["resources"] = json!([format!(
            "arn:aws:cloudwatch:us-west-1:123456789012:alarm:{name}"
        )]);
        v
    }

    #[test]
    fn an_alarm_without_the_prefix_is_not_ours() {
        for name in ["billing-5xx", "menotime-staging-5xx", "menotime-prod-"] {
            assert!(
                matches!(
                    parse_alarm_event(&renamed(name), SITE).unwrap(),
                    AlarmChange::NotOurs { .. }
                ),
                "{name}"
            );
        }
        // An unknown state of an alarm that is not ours does not matter.
        let mut v = renamed("billing-5xx");
        v["detail"]["state"]["value"] = json!("SOMETHING");
        assert!(matches!(
            parse_alarm_event(&v, SITE).unwrap(),
            AlarmChange::NotOurs { .. }
        ));
    }

    #[test]
    fn an_ok_and_a_missing_timestamp() {
        let mut v = reference();
        v["detail"]["state"]["value"] = json!("OK");
        v["detail"]["previousState"]["value"] = json!("ALARM");
        v["detail"]["state"]["timestamp"] = json!("yesterday");
        v["time"] = json!("2026-11-26T09:10:00Z");
        match parse_alarm_event(&v, SITE).unwrap() {
            AlarmChange::Ours(a) => {
                assert_eq!(a.state, AlarmState::Ok);
                assert_eq!(a.previous, Some(AlarmState::Alarm));
                assert_eq!(a.at, t("2026-11-26T09:10:00Z"), "the envelope's time");
            }
            other => panic!("{other:?}"),
        }
        v["detail"].as_object_mut().unwrap().remove("previousState");
        assert!(matches!(
            parse_alarm_event(&v, SITE).unwrap(),
            AlarmChange::Ours(AlarmEvent { previous: None, .. })
        ));
    }

    #[test]
    fn foreign_and_broken_alarm_events_are_refused() {
        let r = reference();
        let with = |pointer: &str, new: Value| {
            let mut v = r.clone();
            *v.pointer_mut(pointer).unwrap() = new;
            v
        };
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "account",
                with("/account", json!("999999999999")),
                "other accounts",
            ),
            (
                "region",
                with("/region", json!("eu-west-1")),
                "other regions",
            ),
            (
                "alarm of another account",
                with(
                    "/resources",
                    json!(["arn:aws:cloudwatch:us-west-1:999999999999:alarm:menotime-prod-5xx"]),
                ),
                "outside",
            ),
            (
                "alarm ARN of another alarm",
                with(
                    "/resources",
                    json!([
                        "arn:aws:cloudwatch:us-west-1:123456789012:alarm:menotime-prod-latency"
                    ]),
                ),
                "but its resource is",
            ),
            (
                "not an ARN",
                with("/resources", json!(["alarm"])),
                "not a CloudWatch alarm ARN",
            ),
            ("no name", with("/detail/alarmName", json!("")), "alarmName"),
            (
                "unknown state",
                with("/detail/state/value", json!("PANIC")),
                "PANIC",
            ),
            (
                "no state",
                with("/detail/state", json!(null)),
                "detail.state",
            ),
            (
                "detail type",
                with("/detail-type", json!("CloudWatch Alarm Config Change")),
                "is not",
            ),
            (
                "detail not an object",
                with("/detail", json!("{}")),
                "no detail object",
            ),
            (
                "wrong type",
                with("/detail/alarmName", json!(5)),
                "malformed",
            ),
        ];
        for (what, event, needle) in cases {
            let err = parse_alarm_event(&event, SITE).expect_err(what);
            assert!(matches!(err, Error::Rejected(_)), "{what}: {err:?}");
            assert!(err.to_string().contains(needle), "{what}: {err}");
        }
    }
}
