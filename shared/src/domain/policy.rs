//! The manual's image-scanning rule as a pure function: Critical/High block, Medium
//! needs manual review, Low is logged.

use std::collections::BTreeSet;
use std::fmt;

use super::severity::{ReviewedCounts, Severity, SeverityCounts};

/// Why the gate stopped (or held) an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// `count` findings of a configured severity.
    Count(Severity, u64),
    /// The scanner does not report these configured severities separately, and `count`
    /// findings have no severity in the event: they may be any of them.
    Unreported {
        severities: Vec<Severity>,
        count: u64,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Count(s, n) => write!(f, "{n} {s}"),
            Finding::Unreported { severities, count } => {
                let names: Vec<&str> = severities.iter().map(|s| s.as_str()).collect();
                write!(
                    f,
                    "{count} of unreported severity (may be {})",
                    names.join("/")
                )
            }
        }
    }
}

pub fn describe(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Nothing configured was found: the image may be deployed.
    Pass,
    /// Review severities found (or blocking ones the scanner cannot rule out): a human
    /// approves with a "Deploy Approval" event.
    Review(Vec<Finding>),
    /// Blocking severities found: never deployed, not even with an approval.
    Block(Vec<Finding>),
}

/// Decide on a scan.
///
/// `approved`: a human has reviewed this image ("Deploy Approval"), which waives the
/// review severities, never the blocking ones.
///
/// A blocking severity the scanner does not report on its own (Inspector2 has no LOW)
/// cannot be ruled out while findings of unreported severity exist; that holds the
/// image for review rather than blocking it on a guess or passing it on one.
pub fn gate(
    counts: &SeverityCounts,
    block: &BTreeSet<Severity>,
    review: &BTreeSet<Severity>,
    approved: bool,
) -> Gate {
    let found = |set: &BTreeSet<Severity>| -> Vec<Finding> {
        set.iter()
            .filter(|s| counts.get(**s) > 0)
            .map(|s| Finding::Count(*s, counts.get(*s)))
            .collect()
    };
    let unreported = |set: &BTreeSet<Severity>| -> Option<Finding> {
        let severities: Vec<Severity> = set
            .iter()
            .copied()
            .filter(|s| !counts.reports(*s))
            .collect();
        (!severities.is_empty() && counts.unclassified() > 0).then(|| Finding::Unreported {
            severities,
            count: counts.unclassified(),
        })
    };

    let blocking = found(block);
    if !blocking.is_empty() {
        return Gate::Block(blocking);
    }
    let mut held = Vec::new();
    if let Some(f) = unreported(block) {
        held.push(f);
    }
    if !approved {
        held.extend(found(review));
        if held.is_empty() {
            held.extend(unreported(review));
        }
    }
    if held.is_empty() {
        Gate::Pass
    } else {
        Gate::Review(held)
    }
}

/// A review severity whose count grew past what the approver reviewed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grown {
    pub severity: Severity,
    pub now: u64,
    pub reviewed: u64,
}

impl fmt::Display for Grown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} now, {} reviewed",
            self.now, self.severity, self.reviewed
        )
    }
}

