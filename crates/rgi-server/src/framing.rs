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
//! follow (an HTTP/2 preface, a protocol switch that takes place, an unparsable head) switches
//! it off: it then flags nothing, and hyper's own checks apply.
//!
//! The guard reads chunked bodies by RFC 9112 §7.1 without leniency (`SRV-LIMIT-15`): CRLF
//! ends every line. hyper's decoder takes a bare LF inside a trailer line as part of the line,
//! and its trailer parser then stops at the first empty line, dropping the rest — a request
//! could hide there. A malformed body found before the application has the request is refused
//! (`400`); found later, the bytes from the offending one on never reach hyper, whose next read
//! fails, so the body yields an error and the connection closes.
//!
//! After a request that offers a protocol switch (`upgrade`, `CONNECT`), what follows is either
//! the new protocol or the next request, and only the response tells: the guard keeps those
//! bytes (reading at most [`SWITCH_STASH_LIMIT`] ahead) until hyper writes the response, and
//! then either switches off (`101`, or `2xx` to `CONNECT`) or follows them as requests.
//!
//! The guard changes one kind of byte on its way to hyper: the minor version digit of a request
//! line in `HTTP/1.2` … `HTTP/1.9` becomes `1`, so that such a request is served as HTTP/1.1
//! (`SRV-LIMIT-19`, RFC 9110 §2.5) instead of refused by hyper's parser.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::service::ConnState;
use crate::stall::StallTimer;

/// Why the service must refuse a request, without calling the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Ambiguous or broken framing: `400` (`SRV-LIMIT-13`, `SRV-LIMIT-14`).
    Framing,
    /// A head longer than the limit: `431` (`SRV-LIMIT-5`).
    HeadTooLarge,
    /// A request line longer than the head limit because of its target: `414`
    /// (`SRV-LIMIT-5`). (One that is that long before its target is `Framing`.)
    TargetTooLong,
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

    /// Marks request `index` to be refused, if its verdict was not taken yet; returns whether
    /// it was.
    fn condemn(&self, index: u64, refusal: Refusal) -> bool {
        if index < self.taken.load(Ordering::Acquire) {
            return false;
        }
        let mut condemned = self
            .condemned
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        condemned.push((index, refusal));
        self.any_condemned.store(true, Ordering::Release);
        true
    }

    /// Whether the service took the verdict of request `index`: it is being answered.
    fn taken_past(&self, index: u64) -> bool {
        self.taken.load(Ordering::Acquire) > index
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before a request line (empty lines are skipped).
    Head,
    /// In a `Content-Length` body.
    Body(u64),
    /// At the start of a chunk-size line: a hex digit must follow.
    ChunkStart,
    /// In the hex digits of a chunk size: the size so far.
    ChunkSize(u64),
    /// In whitespace after a chunk size: only more whitespace or the `;` of an extension
    /// may follow (RFC 9112 §7.1.1 allows whitespace only before `;`).
    ChunkSizeSpace(u64),
    /// In the chunk extensions, up to the CR that ends the line: where in their grammar.
    ChunkExtension(u64, Extension),
    /// After the CR of a chunk-size line: LF must follow.
    ChunkSizeLf(u64),
    /// In chunk data.
    ChunkData(u64),
    /// After chunk data: CR must follow.
    ChunkDataCr,
    /// After chunk data and CR: LF must follow.
    ChunkDataLf,
    /// At the start of a trailer line, or of the empty line that ends the message.
    TrailerLine,
    /// In the name of a trailer field.
    TrailerName,
    /// In the value of a trailer field, up to the CR that ends the line.
    TrailerValue,
    /// After the CR of a trailer line: LF must follow.
    TrailerLf,
    /// After the CR of the empty line that ends the message: LF must follow.
    FinalLf,
    /// After a request that offered a protocol switch (`upgrade`, `CONNECT`): what follows is
    /// either the switched protocol or the next request, which only the response tells. The
    /// bytes are kept (in `Scanner::head`) until then.
    AwaitSwitch,
    /// Not following the stream any more.
    Off,
}

/// Where the scanner is in a chunk-size line's extensions (RFC 9112 §7.1.1):
/// `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`, names being tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extension {
    /// After `;`: whitespace, then the name.
    BeforeName,
    /// In the name.
    Name,
    /// In whitespace after the name: `=` or `;` must follow.
    AfterName,
    /// After `=`: whitespace, then a token or a quoted string.
    BeforeValue,
    /// In a token value.
    Token,
    /// In a quoted-string value.
    Quoted,
    /// After a backslash in a quoted string: the escaped character.
    QuotedPair,
    /// Right after a quoted string's closing quote: whitespace, `;` or the CR.
    Closed,
    /// In whitespace after a value: `;` must follow.
    AfterValue,
}

impl Extension {
    /// The position after `byte`, or `None` when `byte` breaks the grammar; `Some(None)` for
    /// the CR that ends the line.
    fn next(self, byte: u8) -> Option<Option<Extension>> {
        use Extension::*;
        let whitespace = matches!(byte, b' ' | b'\t');
        // qdtext, or the escaped character of a quoted-pair: HTAB, SP, VCHAR, obs-text.
        let quotable = matches!(byte, b'\t' | b' '..=b'~' | 0x80..=0xff);
        let next = match self {
            // Whitespace is allowed before `;` and `=` and after them, never before the CR.
            Name | Token | Closed if byte == b'\r' => return Some(None),
            BeforeName | BeforeValue if whitespace => self,
            Name | AfterName if whitespace => AfterName,
            Token | Closed | AfterValue if whitespace => AfterValue,
            BeforeName | Name if is_tchar(byte) => Name,
            BeforeValue | Token if is_tchar(byte) => Token,
            Name | AfterName if byte == b'=' => BeforeValue,
            Name | AfterName | Token | Closed | AfterValue if byte == b';' => BeforeName,
            BeforeValue if byte == b'"' => Quoted,
            Quoted if byte == b'"' => Closed,
            Quoted if byte == b'\\' => QuotedPair,
            Quoted | QuotedPair if quotable => Quoted,
            _ => return None,
        };
        Some(Some(next))
    }
}

/// The protocol switch a request offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Switch {
    /// None: the next request follows the body.
    None,
    /// `upgrade`: the connection switches on a `101`.
    Upgrade,
    /// `CONNECT`: the connection becomes a tunnel on a `2xx`.
    Connect,
}

