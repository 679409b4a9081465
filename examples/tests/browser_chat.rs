//! The `chat` example in a real browser: headless Chromium opens the chat page twice, and the
//! two pages talk to each other through the server's WebSocket room — once over plain HTTP/1.1
//! (RFC 6455 handshake), once over TLS, where Chromium loads the page over HTTP/2 and opens its
//! WebSocket as an extended `CONNECT` on the same connection (RFC 8441).
//!
//! Chromium (Debian's `chromium`, installed by `scripts/install-test-deps.sh`) is driven over
//! the Chrome DevTools Protocol: one WebSocket connection to the browser, one flattened session
//! per page, and `Runtime.evaluate` to read the page's state and to act as its user. Chromium
//! runs in its own process group with a fresh profile directory; on drop it is asked to
//! terminate, what is left of it is killed, and the directory is removed. Every wait is bounded by a generous upper limit; nothing asserts
//! how fast anything happens.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{WebSocketStream, client_async};

use support::{ScratchDir, ServerOptions, TestServer, self_signed};

/// The `chat` example binary.
const CHAT: &str = env!("CARGO_BIN_EXE_chat");

/// The flags Chromium runs with (besides the profile directory and the DevTools port).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Upper bound for Chromium to start and announce its DevTools port.
const LAUNCH_BOUND: Duration = Duration::from_secs(60);
/// Upper bound for one DevTools command's answer.
const CDP_BOUND: Duration = Duration::from_secs(30);
/// Upper bound for a page to reach a state (connected, a message shown).
const PAGE_BOUND: Duration = Duration::from_secs(30);
/// Upper bound for Chromium to exit when asked to terminate (it is killed afterwards).
const EXIT_BOUND: Duration = Duration::from_secs(10);
/// How often a page's state is polled.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// `chromium` on `PATH`, or a failure that says how to install it.
fn chromium_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`chromium` is not on PATH: run `scripts/install-test-deps.sh` (CI does) to \
                 install Debian's chromium for the browser end-to-end test"
            )
        })
}

/// A headless Chromium in its own process group; terminated (then killed, with its whole group
/// and its crash handlers) and its directory removed on drop.
struct Chromium {
    child: Child,
    /// Holds the profile (`profile/`), Chromium's config and cache (`config/`, `cache/`) and
    /// its output (`chromium.log`).
    dir: PathBuf,
}

impl Chromium {
    /// Starts Chromium with a fresh profile, `--remote-debugging-port=0` and `extra_flags`.
    fn launch(extra_flags: &[&str]) -> Self {
        use std::os::unix::process::CommandExt;

        let binary = chromium_path();
        let dir = std::env::temp_dir().join(format!(
            "rgi-browser-chat-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos())
                .unwrap_or_default()
        ));
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", profile.display()));
        let log = std::fs::File::create(dir.join("chromium.log")).expect("create chromium.log");
        let child = Command::new(&binary)
            .args(CHROMIUM_FLAGS)
            .args(extra_flags)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--remote-debugging-port=0")
            // Chromium's config and cache (crash reports included) stay in the temp directory.
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", binary.display()));
        Self { child, dir }
    }

    /// The browser's DevTools WebSocket URL, from `DevToolsActivePort` in the profile (first
    /// line: the port; second line: the browser target's path).
    async fn devtools_url(&mut self) -> String {
        let file = self.dir.join("profile").join("DevToolsActivePort");
        let deadline = Instant::now() + LAUNCH_BOUND;
        loop {
            if let Some(url) = read_active_port(&file) {
                return url;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "chromium exited ({status}) before opening DevTools\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromium wrote no usable {} within {LAUNCH_BOUND:?}\n{}",
                file.display(),
                self.log()
            );
            sleep(POLL_EVERY).await;
        }
    }

