//! Runtime checks of `rgi::Body` and `rgi::BodyError` (HTTP-BODY, HTTP-TRAIL, CORE-ERR).

mod support;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use rgi::{Body, BodyError, BoxError};
use support::block_on;

/// A body of scripted frames, with a declared exact length (like a Content-Length).
struct Scripted {
    frames: Vec<Result<Frame<Bytes>, BoxError>>,
    exact: Option<u64>,
    polls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl http_body::Body for Scripted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.frames.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some(self.frames.remove(0)))
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.exact.map_or_else(SizeHint::new, SizeHint::with_exact)
    }
}

fn scripted(
    frames: Vec<Result<Frame<Bytes>, BoxError>>,
    exact: Option<u64>,
) -> (Body, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let body = Body::new(Scripted {
        frames,
        exact,
        polls: polls.clone(),
    });
    (body, polls)
}

fn data(s: &'static str) -> Result<Frame<Bytes>, BoxError> {
    Ok(Frame::data(Bytes::from_static(s.as_bytes())))
}

/// HTTP-BODY: an empty body ends at its first poll and says so up front.
#[test]
fn empty_body_ends_immediately() {
    let mut body = Body::empty();
    assert!(body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(0));
    assert!(block_on(body.frame()).is_none());
}

/// HTTP-BODY: a full body yields its bytes once, then the end.
#[test]
fn full_body_yields_once() {
    let mut body = Body::from("hello");
    assert_eq!(body.size_hint().exact(), Some(5));
    let frame = block_on(body.frame()).unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "hello");
    assert!(block_on(body.frame()).is_none());
    assert!(body.is_end_stream());
}

/// HTTP-TRAIL: trailers are the final frame and are collected with the data.
#[test]
fn collect_keeps_data_and_trailers() {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let (body, _) = scripted(
        vec![
            data("ab"),
            data(""),
            data("cd"),
            Ok(Frame::trailers(trailers)),
        ],
        None,
    );
    let collected = block_on(body.collect()).unwrap();
    assert_eq!(collected.to_bytes(), "abcd");
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
}

/// HTTP-BODY: the end of the body (`None`) is distinct from a disconnect (an error).
#[test]
fn disconnect_is_an_error_not_an_end() {
    let (mut body, _) = scripted(
        vec![data("a"), Err(Box::new(BodyError::Disconnected))],
        None,
    );
    assert!(block_on(body.frame()).unwrap().is_ok());
    let error = block_on(body.frame()).unwrap().unwrap_err();
    assert!(matches!(error, BodyError::Disconnected), "{error:?}");
    // After an error the body is over.
    assert!(block_on(body.frame()).is_none());
}

/// HTTP-BODY: a declared length over the limit fails at the first poll, before the inner body
/// is read (so a server sends no `100 Continue`).
#[test]
fn declared_length_over_limit_fails_before_reading() {
    let (body, polls) = scripted(vec![data("0123456789")], Some(10));
    let mut body = body.with_limit(Some(5));
    let error = block_on(body.frame()).unwrap().unwrap_err();
    assert!(
        matches!(error, BodyError::LengthLimitExceeded { limit: 5 }),
        "{error:?}"
    );
    assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(error.status_code(), Some(StatusCode::PAYLOAD_TOO_LARGE));
}

/// HTTP-BODY-7, HTTP-BODY-8: `check_limit` makes the first poll's check without polling: it
/// fails exactly when that poll would, and counts the bytes already read against a new limit.
#[test]
fn check_limit_agrees_with_the_first_poll() {
    let (body, polls) = scripted(vec![data("0123456789")], Some(10));
    let body = body.with_limit(Some(5));
    assert!(matches!(
        body.check_limit(),
        Err(BodyError::LengthLimitExceeded { limit: 5 })
    ));
    assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 0);
    let body = body.with_limit(Some(10));
    assert!(body.check_limit().is_ok());
    assert!(body.with_limit(None).check_limit().is_ok());
    // No declared length: nothing to check before the bytes come.
    let (body, _) = scripted(vec![data("0123456789")], None);
    assert!(body.with_limit(Some(1)).check_limit().is_ok());
    // Bytes already read count (HTTP-BODY-8).
    let (mut body, _) = scripted(vec![data("abcdef"), data("g")], None);
    assert!(block_on(body.frame()).unwrap().is_ok());
    body.set_limit(Some(6));
    assert!(body.check_limit().is_ok());
    body.set_limit(Some(5));
    assert!(matches!(
        body.check_limit(),
        Err(BodyError::LengthLimitExceeded { limit: 5 })
    ));
}

/// HTTP-BODY: an undeclared length is counted as it streams.
#[test]
fn streamed_length_over_limit_fails_when_crossed() {
    let (body, _) = scripted(vec![data("abc"), data("def"), data("ghi")], None);
    let mut body = body.with_limit(Some(7));
    assert!(block_on(body.frame()).unwrap().is_ok());
    assert!(block_on(body.frame()).unwrap().is_ok());
    let error = block_on(body.frame()).unwrap().unwrap_err();
    assert!(matches!(error, BodyError::LengthLimitExceeded { limit: 7 }));
}

