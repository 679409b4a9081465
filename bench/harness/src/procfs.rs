//! What the harness reads from `/proc`: a server's CPU time, a core's busy time, RSS,
//! open file descriptors and the kernel's count of accepted TCP connections.

use std::fs;
use std::time::Instant;

/// Kernel clock ticks per second of `/proc/stat` (`USER_HZ`: 100 on every Linux ABI we run on).
const USER_HZ: f64 = 100.0;

/// The CPU time every thread of `pid` has run, in seconds (sum of
/// `/proc/PID/task/*/schedstat` first fields).
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let mut nanos: u128 = 0;
    for task in tasks.flatten() {
        let path = task.path().join("schedstat");
        if let Ok(text) = fs::read_to_string(path)
            && let Some(run) = text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u128>().ok())
        {
            nanos += run;
        }
    }
    nanos as f64 / 1e9
}

/// Busy time of one core so far, in seconds (user, nice, system, irq, softirq and steal from
/// `/proc/stat`; without IRQ time accounting interrupt time is also part of the interrupted
/// task's run time, so all of it is compared with the server's).
pub fn core_busy_seconds(core: usize) -> f64 {
    let Ok(text) = fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let label = format!("cpu{core}");
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        if fields.next() != Some(label.as_str()) {
            continue;
        }
        let values: Vec<u64> = fields.filter_map(|v| v.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal
        let busy: u64 = [0usize, 1, 2, 5, 6, 7]
            .iter()
            .filter_map(|i| values.get(*i))
            .sum();
        return busy as f64 / USER_HZ;
    }
    0.0
}

/// Resident set size of `pid`, in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> u64 {
    status_field(pid, "VmRSS:").map_or(0, |kb| kb * 1024)
}

fn status_field(pid: u32, name: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|line| line.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// Open file descriptors of `pid`.
pub fn open_fds(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

/// TCP connections the kernel has accepted so far, system-wide (`Tcp: PassiveOpens`).
pub fn passive_opens() -> u64 {
    let Ok(text) = fs::read_to_string("/proc/net/snmp") else {
        return 0;
    };
    let mut lines = text.lines().filter(|line| line.starts_with("Tcp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "PassiveOpens")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

/// A snapshot taken at the start of a measured window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    started: Instant,
    server_cpu: f64,
    core0_busy: f64,
    passive_opens: u64,
}

/// What happened during a measured window.
#[derive(Debug, Clone, Copy)]
pub struct WindowDelta {
    /// Wall time, seconds.
    pub wall: f64,
    /// CPU time of the server, seconds.
    pub server_cpu: f64,
    /// Busy time of core 0 not accounted to the server, as a fraction of the wall time.
    pub core0_other: f64,
    /// TCP connections accepted (system-wide).
    pub accepted: u64,
}

impl Window {
    /// Starts a window for the server `pid` (pinned to core 0).
    pub fn start(pid: u32) -> Self {
        Self {
            started: Instant::now(),
            server_cpu: process_cpu_seconds(pid),
            core0_busy: core_busy_seconds(0),
            passive_opens: passive_opens(),
        }
    }

    /// Ends the window.
    pub fn finish(&self, pid: u32) -> WindowDelta {
        let wall = self.started.elapsed().as_secs_f64();
        let server_cpu = process_cpu_seconds(pid) - self.server_cpu;
        let busy = core_busy_seconds(0) - self.core0_busy;
        WindowDelta {
            wall,
            server_cpu,
            core0_other: ((busy - server_cpu) / wall.max(1e-3)).max(0.0),
            accepted: passive_opens().saturating_sub(self.passive_opens),
        }
    }
}
