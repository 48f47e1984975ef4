//! The wake-up check of offhours-scaler: after a scale-up, the service must run the
//! tasks it was given within `OFFHOURS_WAKE_TIMEOUT_MINUTES`, or on-call hears of it
//! (`scale.failed`, a page in prod), and hears again when they run.
//!
//! The only state is the `menotime:offhours-wake` tag on the service
//! (docs/reference.md §3.9), written by the scale-up *before* it changes anything, so
//! that a scale-up that cannot be completed is caught by the same deadline as tasks that
//! cannot start. Every later invocation looks at it with [`check`]; it is never
//! overwritten while it is there (a retried scale-up keeps the first deadline), and it is
//! removed once the count is reached. The page follows deploy-notifier's two-phase
//! discipline: the tag says `state=paging` *before* the page is published and
//! `state=paged` after, so a page is never sent twice once it is known sent, and never
//! lost: any later invocation that finds `state=paging` (Lambda's retry, a redrive
//! under a new request id, the next reconcile) publishes it and confirms it. The
//! resolve is published *before* the tag is removed, for the same reason.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};

use super::offhours::{utc_second, Snapshot};
use super::service::Tagged;

/// Where a wake-up stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeState {
    /// Waiting for the tasks; nobody told yet.
    Waiting,
    /// The deadline passed and `scale.failed` is to be sent: recorded, not yet known
    /// to be published.
    Paging,
    /// `scale.failed` was published.
    Paged,
}

impl WakeState {
    pub fn as_str(self) -> &'static str {
        match self {
            WakeState::Waiting => "waiting",
            WakeState::Paging => "paging",
            WakeState::Paged => "paged",
        }
    }
}

/// The `menotime:offhours-wake` tag:
/// `since=2026-11-26T15:00:00Z desired=2 state=waiting`, and once overdue
/// `... state=paging at=2026-11-26T15:20:00Z request=<Lambda request id>`, then
/// `state=paged` once the page is published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wake {
    /// When the scale-up began; the deadline counts from here.
    pub since: DateTime<Utc>,
    /// The desired count the scale-up sets.
    pub desired: i32,
    pub state: WakeState,
    /// When the deadline was found passed (`state=paging` and `state=paged`).
    pub paged_at: Option<DateTime<Utc>>,
    /// The Lambda request id of the invocation that found it, for the logs (nothing
    /// decides on it: a redrive comes with a new one).
    pub request: Option<String>,
}

const WAKE_KEYS: &str = "since, desired, state, at, request";

impl Wake {
    /// A scale-up that begins at `since` and sets `desired` tasks.
    pub fn starting(since: DateTime<Utc>, desired: i32) -> Wake {
        Wake {
            since,
            desired,
            state: WakeState::Waiting,
            paged_at: None,
            request: None,
        }
    }

    /// The same wake-up, found overdue at `at` by `request`: the page recorded, to
    /// be published.
    pub fn paging(&self, at: DateTime<Utc>, request: &str) -> Wake {
        Wake {
            state: WakeState::Paging,
            paged_at: Some(at),
            request: Some(crate::tags::value(request)).filter(|r| !r.is_empty()),
            ..self.clone()
        }
    }

    /// The same wake-up, its page published.
    pub fn paged(&self) -> Wake {
        Wake {
            state: WakeState::Paged,
            ..self.clone()
        }
    }

    /// When the deadline passes.
    pub fn deadline(&self, timeout: TimeDelta) -> DateTime<Utc> {
        self.since.checked_add_signed(timeout).unwrap_or(self.since)
    }

    /// The tag value; only characters ECS allows, far below 256 for a Lambda request
    /// id. `parse(render(w)) == w` for a value `parse` accepts.
    pub fn render(&self) -> String {
        let mut fields = vec![
            format!("since={}", utc_second(self.since)),
            format!("desired={}", self.desired),
            format!("state={}", self.state.as_str()),
        ];
        if let Some(at) = self.paged_at {
            fields.push(format!("at={}", utc_second(at)));
        }
        if let Some(r) = &self.request {
            fields.push(format!("request={r}"));
        }
        fields.join(" ")
    }

