//! Results and reports: human-readable text, JSON and JUnit XML.

use std::fmt::Write as _;

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The implementation did what the requirements say.
    Passed,
    /// It did not; the message says what was expected and what happened.
    Failed(String),
    /// The case did not run: the implementation does not claim the capability it needs.
    Skipped(String),
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's name.
    pub name: &'static str,
    /// The requirement IDs the case checks.
    pub ids: &'static [&'static str],
    /// How it ended.
    pub outcome: Outcome,
}

/// The results of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    results: Vec<CaseResult>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a result.
    pub fn push(&mut self, result: CaseResult) {
        self.results.push(result);
    }

    /// Every result, in the order the cases ran.
    pub fn results(&self) -> &[CaseResult] {
        &self.results
    }

    /// `(passed, failed, skipped)`.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for result in &self.results {
            match result.outcome {
                Outcome::Passed => counts.0 += 1,
                Outcome::Failed(_) => counts.1 += 1,
                Outcome::Skipped(_) => counts.2 += 1,
            }
        }
        counts
    }

    /// Whether no case failed.
    pub fn is_success(&self) -> bool {
        self.counts().1 == 0
    }

    /// The requirement IDs of failed cases, sorted and unique.
    pub fn failed_ids(&self) -> Vec<&'static str> {
        let mut ids: Vec<&'static str> = self
            .results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .flat_map(|r| r.ids.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The closing line: `conformance: N passed, M failed, K skipped`.
    pub fn summary_line(&self) -> String {
        let (passed, failed, skipped) = self.counts();
        format!("conformance: {passed} passed, {failed} failed, {skipped} skipped")
    }

    /// The human-readable report, one line per case, ending with the summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for result in &self.results {
            let (mark, detail) = match &result.outcome {
                Outcome::Passed => ("PASS", String::new()),
                Outcome::Failed(why) => ("FAIL", format!("\n       {why}")),
                Outcome::Skipped(why) => ("SKIP", format!(" ({why})")),
            };
            let _ = writeln!(
                out,
                "{mark} {} [{}]{detail}",
                result.name,
                result.ids.join(", ")
            );
        }
        let _ = writeln!(out, "{}", self.summary_line());
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        let (passed, failed, skipped) = self.counts();
        let mut out = String::from("{\n  \"cases\": [\n");
        for (i, result) in self.results.iter().enumerate() {
            let (status, message) = match &result.outcome {
                Outcome::Passed => ("passed", None),
                Outcome::Failed(why) => ("failed", Some(why.as_str())),
                Outcome::Skipped(why) => ("skipped", Some(why.as_str())),
            };
            let ids: Vec<String> = result.ids.iter().map(|id| json_string(id)).collect();
            let _ = write!(
                out,
                "    {{\"name\": {}, \"requirements\": [{}], \"status\": \"{status}\"",
                json_string(result.name),
                ids.join(", ")
            );
            if let Some(message) = message {
                let _ = write!(out, ", \"message\": {}", json_string(message));
            }
            out.push('}');
            if i + 1 < self.results.len() {
                out.push(',');
            }
            out.push('\n');
        }
        let _ = write!(
            out,
            "  ],\n  \"passed\": {passed},\n  \"failed\": {failed},\n  \"skipped\": {skipped}\n}}\n"
        );
        out
    }

    /// The report as JUnit XML (one test case per case, the IDs in its name).
    pub fn to_junit(&self) -> String {
        let (_, failed, skipped) = self.counts();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuite name=\"rgi-conformance\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\">",
            self.results.len()
        );
        for result in &self.results {
            let name = xml_escape(&format!("{} [{}]", result.name, result.ids.join(", ")));
            match &result.outcome {
                Outcome::Passed => {
                    let _ = writeln!(out, "  <testcase classname=\"rgi\" name=\"{name}\"/>");
                }
                Outcome::Failed(why) => {
                    let _ = writeln!(
                        out,
                        "  <testcase classname=\"rgi\" name=\"{name}\"><failure message=\"{}\"/></testcase>",
                        xml_escape(why)
                    );
                }
                Outcome::Skipped(why) => {
                    let _ = writeln!(
                        out,
                        "  <testcase classname=\"rgi\" name=\"{name}\"><skipped message=\"{}\"/></testcase>",
                        xml_escape(why)
                    );
                }
            }
        }
        out.push_str("</testsuite>\n");
        out
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut report = Report::new();
        report.push(CaseResult {
            name: "ok",
            ids: &["HTTP-RESP-1"],
            outcome: Outcome::Passed,
        });
        report.push(CaseResult {
            name: "bad <\"quoted\">",
            ids: &["HTTP-FRAME-2", "HTTP-RESP-1"],
            outcome: Outcome::Failed("expected \"no body\"\ngot 5 bytes".into()),
        });
        report.push(CaseResult {
            name: "tls",
            ids: &["HTTP-CONN-4"],
            outcome: Outcome::Skipped("capability tls not claimed".into()),
        });
        report
    }

    #[test]
    fn summary_counts_every_outcome() {
        let report = sample();
        assert_eq!(report.counts(), (1, 1, 1));
        assert!(!report.is_success());
        assert_eq!(report.failed_ids(), ["HTTP-FRAME-2", "HTTP-RESP-1"]);
        assert!(
            report
                .to_text()
                .ends_with("conformance: 1 passed, 1 failed, 1 skipped\n")
        );
    }

    #[test]
    fn json_and_junit_escape_what_they_must() {
        let report = sample();
        let json = report.to_json();
        assert!(json.contains(r#""name": "bad <\"quoted\">""#), "{json}");
        assert!(json.contains(r#"\ngot 5 bytes"#));
        assert!(json.contains("\"failed\": 1"));
        let xml = report.to_junit();
        assert!(
            xml.contains("name=\"bad &lt;&quot;quoted&quot;&gt; [HTTP-FRAME-2, HTTP-RESP-1]\"")
        );
        assert!(xml.contains("failures=\"1\" skipped=\"1\""));
    }
}
