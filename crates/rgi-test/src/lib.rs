//! In-process testing and Lint for RGI (work in progress).
#![deny(missing_docs)]
