//! A request-smuggling guard for HTTP/1.x: [`FramingGuard`] watches the bytes hyper reads and
//! flags requests whose framing is ambiguous or broken, so that the service answers them with
//! `400` and closes the connection without calling the application (`SRV-LIMIT-13`, `SRV-LIMIT-14`).
//!
//! hyper accepts a request with both `Content-Length` and `Transfer-Encoding` (it drops the
//! length and decodes the chunks, as RFC 9112 §6.3 permits), and a malformed chunk size only
//! surfaces when the application reads the body. rgi-server answers both with a `400` and a
//! close: `SRV-LIMIT-14` allows hyper's way too, but refusing is the stricter choice, and
//! `SRV-LIMIT-13` allows it for the malformed chunk.
//! The guard follows the HTTP/1 message framing of the byte stream (heads, `Content-Length`
//! bodies, chunked bodies) and records one verdict per request head, in order; the service
//! takes the verdicts in the same order. A head longer than the configured limit is flagged
//! too (`431`, `SRV-LIMIT-5`): hyper's own bound on its buffer is larger, because the same
//! bound limits how much response data hyper gathers into one write. Whatever the guard cannot
//! follow (an HTTP/2 preface, an upgrade, an unparsable head) switches it off: it then flags
//! nothing, and hyper's own checks apply.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why the service must refuse a request, without calling the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Ambiguous or broken framing: `400` (`SRV-LIMIT-13`, `SRV-LIMIT-14`).
    Framing,
    /// A head longer than the limit: `431` (`SRV-LIMIT-5`).
    HeadTooLarge,
}

/// The verdicts of one connection, one per request head the guard saw, taken in order by the
/// service: whether the request must be refused, and why.
///
/// Requests are counted with atomics (no lock per request); only the rare condemned requests
/// are kept in a locked list.
#[derive(Debug, Default)]
pub(crate) struct Verdicts {
    /// How many request heads the guard saw.
    seen: AtomicU64,
    /// How many verdicts the service took.
    taken: AtomicU64,
    /// Whether `condemned` may hold anything (checked before taking the lock).
    any_condemned: AtomicBool,
    /// The requests to refuse whose verdicts were not taken yet.
    condemned: Mutex<Vec<(u64, Refusal)>>,
}

impl Verdicts {
    /// Takes the verdict of the next request: why it must be refused, if it must.
    pub(crate) fn next_refusal(&self) -> Option<Refusal> {
        let seen = self.seen.load(Ordering::Acquire);
        let Ok(index) = self
            .taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < seen).then_some(taken + 1)
            })
        else {
            // A request the guard did not follow (it is switched off): nothing to say.
            return None;
        };
        if !self.any_condemned.load(Ordering::Acquire) {
            return None;
        }
        let mut condemned = self
            .condemned
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let position = condemned.iter().position(|&(i, _)| i == index)?;
        Some(condemned.swap_remove(position).1)
    }

    /// Whether a request head the guard saw was not taken by the service yet: hyper holds
    /// another request and will answer it next (pipelining).
    pub(crate) fn has_untaken(&self) -> bool {
        self.taken.load(Ordering::Acquire) < self.seen.load(Ordering::Acquire)
    }

    fn push(&self, refusal: Option<Refusal>) -> u64 {
        let index = self.seen.load(Ordering::Acquire);
        if let Some(refusal) = refusal {
            self.condemn(index, refusal);
        }
        self.seen.store(index + 1, Ordering::Release);
        index
    }

    /// Marks request `index` to be refused, if its verdict was not taken yet.
    fn condemn(&self, index: u64, refusal: Refusal) {
        if index < self.taken.load(Ordering::Acquire) {
            return;
        }
        let mut condemned = self
            .condemned
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        condemned.push((index, refusal));
        self.any_condemned.store(true, Ordering::Release);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before a request line (empty lines are skipped).
    Head,
    /// In a `Content-Length` body.
    Body(u64),
    /// In a chunk-size line: the size so far, and whether a digit was seen.
    ChunkSize(u64, bool),
    /// In a chunk extension, up to the end of the line.
    ChunkExtension(u64),
    /// In chunk data.
    ChunkData(u64),
    /// After chunk data, expecting CRLF.
    ChunkEnd,
    /// In the trailer section: whether the current line is empty so far.
    Trailers(bool),
    /// Not following the stream any more.
    Off,
}

/// Follows the framing of an HTTP/1 request stream.
#[derive(Debug)]
struct Scanner {
    state: State,
    head: Vec<u8>,
    max_head: usize,
    /// The index of the request whose body is being read.
    current: u64,
    verdicts: Arc<Verdicts>,
}