/// Follows the framing of an HTTP/1 request stream.
///
/// Its grammar for chunked bodies is RFC 9112 §7.1 without leniency: CRLF ends every line (a
/// bare LF is malformed), whitespace after a chunk size is allowed only before the `;` of an
/// extension, extensions follow their grammar (token names, token or quoted-string values),
/// and trailer lines must be well-formed fields. hyper's own decoder is never stricter than
/// this (it allows whitespace before the CR and skips extensions unread), so whatever hyper
/// accepts as one message the guard reads as the same message, or refuses (`SRV-LIMIT-15`).
#[derive(Debug)]
struct Scanner {
    state: State,
    /// The head being gathered, or the bytes kept while `AwaitSwitch`.
    head: Vec<u8>,
    max_head: usize,
    /// The index of the request whose body is being read.
    current: u64,
    /// The protocol switch the current request offered.
    switch: Switch,
    /// Chunk-extension bytes of the current body (hyper's limit: 16 KiB).
    extension_bytes: u32,
    /// Trailer-section bytes of the current body.
    trailer_bytes: u32,
    /// Trailer lines of the current body.
    trailer_lines: u32,
    /// Set when the current request's body turned out malformed after its verdict was taken:
    /// the bytes from the offending one on must not reach hyper.
    poisoned: bool,
    /// Set once a protocol switch was offered and not taken. hyper then keeps the offer
    /// pending, and when the connection ends it hands the transport to the (abandoned)
    /// upgrade instead of shutting it down: responses held back for batching would be lost,
    /// so none are held from then on.
    switch_declined: bool,
    /// Set until the connection's first request line was read, on a port that also serves
    /// HTTP/2 with prior knowledge (`SRV-LIMIT-17`).
    check_first_line: bool,
    /// Set when the connection's first line is no HTTP/1 request line (it has no HTTP
    /// version): the connection closes without a response (`SRV-LIMIT-17`).
    not_http: bool,
    /// The connection: where the verdicts go.
    conn: Arc<ConnState>,
}

/// Chunk-extension bytes allowed per body (hyper refuses 16 KiB).
const MAX_EXTENSION_BYTES: u32 = 16 * 1024 - 1;

/// Trailer-section bytes allowed per body (hyper's default limit, 16 KiB).
const MAX_TRAILER_BYTES: u32 = 16 * 1024 - 1;

/// Trailer lines allowed per body (hyper's default header count).
const MAX_TRAILER_LINES: u32 = 100;

/// The bytes kept after a request that offered a protocol switch, until its response shows
/// whether the connection switched. Reading stops while this much is kept.
const SWITCH_STASH_LIMIT: usize = 64 * 1024;

impl Scanner {
    fn new(max_head: usize, conn: Arc<ConnState>, check_first_line: bool) -> Self {
        Self {
            state: State::Head,
            head: Vec::new(),
            max_head,
            current: 0,
            switch: Switch::None,
            extension_bytes: 0,
            trailer_bytes: 0,
            trailer_lines: 0,
            poisoned: false,
            switch_declined: false,
            check_first_line,
            not_http: false,
            conn,
        }
    }

    /// Follows `bytes`, which hyper reads next. When the body of a request already handed to
    /// the application turns out malformed, returns how many of `bytes` precede the offending
    /// byte: only those may reach hyper. A request line's higher minor version is lifted in
    /// place (`SRV-LIMIT-19`, [`lift_minor_version`]).
    fn feed(&mut self, bytes: &mut [u8]) -> Option<usize> {
        let total = bytes.len();
        let mut bytes = bytes;
        while !bytes.is_empty() {
            match self.state {
                State::Off => break,
                State::AwaitSwitch => {
                    self.head.extend_from_slice(bytes);
                    break;
                }
                State::Head if self.head.is_empty() && !matches!(bytes[0], b'\r' | b'\n') => {
                    let line_end = memchr::memchr(b'\n', bytes);
                    // A first line longer than the head limit is refused for its size, as when
                    // it arrives in pieces (`append_head`), and not looked at.
                    if let Some(end) = line_end.filter(|&end| end < self.max_head) {
                        if self.check_first_line
                            && !self.first_line(has_http_version(trim_line(&bytes[..=end])))
                        {
                            break;
                        }
                    }
                    let line = line_end.map_or(bytes.len(), |end| end + 1);
                    lift_minor_version(&[], &mut bytes[..line], self.max_head);
                    // The common case: a whole head in this read. It is followed in place,
                    // without copying it into the head buffer.
                    match line_end.and_then(|end| read_head_after(bytes, end)) {
                        Some((end, facts)) if end <= self.max_head => {
                            self.head_done(facts);
                            bytes = &mut std::mem::take(&mut bytes)[end..];
                        }
                        _ => {
                            self.append_head(&bytes[..line]);
                            bytes = &mut std::mem::take(&mut bytes)[line..];
                            if line_end.is_some() {
                                self.head_line_done();
                            }
                        }
                    }
                }
                State::Head => {
                    let end = memchr::memchr(b'\n', bytes);
                    if memchr::memchr(b'\n', &self.head).is_none() {
                        // A request line, or the rest of one begun in an earlier read.
                        let line = end.map_or(bytes.len(), |end| end + 1);
                        lift_minor_version(&self.head, &mut bytes[..line], self.max_head);
                    }
                    let Some(end) = end else {
                        self.append_head(bytes);
                        break;
                    };
                    self.append_head(&bytes[..=end]);
                    bytes = &mut std::mem::take(&mut bytes)[end + 1..];
                    self.head_line_done();
                }
                State::Body(remaining) => {
                    let n = remaining.min(bytes.len() as u64);
                    bytes = &mut std::mem::take(&mut bytes)[n as usize..];
                    self.state = if remaining == n {
                        self.message_done()
                    } else {
                        State::Body(remaining - n)
                    };
                }
                State::ChunkData(remaining) => {
                    let n = remaining.min(bytes.len() as u64);
                    bytes = &mut std::mem::take(&mut bytes)[n as usize..];
                    self.state = if remaining == n {
                        State::ChunkDataCr
                    } else {
                        State::ChunkData(remaining - n)
                    };
                }
                _ => {
                    let byte = bytes[0];
                    bytes = &mut std::mem::take(&mut bytes)[1..];
                    self.chunk_byte(byte);
                    if self.poisoned {
                        return Some(total - bytes.len() - 1);
                    }
                }
            }
        }
        None
    }

