//! [`StallTimer`]: the clock behind the "no progress for this long" limits — the request body
//! read timeout (`HTTP-BODY-15`), the minimum request body rate (`SRV-LIMIT-20`) and the write
//! timeout (`SRV-LIMIT-16`).

use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Measures how long an operation has been pending without progress. Only time spent pending
/// counts: each stall starts a fresh wait. The timer is allocated at the first stall, so an
/// operation that never waits costs no allocation and no clock read.
#[derive(Debug)]
pub(crate) struct StallTimer {
    timeout: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Whether `sleep` runs for the current stall.
    stalled: bool,
}

impl StallTimer {
    /// A timer that fires after `timeout` of one stall (`None`: never).
    pub(crate) fn new(timeout: Option<Duration>) -> Self {
        Self {
            timeout,
            sleep: None,
            stalled: false,
        }
    }

    /// The operation made progress: the next stall starts a fresh wait.
    pub(crate) fn progressed(&mut self) {
        self.stalled = false;
    }

    /// The operation is pending: whether this stall has lasted the whole timeout. When it has
    /// not, `cx` is woken once it has.
    pub(crate) fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.expired_within(cx, None)
    }

    /// As [`StallTimer::expired`], with this stall also limited to `cap` when one is given. The
    /// cap is read when a stall begins; later calls of the same stall do not change it.
    pub(crate) fn expired_within(&mut self, cx: &mut Context<'_>, cap: Option<Duration>) -> bool {
        let timeout = match (self.timeout, cap) {
            (Some(timeout), Some(cap)) => Some(timeout.min(cap)),
            (timeout, cap) => timeout.or(cap),
        };
        let Some(timeout) = timeout else {
            return false;
        };
        let sleep = match &mut self.sleep {
            Some(sleep) if self.stalled => sleep,
            Some(sleep) => {
                sleep.as_mut().reset(Instant::now() + timeout);
                sleep
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep(timeout))),
        };
        self.stalled = true;
        sleep.as_mut().poll(cx).is_ready()
    }
}
