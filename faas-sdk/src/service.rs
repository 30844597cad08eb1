//! Adapters turning async functions into services: [`handler_fn`], [`context_fn`], [`event_fn`].

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower_service::Service;

use crate::body::parse_json;
use crate::context::Context;
use crate::error::Error;
use crate::request::{Request, default_context};
use crate::response::{IntoResponse, Json, Response};

/// Serves `f(request)`: an async function taking a [`Request`] and returning anything that
/// implements [`IntoResponse`].
///
/// ```no_run
/// async fn hello(req: faas::Request) -> String {
///     format!("hello from {}", req.uri().path())
/// }
///
/// #[tokio::main]
/// async fn main() -> faas::Result<()> {
///     faas::run(faas::handler_fn(hello)).await
/// }
/// ```
pub fn handler_fn<F>(f: F) -> HandlerFn<F> {
    HandlerFn { f }
}

/// Serves `f(request, context)`: like [`handler_fn`], with the call's [`Context`] as second
/// argument.
pub fn context_fn<F>(f: F) -> ContextFn<F> {
    ContextFn { f }
}

/// Serves a typed event handler `f(event, context) -> Result<Out, E>`: the request body is parsed
/// as JSON into the event (an empty body is parsed as `null`, so `()` and `Option<T>` events accept
/// it), a parse error answers 400 with serde's message, `Ok(out)` answers 200 with `out` as JSON and
/// `Err(e)` answers the error's status (500 unless set) with `{"error": "..."}`.
///
/// ```no_run
/// #[derive(serde::Deserialize)]
/// struct Order { items: Vec<u32> }
/// #[derive(serde::Serialize)]
/// struct Total { total: u32 }
///
/// async fn total(order: Order, _ctx: faas::Context) -> faas::Result<Total> {
///     Ok(Total { total: order.items.iter().sum() })
/// }
///
/// #[tokio::main]
/// async fn main() -> faas::Result<()> {
///     faas::run(faas::event_fn(total)).await
/// }
/// ```
pub fn event_fn<F, In>(f: F) -> EventFn<F, In> {
    EventFn {
        f,
        _event: PhantomData,
    }
}

/// The service of [`handler_fn`].
#[derive(Clone, Copy)]
pub struct HandlerFn<F> {
    f: F,
}

/// The service of [`context_fn`].
#[derive(Clone, Copy)]
pub struct ContextFn<F> {
    f: F,
}

/// The service of [`event_fn`]; `In` is the event type.
pub struct EventFn<F, In> {
    f: F,
    _event: PhantomData<fn() -> In>,
}

impl<F: Clone, In> Clone for EventFn<F, In> {
    fn clone(&self) -> Self {
        EventFn {
            f: self.f.clone(),
            _event: PhantomData,
        }
    }
}

impl<F: Copy, In> Copy for EventFn<F, In> {}

impl<F, In> fmt::Debug for EventFn<F, In> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventFn")
            .field("f", &std::any::type_name::<F>())
            .field("event", &std::any::type_name::<In>())
            .finish()
    }
}

macro_rules! debug_by_type {
    ($($ty:ident),*) => {$(
        impl<F> fmt::Debug for $ty<F> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("f", &std::any::type_name::<F>())
                    .finish()
            }
        }
    )*};
}
debug_by_type!(HandlerFn, ContextFn);

pin_project! {
    /// The future of [`HandlerFn`] and [`ContextFn`]: the handler's future, its output converted
    /// with [`IntoResponse`].
    pub struct IntoResponseFuture<Fut> {
        #[pin]
        fut: Fut,
    }
}

impl<Fut> fmt::Debug for IntoResponseFuture<Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoResponseFuture").finish_non_exhaustive()
    }
}

impl<Fut> Future for IntoResponseFuture<Fut>
where
    Fut: Future,
    Fut::Output: IntoResponse,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.project()
            .fut
            .poll(cx)
            .map(|out| Ok(out.into_response()))
    }
}

