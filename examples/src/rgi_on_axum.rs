//! The `rgi_on_axum` example: the [`hello`](crate::hello) RGI application served by
//! `axum::serve` through [`rgi_tower::RgiService`] — an RGI app on a tower host.
//!
//! The routes are `hello`'s (`GET /`, `POST /echo`, `GET /stream?bytes=N`, `GET /trailers`).
//! Request bodies are limited to [`BODY_LIMIT`] (`413` past it when the length is declared),
//! like rgi-server's default.
//!
//! A tower host has no lifespan protocol, so the example plays that part around
//! `axum::serve`: it runs the app's startup with [`RgiService::start`] before it listens, and
//! on `SIGTERM` or `SIGINT` (Ctrl-C) stops accepting, lets the open requests finish (at most
//! [`GRACE`]), and then runs the app's shutdown with [`RgiService::shutdown`].
//!
//! Run: `cargo run --release -p rgi-examples --bin rgi_on_axum -- --bind 127.0.0.1:8000`.
//! Once it listens it prints `rgi_on_axum listening on http://ADDR` on stdout; after the
//! app's shutdown, `rgi_on_axum: the application shut down`.
//!
//! What a tower host cannot give an RGI app (see `rgi-tower`'s documentation): WebSockets
//! (the `WebSocketUpgrade` capability is absent) and a `ConnectionInfo` that knows the local
//! address or the scheme.

use std::future::{Future, IntoFuture as _};
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use rgi_tower::RgiService;
use tokio::net::TcpListener;

use crate::hello::Hello;

/// The request body limit (rgi-server's default): 16 MiB.
pub const BODY_LIMIT: u64 = 16 << 20;

/// How long open requests may run after the shutdown signal: 30 s.
pub const GRACE: Duration = Duration::from_secs(30);

/// The command line of `rgi_on_axum`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "rgi_on_axum",
    about = "The `hello` RGI app served by axum::serve through rgi-tower"
)]
pub struct Cli {
    /// The TCP address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,
}

/// Why `rgi_on_axum` stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The application's startup failed.
    #[error("the application's startup failed")]
    Startup(#[from] rgi::StartupError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address from `--bind`.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The shutdown signals could not be installed, or the server failed.
    #[error("the server failed")]
    Serve(#[source] io::Error),
}

/// Serves `hello` on `listener` with `axum::serve` until `shutdown` resolves; then lets open
/// requests finish (at most [`GRACE`]) and runs the app's shutdown.
pub async fn serve<F>(listener: TcpListener, shutdown: F) -> Result<(), Error>
where
    F: Future<Output = ()> + Send + 'static,
{
    let service = RgiService::start(Hello).await?.with_body_limit(BODY_LIMIT);
    let router = service.clone().into_router();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        // A dropped sender stops the server too.
        let _ = stopped.await;
    })
    .into_future();
    let mut server = tokio::spawn(server);
    let result = tokio::select! {
        joined = &mut server => joined,
        () = shutdown => {
            let _ = stop.send(());
            match tokio::time::timeout(GRACE, &mut server).await {
                Ok(joined) => joined,
                Err(_) => {
                    eprintln!("rgi_on_axum: requests still open after {GRACE:?}; closing them");
                    server.abort();
                    Ok(Ok(()))
                }
            }
        }
    };
    service.shutdown().await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(Error::Serve(error)),
        Err(join_error) => Err(Error::Serve(io::Error::other(join_error))),
    }
}

/// Resolves on the first `SIGTERM` or `SIGINT`. The handlers are installed when this function
/// returns, before the future is first polled, so no signal is missed.
#[cfg(unix)]
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

/// The whole program: parses the command line, listens, serves until a shutdown signal.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rgi_on_axum: cannot build the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut message = format!("rgi_on_axum: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    let listener = TcpListener::bind(cli.bind)
        .await
        .map_err(|source| Error::Bind {
            addr: cli.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(Error::Serve)?;
    let shutdown = shutdown_signal().map_err(Error::Serve)?;
    println!("rgi_on_axum listening on http://{addr}");
    serve(listener, shutdown).await?;
    println!("rgi_on_axum: the application shut down");
    Ok(())
}