    /// The tail of Chromium's output, for failure messages.
    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("chromium.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- chromium output (last lines) ---\n{tail}\n--- end of chromium output ---")
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Asked to terminate, Chromium shuts its helpers down and reaps them itself; whatever
        // is left of its process group (zygote, renderers, utilities) after a bounded wait
        // is killed.
        let group = self.child.id();
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -s TERM {group}"))
            .stderr(Stdio::null())
            .status();
        let deadline = std::time::Instant::now() + EXIT_BOUND;
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -s KILL -- -{group}"))
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The crash handlers leave the group (they start their own sessions); they are the
        // processes whose command line names this test's directory.
        let strays = processes_naming(&self.dir);
        if !strays.is_empty() {
            let pids: Vec<String> = strays.iter().map(u32::to_string).collect();
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!("kill -s KILL {}", pids.join(" ")))
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The ids of the running processes whose command line contains `dir` (Linux `/proc`).
fn processes_naming(dir: &Path) -> Vec<u32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

/// `ws://127.0.0.1:PORT/PATH` from a complete `DevToolsActivePort` file.
fn read_active_port(file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut lines = text.lines();
    let port: u16 = lines.next()?.trim().parse().ok()?;
    let path = lines.next()?.trim();
    (port != 0 && path.starts_with('/')).then(|| format!("ws://127.0.0.1:{port}{path}"))
}

/// A Chrome DevTools Protocol connection to the browser target.
struct Cdp {
    socket: WebSocketStream<TcpStream>,
    next_id: u64,
}

impl Cdp {
    async fn connect(url: &str) -> Self {
        let authority = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .expect("a ws:// DevTools URL");
        let stream = timeout(CDP_BOUND, TcpStream::connect(authority))
            .await
            .unwrap_or_else(|_| panic!("connecting to DevTools at {authority} timed out"))
            .unwrap_or_else(|e| panic!("cannot connect to DevTools at {authority}: {e}"));
        let (socket, _) = timeout(CDP_BOUND, client_async(url, stream))
            .await
            .unwrap_or_else(|_| panic!("DevTools handshake with {url} timed out"))
            .unwrap_or_else(|e| panic!("DevTools handshake with {url} failed: {e}"));
        Self { socket, next_id: 1 }
    }

    /// Sends one command (to the browser, or to a page's `session`) and returns its `result`;
    /// an `error` answer fails the test.
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.try_call(session, method, params)
            .await
            .unwrap_or_else(|error| panic!("{method} failed: {error}"))
    }