    /// Reads the tag: `key=value` fields separated by spaces, in any order; `since`,
    /// `desired` and `state` required, `at` and `request` optional; unknown or repeated
    /// keys refused.
    pub fn parse(s: &str) -> Result<Wake, String> {
        let mut seen = BTreeSet::new();
        let (mut since, mut desired, mut state, mut paged_at, mut request) =
            (None, None, None, None, None);
        let time = |key: &str, v: &str| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("{key}=`{v}` is not an RFC 3339 time ({e})"))
        };
        for field in s.split_whitespace() {
            let Some((key, value)) = field.split_once('=') else {
                return Err(format!(
                    "`{field}` is not a key=value field (keys: {WAKE_KEYS})"
                ));
            };
            if !seen.insert(key) {
                return Err(format!("`{key}` is given twice"));
            }
            match key {
                "since" => since = Some(time(key, value)?),
                "at" => paged_at = Some(time(key, value)?),
                "desired" => {
                    desired = Some(
                        value
                            .parse::<i32>()
                            .ok()
                            .filter(|n| *n >= 0 && value.bytes().all(|b| b.is_ascii_digit()))
                            .ok_or_else(|| format!("desired=`{value}` is not a number of tasks"))?,
                    )
                }
                "state" => {
                    state = Some(match value {
                        "waiting" => WakeState::Waiting,
                        "paging" => WakeState::Paging,
                        "paged" => WakeState::Paged,
                        other => {
                            return Err(format!(
                                "state=`{other}` is not `waiting`, `paging` or `paged`"
                            ))
                        }
                    })
                }
                "request" => request = Some(value.to_owned()),
                other => return Err(format!("unknown key `{other}` (keys: {WAKE_KEYS})")),
            }
        }
        let (Some(since), Some(desired), Some(state)) = (since, desired, state) else {
            return Err(format!(
                "`since`, `desired` and `state` are required (keys: {WAKE_KEYS})"
            ));
        };
        Ok(Wake {
            since,
            desired,
            state,
            paged_at,
            request,
        })
    }
}

impl fmt::Display for Wake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// The service's counts as DescribeServices reported them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub desired: i32,
    pub running: i32,
}

/// What the check finds, and so what the invocation does about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// No wake-up to check.
    Nothing,
    /// Not reached yet, and the deadline has not passed: nothing to do.
    Waiting {
        wake: Wake,
        target: i32,
        deadline: DateTime<Utc>,
    },
    /// Reached: if it had paged (or recorded a page), resolve the page; then remove
    /// the tag.
    Reached { wake: Wake, target: i32 },
    /// The deadline passed: mark the tag `state=paging`, send `scale.failed`, then
    /// mark it `state=paged`.
    Overdue {
        wake: Wake,
        target: i32,
        deadline: DateTime<Utc>,
    },
    /// A page recorded and not known to be published (the invocation that recorded it
    /// failed before confirming it): publish it, then mark the tag `state=paged`.
    Resend {
        wake: Wake,
        target: i32,
        deadline: DateTime<Utc>,
    },
    /// Paged already and still not reached: nothing to do.
    StillPaged { wake: Wake, target: i32 },
    /// A tag nobody can read: removed, since only the scaler writes it; the check it
    /// held is lost.
    Unreadable { value: String, problem: String },
}

/// The count the wake-up waits for: the one the scale-up sets, while it has not
/// completed (its snapshot, saved before the wake-up began, is still there); after it,
/// the lower of that and the service's desired count now (an operator may lower it;
/// the next night does).
pub fn target(wake: &Wake, desired_now: i32, snapshot: Option<&Tagged<Snapshot>>) -> i32 {
    let pending = match snapshot {
        None => false,
        Some(Tagged::Read(s)) => s.saved.is_none_or(|saved| saved <= wake.since),
        Some(Tagged::Unreadable { .. }) => true,
    };
    if pending {
        wake.desired
    } else {
        wake.desired.min(desired_now)
    }
}

