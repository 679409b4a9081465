//! Raw protocol upgrade cases (`UPGRADE-RAW-*`) over HTTP/1.1, with exact bytes.

use rgi::Capability;

use super::{ServerCase, Target, check, server_case};
use crate::wire::{WireConn, request};

pub(super) fn cases() -> Vec<ServerCase> {
    vec![
        server_case!(
            "upgrade: bytes sent with the request reach the handler first, none lost",
            ["UPGRADE-RAW-5", "UPGRADE-RAW-4"],
            Some(Capability::Upgrade),
            early_bytes_replayed
        ),
        server_case!(
            "upgrade: declined upgrade stays HTTP, no bytes relayed",
            ["UPGRADE-RAW-6", "UPGRADE-RAW-11"],
            Some(Capability::Upgrade),
            declined_stays_http
        ),
        server_case!(
            "upgrade: handler end flushes and closes; failure closes",
            ["UPGRADE-RAW-8"],
            Some(Capability::Upgrade),
            handler_end_closes
        ),
    ]
}

fn upgrade_head(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nhost: conformance.test\r\nconnection: upgrade\r\nupgrade: probe-echo\r\n\r\n"
    )
    .into_bytes()
}

async fn connect(target: &Target) -> Result<WireConn, String> {
    WireConn::connect(target.addr)
        .await
        .map_err(|e| e.to_string())
}

/// UPGRADE-RAW-5, UPGRADE-RAW-4: 200 kB sent in the same write as the request head come back
/// from the echo handler first, in order, followed by what is sent after the switch.
async fn early_bytes_replayed(target: Target) -> Result<(), String> {
    let early: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let late = b"and then the rest".to_vec();
    let mut conn = connect(&target).await?;
    let mut bytes = upgrade_head("/upgrade");
    bytes.extend_from_slice(&early);
    conn.send(&bytes).await.map_err(|e| e.to_string())?;
    let response = conn.read_response("GET").await.map_err(|e| e.to_string())?;
    check!(
        response.status == 101,
        "upgrade answered {}",
        response.status
    );
    conn.send(&late).await.map_err(|e| e.to_string())?;
    let echoed = conn
        .read_exact_raw(early.len() + late.len())
        .await
        .map_err(|e| e.to_string())?;
    let mut expected = early;
    expected.extend_from_slice(&late);
    if echoed != expected {
        let first_difference = echoed
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(echoed.len().min(expected.len()));
        return Err(format!(
            "the handler read {} bytes of {}; first difference at byte {first_difference}",
            echoed.len(),
            expected.len()
        ));
    }
    Ok(())
}

/// UPGRADE-RAW-6, UPGRADE-RAW-11: an upgrade the app declines gets the app's response and the
/// next pipelined request is answered as HTTP, not relayed.
async fn declined_stays_http(target: Target) -> Result<(), String> {
    let mut conn = connect(&target).await?;
    let mut bytes = upgrade_head("/upgrade-decline");
    bytes.extend(request("GET", "/meta", "HTTP/1.1", &[], None));
    conn.send(&bytes).await.map_err(|e| e.to_string())?;
    let response = conn.read_response("GET").await.map_err(|e| e.to_string())?;
    check!(
        response.status == 200,
        "a declined upgrade got {} instead of the app's 200",
        response.status
    );
    check!(
        response.text().starts_with("declined: probe-echo"),
        "the app did not see the offer it declined: {:?}",
        response.text()
    );
    let next = conn
        .read_response("GET")
        .await
        .map_err(|e| format!("the request after a declined upgrade got no HTTP answer: {e}"))?;
    check!(
        next.status == 200 && next.field("method").as_deref() == Some("GET"),
        "the request after a declined upgrade got {} {:?}",
        next.status,
        next.text()
    );
    Ok(())
}

/// UPGRADE-RAW-8: a handler that writes `bye` and returns `Ok` gets its bytes flushed and the
/// connection closed; a handler that fails gets the connection closed too.
async fn handler_end_closes(target: Target) -> Result<(), String> {
    for (mode, expected) in [("ok", &b"bye"[..]), ("err", &b""[..])] {
        let mut conn = connect(&target).await?;
        conn.send(&upgrade_head(&format!("/upgrade-once?mode={mode}")))
            .await
            .map_err(|e| e.to_string())?;
        let response = conn.read_response("GET").await.map_err(|e| e.to_string())?;
        check!(
            response.status == 101,
            "upgrade answered {}",
            response.status
        );
        let rest = conn
            .read_exact_raw(expected.len())
            .await
            .map_err(|e| e.to_string())?;
        check!(
            rest == expected,
            "the handler ({mode}) wrote {expected:?}; the client got {:?}",
            String::from_utf8_lossy(&rest)
        );
        let after = conn
            .read_to_close()
            .await
            .map_err(|e| format!("after the handler ({mode}) ended: {e}"))?;
        check!(
            after == 0,
            "{after} more bytes after the handler ({mode}) ended"
        );
    }
    Ok(())
}