    fn append_head(&mut self, bytes: &[u8]) {
        if self.head.len() + bytes.len() > self.max_head {
            // The next request hyper delivers is this one: refused with `431`, or `414` when
            // its request line is what is too long, because of its target (`400` when the
            // method is that long). What follows it cannot be followed (the connection closes
            // after the refusal anyway). The head holds no line end before the request line's.
            let method_end = memchr::memchr(b' ', &self.head)
                .or_else(|| memchr::memchr(b' ', bytes).map(|at| self.head.len() + at));
            let refusal = if memchr::memchr(b'\n', &self.head).is_some() {
                Refusal::HeadTooLarge
            } else if method_end.is_some_and(|end| end < self.max_head) {
                Refusal::TargetTooLong
            } else {
                Refusal::Framing
            };
            self.conn.verdicts.push(Some(refusal));
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
        if self.check_first_line && !self.first_line(has_http_version(trimmed)) {
            return;
        }
        let ends_head = self.head.ends_with(b"\n\n") || self.head.ends_with(b"\n\r\n");
        if !ends_head {
            return;
        }
        // The buffer keeps its capacity for the next head (no allocation per request).
        let head = std::mem::take(&mut self.head);
        // The buffer ends with the head's empty line, so the head is all there.
        match read_head(&head) {
            Some((_, facts)) => self.head_done(facts),
            None => {
                self.current = self.conn.verdicts.push(Some(Refusal::Framing));
                self.state = State::Off;
            }
        }
        self.head = head;
        self.head.clear();
        if self.head.capacity() > KEPT_HEAD_CAPACITY {
            self.head.shrink_to(KEPT_HEAD_CAPACITY);
        }
    }

    /// The connection's first request line was read (`SRV-LIMIT-17`); `http`: whether it
    /// has an HTTP version (`HTTP/…`, valid or not, which hyper answers). If not, the
    /// client does not speak HTTP/1 — on a port that also serves HTTP/2 with prior knowledge,
    /// it may be a broken HTTP/2 preface — and nothing more is followed. Returns `http`.
    fn first_line(&mut self, http: bool) -> bool {
        self.check_first_line = false;
        if !http {
            self.not_http = true;
            self.state = State::Off;
            self.head = Vec::new();
        }
        http
    }

    fn head_done(&mut self, facts: HeadFacts) {
        let HeadFacts {
            http1,
            switch,
            content_length,
            transfer_encoding,
        } = facts;
        if !http1 {
            self.state = State::Off;
            return;
        }
        self.switch = switch;
        let ambiguous = content_length.is_some() && transfer_encoding.is_some();
        self.current = self
            .conn
            .verdicts
            .push(ambiguous.then_some(Refusal::Framing));
        self.extension_bytes = 0;
        self.trailer_bytes = 0;
        self.trailer_lines = 0;
        self.state = match (transfer_encoding, content_length) {
            (Some(true), _) => State::ChunkStart,
            (Some(false), _) | (None, Some(None)) => State::Off,
            (None, Some(Some(0))) | (None, None) => self.message_done(),
            (None, Some(Some(length))) => State::Body(length),
        };
    }

    /// The state after a whole request: the next head, or waiting to learn whether the
    /// connection switched protocols.
    fn message_done(&self) -> State {
        if self.switch == Switch::None {
            State::Head
        } else {
            State::AwaitSwitch
        }
    }

    /// The response to the request that offered a switch shows `status` (`None`: it is not a
    /// response head the guard can read): stop following the stream if the connection
    /// switched, else follow the bytes kept meanwhile as the next requests.
    fn switch_decided(&mut self, status: Option<u16>) -> Option<usize> {
        let switched = match (status, self.switch) {
            (Some(101), Switch::Upgrade) => true,
            (Some(200..=299), Switch::Connect) => true,
            (Some(_), _) => false,
            (None, _) => true,
        };
        let mut kept = std::mem::take(&mut self.head);
        self.switch = Switch::None;
        if switched {
            self.state = State::Off;
            return None;
        }
        self.state = State::Head;
        self.switch_declined = true;
        // The kept bytes were already read by hyper; a malformed body in them belongs to a
        // request not yet handed to the application, so it is refused, never poisoned (and a
        // higher minor version in them is lifted too late: hyper refuses that request).
        self.feed(&mut kept)
    }

    fn malformed_body(&mut self) {
        if !self.conn.verdicts.condemn(self.current, Refusal::Framing) {
            self.poisoned = true;
        }
        self.state = State::Off;
    }

    fn chunk_byte(&mut self, byte: u8) {
        let next = match self.state {
            State::ChunkStart => hex_digit(byte).map(State::ChunkSize),
            State::ChunkSize(size) => match byte {
                b' ' | b'\t' => self.extension_byte(State::ChunkSizeSpace(size)),
                b';' => self.extension_byte(State::ChunkExtension(size, Extension::BeforeName)),
                b'\r' => Some(State::ChunkSizeLf(size)),
                _ => hex_digit(byte)
                    .and_then(|digit| size.checked_mul(16)?.checked_add(digit))
                    .map(State::ChunkSize),
            },
            State::ChunkSizeSpace(size) => match byte {
                b' ' | b'\t' => self.extension_byte(State::ChunkSizeSpace(size)),
                b';' => self.extension_byte(State::ChunkExtension(size, Extension::BeforeName)),
                _ => None,
            },
            State::ChunkExtension(size, at) => match at.next(byte) {
                Some(Some(at)) => self.extension_byte(State::ChunkExtension(size, at)),
                Some(None) => Some(State::ChunkSizeLf(size)),
                None => None,
            },
            State::ChunkSizeLf(size) => (byte == b'\n').then_some(if size == 0 {
                State::TrailerLine
            } else {
                State::ChunkData(size)
            }),
            State::ChunkDataCr => (byte == b'\r').then_some(State::ChunkDataLf),
            State::ChunkDataLf => (byte == b'\n').then_some(State::ChunkStart),
            State::TrailerLine => match byte {
                b'\r' => Some(State::FinalLf),
                _ if is_tchar(byte) => self.trailer_byte(State::TrailerName),
                _ => None,
            },
            State::TrailerName => match byte {
                b':' => self.trailer_byte(State::TrailerValue),
                _ if is_tchar(byte) => self.trailer_byte(State::TrailerName),
                _ => None,
            },
            State::TrailerValue => match byte {
                b'\r' => self.trailer_byte(State::TrailerLf),
                b'\t' | b' '..=b'~' | 0x80..=0xff => self.trailer_byte(State::TrailerValue),
                _ => None,
            },
            State::TrailerLf => {
                self.trailer_lines += 1;
                (byte == b'\n' && self.trailer_lines <= MAX_TRAILER_LINES)
                    .then_some(State::TrailerLine)
            }
            State::FinalLf => (byte == b'\n').then(|| self.message_done()),
            other => Some(other),
        };
        match next {
            Some(state) => self.state = state,
            None => self.malformed_body(),
        }
    }

    /// Counts a byte of a chunk-size line's extensions (or of the whitespace before them)
    /// against their limit.
    fn extension_byte(&mut self, next: State) -> Option<State> {
        self.extension_bytes += 1;
        (self.extension_bytes <= MAX_EXTENSION_BYTES).then_some(next)
    }

    /// Counts a byte of the trailer section against its limit.
    fn trailer_byte(&mut self, next: State) -> Option<State> {
        self.trailer_bytes += 1;
        (self.trailer_bytes <= MAX_TRAILER_BYTES).then_some(next)
    }
}

/// The value of `line` if it is a field named `name` (lowercase), trimmed.
fn field_value<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let n = name.len();
    (line.len() > n && line[n] == b':' && line[..n].eq_ignore_ascii_case(name))
        .then(|| line[n + 1..].trim_ascii())
}

fn hex_digit(byte: u8) -> Option<u64> {
    char::from(byte).to_digit(16).map(u64::from)
}

/// A `tchar` of RFC 9110 §5.6.2: the characters of a field name.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// The status of the final response head that a write starting with `bytes` carries,
/// after any interim (`1xx` other than `101`) heads; `Some(None)` when `bytes` is not a
/// response head, `None` when the final head is not in `bytes` yet.
fn final_status(mut bytes: &[u8]) -> Option<Option<u16>> {
    loop {
        let code = bytes.get(9..12)?;
        if !bytes.starts_with(b"HTTP/1.") || !code.iter().all(u8::is_ascii_digit) {
            return Some(None);
        }
        let status = code
            .iter()
            .fold(0u16, |status, digit| status * 10 + u16::from(digit - b'0'));
        if !(100..200).contains(&status) || status == 101 {
            return Some(Some(status));
        }
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
        bytes = &bytes[end + 4..];
    }
}

