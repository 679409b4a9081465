//! The `lifespan_state` example: a resource opened at startup, shared by every request, and
//! closed at shutdown (`LIFE-START`, `LIFE-STATE`, `LIFE-SHUT`).
//!
//! The "resource" is a [`Database`]: a visit counter with an open flag. [`Startup`] opens it
//! (and fails, for demonstration, when the environment variable `LIFESPAN_STATE_FAIL` is set);
//! the running application [`LifespanState`] holds it, so every request sees the same one;
//! `App::shutdown` closes it and prints `lifespan_state: resource closed` to standard output.
//!
//! | Request | Response |
//! |---|---|
//! | `GET /` | `200 text/plain` `visits: N` (N counts the requests to `/`, from 1) |
//! | anything else | `404` |

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use http::{HeaderValue, Method, Response, StatusCode, header};
use rgi::{App, Body, Lifespan, Request, ServerInfo, StartupError};

/// The environment variable that makes [`Startup`] fail (for trying out startup failures).
pub const FAIL_VARIABLE: &str = "LIFESPAN_STATE_FAIL";

/// The line printed to standard output when the resource is closed.
pub const CLOSED_LINE: &str = "lifespan_state: resource closed";

/// A stand-in for a database connection pool: opened once, shared, closed once.
#[derive(Debug)]
pub struct Database {
    open: AtomicBool,
    visits: AtomicU64,
}

impl Database {
    /// Opens the resource.
    pub fn open() -> Self {
        Self {
            open: AtomicBool::new(true),
            visits: AtomicU64::new(0),
        }
    }

    /// Whether the resource is open.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Records a visit and returns the count so far.
    pub fn visit(&self) -> u64 {
        self.visits.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Closes the resource; returns whether it was open.
    pub fn close(&self) -> bool {
        self.open.swap(false, Ordering::AcqRel)
    }
}

/// The startup half: what the binary knows before the application runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Startup;

impl Lifespan for Startup {
    type App = LifespanState;

    async fn startup(self, server: ServerInfo) -> Result<LifespanState, StartupError> {
        if std::env::var_os(FAIL_VARIABLE).is_some() {
            return Err(StartupError::new(
                "the database is unreachable (LIFESPAN_STATE_FAIL is set)",
            ));
        }
        tracing::info!(server = server.name(), "resource opened");
        Ok(LifespanState::new(Arc::new(Database::open())))
    }
}

/// The running application: the shared resource is part of the app value.
#[derive(Debug, Clone)]
pub struct LifespanState {
    database: Arc<Database>,
}

impl LifespanState {
    /// An application over `database`.
    pub fn new(database: Arc<Database>) -> Self {
        Self { database }
    }

    /// The shared resource.
    pub fn database(&self) -> &Arc<Database> {
        &self.database
    }
}

impl App for LifespanState {
    type Body = Body;
    type Error = Infallible;

    async fn call(&self, req: Request) -> Result<Response<Body>, Infallible> {
        let mut response = match (req.method(), req.uri().path()) {
            (&Method::GET, "/") if self.database.is_open() => {
                let visits = self.database.visit();
                Response::new(Body::from(format!("visits: {visits}")))
            }
            (&Method::GET, "/") => {
                let mut response = Response::new(Body::from("the resource is closed"));
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                response
            }
            _ => {
                let mut response = Response::new(Body::from("Not Found"));
                *response.status_mut() = StatusCode::NOT_FOUND;
                response
            }
        };
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Ok(response)
    }

    async fn shutdown(&self) {
        if self.database.close() {
            tracing::info!("resource closed");
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{CLOSED_LINE}");
            let _ = stdout.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_visits_and_closes_once() {
        let app = Startup.startup(ServerInfo::new("test", "0")).await.unwrap();
        for expected in 1..=3 {
            let req = http::Request::get("/").body(Body::empty()).unwrap();
            let body = app
                .call(req)
                .await
                .unwrap()
                .into_body()
                .collect()
                .await
                .unwrap();
            assert_eq!(body.to_bytes(), format!("visits: {expected}"));
        }
        app.shutdown().await;
        assert!(!app.database().is_open());
        let req = http::Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(
            app.call(req).await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
