//! [`Gate`]: poll a rarely-ready future only when it was woken.
//!
//! A connection task is woken for every read and write of its connection; its timers and
//! shutdown signals fire a few times in the connection's life. Polling those on every wake
//! (as `tokio::select!` does) costs a lock and a timer registration per wake for nothing. A
//! [`Gate`] gives the rare future a waker of its own: the task is woken as usual, and the rare
//! future is polled again only when that waker fired.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// The waker of a gated future: records that it fired, then wakes the task.
#[derive(Debug, Default)]
struct Flag {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// Polls a future only when its own waker fired since the last poll (or when [`Gate::open`]
/// says so).
#[derive(Debug)]
pub(crate) struct Gate {
    flag: Arc<Flag>,
    waker: Waker,
}

impl Gate {
    pub(crate) fn new() -> Self {
        let flag = Arc::new(Flag::default());
        Self {
            waker: Waker::from(flag.clone()),
            flag,
        }
    }

    /// Makes the next [`Gate::poll`] poll the future: needed for a future that was never
    /// polled, since nothing can have woken it.
    pub(crate) fn open(&self) {
        self.flag.fired.store(true, Ordering::Release);
    }

    /// Polls `poll` with the gate's waker if it fired since the last poll; `Pending` otherwise.
    pub(crate) fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        if !self.flag.fired.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        self.flag.task.register(cx.waker());
        poll(&mut Context::from_waker(&self.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;

    struct Count(Arc<std::sync::atomic::AtomicUsize>);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn polls_only_after_its_own_wake() {
        let task_wakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let task = Waker::from(Arc::new(Count(task_wakes.clone())));
        let mut cx = Context::from_waker(&task);
        let gate = Gate::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<u8>();
        let mut rx = pin!(rx);
        let mut polls = 0;
        let mut poll = |cx: &mut Context<'_>, polls: &mut i32| {
            gate.poll(cx, |cx| {
                *polls += 1;
                rx.as_mut().poll(cx)
            })
        };
        // Never polled: closed until opened.
        assert!(poll(&mut cx, &mut polls).is_pending());
        assert_eq!(polls, 0);
        gate.open();
        assert!(poll(&mut cx, &mut polls).is_pending());
        assert_eq!(polls, 1);
        // Not woken: not polled again.
        assert!(poll(&mut cx, &mut polls).is_pending());
        assert_eq!(polls, 1);
        // Its wake wakes the task and opens the gate.
        tx.send(7).unwrap();
        assert_eq!(task_wakes.load(Ordering::SeqCst), 1);
        assert!(matches!(poll(&mut cx, &mut polls), Poll::Ready(Ok(7))));
        assert_eq!(polls, 2);
    }
}
