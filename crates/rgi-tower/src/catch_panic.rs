//! Turning panics of application code into errors.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Poll;

/// Runs the poll `f`, turning a panic into `Ready(Err)` with a description of its payload.
pub(crate) fn poll_catching<T>(f: impl FnOnce() -> Poll<T>) -> Poll<Result<T, Panicked>> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(payload) => Poll::Ready(Err(Panicked::from_payload(payload.as_ref()))),
    }
}

/// Application code panicked (`CORE-ERR`): the panic is treated as an error.
#[derive(Debug, thiserror::Error)]
#[error("the application panicked: {message}")]
pub struct Panicked {
    message: String,
}

impl Panicked {
    pub(crate) fn from_payload(payload: &(dyn Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "(non-string panic payload)".to_owned()
        };
        Self { message }
    }

    /// The panic message, when the payload was a string.
    pub fn message(&self) -> &str {
        &self.message
    }
}
