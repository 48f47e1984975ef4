//! Reconcile: what the declared window (`OFFHOURS_UPTIME`, `OFFHOURS_HOLIDAYS`) and the
//! service's off-hours tags say the service should be at one instant, and what it takes
//! to get there, as pure functions. offhours-scaler carries them out for
//! `{"action": "reconcile"}`; anything that wants to show what the scaler will do next
//! and when (an operator's `plan`) calls [`plan`] with the same inputs.
//!
//! The decision needs no capacity, only the instant and the tags ([`intent`]); the
//! capacity then decides how it is carried out ([`step`], through
//! [`offhours::plan_down`], [`offhours::plan_keep_down`] and [`offhours::plan_up`]).
//!
//! | `menotime:offhours` | snapshot | day | night |
//! |---|---|---|---|
//! | none, or a hold that ended | none | leave (day) | **lower** |
//! | none, or a hold that ended | saved | **restore** | keep down (finish a lowering a run could not complete) |
//! | `skip` | none | leave (excluded) | leave (excluded) |
//! | `skip` | saved | **restore** (its day begins) | leave (excluded) |
//! | `skip-until=` not ended | none | leave (held) | leave (held) |
//! | `skip-until=` not ended | saved | **restore** (held) | **restore** (held) |
//! | a value nobody can read | none | leave (day) | blocked |
//! | a value nobody can read | saved | **restore** | blocked |
//! | any | a snapshot nobody can read | blocked | blocked |
//!
//! So reconcile never lowers a service during uptime, never leaves a readable snapshot
//! behind during uptime, and what it does, done, leaves nothing more to do at the same
//! instant (the property tests in `shared/tests/reconcile.rs` check all three).

use chrono::{DateTime, NaiveDate, Timelike, Utc};

use super::offhours::{self, Capacity, DownPlan, Exclusion, SkipReason, Snapshot, Targets, UpPlan};
use super::service::{Rollout, ServiceTags, Tagged};
use super::uptime::Window;
use crate::tags;

/// What the window says at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moment {
    pub at: DateTime<Utc>,
    /// Day (`true`) or night.
    pub up: bool,
    /// The local date, when it is a holiday (night all day).
    pub holiday: Option<NaiveDate>,
    /// When day turns to night or back next; `None` for a window that does not change
    /// within a year.
    pub next_change: Option<DateTime<Utc>>,
}

impl Moment {
    pub fn of(window: &Window, at: DateTime<Utc>) -> Moment {
        Moment {
            at,
            up: window.is_up(at),
            holiday: window.holiday_at(at),
            next_change: window.next_change(at),
        }
    }
}

/// Why a snapshot is given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreWhy {
    /// It is day.
    Day,
    /// A hold keeps the service at full capacity until `until`, night or day.
    Held { until: DateTime<Utc> },
}

/// Why there is nothing to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leave {
    /// Day, and nothing is saved: the service is at its daytime capacity.
    Day,
    /// `menotime:offhours=skip`, and nothing to give back now.
    Excluded,
    /// A hold, and nothing saved: the service is at full capacity until `until`.
    Held { until: DateTime<Utc> },
}

/// A tag nobody can read stands in the way: nothing changes until a human fixes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// The snapshot cannot be read: restoring a guess would be worse than asking.
    Snapshot { value: String, problem: String },
    /// The `menotime:offhours` value cannot be read at night: it may be a hold written
    /// wrong, so the service is neither lowered nor restored.
    Exclusion { value: String, problem: String },
}

impl Blocked {
    /// The tag in question.
    pub fn tag(&self) -> &'static str {
        match self {
            Blocked::Snapshot { .. } => tags::OFFHOURS_SNAPSHOT,
            Blocked::Exclusion { .. } => tags::OFFHOURS,
        }
    }

    /// What is wrong and what to do, for people.
    pub fn problem(&self) -> String {
        match self {
            Blocked::Snapshot { value, problem } => format!(
                "the service's tag {} has the value `{value}`, which cannot be read: {problem}. \
                 The tag was left as it is and nothing was changed. Fix it to the daytime \
                 capacity (e.g. `min=2 max=4 desired=2`), or restore the service by hand and \
                 remove the tag",
                tags::OFFHOURS_SNAPSHOT
            ),
            Blocked::Exclusion { value, problem } => offhours::unreadable_exclusion(value, problem),
        }
    }
}

