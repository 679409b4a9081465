//! The peer servers of the RGI benchmarks, and the counting allocator of the `*-counted`
//! wrapper binaries.
//!
//! Every peer serves the routes of the `hello` example on one thread:
//!
//! | Request | Response |
//! |---|---|
//! | `GET /` | `200 text/plain; charset=utf-8` `Hello, World!` |
//! | `POST /echo` | `200` with the request body streamed back (`Content-Type` echoed) |
//! | `GET /stream?bytes=N` | `200` with `N` bytes of `x` in 64 KiB chunks |
//! | anything else | `404` |
//!
//! except `raw`, the practical ceiling, which answers every request head with the canned
//! `GET /` response.
#![deny(missing_docs)]

#[cfg(feature = "count-allocs")]
pub mod alloc;
pub mod peer;
