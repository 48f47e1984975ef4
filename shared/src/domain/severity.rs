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

/// What an approver reviewed: a count per severity (`reviewed-counts` of a Deploy
/// Approval, docs/reference.md §5.2). A severity left out was reviewed at 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReviewedCounts(BTreeMap<Severity, u64>);

impl ReviewedCounts {
    pub fn new(counts: impl IntoIterator<Item = (Severity, u64)>) -> Self {
        ReviewedCounts(counts.into_iter().collect())
    }

    /// Reads `{"MEDIUM": 2}`: keys are severities (any case), values non-negative
    /// integers. `Err` says what is wrong.
    pub fn from_json(v: &serde_json::Value) -> Result<Self, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| format!("{v} is not an object such as {{\"MEDIUM\": 2}}"))?;
        let mut out = BTreeMap::new();
        for (k, n) in obj {
            let sev = Severity::parse(k)
                .ok_or_else(|| format!("{k:?} is not a severity (CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNDEFINED)"))?;
            let n = n
                .as_u64()
                .ok_or_else(|| format!("{k} = {n} is not a non-negative integer"))?;
            out.insert(sev, n);
        }
        Ok(ReviewedCounts(out))
    }

    pub fn get(&self, s: Severity) -> u64 {
        self.0.get(&s).copied().unwrap_or(0)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(s, n)| (s.as_str().to_owned(), (*n).into()))
                .collect(),
        )
    }
}

/// `2 MEDIUM, 0 LOW`, or `nothing`.
impl fmt::Display for ReviewedCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing");
        }
        let parts: Vec<String> = self.0.iter().map(|(s, n)| format!("{n} {s}")).collect();
        f.write_str(&parts.join(", "))
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

    #[test]
    fn reviewed_counts_are_read_strictly() {
        let r = ReviewedCounts::from_json(&serde_json::json!({"medium": 2, "LOW": 0})).unwrap();
        assert_eq!(r.get(Severity::Medium), 2);
        assert_eq!(r.get(Severity::High), 0);
        assert_eq!(r.to_json(), serde_json::json!({"MEDIUM": 2, "LOW": 0}));
        assert_eq!(r.to_string(), "2 MEDIUM, 0 LOW");
        for bad in [
            serde_json::json!([]),
            serde_json::json!("MEDIUM=2"),
            serde_json::json!({"SEVERE": 1}),
            serde_json::json!({"MEDIUM": -1}),
            serde_json::json!({"MEDIUM": "2"}),
        ] {
            assert!(ReviewedCounts::from_json(&bad).is_err(), "{bad}");
        }
    }
}
