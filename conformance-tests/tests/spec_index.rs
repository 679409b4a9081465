//! SPEC.md's requirement index (Appendix A) agrees with what checks each requirement:
//!
//! - every requirement the index gives to the suite (`suite`, `app-suite` in "Checked by") is
//!   cited by at least one case, and every MUST is covered by some case (what
//!   `rgi-conformance requirements --strict` checks);
//! - `lint` is marked for exactly the IDs a `rgi_test::Lint` rule reports (the string literals
//!   of `crates/rgi-test/src/lint/`, outside its unit tests);
//! - the index lists every requirement of the text, in document order, with the same side,
//!   known check kinds and the right counts per area-topic.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use rgi_conformance::coverage::{all_cases, coverage};
use rgi_conformance::spec::{self, Level};

/// Appendix A of SPEC.md, the requirement index.
fn appendix() -> &'static str {
    let (_, appendix) = spec::SPEC_TEXT
        .split_once("## Appendix A. Requirement index")
        .expect("SPEC.md has Appendix A");
    appendix
}

/// The IDs of Appendix A's index whose "Checked by" cell names one of `checks`.
fn checked_by(checks: &[&str]) -> BTreeSet<String> {
    index_rows(appendix())
        .into_iter()
        .filter(|(_, checked)| checked.split('+').any(|check| checks.contains(&check)))
        .map(|(entry, _)| entry.id)
        .collect()
}

#[test]
fn every_requirement_the_index_gives_to_the_suite_has_a_case() {
    let cited: BTreeSet<&str> = all_cases()
        .iter()
        .flat_map(|(_, ids)| ids.iter().copied())
        .collect();
    let claimed = checked_by(&["suite", "app-suite"]);
    assert!(claimed.len() > 100, "only {} found", claimed.len());
    let missing: Vec<&String> = claimed
        .iter()
        .filter(|id| !cited.contains(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "SPEC.md's index says the suite checks these, but no case cites them: {missing:?}"
    );
}

#[test]
fn every_must_is_covered_by_a_case() {
    let requirements = spec::requirements(spec::SPEC_TEXT);
    let uncovered: Vec<String> = coverage(&requirements, &all_cases())
        .into_iter()
        .filter(|entry| entry.cases.is_empty() && entry.requirement.level == Level::Must)
        .map(|entry| entry.requirement.id)
        .collect();
    assert!(uncovered.is_empty(), "MUSTs no case covers: {uncovered:?}");
}

#[test]
fn cases_cite_only_requirements_of_the_spec() {
    let defined: BTreeSet<String> = spec::requirements(spec::SPEC_TEXT)
        .into_iter()
        .map(|requirement| requirement.id)
        .collect();
    for (name, ids) in all_cases() {
        for id in ids {
            assert!(
                defined.contains(*id),
                "{name:?} cites {id}, which SPEC.md does not define"
            );
        }
    }
}

/// The IDs quoted as string literals in `source` before its `#[cfg(test)]` module.
fn reported_ids(source: &str) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    code.split('"')
        .skip(1)
        .step_by(2)
        .filter(|literal| spec::is_id(literal))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_index_marks_lint_for_exactly_the_ids_lint_reports() {
    let lint = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/rgi-test/src/lint");
    let mut reported = BTreeSet::new();
    for entry in fs::read_dir(&lint).expect("rgi-test's src/lint is readable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let source = fs::read_to_string(&path).expect("a lint source is readable");
            reported.extend(reported_ids(&source));
        }
    }
    assert!(reported.len() > 30, "only {} IDs found", reported.len());
    let marked = checked_by(&["lint"]);
    let unmarked: Vec<&String> = reported.difference(&marked).collect();
    let unreported: Vec<&String> = marked.difference(&reported).collect();
    assert!(
        unmarked.is_empty() && unreported.is_empty(),
        "Lint reports IDs the index does not mark `lint`: {unmarked:?}; the index marks \
         `lint` for IDs no Lint rule reports: {unreported:?}"
    );
}

#[test]
fn reported_ids_are_string_literals_outside_tests() {
    let source =
        "fn f() { flag(\"HTTP-RESP-2\"); } // HTTP-RESP-3\n#[cfg(test)]\nmod t { \"HTTP-RESP-4\" }";
    assert_eq!(
        reported_ids(source).into_iter().collect::<Vec<_>>(),
        ["HTTP-RESP-2"]
    );
}

