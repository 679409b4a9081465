//! The write timeout for HTTP/2 streams whose client grants no flow-control window
//! (`SRV-LIMIT-16`).
//!
//! The framing guard's write timeout sees the socket only. An HTTP/2 client can keep reading the
//! socket and still stop a stream: it leaves the stream's (or the connection's) flow-control
//! window at zero. hyper's stream task then waits for window before it polls the response body
//! again, so neither the body nor the connection notices, and the stream, its response body
//! and the application's work behind it would be held for as long as the client likes.
//!
//! hyper spawns each stream's task through the connection's executor: [`StreamExecutor`] spawns
//! it inside [`Watched`], which knows whose turn it is. [`ResponseBody`](crate::body) marks the
//! client's turn when it hands hyper a response head or a data frame (hyper must send it before
//! it polls again) and the application's turn when hyper polls it. A task that waits in the
//! client's turn for the write timeout is ended: its stream is reset (`CANCEL`) and the exchange
//! settles as not completed. The marks go through a thread-local, so the body needs no handle
//! to its task and nothing is allocated per stream.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::stall::StallTimer;

thread_local! {
    /// The turn of the stream task being polled on this thread: the low bit is set in the
    /// client's turn, the other bits count the client's turns (so that a new one is told apart
    /// from the one before).
    static TURN: Cell<u64> = const { Cell::new(0) };
}

/// hyper has a response head or data to send, and polls again only once it is sent: waiting
/// from now on is the client's (for flow-control window, or for the socket).
pub(crate) fn client_turn() {
    TURN.with(|turn| turn.set((turn.get() | 1).wrapping_add(2)));
}

/// hyper polls the response body: waiting from now on is the application's.
pub(crate) fn app_turn() {
    TURN.with(|turn| turn.set(turn.get() & !1));
}

/// The executor of hyper's HTTP/2 stream tasks: each runs inside [`Watched`] when a write
/// timeout is set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamExecutor {
    pub(crate) write_timeout: Option<Duration>,
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, task: F) {
        match self.write_timeout {
            Some(timeout) => {
                tokio::spawn(Watched {
                    task,
                    turn: 0,
                    watched: 0,
                    stall: StallTimer::new(Some(timeout)),
                });
            }
            None => {
                tokio::spawn(task);
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A stream task that ends once it has waited in the client's turn for the write timeout.
    pub(crate) struct Watched<F> {
        #[pin]
        task: F,
        // The task's turn, kept between polls.
        turn: u64,
        // The client's turn the stall timer runs for (0: none).
        watched: u64,
        stall: StallTimer,
    }
}

impl<F: Future<Output = ()>> Future for Watched<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let outer = TURN.with(|turn| turn.replace(*this.turn));
        let polled = this.task.poll(cx);
        *this.turn = TURN.with(|turn| turn.replace(outer));
        if polled.is_ready() {
            return Poll::Ready(());
        }
        if *this.turn & 1 == 0 {
            // The application's turn: however long it takes is not the client's doing.
            this.stall.progressed();
            *this.watched = 0;
            return Poll::Pending;
        }
        if *this.watched != *this.turn {
            // A new turn of the client's: the timer starts afresh.
            this.stall.progressed();
            *this.watched = *this.turn;
        }
        if this.stall.expired(cx) {
            tracing::debug!(
                "an HTTP/2 stream made no progress for the write timeout \
                 (the client granted no flow-control window); the stream is reset"
            );
            // Dropping the task resets the stream (`CANCEL`) and the response body.
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The marks alternate the low bit; each client's turn is new.
    #[test]
    fn turns_are_told_apart() {
        let outer = TURN.with(|turn| turn.replace(0));
        client_turn();
        let first = TURN.with(Cell::get);
        assert_eq!(first & 1, 1);
        app_turn();
        assert_eq!(TURN.with(Cell::get) & 1, 0);
        client_turn();
        let second = TURN.with(Cell::get);
        assert_eq!(second & 1, 1);
        assert_ne!(first, second);
        client_turn();
        assert_ne!(TURN.with(Cell::get), second, "a head then data: two turns");
        TURN.with(|turn| turn.set(outer));
    }

    /// A task stalled in the client's turn ends after the timeout; in the application's turn it
    /// does not.
    #[tokio::test]
    async fn stalls_in_the_clients_turn_end_the_task() {
        let timeout = Duration::from_millis(100);
        // Like hyper's stream task: a turn is marked when the body is polled (here, first),
        // not when the task wakes for window.
        let watched = |client: bool| Watched {
            task: {
                let mut first = true;
                std::future::poll_fn(move |_| {
                    if std::mem::take(&mut first) {
                        if client {
                            client_turn();
                        } else {
                            app_turn();
                        }
                    }
                    Poll::<()>::Pending
                })
            },
            turn: 0,
            watched: 0,
            stall: StallTimer::new(Some(timeout)),
        };
        let ended = tokio::time::timeout(Duration::from_secs(5), watched(true)).await;
        assert!(ended.is_ok(), "a stalled client's stream was kept");
        let ended = tokio::time::timeout(Duration::from_millis(500), watched(false)).await;
        assert!(ended.is_err(), "a slow application's stream was ended");
    }
}
