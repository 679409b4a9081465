//! Probe routes for WebSocket sessions and raw upgrades whose behaviour the cases steer: how a
//! handler ends, whether it reads, how fast it sends. What a handler did is kept per `id` and
//! reported by `/ws-report?id=X` as `name: value` lines.
//!
//! | Route | What it does |
//! |---|---|
//! | `/ws-deny` | answers a handshake with `403` and the body `denied` (no accept) |
//! | `/ws-app?mode=close&code=C&reason=R&id=X` | closes with `C`/`R`, then tries to send; reports `after-close-send: ok` or `error <e>` |
//! | `/ws-app?mode=ok` / `mode=err` / `mode=panic` | the handler returns `Ok`, returns `Err`, or panics at once |
//! | `/ws-app?mode=hold&id=X` | receives nothing until `/ws-release?id=X` (at most 30 s), then counts messages until the close: `received: N` |
//! | `/ws-app?mode=flood&id=X&size=S&count=N` | sends `N` binary messages of `S` bytes; reports `sent: K` as it goes, then `flood: done` or `flood: error <e>` |
//! | `/ws-report?id=X` | what the session `X` reported |
//! | `/ws-release?id=X` | releases a `hold` session |
//! | `/upgrade-decline` | answers `200` (`declined: <offered protocols>`) without accepting an offered upgrade |
//! | `/upgrade-once?mode=ok` / `mode=err` | accepts `probe-echo`; the handler writes `bye` and returns `Ok`, or returns `Err` at once |
//! | `/ws-offer?id=X` | accepts the handshake (no subprotocol) and reports `offered: <the subprotocols the request carried>` |
//! | `/upgrade-both?id=X` | accepts every upgrade the request offers (WebSocket and raw) but returns only the WebSocket response; reports `offered`, and `ws-handler: ran` / `raw-handler: ran` for each handler the server runs |

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use rgi::upgrade::OnUpgrade;
use rgi::ws::{CloseCode, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use rgi::{Body, BoxError, Request};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use super::{number, param, text};

/// How long a `hold` session waits for its release at most.
const HOLD_BOUND: Duration = Duration::from_secs(30);
/// How many session reports are kept (oldest forgotten first).
const REPORT_CAPACITY: usize = 1024;

/// The shared state of the session routes.
#[derive(Debug, Default, Clone)]
pub(super) struct Sessions {
    reports: Arc<Mutex<Reports>>,
}

#[derive(Debug, Default)]
struct Reports {
    lines: HashMap<String, Vec<(String, String)>>,
    order: Vec<String>,
    releases: HashMap<String, Arc<Notify>>,
}

fn lock(reports: &Mutex<Reports>) -> std::sync::MutexGuard<'_, Reports> {
    reports.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The handle a handler reports through.
#[derive(Debug, Clone)]
struct Reporter {
    id: String,
    reports: Arc<Mutex<Reports>>,
}

impl Reporter {
    /// Sets `name` to `value` (replacing an earlier value of `name`).
    fn set(&self, name: &str, value: impl Into<String>) {
        let mut reports = lock(&self.reports);
        let Reports { lines, order, .. } = &mut *reports;
        let entry = lines.entry(self.id.clone()).or_insert_with(|| {
            order.push(self.id.clone());
            Vec::new()
        });
        let value = value.into();
        match entry.iter_mut().find(|(n, _)| n == name) {
            Some(line) => line.1 = value,
            None => entry.push((name.to_owned(), value)),
        }
        while order.len() > REPORT_CAPACITY {
            let old = order.remove(0);
            lines.remove(&old);
        }
    }

    fn release(&self) -> Arc<Notify> {
        lock(&self.reports)
            .releases
            .entry(self.id.clone())
            .or_default()
            .clone()
    }
}

impl Sessions {
    fn reporter(&self, id: &str) -> Reporter {
        Reporter {
            id: id.to_owned(),
            reports: self.reports.clone(),
        }
    }

    /// Answers the routes of this module; `None` for other paths.
    pub(super) fn route(&self, path: &str, mut req: Request) -> Option<Response<Body>> {
        let id = param(&req, "id").unwrap_or("default").to_owned();
        Some(match path {
            "/ws-deny" => {
                let mut response = text(StatusCode::FORBIDDEN, "denied\n".into());
                response
                    .headers_mut()
                    .insert("x-probe", http::HeaderValue::from_static("denied"));
                response
            }
            "/ws-report" => {
                let reports = lock(&self.reports);
                let mut out = String::new();
                for (name, value) in reports.lines.get(&id).into_iter().flatten() {
                    let _ = writeln!(out, "{name}: {value}");
                }
                text(StatusCode::OK, out)
            }
            "/ws-release" => {
                self.reporter(&id).release().notify_one();
                text(StatusCode::OK, "released\n".into())
            }
            "/ws-app" => match req.extensions_mut().remove::<WebSocketUpgrade>() {
                Some(handshake) => {
                    let reporter = self.reporter(&id);
                    let mode = param(&req, "mode").unwrap_or("ok").to_owned();
                    let code = number(&req, "code", 1000);
                    let reason = param(&req, "reason").unwrap_or("").to_owned();
                    let size = number(&req, "size", 65_536).min(1 << 20) as usize;
                    let count = number(&req, "count", 1024).min(1 << 16);
                    handshake.accept(move |socket| async move {
                        match mode.as_str() {
                            "close" => close_then_send(socket, code, reason, reporter).await,
                            "err" => Err("the probe's handler fails on purpose".into()),
                            "panic" => panic!("the probe's handler panics on purpose"),
                            "hold" => hold(socket, reporter).await,
                            "flood" => flood(socket, size, count, reporter).await,
                            _ => Ok(()),
                        }
                    })
                }
                None => text(
                    StatusCode::BAD_REQUEST,
                    "not a WebSocket handshake\n".into(),
                ),
            },
            "/upgrade-decline" => match req.extensions_mut().remove::<OnUpgrade>() {
                Some(offer) => text(
                    StatusCode::OK,
                    format!("declined: {}\n", offer.protocols().join(",")),
                ),
                None => text(StatusCode::BAD_REQUEST, "no upgrade offered\n".into()),
            },
            "/ws-offer" => match req.extensions_mut().remove::<WebSocketUpgrade>() {
                Some(handshake) => {
                    self.reporter(&id)
                        .set("offered", handshake.protocols().join(","));
                    handshake.accept(|_socket| async { Ok(()) })
                }
                None => text(
                    StatusCode::BAD_REQUEST,
                    "not a WebSocket handshake\n".into(),
                ),
            },
            "/upgrade-both" => {
                // UPGRADE-RAW-10: the returned response's marker decides; a handler whose
                // accept response was dropped must never run.
                let raw = req.extensions_mut().remove::<OnUpgrade>();
                let ws = req.extensions_mut().remove::<WebSocketUpgrade>();
                let reporter = self.reporter(&id);
                reporter.set(
                    "offered",
                    format!("websocket={} raw={}", ws.is_some(), raw.is_some()),
                );
                let raw_response = raw.and_then(|offer| {
                    let protocol = offer.protocols().first()?.clone();
                    let reporter = self.reporter(&id);
                    offer
                        .accept(&protocol, move |_io| async move {
                            reporter.set("raw-handler", "ran");
                            Ok::<(), BoxError>(())
                        })
                        .ok()
                });
                match ws {
                    Some(handshake) => {
                        let reporter = self.reporter(&id);
                        handshake.accept(move |_socket| async move {
                            reporter.set("ws-handler", "ran");
                            Ok(())
                        })
                    }
                    None => raw_response.unwrap_or_else(|| {
                        text(StatusCode::BAD_REQUEST, "no upgrade offered\n".into())
                    }),
                }
            }
            "/upgrade-once" => match req.extensions_mut().remove::<OnUpgrade>() {
                Some(offer) => {
                    let fail = param(&req, "mode") == Some("err");
                    let accepted = offer.accept("probe-echo", move |mut io| async move {
                        if fail {
                            return Err::<(), BoxError>(
                                "the probe's upgrade handler fails on purpose".into(),
                            );
                        }
                        io.write_all(b"bye").await?;
                        Ok(())
                    });
                    match accepted {
                        Ok(response) => response,
                        Err(error) => text(StatusCode::BAD_REQUEST, format!("{error}\n")),
                    }
                }
                None => text(StatusCode::BAD_REQUEST, "no upgrade offered\n".into()),
            },
            _ => return None,
        })
    }
}

async fn close_then_send(
    mut socket: WebSocket,
    code: u64,
    reason: String,
    reporter: Reporter,
) -> Result<(), BoxError> {
    let code = u16::try_from(code)
        .ok()
        .and_then(|c| CloseCode::new(c).ok())
        .unwrap_or(CloseCode::NORMAL);
    let frame = CloseFrame::new(code, rgi::ws::Utf8Bytes::from(reason))?;
    socket.close(Some(frame)).await?;
    let after = socket.send(Message::text("after the close")).await;
    reporter.set(
        "after-close-send",
        match after {
            Ok(()) => "ok".to_owned(),
            Err(error) => format!("error {error:?}"),
        },
    );
    // Wait for the peer's answer so that the session ends by the closing handshake.
    while let Some(message) = socket.recv().await {
        if matches!(message, Ok(Message::Close(_)) | Err(_)) {
            break;
        }
    }
    Ok(())
}

async fn hold(mut socket: WebSocket, reporter: Reporter) -> Result<(), BoxError> {
    let release = reporter.release();
    reporter.set("held", "yes");
    // Released, or the bound passed: either way, start reading.
    let _ = tokio::time::timeout(HOLD_BOUND, release.notified()).await;
    reporter.set("held", "released");
    let mut received = 0u64;
    while let Some(message) = socket.recv().await {
        match message {
            Ok(Message::Close(_)) => break,
            Ok(_) => {
                received += 1;
                reporter.set("received", received.to_string());
            }
            Err(error) => {
                reporter.set("error", format!("{error:?}"));
                break;
            }
        }
    }
    reporter.set("received", received.to_string());
    reporter.set("done", "yes");
    Ok(())
}

async fn flood(
    mut socket: WebSocket,
    size: usize,
    count: u64,
    reporter: Reporter,
) -> Result<(), BoxError> {
    let payload = Bytes::from(vec![b'f'; size]);
    reporter.set("sent", "0");
    for sent in 1..=count {
        if let Err(error) = socket.send(Message::binary(payload.clone())).await {
            reporter.set("flood", format!("error {error:?}"));
            return Ok(());
        }
        reporter.set("sent", sent.to_string());
    }
    reporter.set("flood", "done");
    Ok(())
}
