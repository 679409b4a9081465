//! Declaration cases: the `checked-by: doc` duties of SPEC.md.
//!
//! Some requirements oblige an implementation to *document* something (the runtime it polls
//! applications in, `CORE-APP-6`; its half-close policy, `HTTP-DISC-8`; ...). No socket can
//! observe them, so the manifest declares where the implementation documents each one, with a
//! line `doc ID LOCATION`, where `LOCATION` is a file path (relative to the manifest's directory)
//! or an `http://`/`https://` URL:
//!
//! ```text
//! doc CORE-APP-6 ../../crates/rgi-server/src/lib.rs
//! doc HTTP-DISC-8 https://example.org/my-server/docs#half-close
//! ```
//!
//! A declaration case fails when the duty is not declared, or when a local file it names does
//! not exist or does not mention the ID. A URL is accepted as declared without being fetched.
//! Reports say "declared", never "observed": these cases check that documentation is named,
//! not what it says.

use std::path::{Path, PathBuf};

use crate::report::{CaseResult, Outcome, Report};
use crate::spec::Side;

/// One `doc ID LOCATION` line of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// The requirement ID.
    pub id: String,
    /// Where the implementation documents it: a path or a URL.
    pub location: String,
}

impl Declaration {
    /// Parses a manifest line (comment already removed): `None` when it is no `doc` line,
    /// `Some(Err(why))` when it is a malformed one.
    pub fn parse_line(line: &str) -> Option<Result<Self, String>> {
        let mut words = line.split_whitespace();
        if words.next() != Some("doc") {
            return None;
        }
        Some(match (words.next(), words.next(), words.next()) {
            (Some(id), Some(location), None) => Ok(Self {
                id: id.to_owned(),
                location: location.to_owned(),
            }),
            _ => Err(format!(
                "malformed declaration {:?}: write `doc ID LOCATION`",
                line.trim()
            )),
        })
    }
}

/// A `checked-by: doc` MUST of SPEC.md: its ID, the side it binds, and the case name.
#[derive(Debug, Clone, Copy)]
struct Duty {
    id: &'static str,
    ids: &'static [&'static str],
    side: Side,
    name: &'static str,
}

const DUTIES: [Duty; 6] = [
    Duty {
        id: "CORE-APP-6",
        ids: &["CORE-APP-6"],
        side: Side::Server,
        name: "declared: the server documents the runtime it polls applications in",
    },
    Duty {
        id: "HTTP-DISC-8",
        ids: &["HTTP-DISC-8"],
        side: Side::Server,
        name: "declared: the server documents its half-close policy",
    },
    Duty {
        id: "EXT-NS-2",
        ids: &["EXT-NS-2"],
        side: Side::Server,
        name: "declared: the server documents its own extensions",
    },
    Duty {
        id: "CORE-VER-5",
        ids: &["CORE-VER-5"],
        side: Side::Both,
        name: "declared: the implementation documents what its minor versions may add",
    },
    Duty {
        id: "HTTP-REQ-8",
        ids: &["HTTP-REQ-8"],
        side: Side::App,
        name: "declared: the application documents it does not rely on cross-name header order",
    },
    Duty {
        id: "EXT-NS-4",
        ids: &["EXT-NS-4"],
        side: Side::App,
        name: "declared: the application documents how it handles absent server-specific extensions",
    },
];

