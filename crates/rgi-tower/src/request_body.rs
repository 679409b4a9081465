//! The request body an RGI app gets from a tower host.

use std::any::Any;
use std::error::Error as StdError;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use rgi::{Body, BodyError, BoxError};

/// Turns the host's request body into an [`rgi::Body`]: an `rgi::Body` as it is (an RGI server
/// outside, its limit kept), anything else boxed once with its errors mapped by
/// [`surface_body_error`].
pub(crate) fn into_rgi_body<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut slot = Some(body);
    if let Some(rgi_body) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Body>>() {
        if let Some(rgi_body) = rgi_body.take() {
            return rgi_body;
        }
    }
    match slot {
        Some(body) => Body::new(SurfaceErrors { inner: body }),
        None => Body::empty(),
    }
}

/// An error of a host's request body as a [`BodyError`]: a `BodyError` with a meaning of its
/// own (`Disconnected`, `LengthLimitExceeded`, `TimedOut`) anywhere in the source chain is
/// brought to the top, so that an app returning it gets the status `CORE-ERR-4` gives —
/// frameworks in between (axum wraps body errors in its own error type) would hide it.
pub(crate) fn surface_body_error(error: BoxError) -> BodyError {
    let error = match error.downcast::<BodyError>() {
        Ok(body_error) => match *body_error {
            BodyError::Other(inner) => inner,
            meaningful => return meaningful,
        },
        Err(other) => other,
    };
    let mut current: Option<&(dyn StdError + 'static)> = Some(error.as_ref());
    let mut malformed = false;
    while let Some(link) = current {
        match link.downcast_ref::<BodyError>() {
            Some(BodyError::Disconnected) => return BodyError::Disconnected,
            Some(BodyError::LengthLimitExceeded { limit }) => {
                return BodyError::LengthLimitExceeded { limit: *limit };
            }
            Some(BodyError::TimedOut) => return BodyError::TimedOut,
            Some(BodyError::Protocol(_)) => malformed = true,
            _ => {}
        }
        // hyper reports broken body framing (a bad chunk size) as an I/O error of kind
        // `InvalidData` or `InvalidInput` below its own error (`HTTP-BODY-14`).
        if let Some(io) = link.downcast_ref::<std::io::Error>() {
            malformed |= matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
            );
        }
        current = link.source();
    }
    if malformed {
        BodyError::Protocol(error)
    } else {
        BodyError::Other(error)
    }
}

/// A trailers frame without the fields that have no place in trailers (`HTTP-TRAIL-9`, the list
/// of `HTTP-TRAIL-7`); any other frame as it is.
fn without_forbidden_trailers(frame: Frame<Bytes>) -> Frame<Bytes> {
    if !frame.is_trailers() {
        return frame;
    }
    match frame.into_trailers() {
        Ok(mut trailers) => {
            for name in &rgi::fields::FORBIDDEN_IN_TRAILERS {
                trailers.remove(name);
            }
            Frame::trailers(trailers)
        }
        Err(frame) => frame,
    }
}

pin_project_lite::pin_project! {
    struct SurfaceErrors<B> {
        #[pin]
        inner: B,
    }
}

impl<B> http_body::Body for SurfaceErrors<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.project().inner.poll_frame(cx).map(|frame| {
            frame.map(|result| match result {
                Ok(frame) => Ok(without_forbidden_trailers(frame)),
                Err(error) => Err(surface_body_error(error.into())),
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("framework error")]
    struct Wrapper(#[source] BodyError);

    /// HTTP-TRAIL-9: a host's request trailers reach the app without the forbidden fields;
    /// data frames and the other trailers are untouched.
    #[tokio::test]
    async fn forbidden_request_trailers_are_removed() {
        use http::{HeaderMap, HeaderValue};

        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", HeaderValue::from_static("42"));
        trailers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("9"));
        trailers.append(http::header::HOST, HeaderValue::from_static("a.test"));
        trailers.append(http::header::HOST, HeaderValue::from_static("b.test"));
        trailers.insert(http::header::AUTHORIZATION, HeaderValue::from_static("x"));
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = vec![
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Ok(Frame::trailers(trailers)),
        ];
        let host_body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
        let collected = http_body_util::BodyExt::collect(into_rgi_body(host_body))
            .await
            .expect("the body is whole");
        let trailers = collected.trailers().cloned().expect("trailers delivered");
        assert_eq!(trailers.len(), 1, "{trailers:?}");
        assert_eq!(trailers["x-checksum"], "42");
        assert_eq!(collected.to_bytes(), "abc");
    }

    #[test]
    fn meaningful_body_errors_come_to_the_top() {
        let wrapped: BoxError = Box::new(Wrapper(BodyError::LengthLimitExceeded { limit: 3 }));
        assert!(matches!(
            surface_body_error(wrapped),
            BodyError::LengthLimitExceeded { limit: 3 }
        ));
        let wrapped: BoxError =
            Box::new(BodyError::Other(Box::new(Wrapper(BodyError::Disconnected))));
        assert!(matches!(
            surface_body_error(wrapped),
            BodyError::Disconnected
        ));
        let plain: BoxError = "io failure".into();
        assert!(matches!(surface_body_error(plain), BodyError::Other(_)));
    }

    #[test]
    fn an_rgi_body_is_kept_as_it_is() {
        let body = into_rgi_body(Body::from("x").with_limit(Some(7)));
        assert_eq!(body.limit(), Some(7));
    }
}
