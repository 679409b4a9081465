//! A raw HTTP/1.x client: writes exact bytes and reads responses with their framing exposed, so
//! that cases can check what a server put on the wire, not what a lenient client made of it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How long any single read or write may take before the case fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response head the client accepts.
const MAX_HEAD: usize = 64 * 1024;

/// A failure of the wire client.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Connecting, reading or writing failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The server did not answer in time.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    /// The connection closed before a complete response head.
    #[error("the connection closed before a response head ({0} bytes received)")]
    ClosedBeforeHead(usize),
    /// The response head could not be parsed.
    #[error("malformed response head: {0}")]
    Malformed(String),
}

/// How the body of a response was delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body by the rules of HTTP (HEAD, 1xx, 204, 304).
    None,
    /// `content-length`; `complete` is false when the connection ended early.
    ContentLength {
        /// The declared length.
        declared: u64,
        /// Whether all declared bytes arrived.
        complete: bool,
    },
    /// Chunked; `terminated` is true when the zero-size last chunk arrived.
    Chunked {
        /// Whether the last chunk (and trailer section) arrived.
        terminated: bool,
    },
    /// Delimited by the connection closing.
    Close,
}

/// A response as it was on the wire.
#[derive(Debug, Clone)]
pub struct WireResponse {
    /// Interim (`1xx`) status codes received before the final head.
    pub interim: Vec<u16>,
    /// The final status code.
    pub status: u16,
    /// The reason phrase of the final status line.
    pub reason: String,
    /// The minor HTTP version of the status line (`1` for HTTP/1.1).
    pub minor_version: u8,
    /// The header fields, in wire order, names lowercased.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body bytes (de-chunked).
    pub body: Vec<u8>,
    /// The trailer fields of a chunked body.
    pub trailers: Vec<(String, Vec<u8>)>,
    /// How the body was delimited.
    pub framing: Framing,
}

impl WireResponse {
    /// All values of header `name` (lowercase), in order.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_values(name).into_iter().next()
    }

    /// The first value of trailer `name`.
    pub fn trailer(&self, name: &str) -> Option<String> {
        self.trailers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of a `name: value` line of a probe's text body.
    pub fn field(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}: ");
        self.text()
            .lines()
            .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
    }

    /// Whether the body arrived whole by its framing.
    pub fn is_complete(&self) -> bool {
        match self.framing {
            Framing::None | Framing::Close => true,
            Framing::ContentLength { complete, .. } => complete,
            Framing::Chunked { terminated } => terminated,
        }
    }
}

/// One client connection.
#[derive(Debug)]
pub struct WireConn {
    stream: TcpStream,
    buffer: Vec<u8>,
    eof: bool,
    interim_heads: Vec<Vec<(String, Vec<u8>)>>,
}

type Head = (u16, u8, Vec<(String, Vec<u8>)>, String);