/// What reconcile wants, from the instant and the tags alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Night, nothing saved: scale down ([`offhours::plan_down`] says how, or that the
    /// service is already at its night capacity).
    Lower,
    /// Night, a snapshot saved: finish a lowering that a run could not complete, and
    /// nothing else ([`offhours::plan_keep_down`]).
    KeepDown,
    /// A snapshot to give back ([`offhours::plan_up`]).
    Restore(RestoreWhy),
    Leave(Leave),
    Blocked(Blocked),
}

/// The decision table of the module documentation. `up`: day or night now;
/// `snapshot`: the `menotime:offhours-snapshot` tag as read; `exclusion`: what the
/// `menotime:offhours` tag means now ([`Exclusion::at`]).
pub fn intent(up: bool, snapshot: Option<&Tagged<Snapshot>>, exclusion: &Exclusion) -> Intent {
    let saved = match snapshot {
        Some(Tagged::Unreadable { value, problem }) => {
            return Intent::Blocked(Blocked::Snapshot {
                value: value.clone(),
                problem: problem.clone(),
            })
        }
        Some(Tagged::Read(_)) => true,
        None => false,
    };
    match (exclusion, saved, up) {
        (Exclusion::Held { until }, true, _) => Intent::Restore(RestoreWhy::Held { until: *until }),
        (Exclusion::Held { until }, false, _) => Intent::Leave(Leave::Held { until: *until }),
        (Exclusion::Skip, true, true) => Intent::Restore(RestoreWhy::Day),
        (Exclusion::Skip, _, _) => Intent::Leave(Leave::Excluded),
        (Exclusion::Unreadable { .. }, true, true) => Intent::Restore(RestoreWhy::Day),
        (Exclusion::Unreadable { .. }, false, true) => Intent::Leave(Leave::Day),
        (Exclusion::Unreadable { value, problem }, _, false) => {
            Intent::Blocked(Blocked::Exclusion {
                value: value.clone(),
                problem: problem.clone(),
            })
        }
        (Exclusion::None | Exclusion::Expired { .. }, true, true) => {
            Intent::Restore(RestoreWhy::Day)
        }
        (Exclusion::None | Exclusion::Expired { .. }, true, false) => Intent::KeepDown,
        (Exclusion::None | Exclusion::Expired { .. }, false, true) => Intent::Leave(Leave::Day),
        (Exclusion::None | Exclusion::Expired { .. }, false, false) => Intent::Lower,
    }
}

/// What carrying out an intent does to the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Down(DownPlan),
    Up(UpPlan),
    Leave(Leave),
    Blocked(Blocked),
}

impl Step {
    /// Whether it changes the service's capacity or snapshot.
    pub fn changes_capacity(&self) -> bool {
        matches!(
            self,
            Step::Down(DownPlan::Lower { .. }) | Step::Up(UpPlan::Restore { .. })
        )
    }
}

/// How `intent` is carried out on a service at `current` capacity.
pub fn step(
    intent: &Intent,
    current: &Capacity,
    snapshot: Option<&Tagged<Snapshot>>,
    exclusion: &Exclusion,
    rollout: Option<Rollout>,
    targets: Targets,
    floor: i32,
) -> Step {
    match intent {
        Intent::Lower => Step::Down(offhours::plan_down(
            current, snapshot, exclusion, rollout, targets, floor,
        )),
        Intent::KeepDown => Step::Down(offhours::plan_keep_down(current, rollout, targets, floor)),
        Intent::Restore(_) => Step::Up(offhours::plan_up(current, snapshot, exclusion)),
        Intent::Leave(l) => Step::Leave(*l),
        Intent::Blocked(b) => Step::Blocked(b.clone()),
    }
}

/// The next instant at which what reconcile sees changes, and what it will want then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Next {
    pub at: DateTime<Utc>,
    /// The window's day or night then.
    pub up: bool,
    pub intent: Intent,
}

