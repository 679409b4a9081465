//! Traceability between SPEC.md and the code (CORE-VER): every requirement ID the spec defines
//! is cited by the code or its tests, and every ID the code cites exists in the spec. (The
//! requirement index, Appendix A, is checked by `conformance-tests/tests/spec_index.rs`.)
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
