//! The `websocket_echo` example (being written).
