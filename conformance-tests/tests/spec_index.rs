//! The suite and SPEC.md's requirement index agree: every requirement the index says the
//! suite checks (`suite`, `app-suite` in "Checked by") is cited by at least one case, and
//! every MUST is covered by some case (what `rgi-conformance requirements --strict` checks).

use std::collections::BTreeSet;

use rgi_conformance::coverage::{all_cases, coverage};
use rgi_conformance::spec::{self, Level};

/// The IDs whose "Checked by" cell in Appendix A names the suite.
fn checked_by_the_suite(spec: &str) -> Vec<String> {
    let (_, appendix) = spec
        .split_once("## Appendix A. Requirement index")
        .expect("SPEC.md has Appendix A");
    appendix
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let id = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let checked_by = cells.get(3)?;
            (spec::is_id(id)
                && checked_by
                    .split('+')
                    .any(|check| check == "suite" || check == "app-suite"))
            .then(|| id.to_owned())
        })
        .collect()
}

#[test]
fn every_requirement_the_index_gives_to_the_suite_has_a_case() {
    let cited: BTreeSet<&str> = all_cases()
        .iter()
        .flat_map(|(_, ids)| ids.iter().copied())
        .collect();
    let claimed = checked_by_the_suite(spec::SPEC_TEXT);
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
