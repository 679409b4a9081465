//! The `chat` example: a broadcast chat room in the browser.
//!
//! | Request | Response |
//! |---|---|
//! | `GET /` | `200 text/html`: the chat page (a little JavaScript that connects to `/ws`) |
//! | WebSocket handshake at `/ws` | accepted: every text message is sent to everyone in the room |
//! | any other request to `/ws` | `426 Upgrade Required` |
//! | anything else | `404` |
//!
//! Each participant gets a name (`guest-1`, `guest-2`, …), announced to the room as they
//! join and leave. A message is broadcast as `name: text`. Open the page in several tabs to
//! see them talk to each other.
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     rgi_server::run(rgi_examples::chat::Chat::new())
//! }
//! ```

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderValue, Method, Response, StatusCode, header};
use rgi::ws::{Message, WebSocket, WebSocketUpgrade, WsSender};
use rgi::{App, Body, BoxError, Request};
use tokio::sync::broadcast;

/// How many messages the room keeps for a participant who falls behind; a participant
/// further behind misses the oldest ones.
pub const ROOM_BACKLOG: usize = 256;

/// The longest chat message, in bytes; longer ones are cut.
pub const MAX_MESSAGE: usize = 4096;

/// The chat page.
pub const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>RGI chat</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  #log { border: 1px solid #ccc; height: 20rem; overflow-y: auto; padding: .5rem; }
  #log p { margin: .2rem 0; }
  form { display: flex; gap: .5rem; margin-top: .5rem; }
  #text { flex: 1; }
</style>
</head>
<body>
<h1>RGI chat</h1>
<p id="status">connecting…</p>
<div id="log"></div>
<form id="form">
  <input id="text" autocomplete="off" placeholder="Say something" disabled>
  <button id="send" disabled>Send</button>
</form>
<script>
  const log = document.getElementById("log");
  const status = document.getElementById("status");
  const text = document.getElementById("text");
  const send = document.getElementById("send");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(scheme + "//" + location.host + "/ws");

  function show(line) {
    const p = document.createElement("p");
    p.textContent = line;
    log.appendChild(p);
    log.scrollTop = log.scrollHeight;
  }

  socket.addEventListener("open", () => {
    status.textContent = "connected";
    text.disabled = false;
    send.disabled = false;
    text.focus();
  });
  socket.addEventListener("message", (event) => show(event.data));
  socket.addEventListener("close", (event) => {
    status.textContent = "disconnected (" + event.code + ")";
    text.disabled = true;
    send.disabled = true;
  });
  document.getElementById("form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (text.value !== "") {
      socket.send(text.value);
      text.value = "";
    }
  });
</script>
</body>
</html>
"##;

/// The `chat` application: one room, shared by every connection.
#[derive(Debug)]
pub struct Chat {
    room: broadcast::Sender<String>,
    next_guest: AtomicU64,
}

impl Chat {
    /// An empty room.
    pub fn new() -> Self {
        Self {
            room: broadcast::channel(ROOM_BACKLOG).0,
            next_guest: AtomicU64::new(1),
        }
    }
}

impl Default for Chat {
    fn default() -> Self {
        Self::new()
    }
}

impl App for Chat {
    type Body = Body;
    type Error = Infallible;

    async fn call(&self, mut req: Request) -> Result<Response<Body>, Infallible> {
        let path = rgi::path::app_path(&req).map(|path| path.into_owned());
        let response = match path.as_deref() {
            Some(b"/") if matches!(*req.method(), Method::GET | Method::HEAD) => {
                let mut response = Response::new(Body::from(PAGE));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                response
            }
            Some(b"/ws") => match req.extensions_mut().remove::<WebSocketUpgrade>() {
                Some(handshake) => {
                    let name = format!("guest-{}", self.next_guest.fetch_add(1, Ordering::Relaxed));
                    let room = self.room.clone();
                    handshake.accept(move |socket| participate(socket, name, room))
                }
                None => {
                    let mut response = text(StatusCode::UPGRADE_REQUIRED, "WebSocket only");
                    response
                        .headers_mut()
                        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                    response
                }
            },
            _ => text(StatusCode::NOT_FOUND, "Not Found"),
        };
        Ok(response)
    }
}

/// One participant: what they say goes to the room; what the room hears comes to them.
async fn participate(
    socket: WebSocket,
    name: String,
    room: broadcast::Sender<String>,
) -> Result<(), BoxError> {
    let (mut receiver, mut sender) = socket.split();
    // Subscribe before announcing, so that the newcomer sees their own arrival.
    let listening = room.subscribe();
    sender
        .send(Message::text(format!("* you are {name}")))
        .await?;
    let _ = room.send(format!("* {name} joined"));
    let forward = tokio::spawn(forward(listening, sender));

    while let Some(message) = receiver.recv().await {
        match message {
            Ok(Message::Text(text)) => {
                let text = truncate(&text, MAX_MESSAGE);
                let _ = room.send(format!("{name}: {text}"));
            }
            Ok(Message::Close(_)) | Err(_) => break,
            // Binary messages mean nothing here.
            Ok(_) => {}
        }
    }
    forward.abort();
    let _ = room.send(format!("* {name} left"));
    Ok(())
}

/// Sends the room's messages to one participant until they leave.
async fn forward(mut listening: broadcast::Receiver<String>, mut sender: WsSender) {
    loop {
        match listening.recv().await {
            Ok(line) => {
                if sender.send(Message::text(line)).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                let notice = format!("* you missed {missed} messages");
                if sender.send(Message::text(notice)).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncates_on_character_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("hi", 10), "hi");
    }
}
