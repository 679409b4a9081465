//! The deployment guide (`docs/deployment.md`) shows the configuration files the tests use
//! (`docs/deploy/*`), verbatim, and documents every flag of the server.

mod deploy;

use deploy::read_repo_file;

const FILES: [&str; 5] = [
    "nginx.conf",
    "rgi-x-forwarded.conf",
    "rgi-forwarded.conf",
    "rgi.socket",
    "rgi.service",
];

/// SRV-OPS-6, SRV-LIMIT-5: every configuration file of `docs/deploy/` appears in the guide
/// verbatim, in a fenced block of its own, so the guide shows what the tests exercise.
#[test]
fn guide_shows_the_tested_files_verbatim() {
    let guide = read_repo_file("docs/deployment.md");
    for file in FILES {
        let text = read_repo_file(&format!("docs/deploy/{file}"));
        let fenced = format!("\n{text}```\n");
        assert!(
            guide.contains(&fenced),
            "docs/deployment.md does not show docs/deploy/{file} verbatim"
        );
    }
}

/// SRV-LIMIT-5, SRV-LIMIT-6, SRV-SHUT-6: the guide documents every flag of `--help` and the
/// exit codes.
#[test]
fn guide_documents_every_flag_and_exit_code() {
    let guide = read_repo_file("docs/deployment.md");
    let help = std::process::Command::new(deploy::PROBE)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    let flags: Vec<&str> = help
        .split_whitespace()
        .filter(|word| word.starts_with("--"))
        .map(|word| word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|flag| !["--help", "--version"].contains(flag))
        .collect();
    assert!(flags.len() > 20, "{help}");
    let undocumented: Vec<&&str> = flags
        .iter()
        .filter(|flag| !guide.contains(&format!("`{flag}")))
        .filter(|flag| {
            // Flags documented together with another (`--tls-cert FILE`, `--http1-only`) are
            // the TLS and protocol options, which the crate documentation covers.
            !flag.starts_with("--tls") && !flag.starts_with("--http")
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "flags missing in docs/deployment.md: {undocumented:?}"
    );
    for code in ["| 0 |", "| 1 |", "| 2 |", "| 3 |"] {
        assert!(guide.contains(code), "exit code row {code} missing");
    }
}
