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

/// The state an outcome settles a signal in.
fn code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Completed => COMPLETED,
        Outcome::ClientGone => CLIENT_GONE,
        Outcome::Aborted => ABORTED,
    }
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
    /// Settles the signal with `outcome`: the same as [`completed`](Self::completed),
    /// [`client_gone`](Self::client_gone) or [`aborted`](Self::aborted).
    pub fn settle(self, outcome: Outcome) {
        self.shared.settle(code(outcome));
    }

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

/// One settled [`Disconnect`] signal kept for the next exchange, so that making a signal
/// need not allocate.
///
/// A server keeps one per connection: each exchange's notifier goes back with
/// [`DisconnectPool::settle`], and the next [`DisconnectPool::pair`] resets and reuses its
/// allocation — but only when nothing else holds the signal any more (the application kept
/// no [`Disconnect`] or [`Finished`] of it). A signal an application still holds is never
/// reused: it keeps its outcome (`HTTP-DISC-3`).
///
/// ```
/// use rgi::{DisconnectPool, Outcome};
///
/// let pool = DisconnectPool::new();
/// let (signal, notifier) = pool.pair();
/// pool.settle(notifier, Outcome::Completed);
/// assert_eq!(signal.outcome(), Some(Outcome::Completed));
///
/// // The next exchange gets a fresh, unsettled signal; the old one keeps its outcome.
/// let (next, _notifier) = pool.pair();
/// assert_eq!(next.outcome(), None);
/// assert_eq!(signal.outcome(), Some(Outcome::Completed));
/// ```
#[derive(Default)]
pub struct DisconnectPool {
    spare: Mutex<Option<DisconnectNotifier>>,
}

impl DisconnectPool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh, unsettled signal and its notifier, made from the spare signal when nothing
    /// else holds it (else newly allocated, like [`Disconnect::pair`]).
    pub fn pair(&self) -> (Disconnect, DisconnectNotifier) {
        // `try_lock`: never wait; a busy pool (HTTP/2 streams ending at once) allocates.
        let spare = self
            .spare
            .try_lock()
            .ok()
            .and_then(|mut spare| spare.take());
        if let Some(mut notifier) = spare {
            // Unique: no `Disconnect` or `Finished` of the old exchange is left, so nobody
            // can see the reset.
            if let Some(shared) = Arc::get_mut(&mut notifier.shared) {
                *shared.state.get_mut() = ACTIVE;
                *shared.waiting.get_mut() = false;
                shared
                    .wakers
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                let signal = Disconnect {
                    shared: notifier.shared.clone(),
                };
                return (signal, notifier);
            }
        }
        Disconnect::pair()
    }

    /// Settles `notifier` with `outcome` (as [`DisconnectNotifier::completed`] and its
    /// siblings do) and keeps it for the next [`DisconnectPool::pair`].
    pub fn settle(&self, notifier: DisconnectNotifier, outcome: Outcome) {
        notifier.shared.settle(code(outcome));
        if let Ok(mut spare) = self.spare.try_lock() {
            *spare = Some(notifier);
        }
    }
}

impl fmt::Debug for DisconnectPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DisconnectPool").finish_non_exhaustive()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &Disconnect, b: &Disconnect) -> bool {
        Arc::ptr_eq(&a.shared, &b.shared)
    }

    #[test]
    fn pool_reuses_a_signal_nobody_holds() {
        let pool = DisconnectPool::new();
        let (first, notifier) = pool.pair();
        let first_ptr = Arc::as_ptr(&first.shared);
        drop(first);
        pool.settle(notifier, Outcome::Completed);

        let (second, notifier) = pool.pair();
        assert_eq!(Arc::as_ptr(&second.shared), first_ptr, "not reused");
        // Reset: unsettled, and it settles again (HTTP-DISC-3 holds per exchange).
        assert_eq!(second.outcome(), None);
        notifier.client_gone();
        assert_eq!(second.outcome(), Some(Outcome::ClientGone));
    }

    #[test]
    fn pool_never_reuses_a_signal_the_application_holds() {
        let pool = DisconnectPool::new();
        let (kept, notifier) = pool.pair();
        pool.settle(notifier, Outcome::Completed);
        let (next, notifier) = pool.pair();
        assert!(!same(&kept, &next));
        pool.settle(notifier, Outcome::Aborted);
        // The kept signal keeps its outcome whatever happens to later exchanges.
        assert_eq!(kept.outcome(), Some(Outcome::Completed));
        assert_eq!(next.outcome(), Some(Outcome::Aborted));

        // A `Finished` future holds the signal too.
        let (signal, notifier) = pool.pair();
        let finished = signal.finished();
        drop(signal);
        pool.settle(notifier, Outcome::ClientGone);
        let (after, _notifier) = pool.pair();
        assert_eq!(after.outcome(), None);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut finished = std::pin::pin!(finished);
        assert_eq!(
            finished.as_mut().poll(&mut cx),
            Poll::Ready(Outcome::ClientGone)
        );
    }

    #[test]
    fn pool_resets_waiters() {
        let pool = DisconnectPool::new();
        let (signal, notifier) = pool.pair();
        {
            let waker = Waker::noop();
            let mut cx = Context::from_waker(waker);
            let mut finished = std::pin::pin!(signal.finished());
            assert!(finished.as_mut().poll(&mut cx).is_pending());
        }
        drop(signal);
        pool.settle(notifier, Outcome::Completed);
        let (reused, notifier) = pool.pair();
        assert!(!reused.shared.waiting.load(Ordering::SeqCst));
        assert!(reused.shared.wakers.lock().unwrap().is_empty());
        notifier.completed();
        assert_eq!(reused.outcome(), Some(Outcome::Completed));
    }
}
