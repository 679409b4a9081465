//! `rgi-conformance`: run the RGI conformance suite.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use rgi_conformance::server::{Manifest, Target};
use rgi_conformance::{coverage, server, spec};

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
        /// The server's base URL, e.g. http://127.0.0.1:8000.
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
        Command::Requirements { strict } => {
            let requirements = spec::requirements(spec::SPEC_TEXT);
            let mut cases: Vec<(&'static str, &'static [&'static str])> =
                server::cases().iter().map(|c| (c.name, c.ids)).collect();
            cases.push(rgi_conformance::spawn::SHUTDOWN_CASE);
            cases.extend(rgi_conformance::app::CASES);
            let table = coverage::coverage(&requirements, &cases);
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
        Command::Server {
            url,
            spawn,
            capabilities,
            manifest,
            format,
        } => {
            let mut text = capabilities.join(",");
            if let Some(path) = manifest {
                match std::fs::read_to_string(&path) {
                    Ok(file) => {
                        text.push('\n');
                        text.push_str(&file);
                    }
                    Err(e) => {
                        eprintln!("rgi-conformance: cannot read {}: {e}", path.display());
                        return ExitCode::from(2);
                    }
                }
            }
            let manifest = match Manifest::parse(&text) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("rgi-conformance: {e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("rgi-conformance: cannot start a runtime: {e}");
                    return ExitCode::from(2);
                }
            };
            let manifest = Arc::new(manifest);
            let report = runtime.block_on(async {
                match (url, spawn) {
                    (Some(url), _) => {
                        let addr = resolve(&url)?;
                        Ok(server::run(&Target { addr, manifest }).await)
                    }
                    (None, Some(command)) => {
                        let spawned = rgi_conformance::spawn::spawn(&command)
                            .await
                            .map_err(|e| e.to_string())?;
                        let target = Target {
                            addr: spawned.addr,
                            manifest,
                        };
                        let mut report = server::run(&target).await;
                        spawned.check_shutdown(&mut report).await;
                        Ok(report)
                    }
                    (None, None) => Err("give --url or --spawn".to_owned()),
                }
            });
            let report = match report {
                Ok(report) => report,
                Err(why) => {
                    eprintln!("rgi-conformance: {why}");
                    return ExitCode::from(2);
                }
            };
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
