//! SPEC.md's requirement index (Appendix A) agrees with what checks each requirement:
//!
//! - every requirement the index gives to the suite (`suite`, `app-suite` in "Checked by") is
//!   cited by at least one case, and every MUST is covered by some case (what
//!   `rgi-conformance requirements --strict` checks);
//! - `lint` is marked for exactly the IDs a `rgi_test::Lint` rule reports (the string literals
//!   of `crates/rgi-test/src/lint/`, outside its unit tests).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use rgi_conformance::coverage::{all_cases, coverage};
use rgi_conformance::spec::{self, Level};

/// The IDs of Appendix A's index whose "Checked by" cell names one of `checks`.
fn checked_by(checks: &[&str]) -> BTreeSet<String> {
    let (_, appendix) = spec::SPEC_TEXT
        .split_once("## Appendix A. Requirement index")
        .expect("SPEC.md has Appendix A");
    appendix
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let id = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let named = cells
                .get(3)?
                .split('+')
                .any(|check| checks.contains(&check));
            (spec::is_id(id) && named).then(|| id.to_owned())
        })
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
