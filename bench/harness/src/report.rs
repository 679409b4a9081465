//! Measurements, their summary (medians, min–max, ratios), and the report: BENCHMARKS.md,
//! bench/chart.svg and bench/results/*.json.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::Options;
use crate::load::LoadResult;
use crate::procfs::WindowDelta;
use crate::servers::ServerSpec;

/// One measured window (or one allocation count).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    /// Scenario name.
    pub scenario: String,
    /// Server name.
    pub server: String,
    /// Round (1-based).
    pub round: u32,
    /// 0, or 1 for the retry of a flagged window.
    pub attempt: u32,
    /// Core 0 was otherwise idle (≤ 5 % of the window busy with other work).
    pub clean: bool,
    /// Metrics by name.
    pub metrics: BTreeMap<String, f64>,
}

impl Measurement {
    /// An empty measurement.
    pub fn new(scenario: &str, server: &str, round: u32, attempt: u32) -> Self {
        Self {
            scenario: scenario.to_owned(),
            server: server.to_owned(),
            round,
            attempt,
            clean: true,
            metrics: BTreeMap::new(),
        }
    }

    /// Sets a metric.
    pub fn set(&mut self, name: &str, value: f64) {
        self.metrics.insert(name.to_owned(), value);
    }

    /// Records a load run and its window.
    pub fn record_load(&mut self, load: &LoadResult, window: &WindowDelta) {
        let requests = load.requests.max(1) as f64;
        self.set("requests", load.requests as f64);
        self.set("rps", load.requests as f64 / load.seconds.max(1e-3));
        self.set("server_cpu_s", window.server_cpu);
        self.set("cpu_us_per_request", window.server_cpu * 1e6 / requests);
        self.set(
            "server_cpu_share",
            window.server_cpu / window.wall.max(1e-3),
        );
        self.set("core0_other", window.core0_other);
        self.set("errors", load.errors as f64);
        if let Some(p50) = load.p50_ms {
            self.set("p50_ms", p50);
        }
        if let Some(p99) = load.p99_ms {
            self.set("p99_ms", p99);
        }
    }

    /// One progress line.
    pub fn summary_line(&self) -> String {
        let mut line = String::new();
        for (key, label) in [
            ("rps", "req/s"),
            ("cpu_us_per_request", "µs CPU/req"),
            ("p99_ms", "ms p99"),
            ("cpu_s_per_gb", "s CPU/GB"),
            ("bytes_per_connection", "B/conn"),
            ("connections_held", "conns held"),
            ("allocs_per_request", "allocs/req"),
            ("bytes_per_request", "B/req"),
            ("connections_reopened", "reopened"),
            ("errors", "errors"),
        ] {
            if let Some(value) = self.metrics.get(key) {
                let _ = write!(line, "{} {label}  ", number(*value));
            }
        }
        if let Some(other) = self.metrics.get("core0_other") {
            let _ = write!(line, "core0-other {:.1}% ", other * 100.0);
        }
        line.push_str(if self.clean { "ok" } else { "FLAGGED" });
        line
    }
}

/// A number with 3 significant digits-ish, thousands as k/M.
fn number(value: f64) -> String {
    let abs = value.abs();
    if abs >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if abs >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if abs >= 100.0 {
        format!("{value:.0}")
    } else if abs >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// Median, min and max of one metric of one server in one scenario.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stat {
    /// Median over the clean windows (all windows if none was clean).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Windows used.
    pub samples: usize,
    /// No window was clean: the figure is flagged.
    pub flagged: bool,
}

/// Summarises one metric.
pub fn stat(
    measurements: &[Measurement],
    scenario: &str,
    server: &str,
    metric: &str,
) -> Option<Stat> {
    let matching: Vec<&Measurement> = measurements
        .iter()
        .filter(|m| m.scenario == scenario && m.server == server && m.metrics.contains_key(metric))
        .collect();
    let clean: Vec<&Measurement> = matching.iter().copied().filter(|m| m.clean).collect();
    let (used, flagged) = if clean.is_empty() {
        (matching, true)
    } else {
        (clean, false)
    };
    let mut values: Vec<f64> = used
        .iter()
        .filter_map(|m| m.metrics.get(metric).copied())
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    Some(Stat {
        median,
        min: values[0],
        max: values[n - 1],
        samples: n,
        flagged,
    })
}

