//! Spawned cases about the server process: lifespan startup and shutdown, the graceful
//! shutdown deadline, logs, and settings that change what requests carry (mount prefix, proxy
//! headers). Each starts its own instance through the [`Launcher`](crate::spawn::Launcher).

use std::time::Duration;

use rgi::Capability;

use super::http1::{expect_status, get, unique};
use super::{Target, check};
use crate::probe::STARTUP_FAILURE_MESSAGE;
use crate::spawn::{Lab, Spawned, SpawnedCase, spawned_case, start, tail};
use crate::wire::{WireConn, WireError, request};

/// The upper bound for a process to exit or a connection to close (never a requirement).
const BOUND: Duration = Duration::from_secs(30);

pub(crate) fn cases() -> Vec<SpawnedCase> {
    vec![
        spawned_case!(
            "spawned: lifespan starts once per run, before serving, with a truthful ServerInfo",
            [
                "LIFE-START-1",
                "LIFE-START-4",
                "LIFE-START-6",
                "LIFE-STATE-1",
                "CORE-VER-3",
                "EXT-CAP-2"
            ],
            None,
            startup_once
        ),
        spawned_case!(
            "spawned: failing startup serves nothing, is logged, exits non-zero",
            ["LIFE-START-2"],
            None,
            startup_failure
        ),
        spawned_case!(
            "spawned: App::shutdown runs once, is awaited, and no call follows it",
            ["LIFE-SHUT-2", "LIFE-SHUT-3"],
            None,
            shutdown_awaited
        ),
        spawned_case!(
            "spawned: a panic in App::shutdown is caught and logged",
            ["LIFE-SHUT-4"],
            None,
            shutdown_panic
        ),
        spawned_case!(
            "spawned: the graceful deadline aborts what remains, then shutdown runs",
            ["SRV-SHUT-3", "LIFE-STATE-2"],
            None,
            deadline_aborts
        ),
        spawned_case!(
            "spawned: every connection ends by the graceful deadline",
            ["SRV-SHUT-4"],
            None,
            deadline_ends_connections
        ),
        spawned_case!(
            "spawned: a second SIGTERM ends the drain at once, and App::shutdown still runs",
            ["SRV-SHUT-5"],
            None,
            second_signal
        ),
        spawned_case!(
            "spawned: ready announced after startup, with the server's name, version and address",
            ["SRV-LOG-5", "LIFE-START-5"],
            None,
            ready_announced
        ),
        spawned_case!(
            "spawned: access log switchable, one line with client, method, target, version, status, bytes",
            ["SRV-LOG-3"],
            None,
            access_log
        ),
        spawned_case!(
            "spawned: corrections of the application logged as warnings citing the requirement",
            ["SRV-LOG-7"],
            None,
            corrections_logged
        ),
        spawned_case!(
            "spawned: no request or response bodies, credentials or cookies in the log",
            ["SRV-LOG-6"],
            None,
            secrets_not_logged
        ),
        spawned_case!(
            "spawned: malformed requests and exceeded limits logged below error level, not one line each",
            ["SRV-LOG-4"],
            None,
            client_errors_quiet
        ),
        spawned_case!(
            "spawned: application and handler failures logged with message, method, path, connection id",
            ["SRV-LOG-1"],
            None,
            failures_logged
        ),
        spawned_case!(
            "spawned: a departed client is not logged as an application error",
            ["SRV-LOG-2"],
            None,
            departures_not_errors
        ),
        spawned_case!(
            "spawned: mount prefix stripped, outside requests 404 without a call",
            ["HTTP-PATH-4", "HTTP-PATH-5", "HTTP-PATH-7"],
            Some(Capability::MountPrefix),
            mount_prefix
        ),
        spawned_case!(
            "spawned: forwarded headers from an untrusted peer ignored",
            ["HTTP-CONN-5"],
            None,
            untrusted_forwarded
        ),
        spawned_case!(
            "spawned: forwarded headers from a trusted proxy used, transport kept",
            ["HTTP-CONN-5"],
            Some(Capability::ProxyHeaders),
            trusted_forwarded
        ),
    ]
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Sends `SIGTERM` and waits for the exit; fails with the end of stderr otherwise.
async fn stop(spawned: &mut Spawned) -> Result<std::process::ExitStatus, String> {
    spawned.terminate().await?;
    spawned.wait_exit(BOUND).await.ok_or_else(|| {
        format!(
            "the server did not exit after SIGTERM; stderr:\n{}",
            tail(&spawned.stderr())
        )
    })
}

fn count(log: &str, line: &str) -> usize {
    log.lines().filter(|l| l.contains(line)).count()
}

fn position(log: &str, line: &str) -> Option<usize> {
    log.find(line)
}

async fn startup_once(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(
        &lab,
        &[("RGI_PROBE_STARTUP_DELAY_MS", "300"), ("RGI_WORKERS", "2")],
    )
    .await?;
    let mut reports = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let target = target.clone();
        tasks.push(tokio::spawn(async move { get(&target, "/lifespan").await }));
    }
    for task in tasks {
        reports.push(task.await.map_err(err)??);
    }
    let mut sender = super::http2::connect(&target).await.ok();
    if let Some(sender) = sender.as_mut() {
        if lab.manifest.capabilities.contains(Capability::Http2) {
            let (_, body, _) = super::http2::send(sender, super::http2::get("/lifespan")).await?;
            let text = String::from_utf8_lossy(&body).into_owned();
            reports.push(crate::wire::WireResponse {
                interim: Vec::new(),
                status: 200,
                reason: String::new(),
                minor_version: 1,
                headers: Vec::new(),
                body: text.into_bytes(),
                trailers: Vec::new(),
                framing: crate::wire::Framing::Close,
            });
        }
    }
    let first = &reports[0];
    check!(
        first.field("lifespan").as_deref() == Some("probe"),
        "the probe was not started through ProbeLifespan (host it with ProbeLifespan::from_env): {:?}",
        first.text()
    );
    for report in &reports {
        expect_status(report, 200)?;
        check!(
            report.field("startups").as_deref() == Some("1"),
            "startup ran {:?} times in this process",
            report.field("startups")
        );
        check!(
            report.field("app-id") == first.field("app-id"),
            "calls went to different application values: {:?} and {:?}",
            report.field("app-id"),
            first.field("app-id")
        );
    }
    let spec = rgi::SPEC_VERSION.to_string();
    check!(
        first.field("spec-version") == Some(spec.clone()),
        "ServerInfo::spec_version() is {:?}, the rgi crate's SPEC_VERSION is {spec}",
        first.field("spec-version")
    );
    check!(
        first
            .field("server-name")
            .is_some_and(|n| !n.trim().is_empty()),
        "ServerInfo has no name"
    );
    let advertised: Vec<String> = first
        .field("capabilities")
        .unwrap_or_default()
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    for claimed in lab.manifest.capabilities.iter() {
        check!(
            advertised.iter().any(|a| a == claimed.name()),
            "the manifest claims `{claimed}`, ServerInfo does not advertise it: {advertised:?}"
        );
    }
    check!(
        !advertised.iter().any(|a| a == "tls"),
        "ServerInfo advertises tls on a run that serves plain HTTP only"
    );
    let log = spawned.stderr();
    check!(
        count(&log, "rgi-probe: startup") == 1,
        "startup logged {} times",
        count(&log, "rgi-probe: startup")
    );
    stop(&mut spawned).await?;
    Ok(())
}