/// One requirement as the spec's text or Appendix A's index gives it.
#[derive(Debug, PartialEq)]
struct Entry {
    id: String,
    /// `server`, `app` or `both`; `None` for a withdrawn ID.
    side: Option<String>,
}

/// The requirements in document order, from their definitions (`**[ID]** (side)`) and the
/// withdrawn IDs (`` - `ID` — withdrawn ``), up to Appendix A.
fn definitions_in_order(body: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("- `") {
            if let Some((id, tail)) = rest.split_once('`') {
                if tail.starts_with(" — withdrawn") && spec::is_id(id) {
                    entries.push(Entry {
                        id: id.to_owned(),
                        side: None,
                    });
                }
            }
        }
        for piece in line.split("**[").skip(1) {
            let Some((id, tail)) = piece.split_once("]**") else {
                continue;
            };
            if !spec::is_id(id) {
                continue;
            }
            let side = tail
                .strip_prefix(" (")
                .and_then(|tail| tail.split_once(')'))
                .map(|(side, _)| side.to_owned());
            assert!(side.is_some(), "{id} is defined without its side");
            entries.push(Entry {
                id: id.to_owned(),
                side,
            });
        }
    }
    entries
}

/// The rows of Appendix A's index: `| `ID` | side | checked by | summary |`.
fn index_rows(appendix: &str) -> Vec<(Entry, String)> {
    appendix
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let id = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            if cells.len() != 6 || !spec::is_id(id) {
                return None;
            }
            let side = (cells[2] != "—").then(|| cells[2].to_owned());
            Some((
                Entry {
                    id: id.to_owned(),
                    side,
                },
                cells[3].to_owned(),
            ))
        })
        .collect()
}

#[test]
fn requirement_index_lists_every_requirement_in_document_order() {
    let body = &spec::SPEC_TEXT[..spec::SPEC_TEXT.len() - appendix().len()];
    let defined = definitions_in_order(body);
    let rows = index_rows(appendix());
    let listed: Vec<&Entry> = rows.iter().map(|(entry, _)| entry).collect();
    let defined_refs: Vec<&Entry> = defined.iter().collect();
    if let Some(at) =
        (0..defined.len().max(rows.len())).find(|&i| defined_refs.get(i) != listed.get(i))
    {
        panic!(
            "Appendix A differs from the text at position {at}: the text has {:?}, the index {:?}",
            defined_refs.get(at),
            listed.get(at)
        );
    }

    const CHECKS: [&str; 6] = ["suite", "app-suite", "lint", "unit", "type", "doc"];
    for (entry, checked_by) in &rows {
        let known = match entry.side {
            None => checked_by == "—",
            Some(_) => checked_by.split('+').all(|check| CHECKS.contains(&check)),
        };
        assert!(known, "{}: unknown \"Checked by\" {checked_by:?}", entry.id);
    }
}

#[test]
fn requirement_index_counts_match_its_rows() {
    let mut counted: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (entry, _) in index_rows(appendix()) {
        let topic = entry.id[..entry.id.rfind('-').expect("an ID has dashes")].to_owned();
        let (active, withdrawn) = counted.entry(topic).or_default();
        match entry.side {
            Some(_) => *active += 1,
            None => *withdrawn += 1,
        }
    }
    let count_text = |(active, withdrawn): (usize, usize)| match withdrawn {
        0 => active.to_string(),
        n => format!("{active} (and {n} withdrawn)"),
    };

    let mut stated = BTreeMap::new();
    let mut total = None;
    for line in appendix().lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() != 4 {
            continue;
        }
        if let Some(topic) = cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
            if topic.split('-').count() == 2 {
                stated.insert(topic.to_owned(), cells[2].to_owned());
            }
        } else if cells[1] == "**Total**" {
            total = Some(cells[2].replace("**", ""));
        }
    }
    let expected: BTreeMap<String, String> = counted
        .iter()
        .map(|(topic, &counts)| (topic.clone(), count_text(counts)))
        .collect();
    assert_eq!(stated, expected, "Appendix A's counts per area-topic");
    let sum = counted
        .values()
        .fold((0, 0), |(a, w), &(active, withdrawn)| {
            (a + active, w + withdrawn)
        });
    assert_eq!(total, Some(count_text(sum)), "Appendix A's total");
}
