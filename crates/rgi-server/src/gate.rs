//! [`Gate`]: poll a rarely-ready future only when it was woken.
//!
//! A connection task is woken for every read and write of its connection; its timers and
//! shutdown signals fire a few times in the connection's life. Polling those on every wake
//! (as `tokio::select!` does) costs a lock and a timer registration per wake for nothing. A
//! [`Gate`] gives the rare future a waker of its own: the task is woken as usual, and the rare
//! future is polled again only when that waker fired.
//!
//! A [`WakerSet`] holds the gate wakers of every open connection, so that one server-wide
//! event (shutdown begins, shutdown is forced) opens them all: each connection then reads the
//! shared state, instead of keeping a subscription future of its own (two of them made every
//! idle connection ~300 bytes larger).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// What a gate's waker does: records that it fired, then wakes the task. It lives in a
/// longer-lived allocation (the connection's state), whose [`Wake`] calls [`Flag::wake`].
#[derive(Debug, Default)]
pub(crate) struct Flag {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Flag {
    /// Opens the gate and wakes the task.
    pub(crate) fn wake(&self) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// Polls a future only when its own waker fired since the last poll (or when [`Gate::open`]
/// says so).
#[derive(Debug)]
pub(crate) struct Gate<'a> {
    flag: &'a Flag,
    waker: Waker,
}

impl<'a> Gate<'a> {
    /// A gate on the flag of `owner`, whose [`Wake`] must call [`Flag::wake`] on it.
    pub(crate) fn new<T: AsRef<Flag> + Wake + Send + Sync + 'static>(owner: &'a Arc<T>) -> Self {
        Self {
            flag: (**owner).as_ref(),
            waker: Waker::from(owner.clone()),
        }
    }

    /// The gate's waker: waking it opens the gate and wakes the task.
    pub(crate) fn waker(&self) -> &Waker {
        &self.waker
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

/// The wakers of many gates, woken all at once ([`WakerSet::wake_all`]).
#[derive(Debug, Default)]
pub(crate) struct WakerSet {
    wakers: Mutex<slab::Slab<Waker>>,
}

impl WakerSet {
    /// Adds `waker` until the returned registration is dropped.
    pub(crate) fn register(&self, waker: &Waker) -> Registration<'_> {
        let key = self.lock().insert(waker.clone());
        Registration { set: self, key }
    }

    /// Wakes every registered waker.
    pub(crate) fn wake_all(&self) {
        for (_, waker) in self.lock().iter() {
            waker.wake_by_ref();
        }
    }

    /// How many wakers are registered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, slab::Slab<Waker>> {
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A waker's place in a [`WakerSet`]; dropping it removes the waker.
#[derive(Debug)]
pub(crate) struct Registration<'a> {
    set: &'a WakerSet,
    key: usize,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.set.lock().try_remove(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;

    struct Count(Arc<std::sync::atomic::AtomicUsize>);

    /// A gate's flag in an allocation of its own.
    #[derive(Default)]
    struct Owner(Flag);

    impl AsRef<Flag> for Owner {
        fn as_ref(&self) -> &Flag {
            &self.0
        }
    }

    impl Wake for Owner {
        fn wake(self: Arc<Self>) {
            self.0.wake();
        }
    }

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
        let owner = Arc::new(Owner::default());
        let gate = Gate::new(&owner);
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

    #[test]
    fn waker_set_wakes_the_registered_and_forgets_the_dropped() {
        let counts: Vec<_> = (0..3)
            .map(|_| Arc::new(std::sync::atomic::AtomicUsize::new(0)))
            .collect();
        let wakers: Vec<_> = counts
            .iter()
            .map(|count| Waker::from(Arc::new(Count(count.clone()))))
            .collect();
        let set = WakerSet::default();
        let first = set.register(&wakers[0]);
        let second = set.register(&wakers[1]);
        set.wake_all();
        drop(first);
        // The freed place is reused.
        let third = set.register(&wakers[2]);
        assert_eq!(third.key, 0);
        assert_eq!(set.len(), 2);
        set.wake_all();
        let woken: Vec<_> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        assert_eq!(woken, [1, 2, 1]);
        drop((second, third));
        assert_eq!(set.len(), 0);
        set.wake_all();
        let woken: Vec<_> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        assert_eq!(woken, [1, 2, 1]);
    }
}
