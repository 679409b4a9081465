//! Traceability between SPEC.md and the code (CORE-VER): every requirement ID the spec defines
//! is cited by the code or its tests, every ID the code cites exists in the spec, and Appendix
//! A (the requirement index) lists every requirement in document order, with the right counts.
//!
//! IDs are defined in SPEC.md as `**[AREA-TOPIC-N]**`; code cites them as plain text in
//! comments, docs and messages.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const AREAS: [&str; 7] = ["CORE", "HTTP", "WS", "UPGRADE", "LIFE", "EXT", "SRV"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `AREA-TOPIC-N` token in `text` whose area is one of the spec's.
fn ids_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'-');
        if starts_word && bytes[i].is_ascii_uppercase() {
            let mut j = i;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'-') {
                j += 1;
            }
            let token = &text[i..j];
            let parts: Vec<&str> = token.split('-').collect();
            if parts.len() == 3
                && AREAS.contains(&parts[0])
                && !parts[1].is_empty()
                && parts[1]
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                && !parts[2].is_empty()
                && parts[2].bytes().all(|b| b.is_ascii_digit())
            {
                found.push(token.to_owned());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

fn defined_ids(spec: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for piece in spec.split("**[").skip(1) {
        if let Some(end) = piece.find("]**") {
            let id = &piece[..end];
            if ids_in(id) == [id.to_owned()] {
                assert!(
                    ids.insert(id.to_owned()),
                    "{id} is defined twice in SPEC.md"
                );
            }
        }
    }
    ids
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && !path.ends_with("rgi/tests/spec_traceability.rs")
        {
            out.push(path);
        }
    }
}

#[test]
fn spec_and_code_cite_the_same_requirements() {
    let root = workspace_root();
    let spec = fs::read_to_string(root.join("spec/SPEC.md")).expect("spec/SPEC.md is readable");
    let defined = defined_ids(&spec);
    assert!(
        defined.len() > 50,
        "SPEC.md defines only {} IDs",
        defined.len()
    );

    let mut files = Vec::new();
    for dir in ["crates", "examples", "conformance-tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut cited: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap_or_default();
        for id in ids_in(&text) {
            cited.entry(id).or_default().push(
                file.strip_prefix(&root)
                    .unwrap_or(file)
                    .display()
                    .to_string(),
            );
        }
    }

    let dangling: Vec<String> = cited
        .iter()
        .filter(|(id, _)| !defined.contains(*id))
        .map(|(id, files)| format!("{id} (cited in {})", files[0]))
        .collect();
    assert!(
        dangling.is_empty(),
        "the code cites IDs that SPEC.md does not define:\n  {}",
        dangling.join("\n  ")
    );

    let uncited: Vec<&String> = defined
        .iter()
        .filter(|id| !cited.contains_key(*id))
        .collect();
    assert!(
        uncited.is_empty(),
        "{} requirement IDs of SPEC.md are cited by no code, doc or test:\n  {}",
        uncited.len(),
        uncited
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

#[test]
fn id_scanner_recognises_only_spec_ids() {
    assert_eq!(
        ids_in("see HTTP-RESP-1, WS-CLOSE-12."),
        ["HTTP-RESP-1", "WS-CLOSE-12"]
    );
    assert!(ids_in("UTF-8 X-HTTP-RESP-1 HTTP-resp-1 FOO-BAR-1 HTTP-RESP-").is_empty());
    assert_eq!(
        defined_ids("**[HTTP-REQ-2]** (server) x **[bad]**").len(),
        1
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
                if tail.starts_with(" — withdrawn") && ids_in(id) == [id.to_owned()] {
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
            if ids_in(id) != [id.to_owned()] {
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
            if cells.len() != 6 || ids_in(id) != [id.to_owned()] {
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
    let spec = fs::read_to_string(workspace_root().join("spec/SPEC.md"))
        .expect("spec/SPEC.md is readable");
    let (body, appendix) = spec
        .split_once("## Appendix A. Requirement index")
        .expect("SPEC.md has Appendix A");
    let defined = definitions_in_order(body);
    let rows = index_rows(appendix);
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
    let spec = fs::read_to_string(workspace_root().join("spec/SPEC.md"))
        .expect("spec/SPEC.md is readable");
    let (_, appendix) = spec
        .split_once("## Appendix A. Requirement index")
        .expect("SPEC.md has Appendix A");
    let mut counted: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (entry, _) in index_rows(appendix) {
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
    for line in appendix.lines() {
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