/// Machine, versions, date.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    /// `lscpu` model name and core count.
    pub cpu: String,
    /// `uname -sr`.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// `wrk -v`, `h2load --version`.
    pub tools: String,
    /// Crate versions from bench/Cargo.lock.
    pub crates: Vec<(String, String)>,
    /// UTC date and time.
    pub date: String,
}

fn shell(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            text
        })
        .unwrap_or_default()
}

impl Environment {
    /// Collects it.
    pub fn collect(options: &Options) -> Self {
        let lscpu = shell("lscpu", &[]);
        let field = |name: &str| {
            lscpu
                .lines()
                .find(|l| l.trim_start().starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        let cpu = format!("{} ({} CPUs)", field("Model name"), field("CPU(s)"));
        let wrk = shell("wrk", &["-v"])
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        let h2load = shell("h2load", &["--version"])
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        let lock =
            std::fs::read_to_string(options.repo.join("bench/Cargo.lock")).unwrap_or_default();
        let wanted = [
            "hyper",
            "hyper-util",
            "h2",
            "tokio",
            "axum",
            "actix-web",
            "actix-http",
            "tokio-tungstenite",
        ];
        let mut crates = Vec::new();
        let mut name = None;
        for line in lock.lines() {
            if let Some(n) = line.strip_prefix("name = ") {
                name = Some(n.trim_matches('"').to_owned());
            } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take())
                && wanted.contains(&n.as_str())
            {
                crates.push((n, v.trim_matches('"').to_owned()));
            }
        }
        Self {
            cpu,
            kernel: shell("uname", &["-sr"]).trim().to_owned(),
            rustc: shell("rustc", &["-V"]).trim().to_owned(),
            tools: format!("{}; {}", wrk.trim(), h2load.trim()),
            crates,
            date: shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
                .trim()
                .to_owned(),
        }
    }
}

/// A column of a scenario table.
struct Column {
    metric: &'static str,
    header: &'static str,
    /// Show the ratio to the baseline.
    ratio: bool,
}

/// A scenario table: which servers' baseline, which columns.
struct Table {
    scenario: &'static str,
    title: &'static str,
    note: &'static str,
    baseline: &'static str,
    columns: Vec<Column>,
}

fn tables() -> Vec<Table> {
    let col = |metric, header, ratio| Column {
        metric,
        header,
        ratio,
    };
    vec![
        Table {
            scenario: "plaintext",
            title: "Plaintext `GET /` (wrk, 64 connections)",
            note: "Load-generator bound on 2 cores: the server CPU per request is the figure that separates servers.",
            baseline: "hyper",
            columns: vec![
                col("cpu_us_per_request", "server CPU µs/req", true),
                col("rps", "req/s", true),
                col("p50_ms", "p50 ms", false),
                col("p99_ms", "p99 ms", false),
            ],
        },
        Table {
            scenario: "pipelined",
            title: "Pipelined `GET /` (wrk, 64 connections × 16 per write)",
            note: "Server-bound.",
            baseline: "hyper",
            columns: vec![
                col("rps", "req/s", true),
                col("cpu_us_per_request", "server CPU µs/req", true),
            ],
        },
        Table {
            scenario: "echo",
            title: "`POST /echo`, 1 KiB streamed (wrk, 64 connections)",
            note: "`reopened`: connections the kernel accepted beyond wrk's 64 during the window (system-wide `PassiveOpens`); above 0 means the server closed keep-alive connections.",
            baseline: "hyper",
            columns: vec![
                col("cpu_us_per_request", "server CPU µs/req", true),
                col("rps", "req/s", true),
                col("connections_reopened", "reopened", false),
            ],
        },
        Table {
            scenario: "h2c",
            title: "h2c `GET /` (h2load, 16 connections × 4 streams)",
            note: "Only servers that speak HTTP/2 with prior knowledge on the cleartext port; ratios to hyper-util's auto builder.",
            baseline: "hyper-auto",
            columns: vec![
                col("rps", "req/s", true),
                col("cpu_us_per_request", "server CPU µs/req", true),
            ],
        },
        Table {
            scenario: "stream",
            title: "100 MiB streaming download (wrk, 1 connection)",
            note: "Wall throughput is noisy here; server CPU per GB is the figure.",
            baseline: "hyper",
            columns: vec![
                col("cpu_s_per_gb", "server CPU s/GB", true),
                col("gb_per_s", "GB/s", false),
            ],
        },
        Table {
            scenario: "memory",
            title: "Idle keep-alive connections (RSS delta of the server)",
            note: "Each connection served one `GET /` first; `held`: descriptors the server had open for them.",
            baseline: "hyper",
            columns: vec![
                col("bytes_per_connection", "bytes/conn", true),
                col("connections_held", "held", false),
            ],
        },
        Table {
            scenario: "websocket",
            title: "WebSocket echo, 32-byte text messages (harness client, 16 connections)",
            note: "Client-bound; server CPU per message is the figure. Ratios to tokio-tungstenite.",
            baseline: "ws-tungstenite",
            columns: vec![
                col("cpu_us_per_request", "server CPU µs/msg", true),
                col("rps", "msgs/s", true),
            ],
        },
        Table {
            scenario: "allocs-plaintext",
            title: "Heap allocations per plaintext request (counting-allocator builds)",
            note: "Steady state: two wrk runs (1 s and 2–3 s) over 64 connections each; the difference of their counts over the difference of their requests, so that connection setup cancels out.",
            baseline: "hyper",
            columns: vec![
                col("allocs_per_request", "allocs/req", true),
                col("bytes_per_request", "bytes/req", true),
            ],
        },
        Table {
            scenario: "allocs-echo",
            title: "Heap allocations per 1 KiB echo request (counting-allocator builds)",
            note: "Steady state: two wrk runs (1 s and 2–3 s) over 64 connections each; the difference of their counts over the difference of their requests, so that connection setup cancels out.",
            baseline: "hyper",
            columns: vec![
                col("allocs_per_request", "allocs/req", true),
                col("bytes_per_request", "bytes/req", true),
            ],
        },
    ]
}

fn cell(stat: Option<Stat>, baseline: Option<Stat>, ratio: bool) -> String {
    let Some(stat) = stat else {
        return "—".to_owned();
    };
    let mut text = number(stat.median);
    if stat.samples > 1 {
        let _ = write!(text, " ({}–{})", number(stat.min), number(stat.max));
    }
    if ratio && let Some(base) = baseline.filter(|b| b.median.abs() > 1e-12) {
        let _ = write!(text, " **{:.2}×**", stat.median / base.median);
    }
    if stat.flagged {
        text.push_str(" ⚠");
    }
    text
}

/// How far allocations per request may stray from a whole number in a steady state. Every
/// server's count moves by about ±0.001 from run to run (hyper's too): allocations made by the
/// clock rather than by requests (the cached `date` header, timers) during the measured window.
/// The figures are shown with two decimals, and the verdict compares what it shows.
const ALLOCATION_NOISE: f64 = 0.005;

/// What a run recorded in `bench/results/*.json`, read back by `--render`.
#[derive(Debug)]
pub struct Recorded {
    /// The run's machine, versions and date.
    pub environment: Environment,
    /// Every measurement of every scenario.
    pub measurements: Vec<Measurement>,
    /// Quick mode.
    pub quick: bool,
    /// Rounds.
    pub rounds: u32,
    /// Seconds per window.
    pub seconds: u32,
    /// The command that was run (files from before it was recorded: `bench/run.sh`).
    pub command: String,
}

/// The file of one scenario, as [`write_all`] writes it.
#[derive(Deserialize)]
struct ScenarioFile {
    environment: Environment,
    quick: bool,
    rounds: u32,
    seconds: u32,
    #[serde(default)]
    command: Option<String>,
    measurements: Vec<Measurement>,
}

/// Reads the results of the last run back from `bench/results/*.json`.
pub fn read_results(repo: &std::path::Path) -> Result<Recorded, String> {
    let dir = repo.join("bench/results");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    let mut recorded: Option<Recorded> = None;
    for path in paths {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: ScenarioFile =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        match &mut recorded {
            Some(recorded) => recorded.measurements.extend(file.measurements),
            None => {
                recorded = Some(Recorded {
                    environment: file.environment,
                    measurements: file.measurements,
                    quick: file.quick,
                    rounds: file.rounds,
                    seconds: file.seconds,
                    command: file.command.unwrap_or_else(|| "bench/run.sh".to_owned()),
                });
            }
        }
    }
    recorded.ok_or_else(|| format!("no results in {}", dir.display()))
}

/// Writes every output.
pub fn write_all(
    options: &Options,
    environment: &Environment,
    servers: &[&ServerSpec],
    measurements: &[Measurement],
) -> Result<(), String> {
    let results = options.repo.join("bench/results");
    std::fs::create_dir_all(&results).map_err(|e| format!("{}: {e}", results.display()))?;
    let mut scenarios: Vec<&str> = measurements.iter().map(|m| m.scenario.as_str()).collect();
    scenarios.sort_unstable();
    scenarios.dedup();
    for scenario in &scenarios {
        let raw: Vec<&Measurement> = measurements
            .iter()
            .filter(|m| m.scenario == *scenario)
            .collect();
        let mut summary: BTreeMap<String, BTreeMap<String, Stat>> = BTreeMap::new();
        for m in &raw {
            for metric in m.metrics.keys() {
                if let Some(s) = stat(measurements, scenario, &m.server, metric) {
                    summary
                        .entry(m.server.clone())
                        .or_default()
                        .insert(metric.clone(), s);
                }
            }
        }
        let document = serde_json::json!({
            "scenario": scenario,
            "environment": environment,
            "quick": options.quick,
            "rounds": options.rounds,
            "seconds": options.seconds,
            "command": options.command,
            "summary": summary,
            "measurements": raw,
        });
        let path = results.join(format!("{scenario}.json"));
        let text = serde_json::to_string_pretty(&document).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    write_report(options, environment, servers, measurements)
}

/// Writes bench/chart.svg and BENCHMARKS.md (with the current `bench/analysis.md`).
pub fn write_report(
    options: &Options,
    environment: &Environment,
    servers: &[&ServerSpec],
    measurements: &[Measurement],
) -> Result<(), String> {
    let svg = chart(servers, measurements);
    let svg_path = options.repo.join("bench/chart.svg");
    std::fs::write(&svg_path, svg).map_err(|e| format!("{}: {e}", svg_path.display()))?;
    let markdown = markdown(options, environment, servers, measurements);
    let md_path = options.repo.join("BENCHMARKS.md");
    std::fs::write(&md_path, markdown).map_err(|e| format!("{}: {e}", md_path.display()))?;
    Ok(())
}

fn markdown(
    options: &Options,
    environment: &Environment,
    servers: &[&ServerSpec],
    measurements: &[Measurement],
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# RGI benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `{}` — do not edit by hand (the analysis section comes from `bench/analysis.md`).\n",
        options.command
    );
    if options.quick {
        let _ = writeln!(
            md,
            "> **Quick mode**: one short round — indicative only; run `bench/run.sh` for the published figures.\n"
        );
    }
    let flagged = measurements.iter().filter(|m| !m.clean).count();
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| Date | {} |", environment.date);
    let _ = writeln!(md, "| Machine | {} |", environment.cpu);
    let _ = writeln!(md, "| Kernel | {} |", environment.kernel);
    let _ = writeln!(md, "| Rust | {} |", environment.rustc);
    let _ = writeln!(md, "| Load tools | {} |", environment.tools);
    let crates: Vec<String> = environment
        .crates
        .iter()
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    let _ = writeln!(md, "| Crates | {} |", crates.join(", "));
    let _ = writeln!(
        md,
        "| Method | server pinned to core 0 (`taskset -c 0`), harness and load on core 1; one thread per server (tokio `current_thread`, actix 1 worker, rgi-server `--workers 1`); {} round(s) of {} s windows after 1 s warm-up, servers interleaved A B C … per round; median (min–max) over clean windows; **bold** = ratio to bare hyper from this run |",
        options.rounds, options.seconds
    );
    let _ = writeln!(
        md,
        "| CPU check | a window is clean when core 0's busy time (`/proc/stat`) minus the server's CPU time (`/proc/PID/task/*/schedstat`) is ≤ 5 % of the window; flagged windows are retried once and left out of the medians; ⚠ = no clean window for that figure. This run: {flagged} flagged window(s) of {} |",
        measurements.len()
    );
    let _ = writeln!(
        md,
        "| rgi-server flags | `--workers 1 --no-access-log --log-level warn` (peers log nothing either) |\n"
    );
    let _ = writeln!(md, "![RGI benchmark chart](bench/chart.svg)\n");
    let _ = writeln!(md, "## Targets (issue #8, \"Done when\")\n");
    let _ = writeln!(
        md,
        "| Target | Figures (medians) | Verdict |\n|---|---|---|"
    );
    for (target, figures, verdict) in verdicts(measurements) {
        let _ = writeln!(md, "| {target} | {figures} | {verdict} |");
    }
    let _ = writeln!(md);
    for table in tables() {
        let present: Vec<&&ServerSpec> = servers
            .iter()
            .filter(|s| {
                measurements
                    .iter()
                    .any(|m| m.scenario == table.scenario && m.server == s.name)
            })
            .collect();
        if present.is_empty() {
            continue;
        }
        let _ = writeln!(md, "## {}\n", table.title);
        if !table.note.is_empty() {
            let _ = writeln!(md, "{}\n", table.note);
        }
        let headers: Vec<&str> = table.columns.iter().map(|c| c.header).collect();
        let _ = writeln!(md, "| Server | {} |", headers.join(" | "));
        let _ = writeln!(md, "|---|{}", "---|".repeat(headers.len()));
        for spec in present {
            let cells: Vec<String> = table
                .columns
                .iter()
                .map(|c| {
                    cell(
                        stat(measurements, table.scenario, spec.name, c.metric),
                        stat(measurements, table.scenario, table.baseline, c.metric),
                        c.ratio,
                    )
                })
                .collect();
            let name = if spec.contender {
                format!("**{}**", spec.label)
            } else {
                spec.label.to_owned()
            };
            let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
        }
        let _ = writeln!(md);
    }
    let analysis =
        std::fs::read_to_string(options.repo.join("bench/analysis.md")).unwrap_or_default();
    if !analysis.trim().is_empty() {
        let _ = writeln!(md, "{}", analysis.trim_end());
        let _ = writeln!(md);
    }
    let _ = writeln!(
        md,
        "## Reproduce\n\n```sh\nbench/run.sh            # full run (≈ 15–20 min on 2 cores, builds included when warm)\nbench/run.sh --quick    # one short round (≈ 3 min)\ncd bench && cargo bench -p rgi-bench-micro   # micro-benchmarks\n```\n\nRaw windows: `bench/results/<scenario>.json`."
    );
    md
}

/// One row per "Done when" target: (target, figures, verdict).
fn verdicts(measurements: &[Measurement]) -> Vec<(String, String, String)> {
    let med =
        |scenario: &str, server: &str, metric: &str| stat(measurements, scenario, server, metric);
    let mut rows = Vec::new();
    // Lower is better: `a ≤ b × factor (+ slack)`.
    let mut at_most = |target: &str,
                       a: Option<Stat>,
                       b: Option<Stat>,
                       factor: f64,
                       slack: f64,
                       unit: &str,
                       names: (&str, &str)| {
        let (Some(a), Some(b)) = (a, b) else {
            rows.push((
                target.to_owned(),
                "not measured".to_owned(),
                "not measured".to_owned(),
            ));
            return;
        };
        let limit = b.median * factor + slack;
        let figures = format!(
            "{} {} {unit} vs {} {} {unit}",
            names.0,
            number(a.median),
            names.1,
            number(b.median)
        );
        let verdict = if a.median <= limit {
            "✅ met".to_owned()
        } else {
            let over = (a.median / limit - 1.0) * 100.0;
            let spread = if a.min <= b.max * factor + slack {
                " (within the run-to-run spread)"
            } else {
                ""
            };
            format!("❌ missed by {over:.1}%{spread}")
        };
        let flag = if a.flagged || b.flagged {
            " ⚠ flagged"
        } else {
            ""
        };
        rows.push((target.to_owned(), figures, format!("{verdict}{flag}")));
    };
    let cpu = "cpu_us_per_request";
    at_most(
        "rgi+hello server CPU/request ≤ bare hyper, plaintext",
        med("plaintext", "rgi-hello", cpu),
        med("plaintext", "hyper", cpu),
        1.0,
        0.0,
        "µs",
        ("rgi", "hyper"),
    );
    at_most(
        "rgi+hello server CPU/request ≤ bare hyper, 1 KiB echo",
        med("echo", "rgi-hello", cpu),
        med("echo", "hyper", cpu),
        1.0,
        0.0,
        "µs",
        ("rgi", "hyper"),
    );
    at_most(
        "idle memory/connection ≤ bare hyper http1 (rgi serving h1 + h2c on one port)",
        med("memory", "rgi-hello", "bytes_per_connection"),
        med("memory", "hyper", "bytes_per_connection"),
        1.0,
        0.0,
        "B",
        ("rgi", "hyper"),
    );
    at_most(
        "allocations/plaintext request ≤ bare hyper + 2",
        med("allocs-plaintext", "rgi-hello", "allocs_per_request"),
        med("allocs-plaintext", "hyper", "allocs_per_request"),
        1.0,
        2.0 + ALLOCATION_NOISE,
        "",
        ("rgi", "hyper"),
    );
    at_most(
        "axum on rgi-server CPU/request ≤ 1.05 × `axum::serve`, plaintext",
        med("plaintext", "rgi-axum", cpu),
        med("plaintext", "axum", cpu),
        1.05,
        0.0,
        "µs",
        ("rgi+axum", "axum"),
    );
    at_most(
        "axum on rgi-server CPU/request ≤ 1.05 × `axum::serve`, echo",
        med("echo", "rgi-axum", cpu),
        med("echo", "axum", cpu),
        1.05,
        0.0,
        "µs",
        ("rgi+axum", "axum"),
    );
    // Higher is better: `a ≥ b`.
    let mut at_least = |target: &str, a: Option<Stat>, b: Option<Stat>, names: (&str, &str)| {
        let (Some(a), Some(b)) = (a, b) else {
            rows.push((
                target.to_owned(),
                "not measured".to_owned(),
                "not measured".to_owned(),
            ));
            return;
        };
        let figures = format!(
            "{} {} vs {} {} req/s",
            names.0,
            number(a.median),
            names.1,
            number(b.median)
        );
        let verdict = if a.median >= b.median {
            "✅ met".to_owned()
        } else {
            let under = (1.0 - a.median / b.median) * 100.0;
            let spread = if a.max >= b.min {
                " (within the run-to-run spread)"
            } else {
                ""
            };
            format!("❌ missed by {under:.1}%{spread}")
        };
        let flag = if a.flagged || b.flagged {
            " ⚠ flagged"
        } else {
            ""
        };
        rows.push((target.to_owned(), figures, format!("{verdict}{flag}")));
    };
    at_least(
        "pipelined plaintext ≥ hyper with `pipeline_flush`",
        med("pipelined", "rgi-hello", "rps"),
        med("pipelined", "hyper-pf", "rps"),
        ("rgi", "hyper-pf"),
    );
    at_least(
        "pipelined plaintext ≥ actix-web",
        med("pipelined", "rgi-hello", "rps"),
        med("pipelined", "actix", "rps"),
        ("rgi", "actix"),
    );
    at_least(
        "h2c ≥ hyper-util's auto builder",
        med("h2c", "rgi-hello", "rps"),
        med("h2c", "hyper-auto", "rps"),
        ("rgi", "hyper-auto"),
    );
    at_least(
        "axum on rgi-server beats `axum::serve` on pipelined plaintext",
        med("pipelined", "rgi-axum", "rps"),
        med("pipelined", "axum", "rps"),
        ("rgi+axum", "axum"),
    );
    rows
}

/// The chart: one panel per scenario, one bar per server, each the server's efficiency relative
/// to the scenario's baseline (longer is better).
fn chart(servers: &[&ServerSpec], measurements: &[Measurement]) -> String {
    // (scenario, metric, higher is better, baseline, title)
    let panels = [
        (
            "plaintext",
            "cpu_us_per_request",
            false,
            "hyper",
            "Plaintext: server CPU per request",
        ),
        (
            "pipelined",
            "rps",
            true,
            "hyper",
            "Pipelined ×16: requests per second",
        ),
        (
            "echo",
            "cpu_us_per_request",
            false,
            "hyper",
            "1 KiB echo: server CPU per request",
        ),
        (
            "h2c",
            "rps",
            true,
            "hyper-auto",
            "h2c: requests per second (vs hyper-util auto)",
        ),
        (
            "stream",
            "cpu_s_per_gb",
            false,
            "hyper",
            "100 MiB download: server CPU per GB",
        ),
        (
            "memory",
            "bytes_per_connection",
            false,
            "hyper",
            "Idle memory per connection",
        ),
        (
            "websocket",
            "cpu_us_per_request",
            false,
            "ws-tungstenite",
            "WebSocket echo: server CPU per message (vs tungstenite)",
        ),
        (
            "allocs-plaintext",
            "allocs_per_request",
            false,
            "hyper",
            "Allocations per plaintext request",
        ),
    ];
    let bar_height = 16.0;
    let label_width = 230.0;
    let plot_width = 420.0;
    let width = label_width + plot_width + 130.0;
    let mut body = String::new();
    let mut y = 50.0;
    for (scenario, metric, higher, baseline, title) in panels {
        let Some(base) = stat(measurements, scenario, baseline, metric) else {
            continue;
        };
        let rows: Vec<(&ServerSpec, Stat, f64)> = servers
            .iter()
            .filter_map(|s| {
                let st = stat(measurements, scenario, s.name, metric)?;
                // A zero figure (no allocations at all) has no meaningful ratio: the tables
                // show it, the chart leaves it out.
                if st.median.abs() < 1e-9 {
                    return None;
                }
                let relative = if higher {
                    st.median / base.median.max(1e-12)
                } else {
                    base.median / st.median.max(1e-12)
                };
                Some((*s, st, relative))
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let scale_max = rows.iter().map(|r| r.2).fold(1.0f64, f64::max).min(20.0);
        let _ = writeln!(
            body,
            r#"<text x="10" y="{y}" font-weight="bold">{}</text>"#,
            escape(title)
        );
        y += 8.0;
        let top = y;
        for (spec, st, relative) in &rows {
            let w = (relative.min(scale_max) / scale_max) * plot_width;
            let color = if spec.contender {
                "#d9480f"
            } else if spec.name == baseline {
                "#495057"
            } else {
                "#adb5bd"
            };
            let _ = writeln!(
                body,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                label_width - 6.0,
                y + bar_height - 4.0,
                escape(spec.name)
            );
            let _ = writeln!(
                body,
                r#"<rect x="{label_width}" y="{y}" width="{w:.1}" height="{}" fill="{color}"/>"#,
                bar_height - 3.0
            );
            let flag = if st.flagged { " ⚠" } else { "" };
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{}">{relative:.2}× ({}){flag}</text>"#,
                label_width + w + 4.0,
                y + bar_height - 4.0,
                number(st.median)
            );
            y += bar_height;
        }
        let one = label_width + plot_width / scale_max;
        let _ = writeln!(
            body,
            r##"<line x1="{one:.1}" y1="{}" x2="{one:.1}" y2="{y}" stroke="#212529" stroke-dasharray="3,2"/>"##,
            top - 2.0
        );
        y += 28.0;
    }
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="15" font-weight="bold">RGI benchmarks: efficiency relative to the baseline (dashed line = 1.0; longer is better)</text>
<text x="10" y="38" fill="#495057">orange: RGI servers · dark: baseline · grey: peers · (median figure) · ⚠ no clean window</text>
{body}</svg>
"##
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
