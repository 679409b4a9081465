//! The requirements of SPEC.md, read from the spec itself so that suite and spec cannot drift.

use std::fmt;

/// The text of SPEC.md this suite was built with.
pub const SPEC_TEXT: &str = include_str!("../../spec/SPEC.md");

/// Which side of the interface a requirement binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The server.
    Server,
    /// The application (or framework, or middleware).
    App,
    /// Both sides.
    Both,
    /// The spec does not say.
    Unspecified,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Server => "server",
            Side::App => "app",
            Side::Both => "both",
            Side::Unspecified => "-",
        })
    }
}

/// The strength of a requirement (RFC 2119).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// MUST, MUST NOT, REQUIRED, SHALL.
    Must,
    /// SHOULD, SHOULD NOT, RECOMMENDED.
    Should,
    /// MAY, OPTIONAL.
    May,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        })
    }
}

/// One requirement of SPEC.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The stable ID, such as `HTTP-RESP-1`.
    pub id: String,
    /// The side it binds.
    pub side: Side,
    /// Its strength.
    pub level: Level,
    /// The requirement's sentence, without Markdown emphasis.
    pub text: String,
}

/// Reads every requirement defined in `spec` (as `**[ID]**`), in document order.
pub fn requirements(spec: &str) -> Vec<Requirement> {
    let mut found = Vec::new();
    for line in spec.lines() {
        let mut rest = line;
        while let Some(start) = rest.find("**[") {
            let after = &rest[start + 3..];
            let Some(end) = after.find("]**") else { break };
            let id = &after[..end];
            let tail = &after[end + 3..];
            let next = tail.find("**[").unwrap_or(tail.len());
            let sentence = &tail[..next];
            if is_id(id) {
                found.push(Requirement {
                    id: id.to_owned(),
                    side: side_of(sentence),
                    level: level_of(sentence),
                    text: plain(sentence),
                });
            }
            rest = &tail[next..];
        }
    }
    found
}

/// Whether `s` has the form `AREA-TOPIC-N`.
pub fn is_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
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

fn side_of(sentence: &str) -> Side {
    let head: String = sentence.chars().take(40).collect::<String>().to_lowercase();
    if head.contains("(server)") {
        Side::Server
    } else if head.contains("(app)") || head.contains("(application)") {
        Side::App
    } else if head.contains("(both)") {
        Side::Both
    } else {
        Side::Unspecified
    }
}

fn level_of(sentence: &str) -> Level {
    let words: Vec<&str> = sentence
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    if words
        .iter()
        .any(|w| matches!(*w, "MUST" | "REQUIRED" | "SHALL"))
    {
        Level::Must
    } else if words.iter().any(|w| matches!(*w, "SHOULD" | "RECOMMENDED")) {
        Level::Should
    } else {
        Level::May
    }
}

fn plain(sentence: &str) -> String {
    let text = sentence.replace("**", "").replace('`', "");
    let text = text.trim();
    let text = ["(server)", "(app)", "(application)", "(both)"]
        .iter()
        .fold(text.to_owned(), |t, tag| t.replacen(tag, "", 1));
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_sides_and_levels() {
        let spec = "- **[HTTP-RESP-1]** (server) The server MUST send one head.\n\
                    - **[WS-HS-2]** (app) The app SHOULD pick a *subprotocol*. **[WS-HS-3]** (both) It MAY.\n\
                    Not an ID: **[note]** and `HTTP-RESP-1` in prose.";
        let reqs = requirements(spec);
        let ids: Vec<&str> = reqs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["HTTP-RESP-1", "WS-HS-2", "WS-HS-3"]);
        assert_eq!(reqs[0].side, Side::Server);
        assert_eq!(reqs[0].level, Level::Must);
        assert_eq!(reqs[0].text, "The server MUST send one head.");
        assert_eq!(reqs[1].side, Side::App);
        assert_eq!(reqs[1].level, Level::Should);
        assert_eq!(reqs[2].level, Level::May);
    }

    #[test]
    fn the_bundled_spec_defines_unique_ids() {
        let reqs = requirements(SPEC_TEXT);
        assert!(reqs.len() > 50, "only {} requirements", reqs.len());
        let mut ids: Vec<&str> = reqs.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "an ID is defined twice");
    }
}
