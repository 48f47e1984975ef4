//! Properties of reconcile (`domain::reconcile`), for any window, holiday list,
//! off-hours tag (none, `skip`, a hold, a value nobody can read), snapshot, capacity and
//! instant:
//!
//! - its decision is idempotent: carried out, deciding again at the same instant
//!   changes nothing;
//! - it never lowers a service during uptime;
//! - it never leaves a (readable) snapshot behind during uptime;
//! - a late `scale-down` is stale exactly during uptime, unless forced.
//!
//! `PROPTEST_CASES` raises the number of cases (default 256 per property).
#![cfg(test)]

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use proptest::prelude::*;

use menotime_shared::domain::offhours::{
    Capacity, DownPlan, ScalableTarget, Snapshot, Suspended, Targets, UpPlan,
};
use menotime_shared::domain::reconcile::{self, Plan, Step};
use menotime_shared::domain::service::{ServiceTags, Tagged};
use menotime_shared::domain::uptime::{Holidays, Uptime, Window};
use menotime_shared::tags;

const ZONES: &[&str] = &[
    "UTC",
    "America/Los_Angeles",
    "Europe/Berlin",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
];
const DAYS: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// 2026-01-01T00:00:00Z.
const START: i64 = 1_767_225_600;
/// Two years of seconds.
const SPAN: i64 = 2 * 365 * 24 * 3600;

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0..SPAN).prop_map(|s| DateTime::from_timestamp(START + s, 0).unwrap())
}

/// One range `<Day>[-<Day>] HH:MM-HH:MM`, its times on the quarter hour or anywhere.
fn range() -> impl Strategy<Value = String> {
    (
        0..7usize,
        prop::option::of(0..7usize),
        0u16..1440,
        1u16..=1440,
        any::<bool>(),
    )
        .prop_map(|(first, last, a, b, quarter)| {
            let q = |m: u16| if quarter { m - m % 15 } else { m };
            let (mut start, mut end) = (q(a.min(b)), q(a.max(b)));
            if start >= end {
                if end < 1440 {
                    end = (start + 15).min(1440);
                } else {
                    start = 1425;
                }
            }
            let days = match last {
                Some(l) if l != first => format!("{}-{}", DAYS[first], DAYS[l]),
                _ => DAYS[first].to_owned(),
            };
            format!(
                "{days} {:02}:{:02}-{:02}:{:02}",
                start / 60,
                start % 60,
                end / 60,
                end % 60
            )
        })
}

fn window() -> impl Strategy<Value = Window> {
    (
        prop::collection::vec(range(), 1..4),
        prop::sample::select(ZONES),
        prop::collection::vec(0i64..730, 0..6),
    )
        .prop_map(|(ranges, zone, holidays)| {
            let text = ranges
                .iter()
                .map(|r| format!("{r} {zone}"))
                .collect::<Vec<_>>()
                .join(", ");
            let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
            Window {
                uptime: Uptime::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}")),
                holidays: holidays
                    .into_iter()
                    .map(|d| first + TimeDelta::days(d))
                    .collect::<Holidays>(),
            }
        })
}

fn capacity() -> impl Strategy<Value = Capacity> {
    (
        prop::option::of((0i32..6, 0i32..6, any::<[bool; 3]>())),
        0i32..10,
    )
        .prop_map(|(target, desired)| Capacity {
            target: target.map(|(a, b, [i, o, s])| ScalableTarget {
                min: a.min(b),
                max: a.max(b),
                suspended: Suspended {
                    dynamic_in: i,
                    dynamic_out: o,
                    scheduled: s,
                },
            }),
            desired,
        })
}

/// The `menotime:offhours` tag: none, `skip`, a hold around the window's years, or a
/// value nobody can read.
fn offhours_tag() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("skip".to_owned())),
        instant().prop_map(|t| Some(format!(
            "skip-until={}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))),
        prop::sample::select(vec!["skpi", "skip-until=tomorrow", "", "no"])
            .prop_map(|v| Some(v.to_owned())),
    ]
}

/// The snapshot tag: none, a day capacity saved, or a value nobody can read.
fn snapshot_tag() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        2 => capacity().prop_map(|c| Some(Snapshot::of(&c).render())),
        1 => Just(Some("min=2,max=4".to_owned())),
    ]
}

fn targets() -> impl Strategy<Value = (Targets, i32)> {
    (0i32..3, 0i32..3, 0i32..2).prop_map(|(min, extra, floor)| {
        (
            Targets {
                min_capacity: min.max(floor),
                desired_count: (min + extra).max(floor),
            },
            floor,
        )
    })
}