/// What the guard needs to know of a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeadFacts {
    /// Whether the request line is an HTTP/1.0 or HTTP/1.1 one (not the HTTP/2 preface):
    /// otherwise the guard stops following the stream and leaves it to hyper.
    http1: bool,
    /// The protocol switch the request offers.
    switch: Switch,
    /// `content-length`: `Some(None)` when a value is invalid or two values differ.
    content_length: Option<Option<u64>>,
    /// `transfer-encoding`: whether its last coding is `chunked`.
    transfer_encoding: Option<bool>,
}

/// Reads the head at the start of `bytes` in one pass over its lines: its length (up to and
/// including the empty line that ends it) and its facts, if it is all there. Lines end at LF;
/// one CR before it is not part of the line.
fn read_head(bytes: &[u8]) -> Option<(usize, HeadFacts)> {
    read_head_after(bytes, memchr::memchr(b'\n', bytes)?)
}

/// [`read_head`], with the end of the request line (its LF at `first_end`) already found.
fn read_head_after(bytes: &[u8], first_end: usize) -> Option<(usize, HeadFacts)> {
    let request_line = trim_line(&bytes[..=first_end]);
    let mut facts = HeadFacts {
        http1: !request_line.starts_with(b"PRI * HTTP/2")
            && (request_line.ends_with(b"HTTP/1.1") || request_line.ends_with(b"HTTP/1.0")),
        switch: if request_line.starts_with(b"CONNECT ") {
            Switch::Connect
        } else {
            Switch::None
        },
        content_length: None,
        transfer_encoding: None,
    };
    let mut start = first_end + 1;
    loop {
        let end = start + memchr::memchr(b'\n', &bytes[start..])?;
        let line = trim_line(&bytes[start..=end]);
        start = end + 1;
        if line.is_empty() {
            return Some((start, facts));
        }
        // A field name is followed by its colon at once (hyper refuses whitespace there), so
        // a name is recognised by its length and one byte before it is compared: most lines
        // are dismissed without a search.
        if let Some(value) = field_value(line, b"content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
            facts.content_length = Some(match facts.content_length {
                Some(Some(previous)) if Some(previous) != parsed => None,
                Some(None) => None,
                _ => parsed,
            });
        } else if let Some(value) = field_value(line, b"transfer-encoding") {
            let last = value
                .rsplit(|b| *b == b',')
                .next()
                .map(<[u8]>::trim_ascii)
                .unwrap_or_default();
            facts.transfer_encoding = Some(last.eq_ignore_ascii_case(b"chunked"));
        } else if facts.switch == Switch::None && field_value(line, b"upgrade").is_some() {
            facts.switch = Switch::Upgrade;
        }
    }
}

/// Whether a first line looks like an HTTP/1 request line: `HTTP/` follows a space somewhere
/// in it (RFC 9112 §2.2: "what appears from the start-line to be an HTTP request"), whatever
/// else is wrong with it.
fn has_http_version(line: &[u8]) -> bool {
    memchr::memmem::find(line, b" HTTP/").is_some()
}

/// Lifts a higher minor version in a request line to HTTP/1.1 (`SRV-LIMIT-19`): RFC 9110 §2.5
/// says a recipient SHOULD process a message of a higher minor version "as if it were in the
/// highest minor version within that major version to which the recipient is conformant".
/// hyper refuses every version but `HTTP/1.0` and `HTTP/1.1` as soon as it sees the version's
/// eight bytes, so the guard rewrites the minor digit of `HTTP/1.2` … `HTTP/1.9` to `1` before
/// hyper reads it: the application and the response then say HTTP/1.1.
///
/// `line` is the part of a request line in this read (up to its LF, when that is in it), and
/// `before` the part read before it (already handed on: only `line` can change). The first
/// space of the line that `HTTP/1.` and one more byte follow decides, wherever the reads split
/// the line: a method or target holds no space, so in a well-formed line that is the version;
/// in a malformed one, hyper refuses the line with or without the change. A digit at or past
/// `max_head` bytes into the line stays: that request is refused for its size, and the guard
/// stops following a head once it is too large, so where the reads split must not decide.
fn lift_minor_version(before: &[u8], line: &mut [u8], max_head: usize) {
    const VERSION: &[u8] = b" HTTP/1.";
    let total = before.len() + line.len();
    let byte_at = |line: &[u8], i: usize| {
        if i < before.len() {
            before[i]
        } else {
            line[i - before.len()]
        }
    };
    let spaces = memchr::memchr_iter(b' ', before)
        .chain(memchr::memchr_iter(b' ', line).map(|i| before.len() + i));
    for space in spaces {
        let digit = space + VERSION.len();
        if digit >= total {
            // Not all here yet: the next read decides.
            return;
        }
        if (1..VERSION.len()).all(|k| byte_at(line, space + k) == VERSION[k]) {
            if digit >= before.len()
                && digit < max_head
                && matches!(byte_at(line, digit), b'2'..=b'9')
            {
                line[digit - before.len()] = b'1';
            }
            return;
        }
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
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

/// The connection's first bytes, read to choose the protocol, and how many were replayed.
#[derive(Debug)]
struct Replay {
    prefix: crate::protocol::Prefix,
    pos: u8,
}

/// The preface's length, as the guard counts it.
const PREFACE_LEN: u8 = PREFACE.len() as u8;

/// A count of at most the preface's length, as a byte.
fn byte(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

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
        // (Bytes, and the preface's length at most: every HTTP/1 connection has a guard.)
        sniffed: u8,
        // Whether the end of input was already held back once.
        eof_deferred: bool,
        // Response bytes held back while hyper answers pipelined requests it already read,
        // so that one write carries several responses (see `AsyncWrite` below).
        held: Vec<u8>,
        // How many flushes of held bytes were put off in a row (see `poll_flush`).
        flushes_put_off: u8,
        // The connection's first bytes, read to choose the protocol: replayed first.
        // Boxed, and dropped once replayed: every HTTP/1 connection has a guard.
        prefix: Option<Box<Replay>>,
        // Set once a malformed body of a request already handed to the application was cut
        // off: every read from then on fails, and hyper closes the connection.
        failed: bool,
        // The reader waiting while the scanner keeps bytes after a request that offered a
        // protocol switch (woken when the response decides it).
        read_waker: Option<Waker>,
        // How long writes have made no progress (the client does not read).
        write_stall: StallTimer,
    }
}

impl<Io> FramingGuard<Io> {
    /// Guards `io`, whose first bytes `prefix` were already read; a head longer than
    /// `max_head` is refused with `431`.
    pub(crate) fn new(
        io: Io,
        prefix: crate::protocol::Prefix,
        max_head: usize,
        conn: Arc<ConnState>,
        allowed: Allowed,
    ) -> Self {
        Self {
            io,
            allowed,
            eof_deferred: false,
            held: Vec::new(),
            flushes_put_off: 0,
            prefix: (prefix.len() > 0).then(|| Box::new(Replay { prefix, pos: 0 })),
            sniffed: if allowed == Allowed::Both {
                PREFACE_LEN
            } else {
                0
            },
            failed: false,
            read_waker: None,
            write_stall: StallTimer::new(None),
            scanner: Scanner::new(max_head, conn, allowed == Allowed::Both),
        }
    }
}

impl<Io> FramingGuard<Io> {
    /// Closes the connection when a write makes no progress for `timeout` (`None`: never;
    /// `SRV-LIMIT-16`).
    pub(crate) fn with_write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_stall = StallTimer::new(timeout);
        self
    }

    /// Follows a write's outcome: a pending write arms (or keeps) the stall timer, and fails
    /// with `TimedOut` once it fired; any progress disarms it.
    fn watch_write<T>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        self.project().write_stall.watch_write(
            cx,
            result,
            "the client read nothing within the write timeout",
        )
    }
}