/// Reconcile's whole decision for one service at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub moment: Moment,
    /// What the `menotime:offhours` tag means now.
    pub exclusion: Exclusion,
    pub intent: Intent,
    pub step: Step,
    /// A hold that has ended, whose tag reconcile removes (saying so).
    pub remove_expired_hold: Option<DateTime<Utc>>,
    /// When what reconcile sees changes next (the window turns, or a hold ends), and
    /// what it will want then, if the tags change only by this plan.
    pub next: Option<Next>,
}

impl Plan {
    /// Whether carrying it out changes anything (capacity, snapshot, or the tag of an
    /// ended hold).
    pub fn changes_anything(&self) -> bool {
        self.step.changes_capacity() || self.remove_expired_hold.is_some()
    }
}

/// Reconcile for a service with `tags` at `current` capacity, at `at`: what the window
/// says, what reconcile wants, how it is carried out, and what comes next. `rollout`,
/// `targets` and `floor` as for [`offhours::plan_down`].
pub fn plan(
    window: &Window,
    tags: &ServiceTags,
    current: &Capacity,
    rollout: Option<Rollout>,
    targets: Targets,
    floor: i32,
    at: DateTime<Utc>,
) -> Plan {
    let moment = Moment::of(window, at);
    let exclusion = Exclusion::at(tags.offhours.as_ref(), at);
    let snapshot = tags.offhours_snapshot.as_ref();
    let intent = intent(moment.up, snapshot, &exclusion);
    let step = step(
        &intent, current, snapshot, &exclusion, rollout, targets, floor,
    );
    let next = next(window, tags, &moment, &exclusion, &step);
    Plan {
        remove_expired_hold: exclusion.expired(),
        moment,
        exclusion,
        intent,
        step,
        next,
    }
}

/// The next change after `moment`: the window's, or the end of a hold if sooner.
fn next(
    window: &Window,
    tags: &ServiceTags,
    moment: &Moment,
    exclusion: &Exclusion,
    step: &Step,
) -> Option<Next> {
    let hold_ends = match exclusion {
        Exclusion::Held { until } => Some(*until),
        _ => None,
    };
    let at = match (moment.next_change, hold_ends) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    // The snapshot after this step.
    let snapshot = match step {
        Step::Down(DownPlan::Lower { save: Some(s), .. }) => Some(Tagged::Read(*s)),
        Step::Up(UpPlan::Restore { .. }) => None,
        _ => tags.offhours_snapshot.clone(),
    };
    // An ended hold is removed by this plan.
    let exclusion = match exclusion {
        Exclusion::Expired { .. } => Exclusion::None,
        _ => Exclusion::at(tags.offhours.as_ref(), at),
    };
    let up = window.is_up(at);
    Some(Next {
        at,
        up,
        intent: intent(up, snapshot.as_ref(), &exclusion),
    })
}

/// A `scale-down` sent explicitly is stale when it arrives during uptime (a late or
/// redriven delivery would lower the service in business hours), unless it says
/// `"force": true`. Without a window the scheduled actions are trusted.
/// `scheduled` is the input's `scheduledTime`, named in the notification.
pub fn stale_scale_down(
    window: Option<&Window>,
    at: DateTime<Utc>,
    force: bool,
    scheduled: Option<DateTime<Utc>>,
) -> Option<SkipReason> {
    let window = window?;
    (window.is_up(at) && !force).then_some(SkipReason::Stale { scheduled })
}

/// How often the template's schedule runs reconcile: every five minutes, on the five
/// minutes (`cron(0/5 * * * ? *)`), so a window edge on a five-minute mark is met
/// exactly and a missed or failed run heals at the next one.
pub const PERIOD_MINUTES: i64 = 5;

/// Whether a run at `at` reminds people of a problem reconcile cannot fix by itself (a
/// tag nobody can read, a rollout in the way): in the first [`PERIOD_MINUTES`] of each
/// hour, where the schedule runs once, so the reminder comes once an hour instead of at
/// every run.
pub fn reminds(at: DateTime<Utc>) -> bool {
    i64::from(at.minute()) < PERIOD_MINUTES
}

