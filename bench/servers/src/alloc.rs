//! A counting global allocator: the number of allocations (and bytes) since the process
//! started, reported on demand.
//!
//! A `*-counted` binary installs [`Counting`] as its `#[global_allocator]` and calls
//! [`report_on_stdin`]: every line written to its standard input is answered on standard error
//! with `allocs <allocations> <bytes>`. The harness reads the counter before and after a load
//! run and divides by the number of requests served.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counting allocations (`alloc`, `alloc_zeroed` and `realloc` each count
/// as one).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counters
// are plain atomics and do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count(size: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(size as u64, Ordering::Relaxed);
}

/// The allocations and allocated bytes so far.
pub fn snapshot() -> (u64, u64) {
    (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    )
}

/// Starts a thread that answers every line on standard input with `allocs <n> <bytes>` on
/// standard error; it ends when standard input closes.
pub fn report_on_stdin() {
    let spawned = std::thread::Builder::new()
        .name("alloc-report".into())
        .spawn(|| {
            let stdin = std::io::stdin();
            let mut line = String::with_capacity(64);
            loop {
                line.clear();
                match stdin.lock().read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let (allocations, bytes) = snapshot();
                        let mut stderr = std::io::stderr().lock();
                        let _ = writeln!(stderr, "allocs {allocations} {bytes}");
                        let _ = stderr.flush();
                    }
                }
            }
        });
    if let Err(error) = spawned {
        eprintln!("cannot start the allocation reporter: {error}");
    }
}
