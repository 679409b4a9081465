//! `rgi-bench`: the RGI benchmark harness (started by `bench/run.sh`).
//!
//! Every server runs pinned to core 0 (`taskset -c 0`); this harness and its load generators
//! run on core 1 (run.sh starts it under `taskset -c 1`). Servers are interleaved in rounds
//! (A B C … A B C …); each figure is the median over the rounds whose window passed the
//! "core 0 was otherwise idle" check, with min–max, and a ratio to bare hyper from the same run.
//! A window that fails the check is retried once (while the time budget allows); figures with
//! no clean window are reported with a ⚠ flag.

mod load;
mod procfs;
mod report;
mod servers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use report::Measurement;
use servers::{Running, Scenario, ServerSpec};

/// A window whose core 0 was busy with something other than the server for more than this
/// fraction of its wall time is flagged.
const MAX_CORE0_OTHER: f64 = 0.05;

/// The harness's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Rounds (each server once per round).
    pub rounds: u32,
    /// Seconds per measured window.
    pub seconds: u32,
    /// Seconds of warm-up load before each window.
    pub warmup: u32,
    /// Idle connections of the memory scenario.
    pub idle_connections: usize,
    /// Total time budget in seconds: no retries after it is spent.
    pub budget: u64,
    /// Only these scenarios (empty: all).
    pub only: Vec<String>,
    /// Only these servers (empty: all).
    pub servers: Vec<String>,
    /// The repository root.
    pub repo: PathBuf,
    /// Root workspace binaries (hello, axum_app, websocket_echo).
    pub root_bin: PathBuf,
    /// Bench workspace binaries (peer, peer-counted, rgi-counted).
    pub bench_bin: PathBuf,
    /// Where server logs go.
    pub log_dir: PathBuf,
    /// Quick mode (marked in the report).
    pub quick: bool,
    /// The command line that was run, for the report.
    pub command: String,
    /// Only rewrite the report from the last run's `bench/results/*.json` (`--render`).
    pub render: bool,
}

fn usage() -> &'static str {
    "usage: rgi-bench --repo DIR --root-bin DIR --bench-bin DIR [--quick] [--rounds N] \
     [--seconds S] [--only plaintext,pipelined,echo,h2c,stream,memory,websocket,allocs] \
     [--servers NAME,...] [--command TEXT] | rgi-bench --repo DIR --render"
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        rounds: 3,
        seconds: 5,
        warmup: 1,
        idle_connections: 5000,
        budget: 24 * 60,
        only: Vec::new(),
        servers: Vec::new(),
        repo: PathBuf::from("."),
        root_bin: PathBuf::from("target/release"),
        bench_bin: PathBuf::from("bench/target/release"),
        log_dir: std::env::temp_dir(),
        quick: false,
        command: "bench/run.sh".to_owned(),
        render: false,
    };
    let mut explicit_rounds = None;
    let mut explicit_seconds = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--render" => options.render = true,
            "--rounds" => explicit_rounds = Some(value()?.parse().map_err(|_| "bad --rounds")?),
            "--seconds" => {
                explicit_seconds = Some(value()?.parse().map_err(|_| "bad --seconds")?);
            }
            "--only" => options.only = value()?.split(',').map(str::to_owned).collect(),
            "--servers" => options.servers = value()?.split(',').map(str::to_owned).collect(),
            "--repo" => options.repo = PathBuf::from(value()?),
            "--root-bin" => options.root_bin = PathBuf::from(value()?),
            "--bench-bin" => options.bench_bin = PathBuf::from(value()?),
            "--log-dir" => options.log_dir = PathBuf::from(value()?),
            "--command" => options.command = value()?,
            "--help" | "-h" => return Err(usage().to_owned()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if options.quick {
        options.rounds = 1;
        options.seconds = 2;
        options.idle_connections = 2000;
        options.budget = 5 * 60;
    }
    if let Some(rounds) = explicit_rounds {
        options.rounds = rounds;
    }
    if let Some(seconds) = explicit_seconds {
        options.seconds = seconds;
    }
    if options.rounds == 0 || options.seconds == 0 {
        return Err("--rounds and --seconds must be at least 1".to_owned());
    }
    Ok(options)
}