impl<Io: AsyncRead + AsyncWrite> AsyncRead for FramingGuard<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut this = self.project();
        if *this.failed {
            return Poll::Ready(Err(malformed_body_error()));
        }
        let before = buf.filled().len();
        let room = if this.scanner.state == State::AwaitSwitch {
            SWITCH_STASH_LIMIT.saturating_sub(this.scanner.head.len())
        } else {
            usize::MAX
        };
        let result = if let Some(replay) = this.prefix.as_mut() {
            let pos = usize::from(replay.pos);
            let rest = &replay.prefix.as_bytes()[pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            if n == rest.len() {
                *this.prefix = None;
            } else {
                replay.pos = byte(pos + n);
            }
            if buf.remaining() > 0 {
                // The bytes that follow, in the same read: hyper then sees the first head
                // whole, and does not grow its read buffer for the few replayed bytes. An
                // error or the end of input shows at the next read.
                let _ = this.io.as_mut().poll_read(cx, buf);
            }
            Poll::Ready(Ok(()))
        } else if room == 0 {
            // The scanner keeps as much as it may while a protocol switch is undecided:
            // reading resumes when the response decides it (`switch_decided`).
            *this.read_waker = Some(cx.waker().clone());
            Poll::Pending
        } else if room < buf.remaining() {
            // The rare bounded read, through a small buffer.
            let mut bounce = [0u8; 4096];
            let mut small = ReadBuf::new(&mut bounce[..room.min(4096)]);
            let result = this.io.as_mut().poll_read(cx, &mut small);
            buf.put_slice(small.filled());
            result
        } else {
            this.io.as_mut().poll_read(cx, buf)
        };
        if result.is_pending() && !this.held.is_empty() && this.scanner.conn.activity.is_idle() {
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
            let fresh = &mut buf.filled_mut()[before..];
            if !fresh.is_empty() {
                this.scanner
                    .conn
                    .saw_bytes
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            let sniffed = usize::from(*this.sniffed);
            if sniffed < PREFACE.len() && !fresh.is_empty() {
                let n = fresh.len().min(PREFACE.len() - sniffed);
                let matches = fresh[..n] == PREFACE[sniffed..sniffed + n];
                // Once the bytes diverge from the preface, there is nothing more to check.
                *this.sniffed = if matches {
                    byte(sniffed + n)
                } else {
                    PREFACE_LEN
                };
                let refused = match this.allowed {
                    Allowed::Http2 => !matches,
                    // "PRI * HTTP/2.0" is no valid HTTP/1 request: refuse it as HTTP/2.
                    Allowed::Http1 => matches && *this.sniffed >= 14,
                    Allowed::Both => false,
                };
                if refused {
                    *this.sniffed = PREFACE_LEN;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the client speaks an HTTP version this server is configured not to serve",
                    )));
                }
            }
            if this.scanner.state != State::Off {
                let accepted = this.scanner.feed(fresh);
                if this.scanner.not_http {
                    // Closed without a response: hyper sees a failed read (SRV-LIMIT-17).
                    *this.failed = true;
                    return Poll::Ready(Err(not_http_error()));
                }
                if let Some(accepted) = accepted {
                    // A malformed body of a request the application already has (SRV-LIMIT-15):
                    // hyper gets the bytes before the offending one, then an error.
                    *this.failed = true;
                    if accepted == 0 {
                        return Poll::Ready(Err(malformed_body_error()));
                    }
                    buf.set_filled(before + accepted);
                }
            }
        }
        result
    }
}

fn not_http_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "the connection's first line is neither an HTTP/1 request line nor the HTTP/2 preface \
         (SRV-LIMIT-17)",
    )
}

fn malformed_body_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "malformed chunked request body (SRV-LIMIT-15)",
    )
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
        !self.scanner.switch_declined
            && self.scanner.conn.verdicts.has_untaken()
            && self.scanner.conn.activity.is_idle()
    }
}

