//! Type erasure: [`BoxApp`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::Response;

use crate::{App, Body, BoxError, Request};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe twin of [`App`], implemented for every app.
trait DynApp: Send + Sync + 'static {
    fn call_boxed(&self, req: Request) -> BoxFuture<'_, Result<Response<Body>, BoxError>>;
    fn shutdown_boxed(&self) -> BoxFuture<'_, ()>;
}

impl<A: App> DynApp for A {
    fn call_boxed(&self, req: Request) -> BoxFuture<'_, Result<Response<Body>, BoxError>> {
        Box::pin(async move {
            match self.call(req).await {
                Ok(response) => Ok(response.map(Body::new)),
                Err(error) => Err(error.into()),
            }
        })
    }

    fn shutdown_boxed(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.shutdown())
    }
}

/// Any [`App`], with its type erased.
///
/// For servers that host applications chosen at run time, or that keep applications of several
/// types in one collection. It costs one allocation per call (plus one for the response body
/// unless that already is a [`Body`]); generic servers that take `A: App` pay nothing.
/// `BoxApp` is cheap to clone and is itself an [`App`] (`CORE-APP-3`).
///
/// ```
/// use rgi::{App, BoxApp, Body, Request};
/// use rgi::http::Response;
/// use std::convert::Infallible;
///
/// struct A;
/// impl App for A {
///     type Body = Body;
///     type Error = Infallible;
///     async fn call(&self, _: Request) -> Result<Response<Body>, Infallible> {
///         Ok(Response::new(Body::from("a")))
///     }
/// }
///
/// let apps: Vec<BoxApp> = vec![A.boxed(), BoxApp::new(A)];
/// assert_eq!(apps.len(), 2);
/// ```
#[derive(Clone)]
pub struct BoxApp {
    inner: Arc<dyn DynApp>,
}

impl BoxApp {
    /// Erases the type of `app`.
    pub fn new<A: App>(app: A) -> Self {
        Self {
            inner: Arc::new(app),
        }
    }
}

impl fmt::Debug for BoxApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxApp").finish_non_exhaustive()
    }
}

impl App for BoxApp {
    type Body = Body;
    type Error = BoxError;

    fn call(&self, req: Request) -> impl Future<Output = Result<Response<Body>, BoxError>> + Send {
        self.inner.call_boxed(req)
    }

    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        self.inner.shutdown_boxed()
    }

    fn boxed(self) -> BoxApp {
        self
    }
}
