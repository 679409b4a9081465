//! SPEC.md's requirement index and `Lint` agree: the IDs whose "Checked by" cell names `lint`
//! are exactly the IDs a Lint rule reports (the string literals of `src/lint/`, outside its
//! unit tests).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

fn is_id(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 3
        && !parts[0].is_empty()
        && parts[0].bytes().all(|b| b.is_ascii_uppercase())
        && !parts[1].is_empty()
        && parts[1]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && !parts[2].is_empty()
        && parts[2].bytes().all(|b| b.is_ascii_digit())
}

/// The IDs Appendix A marks as checked by `lint`.
fn marked_lint(spec: &str) -> BTreeSet<String> {
    let (_, appendix) = spec
        .split_once("## Appendix A. Requirement index")
        .expect("SPEC.md has Appendix A");
    appendix
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let id = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            (is_id(id) && cells.get(3)?.split('+').any(|check| check == "lint"))
                .then(|| id.to_owned())
        })
        .collect()
}

/// The IDs quoted as string literals in `source` before its `#[cfg(test)]` module.
fn reported_ids(source: &str) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    code.split('"')
        .skip(1)
        .step_by(2)
        .filter(|literal| is_id(literal))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_index_marks_lint_for_exactly_the_ids_lint_reports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = fs::read_to_string(root.join("../../spec/SPEC.md")).expect("SPEC.md is readable");
    let mut reported = BTreeSet::new();
    for entry in fs::read_dir(root.join("src/lint")).expect("src/lint is readable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let source = fs::read_to_string(&path).expect("a lint source is readable");
            reported.extend(reported_ids(&source));
        }
    }
    assert!(reported.len() > 30, "only {} IDs found", reported.len());
    let marked = marked_lint(&spec);
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
