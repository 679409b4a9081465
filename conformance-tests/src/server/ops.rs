//! Spawned cases for the operational duties of a server (SPEC.md §13.4, `SRV-OPS-*`) and for
//! WebSocket sessions at the shutdown deadline (`WS-CLOSE-7`). Each starts its own instances
//! with the settings it needs (see [`crate::ops`]); the `SRV-OPS` cases run only for features
//! the manifest claims.

use std::net::SocketAddr;
use std::time::Duration;

use rgi::Capability;

use super::check;
use super::http1::expect_status;
use crate::ops::Ops;
use crate::spawn::{Lab, Spawned, SpawnedCase, spawned_case, start};
use crate::wire::{WireConn, WireResponse, request};

/// Upper bound for anything a case waits for (never a requirement).
const BOUND: Duration = Duration::from_secs(20);
/// The health path the cases configure.
const HEALTH: &str = "/rgi-conformance-health";

pub(crate) fn cases() -> Vec<SpawnedCase> {
    vec![
        spawned_case!(
            "spawned: the health path is answered by the server, never by the app",
            ["SRV-OPS-1"],
            None,
            health_path_answered_by_the_server
        )
        .with_ops(&[Ops::HealthPath]),
        spawned_case!(
            "spawned: during the shutdown delay the health path fails, requests are served",
            ["SRV-OPS-1", "SRV-OPS-3"],
            None,
            health_fails_during_the_shutdown_delay
        )
        .with_ops(&[Ops::HealthPath, Ops::ShutdownDelay]),
        spawned_case!(
            "spawned: without a configured health path no path is special",
            ["SRV-OPS-2"],
            None,
            no_health_path_unless_configured
        )
        .with_ops(&[Ops::HealthPath]),
        spawned_case!(
            "spawned: request IDs: untrusted values replaced, trusted ones kept, echoed",
            ["SRV-OPS-4", "SRV-OPS-5"],
            None,
            request_ids
        )
        .with_ops(&[Ops::RequestId]),
        spawned_case!(
            "spawned: socket activation: the inherited listener is served",
            ["SRV-OPS-6"],
            None,
            socket_activation
        )
        .with_ops(&[Ops::SocketActivation]),
        spawned_case!(
            "spawned: port sharing: two instances serve one port, only when configured",
            ["SRV-OPS-7"],
            None,
            port_sharing
        )
        .with_ops(&[Ops::ReusePort]),
        spawned_case!(
            "spawned: forwarding chains: the rightmost untrusted address is the peer",
            ["SRV-OPS-8"],
            None,
            forwarding_chain
        )
        .with_ops(&[Ops::ProxyChain]),
        spawned_case!(
            "spawned: WebSocket sessions closed with 1001 at the shutdown deadline",
            ["WS-CLOSE-7"],
            Some(Capability::WebSocket),
            sessions_closed_at_the_deadline
        ),
    ]
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Stops an instance (`SIGTERM`, then waits; killed on drop if it hangs).
async fn stop(mut spawned: Spawned) {
    if spawned.terminate().await.is_ok() {
        let _ = spawned.wait_exit(BOUND).await;
    }
}

/// One request on a new connection from the loopback address.
async fn send(
    addr: SocketAddr,
    path: &str,
    fields: &[(&str, &str)],
) -> Result<WireResponse, String> {
    let mut conn = WireConn::connect(addr).await.map_err(err)?;
    conn.send(&request("GET", path, "HTTP/1.1", fields, None))
        .await
        .map_err(err)?;
    conn.read_response("GET").await.map_err(err)
}

/// How many calls the probe application received so far (this query included).
async fn calls(addr: SocketAddr) -> Result<u64, String> {
    let response = send(addr, "/calls", &[]).await?;
    expect_status(&response, 200)?;
    response
        .text()
        .trim()
        .strip_prefix("calls: ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("unexpected /calls answer {:?}", response.text()))
}

/// The values of the probe's `/meta` lines `NAME: VALUE`.
fn meta_lines(response: &WireResponse, name: &str) -> Vec<String> {
    let prefix = format!("{name}: ");
    response
        .text()
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

/// The request's `x-request-id` as the application saw it (from `/meta`).
fn seen_request_ids(response: &WireResponse) -> Vec<String> {
    meta_lines(response, "header")
        .into_iter()
        .filter_map(|line| line.strip_prefix("x-request-id: ").map(str::to_owned))
        .collect()
}

async fn health_path_answered_by_the_server(lab: Lab) -> Result<(), String> {
    let (spawned, target) = start(&lab, &[("RGI_HEALTH_PATH", HEALTH)]).await?;
    let result = async {
        let before = calls(target.addr).await?;
        for path in [HEALTH.to_owned(), format!("{HEALTH}?probe=1")] {
            let response = send(target.addr, &path, &[]).await?;
            expect_status(&response, 200)?;
        }
        let after = calls(target.addr).await?;
        check!(
            after == before + 1,
            "the health path reached the application ({} calls for 2 health checks)",
            after - before - 1
        );
        Ok(())
    }
    .await;
    stop(spawned).await;
    result
}

async fn health_fails_during_the_shutdown_delay(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(
        &lab,
        &[("RGI_HEALTH_PATH", HEALTH), ("RGI_SHUTDOWN_DELAY", "3")],
    )
    .await?;
    let result = async {
        expect_status(&send(target.addr, HEALTH, &[]).await?, 200)?;
        spawned.terminate().await?;
        // Within the delay the server still accepts and serves, but reports unready.
        let mut unready = None;
        for _ in 0..40 {
            let response = send(target.addr, HEALTH, &[])
                .await
                .map_err(|e| format!("the server stopped serving within the delay: {e}"))?;
            if response.status == 503 {
                unready = Some(response);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        check!(
            unready.is_some(),
            "the health path kept answering 200 after the shutdown signal"
        );
        let served = send(target.addr, "/meta", &[])
            .await
            .map_err(|e| format!("a request during the delay was not served: {e}"))?;
        expect_status(&served, 200)?;
        let status = spawned.wait_exit(BOUND).await;
        check!(
            status.is_some_and(|s| s.success()),
            "the server did not exit cleanly after the delay: {status:?}"
        );
        Ok(())
    }
    .await;
    stop(spawned).await;
    result
}

async fn no_health_path_unless_configured(lab: Lab) -> Result<(), String> {
    let (spawned, target) = start(&lab, &[]).await?;
    let result = async {
        let before = calls(target.addr).await?;
        for path in [HEALTH, "/healthz", "/health", "/ready"] {
            send(target.addr, path, &[]).await?;
        }
        let after = calls(target.addr).await?;
        check!(
            after == before + 5,
            "with no health path configured, {} of 4 requests did not reach the application",
            before + 5 - after
        );
        Ok(())
    }
    .await;
    stop(spawned).await;
    result
}

async fn request_ids(lab: Lab) -> Result<(), String> {
    // The suite connects from 127.0.0.1: first an untrusted peer, then a trusted one.
    let untrusted = [
        ("RGI_REQUEST_ID", "true"),
        ("RGI_PROXY_HEADERS", "true"),
        ("RGI_FORWARDED_ALLOW_IPS", "192.0.2.1"),
    ];
    let (spawned, target) = start(&lab, &untrusted).await?;
    let result = async {
        let mut generated = Vec::new();
        for fields in [&[][..], &[("x-request-id", "chosen-by-the-client")][..]] {
            let response = send(target.addr, "/meta", fields).await?;
            expect_status(&response, 200)?;
            let seen = seen_request_ids(&response);
            let echoed = response.header_values("x-request-id");
            check!(
                seen.len() == 1 && echoed == seen,
                "the app saw {seen:?}, the response carried {echoed:?} (one ID, the same)"
            );
            check!(
                seen[0] != "chosen-by-the-client",
                "an untrusted peer's x-request-id was kept"
            );
            generated.push(seen[0].clone());
        }
        check!(
            generated[0] != generated[1],
            "two requests got the same generated ID {:?}",
            generated[0]
        );
        // The server's own answers carry it too (a 404 from the app is not enough: use a
        // request the server rejects itself).
        let mut conn = WireConn::connect(target.addr).await.map_err(err)?;
        conn.send(b"GET /meta HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            .await
            .map_err(err)?;
        let rejected = conn.read_response("GET").await.map_err(err)?;
        expect_status(&rejected, 400)?;
        check!(
            rejected.header_values("x-request-id").len() == 1,
            "the server's own 400 carries no x-request-id"
        );
        Ok(())
    }
    .await;
    stop(spawned).await;
    result?;

    let trusted = [
        ("RGI_REQUEST_ID", "true"),
        ("RGI_PROXY_HEADERS", "true"),
        ("RGI_FORWARDED_ALLOW_IPS", "127.0.0.1"),
    ];
    let (spawned, target) = start(&lab, &trusted).await?;
    let result = async {
        let response = send(target.addr, "/meta", &[("x-request-id", "from-the-proxy")]).await?;
        let seen = seen_request_ids(&response);
        check!(
            seen == ["from-the-proxy"] && response.header_values("x-request-id") == seen,
            "a trusted proxy's x-request-id was not kept and echoed: app {seen:?}, response {:?}",
            response.header_values("x-request-id")
        );
        let long = "x".repeat(201);
        let response = send(target.addr, "/meta", &[("x-request-id", &long)]).await?;
        let seen = seen_request_ids(&response);
        check!(
            seen.len() == 1 && seen[0] != long,
            "a trusted but invalid (201 characters) x-request-id was kept"
        );
        Ok(())
    }
    .await;
    stop(spawned).await;
    result
}

async fn socket_activation(lab: Lab) -> Result<(), String> {
    let tool = "systemd-socket-activate";
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    check!(
        found,
        "{tool} (Debian package systemd) is needed to pass a listening socket"
    );
    let inherited = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(err)?;
    let own = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(err)?;
    // The tool listens on `inherited` and starts the server at the first connection, passing
    // the socket as descriptor 3 (LISTEN_FDS=1, LISTEN_PID=its pid).
    let mut spawned = lab
        .launcher
        .launch_wrapped(&format!("{tool} -l {inherited}"), own, &[])
        .map_err(err)?;
    let result = async {
        let mut answered = None;
        for _ in 0..100 {
            if let Ok(response) = send(inherited, "/meta", &[]).await {
                answered = Some(response);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let Some(response) = answered else {
            return Err(format!(
                "the inherited socket {inherited} was not served:\n{}",
                crate::spawn::tail(&spawned.stderr())
            ));
        };
        expect_status(&response, 200)?;
        let local = meta_lines(&response, "local");
        check!(
            local == [inherited.to_string()],
            "the request on the inherited socket reports local {local:?}"
        );
        Ok(())
    }
    .await;
    if spawned.terminate().await.is_ok() {
        let _ = spawned.wait_exit(BOUND).await;
    }
    result
}

async fn port_sharing(lab: Lab) -> Result<(), String> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(err)?;
    let env = [("RGI_REUSE_PORT", "true")];
    let mut first = lab.launcher.launch_at(addr, &env).map_err(err)?;
    first.wait_ready().await.map_err(err)?;
    let mut second = lab.launcher.launch_at(addr, &env).map_err(err)?;
    let result = async {
        // Both run: the second did not fail to bind.
        tokio::time::sleep(Duration::from_millis(500)).await;
        second.wait_ready().await.map_err(|e| {
            format!("a second instance with port sharing did not start on {addr}: {e}")
        })?;
        // Connections reach both (the kernel spreads them by source port): each instance
        // counts its own calls, so a count seen twice means two instances answered.
        let mut seen = std::collections::BTreeSet::new();
        let mut both = false;
        for _ in 0..64 {
            if !seen.insert(calls(addr).await?) {
                both = true;
                break;
            }
        }
        check!(both, "64 connections all reached the same instance");
        Ok(())
    }
    .await;
    for mut spawned in [first, second] {
        if spawned.terminate().await.is_ok() {
            let _ = spawned.wait_exit(BOUND).await;
        }
    }
    result?;
    // Not set unless configured: a second instance without it cannot bind the address.
    let mut first = lab.launcher.launch_at(addr, &[]).map_err(err)?;
    first.wait_ready().await.map_err(err)?;
    let mut second = lab.launcher.launch_at(addr, &[]).map_err(err)?;
    let status = second.wait_exit(BOUND).await;
    let result = if status.is_some_and(|s| !s.success()) {
        Ok(())
    } else {
        Err(format!(
            "without port sharing configured a second instance bound {addr} too ({status:?})"
        ))
    };
    for mut spawned in [first, second] {
        if spawned.terminate().await.is_ok() {
            let _ = spawned.wait_exit(BOUND).await;
        }
    }
    result
}

async fn forwarding_chain(lab: Lab) -> Result<(), String> {
    let env = [
        ("RGI_PROXY_HEADERS", "true"),
        ("RGI_FORWARDED_ALLOW_IPS", "127.0.0.1"),
    ];
    let (spawned, target) = start(&lab, &env).await?;
    let result = async {
        let cases: [(&[(&str, &str)], &str); 4] = [
            // What a client sent itself, then what the trusted proxy appended.
            (
                &[("x-forwarded-for", "203.0.113.7, 198.51.100.9")],
                "198.51.100.9",
            ),
            // A client posing as a trusted hop does not become the peer.
            (
                &[("x-forwarded-for", "198.51.100.9, 127.0.0.1")],
                "198.51.100.9",
            ),
            (
                &[("forwarded", "for=203.0.113.7, for=198.51.100.9")],
                "198.51.100.9",
            ),
            (
                &[(
                    "forwarded",
                    "for=\"[2001:db8::7]\", for=198.51.100.9;proto=https",
                )],
                "198.51.100.9",
            ),
        ];
        for (fields, want) in cases {
            let response = send(target.addr, "/meta", fields).await?;
            expect_status(&response, 200)?;
            let peer = meta_lines(&response, "peer");
            check!(
                peer.len() == 1 && peer[0].trim_start_matches('[').starts_with(want),
                "{fields:?} from a trusted proxy: peer {peer:?}, expected {want}"
            );
        }
        Ok(())
    }
    .await;
    stop(spawned).await;
    result?;
    // From a peer that is not trusted, the fields are ignored.
    let env = [
        ("RGI_PROXY_HEADERS", "true"),
        ("RGI_FORWARDED_ALLOW_IPS", "192.0.2.1"),
    ];
    let (spawned, target) = start(&lab, &env).await?;
    let result = async {
        let response = send(
            target.addr,
            "/meta",
            &[
                ("x-forwarded-for", "198.51.100.9"),
                ("forwarded", "for=198.51.100.9"),
            ],
        )
        .await?;
        let peer = meta_lines(&response, "peer");
        check!(
            peer.len() == 1 && peer[0].starts_with("127.0.0.1"),
            "an untrusted peer's forwarding fields were used: peer {peer:?}"
        );
        Ok(())
    }
    .await;
    stop(spawned).await;
    result
}

async fn sessions_closed_at_the_deadline(lab: Lab) -> Result<(), String> {
    let (mut spawned, target) = start(&lab, &[("RGI_GRACEFUL_TIMEOUT", "1")]).await?;
    let result = async {
        let (mut stream, _) =
            super::websocket::raw_session_at(&target, "/ws-app?mode=hold&id=deadline", "").await?;
        spawned.terminate().await?;
        // The session holds past the graceful timeout: the server closes it with 1001.
        let (code, _) =
            tokio::time::timeout(BOUND, super::websocket::read_close_frame(&mut stream))
                .await
                .map_err(|_| "no close frame after the shutdown deadline".to_owned())??;
        check!(
            code == Some(1001),
            "the session was closed with {code:?}, not 1001"
        );
        let status = spawned.wait_exit(BOUND).await;
        check!(
            status.is_some(),
            "the server did not exit after the deadline"
        );
        Ok(())
    }
    .await;
    stop(spawned).await;
    result
}