impl<F, Fut> Service<Request> for HandlerFn<F>
where
    F: FnMut(Request) -> Fut,
    Fut: Future,
    Fut::Output: IntoResponse,
{
    type Response = Response;
    type Error = Infallible;
    type Future = IntoResponseFuture<Fut>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        IntoResponseFuture { fut: (self.f)(req) }
    }
}

/// The context a served request carries, or the default one.
fn take_context(req: &mut Request) -> Context {
    req.extensions_mut()
        .remove::<Context>()
        .unwrap_or_else(default_context)
}

impl<F, Fut> Service<Request> for ContextFn<F>
where
    F: FnMut(Request, Context) -> Fut,
    Fut: Future,
    Fut::Output: IntoResponse,
{
    type Response = Response;
    type Error = Infallible;
    type Future = IntoResponseFuture<Fut>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let ctx = take_context(&mut req);
        req.extensions_mut().insert(ctx.clone());
        IntoResponseFuture {
            fut: (self.f)(req, ctx),
        }
    }
}

/// The future of [`EventFn`].
pub type EventFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<F, Fut, In, Out, E> Service<Request> for EventFn<F, In>
where
    F: FnMut(In, Context) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Out, E>> + Send,
    In: DeserializeOwned,
    Out: Serialize,
    E: Into<Error>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EventFuture;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let ctx = take_context(&mut req);
        let mut f = self.f.clone();
        Box::pin(async move {
            let bytes = match req.into_body().bytes().await {
                Ok(bytes) => bytes,
                Err(err) => return Ok(err.into_response()),
            };
            let input = if bytes.iter().all(u8::is_ascii_whitespace) {
                &b"null"[..]
            } else {
                &bytes[..]
            };
            let event: In = match parse_json(input) {
                Ok(event) => event,
                Err(err) => return Ok(err.into_response()),
            };
            Ok(match f(event, ctx).await {
                Ok(out) => Json(out).into_response(),
                Err(err) => err.into().into_response(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use tower::ServiceExt;

    use super::*;
    use crate::body::Body;

    async fn text(res: Response) -> String {
        res.into_body().text().await.unwrap()
    }

    #[tokio::test]
    async fn handler_fn_converts_the_output() {
        let svc = handler_fn(|req: Request| async move { req.uri().path().to_owned() });
        let res = svc.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(text(res).await, "/");
    }

    #[tokio::test]
    async fn context_fn_passes_the_served_context() {
        let svc = context_fn(|_req: Request, ctx: Context| async move {
            ctx.call_id().unwrap_or("none").to_owned()
        });
        let mut req = Request::new(Body::empty());
        req.extensions_mut()
            .insert(Context::builder().call_id("id-7").build());
        assert_eq!(text(svc.oneshot(req).await.unwrap()).await, "id-7");
        let res = svc.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(text(res).await, "none");
    }

    #[derive(serde::Deserialize)]
    struct Add {
        a: i64,
        b: i64,
    }

    async fn add(ev: Add, _ctx: Context) -> Result<i64, Error> {
        ev.a.checked_add(ev.b)
            .ok_or_else(|| Error::status(StatusCode::UNPROCESSABLE_ENTITY, "overflow"))
    }

    #[tokio::test]
    async fn event_fn_parses_and_serialises_json() {
        let svc = event_fn(add);
        let ok = svc
            .oneshot(Request::new(Body::from(r#"{"a":2,"b":3}"#)))
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()["content-type"], "application/json");
        assert_eq!(text(ok).await, "5");

        let bad = svc
            .oneshot(Request::new(Body::from(r#"{"a":2}"#)))
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = serde_json::from_str(&text(bad).await).unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("missing field `b`"),
            "{body}"
        );

        let big = format!(r#"{{"a":{},"b":1}}"#, i64::MAX);
        let err = svc.oneshot(Request::new(Body::from(big))).await.unwrap();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(text(err).await, r#"{"error":"overflow"}"#);
    }

    #[tokio::test]
    async fn an_empty_body_is_null() {
        let svc =
            event_fn(|ev: Option<u8>, _ctx: Context| async move { Ok::<_, Error>(ev.is_none()) });
        let res = svc.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(text(res).await, "true");
    }
}
