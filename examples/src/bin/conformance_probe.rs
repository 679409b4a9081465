//! The conformance suite's probe application on rgi-server, with the standard flags:
//!
//! ```sh
//! cargo run --release -p rgi-examples --bin conformance_probe -- --bind 127.0.0.1:8000
//! cargo run -p rgi-conformance -- server --url http://127.0.0.1:8000 \
//!     --capabilities http1,http2,request-trailers,response-trailers,upgrade,websocket
//! ```
//!
//! The probe runs with its lifespan, `ProbeLifespan::from_env`, so that the suite's `--spawn`
//! cases can make its startup or shutdown fail through `RGI_PROBE_*` environment variables.

use std::process::ExitCode;

fn main() -> ExitCode {
    rgi_server::run(rgi_conformance::probe::ProbeLifespan::from_env())
}