impl Scanner {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                State::Off => return,
                State::Head if self.head.is_empty() && !matches!(bytes[0], b'\r' | b'\n') => {
                    // The common case: a whole head in this read. It is followed in place,
                    // without copying it into the head buffer.
                    match head_end(bytes) {
                        Some(end) if end <= self.max_head => {
                            let (head, rest) = bytes.split_at(end);
                            self.head_done(head);
                            bytes = rest;
                        }
                        _ => {
                            let end = bytes.iter().position(|b| *b == b'\n');
                            let line = end.map_or(bytes.len(), |end| end + 1);
                            self.append_head(&bytes[..line]);
                            bytes = &bytes[line..];
                            if end.is_some() {
                                self.head_line_done();
                            }
                        }
                    }
                }
                State::Head => {
                    let Some(end) = bytes.iter().position(|b| *b == b'\n') else {
                        self.append_head(bytes);
                        return;
                    };
                    self.append_head(&bytes[..=end]);
                    bytes = &bytes[end + 1..];
                    self.head_line_done();
                }
                State::Body(remaining) => {
                    let n = remaining.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.state = if remaining == n {
                        State::Head
                    } else {
                        State::Body(remaining - n)
                    };
                }
                State::ChunkData(remaining) => {
                    let n = remaining.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.state = if remaining == n {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(remaining - n)
                    };
                }
                _ => {
                    let byte = bytes[0];
                    bytes = &bytes[1..];
                    self.chunk_byte(byte);
                }
            }
        }
    }

    fn append_head(&mut self, bytes: &[u8]) {
        if self.head.len() + bytes.len() > self.max_head {
            // The next request hyper delivers is this one: refused with `431`. What follows
            // it cannot be followed (the connection closes after the refusal anyway).
            self.verdicts.push(Some(Refusal::HeadTooLarge));
            self.state = State::Off;
            self.head = Vec::new();
        } else {
            self.head.extend_from_slice(bytes);
        }
    }

    /// A line of the head ended (`self.head` ends with `\n`).
    fn head_line_done(&mut self) {
        if self.state == State::Off {
            return;
        }
        let trimmed = trim_line(&self.head);
        if trimmed.is_empty() {
            // Leading empty lines before the request line are ignored.
            self.head.clear();
            return;
        }
        let ends_head = self.head.ends_with(b"\n\n") || self.head.ends_with(b"\n\r\n");
        if !ends_head {
            return;
        }
        // The buffer keeps its capacity for the next head (no allocation per request).
        let head = std::mem::take(&mut self.head);
        self.head_done(&head);
        self.head = head;
        self.head.clear();
        if self.head.capacity() > KEPT_HEAD_CAPACITY {
            self.head.shrink_to(KEPT_HEAD_CAPACITY);
        }
    }

    fn head_done(&mut self, head: &[u8]) {
        let mut lines = head.split(|b| *b == b'\n').map(trim_line);
        let request_line = lines.next().unwrap_or_default();
        let http1 = request_line.ends_with(b"HTTP/1.1") || request_line.ends_with(b"HTTP/1.0");
        if request_line.starts_with(b"PRI * HTTP/2") || !http1 {
            self.state = State::Off;
            return;
        }
        let connect = request_line.starts_with(b"CONNECT ");
        let mut content_length: Option<Option<u64>> = None;
        let mut transfer_encoding: Option<bool> = None;
        let mut upgrade = connect;
        for line in lines {
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            let name = &line[..colon];
            let value = trim(&line[colon + 1..]);
            if name.eq_ignore_ascii_case(b"content-length") {
                let parsed = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok());
                content_length = Some(match content_length {
                    Some(Some(previous)) if Some(previous) != parsed => None,
                    Some(None) => None,
                    _ => parsed,
                });
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                let last = value
                    .rsplit(|b| *b == b',')
                    .next()
                    .map(trim)
                    .unwrap_or_default();
                transfer_encoding = Some(last.eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                upgrade = true;
            }
        }
        let ambiguous = content_length.is_some() && transfer_encoding.is_some();
        self.current = self.verdicts.push(ambiguous.then_some(Refusal::Framing));
        self.state = match (transfer_encoding, content_length) {
            _ if upgrade => State::Off,
            (Some(true), _) => State::ChunkSize(0, false),
            (Some(false), _) | (None, Some(None)) => State::Off,
            (None, Some(Some(0))) | (None, None) => State::Head,
            (None, Some(Some(length))) => State::Body(length),
        };
    }

    fn malformed_body(&mut self) {
        self.verdicts.condemn(self.current, Refusal::Framing);
        self.state = State::Off;
    }

    fn chunk_byte(&mut self, byte: u8) {
        self.state = match self.state {
            State::ChunkSize(size, digits) => match byte {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    let digit = u64::from(match byte {
                        b'0'..=b'9' => byte - b'0',
                        b'a'..=b'f' => byte - b'a' + 10,
                        _ => byte - b'A' + 10,
                    });
                    match size.checked_mul(16).and_then(|s| s.checked_add(digit)) {
                        Some(size) => State::ChunkSize(size, true),
                        None => return self.malformed_body(),
                    }
                }
                b';' if digits => State::ChunkExtension(size),
                b' ' | b'\t' if digits => State::ChunkExtension(size),
                b'\r' if digits => State::ChunkSize(size, true),
                b'\n' if digits => end_of_size_line(size),
                _ => return self.malformed_body(),
            },
            State::ChunkExtension(size) => match byte {
                b'\n' => end_of_size_line(size),
                _ => State::ChunkExtension(size),
            },
            State::ChunkEnd => match byte {
                b'\r' => State::ChunkEnd,
                b'\n' => State::ChunkSize(0, false),
                _ => return self.malformed_body(),
            },
            State::Trailers(empty) => match byte {
                b'\n' if empty => State::Head,
                b'\n' => State::Trailers(true),
                b'\r' => State::Trailers(empty),
                _ => State::Trailers(false),
            },
            other => other,
        };
    }
}

