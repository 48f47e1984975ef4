//! What a command prints: a table for people by default, one JSON document with
//! `--json` (docs/reference.md §7.3). Colour only on a terminal and never with
//! NO_COLOR set.

use std::fmt::Write as _;
use std::io::IsTerminal;

use serde_json::Value;

/// A command's result: the text for people and the machine form.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub human: String,
    pub json: Value,
}

/// ANSI colour, on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colour when stdout is a terminal and NO_COLOR is unset or empty
    /// (https://no-color.org).
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    pub const PLAIN: Style = Style { color: false };

    fn paint(self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    pub fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }

    /// Something that stops deployments or needs a human: FROZEN, an open incident.
    pub fn bad(self, s: &str) -> String {
        self.paint("1;31", s)
    }

    /// Worth a look: a rollout in progress, a hold.
    pub fn warn(self, s: &str) -> String {
        self.paint("33", s)
    }

    pub fn good(self, s: &str) -> String {
        self.paint("32", s)
    }
}

/// Builds the text for people: titled sections of aligned `label  value` rows.
#[derive(Debug)]
pub struct Page {
    style: Style,
    out: String,
}

impl Page {
    pub fn new(style: Style) -> Page {
        Page {
            style,
            out: String::new(),
        }
    }

    pub fn style(&self) -> Style {
        self.style
    }

    /// A line of its own (a headline, a sentence).
    pub fn line(&mut self, s: &str) -> &mut Self {
        let _ = writeln!(self.out, "{s}");
        self
    }

    /// A titled block of rows; the labels are aligned, values that span several
    /// lines are indented under the first.
    pub fn section(&mut self, title: &str, rows: &[(&str, String)]) -> &mut Self {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        let _ = writeln!(self.out, "{}", self.style.bold(title));
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            let mut lines = v.lines();
            let first = lines.next().unwrap_or_default();
            let _ = writeln!(self.out, "  {k:<width$}  {first}");
            for more in lines {
                let _ = writeln!(self.out, "  {:<width$}  {more}", "");
            }
        }
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Prints the report: the JSON document (pretty, one per run) or the text.
pub fn print(report: &Report, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.json).unwrap_or_else(|_| report.json.to_string())
        );
    } else {
        print!("{}", report.human);
        if !report.human.ends_with('\n') {
            println!();
        }
    }
}

/// `-` for nothing, for tables.
pub fn or_dash(v: Option<impl AsRef<str>>) -> String {
    v.map_or_else(|| "-".to_owned(), |s| s.as_ref().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_align_and_indent() {
        let mut p = Page::new(Style::PLAIN);
        p.section(
            "Service",
            &[
                ("name", "menotime-prod-service".into()),
                ("rollout state", "COMPLETED\nsecond line".into()),
            ],
        )
        .section("Freeze", &[("state", "not frozen".into())]);
        assert_eq!(
            p.finish(),
            "Service\n  name           menotime-prod-service\n  rollout state  COMPLETED\n                 second line\n\nFreeze\n  state  not frozen\n"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        assert_eq!(Style::PLAIN.bad("FROZEN"), "FROZEN");
        assert_eq!(
            Style { color: true }.bad("FROZEN"),
            "\x1b[1;31mFROZEN\x1b[0m"
        );
        assert_eq!(or_dash(None::<&str>), "-");
    }
}
