//! [`run`] and [`Server`]: serve a function under the watchdog's HTTP contract.
//!
//! The HTTP serving itself (health, readiness, `max_inflight`, timeouts, limits, graceful drain,
//! metrics) is `faas_watchdog::server`, the same code the watchdog runs; this module adds what is
//! particular to an SDK function: the [`Context`] of each call, `exec_timeout`, and the conversion
//! of the function's output with [`IntoResponse`].

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use faas_watchdog::server::{self as watchdog, RequestBody};
use http::StatusCode;
use pin_project_lite::pin_project;
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::body::Body;
use crate::config::Config;
use crate::context::{Context, Function};
use crate::error::{BoxError, Error};
use crate::request::Request;
use crate::response::{ErrorMessage, IntoResponse, Response};

pub use watchdog::Health;

/// The prefix of the line [`run`] prints on stderr once it listens: `faas: listening on ADDR`.
pub const LISTENING_PREFIX: &str = "faas: listening on ";

/// Serves `service` as a function: reads [`Config::from_env`] (`PORT`, timeouts, limits), listens,
/// prints `faas: listening on ADDR` on stderr, and serves until SIGTERM or SIGINT, then drains
/// in-flight requests (for up to `write_timeout`) and returns.
///
/// `service` is any `tower::Service<faas::Request>` whose response implements [`IntoResponse`]: a
/// [`handler_fn`](crate::handler_fn), an axum `Router`, a `tower::ServiceBuilder` stack. It is
/// cloned for each request.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> faas::Result<()> {
///     faas::run(faas::handler_fn(|_req| async { "hello" })).await
/// }
/// ```
///
/// # Errors
///
/// A variable cannot be parsed, or the address cannot be bound.
pub async fn run<S>(service: S) -> Result<(), Error>
where
    S: Service<Request> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Error: Into<Error>,
    S::Future: Send + 'static,
{
    let config = Config::from_env()?;
    let server = Server::bind(config).await?;
    eprintln!("{LISTENING_PREFIX}{}", server.local_addr());
    server.serve(service, watchdog::shutdown_signal()).await
}

