//! Application mode: drive an application (or a framework's adapter) in-process, through
//! `rgi-test`'s `TestClient` with `Lint` in strict mode, with legal and edge-case sequences, and
//! check what the application does with them.
//!
//! Framework authors call [`check`] from a `#[test]`:
//!
//! ```no_run
//! # use rgi_conformance::app::{AppTarget, check};
//! # async fn example() {
//! let report = check(|| rgi_conformance::probe::Probe::new(), &AppTarget::new("/meta", "/echo")).await;
//! assert!(report.is_success(), "{}", report.to_text());
//! # }
//! ```

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use rgi::Lifespan;
use rgi_test::{Level, Lint, LintMode, LintReport, Side, TestClient};

use crate::report::{CaseResult, Outcome, Report};

/// The longest any single application-mode case may take.
const CASE_BOUND: Duration = Duration::from_secs(30);

/// Where the cases send their requests.
#[derive(Debug, Clone)]
pub struct AppTarget {
    /// A path the application answers to `GET` (any status).
    pub get: String,
    /// A path the application answers to `POST` with a body (any status).
    pub post: String,
}

impl AppTarget {
    /// Cases send `GET get` and `POST post`.
    pub fn new(get: impl Into<String>, post: impl Into<String>) -> Self {
        Self {
            get: get.into(),
            post: post.into(),
        }
    }
}

/// The application-mode cases: name and the requirements each checks.
pub const CASES: [(&str, &[&str]); 7] = [
    (
        "app: starts and shuts down once",
        &["LIFE-START-3", "LIFE-SHUT-1"],
    ),
    (
        "app: GET answered within the rules",
        &["HTTP-RESP-2", "HTTP-RESP-5", "HTTP-RESP-12", "HTTP-TRAIL-7"],
    ),
    (
        "app: HEAD answered without body data",
        &["HTTP-FRAME-6", "HTTP-RESP-12"],
    ),
    (
        "app: slow chunked request body",
        &["HTTP-BODY-9", "CORE-APP-2"],
    ),
    ("app: request trailers", &["HTTP-TRAIL-1", "HTTP-BODY-9"]),
    (
        "app: client gone mid-request",
        &["HTTP-BODY-9", "CORE-ERR-9"],
    ),
    (
        "app: client gone mid-response",
        &["CORE-CANCEL-5", "CORE-APP-2"],
    ),
];

/// Runs every application-mode case; `make` builds a fresh lifespan for each.
pub async fn check<L, F>(make: F, target: &AppTarget) -> Report
where
    L: Lifespan,
    F: Fn() -> L,
{
    let mut report = Report::new();
    for (index, (name, ids)) in CASES.iter().enumerate() {
        let outcome = match bounded(run_case(index, make(), target)).await {
            Ok(()) => Outcome::Passed,
            Err(why) => Outcome::Failed(why),
        };
        report.push(CaseResult { name, ids, outcome });
    }
    report
}

async fn bounded(case: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::time::timeout(CASE_BOUND, case)
        .await
        .unwrap_or_else(|_| Err(format!("the case did not finish within {CASE_BOUND:?}")))
}

/// Fails with the application's `MUST` violations, if any.
fn must_be_clean(report: &LintReport) -> Result<(), String> {
    let broken: Vec<String> = report
        .violations()
        .into_iter()
        .filter(|v| v.side == Side::App && v.level == Level::Must)
        .map(|v| v.message)
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(broken.join("\n       "))
    }
}

async fn run_case<L: Lifespan>(
    index: usize,
    lifespan: L,
    target: &AppTarget,
) -> Result<(), String> {
    let lint = Lint::lifespan(lifespan).mode(LintMode::Strict);
    let report = lint.report();
    let client = TestClient::start(lint)
        .await
        .map_err(|e| format!("startup failed: {e}"))?;
    let result = match index {
        0 => Ok(()),
        1 => {
            let mut response = client.get(&target.get).send().await;
            response
                .bytes()
                .await
                .map(drop)
                .map_err(|e| format!("GET {}: the body failed: {e}", target.get))
        }
        2 => {
            let mut response = client.head(&target.get).send().await;
            let body = response.bytes().await.map_err(|e| e.to_string())?;
            if body.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "HEAD {} delivered {} body bytes",
                    target.get,
                    body.len()
                ))
            }
        }
        3 => {
            let chunks: Vec<Bytes> = (0..8).map(|i| Bytes::from(format!("chunk {i};"))).collect();
            let mut response = client
                .post(&target.post)
                .chunks(chunks)
                .chunk_delay(Duration::from_millis(5))
                .send()
                .await;
            response.bytes().await.map(drop).map_err(|e| e.to_string())
        }
        4 => {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-conformance", HeaderValue::from_static("1"));
            let mut response = client
                .post(&target.post)
                .chunks(vec![Bytes::from_static(b"abc"), Bytes::from_static(b"def")])
                .trailers(trailers)
                .header("te", "trailers")
                .send()
                .await;
            response.bytes().await.map(drop).map_err(|e| e.to_string())
        }
        5 => {
            let outcome = client
                .post(&target.post)
                .body(Bytes::from_static(b"a body the client never finishes"))
                .disconnect_after_request_bytes(4)
                .try_send()
                .await;
            if let Ok(mut response) = outcome {
                drop(response.bytes().await);
            }
            Ok(())
        }
        _ => {
            let mut response = client.get(&target.get).send().await;
            drop(response.frame().await);
            drop(response);
            // The application must still serve after being dropped mid-response.
            let mut again = client.get(&target.get).send().await;
            again
                .bytes()
                .await
                .map(drop)
                .map_err(|e| format!("the application did not serve after a dropped response: {e}"))
        }
    };
    client.shutdown().await;
    result?;
    must_be_clean(&report)
}