/// HTTP-BODY: the application may raise the limit the server set.
#[test]
fn raising_the_limit_lets_the_body_through() {
    let (body, _) = scripted(vec![data("0123456789")], Some(10));
    let mut body = body.with_limit(Some(5));
    body.set_limit(Some(100));
    let collected = block_on(body.collect()).unwrap();
    assert_eq!(collected.into_bytes().len(), 10);
}

/// HTTP-BODY: lowering the limit mid-stream counts the bytes already read.
#[test]
fn lowering_the_limit_counts_bytes_already_read() {
    let (mut body, _) = scripted(vec![data("abcdef"), data("g")], None);
    assert!(block_on(body.frame()).unwrap().is_ok());
    body.set_limit(Some(3));
    let error = block_on(body.frame()).unwrap().unwrap_err();
    assert!(matches!(error, BodyError::LengthLimitExceeded { limit: 3 }));
}

/// Wrapping a `Body` returns it as it is, limit included (no second box).
#[test]
fn wrapping_a_body_is_the_identity() {
    let body = Body::from("x").with_limit(Some(9));
    let wrapped = Body::new(body);
    assert_eq!(wrapped.limit(), Some(9));
    assert!(format!("{wrapped:?}").contains("full"));
}

/// CORE-ERR: errors of a wrapped body that are `BodyError`s keep their kind.
#[test]
fn body_errors_pass_through_wrapping() {
    let (mut body, _) = scripted(vec![Err(Box::new(BodyError::TimedOut))], None);
    let error = block_on(body.frame()).unwrap().unwrap_err();
    assert!(matches!(error, BodyError::TimedOut));
    assert_eq!(error.status_code(), Some(StatusCode::REQUEST_TIMEOUT));

    let other: BoxError = "boom".into();
    let (mut body, _) = scripted(vec![Err(other)], None);
    let error = block_on(body.frame()).unwrap().unwrap_err();
    assert!(matches!(error, BodyError::Other(_)));
    assert_eq!(error.status_code(), None);
}

#[derive(Debug, thiserror::Error)]
#[error("could not read the upload")]
struct UploadError(#[source] BodyError);

/// CORE-ERR: a server finds a `BodyError` anywhere in an application error's source chain.
#[test]
fn body_error_found_in_source_chain() {
    let error: BoxError = Box::new(UploadError(BodyError::LengthLimitExceeded { limit: 1 }));
    let found = BodyError::find(error.as_ref()).unwrap();
    assert_eq!(found.status_code(), Some(StatusCode::PAYLOAD_TOO_LARGE));
    let unrelated: BoxError = "plain".into();
    assert!(BodyError::find(unrelated.as_ref()).is_none());
    assert_eq!(BodyError::Disconnected.status_code(), None);
}

/// HTTP-BODY: size hints shrink as data is read.
#[test]
fn size_hint_tracks_what_was_read() {
    let (mut body, _) = scripted(vec![data("abc"), data("de")], Some(5));
    assert_eq!(body.size_hint().exact(), Some(5));
    block_on(body.frame()).unwrap().unwrap();
    assert_eq!(body.size_hint().exact(), Some(2));
}

/// Body is Send and Sync, so `&Request` can be held across awaits in `Send` futures.
#[test]
fn body_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Body>();
    assert_send_sync::<rgi::Request>();
}

/// HTTP-TRAIL-1, HTTP-TRAIL-3: a frame after the trailers frame is never yielded: the body
/// reports it as an error (so a server aborts the response) and then ends.
#[test]
fn frame_after_trailers_is_an_error() {
    let (mut body, polls) = scripted(
        vec![
            data("a"),
            Ok(Frame::trailers(HeaderMap::new())),
            data("late"),
        ],
        None,
    );
    assert!(block_on(body.frame()).unwrap().unwrap().is_data());
    assert!(block_on(body.frame()).unwrap().unwrap().is_trailers());
    assert!(matches!(
        block_on(body.frame()),
        Some(Err(BodyError::FrameAfterTrailers))
    ));
    assert!(block_on(body.frame()).is_none());
    assert!(body.is_end_stream());
    assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 3);
}

/// HTTP-TRAIL-1: a body whose trailers are followed by its end ends cleanly.
#[test]
fn body_ends_after_trailers() {
    let (mut body, _polls) = scripted(vec![data("a"), Ok(Frame::trailers(HeaderMap::new()))], None);
    assert!(block_on(body.frame()).unwrap().unwrap().is_data());
    assert!(block_on(body.frame()).unwrap().unwrap().is_trailers());
    assert!(block_on(body.frame()).is_none());
    assert!(body.is_end_stream());
}
