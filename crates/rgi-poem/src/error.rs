//! The errors a [`PoemApp`](crate::PoemApp) hands to the server: [`PoemAppError`].

use std::error::Error as StdError;
use std::io;

use rgi::BodyError;

/// Why a [`PoemApp`](crate::PoemApp) returned no response of its own.
///
/// poem answers almost every failure with a response; the one exception is a request body
/// that failed in a way the server must answer itself (`CORE-ERR-4`, `CORE-ERR-9`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoemAppError {
    /// The request body failed with a [`BodyError`] that has a status of its own
    /// (`413`, `408`, `400`) or means that the client went away: the server answers it (or, for
    /// a client that is gone, does not), as [`BodyError::status_code`] says.
    #[error("the request body failed")]
    Body(#[source] BodyError),
}

/// The request body error an endpoint's `poem::Error` carries, if it is one the server must
/// answer (see [`crate::server_answers`]).
///
/// poem receives the body's errors as `std::io::Error`s (its body type requires them) whose
/// inner error is the [`BodyError`], and may wrap them in further `io::Error`s; an `io::Error`
/// shows its inner error through `get_ref`, not through `source`, so that is followed.
pub(crate) fn body_error(error: &poem::Error) -> Option<BodyError> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(link) = current {
        if let Some(found) = link.downcast_ref::<BodyError>() {
            return crate::server_answers(found)
                .then(|| same_meaning(found))
                .flatten();
        }
        // poem wraps the body's `io::Error` in another one (`io::Error::other`): step into
        // each by `get_ref`, which `source` would skip.
        current = match link
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => link.source(),
        };
    }
    None
}

/// A [`BodyError`] equal in meaning (and so in status) to `error`.
fn same_meaning(error: &BodyError) -> Option<BodyError> {
    match error {
        BodyError::Disconnected => Some(BodyError::Disconnected),
        BodyError::LengthLimitExceeded { limit } => {
            Some(BodyError::LengthLimitExceeded { limit: *limit })
        }
        BodyError::TimedOut => Some(BodyError::TimedOut),
        BodyError::Protocol(source) => Some(BodyError::Protocol(source.to_string().into())),
        _ => None,
    }
}

/// The `io::Error` poem's body gets for a failed RGI request body: the [`BodyError`] inside,
/// with the closest `io::ErrorKind`.
pub(crate) fn into_io(error: BodyError) -> io::Error {
    let kind = match error {
        BodyError::Disconnected => io::ErrorKind::ConnectionAborted,
        BodyError::TimedOut => io::ErrorKind::TimedOut,
        BodyError::LengthLimitExceeded { .. } | BodyError::Protocol(_) => {
            io::ErrorKind::InvalidData
        }
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::error::ReadBodyError;

    #[test]
    fn a_body_error_inside_poems_read_error_is_found() {
        let error: poem::Error =
            ReadBodyError::Io(into_io(BodyError::LengthLimitExceeded { limit: 5 })).into();
        assert!(matches!(
            body_error(&error),
            Some(BodyError::LengthLimitExceeded { limit: 5 })
        ));
        // As `poem::Body::into_bytes` reports it: wrapped in a second `io::Error`.
        let error: poem::Error =
            ReadBodyError::Io(io::Error::other(into_io(BodyError::Disconnected))).into();
        assert!(matches!(body_error(&error), Some(BodyError::Disconnected)));
    }

    #[test]
    fn other_errors_are_left_to_poem() {
        let error: poem::Error =
            ReadBodyError::Io(into_io(BodyError::Other("broken".into()))).into();
        assert!(body_error(&error).is_none());
        let error: poem::Error = poem::error::NotFoundError.into();
        assert!(body_error(&error).is_none());
    }
}
