//! What Lint found: [`Violation`], [`Side`], [`Level`] and [`LintReport`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The party that broke a requirement (SPEC.md section 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Side {
    /// The application (or framework, or middleware acting as one).
    App,
    /// The server (or whatever plays the server for the application).
    Server,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::App => "app",
            Side::Server => "server",
        })
    }
}

/// The strength of the broken requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Level {
    /// A `MUST` or `MUST NOT`: [`crate::LintMode::Strict`] fails the exchange.
    Must,
    /// A `SHOULD` or `SHOULD NOT`: reported in every mode, never failed.
    Should,
}

/// One broken requirement of SPEC.md, seen at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Violation {
    /// The requirement ID, as defined in SPEC.md (for example `HTTP-RESP-5`).
    pub id: &'static str,
    /// Who broke it.
    pub side: Side,
    /// `MUST` or `SHOULD`.
    pub level: Level,
    /// What happened; starts with the requirement ID and ends with the request line.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The error a request or response body yields when [`crate::LintMode::Strict`] fails an
/// exchange after its head: the violation that made it fail.
#[derive(Debug, Clone, thiserror::Error)]
#[error("rgi-test lint: {0}")]
pub struct LintError(pub Violation);

/// The violations a [`crate::Lint`] recorded; a cheap handle shared with the Lint.
///
/// It keeps the first [`LintReport::CAPACITY`] violations and counts the rest
/// ([`LintReport::dropped`]), so that a Lint left running in production cannot make memory
/// grow without bound.
///
/// ```
/// use rgi_test::{Lint, LintReport};
/// # struct App;
/// # impl rgi::App for App {
/// #     type Body = rgi::Body;
/// #     type Error = std::convert::Infallible;
/// #     async fn call(&self, _: rgi::Request) -> Result<rgi::http::Response<rgi::Body>, Self::Error> {
/// #         Ok(rgi::http::Response::new(rgi::Body::empty()))
/// #     }
/// # }
/// let lint = Lint::new(App);
/// let report: LintReport = lint.report();
/// assert!(report.is_clean());
/// ```
#[derive(Clone, Default)]
pub struct LintReport {
    violations: Arc<Mutex<Vec<Violation>>>,
    dropped: Arc<AtomicU64>,
}

impl LintReport {
    /// How many violations a report keeps.
    pub const CAPACITY: usize = 4096;

    /// How many violations were found after the report was full, and not kept.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A copy of the violations recorded so far, in order.
    pub fn violations(&self) -> Vec<Violation> {
        self.lock().clone()
    }

    /// The IDs of the violations recorded so far, in order.
    pub fn ids(&self) -> Vec<&'static str> {
        self.lock().iter().map(|v| v.id).collect()
    }

    /// Whether a violation of requirement `id` was recorded.
    pub fn contains(&self, id: &str) -> bool {
        self.lock().iter().any(|v| v.id == id)
    }

    /// Whether nothing was recorded.
    pub fn is_clean(&self) -> bool {
        self.lock().is_empty() && self.dropped() == 0
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.lock().clear();
        self.dropped.store(0, Ordering::Relaxed);
    }

    /// Panics with every recorded violation unless there is none (a test helper).
    ///
    /// # Panics
    ///
    /// When a violation was recorded.
    #[track_caller]
    pub fn assert_clean(&self) {
        let violations = self.lock();
        if !violations.is_empty() {
            let list: Vec<String> = violations.iter().map(|v| v.message.clone()).collect();
            panic!("rgi-test lint found violations:\n{}", list.join("\n"));
        }
    }

    pub(crate) fn push(&self, violation: Violation) {
        let mut violations = self.lock();
        if violations.len() < Self::CAPACITY {
            violations.push(violation);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Violation>> {
        self.violations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for LintReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.lock().iter()).finish()
    }
}