impl WireConn {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self, WireError> {
        let stream = timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| WireError::TimedOut(IO_TIMEOUT))??;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::new(),
            eof: false,
            interim_heads: Vec::new(),
        })
    }

    /// The client's own address (what the server should report as the peer).
    pub fn local_addr(&self) -> Result<SocketAddr, WireError> {
        Ok(self.stream.local_addr()?)
    }

    /// Writes `bytes` as they are.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        timeout(IO_TIMEOUT, self.stream.write_all(bytes))
            .await
            .map_err(|_| WireError::TimedOut(IO_TIMEOUT))??;
        Ok(())
    }

    /// Reads more bytes into the buffer; returns how many (0 at end of input).
    async fn fill(&mut self) -> Result<usize, WireError> {
        if self.eof {
            return Ok(0);
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = match timeout(IO_TIMEOUT, self.stream.read(&mut chunk)).await {
            Err(_) => return Err(WireError::TimedOut(IO_TIMEOUT)),
            Ok(Ok(n)) => n,
            // A reset after the server closed counts as the end of input.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Ok(Err(e)) => return Err(e.into()),
        };
        if n == 0 {
            self.eof = true;
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Waits until the server closes the connection, discarding what it sends; returns the
    /// number of bytes discarded, or an error if it stays open past the timeout.
    pub async fn read_to_close(&mut self) -> Result<usize, WireError> {
        let mut discarded = std::mem::take(&mut self.buffer).len();
        while self.fill().await? > 0 {
            discarded += std::mem::take(&mut self.buffer).len();
        }
        Ok(discarded)
    }

    /// Whether the server closed the connection (after everything it sent was read).
    pub async fn is_closed_by_server(&mut self) -> bool {
        self.read_to_close().await.is_ok() && self.eof
    }

    /// Reads one response head (interim or final) and returns its status; the head is consumed.
    pub async fn read_head_status(&mut self) -> Result<u16, WireError> {
        Ok(self.read_head().await?.0)
    }

    /// The header fields of the interim (`1xx`) responses read so far, in order.
    pub fn interim_heads(&self) -> &[Vec<(String, Vec<u8>)>] {
        &self.interim_heads
    }

    /// Reads the final response head (after any interim ones) and leaves the body unread, to
    /// be read with [`read_chunk`](Self::read_chunk) or [`read_exact_raw`](Self::read_exact_raw).
    pub async fn read_final_head(&mut self) -> Result<WireResponse, WireError> {
        let mut interim = Vec::new();
        loop {
            let (status, minor_version, headers, reason) = self.read_head().await?;
            if (100..200).contains(&status) && status != 101 {
                interim.push(status);
                self.interim_heads.push(headers);
                continue;
            }
            return Ok(WireResponse {
                interim,
                status,
                reason,
                minor_version,
                headers,
                body: Vec::new(),
                trailers: Vec::new(),
                framing: Framing::None,
            });
        }
    }

    /// Reads the next chunk of a chunked body: `Some(data)`, or `None` for the last chunk
    /// (whose trailer section is then consumed too).
    pub async fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        let line = self.read_line().await?.ok_or(WireError::Malformed(
            "the connection closed mid-body".into(),
        ))?;
        let size_text = String::from_utf8_lossy(&line);
        let size_text = size_text.split(';').next().unwrap_or("").trim().to_owned();
        let size = usize::from_str_radix(&size_text, 16)
            .map_err(|_| WireError::Malformed(format!("chunk size {size_text:?}")))?;
        if size == 0 {
            while let Some(line) = self.read_line().await? {
                if line.is_empty() {
                    break;
                }
            }
            return Ok(None);
        }
        while self.buffer.len() < size + 2 {
            if self.fill().await? == 0 {
                return Err(WireError::Malformed(
                    "the connection closed mid-chunk".into(),
                ));
            }
        }
        let data = self.buffer.drain(..size).collect();
        self.buffer.drain(..2);
        Ok(Some(data))
    }

    /// Whether the server sent something (or closed the connection) within `limit`; what it
    /// sent stays buffered for the next read.
    pub async fn answered_within(&mut self, limit: Duration) -> Result<bool, WireError> {
        if !self.buffer.is_empty() || self.eof {
            return Ok(true);
        }
        match timeout(limit, self.fill()).await {
            Err(_) => Ok(false),
            Ok(filled) => filled.map(|_| true),
        }
    }

    /// Writes as much of `bytes` as the server accepts within `limit`; returns how many bytes
    /// were written (all of them, or fewer when the server stopped reading).
    pub async fn send_within(&mut self, bytes: &[u8], limit: Duration) -> Result<usize, WireError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut written = 0;
        while written < bytes.len() {
            match tokio::time::timeout_at(deadline, self.stream.write(&bytes[written..])).await {
                Err(_) => break,
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => written += n,
                Ok(Err(e)) => return Err(e.into()),
            }
        }
        Ok(written)
    }

    /// Whether the server closes the connection within `limit` (reading and discarding what
    /// it sends meanwhile).
    pub async fn closes_within(&mut self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            self.buffer.clear();
            let mut chunk = [0u8; 16 * 1024];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.eof = true;
                    return true;
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Reads exactly `n` raw bytes (after a protocol switch, for example).
    pub async fn read_exact_raw(&mut self, n: usize) -> Result<Vec<u8>, WireError> {
        while self.buffer.len() < n {
            if self.fill().await? == 0 {
                break;
            }
        }
        let take = n.min(self.buffer.len());
        Ok(self.buffer.drain(..take).collect())
    }

    /// Reads one response to a request with method `method`.
    pub async fn read_response(&mut self, method: &str) -> Result<WireResponse, WireError> {
        let mut interim = Vec::new();
        loop {
            let (status, minor_version, headers, reason) = self.read_head().await?;
            if (100..200).contains(&status) && status != 101 {
                interim.push(status);
                self.interim_heads.push(headers);
                continue;
            }
            let mut response = WireResponse {
                interim,
                status,
                reason,
                minor_version,
                headers,
                body: Vec::new(),
                trailers: Vec::new(),
                framing: Framing::None,
            };
            self.read_body(method, &mut response).await?;
            return Ok(response);
        }
    }

    async fn read_head(&mut self) -> Result<Head, WireError> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                let head: Vec<u8> = self.buffer.drain(..end + 4).collect();
                let mut fields = [httparse::EMPTY_HEADER; 256];
                let mut parsed = httparse::Response::new(&mut fields);
                match parsed.parse(&head) {
                    Ok(httparse::Status::Complete(_)) => {}
                    Ok(httparse::Status::Partial) => {
                        return Err(WireError::Malformed("incomplete head".into()));
                    }
                    Err(e) => return Err(WireError::Malformed(e.to_string())),
                }
                let status = parsed.code.unwrap_or(0);
                let minor = parsed.version.unwrap_or(1);
                let reason = parsed.reason.unwrap_or("").to_owned();
                let headers = parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                    .collect();
                return Ok((status, minor, headers, reason));
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(WireError::Malformed("response head too large".into()));
            }
            if self.fill().await? == 0 {
                return Err(WireError::ClosedBeforeHead(self.buffer.len()));
            }
        }
    }

    async fn read_body(
        &mut self,
        method: &str,
        response: &mut WireResponse,
    ) -> Result<(), WireError> {
        let status = response.status;
        if method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 || status == 101 {
            response.framing = Framing::None;
            return Ok(());
        }
        let chunked = response
            .header_values("transfer-encoding")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            let terminated = self.read_chunked(response).await?;
            response.framing = Framing::Chunked { terminated };
            return Ok(());
        }
        if let Some(length) = response.header("content-length") {
            let declared: u64 = length
                .trim()
                .parse()
                .map_err(|_| WireError::Malformed(format!("content-length {length:?}")))?;
            while (self.buffer.len() as u64) < declared {
                if self.fill().await? == 0 {
                    break;
                }
            }
            let take = (declared as usize).min(self.buffer.len());
            response.body = self.buffer.drain(..take).collect();
            response.framing = Framing::ContentLength {
                declared,
                complete: response.body.len() as u64 == declared,
            };
            return Ok(());
        }
        while self.fill().await? > 0 {}
        response.body = std::mem::take(&mut self.buffer);
        response.framing = Framing::Close;
        Ok(())
    }

    /// Reads a chunked body; returns whether it was properly terminated.
    async fn read_chunked(&mut self, response: &mut WireResponse) -> Result<bool, WireError> {
        loop {
            let line = match self.read_line().await? {
                Some(line) => line,
                None => return Ok(false),
            };
            let size_text = String::from_utf8_lossy(&line);
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| WireError::Malformed(format!("chunk size {size_text:?}")))?;
            if size == 0 {
                // Trailer section, then an empty line.
                loop {
                    match self.read_line().await? {
                        None => return Ok(false),
                        Some(line) if line.is_empty() => return Ok(true),
                        Some(line) => {
                            if let Some(colon) = line.iter().position(|b| *b == b':') {
                                let name =
                                    String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
                                let value = line[colon + 1..].trim_ascii().to_vec();
                                response.trailers.push((name, value));
                            }
                        }
                    }
                }
            }
            while self.buffer.len() < size + 2 {
                if self.fill().await? == 0 {
                    let have = self.buffer.len().min(size);
                    response.body.extend(self.buffer.drain(..have));
                    return Ok(false);
                }
            }
            response.body.extend(self.buffer.drain(..size));
            self.buffer.drain(..2);
        }
    }

    async fn read_line(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n") {
                let line: Vec<u8> = self.buffer.drain(..end + 2).take(end).collect();
                return Ok(Some(line));
            }
            if self.fill().await? == 0 {
                return Ok(None);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Builds a request: `method target HTTP/1.x`, a `host`, the given fields, and the body with a
/// `content-length` when `body` is `Some`.
pub fn request(
    method: &str,
    target: &str,
    version: &str,
    fields: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = format!("{method} {target} {version}\r\nhost: conformance.test\r\n");
    for (name, value) in fields {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if let Some(body) = body {
        bytes.extend_from_slice(body);
    }
    bytes
}
