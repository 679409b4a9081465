//! The `hello` example (being written).
