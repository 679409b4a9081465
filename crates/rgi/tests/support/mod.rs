//! A minimal executor for the interface's own tests: `rgi` has no runtime, and its tests need
//! none either.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// A waker that unparks a thread and counts its wake-ups.
pub struct ThreadWaker {
    thread: Thread,
    /// How often it was woken.
    pub wakes: AtomicUsize,
}

impl ThreadWaker {
    /// A waker for the current thread.
    pub fn current() -> Arc<Self> {
        Arc::new(Self {
            thread: thread::current(),
            wakes: AtomicUsize::new(0),
        })
    }
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Runs `future` to completion on the current thread.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Arc::new(ThreadWaker {
        thread: thread::current(),
        wakes: AtomicUsize::new(0),
    });
    let task_waker = Waker::from(waker);
    let mut cx = Context::from_waker(&task_waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

/// Polls `future` once, with a waker that counts its wake-ups.
pub fn poll_once<F: Future + Unpin>(future: &mut F) -> (Poll<F::Output>, Arc<CountingWaker>) {
    let counter = Arc::new(CountingWaker {
        wakes: AtomicUsize::new(0),
    });
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    (std::pin::Pin::new(future).poll(&mut cx), counter)
}

/// A waker that only counts.
pub struct CountingWaker {
    pub wakes: AtomicUsize,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}
