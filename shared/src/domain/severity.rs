//! CVE severities and the counts scanners report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// ECR's finding severities, most severe first (so a `BTreeSet` lists them in that order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Informational,
    Undefined,
}

impl Severity {
    pub const ALL: [Severity; 6] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Informational,
        Severity::Undefined,
    ];

    /// Case-insensitive; `INFO` is accepted for `INFORMATIONAL`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" => Some(Self::Critical),
            "HIGH" => Some(Self::High),
            "MEDIUM" => Some(Self::Medium),
            "LOW" => Some(Self::Low),
            "INFORMATIONAL" | "INFO" => Some(Self::Informational),
            "UNDEFINED" => Some(Self::Undefined),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "CRITICAL",
            Self::High => "HIGH",
            Self::Medium => "MEDIUM",
            Self::Low => "LOW",
            Self::Informational => "INFORMATIONAL",
            Self::Undefined => "UNDEFINED",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Finding counts from one scan, normalised across scanners.
///
/// Basic scanning omits severities with no findings, so a reported severity that is
/// absent counts 0. Enhanced scanning (Inspector2) reports only CRITICAL, HIGH and
/// MEDIUM plus a TOTAL: the remainder is `unclassified`, findings whose severity the
/// event does not tell (LOW, INFORMATIONAL, UNTRIAGED...). The policy treats them with
/// care instead of pretending they are 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeverityCounts {
    counts: BTreeMap<Severity, u64>,
    reported: BTreeSet<Severity>,
    unclassified: u64,
}

impl SeverityCounts {
    /// Counts from a scanner that reports every severity (basic scanning, the ECR API).
    pub fn complete(counts: impl IntoIterator<Item = (Severity, u64)>, unclassified: u64) -> Self {
        Self::partial(Severity::ALL, counts, unclassified)
    }

    /// Counts from a scanner that reports only `reported` severities.
    pub fn partial(
        reported: impl IntoIterator<Item = Severity>,
        counts: impl IntoIterator<Item = (Severity, u64)>,
        unclassified: u64,
    ) -> Self {
        let reported: BTreeSet<Severity> = reported.into_iter().collect();
        let mut map = BTreeMap::new();
        for (s, n) in counts {
            if n > 0 {
                *map.entry(s).or_insert(0) += n;
            }
        }
        Self {
            counts: map,
            reported,
            unclassified,
        }
    }

    pub fn get(&self, s: Severity) -> u64 {
        self.counts.get(&s).copied().unwrap_or(0)
    }

    /// Whether the scanner tells this severity apart at all.
    pub fn reports(&self, s: Severity) -> bool {
        self.reported.contains(&s)
    }

    pub fn unclassified(&self) -> u64 {
        self.unclassified
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum::<u64>() + self.unclassified
    }

    /// Non-zero counts, most severe first.
    pub fn nonzero(&self) -> impl Iterator<Item = (Severity, u64)> + '_ {
        self.counts.iter().map(|(s, n)| (*s, *n))
    }

    /// `{"CRITICAL":1,"HIGH":2}` plus `UNCLASSIFIED` when some findings have no severity
    /// in the event; zero counts are left out.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (s, n) in self.nonzero() {
            m.insert(s.as_str().into(), n.into());
        }
        if self.unclassified > 0 {
            m.insert("UNCLASSIFIED".into(), self.unclassified.into());
        }
        serde_json::Value::Object(m)
    }
}

/// `1 CRITICAL, 2 HIGH` or `no findings`.
impl fmt::Display for SeverityCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.nonzero().map(|(s, n)| format!("{n} {s}")).collect();
        if self.unclassified > 0 {
            parts.push(format!("{} of unreported severity", self.unclassified));
        }
        if parts.is_empty() {
            f.write_str("no findings")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_case_insensitive_and_ordered() {
        assert_eq!(Severity::parse("critical"), Some(Severity::Critical));
        assert_eq!(Severity::parse(" Info "), Some(Severity::Informational));
        assert_eq!(Severity::parse("UNTRIAGED"), None);
        assert!(Severity::Critical < Severity::Low);
    }

    #[test]
    fn missing_and_zero_counts_are_zero() {
        let c = SeverityCounts::complete([(Severity::Critical, 0), (Severity::Medium, 9)], 0);
        assert_eq!(c.get(Severity::Critical), 0);
        assert_eq!(c.get(Severity::High), 0);
        assert_eq!(c.get(Severity::Medium), 9);
        assert_eq!(c.to_string(), "9 MEDIUM");
        assert_eq!(c.to_json(), serde_json::json!({"MEDIUM": 9}));
    }

    #[test]
    fn display() {
        let c = SeverityCounts::partial(
            [Severity::Critical, Severity::High, Severity::Medium],
            [(Severity::High, 2), (Severity::Critical, 1)],
            3,
        );
        assert_eq!(
            c.to_string(),
            "1 CRITICAL, 2 HIGH, 3 of unreported severity"
        );
        assert_eq!(c.total(), 6);
        assert!(!c.reports(Severity::Low));
        assert_eq!(SeverityCounts::complete([], 0).to_string(), "no findings");
    }
}