/// The declaration cases for implementations of `side` (`Side::Server` or `Side::App`;
/// duties of both sides are included in each): name and the requirement each checks.
pub fn cases(side: Side) -> Vec<(&'static str, &'static [&'static str])> {
    duties(side).map(|d| (d.name, d.ids)).collect()
}

/// Every declaration case, of both sides (for `rgi-conformance requirements`).
pub fn all_cases() -> Vec<(&'static str, &'static [&'static str])> {
    DUTIES.iter().map(|d| (d.name, d.ids)).collect()
}

fn duties(side: Side) -> impl Iterator<Item = &'static Duty> {
    DUTIES
        .iter()
        .filter(move |d| d.side == side || d.side == Side::Both)
}

/// Checks the declarations of an implementation of `side` and appends one case per duty to
/// `report`. Relative paths are resolved against `base` (the manifest's directory).
pub fn run_into(declarations: &[Declaration], side: Side, base: &Path, report: &mut Report) {
    for duty in duties(side) {
        let outcome = check(declarations, duty.id, base);
        report.push(CaseResult {
            name: duty.name,
            ids: duty.ids,
            outcome,
        });
    }
}

fn check(declarations: &[Declaration], id: &str, base: &Path) -> Outcome {
    let named: Vec<&Declaration> = declarations.iter().filter(|d| d.id == id).collect();
    if named.is_empty() {
        return Outcome::Failed(format!(
            "not declared: add `doc {id} LOCATION` to the manifest, naming where you document it"
        ));
    }
    for declaration in named {
        let location = declaration.location.as_str();
        if location.starts_with("http://") || location.starts_with("https://") {
            continue;
        }
        let path = resolve(base, location);
        match std::fs::read_to_string(&path) {
            Err(e) => {
                return Outcome::Failed(format!(
                    "declared in {}, which cannot be read: {e}",
                    path.display()
                ));
            }
            Ok(text) if !mentions(&text, id) => {
                return Outcome::Failed(format!(
                    "declared in {}, which does not mention {id}",
                    path.display()
                ));
            }
            Ok(_) => {}
        }
    }
    Outcome::Passed
}

fn resolve(base: &Path, location: &str) -> PathBuf {
    let path = Path::new(location);
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

/// Whether `text` cites `id` as a whole ID (`HTTP-DISC-8` is not found inside a longer number).
fn mentions(text: &str, id: &str) -> bool {
    text.match_indices(id).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + id.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// Runs the declaration cases of `side` against the manifest file at `path`.
pub fn run_manifest_file(path: &Path, side: Side) -> Result<Report, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let manifest = crate::server::Manifest::parse(&text).map_err(|e| e.to_string())?;
    let mut report = Report::new();
    let base = path.parent().unwrap_or(Path::new("."));
    run_into(&manifest.declarations, side, base, &mut report);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
    }

    #[test]
    fn doc_lines_parse_and_malformed_ones_are_errors() {
        assert_eq!(Declaration::parse_line("http1, http2"), None);
        assert_eq!(
            Declaration::parse_line("doc CORE-APP-6 docs/a.md"),
            Some(Ok(Declaration {
                id: "CORE-APP-6".into(),
                location: "docs/a.md".into()
            }))
        );
        assert!(matches!(
            Declaration::parse_line("doc CORE-APP-6"),
            Some(Err(_))
        ));
    }

    #[test]
    fn missing_unreadable_and_silent_declarations_fail() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR"));
        let failed = |declarations: &[Declaration]| {
            !matches!(check(declarations, "CORE-APP-6", base), Outcome::Passed)
        };
        assert!(failed(&[]));
        assert!(failed(&[Declaration {
            id: "CORE-APP-6".into(),
            location: "no/such/file.md".into()
        }]));
        // Cargo.toml exists but does not mention the ID.
        assert!(failed(&[Declaration {
            id: "CORE-APP-6".into(),
            location: "Cargo.toml".into()
        }]));
        assert!(!failed(&[Declaration {
            id: "CORE-APP-6".into(),
            location: "https://example.org/docs".into()
        }]));
    }

    #[test]
    fn ids_are_matched_whole() {
        assert!(mentions("see HTTP-DISC-8.", "HTTP-DISC-8"));
        assert!(!mentions(&format!("see {}0", "HTTP-DISC-8"), "HTTP-DISC-8"));
        assert!(!mentions("XHTTP-DISC-8", "HTTP-DISC-8"));
    }

    #[test]
    fn rgi_servers_manifest_declares_every_server_duty() {
        let report = run_manifest_file(&dir().join("rgi-server.manifest"), Side::Server).unwrap();
        assert!(report.is_success(), "{}", report.to_text());
        assert_eq!(report.results().len(), cases(Side::Server).len());
    }

    #[test]
    fn the_probes_manifest_declares_every_app_duty() {
        let report = run_manifest_file(&dir().join("probe.manifest"), Side::App).unwrap();
        assert!(report.is_success(), "{}", report.to_text());
    }

    #[test]
    fn declaration_cases_cite_doc_requirements_of_the_spec() {
        let requirements = crate::spec::requirements(crate::spec::SPEC_TEXT);
        for (name, ids) in all_cases() {
            for id in ids {
                assert!(
                    requirements.iter().any(|r| r.id == *id),
                    "{name} cites undefined {id}"
                );
            }
        }
    }
}