/// An approval covers the image only while, for every review severity, the current
/// count is no higher than the reviewed one; the severities that grew, if any.
/// (Blocking severities are never waived, whatever was reviewed: see [`gate`].)
pub fn approval_not_covering(
    counts: &SeverityCounts,
    reviewed: &ReviewedCounts,
    review: &BTreeSet<Severity>,
) -> Vec<Grown> {
    review
        .iter()
        .filter(|s| counts.get(**s) > reviewed.get(**s))
        .map(|s| Grown {
            severity: *s,
            now: counts.get(*s),
            reviewed: reviewed.get(*s),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Severity::*;

    fn set(s: &[Severity]) -> BTreeSet<Severity> {
        s.iter().copied().collect()
    }

    fn basic(c: &[(Severity, u64)]) -> SeverityCounts {
        SeverityCounts::complete(c.iter().copied(), 0)
    }

    fn default_gate(c: &SeverityCounts, approved: bool) -> Gate {
        gate(c, &set(&[Critical, High]), &set(&[Medium]), approved)
    }

    #[test]
    fn critical_or_high_blocks_even_when_approved() {
        for approved in [false, true] {
            assert_eq!(
                default_gate(&basic(&[(Critical, 1), (Medium, 9)]), approved),
                Gate::Block(vec![Finding::Count(Critical, 1)])
            );
            assert_eq!(
                default_gate(&basic(&[(High, 2), (Low, 3)]), approved),
                Gate::Block(vec![Finding::Count(High, 2)])
            );
        }
        assert_eq!(
            default_gate(&basic(&[(Critical, 1), (High, 2)]), false),
            Gate::Block(vec![Finding::Count(Critical, 1), Finding::Count(High, 2)])
        );
    }

    #[test]
    fn medium_needs_review_unless_approved() {
        let c = basic(&[(Medium, 2), (Low, 5)]);
        assert_eq!(
            default_gate(&c, false),
            Gate::Review(vec![Finding::Count(Medium, 2)])
        );
        assert_eq!(default_gate(&c, true), Gate::Pass);
    }

    #[test]
    fn low_informational_and_undefined_pass() {
        assert_eq!(
            default_gate(
                &basic(&[(Low, 3), (Informational, 4), (Undefined, 1)]),
                false
            ),
            Gate::Pass
        );
        assert_eq!(default_gate(&basic(&[]), false), Gate::Pass);
    }

    #[test]
    fn configured_lists_are_respected() {
        let c = basic(&[(Low, 1)]);
        assert_eq!(
            gate(&c, &set(&[Critical, High, Medium]), &set(&[Low]), false),
            Gate::Review(vec![Finding::Count(Low, 1)])
        );
        assert_eq!(
            gate(&c, &set(&[Critical, Low]), &set(&[]), false),
            Gate::Block(vec![Finding::Count(Low, 1)])
        );
        assert_eq!(
            gate(&basic(&[(Medium, 1)]), &set(&[Critical]), &set(&[]), false),
            Gate::Pass
        );
    }

    #[test]
    fn unreported_severities_are_never_assumed_zero() {
        // Inspector2: CRITICAL, HIGH, MEDIUM and a TOTAL; 3 findings of other severities.
        let inspector = SeverityCounts::partial([Critical, High, Medium], [], 3);
        assert_eq!(
            default_gate(&inspector, false),
            Gate::Pass,
            "LOW is not configured"
        );
        let held = gate(&inspector, &set(&[Critical, Low]), &set(&[Medium]), false);
        assert_eq!(
            held,
            Gate::Review(vec![Finding::Unreported {
                severities: vec![Low],
                count: 3
            }])
        );
        assert_eq!(
            held,
            gate(&inspector, &set(&[Critical, Low]), &set(&[Medium]), true),
            "approval cannot rule LOW out"
        );
        let review = gate(&inspector, &set(&[Critical]), &set(&[Low]), false);
        assert_eq!(
            review,
            Gate::Review(vec![Finding::Unreported {
                severities: vec![Low],
                count: 3
            }])
        );
        assert_eq!(
            gate(&inspector, &set(&[Critical]), &set(&[Low]), true),
            Gate::Pass
        );
        let clean = SeverityCounts::partial([Critical, High, Medium], [], 0);
        assert_eq!(
            gate(&clean, &set(&[Critical, Low]), &set(&[]), false),
            Gate::Pass
        );
    }

    #[test]
    fn findings_read_well() {
        assert_eq!(
            describe(&[
                Finding::Count(Critical, 1),
                Finding::Unreported {
                    severities: vec![Low, Informational],
                    count: 2
                }
            ]),
            "1 CRITICAL, 2 of unreported severity (may be LOW/INFORMATIONAL)"
        );
    }

    #[test]
    fn an_approval_covers_only_what_was_reviewed() {
        let review = set(&[Medium, Low]);
        let reviewed = ReviewedCounts::new([(Medium, 2)]);
        assert!(
            approval_not_covering(&basic(&[(Medium, 2), (High, 1)]), &reviewed, &review).is_empty()
        );
        assert!(approval_not_covering(&basic(&[(Medium, 1)]), &reviewed, &review).is_empty());
        assert_eq!(
            approval_not_covering(
                &basic(&[(Medium, 3), (Low, 1), (Informational, 9)]),
                &reviewed,
                &review
            ),
            vec![
                Grown {
                    severity: Medium,
                    now: 3,
                    reviewed: 2
                },
                Grown {
                    severity: Low,
                    now: 1,
                    reviewed: 0
                }
            ]
        );
    }
}
