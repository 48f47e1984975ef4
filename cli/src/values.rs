//! The tag values the CLI writes (docs/reference.md §3), and how `status` reads the
//! free-text ones back for people: who set them, when, and why.

use chrono::{DateTime, Utc};
use serde::Serialize;

use menotime_shared::domain::offhours::OffhoursTag;
use menotime_shared::tags;

use crate::time::utc;

/// `by <who> at <UTC time>: <why>`: the value of `menotime:deploy-freeze` (and of
/// `menotime:deploy-unfrozen`) the CLI writes. Who and when come first, so that
/// cutting the value to the 256 characters ECS allows only ever shortens the reason;
/// characters ECS refuses become `_`.
pub fn stamped(who: &str, at: DateTime<Utc>, why: &str) -> String {
    tags::value(&format!(
        "by {} at {}: {}",
        one_line(who),
        utc(at),
        one_line(why)
    ))
}

/// `menotime:deploy-unfrozen`: who lifted the freeze, when, why, and what it said.
pub fn unfrozen(who: &str, at: DateTime<Utc>, why: &str, freeze: &str) -> String {
    stamped(who, at, &format!("{} - was: {freeze}", one_line(why)))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A free-text state value read for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stamp {
    /// The value as the tag holds it.
    pub value: String,
    /// Who set it: a person (the CLI's values), `deploy-notifier`, or unknown.
    pub by: Option<String>,
    /// When, as written in the value.
    pub at: Option<DateTime<Utc>>,
    /// Why.
    pub reason: Option<String>,
}

/// Reads a freeze (or unfreeze record): the CLI's `by <who> at <time>: <why>`,
/// deploy-notifier's `deployment <id> <failed|rollback> at <time>: <ECS reason>`, or
/// any other text an operator wrote (then only the value is known).
pub fn read_stamp(value: &str) -> Stamp {
    let unknown = Stamp {
        value: value.to_owned(),
        by: None,
        at: None,
        reason: None,
    };
    let (head, reason) = match value.split_once(": ") {
        Some(parts) => parts,
        None => return unknown,
    };
    let Some((who, at)) = head.rsplit_once(" at ") else {
        return unknown;
    };
    let Ok(at) = DateTime::parse_from_rfc3339(at) else {
        return unknown;
    };
    let at = Some(at.with_timezone(&Utc));
    if let Some(who) = who.strip_prefix("by ") {
        return Stamp {
            by: Some(who.to_owned()),
            at,
            reason: Some(reason.to_owned()),
            ..unknown
        };
    }
    if let Some(deployment) = who.strip_prefix("deployment ") {
        return Stamp {
            by: Some("deploy-notifier".to_owned()),
            at,
            reason: Some(format!("deployment {deployment}: {reason}")),
            ..unknown
        };
    }
    unknown
}

/// The off-hours hold the CLI writes: `skip-until=2026-12-01T18:00:00Z` (UTC, to the
/// second), the exact form of docs/reference.md §3.6.
pub fn hold(until: DateTime<Utc>) -> String {
    OffhoursTag::SkipUntil(until).render()
}

/// A `menotime:offhours` value as the CLI shows it (read as offhours-scaler reads it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OffhoursValue {
    /// `skip`: left alone until the tag is removed.
    Skip,
    /// `skip-until=<time>`: left alone until then.
    Until(DateTime<Utc>),
    /// Anything else: the scaler ignores it.
    Other(String),
}

pub fn read_exclusion(value: &str) -> OffhoursValue {
    match OffhoursTag::parse(value) {
        Ok(OffhoursTag::Skip) => OffhoursValue::Skip,
        Ok(OffhoursTag::SkipUntil(t)) => OffhoursValue::Until(t),
        Err(_) => OffhoursValue::Other(value.to_owned()),
    }
}