/// The length of the head at the start of `bytes` (up to and including the empty line that
/// ends it), if it is all there.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = bytes[from..].iter().position(|b| *b == b'\n') {
        let newline = from + offset;
        let next = &bytes[newline + 1..];
        if next.starts_with(b"\r\n") {
            return Some(newline + 3);
        }
        if next.starts_with(b"\n") {
            return Some(newline + 2);
        }
        from = newline + 1;
    }
    None
}

fn end_of_size_line(size: u64) -> State {
    if size == 0 {
        State::Trailers(true)
    } else {
        State::ChunkData(size)
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &value[start..end.max(start)]
}

/// The head buffer capacity kept between requests: larger heads are rare, and an idle
/// connection should not hold its largest head's buffer.
const KEPT_HEAD_CAPACITY: usize = 1024;

/// The most response bytes held back while hyper answers pipelined requests it already read.
const COALESCE_LIMIT: usize = 64 * 1024;

/// How many flushes in a row may be put off while the last pipelined request is in flight.
const MAX_FLUSHES_PUT_OFF: u8 = 4;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which protocols a connection may speak (`--http`). The guard enforces it on the first
/// bytes of the connection: a `*-only` server serves its one protocol without looking, and a
/// client speaking the other is refused here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Allowed {
    /// HTTP/1.x and HTTP/2.
    Both,
    /// HTTP/1.x only: a connection that starts with the HTTP/2 preface is closed.
    Http1,
    /// HTTP/2 only: a connection that does not start with the preface is closed.
    Http2,
}

pin_project_lite::pin_project! {
    /// A transport that shows every byte it reads to a [`Scanner`].
    #[derive(Debug)]
    pub(crate) struct FramingGuard<Io> {
        #[pin]
        io: Io,
        scanner: Scanner,
        allowed: Allowed,
        // How many bytes of the connection were checked against the preface.
        sniffed: usize,
        // Whether the end of input was already held back once.
        eof_deferred: bool,
        activity: Arc<crate::service::Activity>,
        // Response bytes held back while hyper answers pipelined requests it already read,
        // so that one write carries several responses (see `AsyncWrite` below).
        held: Vec<u8>,
        // How many flushes of held bytes were put off in a row (see `poll_flush`).
        flushes_put_off: u8,
        // The connection's first bytes, read to choose the protocol: replayed first.
        prefix: crate::protocol::Prefix,
        prefix_pos: usize,
    }
}

impl<Io> FramingGuard<Io> {
    /// Guards `io`, whose first bytes `prefix` were already read; a head longer than
    /// `max_head` is refused with `431`.
    pub(crate) fn new(
        io: Io,
        prefix: crate::protocol::Prefix,
        max_head: usize,
        verdicts: Arc<Verdicts>,
        allowed: Allowed,
        activity: Arc<crate::service::Activity>,
    ) -> Self {
        Self {
            io,
            activity,
            allowed,
            eof_deferred: false,
            held: Vec::new(),
            flushes_put_off: 0,
            prefix,
            prefix_pos: 0,
            sniffed: if allowed == Allowed::Both {
                PREFACE.len()
            } else {
                0
            },
            scanner: Scanner {
                state: State::Head,
                head: Vec::new(),
                max_head,
                current: 0,
                verdicts,
            },
        }
    }
}

