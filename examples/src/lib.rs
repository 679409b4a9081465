//! The applications behind the `rgi-examples` binaries, in a library so that tests can drive
//! them in-process with `rgi-test`.
#![deny(missing_docs)]

pub mod axum_app;
pub mod chat;
pub mod hello;
pub mod lifespan_state;
pub mod poem_app;
pub mod rgi_on_axum;
pub mod tonic_greeter;
pub mod websocket_echo;
