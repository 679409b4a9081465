//! The `chat` example (being written).
