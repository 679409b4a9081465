//! `rgi-conformance`: run the RGI conformance suite.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use rgi_conformance::report::Report;
use rgi_conformance::server::{Manifest, Target};
use rgi_conformance::spec::Side;
use rgi_conformance::{coverage, declare, interface, server, spec};

/// The RGI conformance suite.
#[derive(Debug, Parser)]
#[command(name = "rgi-conformance", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List every requirement of SPEC.md with the cases that cover it; flags uncovered ones.
    Requirements {
        /// Exit non-zero when a MUST requirement has no case.
        #[arg(long)]
        strict: bool,
    },
    /// Check a running server that hosts the probe application.
    Server {
        /// The server's base URL, e.g. http://127.0.0.1:8000 (https://HOST:PORT runs the TLS cases).
        #[arg(long, required_unless_present = "spawn", conflicts_with = "spawn")]
        url: Option<String>,
        /// A command that starts the server; `{addr}` is replaced with the address to bind,
        /// e.g. 'cargo run -p rgi-examples --bin conformance_probe -- --bind {addr}'.
        #[arg(long)]
        spawn: Option<String>,
        /// Capabilities the server claims, comma-separated (e.g. http1,http2,websocket).
        #[arg(long, value_delimiter = ',')]
        capabilities: Vec<String>,
        /// A manifest file listing the claimed capabilities (one or more per line, # comments).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Report format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// With an https:// URL: the PEM file of the CA (or self-signed certificate) that signed
        /// the server's certificate.
        #[arg(long, conflicts_with = "insecure")]
        ca: Option<PathBuf>,
        /// With an https:// URL: accept any server certificate (local testing only).
        #[arg(long)]
        insecure: bool,
    },
    /// Check the `rgi` crate the suite was built with (the requirements on the shared types).
    Interface {
        /// Report format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Junit,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Requirements { strict } => requirements(strict),
        Command::Interface { format } => match runtime() {
            Ok(runtime) => emit(&runtime.block_on(interface::run()), format),
            Err(code) => code,
        },
        Command::Server {
            url,
            spawn,
            capabilities,
            manifest,
            format,
            ca,
            insecure,
        } => {
            let manifest = match load_manifest(&capabilities, manifest.as_deref()) {
                Ok(manifest) => Arc::new(manifest),
                Err(why) => {
                    eprintln!("rgi-conformance: {why}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match runtime() {
                Ok(runtime) => runtime,
                Err(code) => return code,
            };
            let report = runtime.block_on(async {
                let mut report = match (url, spawn) {
                    (Some(url), _) if url.starts_with("https://") => {
                        let target = tls_target(&url, ca.as_deref(), insecure, &manifest)?;
                        server::tls::run(&target).await
                    }
                    (Some(url), _) => {
                        let addr = resolve(&url)?;
                        server::run(&Target {
                            addr,
                            manifest: manifest.clone(),
                        })
                        .await
                    }
                    (None, Some(command)) => {
                        let spawned = rgi_conformance::spawn::spawn(&command)
                            .await
                            .map_err(|e| e.to_string())?;
                        let target = Target {
                            addr: spawned.addr,
                            manifest: manifest.clone(),
                        };
                        let mut report = server::run(&target).await;
                        spawned.check_shutdown(&mut report).await;
                        let launcher = rgi_conformance::spawn::Launcher::new(command)
                            .map_err(|e| e.to_string())?;
                        rgi_conformance::spawn::run_cases(
                            Arc::new(launcher),
                            manifest.clone(),
                            &mut report,
                        )
                        .await;
                        report
                    }
                    (None, None) => return Err("give --url or --spawn".to_owned()),
                };
                interface::run_into(&mut report).await;
                declare::run_into(
                    &manifest.declarations,
                    Side::Server,
                    Path::new("."),
                    &mut report,
                );
                Ok::<_, String>(report)
            });
            match report {
                Ok(report) => emit(&report, format),
                Err(why) => {
                    eprintln!("rgi-conformance: {why}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn requirements(strict: bool) -> ExitCode {
    let requirements = spec::requirements(spec::SPEC_TEXT);
    let table = coverage::coverage(&requirements, &coverage::all_cases());
    print!("{}", coverage::render(&table));
    let uncovered_must = table
        .iter()
        .any(|c| c.cases.is_empty() && c.requirement.level == spec::Level::Must);
    if strict && uncovered_must {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("rgi-conformance: cannot start a runtime: {e}");
            ExitCode::from(2)
        })
}

/// The manifest from `--capabilities` and `--manifest`; the paths of its `doc` lines are made
/// relative to the manifest file's directory.
fn load_manifest(capabilities: &[String], path: Option<&Path>) -> Result<Manifest, String> {
    let mut text = capabilities.join(",");
    if let Some(path) = path {
        let file = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        text.push('\n');
        text.push_str(&file);
    }
    let mut manifest = Manifest::parse(&text).map_err(|e| e.to_string())?;
    let base = path.and_then(Path::parent).unwrap_or(Path::new("."));
    for declaration in &mut manifest.declarations {
        let location = &declaration.location;
        if !location.contains("://") && Path::new(location).is_relative() {
            declaration.location = base.join(location).to_string_lossy().into_owned();
        }
    }
    Ok(manifest)
}

fn tls_target(
    url: &str,
    ca: Option<&Path>,
    insecure: bool,
    manifest: &Arc<Manifest>,
) -> Result<server::tls::TlsTarget, String> {
    let authority = url
        .strip_prefix("https://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => authority,
    };
    let addr = resolve(&format!("http://{authority}"))?;
    let trust = match (ca, insecure) {
        (Some(ca), _) => server::tls::Trust::Ca(ca.to_owned()),
        (None, true) => server::tls::Trust::Any,
        (None, false) => {
            return Err("an https:// URL needs --ca FILE (or --insecure)".to_owned());
        }
    };
    server::tls::TlsTarget::new(addr, host, &trust, manifest.clone()).map_err(|e| e.to_string())
}

fn emit(report: &Report, format: Format) -> ExitCode {
    match format {
        Format::Text => print!("{}", report.to_text()),
        Format::Json => {
            print!("{}", report.to_json());
            println!("{}", report.summary_line());
        }
        Format::Junit => {
            print!("{}", report.to_junit());
        }
    }
    if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn resolve(url: &str) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported, got {url:?}"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority:?}: {e}"))?
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| {
            format!("{authority} is not a loopback address: the suite only drives local servers")
        })
}