impl<Io: AsyncRead + AsyncWrite> AsyncRead for FramingGuard<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut this = self.project();
        let before = buf.filled().len();
        let result = if *this.prefix_pos < this.prefix.len {
            let rest = &this.prefix.bytes[*this.prefix_pos..this.prefix.len];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            *this.prefix_pos += n;
            if buf.remaining() > 0 {
                // The bytes that follow, in the same read: hyper then sees the first head
                // whole, and does not grow its read buffer for the few replayed bytes. An
                // error or the end of input shows at the next read.
                let _ = this.io.as_mut().poll_read(cx, buf);
            }
            Poll::Ready(Ok(()))
        } else {
            this.io.as_mut().poll_read(cx, buf)
        };
        if result.is_pending() && !this.held.is_empty() && this.activity.is_idle() {
            // hyper waits for input with no request in flight: whatever it answered so far
            // goes out now, since the client may wait for it. A write that cannot finish now
            // resumes at the next write or flush (its readiness wakes the task).
            if let Poll::Ready(Err(error)) = drain(this.io.as_mut(), cx, this.held) {
                return Poll::Ready(Err(error));
            }
        }
        if let Poll::Ready(Ok(())) = result {
            if buf.filled().len() == before && buf.remaining() > 0 && !*this.eof_deferred {
                // The end of input. A client that sends a request and closes at once would
                // have hyper see the end before it ever polled the application's call future
                // (the call would be dropped unpolled). Hold the end back for one round so
                // that the call runs first; then it learns through `Disconnect` that the
                // client is gone (`HTTP-DISC-4`).
                *this.eof_deferred = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let fresh = &buf.filled()[before..];
            if !fresh.is_empty() {
                this.activity
                    .saw_bytes
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            if *this.sniffed < PREFACE.len() && !fresh.is_empty() {
                let n = fresh.len().min(PREFACE.len() - *this.sniffed);
                let matches = fresh[..n] == PREFACE[*this.sniffed..*this.sniffed + n];
                // Once the bytes diverge from the preface, there is nothing more to check.
                *this.sniffed = if matches {
                    *this.sniffed + n
                } else {
                    PREFACE.len()
                };
                let refused = match this.allowed {
                    Allowed::Http2 => !matches,
                    // "PRI * HTTP/2.0" is no valid HTTP/1 request: refuse it as HTTP/2.
                    Allowed::Http1 => matches && *this.sniffed >= 14,
                    Allowed::Both => false,
                };
                if refused {
                    *this.sniffed = PREFACE.len();
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the client speaks an HTTP version this server is configured not to serve",
                    )));
                }
            }
            if this.scanner.state != State::Off {
                this.scanner.feed(fresh);
            }
        }
        result
    }
}