/// Who the caller is, from STS GetCallerIdentity's ARN: the session name of an
/// assumed role (which SSO sets to the user's name), the user name of an IAM user,
/// the federated user's name, or `root`.
pub fn caller_name(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let name = match resource.split_once('/') {
        Some(("assumed-role", rest)) => rest.rsplit('/').next()?,
        Some(("user" | "federated-user", rest)) => rest.rsplit('/').next()?,
        None if resource == "root" => "root",
        _ => return None,
    };
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn freeze_values_carry_who_when_and_why_within_what_ecs_allows() {
        let at = t("2026-11-26T10:30:12Z");
        let v = stamped("jdoe@example.com", at, "bad release, see INC-42 {\"x\"}");
        assert_eq!(
            v,
            "by jdoe@example.com at 2026-11-26T10:30:12Z: bad release_ see INC-42 __x__"
        );
        let s = read_stamp(&v);
        assert_eq!(s.by.as_deref(), Some("jdoe@example.com"));
        assert_eq!(s.at, Some(at));
        assert_eq!(s.reason.as_deref(), Some("bad release_ see INC-42 __x__"));
        // A long reason is cut, never who or when.
        let long = stamped("jdoe", at, &"x".repeat(400));
        assert_eq!(long.len(), 256);
        assert!(long.starts_with("by jdoe at 2026-11-26T10:30:12Z: xxx"));
        // Several lines become one.
        assert_eq!(
            stamped("Jane Doe", at, "one\ntwo"),
            "by Jane Doe at 2026-11-26T10:30:12Z: one two"
        );
        assert_eq!(
            read_stamp(&stamped("Jane Doe", at, "r")).by.as_deref(),
            Some("Jane Doe")
        );
    }

    #[test]
    fn deploy_notifiers_freeze_and_hand_written_ones_are_read() {
        let s = read_stamp(
            "deployment ecs-svc/42 failed at 2025-06-02T18:00:59Z: ECS deployment circuit breaker: task failed to start.",
        );
        assert_eq!(s.by.as_deref(), Some("deploy-notifier"));
        assert_eq!(s.at, Some(t("2025-06-02T18:00:59Z")));
        assert_eq!(
            s.reason.as_deref(),
            Some("deployment ecs-svc/42 failed: ECS deployment circuit breaker: task failed to start.")
        );
        let s = read_stamp("manual rollback by jdoe");
        assert_eq!((s.by, s.at, s.reason), (None, None, None));
        assert_eq!(s.value, "manual rollback by jdoe");
        assert_eq!(read_stamp("by x at yesterday: r").by, None);
    }

    #[test]
    fn unfreeze_records_keep_the_old_freeze() {
        let v = unfrozen(
            "jdoe",
            t("2026-11-26T11:00:00Z"),
            "fixed in v1.2.7",
            "by ann at 2026-11-26T10:00:00Z: bad",
        );
        assert_eq!(
            v,
            "by jdoe at 2026-11-26T11:00:00Z: fixed in v1.2.7 - was: by ann at 2026-11-26T10:00:00Z: bad"
        );
        assert_eq!(read_stamp(&v).by.as_deref(), Some("jdoe"));
    }

    #[test]
    fn holds_are_written_in_the_exact_form_and_read_back() {
        let until = t("2026-12-01T18:00:00Z");
        assert_eq!(hold(until), "skip-until=2026-12-01T18:00:00Z");
        assert_eq!(
            tags::value(&hold(until)),
            hold(until),
            "fits a tag as it is"
        );
        assert_eq!(read_exclusion(&hold(until)), OffhoursValue::Until(until));
        assert_eq!(read_exclusion(" SKIP "), OffhoursValue::Skip);
        assert_eq!(
            read_exclusion("skip-until=tomorrow"),
            OffhoursValue::Other("skip-until=tomorrow".into())
        );
    }

    #[test]
    fn caller_names() {
        assert_eq!(
            caller_name(
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Ops_1a2b/jdoe@example.com"
            )
            .as_deref(),
            Some("jdoe@example.com")
        );
        assert_eq!(
            caller_name("arn:aws:sts::123456789012:assumed-role/ops/menotime-operators/jdoe")
                .as_deref(),
            Some("jdoe")
        );
        assert_eq!(
            caller_name("arn:aws:iam::123456789012:user/ops/jdoe").as_deref(),
            Some("jdoe")
        );
        assert_eq!(
            caller_name("arn:aws:sts::123456789012:federated-user/ann").as_deref(),
            Some("ann")
        );
        assert_eq!(
            caller_name("arn:aws:iam::123456789012:root").as_deref(),
            Some("root")
        );
        assert_eq!(
            caller_name("arn:aws-cn:iam::123456789012:user/moto").as_deref(),
            Some("moto")
        );
        assert_eq!(caller_name("not an arn"), None);
        assert_eq!(caller_name("arn:aws:iam::123456789012:user/"), None);
    }
}