/// A function server bound to its address: [`run`] without the environment and signals, for
/// embedding and tests.
///
/// ```no_run
/// # async fn demo() -> faas::Result<()> {
/// let config = faas::Config::default().with_addr("127.0.0.1:0".parse().unwrap());
/// let server = faas::Server::bind(config).await?;
/// let addr = server.local_addr();
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let task = tokio::spawn(server.serve(faas::handler_fn(|_req| async { "hi" }), async {
///     let _ = stopped.await;
/// }));
/// // ... call http://{addr}/ ...
/// let _ = stop.send(());
/// task.await.unwrap()?;
/// # Ok(()) }
/// ```
pub struct Server {
    inner: watchdog::Server,
    function: Arc<Function>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.inner.local_addr())
            .field("function", &self.function)
            .finish()
    }
}

impl Server {
    /// Binds `config.addr` (and the metrics port, when set).
    ///
    /// # Errors
    ///
    /// An address cannot be bound.
    pub async fn bind(config: Config) -> Result<Self, Error> {
        let listener = TcpListener::bind(config.addr).await.map_err(|err| {
            Error::msg(format!("cannot listen on {}", config.addr)).with_source(err)
        })?;
        let metrics = match config.metrics_port {
            Some(port) => {
                let addr = SocketAddr::new(config.addr.ip(), port);
                let listener = TcpListener::bind(addr).await.map_err(|err| {
                    Error::msg(format!("cannot listen on {addr} for metrics")).with_source(err)
                })?;
                Some(listener)
            }
            None => None,
        };
        let mut server = Self::from_listener(listener, config)?;
        if let Some(metrics) = metrics {
            server.inner = server.inner.with_metrics_listener(metrics).map_err(|err| {
                Error::msg("cannot read the metrics listener's address").with_source(err)
            })?;
        }
        Ok(server)
    }

    /// Serves on an already bound listener (`config.addr` and `config.metrics_port` are ignored).
    ///
    /// # Errors
    ///
    /// The listener's address cannot be read.
    pub fn from_listener(listener: TcpListener, config: Config) -> Result<Self, Error> {
        let inner = watchdog::Server::from_listener(listener, config.serve)
            .map_err(|err| Error::msg("cannot read the listener's address").with_source(err))?;
        Ok(Server {
            inner,
            function: Arc::new(Function::from_env(config.exec_timeout)),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }

    /// The address of the metrics listener, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.inner.metrics_addr()
    }

    /// The server's health handle (readiness, requests in flight, metrics).
    pub fn health(&self) -> Health {
        self.inner.health()
    }

    /// Serves `service` until `shutdown` resolves, then drains in-flight requests.
    ///
    /// The returned future is `Send` (can be `tokio::spawn`ed) when `service` is also `Sync`, as
    /// handler functions, closures over `Arc`s and axum `Router`s are.
    ///
    /// # Errors
    ///
    /// The lock file (when configured) cannot be written.
    pub async fn serve<S, F>(self, service: S, shutdown: F) -> Result<(), Error>
    where
        S: Service<Request> + Clone + Send + 'static,
        S::Response: IntoResponse,
        S::Error: Into<Error>,
        S::Future: Send + 'static,
        F: Future<Output = ()>,
    {
        let service = FunctionService {
            inner: service,
            function: self.function,
        };
        self.inner
            .serve(service, shutdown)
            .await
            .map_err(Error::from)
    }
}

/// Adapts a user's service to the watchdog server: builds each call's [`Context`], enforces
/// `exec_timeout`, converts outputs and errors into responses and logs server errors.
#[derive(Clone)]
struct FunctionService<S> {
    inner: S,
    function: Arc<Function>,
}

impl<S> Service<http::Request<RequestBody>> for FunctionService<S>
where
    S: Service<Request>,
    S::Response: IntoResponse,
    S::Error: Into<Error>,
{
    type Response = Response;
    type Error = BoxError;
    type Future = CallFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.inner
            .poll_ready(cx)
            .map_err(|err| BoxError::from(err.into()))
    }

    fn call(&mut self, req: http::Request<RequestBody>) -> Self::Future {
        let start = Instant::now();
        let ctx = Context::for_request(&self.function, req.headers(), start);
        let mut req = req.map(Body::from);
        let deadline = ctx.deadline();
        let call_id = ctx.call_id().map(str::to_owned);
        req.extensions_mut().insert(ctx);
        CallFuture {
            fut: self.inner.call(req),
            deadline,
            timer: None,
            start,
            call_id,
        }
    }
}

pin_project! {
    /// The future of one call of a [`FunctionService`].
    ///
    /// The `exec_timeout` timer is only armed when the handler does not answer on its first poll:
    /// most handlers answer at once, and registering a timer for each of them is measurable.
    struct CallFuture<F> {
        #[pin]
        fut: F,
        deadline: Option<Instant>,
        timer: Option<Pin<Box<Sleep>>>,
        start: Instant,
        call_id: Option<String>,
    }
}

impl<F, R, E> Future for CallFuture<F>
where
    F: Future<Output = Result<R, E>>,
    R: IntoResponse,
    E: Into<Error>,
{
    type Output = Result<Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.fut.poll(cx) {
            Poll::Ready(output) => into_response(output),
            Poll::Pending => {
                let Some(deadline) = *this.deadline else {
                    return Poll::Pending;
                };
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let took = format_duration(this.start.elapsed());
                let message = format!("function timed out after {took}");
                Error::status(StatusCode::GATEWAY_TIMEOUT, message).into_response()
            }
        };
        if response.status().is_server_error()
            && let Some(ErrorMessage(message)) = response.extensions().get::<ErrorMessage>()
        {
            let call_id = this.call_id.as_deref().unwrap_or("-");
            eprintln!(
                "faas: call {call_id}: {} {message}",
                response.status().as_u16()
            );
        }
        Poll::Ready(Ok(response))
    }
}

fn into_response<R: IntoResponse, E: Into<Error>>(output: Result<R, E>) -> Response {
    match output {
        Ok(response) => response.into_response(),
        Err(err) => err.into().into_response(),
    }
}

fn format_duration(duration: Duration) -> String {
    format!("{:.3}s", duration.as_secs_f64())
}
