//! [`ProbeLifespan`]: the probe's lifespan, driven by environment variables so that the suite's
//! `--spawn` cases can ask any server process hosting it for a failing startup or shutdown.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rgi::{Lifespan, ServerInfo, StartupError};

use super::Probe;
use super::routes::{Lab, Lifecycle, STARTUPS};

/// How the startup of a [`ProbeLifespan`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupFailure {
    /// Startup returns `Err(StartupError)`.
    Error,
    /// Startup panics.
    Panic,
}

/// The lifespan of the probe: records the [`ServerInfo`] it is given (reported by `/lifespan`),
/// logs its shutdown on stderr, and fails on request.
///
/// [`ProbeLifespan::from_env`] reads:
///
/// | Variable | Effect |
/// |---|---|
/// | `RGI_PROBE_FAIL_STARTUP` | `error` (or `1`): startup returns an error; `panic`: startup panics |
/// | `RGI_PROBE_STARTUP_DELAY_MS` | startup waits this long before it returns |
/// | `RGI_PROBE_SHUTDOWN_DELAY_MS` | `App::shutdown` waits this long before it returns |
/// | `RGI_PROBE_SHUTDOWN_PANIC` | `1`: `App::shutdown` panics |
///
/// On stderr the probe writes `rgi-probe: startup`, `rgi-probe: started` (startup succeeded),
/// `rgi-probe: shutdown started`, `rgi-probe: shutdown finished`, `rgi-probe: application
/// dropped`, `rgi-probe: held call ID dropped` and `rgi-probe: call after shutdown` as they
/// happen.
#[derive(Debug, Clone, Default)]
pub struct ProbeLifespan {
    /// How startup fails, if it does.
    pub fail_startup: Option<StartupFailure>,
    /// How long startup takes.
    pub startup_delay: Duration,
    /// How long `App::shutdown` takes.
    pub shutdown_delay: Duration,
    /// Whether `App::shutdown` panics.
    pub shutdown_panic: bool,
}

/// The message of the startup failure the probe reports.
pub const STARTUP_FAILURE_MESSAGE: &str = "rgi-probe: startup fails on purpose";

fn millis(name: &str) -> Duration {
    let ms = std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_millis(ms.min(60_000))
}

impl ProbeLifespan {
    /// A lifespan that starts and stops normally.
    pub fn new() -> Self {
        Self::default()
    }

    /// A lifespan configured by the `RGI_PROBE_*` environment variables (see the type's docs).
    pub fn from_env() -> Self {
        let fail_startup = match std::env::var("RGI_PROBE_FAIL_STARTUP").as_deref() {
            Ok("panic") => Some(StartupFailure::Panic),
            Ok("" | "0") | Err(_) => None,
            Ok(_) => Some(StartupFailure::Error),
        };
        Self {
            fail_startup,
            startup_delay: millis("RGI_PROBE_STARTUP_DELAY_MS"),
            shutdown_delay: millis("RGI_PROBE_SHUTDOWN_DELAY_MS"),
            shutdown_panic: std::env::var("RGI_PROBE_SHUTDOWN_PANIC").is_ok_and(|v| v == "1"),
        }
    }
}

impl Lifespan for ProbeLifespan {
    type App = Probe;

    async fn startup(self, server: ServerInfo) -> Result<Probe, StartupError> {
        STARTUPS.fetch_add(1, Ordering::SeqCst);
        eprintln!("rgi-probe: startup");
        tokio::time::sleep(self.startup_delay).await;
        match self.fail_startup {
            Some(StartupFailure::Error) => {
                return Err(StartupError::new(STARTUP_FAILURE_MESSAGE));
            }
            Some(StartupFailure::Panic) => panic!("{STARTUP_FAILURE_MESSAGE} (panic)"),
            None => {}
        }
        eprintln!("rgi-probe: started");
        Ok(Probe {
            lab: Lab::with_lifecycle(Lifecycle {
                server,
                shutdown_delay: self.shutdown_delay,
                shutdown_panic: self.shutdown_panic,
            }),
            ..Probe::default()
        })
    }
}
