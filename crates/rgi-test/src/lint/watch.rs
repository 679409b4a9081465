//! Watching a request's `Disconnect` without a runtime: a waker that re-polls `finished()`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use rgi::{Disconnect, Outcome};

use super::{Ctx, Level, Side};

/// What the Lint saw of the response body, for the completion checks (`HTTP-DISC-2`).
pub(crate) struct ExchangeState {
    pub(crate) body_ended: AtomicBool,
    exempt: bool,
}

impl ExchangeState {
    pub(crate) fn new(exempt: bool) -> Self {
        Self {
            body_ended: AtomicBool::new(false),
            exempt,
        }
    }
}

type Finished = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Re-polls the `finished()` future whenever the signal wakes it, so the check runs on the
/// thread that settles the signal, with no task of its own.
struct Watcher {
    finished: Mutex<Option<Finished>>,
    state: Arc<ExchangeState>,
    ctx: Arc<Ctx>,
}

impl Wake for Watcher {
    fn wake(self: Arc<Self>) {
        self.check();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.check();
    }
}

impl Watcher {
    fn check(self: &Arc<Self>) {
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let outcome = {
            let mut slot = self.finished.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(finished) = slot.as_mut() else {
                return;
            };
            match finished.as_mut().poll(&mut cx) {
                Poll::Pending => return,
                Poll::Ready(outcome) => {
                    *slot = None;
                    outcome
                }
            }
        };
        self.evaluate(outcome);
    }

    fn evaluate(&self, outcome: Outcome) {
        if self.state.exempt {
            return;
        }
        let ended = self.state.body_ended.load(Ordering::SeqCst);
        match outcome {
            Outcome::Completed if !ended => {
                self.ctx.record(
                    "HTTP-DISC-2",
                    Side::Server,
                    Level::Must,
                    "the Disconnect settled Completed before the response body ended",
                );
            }
            Outcome::ClientGone if ended => {
                self.ctx.record(
                    "HTTP-DISC-2",
                    Side::Server,
                    Level::Must,
                    "the Disconnect settled ClientGone after the server read the whole response body (unless the final write failed, the response was complete)",
                );
            }
            _ => {}
        }
    }
}

/// Starts watching `disconnect` for this exchange.
pub(crate) fn watch(disconnect: Disconnect, state: Arc<ExchangeState>, ctx: Arc<Ctx>) {
    let watcher = Arc::new(Watcher {
        finished: Mutex::new(Some(Box::pin(disconnect.finished()))),
        state,
        ctx,
    });
    watcher.check();
}
