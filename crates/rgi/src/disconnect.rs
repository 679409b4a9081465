//! "Completed" versus "client gone": [`Disconnect`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

const ACTIVE: u8 = 0;
const COMPLETED: u8 = 1;
const CLIENT_GONE: u8 = 2;
const ABORTED: u8 = 3;

/// How an exchange ended, as reported by [`Disconnect`] (`HTTP-DISC-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The whole response, body and trailers included, was handed to the transport.
    Completed,
    /// The client went away before the response was complete: the connection closed or was
    /// reset, or (HTTP/2) the stream was reset.
    ClientGone,
    /// The server aborted the response: the application failed after the head, the response
    /// broke a rule the server enforces, or a forced shutdown cut it short.
    Aborted,
}

struct Shared {
    state: AtomicU8,
    /// Set once a [`Finished`] future registered a waker: settling takes the lock only then.
    /// (`SeqCst` on both sides: a settle that reads `false` here happened before the waiting
    /// future re-reads the state, which it does after setting the flag.)
    waiting: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Shared {
    fn settle(&self, outcome: u8) {
        if self
            .state
            .compare_exchange(ACTIVE, outcome, Ordering::SeqCst, Ordering::Acquire)
            .is_ok()
            && self.waiting.load(Ordering::SeqCst)
        {
            let wakers =
                std::mem::take(&mut *self.wakers.lock().unwrap_or_else(PoisonError::into_inner));
            for waker in wakers {
                waker.wake();
            }
        }
    }

    fn outcome(&self) -> Option<Outcome> {
        match self.state.load(Ordering::SeqCst) {
            COMPLETED => Some(Outcome::Completed),
            CLIENT_GONE => Some(Outcome::ClientGone),
            ABORTED => Some(Outcome::Aborted),
            _ => None,
        }
    }
}

/// The per-request signal that tells "completed" from "client gone" (`HTTP-DISC-*`).
///
/// A server inserts one into the extensions of every request (`HTTP-DISC-1`). It settles
/// exactly once: [`Outcome::Completed`] when the response was fully handed to the transport,
/// [`Outcome::ClientGone`] when the client left first, [`Outcome::Aborted`] when the server cut
/// the response short. A completed request never reports `ClientGone` (`HTTP-DISC-2`).
///
/// The signal settles **before** the server drops the application's future (`CORE-CANCEL-2`),
/// so work the application spawned can watch it and stop.
///
/// ```
/// use rgi::{Disconnect, Outcome};
///
/// let (signal, notifier) = Disconnect::pair();
/// assert_eq!(signal.outcome(), None);
/// notifier.client_gone();
/// assert_eq!(signal.outcome(), Some(Outcome::ClientGone));
/// assert!(signal.is_client_gone());
/// ```
#[derive(Clone)]
pub struct Disconnect {
    shared: Arc<Shared>,
}

impl Disconnect {
    /// A fresh, unsettled signal and the notifier a server uses to settle it.
    pub fn pair() -> (Disconnect, DisconnectNotifier) {
        let shared = Arc::new(Shared {
            state: AtomicU8::new(ACTIVE),
            waiting: AtomicBool::new(false),
            wakers: Mutex::new(Vec::new()),
        });
        (
            Disconnect {
                shared: shared.clone(),
            },
            DisconnectNotifier { shared },
        )
    }

    /// How the exchange ended, or `None` while it goes on.
    pub fn outcome(&self) -> Option<Outcome> {
        self.shared.outcome()
    }

    /// Whether the client went away before the response was complete.
    pub fn is_client_gone(&self) -> bool {
        self.outcome() == Some(Outcome::ClientGone)
    }

    /// Waits until the exchange ends, and says how.
    pub fn finished(&self) -> Finished {
        Finished {
            shared: self.shared.clone(),
        }
    }
}

impl fmt::Debug for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Disconnect")
            .field("outcome", &self.outcome())
            .finish()
    }
}

/// The future returned by [`Disconnect::finished`].
#[must_use = "futures do nothing unless polled"]
pub struct Finished {
    shared: Arc<Shared>,
}

impl fmt::Debug for Finished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finished").finish_non_exhaustive()
    }
}

impl Future for Finished {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        if let Some(outcome) = self.shared.outcome() {
            return Poll::Ready(outcome);
        }
        {
            let mut wakers = self
                .shared
                .wakers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            self.shared.waiting.store(true, Ordering::SeqCst);
        }
        // Settled between the first check and the registration: do not miss it.
        match self.shared.outcome() {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }
}

/// The server's half of a [`Disconnect`] signal.
///
/// Dropping it without a verdict settles the signal as [`Outcome::ClientGone`]: a server drops
/// the notifier together with a request whose connection went away.
pub struct DisconnectNotifier {
    shared: Arc<Shared>,
}

impl DisconnectNotifier {
    /// The response was fully handed to the transport.
    pub fn completed(self) {
        self.shared.settle(COMPLETED);
    }

    /// The client went away first.
    pub fn client_gone(self) {
        self.shared.settle(CLIENT_GONE);
    }

    /// The server aborted the response.
    pub fn aborted(self) {
        self.shared.settle(ABORTED);
    }
}

impl Drop for DisconnectNotifier {
    fn drop(&mut self) {
        self.shared.settle(CLIENT_GONE);
    }
}

impl fmt::Debug for DisconnectNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DisconnectNotifier")
            .field("outcome", &self.shared.outcome())
            .finish()
    }
}
