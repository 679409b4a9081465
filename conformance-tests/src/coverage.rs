//! Which cases cover which requirements.

use std::collections::BTreeMap;

use crate::spec::{Level, Requirement};

/// A requirement and the cases that check it.
#[derive(Debug, Clone)]
pub struct Coverage {
    /// The requirement.
    pub requirement: Requirement,
    /// The names of the cases that cite it.
    pub cases: Vec<&'static str>,
}

/// Every case of the suite, of every mode, as (name, cited requirement IDs).
pub fn all_cases() -> Vec<(&'static str, &'static [&'static str])> {
    let mut cases: Vec<(&'static str, &'static [&'static str])> = crate::server::cases()
        .iter()
        .map(|case| (case.name, case.ids))
        .collect();
    cases.extend(crate::server::tls::cases());
    cases.extend(crate::spawn::case_ids());
    cases.extend(crate::app::CASES);
    cases.extend(crate::app::MIDDLEWARE_CASES);
    cases.extend(crate::interface::cases());
    cases.extend(crate::declare::all_cases());
    cases
}

/// Maps every requirement of `requirements` to the cases (name, cited IDs) that cite it.
pub fn coverage(
    requirements: &[Requirement],
    cases: &[(&'static str, &'static [&'static str])],
) -> Vec<Coverage> {
    let mut by_id: BTreeMap<&str, Vec<&'static str>> = BTreeMap::new();
    for (name, ids) in cases {
        for id in *ids {
            by_id.entry(id).or_default().push(name);
        }
    }
    requirements
        .iter()
        .map(|requirement| Coverage {
            requirement: requirement.clone(),
            cases: by_id
                .get(requirement.id.as_str())
                .cloned()
                .unwrap_or_default(),
        })
        .collect()
}

/// The text of `rgi-conformance requirements`: one line per requirement, then a summary.
pub fn render(coverage: &[Coverage]) -> String {
    let mut out = String::new();
    let mut uncovered_must = 0;
    let mut uncovered = 0;
    for entry in coverage {
        let r = &entry.requirement;
        let status = if entry.cases.is_empty() {
            uncovered += 1;
            if r.level == Level::Must {
                uncovered_must += 1;
            }
            "UNCOVERED".to_owned()
        } else {
            entry.cases.join("; ")
        };
        out.push_str(&format!(
            "{:<16} {:<6} {:<7} {}\n",
            r.id, r.level, r.side, status
        ));
    }
    out.push_str(&format!(
        "requirements: {} total, {} covered, {} uncovered ({} of them MUST)\n",
        coverage.len(),
        coverage.len() - uncovered,
        uncovered,
        uncovered_must
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Side, requirements};

    #[test]
    fn uncovered_requirements_are_flagged() {
        let reqs =
            requirements("**[HTTP-RESP-1]** (server) MUST a.\n**[HTTP-RESP-2]** (app) SHOULD b.");
        let table = coverage(&reqs, &[("case one", &["HTTP-RESP-1"])]);
        assert_eq!(table[0].cases, ["case one"]);
        assert!(table[1].cases.is_empty());
        assert_eq!(table[1].requirement.side, Side::App);
        let text = render(&table);
        assert!(text.contains("HTTP-RESP-2"));
        assert!(text.contains("UNCOVERED"));
        assert!(text.ends_with("requirements: 2 total, 1 covered, 1 uncovered (0 of them MUST)\n"));
    }
}
