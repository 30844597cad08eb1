//! Write self-contained faas-rs (and OpenFaaS) functions in Rust.
//!
//! A function is one async fn; [`#[faas::handler]`](handler) turns it into a binary that serves the
//! watchdog's HTTP contract by itself (`/_/health`, `/_/ready`, `max_inflight`, read/write/exec
//! timeouts, graceful drain on SIGTERM), configured by the same environment variables as
//! OpenFaaS's watchdogs. The image of such a function is `FROM scratch` with one static binary.
//! Underneath, [`run`] serves any `tower::Service<faas::Request>` (an axum `Router` too) with the
//! watchdog's own serving code.
//!
//! ```no_run
//! use faas::{Context, Request};
//!
//! #[faas::handler]
//! async fn hello(req: Request, ctx: Context) -> String {
//!     let name = ctx.function_name().unwrap_or("a function");
//!     format!("Hello from {name}, you asked for {}", req.uri().path())
//! }
//! ```
//!
//! Typed events, as AWS Lambda or Tencent SCF: the body is parsed as JSON (400 with serde's
//! message when it does not parse) and the output is answered as JSON.
//!
//! ```no_run
//! #[derive(serde::Deserialize)]
//! struct Greet { name: String }
//! #[derive(serde::Serialize)]
//! struct Greeting { message: String }
//!
//! #[faas::handler]
//! async fn greet(event: Greet, _ctx: faas::Context) -> faas::Result<Greeting> {
//!     if event.name.is_empty() {
//!         return Err(faas::Error::bad_request("name is empty"));
//!     }
//!     Ok(Greeting { message: format!("Hello, {}", event.name) })
//! }
//! ```
//!
//! See `docs/sdk.md` for the handler shapes, the context, secrets, errors, testing and images.

mod body;
mod config;
mod context;
mod error;
mod request;
mod response;
mod server;
mod service;
pub mod testing;

pub use body::Body;
pub use config::Config;
pub use context::{
    Context, ContextBuilder, DEFAULT_SECRETS_DIR, ENV_FUNCTION_NAME, ENV_NAMESPACE,
    ENV_SECRET_MOUNT_PATH, X_CALL_ID, X_TIMEOUT,
};
pub use error::{BoxError, Error, Result};
pub use request::{Request, RequestExt};
pub use response::{IntoResponse, Json, Response};
pub use server::{Health, LISTENING_PREFIX, Server, run};
pub use service::{
    ContextFn, EventFn, EventFuture, HandlerFn, IntoResponseFuture, context_fn, event_fn,
    handler_fn,
};

/// `#[faas::handler]`: turns an async fn into a function binary (see the
/// [macro's documentation](faas_sdk_macros::handler) for the supported shapes).
pub use faas_sdk_macros::handler;

/// Builds a service from an async fn returning `Result<Response, Error>` (tower's `service_fn`).
pub use tower::service_fn;

pub use bytes::Bytes;
pub use http::{self, HeaderMap, Method, StatusCode, Uri};

/// The serving settings shared with the watchdog (timeouts, limits, shutdown delay).
pub use faas_watchdog::server::ServeConfig;

/// Runtime internals used by the code `#[faas::handler]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    use crate::{Error, IntoResponse, Request};

    /// Fails to compile, at the user's event type, when a typed event is not `DeserializeOwned`.
    pub fn assert_event<T: serde::de::DeserializeOwned>() {}

    /// What a typed event handler may return: `Result<Out, E>` with `Out: Serialize` and
    /// `E: Into<faas::Error>`.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not a typed event handler's output",
        label = "expected `Result<Out, E>` with `Out: serde::Serialize` and `E: Into<faas::Error>`"
    )]
    pub trait EventOutput {}

    impl<Out: serde::Serialize, E: Into<Error>> EventOutput for Result<Out, E> {}

    /// Fails to compile, at the user's return type, when a typed event handler's output is not
    /// `Serialize` or its error does not convert into [`Error`].
    pub fn assert_event_output<T: EventOutput>() {}

    /// The body of the generated `main`: a Tokio runtime running [`run`](crate::run); on error,
    /// prints it and exits with status 1.
    pub fn start<S>(service: S)
    where
        S: tower_service::Service<Request> + Clone + Send + 'static,
        S::Response: IntoResponse,
        S::Error: Into<Error>,
        S::Future: Send + 'static,
    {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(err) => {
                eprintln!("error: cannot start the tokio runtime: {err}");
                std::process::exit(1);
            }
        };
        if let Err(err) = runtime.block_on(crate::run(service)) {
            eprintln!("error: {}", err.full_message());
            std::process::exit(1);
        }
    }
}