impl<Io> FramingGuard<Io> {
    /// hyper writes the response to the request that offered a protocol switch (the service
    /// took its verdict, and hyper answers one request at a time): its status decides whether
    /// the bytes kept since are the switched protocol or more requests.
    fn response_to_switch_offer(self: Pin<&mut Self>, bufs: &[io::IoSlice<'_>]) {
        let this = self.project();
        let status = if let [only] = bufs {
            final_status(only)
        } else {
            final_status(
                &bufs
                    .iter()
                    .flat_map(|buf| buf.iter().copied())
                    .collect::<Vec<u8>>(),
            )
        };
        // An interim response alone: the final one comes in a later write.
        let Some(status) = status else { return };
        if this.scanner.switch_decided(status).is_some() {
            // Cannot happen (the kept requests were not handed out), but if it did, the
            // connection must not go on.
            *this.failed = true;
        }
        if let Some(waker) = this.read_waker.take() {
            waker.wake();
        }
    }
}

impl<Io: AsyncWrite> FramingGuard<Io> {
    fn write_slices(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|buf| buf.len()).sum();
        if self.scanner.state == State::AwaitSwitch
            && total > 0
            && self.scanner.conn.verdicts.taken_past(self.scanner.current)
        {
            self.as_mut().response_to_switch_offer(bufs);
        }
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
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = self.as_mut().write_slices(cx, &[io::IoSlice::new(buf)]);
        self.watch_write(cx, result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = self.as_mut().flush_held(cx);
        self.watch_write(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = self.as_mut().shutdown_held(cx);
        self.watch_write(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = self.as_mut().write_slices(cx, bufs);
        self.watch_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<Io: AsyncWrite> FramingGuard<Io> {
    fn flush_held(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
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

    fn shutdown_held(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut this = self.project();
        if let Err(error) = std::task::ready!(drain(this.io.as_mut(), cx, this.held)) {
            return Poll::Ready(Err(error));
        }
        this.io.poll_shutdown(cx)
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
        let conn = ConnState::detached();
        let verdicts = &conn.verdicts;
        let mut scanner = Scanner::new(max_head, conn.clone(), false);
        for chunk in chunks {
            scanner.feed(&mut chunk.to_vec());
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
    fn switches_off_for_http2() {
        assert!(scan(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]).is_empty());
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

    /// SRV-LIMIT-17: on a port that also serves HTTP/2, a first line without an HTTP version
    /// is no HTTP/1 request; one with any ` HTTP/` in it is left to hyper (a malformed one
    /// gets `400`), and so are later lines.
    #[test]
    fn tells_a_first_line_that_is_not_http() {
        let cases: &[(&[u8], bool)] = &[
            (b"INVALID CONNECTION PREFACE\r\n\r\n", true),
            (b"GET /\r\n", true),
            (b"GET / http/1.1\r\nHost: a\r\n\r\n", true),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", true),
            (b"GET / HTTP/1.1 \r\n\r\n", false),
            (b"GET / HTTP/1.1\rHost: a\r\n\r\n", false),
            (b"GET /HTTP/1.1\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nNOT HTTP\r\n\r\n", false),
            (b"GET / HTTP/9.9\r\nHost: a\r\n\r\n", false),
            (b"GET / HTTP/1\r\n", false),
            (b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", false),
        ];
        for &(stream, not_http) in cases {
            for size in [stream.len(), 1, 5] {
                let conn = ConnState::detached();
                let mut scanner = Scanner::new(8192, conn.clone(), true);
                for chunk in stream.chunks(size) {
                    scanner.feed(&mut chunk.to_vec());
                }
                let text = String::from_utf8_lossy(stream);
                assert_eq!(scanner.not_http, not_http, "{text} in {size}-byte reads");
            }
            let conn = ConnState::detached();
            let mut scanner = Scanner::new(8192, conn.clone(), false);
            scanner.feed(&mut stream.to_vec());
            assert!(!scanner.not_http, "unchecked port");
        }
    }

    /// SRV-LIMIT-5: a request line over the head limit is refused with `414` when its target
    /// makes it long, and `400` when its method does, however it arrives.
    #[test]
    fn flags_request_lines_over_the_limit() {
        let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "t".repeat(300));
        let long_method = format!("{} / HTTP/1.1\r\nHost: a\r\n\r\n", "M".repeat(300));
        let cases = [
            (long_target, Refusal::TargetTooLong),
            (long_method, Refusal::Framing),
        ];
        for (head, refusal) in &cases {
            let stream = head.as_bytes();
            assert_eq!(scan_refusals(&[stream], 256), [Some(*refusal)], "{head}");
            let bytes: Vec<&[u8]> = stream.chunks(7).collect();
            assert_eq!(scan_refusals(&bytes, 256), [Some(*refusal)], "{head}");
            let (first, rest) = stream.split_at(100);
            assert_eq!(scan_refusals(&[first, rest], 256), [Some(*refusal)]);
        }
    }

    fn scanner(conn: &Arc<ConnState>) -> Scanner {
        Scanner::new(8192, conn.clone(), false)
    }

    /// SRV-LIMIT-15: every malformed chunked body is refused before the application has it.
    #[test]
    fn flags_malformed_chunked_bodies() {
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let long_extension = format!("5;{}\r\nhello\r\n0\r\n\r\n", "x".repeat(17 * 1024));
        let whitespace_run = format!("5{};a\r\nhello\r\n0\r\n\r\n", " ".repeat(17 * 1024));
        let long_trailer = format!("0\r\nX: {}\r\n\r\n", "x".repeat(17 * 1024));
        let many_trailers = format!("0\r\n{}\r\n", "X: y\r\n".repeat(101));
        let bodies: &[&[u8]] = &[
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\r\r\n0\r\n\r\n",
            b"5\r\r\nhello\r\n0\r\n\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b";x\r\nhello\r\n0\r\n\r\n",
            b"5;a\nb\r\nhello\r\n0\r\n\r\n",
            b"5;a\0b\r\nhello\r\n0\r\n\r\n",
            // RFC 9112 §7.1.1: whitespace only before `;` and `=`, token names, token or
            // quoted-string values.
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\t\r\n\r\n",
            b"5;\r\nhello\r\n0\r\n\r\n",
            b"5;a \r\nhello\r\n0\r\n\r\n",
            b"5;a=b \r\nhello\r\n0\r\n\r\n",
            b"5;a=\r\nhello\r\n0\r\n\r\n",
            b"5;bad[=x\r\nhello\r\n0\r\n\r\n",
            b"5;a=b[\r\nhello\r\n0\r\n\r\n",
            b"5;a=b c\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"b\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"b\"c\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"b\\\x01\"\r\nhello\r\n0\r\n\r\n",
            b"5;;a\r\nhello\r\n0\r\n\r\n",
            b"5;=b\r\nhello\r\n0\r\n\r\n",
            long_extension.as_bytes(),
            whitespace_run.as_bytes(),
            b"0\r\nX-T: a\n\nGET / HTTP/1.1\r\n\r\n",
            b"0\r\nX-T: a\r\n folded\r\n\r\n",
            b"0\r\n folded: a\r\n\r\n",
            b"0\r\nBad Name: v\r\n\r\n",
            b"0\r\n: v\r\n\r\n",
            b"0\r\nno-colon\r\n\r\n",
            b"0\r\nX: a\x01b\r\n\r\n",
            b"0\r\n\r\r\n",
            b"0\r\n\n",
            long_trailer.as_bytes(),
            many_trailers.as_bytes(),
        ];
        for body in bodies {
            let stream = [&head[..], body, b"GET / HTTP/1.1\r\n\r\n"].concat();
            assert_eq!(
                scan(&[&stream]),
                [true],
                "{}",
                String::from_utf8_lossy(body)
            );
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(scan(&bytes), [true], "{}", String::from_utf8_lossy(body));
        }
    }

    /// What RFC 9112 §7.1 allows (and hyper accepts) is followed, request after request.
    #[test]
    fn follows_well_formed_chunked_bodies() {
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let bodies: &[&[u8]] = &[
            b"5\r\nhello\r\n0\r\n\r\n",
            b"5 ; a=b\r\nhello\r\n0;c=\"d e\"\r\n\r\n",
            b"5;a\r\nhello\r\n0\t;b \t; c = d ;e\r\n\r\n",
            b"5;a=\"\\\"q\\\\ \xe9\t;\" ;b=\"\"\r\nhello\r\n0;!#$%&'*+-.^_`|~=x\r\n\r\n",
            b"A\r\n0123456789\r\n0\r\nX-A: 1\r\nx-b:\r\nX-C: v\xe9 w\t\r\n\r\n",
            b"00000\r\n\r\n",
        ];
        for body in bodies {
            let stream = [&head[..], body, b"GET / HTTP/1.1\r\n\r\n"].concat();
            assert_eq!(
                scan(&[&stream]),
                [false, false],
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// SRV-LIMIT-15: when the body turns malformed after the service took the request, the
    /// scanner says how many bytes precede the offending one.
    #[test]
    fn cuts_off_a_body_malformed_after_the_call() {
        let conn = ConnState::detached();
        let verdicts = &conn.verdicts;
        let mut scanner = scanner(&conn);
        let first = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
        assert_eq!(scanner.feed(&mut first.to_vec()), None);
        assert_eq!(verdicts.next_refusal(), None);
        assert_eq!(
            scanner.feed(&mut b"0\r\nX-T: a\n\nGET / HTTP/1.1\r\n\r\n".to_vec()),
            Some(9)
        );
        assert!(!verdicts.has_untaken());
    }

    /// SRV-LIMIT-15: after a request that offered a protocol switch, the bytes wait for the
    /// response: a `101` (or a `2xx` to `CONNECT`) stops the scanner, anything else has them
    /// followed as requests.
    #[test]
    fn waits_for_the_response_to_a_switch_offer() {
        let smuggle: &[u8] =
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (offer, status, switched) in [
            (
                &b"GET / HTTP/1.1\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"[..],
                101,
                true,
            ),
            (
                b"GET / HTTP/1.1\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
                426,
                false,
            ),
            (b"GET / HTTP/1.1\r\nUpgrade: x\r\n\r\n", 200, false),
            (b"CONNECT a:1 HTTP/1.1\r\n\r\n", 200, true),
            (b"CONNECT a:1 HTTP/1.1\r\n\r\n", 101, false),
            (b"CONNECT a:1 HTTP/1.1\r\n\r\n", 404, false),
        ] {
            let conn = ConnState::detached();
            let verdicts = &conn.verdicts;
            let mut scanner = scanner(&conn);
            assert_eq!(scanner.feed(&mut [offer, smuggle].concat()), None);
            assert_eq!(scanner.state, State::AwaitSwitch);
            assert_eq!(verdicts.next_refusal(), None);
            assert!(
                !verdicts.has_untaken(),
                "the kept bytes are not followed yet"
            );
            assert_eq!(scanner.switch_decided(Some(status)), None);
            if switched {
                assert_eq!(scanner.state, State::Off);
                assert!(!verdicts.has_untaken());
            } else {
                assert_eq!(verdicts.next_refusal(), Some(Refusal::Framing), "{status}");
            }
        }
    }

    /// The head's end and facts, in one pass: the end is the first empty line (CRLF or a bare
    /// LF), a head cut short has none, and the framing fields are read as hyper reads them.
    #[test]
    fn reads_heads_in_one_pass() {
        let facts = read_head;
        let plain = HeadFacts {
            http1: true,
            switch: Switch::None,
            content_length: None,
            transfer_encoding: None,
        };
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nnext";
        assert_eq!(facts(head), Some((head.len() - 4, plain)));
        let head = b"GET / HTTP/1.1\nHost: a\n\nnext";
        assert_eq!(facts(head), Some((head.len() - 4, plain)));
        // Not all there yet.
        assert_eq!(facts(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        assert_eq!(facts(b"GET / HTTP/1.1\r\nHost: a\r\n\r"), None);
        assert_eq!(facts(b"GET / HTTP/1.1"), None);
        // A line holding only CR CR is not the empty line.
        assert_eq!(facts(b"GET / HTTP/1.1\r\n\r\r\n"), None);
        let (_, read) =
            facts(b"POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length:5\r\n\r\n").unwrap();
        assert_eq!(read.content_length, Some(Some(5)));
        let (_, read) =
            facts(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").unwrap();
        assert_eq!(read.content_length, Some(None));
        let (_, read) = facts(b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n").unwrap();
        assert_eq!(read.content_length, Some(None));
        let (_, read) =
            facts(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked \r\n\r\n").unwrap();
        assert_eq!(read.transfer_encoding, Some(true));
        let (_, read) =
            facts(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").unwrap();
        assert_eq!(read.transfer_encoding, Some(false));
        // A name with whitespace before its colon is no such field (hyper refuses the head).
        let (_, read) = facts(b"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n").unwrap();
        assert_eq!(read.content_length, None);
        let (_, read) =
            facts(b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n").unwrap();
        assert_eq!(read.switch, Switch::Upgrade);
        let (_, read) = facts(b"CONNECT a:443 HTTP/1.1\r\nUpgrade: x\r\n\r\n").unwrap();
        assert_eq!(read.switch, Switch::Connect);
        for other in [
            &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
            b"GET / HTTP/1.2\r\n\r\n",
            b"GET /\r\n\r\n",
        ] {
            assert!(!facts(other).unwrap().1.http1, "{other:?}");
        }
    }

    #[test]
    fn reads_the_final_status_of_a_response() {
        assert_eq!(
            final_status(b"HTTP/1.1 101 Switching Protocols\r\n"),
            Some(Some(101))
        );
        assert_eq!(final_status(b"HTTP/1.1 200 OK\r\n\r\n"), Some(Some(200)));
        assert_eq!(
            final_status(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 426 Upgrade Required\r\n"),
            Some(Some(426))
        );
        assert_eq!(final_status(b"HTTP/1.1 100 Continue\r\n\r\n"), None);
        assert_eq!(final_status(b"HTTP/1.1 1"), None);
        assert_eq!(final_status(b"\x81\x05hello from a WebSocket"), Some(None));
    }

    /// What hyper reads after the guard followed `stream` in the given reads (split at every
    /// offset in `splits`, in order).
    fn as_read(stream: &[u8], splits: &[usize]) -> Vec<u8> {
        read_in_pieces(stream, splits, 8192, false).0
    }

    /// SRV-LIMIT-19: `HTTP/1.2` … `HTTP/1.9` reach hyper as `HTTP/1.1`, however the request
    /// line is split across reads, in the first and in a pipelined request; nothing else
    /// changes — not a version hyper reads, not another major version, not the same bytes in a
    /// field or a body.
    #[test]
    fn lifts_higher_minor_versions_in_request_lines() {
        let cases: &[(&[u8], &[u8])] = &[
            (
                b"GET / HTTP/1.2\r\nhost: a\r\n\r\n",
                b"GET / HTTP/1.1\r\nhost: a\r\n\r\n",
            ),
            (
                b"\r\nGET /x?y=2 HTTP/1.9\nhost: a\n\n",
                b"\r\nGET /x?y=2 HTTP/1.1\nhost: a\n\n",
            ),
            (
                b"GET / HTTP/1.1\r\nhost: a\r\n\r\nPOST /e HTTP/1.5\r\ncontent-length: 9\r\n\r\n HTTP/1.2GET / HTTP/1.3\r\n\r\n",
                b"GET / HTTP/1.1\r\nhost: a\r\n\r\nPOST /e HTTP/1.1\r\ncontent-length: 9\r\n\r\n HTTP/1.2GET / HTTP/1.1\r\n\r\n",
            ),
            // Still malformed after the change, as before it: hyper refuses both.
            (b"GET / HTTP/1.23\r\n\r\n", b"GET / HTTP/1.13\r\n\r\n"),
        ];
        let unchanged: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nhost: a\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/0.9\r\n\r\n",
            b"GET / HTTP/1.\r\n\r\n",
            b"GET /HTTP/1.2 HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nvia: HTTP/1.2 x\r\nx: a HTTP/1.2\r\n\r\n",
        ];
        let expectations = cases
            .iter()
            .copied()
            .chain(unchanged.iter().map(|&stream| (stream, stream)));
        for (stream, expected) in expectations {
            let text = String::from_utf8_lossy(stream);
            assert_eq!(as_read(stream, &[]), expected, "{text:?} in one read");
            for split in 1..stream.len() {
                assert_eq!(
                    as_read(stream, &[split]),
                    expected,
                    "{text:?} split at {split}"
                );
            }
            let bytewise: Vec<usize> = (1..stream.len()).collect();
            assert_eq!(
                as_read(stream, &bytewise),
                expected,
                "{text:?} byte by byte"
            );
        }
    }

    /// A small deterministic generator (xorshift64*), so that the property test below needs no
    /// dependency and replays exactly.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    /// One request of the property test: a head built from well-formed and broken parts, and a
    /// body framed by its fields (or not).
    fn random_request(rng: &mut Rng) -> Vec<u8> {
        let eol = rng.pick(&["\r\n", "\r\n", "\r\n", "\n"]);
        let mut out = String::new();
        if rng.below(8) == 0 {
            out.push_str(eol);
        }
        out.push_str(rng.pick(&["GET", "POST", "PUT", "CONNECT", "G T", ""]));
        out.push(' ');
        out.push_str(rng.pick(&["/", "/echo?x=1", "*", "a.test:443", "/HTTP/1.2", "/é"]));
        out.push_str(rng.pick(&[
            " HTTP/1.1",
            " HTTP/1.1",
            " HTTP/1.0",
            " HTTP/1.2",
            " HTTP/2.0",
            "",
            " HTTP/1.23",
        ]));
        out.push_str(eol);
        let mut chunked = false;
        let mut length = None;
        for _ in 0..rng.below(5) {
            match rng.below(9) {
                0 => out.push_str("host: a.test"),
                1 => {
                    let n = rng.below(40);
                    length = Some(n);
                    out.push_str(&format!("content-length: {n}"));
                }
                2 => out.push_str(rng.pick(&[
                    "content-length: x",
                    "content-length: 1, 2",
                    "content-length:",
                ])),
                3 => {
                    chunked = true;
                    out.push_str(rng.pick(&[
                        "transfer-encoding: chunked",
                        "transfer-encoding: gzip, chunked",
                    ]));
                }
                4 => out.push_str(rng.pick(&[
                    "transfer-encoding: gzip",
                    "transfer-encoding: chunked, gzip",
                ])),
                5 => out.push_str(rng.pick(&["upgrade: websocket", "connection: upgrade"])),
                6 => out.push_str(rng.pick(&[" folded", "x : y", "no-colon", "x-a: HTTP/1.2"])),
                _ => out.push_str(&format!(
                    "x-{}: {}",
                    rng.below(100),
                    "v".repeat(rng.below(30))
                )),
            }
            out.push_str(eol);
        }
        out.push_str(eol);
        if chunked {
            for _ in 0..rng.below(4) {
                let n = 1 + rng.below(20);
                out.push_str(&format!("{n:x}"));
                out.push_str(rng.pick(&["", "", ";a=b", ";a=\"q s\"", " ;a", ";", " ", ";bad[=x"]));
                out.push_str(rng.pick(&["\r\n", "\r\n", "\n"]));
                out.push_str(&"d".repeat(n));
                out.push_str(rng.pick(&["\r\n", "\r\n", "\n", "x\r\n"]));
            }
            out.push('0');
            out.push_str(rng.pick(&["\r\n", "\r\n", "\n"]));
            out.push_str(rng.pick(&["", "", "x-t: a\r\n", "x-t: a\n", "bad trailer\r\n"]));
            out.push_str(rng.pick(&["\r\n", "\r\n", "\n"]));
        } else if let Some(n) = length {
            out.push_str(&"b".repeat(n));
        }
        out.into_bytes()
    }

    /// What the guard makes of `stream` read in the given pieces: the bytes hyper reads, where
    /// they are cut off (if a body turned out malformed), every verdict in order, whether the
    /// first line was no HTTP, and the state it ends in.
    type Reading = (Vec<u8>, Option<usize>, Vec<Option<Refusal>>, bool, State);

    fn read_in_pieces(stream: &[u8], splits: &[usize], max_head: usize, first: bool) -> Reading {
        let conn = ConnState::detached();
        let mut scanner = Scanner::new(max_head, conn.clone(), first);
        let mut out = Vec::new();
        let mut cut = None;
        let mut start = 0;
        for &end in splits.iter().chain([&stream.len()]) {
            if start == end {
                continue;
            }
            let mut chunk = stream[start..end].to_vec();
            if scanner.state != State::Off && cut.is_none() {
                if let Some(accepted) = scanner.feed(&mut chunk) {
                    cut = Some(start + accepted);
                }
            }
            out.extend_from_slice(&chunk);
            start = end;
        }
        let mut verdicts = Vec::new();
        while conn.verdicts.has_untaken() {
            verdicts.push(conn.verdicts.next_refusal());
        }
        (out, cut, verdicts, scanner.not_http, scanner.state)
    }

    /// SRV-LIMIT-5, SRV-LIMIT-13, SRV-LIMIT-14, SRV-LIMIT-15, SRV-LIMIT-17, SRV-LIMIT-19: the
    /// guard's reading of a stream does not depend on how the stream is split into reads. For
    /// 20,000 generated streams (pipelined requests from well-formed and broken parts,
    /// small and default head limits, with and without the first-line check), the bytes handed
    /// on, the verdicts, the cut-off point and the final state are the same read whole, in
    /// random pieces, and byte by byte; and nothing panics.
    #[test]
    fn reads_every_stream_the_same_however_it_is_split() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for case in 0..20_000 {
            let mut stream = Vec::new();
            for _ in 0..1 + rng.below(3) {
                stream.extend(random_request(&mut rng));
            }
            if rng.below(4) == 0 && !stream.is_empty() {
                // A random byte changed, to reach states no generated part does.
                let at = rng.below(stream.len());
                stream[at] = rng
                    .pick(&["\r", "\n", " ", ";", "0", ":", "\"", "a"])
                    .as_bytes()[0];
            }
            let max_head = if rng.below(3) == 0 {
                24 + rng.below(40)
            } else {
                8192
            };
            let first = rng.below(2) == 0;
            let whole = read_in_pieces(&stream, &[], max_head, first);
            let mut random: Vec<usize> = (0..rng.below(6))
                .map(|_| rng.below(stream.len().max(1)))
                .collect();
            random.sort_unstable();
            let bytewise: Vec<usize> = (1..stream.len()).collect();
            for (how, splits) in [("random pieces", random), ("byte by byte", bytewise)] {
                let other = read_in_pieces(&stream, &splits, max_head, first);
                assert_eq!(
                    whole,
                    other,
                    "case {case}, max_head {max_head}, first-line check {first}: read whole \
                     and in {how} ({splits:?}) differ for {:?}",
                    String::from_utf8_lossy(&stream)
                );
            }
        }
    }
}
