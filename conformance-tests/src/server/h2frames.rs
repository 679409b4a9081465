//! A minimal raw HTTP/2 client: writes frames as given, so that cases can send what a
//! well-behaved client library refuses to (connection-specific fields, rapid resets) and read
//! the server's frames as they are (SETTINGS, RST_STREAM, GOAWAY).
//!
//! Header blocks use only HPACK's static table and literals without indexing, so no encoder
//! state is needed.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::wire::IO_TIMEOUT;

pub(super) const HEADERS: u8 = 0x1;
pub(super) const RST_STREAM: u8 = 0x3;
pub(super) const SETTINGS: u8 = 0x4;
pub(super) const GOAWAY: u8 = 0x7;

pub(super) const END_STREAM: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

/// `SETTINGS_MAX_CONCURRENT_STREAMS`.
pub(super) const MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// `SETTINGS_MAX_HEADER_LIST_SIZE`.
pub(super) const MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// One frame as received.
#[derive(Debug, Clone)]
pub(super) struct RawFrame {
    pub(super) kind: u8,
    pub(super) flags: u8,
    pub(super) stream: u32,
    pub(super) payload: Vec<u8>,
}

impl RawFrame {
    /// The error code of a `RST_STREAM` or `GOAWAY` frame.
    pub(super) fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => return None,
        };
        let bytes = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// The `(identifier, value)` pairs of a `SETTINGS` frame.
    pub(super) fn settings(&self) -> Vec<(u16, u32)> {
        self.payload
            .chunks_exact(6)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                )
            })
            .collect()
    }
}

/// A raw HTTP/2 connection (cleartext, prior knowledge).
#[derive(Debug)]
pub(super) struct H2Conn {
    stream: TcpStream,
    buffer: Vec<u8>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl H2Conn {
    /// Connects and sends the preface with empty SETTINGS.
    pub(super) async fn connect(addr: SocketAddr) -> Result<Self, String> {
        let stream = timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(err)?;
        stream.set_nodelay(true).map_err(err)?;
        let mut conn = Self {
            stream,
            buffer: Vec::new(),
        };
        let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        preface.extend(frame(SETTINGS, 0, 0, &[]));
        conn.send(&preface).await?;
        Ok(conn)
    }

    /// Writes raw bytes.
    pub(super) async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        timeout(IO_TIMEOUT, self.stream.write_all(bytes))
            .await
            .map_err(|_| "write timed out".to_owned())?
            .map_err(err)
    }

    /// Reads the next frame; `None` when the server closed the connection. A `SETTINGS` frame
    /// from the server is acknowledged as it is read.
    pub(super) async fn read_frame(&mut self) -> Result<Option<RawFrame>, String> {
        loop {
            if self.buffer.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buffer[0], self.buffer[1], self.buffer[2]])
                    as usize;
                if self.buffer.len() >= 9 + len {
                    let head: Vec<u8> = self.buffer.drain(..9).collect();
                    let payload = self.buffer.drain(..len).collect();
                    let frame = RawFrame {
                        kind: head[3],
                        flags: head[4],
                        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]])
                            & 0x7fff_ffff,
                        payload,
                    };
                    if frame.kind == SETTINGS && frame.flags & ACK == 0 {
                        // The peer may already be gone; the frame is still returned.
                        let _ = self.send(&self::frame(SETTINGS, ACK, 0, &[])).await;
                    }
                    return Ok(Some(frame));
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = match timeout(IO_TIMEOUT, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(format!("no frame within {IO_TIMEOUT:?}")),
                Ok(Ok(n)) => n,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                Ok(Err(e)) => return Err(e.to_string()),
            };
            if n == 0 {
                return Ok(None);
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads frames until one satisfies `want` (returned), or the connection ends (`None`).
    pub(super) async fn read_until(
        &mut self,
        mut want: impl FnMut(&RawFrame) -> bool,
    ) -> Result<Option<RawFrame>, String> {
        for _ in 0..100_000 {
            match self.read_frame().await? {
                None => return Ok(None),
                Some(frame) if want(&frame) => return Ok(Some(frame)),
                Some(_) => {}
            }
        }
        Err("too many frames".into())
    }
}

/// Encodes one frame.
pub(super) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn string(out: &mut Vec<u8>, value: &str) {
    // Lengths below 127 fit the 7-bit prefix; longer ones use the continuation bytes.
    let mut len = value.len();
    if len < 127 {
        out.push(len as u8);
    } else {
        out.push(127);
        len -= 127;
        while len >= 128 {
            out.push((len % 128) as u8 | 0x80);
            len /= 128;
        }
        out.push(len as u8);
    }
    out.extend_from_slice(value.as_bytes());
}

/// The header block of `GET path` with `:authority: conformance.test` and the given extra
/// fields (lowercase names).
pub(super) fn get_block(path: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    get_block_for(Some("conformance.test"), path, fields)
}

/// The header block of `GET path` with the given `:authority` (none: left out) and extra
/// fields (lowercase names).
pub(super) fn get_block_for(
    authority: Option<&str>,
    path: &str,
    fields: &[(&str, &str)],
) -> Vec<u8> {
    // :method GET (static 2), :scheme http (static 6).
    let mut out = vec![0x82, 0x86];
    // :path and :authority: literal without indexing, indexed names 4 and 1.
    out.push(0x04);
    string(&mut out, path);
    if let Some(authority) = authority {
        out.push(0x01);
        string(&mut out, authority);
    }
    for (name, value) in fields {
        out.push(0x00);
        string(&mut out, name);
        string(&mut out, value);
    }
    out
}

/// A `HEADERS` frame for `GET path` that ends the stream.
pub(super) fn get(stream: u32, path: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        stream,
        &get_block(path, fields),
    )
}

/// A `RST_STREAM` frame with `CANCEL`.
pub(super) fn cancel(stream: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &0x8u32.to_be_bytes())
}