/// A service as reconcile sees it.
#[derive(Clone, Debug)]
struct Service {
    capacity: Capacity,
    tags: BTreeMap<String, String>,
}

impl Service {
    fn new(capacity: Capacity, snapshot: Option<String>, offhours: Option<String>) -> Service {
        let mut tags = BTreeMap::new();
        if let Some(s) = snapshot {
            tags.insert(tags::OFFHOURS_SNAPSHOT.to_owned(), s);
        }
        if let Some(o) = offhours {
            tags.insert(tags::OFFHOURS.to_owned(), o);
        }
        Service { capacity, tags }
    }

    fn read(&self) -> ServiceTags {
        ServiceTags::read(self.tags.clone())
    }

    fn plan(&self, w: &Window, (targets, floor): (Targets, i32), at: DateTime<Utc>) -> Plan {
        reconcile::plan(w, &self.read(), &self.capacity, None, targets, floor, at)
    }

    /// The service after the scaler carried out `plan` at `at`.
    fn apply(&self, plan: &Plan, at: DateTime<Utc>) -> Service {
        let mut next = self.clone();
        if plan.remove_expired_hold.is_some() {
            next.tags.remove(tags::OFFHOURS);
        }
        match &plan.step {
            Step::Down(DownPlan::Lower { save, to }) => {
                if let Some(s) = save {
                    next.tags
                        .insert(tags::OFFHOURS_SNAPSHOT.to_owned(), s.saved_at(at).render());
                }
                next.capacity = *to;
            }
            Step::Up(UpPlan::Restore { to, .. }) => {
                next.tags.remove(tags::OFFHOURS_SNAPSHOT);
                next.capacity = *to;
            }
            _ => {}
        }
        next
    }

    fn has_readable_snapshot(&self) -> bool {
        matches!(self.read().offhours_snapshot, Some(Tagged::Read(_)))
    }
}

fn service() -> impl Strategy<Value = Service> {
    (capacity(), snapshot_tag(), offhours_tag()).prop_map(|(c, s, o)| Service::new(c, s, o))
}

proptest! {
    #[test]
    fn carried_out_the_decision_leaves_nothing_more_to_do(
        w in window(), s in service(), t in targets(), at in instant(),
    ) {
        let first = s.plan(&w, t, at);
        let after = s.apply(&first, at);
        let again = after.plan(&w, t, at);
        prop_assert!(
            !again.changes_anything(),
            "first {:?}\nthen {:?}\nservice {:?} -> {:?}", first, again, s, after
        );
    }

    #[test]
    fn never_lowers_a_service_during_uptime(
        w in window(), s in service(), t in targets(), at in instant(),
    ) {
        let plan = s.plan(&w, t, at);
        prop_assert_eq!(plan.moment.up, w.is_up(at));
        if plan.moment.up {
            prop_assert!(
                !matches!(plan.step, Step::Down(DownPlan::Lower { .. })),
                "{:?}", plan
            );
            // A restore gives back what was saved: the desired count only ever goes
            // down to fit the restored maximum.
            let after = s.apply(&plan, at);
            let ceiling = after.capacity.target.map_or(i32::MAX, |t| t.max);
            prop_assert!(
                after.capacity.desired >= s.capacity.desired.min(ceiling),
                "{:?} -> {:?}", s.capacity, after.capacity
            );
        }
    }

    #[test]
    fn never_leaves_a_snapshot_behind_during_uptime(
        w in window(), s in service(), t in targets(), at in instant(),
    ) {
        let plan = s.plan(&w, t, at);
        if plan.moment.up && s.has_readable_snapshot() {
            let after = s.apply(&plan, at);
            prop_assert!(!after.has_readable_snapshot(), "{:?}", plan);
        }
    }

    #[test]
    fn a_late_scale_down_is_stale_exactly_during_uptime(
        w in window(), at in instant(), force in any::<bool>(),
    ) {
        let stale = reconcile::stale_scale_down(Some(&w), at, force, None).is_some();
        prop_assert_eq!(stale, w.is_up(at) && !force);
    }

    #[test]
    fn the_next_change_is_what_the_plan_says(
        w in window(), s in service(), t in targets(), at in instant(),
    ) {
        let plan = s.plan(&w, t, at);
        if let Some(next) = &plan.next {
            prop_assert!(next.at > at);
            prop_assert_eq!(next.up, w.is_up(next.at));
            // Nothing changes in the window between now and then.
            if let Some(change) = w.next_change(at) {
                prop_assert!(next.at <= change);
            }
            // Carried out, the plan at that instant wants what `next` said.
            let after = s.apply(&plan, at);
            let then = after.plan(&w, t, next.at);
            prop_assert_eq!(&then.intent, &next.intent);
        }
    }
}