async fn startup_failure(lab: Lab) -> Result<(), String> {
    for mode in ["error", "panic"] {
        let mut spawned = lab
            .launcher
            .launch(&[("RGI_PROBE_FAIL_STARTUP", mode)])
            .map_err(err)?;
        // Whatever the server does with its listener, no request may be served.
        let mut served = None;
        for _ in 0..20 {
            if let Ok(mut conn) = WireConn::connect(spawned.addr).await {
                if conn
                    .send(&request("GET", "/meta", "HTTP/1.1", &[], None))
                    .await
                    .is_ok()
                {
                    if let Ok(response) = conn.read_response("GET").await {
                        served = Some(response.status);
                    }
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let status = spawned.wait_exit(BOUND).await.ok_or_else(|| {
            format!("startup {mode}: the server did not exit after a failed startup")
        })?;
        check!(
            served != Some(200),
            "startup {mode}: a request was served after the startup failed"
        );
        check!(
            !status.success(),
            "startup {mode}: the process exited with {status}"
        );
        let log = spawned.stderr();
        check!(
            log.contains(STARTUP_FAILURE_MESSAGE),
            "startup {mode}: the application's message was not logged; stderr:\n{}",
            tail(&log)
        );
    }
    Ok(())
}

async fn shutdown_awaited(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(&lab, &[("RGI_PROBE_SHUTDOWN_DELAY_MS", "700")]).await?;
    // A keep-alive connection that tries one more request after the signal.
    let mut idle = WireConn::connect(target.addr).await.map_err(err)?;
    idle.send(&request("GET", "/meta", "HTTP/1.1", &[], None))
        .await
        .map_err(err)?;
    expect_status(&idle.read_response("GET").await.map_err(err)?, 200)?;
    spawned.terminate().await?;
    log_with(&spawned, &["rgi-probe: shutdown started"]).await;
    let _ = idle
        .send(&request("GET", "/meta", "HTTP/1.1", &[], None))
        .await;
    let _ = idle.read_response("GET").await;
    let status = spawned
        .wait_exit(BOUND)
        .await
        .ok_or("the server did not exit after SIGTERM")?;
    let log = spawned.stderr();
    check!(
        count(&log, "rgi-probe: shutdown started") == 1,
        "App::shutdown was called {} times; stderr:\n{}",
        count(&log, "rgi-probe: shutdown started"),
        tail(&log)
    );
    check!(
        count(&log, "rgi-probe: shutdown finished") == 1,
        "App::shutdown was not awaited to completion before the exit; stderr:\n{}",
        tail(&log)
    );
    check!(
        !log.contains("rgi-probe: call after shutdown"),
        "App::call was called after App::shutdown"
    );
    check!(status.success(), "the process exited with {status}");
    Ok(())
}

async fn shutdown_panic(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(&lab, &[("RGI_PROBE_SHUTDOWN_PANIC", "1")]).await?;
    expect_status(&get(&target, "/meta").await?, 200)?;
    let status = stop(&mut spawned).await?;
    let log = spawned.stderr();
    check!(
        log.contains("rgi-probe: shutdown started"),
        "App::shutdown was not called"
    );
    check!(
        log.contains("shutdown panics on purpose"),
        "the panic message was not logged; stderr:\n{}",
        tail(&log)
    );
    // An uncaught panic ends the process by signal (abort) or with Rust's panic status 101.
    check!(
        status.code().is_some_and(|c| c != 101),
        "the panic was not caught: the process ended with {status}"
    );
    Ok(())
}

async fn deadline_aborts(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(&lab, &[("RGI_GRACEFUL_TIMEOUT", "1")]).await?;
    let id = unique("deadline");
    let mut held = super::flow::hold_call(&target, &id).await?;
    let gate = unique("deadline-body");
    let mut streaming = WireConn::connect(target.addr).await.map_err(err)?;
    streaming
        .send(&request(
            "GET",
            &format!("/gated?id={gate}"),
            "HTTP/1.1",
            &[],
            None,
        ))
        .await
        .map_err(err)?;
    expect_status(&streaming.read_final_head().await.map_err(err)?, 200)?;
    let state = get(&target, &format!("/held?id={id}"))
        .await?
        .field("state")
        .unwrap_or_default();
    check!(state == "pending", "the held call is {state:?}");
    spawned.terminate().await?;
    check!(
        held.closes_within(BOUND).await,
        "a held call's connection outlived the deadline"
    );
    check!(
        streaming.closes_within(BOUND).await,
        "a streaming response's connection outlived the deadline"
    );
    spawned
        .wait_exit(BOUND)
        .await
        .ok_or("the server did not exit after the deadline")?;
    let log = spawned.stderr();
    let dropped = position(&log, &format!("rgi-probe: held call {id} dropped"));
    let shutdown = position(&log, "rgi-probe: shutdown started");
    let finished = position(&log, "rgi-probe: shutdown finished");
    check!(
        dropped.is_some() && shutdown.is_some() && dropped < shutdown,
        "the held call must be dropped before App::shutdown (dropped at {dropped:?}, shutdown at {shutdown:?}); stderr:\n{}",
        tail(&log)
    );
    if let Some(gone) = position(&log, "rgi-probe: application dropped") {
        check!(
            finished.is_some_and(|f| f < gone),
            "the application was dropped before App::shutdown returned"
        );
    }
    Ok(())
}

async fn deadline_ends_connections(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(
        &lab,
        &[
            ("RGI_GRACEFUL_TIMEOUT", "1"),
            ("RGI_HEADER_READ_TIMEOUT", "120"),
            ("RGI_KEEP_ALIVE_TIMEOUT", "120"),
        ],
    )
    .await?;
    let silent = WireConn::connect(target.addr).await.map_err(err)?;
    let mut partial = WireConn::connect(target.addr).await.map_err(err)?;
    partial
        .send(b"GET /meta HTTP/1.1\r\nhost: a\r\nx-part")
        .await
        .map_err(err)?;
    let mut idle = WireConn::connect(target.addr).await.map_err(err)?;
    idle.send(&request("GET", "/meta", "HTTP/1.1", &[], None))
        .await
        .map_err(err)?;
    expect_status(&idle.read_response("GET").await.map_err(err)?, 200)?;
    let id = unique("deadline-all");
    let busy = super::flow::hold_call(&target, &id).await?;
    let mut upgraded = None;
    if lab.manifest.capabilities.contains(Capability::Upgrade) {
        let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
        conn.send(b"GET /upgrade HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: probe-echo\r\n\r\n")
            .await
            .map_err(err)?;
        expect_status(&conn.read_response("GET").await.map_err(err)?, 101)?;
        upgraded = Some(conn);
    }
    let mut conns = vec![
        ("a connection that sent nothing", silent),
        ("a partial head", partial),
        ("an idle keep-alive connection", idle),
        ("an in-flight exchange", busy),
    ];
    if let Some(conn) = upgraded {
        conns.push(("an upgraded connection", conn));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    spawned.terminate().await?;
    for (what, conn) in &mut conns {
        check!(
            conn.closes_within(BOUND).await,
            "{what} was still open after the deadline"
        );
    }
    spawned
        .wait_exit(BOUND)
        .await
        .ok_or("the server did not exit after the deadline")?;
    Ok(())
}

/// Waits up to [`BOUND`] until stderr has every one of `needles`; returns the log.
async fn log_with(spawned: &Spawned, needles: &[&str]) -> String {
    let mut log = spawned.stderr();
    for _ in 0..(BOUND.as_millis() / 50) {
        if needles.iter().all(|needle| log.contains(needle)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        log = spawned.stderr();
    }
    log
}

async fn second_signal(lab: Lab) -> Result<(), String> {
    // A drain that may last ten minutes: only the second signal can end it within BOUND.
    let (mut spawned, target) = start(&lab, &[("RGI_GRACEFUL_TIMEOUT", "600")]).await?;
    let id = unique("second-signal");
    let mut held = super::flow::hold_call(&target, &id).await?;
    spawned.terminate().await?;
    // The drain has begun once the listener is closed; a second signal sent before the first
    // was handled could be merged with it.
    let mut draining = false;
    for _ in 0..200 {
        if WireConn::connect(target.addr).await.is_err() {
            draining = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check!(
        draining,
        "new connections were still accepted after SIGTERM"
    );
    check!(
        spawned
            .wait_exit(Duration::from_millis(300))
            .await
            .is_none(),
        "the server exited at the first signal while a call was in flight (SRV-SHUT-2)"
    );
    spawned.terminate().await?;
    check!(
        held.closes_within(BOUND).await,
        "the held call's connection was still open {BOUND:?} after the second signal (graceful timeout: 600 s)"
    );
    spawned
        .wait_exit(BOUND)
        .await
        .ok_or("the server did not exit after the second signal")?;
    let log = spawned.stderr();
    check!(
        count(&log, "rgi-probe: shutdown started") == 1,
        "App::shutdown did not run after the second signal; stderr:\n{}",
        tail(&log)
    );
    Ok(())
}

async fn ready_announced(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(&lab, &[("RGI_PROBE_STARTUP_DELAY_MS", "300")]).await?;
    let info = get(&target, "/lifespan").await?;
    expect_status(&info, 200)?;
    let name = info.field("server-name").unwrap_or_default();
    let version = info.field("server-version").unwrap_or_default();
    let spec = rgi::SPEC_VERSION.to_string();
    let addr = target.addr.to_string();
    let log = log_with(&spawned, &[&addr]).await;
    let _ = stop(&mut spawned).await;
    let Some(line) = log.lines().find(|line| line.contains(&addr)) else {
        return Err(format!(
            "no log line names the address {addr}; stderr:\n{}",
            tail(&log)
        ));
    };
    for (what, text) in [
        ("name", name.as_str()),
        ("version", version.as_str()),
        ("specification version", spec.as_str()),
    ] {
        check!(
            !text.is_empty() && line.contains(text),
            "the ready line {line:?} does not give the server's {what} {text:?}"
        );
    }
    let started = position(&log, "rgi-probe: started");
    let announced = position(&log, &addr);
    check!(
        started.is_some() && announced > started,
        "the address was announced before startup succeeded; stderr:\n{}",
        tail(&log)
    );
    Ok(())
}

async fn access_log(lab: Lab) -> Result<(), String> {
    for (setting, on) in [("RGI_ACCESS_LOG", true), ("RGI_NO_ACCESS_LOG", false)] {
        let (mut spawned, target) = start(&lab, &[(setting, "true")]).await?;
        let token = unique("access");
        let response = get(&target, &format!("/status?code=201&body={token}")).await?;
        expect_status(&response, 201)?;
        // A later exchange on its own connection: its line comes after the first one's.
        let marker = unique("access-marker");
        let _ = get(&target, &format!("/meta?{marker}")).await?;
        let log = if on {
            log_with(&spawned, &[&token, &marker]).await
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            spawned.stderr()
        };
        let _ = stop(&mut spawned).await;
        let lines = lines_with(&log, &token);
        if !on {
            check!(
                lines.is_empty(),
                "{setting}=true: the exchange was still logged: {lines:?}"
            );
            continue;
        }
        check!(
            lines.len() == 1,
            "{setting}=true: {} log lines name the exchange, not one; stderr:\n{}",
            lines.len(),
            tail(&log)
        );
        let line = lines[0];
        let bytes = token.len().to_string();
        for (what, text) in [
            ("client address", "127.0.0.1"),
            ("method", "GET"),
            ("version", "HTTP/1.1"),
            ("status", "201"),
        ] {
            check!(
                line.contains(text),
                "the access-log line {line:?} has no {what}"
            );
        }
        check!(
            line.split(|c: char| !c.is_ascii_digit())
                .any(|t| t == bytes),
            "the access-log line {line:?} does not give the {bytes} body bytes sent"
        );
    }
    Ok(())
}

async fn corrections_logged(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(&lab, &[]).await?;
    expect_status(&get(&target, "/hop-by-hop").await?, 200)?;
    expect_status(&get(&target, "/status?code=204&body=discarded").await?, 204)?;
    let mut expected = vec!["HTTP-RESP-6", "HTTP-FRAME-8"];
    if lab
        .manifest
        .capabilities
        .contains(Capability::ResponseTrailers)
    {
        let raw = request(
            "GET",
            "/forbidden-trailers",
            "HTTP/1.1",
            &[("te", "trailers")],
            None,
        );
        let (_, response) = super::http1::exchange(&target, "GET", &raw).await?;
        expect_status(&response, 200)?;
        expected.push("HTTP-TRAIL-8");
    }
    let log = log_with(&spawned, &expected).await;
    let _ = stop(&mut spawned).await;
    for id in expected {
        let warned = log
            .lines()
            .any(|line| line.contains(id) && line.to_ascii_lowercase().contains("warn"));
        check!(
            warned,
            "no warning cites {id} for the application's violation; stderr:\n{}",
            tail(&log)
        );
    }
    Ok(())
}

async fn secrets_not_logged(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(&lab, &[("RGI_ACCESS_LOG", "true")]).await?;
    let secret = unique("secret");
    let authorization = format!("Bearer {secret}-authorization");
    let cookie = format!("session={secret}-cookie");
    let credentials = [
        ("authorization", authorization.as_str()),
        ("cookie", cookie.as_str()),
    ];
    let body = format!("{secret}-body");
    // A plain exchange, a failing one, a corrected one, an echo, and an echo the client leaves.
    for (method, path, body) in [
        ("GET", "/meta", None),
        ("GET", "/error", None),
        ("GET", "/hop-by-hop", None),
        ("GET", "/set-cookie", None),
        ("POST", "/echo", Some(body.as_bytes())),
    ] {
        let raw = request(method, path, "HTTP/1.1", &credentials, body);
        let _ = super::http1::exchange(&target, method, &raw).await?;
    }
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    let mut head = request("POST", "/echo", "HTTP/1.1", &credentials, None);
    // `request` ends the head; declare a longer body than is sent.
    head.truncate(head.len() - 2);
    head.extend_from_slice(format!("content-length: 100000\r\n\r\n{body}").as_bytes());
    conn.send(&head).await.map_err(err)?;
    let _ = conn.read_final_head().await;
    drop(conn);
    let marker = unique("secret-marker");
    let _ = get(&target, &format!("/meta?{marker}")).await?;
    let log = log_with(&spawned, &[&marker]).await;
    let _ = stop(&mut spawned).await;
    for leaked in [secret.as_str(), "b=2; Path=/"] {
        let lines = lines_with(&log, leaked);
        check!(
            lines.is_empty(),
            "the log shows a request or response body, a credential or a cookie: {lines:?}"
        );
    }
    Ok(())
}

async fn client_errors_quiet(lab: Lab) -> Result<(), String> {
    let env = [
        ("RGI_NO_ACCESS_LOG", "true"),
        ("RGI_MAX_HEADER_BYTES", "4096"),
        ("RGI_MAX_BODY_BYTES", "100"),
    ];
    let (mut spawned, target) = start(&lab, &env).await?;
    let big = "b".repeat(8000);
    let bad: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nhost: a\r\nno colon here\r\n\r\n".to_vec(),
        b"GET /\x01 HTTP/1.1\r\nhost: a\r\n\r\n".to_vec(),
        b"POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab"
            .to_vec(),
        b"POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        request("GET", "/meta", "HTTP/1.1", &[("x-big", &big)], None),
        request("POST", "/limit?max=10", "HTTP/1.1", &[], Some(&[b'x'; 50])),
        request("POST", "/echo", "HTTP/1.1", &[], Some(&[b'x'; 500])),
    ];
    let before = spawned.stderr().lines().count();
    const ROUNDS: usize = 15;
    for _ in 0..ROUNDS {
        for raw in &bad {
            let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
            let _ = conn.send(raw).await;
            let _ = conn.read_response("POST").await;
        }
    }
    let marker = unique("quiet-marker");
    expect_status(&get(&target, &format!("/meta?{marker}")).await?, 200)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = spawned.stderr();
    let _ = stop(&mut spawned).await;
    let during: Vec<&str> = log.lines().skip(before).collect();
    let errors: Vec<&&str> = during
        .iter()
        .filter(|l| l.contains("ERROR") || l.contains("\"level\":\"error\""))
        .collect();
    check!(
        errors.is_empty(),
        "client errors logged at error level: {errors:?}"
    );
    let sent = ROUNDS * bad.len();
    check!(
        during.len() <= sent / 10,
        "{sent} malformed or oversized requests wrote {} log lines: a client can flood the log; \
         the last ones:\n{}",
        during.len(),
        tail(&during.join("\n"))
    );
    Ok(())
}

/// The log lines that mention `needle`.
fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

async fn failures_logged(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(&lab, &[]).await?;
    /// A failing route: its path, the message its failure logs, the request's extra fields.
    type Failure = (
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    );
    const WS: &[(&str, &str)] = &[
        ("upgrade", "websocket"),
        ("connection", "upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];
    const RAW: &[(&str, &str)] = &[("upgrade", "probe-echo"), ("connection", "upgrade")];
    let capabilities = &lab.manifest.capabilities;
    let mut failures: Vec<Failure> = vec![
        ("/error", "the probe failed on purpose", &[]),
        ("/panic", "the probe panics on purpose", &[]),
        ("/fail-after-head", "the probe failed on purpose", &[]),
    ];
    // Handler errors (SRV-LOG-1 names them): a WebSocket handler and a raw upgrade handler.
    if capabilities.contains(Capability::WebSocket) {
        failures.push((
            "/ws-app?mode=err",
            "the probe's handler fails on purpose",
            WS,
        ));
        failures.push((
            "/ws-app?mode=panic",
            "the probe's handler panics on purpose",
            WS,
        ));
    }
    if capabilities.contains(Capability::Upgrade) {
        failures.push((
            "/upgrade-once?mode=err",
            "the probe's upgrade handler fails on purpose",
            RAW,
        ));
    }
    let mut seen = Vec::new();
    for (path, message, headers) in failures {
        let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
        conn.send(&request("GET", "/meta", "HTTP/1.1", &[], None))
            .await
            .map_err(err)?;
        let meta = conn.read_response("GET").await.map_err(err)?;
        let id = meta.field("connection-id").unwrap_or_default();
        conn.send(&request("GET", path, "HTTP/1.1", headers, None))
            .await
            .map_err(err)?;
        let _ = conn.read_response("GET").await;
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.read_to_close()).await;
        seen.push((path, message, id));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = spawned.stderr();
    let _ = stop(&mut spawned).await;
    for (path, message, id) in seen {
        let lines = lines_with(&log, message);
        let route = path.split('?').next().unwrap_or(path);
        let line = lines.iter().find(|l| l.contains(route));
        let Some(line) = line else {
            return Err(format!(
                "no log line names the failure of GET {path} ({message:?}); stderr:\n{}",
                tail(&log)
            ));
        };
        check!(line.contains("GET"), "the method is missing from {line:?}");
        check!(
            line.split(|c: char| !c.is_ascii_digit()).any(|t| t == id),
            "the connection id {id} is missing from {line:?}"
        );
    }
    Ok(())
}

async fn departures_not_errors(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(&lab, &[]).await?;
    // A client that leaves mid-response ...
    let id = unique("leaves");
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(&request(
        "GET",
        &format!("/watch?id={id}"),
        "HTTP/1.1",
        &[],
        None,
    ))
    .await
    .map_err(err)?;
    let _ = conn.read_final_head().await;
    drop(conn);
    super::http1::wait_for_outcome(&target, &id, "client-gone", &["active", "unknown"]).await?;
    // ... and one that leaves mid-body, while the app reads it.
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(b"POST /body-report?leaves HTTP/1.1\r\nhost: a\r\ncontent-length: 1000\r\n\r\nonly a few bytes")
        .await
        .map_err(err)?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(conn);
    // ... and one that leaves mid-body while the app streams the body into its response: the
    // response body fails because the request body did.
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(
        b"POST /echo?leaves HTTP/1.1\r\nhost: a\r\ncontent-length: 100000\r\n\r\nonly a few bytes",
    )
    .await
    .map_err(err)?;
    let _ = conn.read_final_head().await;
    drop(conn);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = spawned.stderr();
    let _ = stop(&mut spawned).await;
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/watch") || l.contains("/body-report") || l.contains("/echo"))
        .filter(|l| l.contains("ERROR") || l.contains("\"level\":\"error\""))
        .collect();
    check!(
        errors.is_empty(),
        "departed clients logged as errors: {errors:?}"
    );
    Ok(())
}

async fn mount_prefix(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(&lab, &[("RGI_ROOT_PATH", "/mnt/p")]).await?;
    let result = mount_prefix_checks(&target).await;
    let _ = stop(&mut spawned).await;
    result
}

async fn prefixed_calls(target: &Target) -> Result<u64, String> {
    let response = get(target, "/mnt/p/calls").await?;
    expect_status(&response, 200)?;
    response
        .field("calls")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("/mnt/p/calls answered {:?}", response.text()))
}

async fn mount_prefix_checks(target: &Target) -> Result<(), String> {
    for (sent, app_path) in [
        ("/mnt/p/meta", "/meta"),
        ("/mnt/%70/meta", "/meta"),
        ("/mnt/p/meta/x%2Fy", "/meta/x/y"),
    ] {
        let response = get(target, sent).await?;
        expect_status(&response, 200)?;
        check!(
            response.field("mount").as_deref() == Some("/mnt/p"),
            "{sent}: MountPrefix {:?}",
            response.field("mount")
        );
        check!(
            response.field("app-path").as_deref() == Some(app_path),
            "{sent}: app path {:?}, expected {app_path}",
            response.field("app-path")
        );
    }
    let response = get(target, "/mnt/p/meta/%FF").await?;
    check!(
        response.status == 200,
        "a prefixed path that is not UTF-8 got {}",
        response.status
    );
    for outside in ["/mnt/px/meta", "/meta", "/mnt", "/"] {
        let before = prefixed_calls(target).await?;
        let response = get(target, outside).await?;
        check!(
            response.status == 404,
            "{outside} is outside the prefix, answered {}",
            response.status
        );
        let after = prefixed_calls(target).await?;
        check!(
            after == before + 1,
            "{outside}: the application was called for a path outside the prefix"
        );
    }
    let before = prefixed_calls(target).await?;
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(&request("OPTIONS", "*", "HTTP/1.1", &[], None))
        .await
        .map_err(err)?;
    let response = conn.read_response("OPTIONS").await.map_err(err)?;
    check!(
        response.status == 404,
        "OPTIONS * under a prefix answered {}",
        response.status
    );
    let after = prefixed_calls(target).await?;
    check!(
        after == before + 1,
        "OPTIONS *: the application was called under a mount prefix"
    );
    Ok(())
}

const FORWARDED: [(&str, &str); 3] = [
    ("x-forwarded-for", "203.0.113.9"),
    ("x-forwarded-proto", "https"),
    ("forwarded", "for=203.0.113.9;proto=https"),
];

async fn forwarded_view(target: &Target) -> Result<(WireConn, crate::wire::WireResponse), String> {
    let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
    conn.send(&request("GET", "/exts", "HTTP/1.1", &FORWARDED, None))
        .await
        .map_err(err)?;
    let response = conn
        .read_response("GET")
        .await
        .map_err(|e: WireError| e.to_string())?;
    expect_status(&response, 200)?;
    Ok((conn, response))
}

async fn untrusted_forwarded(lab: Lab) -> Result<(), String> {
    // Proxy headers enabled, but only for a peer that is not us; then not enabled at all.
    let settings: [&[(&str, &str)]; 2] = [
        &[
            ("RGI_PROXY_HEADERS", "true"),
            ("RGI_FORWARDED_ALLOW_IPS", "192.0.2.1"),
        ],
        &[],
    ];
    for env in settings {
        let (mut spawned, target) = start(&lab, env).await?;
        let (conn, response) = forwarded_view(&target).await?;
        let _ = stop(&mut spawned).await;
        let client = conn.local_addr().map_err(err)?;
        check!(
            response.field("peer") == Some(client.to_string()),
            "untrusted forwarded headers changed the peer to {:?} (client {client}, settings {env:?})",
            response.field("peer")
        );
        check!(
            response.field("scheme").as_deref() == Some("http"),
            "untrusted forwarded headers changed the scheme to {:?}",
            response.field("scheme")
        );
        check!(
            response.field("forwarded").as_deref() == Some("false"),
            "is_forwarded() is true for an untrusted peer"
        );
    }
    Ok(())
}

async fn trusted_forwarded(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(
        &lab,
        &[
            ("RGI_PROXY_HEADERS", "true"),
            ("RGI_FORWARDED_ALLOW_IPS", "127.0.0.1"),
        ],
    )
    .await?;
    let (conn, response) = forwarded_view(&target).await?;
    let _ = stop(&mut spawned).await;
    let client = conn.local_addr().map_err(err)?;
    check!(
        response
            .field("peer")
            .is_some_and(|p| p.starts_with("203.0.113.9")),
        "the forwarded client address was not used: peer {:?}",
        response.field("peer")
    );
    check!(
        response.field("scheme").as_deref() == Some("https"),
        "the forwarded scheme was not used: {:?}",
        response.field("scheme")
    );
    check!(
        response.field("transport-peer") == Some(client.to_string()),
        "transport_peer() {:?} is not the socket's {client}",
        response.field("transport-peer")
    );
    check!(
        response.field("transport-scheme").as_deref() == Some("http"),
        "transport_scheme() {:?}",
        response.field("transport-scheme")
    );
    check!(
        response.field("forwarded").as_deref() == Some("true"),
        "is_forwarded() is false for a trusted proxy"
    );
    Ok(())
}
