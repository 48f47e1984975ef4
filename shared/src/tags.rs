//! Resource tags: the state the functions keep on ECS resources (docs/reference.md §3) and the
//! provenance scan-gate writes on the revisions it registers.

/// On the service: present means scan-gate deploys nothing. Written by deploy-notifier.
pub const DEPLOY_FREEZE: &str = "menotime:deploy-freeze";
/// On the service: who lifted the last freeze, when and why, and what the freeze said.
/// Written by `menotime-ops unfreeze`; for people only.
pub const DEPLOY_UNFROZEN: &str = "menotime:deploy-unfrozen";
/// On the service: capacity saved at scale-down. Written by offhours-scaler.
pub const OFFHOURS_SNAPSHOT: &str = "menotime:offhours-snapshot";
/// On the service: `skip` makes the scaler leave the service alone, `skip-until=<UTC
/// time>` holds it at full capacity until then. Set by an operator (or
/// `menotime-ops offhours hold`).
pub const OFFHOURS: &str = "menotime:offhours";
/// On the service: a scale-up waiting for its tasks to run (see `domain::wake`).
/// Written and removed by offhours-scaler.
pub const OFFHOURS_WAKE: &str = "menotime:offhours-wake";

/// On the service: deploy-notifier's memory of a failed deployment's incident
/// (see `domain::incident`).
pub const DEPLOY_INCIDENT: &str = "menotime:deploy-incident";
/// On the service: deploy-notifier's memory of an impairment incident.
pub const SERVICE_INCIDENT: &str = "menotime:service-incident";

/// On the service: the last completed deployment, its revision and the way back,
/// written by deploy-notifier when the deployment completes; alarms within
/// `WATCH_MINUTES` of it are that deployment's regression (see `domain::watch`).
pub const DEPLOY_WATCH: &str = "menotime:deploy-watch";
/// On the service: deploy-notifier's memory of the alarm incident (a regression or a
/// service alarm), and of each alarm's last state change.
pub const ALARM_INCIDENT: &str = "menotime:alarm-incident";
/// On the service: which causes of tasks failing to start were already reported for
/// which deployment (see `domain::task_start`).
pub const TASK_START_INCIDENT: &str = "menotime:task-start-incident";

/// On a revision: the human tag of the image (the image itself is pinned by digest).
pub const IMAGE_TAG: &str = "menotime:image-tag";
/// On a revision: when the scan that cleared the image completed (RFC 3339).
pub const SCANNED_AT: &str = "menotime:scanned-at";
/// On a revision: the EventBridge event that led to it.
pub const SOURCE_EVENT: &str = "menotime:source-event";
/// On a revision: who approved an image held for review.
pub const APPROVED_BY: &str = "menotime:approved-by";

/// On a revision: the revision (`family:revision`) it replaced when scan-gate
/// deployed it, so a page about its failure names the exact way back.
pub const REPLACES: &str = "menotime:replaces";

/// On a revision: scan-gate deployed it (`deployment=<id> at=<time>`), written right
/// after UpdateService. A revision that carries it but no longer runs was left: rolled
/// back by the circuit breaker or by an operator, and never redeployed by automation.
pub const DEPLOYED: &str = "menotime:deployed";

/// On the service: an image cleared while another rollout was under way, waiting for
/// that rollout to complete (see `domain::deploy::Deferred`).
pub const DEPLOY_DEFERRED: &str = "menotime:deploy-deferred";

/// scan-gate's tags on revisions; they describe one image and never carry over.
pub const OWNED_ON_REVISIONS: [&str; 6] = [
    IMAGE_TAG,
    SCANNED_AT,
    SOURCE_EVENT,
    APPROVED_BY,
    REPLACES,
    DEPLOYED,
];

/// The longest tag value ECS accepts, in characters.
pub const MAX_VALUE: usize = 256;

/// A valid ECS tag value: letters, digits, spaces and `+ - = . _ : / @` only, at most
/// [`MAX_VALUE`] characters. Anything else becomes `_`.
pub fn value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " +-=._:/@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(MAX_VALUE)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tag_values_are_sanitised() {
        assert_eq!(super::value("j.doe@example.com"), "j.doe@example.com");
        assert_eq!(super::value("{\"json\": 1}"), "__json_: 1_");
        assert_eq!(super::value("ünï"), "_n_");
        assert_eq!(super::value(&"x".repeat(300)).len(), 256);
    }
}