/// Whether `at` is the first run of the schedule after the window changed (day turned
/// to night or back less than [`PERIOD_MINUTES`] ago): where a reconcile that changes
/// nothing (a dry run, a problem it cannot fix) says so first.
pub fn first_run_after_change(window: &Window, at: DateTime<Utc>) -> bool {
    window
        .previous_change(at)
        .is_some_and(|c| at - c < chrono::TimeDelta::minutes(PERIOD_MINUTES))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::offhours::{OffhoursTag, ScalableTarget, Suspended};
    use crate::domain::uptime::{Holidays, Uptime};
    use std::collections::BTreeMap;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn window(holidays: &str) -> Window {
        Window {
            uptime: Uptime::parse("Mon-Fri 07:00-20:00 America/Los_Angeles").unwrap(),
            holidays: Holidays::parse(holidays).unwrap(),
        }
    }

    // 2026-11-23 is a Monday; 07:00 PST is 15:00Z, 20:00 PST 04:00Z the next day.
    const MONDAY_NOON: &str = "2026-11-23T20:00:00Z";
    const MONDAY_EVENING: &str = "2026-11-24T04:05:00Z";

    fn cap(min: i32, max: i32, desired: i32) -> Capacity {
        Capacity {
            target: Some(ScalableTarget {
                min,
                max,
                suspended: Suspended::NONE,
            }),
            desired,
        }
    }

    const PROD: Targets = Targets {
        min_capacity: 1,
        desired_count: 1,
    };

    fn tags(snapshot: Option<&str>, offhours: Option<&str>) -> ServiceTags {
        let mut raw = BTreeMap::new();
        if let Some(s) = snapshot {
            raw.insert(tags::OFFHOURS_SNAPSHOT.to_owned(), s.to_owned());
        }
        if let Some(o) = offhours {
            raw.insert(tags::OFFHOURS.to_owned(), o.to_owned());
        }
        ServiceTags::read(raw)
    }

    fn plan_at(
        at: &str,
        snapshot: Option<&str>,
        offhours: Option<&str>,
        current: Capacity,
    ) -> Plan {
        plan(
            &window(""),
            &tags(snapshot, offhours),
            &current,
            None,
            PROD,
            1,
            t(at),
        )
    }

    const SAVED: &str = "min=2 max=4 desired=2 suspended=none saved=2026-11-21T04:00:00Z";

    #[test]
    fn the_decision_table() {
        let day = true;
        let night = false;
        let read = |v: &str| Tagged::Read(Snapshot::parse(v).unwrap());
        let saved = Some(read(SAVED));
        let broken = Some(Tagged::Unreadable {
            value: "min=2,max=4".to_owned(),
            problem: "p".to_owned(),
        });
        let until = t("2026-11-24T06:00:00Z");
        let held = Exclusion::Held { until };
        let expired = Exclusion::Expired { until };
        let garbage = Exclusion::Unreadable {
            value: "skpi".into(),
            problem: "p".into(),
        };
        use Intent::*;
        let cases: Vec<(&Exclusion, &Option<Tagged<Snapshot>>, bool, Intent)> = vec![
            (&Exclusion::None, &None, day, Leave(super::Leave::Day)),
            (&Exclusion::None, &None, night, Lower),
            (&Exclusion::None, &saved, day, Restore(RestoreWhy::Day)),
            (&Exclusion::None, &saved, night, KeepDown),
            (&expired, &None, night, Lower),
            (&expired, &saved, day, Restore(RestoreWhy::Day)),
            (&Exclusion::Skip, &None, day, Leave(super::Leave::Excluded)),
            (
                &Exclusion::Skip,
                &None,
                night,
                Leave(super::Leave::Excluded),
            ),
            (&Exclusion::Skip, &saved, day, Restore(RestoreWhy::Day)),
            (
                &Exclusion::Skip,
                &saved,
                night,
                Leave(super::Leave::Excluded),
            ),
            (&held, &None, day, Leave(super::Leave::Held { until })),
            (&held, &None, night, Leave(super::Leave::Held { until })),
            (&held, &saved, day, Restore(RestoreWhy::Held { until })),
            (&held, &saved, night, Restore(RestoreWhy::Held { until })),
            (&garbage, &None, day, Leave(super::Leave::Day)),
            (&garbage, &saved, day, Restore(RestoreWhy::Day)),
        ];
        for (exclusion, snapshot, up, want) in cases {
            assert_eq!(
                intent(up, snapshot.as_ref(), exclusion),
                want,
                "{exclusion:?} {snapshot:?} up={up}"
            );
        }
        for up in [day, night] {
            for exclusion in [&Exclusion::None, &Exclusion::Skip, &held, &garbage] {
                assert!(matches!(
                    intent(up, broken.as_ref(), exclusion),
                    Blocked(super::Blocked::Snapshot { .. })
                ));
            }
        }
        for snapshot in [&None, &saved] {
            assert!(matches!(
                intent(night, snapshot.as_ref(), &garbage),
                Blocked(super::Blocked::Exclusion { .. })
            ));
        }
    }

    #[test]
    fn a_weekday_evening_lowers_and_the_morning_restores() {
        let p = plan_at(MONDAY_EVENING, None, None, cap(2, 4, 2));
        assert!(!p.moment.up);
        assert_eq!(p.moment.next_change, Some(t("2026-11-24T15:00:00Z")));
        let Step::Down(DownPlan::Lower {
            save: Some(save),
            to,
        }) = &p.step
        else {
            panic!("{p:?}")
        };
        assert_eq!(*to, cap(1, 4, 1));
        // What comes next: Tuesday 07:00, restore what this run saves.
        assert_eq!(
            p.next,
            Some(Next {
                at: t("2026-11-24T15:00:00Z"),
                up: true,
                intent: Intent::Restore(RestoreWhy::Day)
            })
        );
        let morning = plan_at(
            "2026-11-24T15:00:00Z",
            Some(&save.saved_at(t(MONDAY_EVENING)).render()),
            None,
            cap(1, 4, 1),
        );
        assert!(
            matches!(&morning.step, Step::Up(UpPlan::Restore { to, .. }) if *to == cap(2, 4, 2))
        );
        // At noon, nothing: the tags and the time are enough to know it.
        let noon = plan_at(MONDAY_NOON, None, None, cap(2, 4, 2));
        assert_eq!(noon.step, Step::Leave(Leave::Day));
        assert!(!noon.changes_anything());
        assert_eq!(noon.next.map(|n| n.intent), Some(Intent::Lower));
    }

    #[test]
    fn a_holiday_is_night_all_day() {
        // Thanksgiving, Thursday 2026-11-26, at noon.
        let w = window("2026-11-26");
        let at = t("2026-11-26T20:00:00Z");
        let p = plan(&w, &tags(None, None), &cap(2, 4, 2), None, PROD, 1, at);
        assert_eq!(p.moment.holiday, NaiveDate::from_ymd_opt(2026, 11, 26));
        assert!(!p.moment.up);
        assert!(matches!(p.step, Step::Down(DownPlan::Lower { .. })));
        // The night lasts from Wednesday 20:00 to Friday 07:00.
        assert_eq!(p.moment.next_change, Some(t("2026-11-27T15:00:00Z")));
    }

    #[test]
    fn a_hold_restores_at_night_then_ends_and_its_tag_goes() {
        let hold = "skip-until=2026-11-24T06:00:00Z"; // Monday 22:00 PST
                                                      // Monday 20:05 PST, held, down since an earlier scale-down: restored now.
        let p = plan_at(MONDAY_EVENING, Some(SAVED), Some(hold), cap(1, 4, 1));
        assert_eq!(
            p.intent,
            Intent::Restore(RestoreWhy::Held {
                until: t("2026-11-24T06:00:00Z")
            })
        );
        assert!(p.step.changes_capacity());
        // The next change is the hold's end (before the window's), when it lowers.
        assert_eq!(
            p.next,
            Some(Next {
                at: t("2026-11-24T06:00:00Z"),
                up: false,
                intent: Intent::Lower
            })
        );
        // At 22:00 the hold has ended: lowered, and the tag removed.
        let p = plan_at("2026-11-24T06:00:00Z", None, Some(hold), cap(2, 4, 2));
        assert_eq!(p.remove_expired_hold, Some(t("2026-11-24T06:00:00Z")));
        assert!(matches!(p.step, Step::Down(DownPlan::Lower { .. })));
        // An ended hold during the day: nothing but the tag to remove.
        let p = plan_at("2026-11-24T20:00:00Z", None, Some(hold), cap(2, 4, 2));
        assert_eq!(p.step, Step::Leave(Leave::Day));
        assert!(p.changes_anything());
    }

    #[test]
    fn a_rollout_postpones_the_lowering_only() {
        let rollout = Rollout {
            deployment: "ecs-svc/1".into(),
            state: "IN_PROGRESS".into(),
        };
        let p = plan(
            &window(""),
            &tags(None, None),
            &cap(2, 4, 2),
            Some(rollout.clone()),
            PROD,
            1,
            t(MONDAY_EVENING),
        );
        assert_eq!(p.step, Step::Down(DownPlan::Postpone(rollout.clone())));
        let p = plan(
            &window(""),
            &tags(Some(SAVED), None),
            &cap(1, 4, 1),
            Some(rollout),
            PROD,
            1,
            t("2026-11-24T15:00:00Z"),
        );
        assert!(matches!(p.step, Step::Up(UpPlan::Restore { .. })));
    }

    #[test]
    fn a_late_scale_down_is_stale_during_uptime_unless_forced() {
        let w = window("");
        let scheduled = Some(t("2026-11-21T04:00:00Z"));
        assert_eq!(
            stale_scale_down(Some(&w), t(MONDAY_NOON), false, scheduled),
            Some(SkipReason::Stale { scheduled })
        );
        assert_eq!(
            stale_scale_down(Some(&w), t(MONDAY_NOON), true, scheduled),
            None
        );
        assert_eq!(
            stale_scale_down(Some(&w), t(MONDAY_EVENING), false, scheduled),
            None
        );
        assert_eq!(
            stale_scale_down(None, t(MONDAY_NOON), false, scheduled),
            None
        );
        // It names the time it was scheduled for.
        let text = SkipReason::Stale { scheduled }.to_string();
        assert!(text.contains("2026-11-21T04:00:00Z"), "{text}");
        assert!(text.contains("\"force\": true"), "{text}");
    }

    #[test]
    fn reminders_come_once_an_hour() {
        assert!(reminds(t("2026-11-24T04:00:00Z")));
        assert!(reminds(t("2026-11-24T04:04:59Z")));
        assert!(!reminds(t("2026-11-24T04:05:00Z")));
        assert!(!reminds(t("2026-11-24T04:55:00Z")));
        let runs = (0..12)
            .map(|i| t("2026-11-24T04:00:00Z") + chrono::TimeDelta::minutes(5 * i))
            .filter(|at| reminds(*at))
            .count();
        assert_eq!(runs, 1);
    }

    #[test]
    fn blocked_says_which_tag_and_what_to_do() {
        let p = plan_at(
            MONDAY_EVENING,
            None,
            Some("skip-until=tomorrow"),
            cap(2, 4, 2),
        );
        let Step::Blocked(b) = &p.step else {
            panic!("{p:?}")
        };
        assert_eq!(b.tag(), "menotime:offhours");
        assert!(
            b.problem().contains("`skip-until=tomorrow`"),
            "{}",
            b.problem()
        );
        let p = plan_at(MONDAY_NOON, Some("min=2,max=4"), None, cap(1, 4, 1));
        let Step::Blocked(b) = &p.step else {
            panic!("{p:?}")
        };
        assert_eq!(b.tag(), "menotime:offhours-snapshot");
        assert!(b.problem().contains("`min=2,max=4`"), "{}", b.problem());
        // The hold tag parsed by the tags is the one the CLI writes.
        assert_eq!(
            tags(None, Some("skip-until=2026-12-01T18:00:00Z")).offhours,
            Some(Tagged::Read(OffhoursTag::SkipUntil(t(
                "2026-12-01T18:00:00Z"
            ))))
        );
    }
}