    /// Sends one command and returns its `result` or its `error`; events that arrive meanwhile
    /// are skipped.
    async fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(command.to_string()))
            .await
            .unwrap_or_else(|e| panic!("sending {method} to DevTools failed: {e}"));
        let answer = async {
            loop {
                let message = match self.socket.next().await {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => panic!("DevTools connection failed during {method}: {e}"),
                    None => panic!("DevTools connection closed during {method}"),
                };
                let Message::Text(text) = message else {
                    continue;
                };
                let reply: Value = serde_json::from_str(text.as_str())
                    .unwrap_or_else(|e| panic!("DevTools sent invalid JSON ({e}): {text}"));
                if reply["id"] == json!(id) {
                    return reply;
                }
            }
        };
        let reply = timeout(CDP_BOUND, answer)
            .await
            .unwrap_or_else(|_| panic!("no answer to {method} within {CDP_BOUND:?}"));
        match reply.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(reply["result"].clone()),
        }
    }

    /// Opens a new page at `url` and attaches a flattened session to it.
    async fn open_page(&mut self, url: &str) -> String {
        let created = self
            .call(None, "Target.createTarget", json!({ "url": url }))
            .await;
        let target = created["targetId"]
            .as_str()
            .unwrap_or_else(|| panic!("Target.createTarget gave no targetId: {created}"))
            .to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
            )
            .await;
        attached["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Target.attachToTarget gave no sessionId: {attached}"))
            .to_owned()
    }

    /// Evaluates `expression` in the page and returns its value; a JavaScript exception or a
    /// DevTools error fails the test.
    async fn evaluate(&mut self, session: &str, expression: &str) -> Value {
        self.try_evaluate(session, expression)
            .await
            .unwrap_or_else(|error| panic!("evaluating `{expression}` failed: {error}"))
    }

    /// Evaluates `expression` in the page: its value, or the exception it threw or the
    /// DevTools error (say, while the page is still navigating).
    async fn try_evaluate(&mut self, session: &str, expression: &str) -> Result<Value, Value> {
        let result = self
            .try_call(
                Some(session),
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await?;
        match result.get("exceptionDetails") {
            Some(exception) => Err(exception.clone()),
            None => Ok(result["result"]["value"].clone()),
        }
    }

    /// Polls `expression` until it yields a non-empty string or `true`, within [`PAGE_BOUND`],
    /// and returns that value; errors while polling (a page still loading) count as "not yet".
    /// `what`, the last error and the page's text explain a timeout.
    async fn wait_for(&mut self, session: &str, expression: &str, what: &str) -> Value {
        let deadline = Instant::now() + PAGE_BOUND;
        loop {
            let outcome = self.try_evaluate(session, expression).await;
            let done = match &outcome {
                Ok(Value::Bool(done)) => *done,
                Ok(Value::String(text)) => !text.is_empty(),
                _ => false,
            };
            if done {
                return outcome.unwrap_or_default();
            }
            if Instant::now() >= deadline {
                let text = self
                    .try_evaluate(session, "document.body.innerText")
                    .await
                    .map(|text| text.as_str().unwrap_or_default().to_owned())
                    .unwrap_or_else(|error| format!("(unreadable: {error})"));
                panic!(
                    "{what}: not within {PAGE_BOUND:?} (last result: {outcome:?}); the page \
                     shows:\n{text}"
                );
            }
            sleep(POLL_EVERY).await;
        }
    }
}

/// One open chat page.
struct Page {
    session: String,
    /// The participant name the room gave this page (`guest-N`).
    name: String,
}

/// Opens the chat page and waits until its WebSocket is connected and it knows its name.
async fn join(cdp: &mut Cdp, url: &str, label: &str) -> Page {
    let session = cdp.open_page(url).await;
    cdp.wait_for(
        &session,
        "document.getElementById('status')?.textContent === 'connected' \
         && !document.getElementById('text').disabled",
        &format!("page {label} connected"),
    )
    .await;
    // The room's first line to a newcomer is `* you are guest-N`.
    let greeting = cdp
        .wait_for(
            &session,
            "Array.from(document.querySelectorAll('#log p'))\
             .map(p => p.textContent).find(t => t.startsWith('* you are ')) ?? ''",
            &format!("page {label} greeted"),
        )
        .await;
    let name = greeting
        .as_str()
        .and_then(|line| line.strip_prefix("* you are "))
        .unwrap_or_else(|| panic!("unexpected greeting on page {label}: {greeting}"))
        .to_owned();
    Page { session, name }
}

/// Types `text` into the page's input and presses its Send button, as a user would.
async fn say(cdp: &mut Cdp, page: &Page, text: &str) {
    let literal = serde_json::to_string(text).expect("a string is JSON");
    let cleared = cdp
        .evaluate(
            &page.session,
            &format!(
                "(() => {{ const input = document.getElementById('text'); \
                 input.value = {literal}; \
                 input.dispatchEvent(new Event('input', {{ bubbles: true }})); \
                 document.getElementById('send').click(); \
                 return input.value === ''; }})()"
            ),
        )
        .await;
    // The page's submit handler sends the text and empties the input.
    assert_eq!(
        cleared,
        json!(true),
        "page {} did not send its input",
        page.name
    );
}

