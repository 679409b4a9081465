//! The reference RGI server (work in progress).
#![deny(missing_docs)]
mod ws;
