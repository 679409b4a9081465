//! tower adapters for RGI (work in progress).
#![deny(missing_docs)]