/// Looks at the wake-up tag at `now`: reached when the running count is at least
/// [`target`]; overdue once `timeout` has passed since it began.
pub fn check(
    tag: Option<&Tagged<Wake>>,
    counts: Counts,
    snapshot: Option<&Tagged<Snapshot>>,
    timeout: TimeDelta,
    now: DateTime<Utc>,
) -> Check {
    let wake = match tag {
        None => return Check::Nothing,
        Some(Tagged::Unreadable { value, problem }) => {
            return Check::Unreadable {
                value: value.clone(),
                problem: problem.clone(),
            }
        }
        Some(Tagged::Read(w)) => w.clone(),
    };
    let target = target(&wake, counts.desired, snapshot);
    let deadline = wake.deadline(timeout);
    if counts.running >= target {
        return Check::Reached { wake, target };
    }
    match wake.state {
        WakeState::Waiting if now >= deadline => Check::Overdue {
            wake,
            target,
            deadline,
        },
        WakeState::Waiting => Check::Waiting {
            wake,
            target,
            deadline,
        },
        WakeState::Paging => Check::Resend {
            wake,
            target,
            deadline,
        },
        WakeState::Paged => Check::StillPaged { wake, target },
    }
}

/// Whether a scale-up to `desired` tasks needs a wake-up check: it has tasks to start
/// (fewer run than it sets) and no check is under way (one never overwrites another:
/// a retried scale-up keeps the first deadline). A tag nobody can read is replaced.
pub fn needed(tag: Option<&Tagged<Wake>>, running: i32, desired: i32) -> bool {
    running < desired && !matches!(tag, Some(Tagged::Read(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn read(w: &Wake) -> Option<Tagged<Wake>> {
        Some(Tagged::Read(w.clone()))
    }

    fn snapshot(saved: &str) -> Option<Tagged<Snapshot>> {
        Some(Tagged::Read(
            Snapshot::parse(&format!("min=2 max=4 desired=2 saved={saved}")).unwrap(),
        ))
    }

    const MORNING: &str = "2026-11-26T15:00:00Z";

    fn counts(desired: i32, running: i32) -> Counts {
        Counts { desired, running }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        t(MORNING) + TimeDelta::minutes(minutes)
    }

    fn fifteen() -> TimeDelta {
        TimeDelta::minutes(15)
    }

    #[test]
    fn the_tag_round_trips() {
        let w = Wake::starting(t(MORNING), 2);
        assert_eq!(
            w.render(),
            "since=2026-11-26T15:00:00Z desired=2 state=waiting"
        );
        assert_eq!(Wake::parse(&w.render()), Ok(w.clone()));
        let p = w.paging(at(15), "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
        assert_eq!(
            p.render(),
            "since=2026-11-26T15:00:00Z desired=2 state=paging at=2026-11-26T15:15:00Z request=8476a536-e9f4-11e8-9739-2dfe598c3fcd"
        );
        assert_eq!(Wake::parse(&p.render()), Ok(p.clone()));
        assert_eq!(crate::tags::value(&p.render()), p.render());
        let sent = p.paged();
        assert_eq!(
            sent.render(),
            "since=2026-11-26T15:00:00Z desired=2 state=paged at=2026-11-26T15:15:00Z request=8476a536-e9f4-11e8-9739-2dfe598c3fcd"
        );
        assert_eq!(Wake::parse(&sent.render()), Ok(sent.clone()));
        // Any order.
        assert_eq!(
            Wake::parse("state=waiting desired=2 since=2026-11-26T15:00:00Z"),
            Ok(w)
        );
        for bad in [
            "",
            "since=2026-11-26T15:00:00Z desired=2",
            "since=yesterday desired=2 state=waiting",
            "since=2026-11-26T15:00:00Z desired=-1 state=waiting",
            "since=2026-11-26T15:00:00Z desired=+2 state=waiting",
            "since=2026-11-26T15:00:00Z desired=2 state=asleep",
            "since=2026-11-26T15:00:00Z desired=2 state=waiting colour=blue",
            "since=2026-11-26T15:00:00Z desired=2 desired=3 state=waiting",
            "since=2026-11-26T15:00:00Z,desired=2,state=waiting",
        ] {
            assert!(Wake::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reached_within_the_deadline_is_quiet_and_ends_the_check() {
        let w = Wake::starting(t(MORNING), 2);
        // The tasks are starting.
        assert_eq!(
            check(read(&w).as_ref(), counts(2, 1), None, fifteen(), at(5)),
            Check::Waiting {
                wake: w.clone(),
                target: 2,
                deadline: at(15)
            }
        );
        assert_eq!(
            check(read(&w).as_ref(), counts(2, 2), None, fifteen(), at(10)),
            Check::Reached {
                wake: w.clone(),
                target: 2
            }
        );
        // More than asked (the autoscaler grew it) is reached too.
        assert!(matches!(
            check(read(&w).as_ref(), counts(3, 3), None, fifteen(), at(10)),
            Check::Reached { .. }
        ));
        assert_eq!(
            check(None, counts(2, 0), None, fifteen(), at(60)),
            Check::Nothing
        );
    }

    #[test]
    fn overdue_pages_once_and_a_page_not_known_sent_is_sent_by_any_later_run() {
        let w = Wake::starting(t(MORNING), 2);
        // At the deadline exactly.
        assert_eq!(
            check(read(&w).as_ref(), counts(2, 1), None, fifteen(), at(15)),
            Check::Overdue {
                wake: w.clone(),
                target: 2,
                deadline: at(15)
            }
        );
        // Recorded, not confirmed: whoever comes next (a retry, a redrive, the next
        // reconcile) publishes it.
        let paging = w.paging(at(15), "r1");
        for minutes in [16, 20, 45] {
            assert_eq!(
                check(
                    read(&paging).as_ref(),
                    counts(2, 1),
                    None,
                    fifteen(),
                    at(minutes)
                ),
                Check::Resend {
                    wake: paging.clone(),
                    target: 2,
                    deadline: at(15)
                }
            );
        }
        // Reached with the page only recorded: it may have gone out, so it is resolved.
        assert!(matches!(
            check(
                read(&paging).as_ref(),
                counts(2, 2),
                None,
                fifteen(),
                at(30)
            ),
            Check::Reached { .. }
        ));
        // Confirmed: never again.
        let paged = paging.paged();
        assert!(matches!(
            check(read(&paged).as_ref(), counts(2, 1), None, fifteen(), at(20)),
            Check::StillPaged { .. }
        ));
        // Reached at last: the page is resolved.
        assert_eq!(
            check(read(&paged).as_ref(), counts(2, 2), None, fifteen(), at(40)),
            Check::Reached {
                wake: paged,
                target: 2
            }
        );
    }

    #[test]
    fn a_scale_up_that_did_not_complete_waits_for_its_own_count() {
        // The wake-up began at 15:00; the snapshot of the night (saved the evening
        // before) is still there: the restore has not completed, desired is still 1.
        let w = Wake::starting(t(MORNING), 2);
        let evening = snapshot("2026-11-26T04:00:00Z");
        assert_eq!(target(&w, 1, evening.as_ref()), 2);
        assert!(matches!(
            check(
                read(&w).as_ref(),
                counts(1, 1),
                evening.as_ref(),
                fifteen(),
                at(15)
            ),
            Check::Overdue { target: 2, .. }
        ));
        // Completed (no snapshot): the service's own count, if lower (an operator
        // lowered it after the scale-up).
        assert_eq!(target(&w, 1, None), 1);
        assert_eq!(target(&w, 3, None), 2);
        // The next night began (a newer snapshot): the night's count.
        let night = snapshot("2026-11-27T04:00:00Z");
        assert_eq!(target(&w, 1, night.as_ref()), 1);
        assert!(matches!(
            check(
                read(&w).as_ref(),
                counts(1, 1),
                night.as_ref(),
                fifteen(),
                at(13 * 60)
            ),
            Check::Reached { target: 1, .. }
        ));
        // A snapshot nobody can read: the restore cannot have completed.
        let broken = Some(Tagged::Unreadable {
            value: "x".into(),
            problem: "y".into(),
        });
        assert_eq!(target(&w, 1, broken.as_ref()), 2);
    }

    #[test]
    fn a_check_is_started_only_with_tasks_to_start_and_never_twice() {
        let w = Wake::starting(t(MORNING), 2);
        assert!(needed(None, 1, 2));
        assert!(!needed(None, 2, 2));
        assert!(!needed(None, 3, 2));
        assert!(
            !needed(read(&w).as_ref(), 1, 2),
            "a retry keeps the first deadline"
        );
        let broken = Some(Tagged::Unreadable {
            value: "x".into(),
            problem: "y".into(),
        });
        assert!(needed(broken.as_ref(), 1, 2));
        assert!(matches!(
            check(broken.as_ref(), counts(2, 1), None, fifteen(), at(1)),
            Check::Unreadable { .. }
        ));
    }
}