fn main() -> std::process::ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::from(2);
        }
    };
    let outcome = if options.render {
        render(&options)
    } else {
        run(&options)
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rgi-bench: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Progress and the time budget.
struct Clock {
    started: Instant,
    budget: Duration,
}

impl Clock {
    fn elapsed(&self) -> String {
        let s = self.started.elapsed().as_secs();
        format!("{:>2}m{:02}s", s / 60, s % 60)
    }

    fn over_budget(&self) -> bool {
        self.started.elapsed() > self.budget
    }
}

fn run(options: &Options) -> Result<(), String> {
    // 5,000 idle connections need as many descriptors here and in the server (which inherits
    // the limit).
    if let Err(error) = rlimit::increase_nofile_limit(65_536) {
        eprintln!("warning: cannot raise RLIMIT_NOFILE: {error}");
    }
    std::fs::create_dir_all(&options.log_dir).map_err(|e| format!("log dir: {e}"))?;
    let specs = servers::all(options);
    for spec in &specs {
        if !spec.program.exists() {
            return Err(format!(
                "{} is missing (build it first: bench/run.sh does)",
                spec.program.display()
            ));
        }
    }
    let wanted = |scenario: Scenario| {
        options.only.is_empty() || options.only.iter().any(|s| s == scenario.name())
    };
    let selected: Vec<&ServerSpec> = specs
        .iter()
        .filter(|spec| options.servers.is_empty() || options.servers.iter().any(|s| s == spec.name))
        .collect();
    let estimate = estimate_seconds(options, &selected, &wanted);
    println!(
        "rgi-bench: {} round(s), {} s windows, {} servers; estimated {}m{:02}s (budget {} min)",
        options.rounds,
        options.seconds,
        selected.len(),
        estimate / 60,
        estimate % 60,
        options.budget / 60
    );
    let clock = Clock {
        started: Instant::now(),
        budget: Duration::from_secs(options.budget),
    };
    let mut measurements = Vec::new();
    let mut port = 20_000u16;
    for round in 1..=options.rounds {
        for spec in &selected {
            let mut scenarios: Vec<Scenario> = spec
                .scenarios
                .iter()
                .copied()
                .filter(|s| s.is_round_scenario() && wanted(*s))
                .collect();
            // Memory first, on the freshly started server: after the other scenarios the
            // allocator reuses the memory they freed and the RSS delta reads near zero.
            scenarios.sort_by_key(|s| *s != Scenario::Memory);
            if scenarios.is_empty() {
                continue;
            }
            port += 1;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let server = match Running::start(spec, addr, false, &options.log_dir) {
                Ok(server) => server,
                Err(error) => {
                    println!(
                        "[{}] round {round} {}: cannot start: {error}",
                        clock.elapsed(),
                        spec.name
                    );
                    continue;
                }
            };
            for scenario in scenarios {
                let mut attempt = 0;
                loop {
                    let result = measure(options, spec, &server, scenario, round, attempt);
                    match result {
                        Ok(m) => {
                            println!(
                                "[{}] round {round}/{} {:<11} {:<10} {}",
                                clock.elapsed(),
                                options.rounds,
                                spec.name,
                                scenario.name(),
                                m.summary_line()
                            );
                            let retry = !m.clean && attempt == 0 && !clock.over_budget();
                            measurements.push(m);
                            if retry {
                                attempt += 1;
                                println!("    core 0 was busy with other work: retrying once");
                                continue;
                            }
                        }
                        Err(error) => println!(
                            "[{}] round {round} {} {}: failed: {error}",
                            clock.elapsed(),
                            spec.name,
                            scenario.name()
                        ),
                    }
                    break;
                }
            }
            drop(server);
        }
    }
    if wanted(Scenario::Allocs) {
        for spec in &selected {
            if !spec.scenarios.contains(&Scenario::Allocs) || spec.counted.is_none() {
                continue;
            }
            port += 1;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            match allocations(options, spec, addr) {
                Ok(found) => {
                    for m in found {
                        println!(
                            "[{}] allocs     {:<11} {:<10} {}",
                            clock.elapsed(),
                            spec.name,
                            m.scenario,
                            m.summary_line()
                        );
                        measurements.push(m);
                    }
                }
                Err(error) => println!(
                    "[{}] allocs {}: failed: {error}",
                    clock.elapsed(),
                    spec.name
                ),
            }
        }
    }
    println!("[{}] writing the report", clock.elapsed());
    let environment = report::Environment::collect(options);
    report::write_all(options, &environment, &selected, &measurements)?;
    println!(
        "[{}] done: BENCHMARKS.md, bench/chart.svg, bench/results/*.json",
        clock.elapsed()
    );
    Ok(())
}

/// Rewrites BENCHMARKS.md and bench/chart.svg from the last run's `bench/results/*.json` and
/// the current `bench/analysis.md`, without measuring anything: for an edit of the analysis.
fn render(options: &Options) -> Result<(), String> {
    let recorded = report::read_results(&options.repo)?;
    let options = Options {
        quick: recorded.quick,
        rounds: recorded.rounds,
        seconds: recorded.seconds,
        command: recorded.command,
        ..options.clone()
    };
    let specs = servers::all(&options);
    let selected: Vec<&ServerSpec> = specs
        .iter()
        .filter(|spec| recorded.measurements.iter().any(|m| m.server == spec.name))
        .collect();
    report::write_report(
        &options,
        &recorded.environment,
        &selected,
        &recorded.measurements,
    )?;
    println!("rgi-bench: BENCHMARKS.md and bench/chart.svg rewritten from bench/results/*.json");
    Ok(())
}

fn estimate_seconds(
    options: &Options,
    specs: &[&ServerSpec],
    wanted: &dyn Fn(Scenario) -> bool,
) -> u64 {
    let window = u64::from(options.seconds + options.warmup) + 1;
    let mut total = 0;
    for spec in specs {
        for scenario in spec.scenarios.iter().copied().filter(|s| wanted(*s)) {
            total += match scenario {
                Scenario::Memory => 4 * u64::from(options.rounds),
                Scenario::Allocs => 2 * (u64::from(options.seconds) + 2),
                _ => window * u64::from(options.rounds),
            };
        }
        total += u64::from(options.rounds);
    }
    total
}

/// One measured window of `scenario` against a running server.
fn measure(
    options: &Options,
    spec: &ServerSpec,
    server: &Running,
    scenario: Scenario,
    round: u32,
    attempt: u32,
) -> Result<Measurement, String> {
    let pid = server.pid();
    let addr = server.addr();
    let mut m = Measurement::new(scenario.name(), spec.name, round, attempt);
    if scenario == Scenario::Memory {
        let baseline_fds = procfs::open_fds(pid);
        let before = procfs::rss_bytes(pid);
        let (opened, (after, fds)) =
            load::hold_idle_connections(addr, options.idle_connections, || {
                (procfs::rss_bytes(pid), procfs::open_fds(pid))
            })
            .map_err(|e| e.to_string())?;
        let held = fds.saturating_sub(baseline_fds);
        m.set("connections", opened as f64);
        m.set("connections_held", held as f64);
        m.set("rss_before_kib", before as f64 / 1024.0);
        m.set("rss_after_kib", after as f64 / 1024.0);
        m.set(
            "bytes_per_connection",
            after.saturating_sub(before) as f64 / opened.max(1) as f64,
        );
        // RSS does not depend on other processes' CPU use.
        m.clean = held + 16 >= opened;
        // Let the server close the dropped connections before the next scenario.
        std::thread::sleep(Duration::from_millis(500));
        return Ok(m);
    }
    let seconds = options.seconds;
    let run_load = |seconds: u32| -> Result<load::LoadResult, load::LoadError> {
        match scenario {
            Scenario::H2c => load::h2load(addr, seconds, 16, 4),
            Scenario::WebSocket => load::websocket(addr, seconds, 16),
            _ => scenario.wrk(&options.repo).run(addr, seconds),
        }
    };
    run_load(options.warmup).map_err(|e| format!("warm-up: {e}"))?;
    let window = procfs::Window::start(pid);
    let result = run_load(seconds).map_err(|e| e.to_string())?;
    let delta = window.finish(pid);
    m.record_load(&result, &delta);
    m.clean = delta.core0_other <= MAX_CORE0_OTHER;
    if scenario == Scenario::Stream {
        let gigabytes = result.bytes / 1e9;
        m.set("gb_per_s", gigabytes / result.seconds.max(1e-3));
        m.set("cpu_s_per_gb", delta.server_cpu / gigabytes.max(1e-9));
    }
    if matches!(scenario, Scenario::Echo | Scenario::Plaintext) {
        // wrk opens its connections inside the window: more than that means the server closed
        // connections (keep-alive not kept).
        let reopened = delta
            .accepted
            .saturating_sub(u64::from(scenario.connections()));
        m.set("connections_reopened", reopened as f64);
    }
    Ok(m)
}

/// Allocations per request for plaintext and echo, with the counting-allocator build, in the
/// steady state: two load runs of different length over the same number of connections, and
/// the difference of their counts over the difference of their requests, so that what each
/// connection costs to set up (the same in both runs) cancels out.
fn allocations(
    options: &Options,
    spec: &ServerSpec,
    addr: SocketAddr,
) -> Result<Vec<Measurement>, String> {
    let server = Running::start(spec, addr, true, &options.log_dir)?;
    let seconds = options.seconds.clamp(2, 3);
    let mut found = Vec::new();
    for scenario in [Scenario::Plaintext, Scenario::Echo] {
        if !spec.scenarios.contains(&scenario) {
            continue;
        }
        let wrk = scenario.wrk(&options.repo);
        wrk.run(addr, options.warmup).map_err(|e| e.to_string())?;
        let (allocs0, bytes0) = server.allocations()?;
        let short = wrk.run(addr, 1).map_err(|e| e.to_string())?;
        let (allocs1, bytes1) = server.allocations()?;
        let long = wrk.run(addr, seconds).map_err(|e| e.to_string())?;
        let (allocs2, bytes2) = server.allocations()?;
        let (short_allocs, short_bytes) = (
            allocs1.saturating_sub(allocs0),
            bytes1.saturating_sub(bytes0),
        );
        let (long_allocs, long_bytes) = (
            allocs2.saturating_sub(allocs1),
            bytes2.saturating_sub(bytes1),
        );
        let mut m = Measurement::new(&format!("allocs-{}", scenario.name()), spec.name, 1, 0);
        m.set("requests", (short.requests + long.requests) as f64);
        let extra = long.requests.saturating_sub(short.requests);
        let (allocs, bytes, requests) = if extra * 2 >= long.requests {
            (
                long_allocs.saturating_sub(short_allocs),
                long_bytes.saturating_sub(short_bytes),
                extra,
            )
        } else {
            // The runs were too alike to tell connection setup apart: both together.
            (
                short_allocs + long_allocs,
                short_bytes + long_bytes,
                short.requests + long.requests,
            )
        };
        let requests = requests.max(1) as f64;
        m.set("allocs_per_request", allocs as f64 / requests);
        m.set("bytes_per_request", bytes as f64 / requests);
        m.clean = true;
        found.push(m);
    }
    Ok(found)
}