/// Waits until `page` shows `line` in its text.
async fn expect_line(cdp: &mut Cdp, page: &Page, line: &str) {
    let literal = serde_json::to_string(line).expect("a string is JSON");
    cdp.wait_for(
        &page.session,
        &format!("document.body.innerText.includes({literal})"),
        &format!("page {} shows {line:?}", page.name),
    )
    .await;
}

/// Two pages of `chromium` open the chat at `url`; each one's WebSocket handshake completes
/// and the text typed into one appears, whole and unchanged, on the other.
async fn two_pages_talk(mut chromium: Chromium, server: &TestServer, url: &str) {
    let devtools = chromium.devtools_url().await;
    let mut cdp = Cdp::connect(&devtools).await;

    let a = join(&mut cdp, url, "A").await;
    let b = join(&mut cdp, url, "B").await;
    assert_ne!(a.name, b.name, "the two pages got the same name");
    expect_line(&mut cdp, &a, &format!("* {} joined", b.name)).await;

    let from_a = "héllo from A 👋 <b>not markup</b>";
    say(&mut cdp, &a, from_a).await;
    expect_line(&mut cdp, &b, &format!("{}: {from_a}", a.name)).await;

    let from_b = "and hello back from B — ✓";
    say(&mut cdp, &b, from_b).await;
    expect_line(&mut cdp, &a, &format!("{}: {from_b}", b.name)).await;

    // Each page also sees its own line, broadcast back by the room.
    expect_line(&mut cdp, &a, &format!("{}: {from_a}", a.name)).await;
    expect_line(&mut cdp, &b, &format!("{}: {from_b}", b.name)).await;

    let _ = cdp.socket.close(None).await;
    drop(chromium);
    assert!(
        !server.logs_contain("panicked"),
        "the server panicked\n{}",
        server.logs()
    );
}

/// WS-HS-5, WS-MSG-1, WS-MSG-4: the chat over HTTP/1.1, its WebSocket by the RFC 6455 handshake.
#[tokio::test]
async fn two_chromium_pages_exchange_messages() {
    let chromium = Chromium::launch(&[]);
    let server = ServerOptions::new(CHAT).start();
    two_pages_talk(chromium, &server, &server.url("/")).await;
    assert!(
        server
            .logs_contain_within("\"GET /ws HTTP/1.1\" 101", PAGE_BOUND)
            .await,
        "no RFC 6455 upgrade of /ws in the access log\n{}",
        server.logs()
    );
}

/// WS-H2-1, WS-H2-2, WS-MSG-1: the chat over TLS. Chromium negotiates `h2` by ALPN, sees
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL`, and opens each page's WebSocket as an extended `CONNECT`
/// stream (RFC 8441), answered `200`: the access log shows it, so the test fails if the browser
/// fell back to an HTTP/1.1 upgrade. The certificate is self-signed, hence
/// `--ignore-certificate-errors` (this browser profile talks to nothing but loopback).
#[tokio::test]
async fn two_chromium_pages_exchange_messages_over_http2() {
    let dir = ScratchDir::new("browser-chat-tls");
    let (cert, key) = self_signed(dir.path());
    let chromium = Chromium::launch(&["--ignore-certificate-errors"]);
    let server = ServerOptions::new(CHAT)
        .args([
            "--tls-cert",
            cert.to_str().expect("UTF-8 path"),
            "--tls-key",
            key.to_str().expect("UTF-8 path"),
        ])
        .start();
    let url = format!("https://{}/", server.addr());
    two_pages_talk(chromium, &server, &url).await;
    assert!(
        server
            .logs_contain_within("\"CONNECT /ws HTTP/2.0\" 200", PAGE_BOUND)
            .await,
        "no RFC 8441 CONNECT of /ws over HTTP/2 in the access log\n{}",
        server.logs()
    );
    assert!(
        !server.logs_contain("\"GET /ws HTTP/1.1\""),
        "a page fell back to an HTTP/1.1 WebSocket\n{}",
        server.logs()
    );
}
