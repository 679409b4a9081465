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
        self.project()
            .inner
            .poll_frame(cx)
            .map(|frame| frame.map(|result| result.map_err(|e| surface_body_error(e.into()))))
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
