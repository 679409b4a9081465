//! # rgi-conformance
//!
//! The conformance suite of RGI: it checks an implementation against `spec/SPEC.md`,
//! requirement by requirement, and says per requirement ID what passed.
//!
//! - **Server mode** ([`server`]): host the [`probe::Probe`] application in your server, then
//!   `rgi-conformance server --url http://127.0.0.1:PORT` drives it over real sockets, with raw
//!   bytes wherever framing matters. A capability manifest ([`server::Manifest`]) declares the
//!   optional features your server claims; cases for the others are skipped, never passed.
//!   With `--spawn 'CMD {addr}'` the suite starts the server itself and, after the cases, checks
//!   its graceful shutdown on `SIGTERM` ([`spawn`]).
//! - **Application mode** ([`app`]): a framework author calls [`app::check`] from a `#[test]`;
//!   it drives the application in-process through `rgi-test` with `Lint` in strict mode, with
//!   legal and edge-case sequences (slow and chunked bodies, trailers, early disconnects, `HEAD`,
//!   lifespan), and reports the application's violations by requirement ID.
//! - **Requirements** ([`spec`], [`coverage`]): `rgi-conformance requirements` lists every
//!   requirement of SPEC.md (read from the spec itself, so the suite cannot drift from it) with
//!   the cases that cover it, and flags the uncovered ones.
//! - **Reports** ([`report`]): human-readable text, JSON and JUnit XML; the last line is
//!   `conformance: N passed, M failed, K skipped`, and the exit code is non-zero on any failure.
#![deny(missing_docs)]

pub mod app;
pub mod coverage;
pub mod declare;
pub mod interface;
pub mod ops;
pub mod probe;
pub mod report;
pub mod server;
pub mod spawn;
pub mod spec;
pub mod wire;
