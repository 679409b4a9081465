//! Startup and shutdown hooks for tower services: [`TowerLifespan`].

use std::fmt;
use std::future::Future;

use rgi::{Lifespan, ServerInfo, StartupError};

use crate::tower_app::{ShutdownHook, TowerApp};

/// Builds a tower service at server startup, and optionally runs a hook at shutdown
/// (`LIFE-START`, `LIFE-SHUT`).
///
/// The startup closure receives the server's [`ServerInfo`] and returns the service (typically
/// an axum `Router` with its state: database pools, configuration, clients). On `Err` the server
/// does not serve and exits non-zero (`LIFE-START-2`). The result runs as a [`TowerApp`].
///
/// ```
/// use axum::{Router, extract::State, routing::get};
/// use rgi::{ServerInfo, StartupError};
/// use rgi_tower::TowerLifespan;
///
/// let lifespan = TowerLifespan::new(|server: ServerInfo| async move {
///     let greeting = format!("Hello from {}!", server.name());
///     let router = Router::new()
///         .route("/", get(|State(greeting): State<String>| async move { greeting }))
///         .with_state(greeting);
///     Ok::<_, StartupError>(router)
/// })
/// .on_shutdown(|| async { /* close pools */ });
/// # fn assert_lifespan<L: rgi::Lifespan>(_: &L) {}
/// # assert_lifespan(&lifespan);
/// // rgi_server::run(lifespan) starts it, like any RGI lifespan.
/// ```
pub struct TowerLifespan<F> {
    startup: F,
    on_shutdown: Option<ShutdownHook>,
}

impl<F> TowerLifespan<F> {
    /// A lifespan whose startup is `startup`.
    pub fn new(startup: F) -> Self {
        Self {
            startup,
            on_shutdown: None,
        }
    }

    /// Runs `hook` once when the server shuts the application down, after the last request
    /// (`LIFE-SHUT`). Replaces any earlier hook.
    pub fn on_shutdown<H, Fut>(mut self, hook: H) -> Self
    where
        H: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_shutdown = Some(Box::new(move || Box::pin(hook())));
        self
    }
}

impl<F> fmt::Debug for TowerLifespan<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerLifespan")
            .field("on_shutdown", &self.on_shutdown.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, Fut, S> Lifespan for TowerLifespan<F>
where
    F: FnOnce(ServerInfo) -> Fut + Send + 'static,
    Fut: Future<Output = Result<S, StartupError>> + Send,
    TowerApp<S>: rgi::App,
{
    type App = TowerApp<S>;

    fn startup(
        self,
        server: ServerInfo,
    ) -> impl Future<Output = Result<TowerApp<S>, StartupError>> + Send {
        let Self {
            startup,
            on_shutdown,
        } = self;
        async move {
            let service = startup(server).await?;
            Ok(TowerApp::new(service).with_hook(on_shutdown))
        }
    }
}
