//! The `lifespan_state` example (being written).