/// Writes `held` out, front first, until it is empty.
fn drain<Io: AsyncWrite>(
    mut io: Pin<&mut Io>,
    cx: &mut Context<'_>,
    held: &mut Vec<u8>,
) -> Poll<io::Result<()>> {
    while !held.is_empty() {
        match io.as_mut().poll_write(cx, held) {
            Poll::Ready(Ok(0)) => {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            Poll::Ready(Ok(n)) => {
                held.drain(..n);
            }
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(Ok(()))
}

impl<Io> FramingGuard<Io> {
    /// Whether hyper is answering pipelined requests: no request is in flight, and the
    /// guard saw a request head the service has not taken yet, so hyper holds another
    /// request and answers it before it does anything else. Its responses are then held back
    /// and written together: one write for many responses, as with hyper's
    /// `pipeline_flush` — which cannot be used, since it loses the `101` of an upgrade whose
    /// client sent protocol bytes early (UPGRADE-RAW-5).
    fn answering_pipelined(&self) -> bool {
        self.scanner.verdicts.has_untaken() && self.activity.is_idle()
    }
}

impl<Io: AsyncWrite> FramingGuard<Io> {
    fn write_slices(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|buf| buf.len()).sum();
        let pipelined = total > 0 && self.answering_pipelined();
        let mut this = self.project();
        let fits = this.held.len() + total <= COALESCE_LIMIT;
        if (pipelined || !this.held.is_empty()) && fits {
            for buf in bufs {
                this.held.extend_from_slice(buf);
            }
            if !pipelined {
                // The last response of the batch: everything goes out in one write (what
                // cannot be written now goes at the next write or flush).
                if let Poll::Ready(Err(error)) = drain(this.io.as_mut(), cx, this.held) {
                    return Poll::Ready(Err(error));
                }
            }
            return Poll::Ready(Ok(total));
        }
        // Order is kept: held bytes always go before a write that does not fit with them.
        if let Err(error) = std::task::ready!(drain(this.io.as_mut(), cx, this.held)) {
            return Poll::Ready(Err(error));
        }
        this.io.poll_write_vectored(cx, bufs)
    }
}

/// Writes pass through, except while hyper answers pipelined requests: those responses are
/// held (up to [`COALESCE_LIMIT`] bytes) and written in one go with the last of them, or as
/// soon as hyper waits for anything (reads, flushes while a request is in flight, shuts down).
impl<Io: AsyncWrite> AsyncWrite for FramingGuard<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_slices(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.answering_pipelined() {
            // hyper flushes after every response; the next one is already on its way.
            return Poll::Ready(Ok(()));
        }
        let mut this = self.project();
        if !this.held.is_empty() && *this.flushes_put_off < MAX_FLUSHES_PUT_OFF {
            // The last request of the batch is in flight: its response usually follows
            // within a poll or two, and goes out with the held ones. Put the flush off a few
            // times; the wake-up makes sure a slow response cannot keep the others waiting.
            *this.flushes_put_off += 1;
            cx.waker().wake_by_ref();
            return Poll::Ready(Ok(()));
        }
        *this.flushes_put_off = 0;
        if let Err(error) = std::task::ready!(drain(this.io.as_mut(), cx, this.held)) {
            return Poll::Ready(Err(error));
        }
        this.io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut this = self.project();
        if let Err(error) = std::task::ready!(drain(this.io.as_mut(), cx, this.held)) {
            return Poll::Ready(Err(error));
        }
        this.io.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.write_slices(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]]) -> Vec<bool> {
        scan_refusals(chunks, 8192)
            .into_iter()
            .map(|r| r.is_some())
            .collect()
    }

    fn scan_refusals(chunks: &[&[u8]], max_head: usize) -> Vec<Option<Refusal>> {
        let verdicts = Arc::new(Verdicts::default());
        let mut scanner = Scanner {
            state: State::Head,
            head: Vec::new(),
            max_head,
            current: 0,
            verdicts: verdicts.clone(),
        };
        for chunk in chunks {
            scanner.feed(chunk);
        }
        let mut out = Vec::new();
        while verdicts.has_untaken() {
            out.push(verdicts.next_refusal());
        }
        out
    }

    #[test]
    fn follows_pipelined_requests() {
        let stream: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloPOST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(scan(&[stream]), [false, false, false, false]);
        // Byte by byte gives the same verdicts.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(scan(&bytes), [false, false, false, false]);
    }

    #[test]
    fn flags_content_length_with_transfer_encoding() {
        let stream: &[u8] =
            b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(scan(&[stream]), [true]);
        let stream: &[u8] =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n";
        assert_eq!(scan(&[stream]), [true]);
    }

    #[test]
    fn flags_bad_chunk_sizes_not_yet_taken() {
        let stream: &[u8] =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
        assert_eq!(scan(&[stream]), [true]);
        let stream: &[u8] =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n";
        assert_eq!(scan(&[stream]), [true]);
    }

    #[test]
    fn switches_off_for_http2_and_upgrades() {
        assert!(scan(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]).is_empty());
        let stream: &[u8] = b"GET / HTTP/1.1\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(scan(&[stream]), [false]);
    }

    /// SRV-LIMIT-5: a head over the limit is refused with `431`, whether it arrives whole or
    /// a few bytes at a time; the heads before it are not.
    #[test]
    fn flags_heads_over_the_limit() {
        let small: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let big = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
            "b".repeat(300)
        );
        let stream = [small, big.as_bytes()].concat();
        assert_eq!(
            scan_refusals(&[&stream], 256),
            [None, Some(Refusal::HeadTooLarge)]
        );
        let bytes: Vec<&[u8]> = stream.chunks(7).collect();
        assert_eq!(
            scan_refusals(&bytes, 256),
            [None, Some(Refusal::HeadTooLarge)]
        );
        assert_eq!(scan_refusals(&[&stream], 4096), [None, None]);
    }
}
