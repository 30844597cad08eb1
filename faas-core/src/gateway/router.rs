//! The gateway's router: `/function/` goes straight to the proxy (through the invocation metrics),
//! everything else to the API's axum router.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use tower::{Layer as _, Service};

use super::async_invoke::AsyncApi;
use super::error::{error_response, method_not_allowed};
use super::metrics::{InvocationMetrics, InvocationMetricsLayer};
use super::proxy::Proxy;
use super::system::{self, Api};
use crate::invoke::{Body, Invoker};
use crate::{BoxError, Error};

/// Routes a request to the function proxy or to the API.
#[derive(Clone, Debug)]
pub(crate) struct GatewayRouter {
    proxy: InvocationMetrics<Proxy>,
    api: Router,
}

impl GatewayRouter {
    pub(crate) fn new(api: Api, invoker: Invoker, async_api: Option<AsyncApi>, ui: bool) -> Self {
        let default_namespace = api.provider.default_namespace().to_owned();
        let proxy = InvocationMetricsLayer::new(api.metrics.clone(), default_namespace)
            .layer(Proxy::new(invoker));
        GatewayRouter {
            proxy,
            api: api_router(api, async_api, ui),
        }
    }
}

fn api_router(api: Api, async_api: Option<AsyncApi>, ui: bool) -> Router {
    let mut router = Router::new()
        .route(
            "/system/functions",
            get(system::list_functions)
                .post(system::deploy)
                .put(system::update)
                .delete(system::delete),
        )
        .route("/system/function/{name}", get(system::get_function))
        .route("/system/scale-function/{name}", post(system::scale))
        .route("/system/info", get(system::info))
        .route("/system/namespaces", get(system::namespaces))
        .route(
            "/system/secrets",
            get(system::list_secrets)
                .post(system::create_secret)
                .put(system::update_secret)
                .delete(system::delete_secret),
        )
        .route("/system/logs", get(system::logs))
        .route("/healthz", get(system::healthz))
        .route("/metrics", get(system::metrics));

    // ---------------------------------------------------------------------------------------------
    // ASYNC HOOK (async invocation issue): `/async-function/{name}[.{namespace}][/{rest..}]` and
    // `/system/invocations/{call_id}` are routed here by `gateway/async_invoke.rs` once the builder
    // holds a queue (`GatewayBuilder::queue`). Until then these paths fall through to the 404
    // fallback below like any unknown route.
    // ---------------------------------------------------------------------------------------------
    if let Some(async_api) = async_api {
        router = router.merge(super::async_invoke::routes(async_api));
    }
    if ui {
        router = router.merge(super::ui::routes());
    }

    router
        .fallback(|request: Request<Body>| async move {
            let err = Error::not_found(format!(
                "no route for {} {}",
                request.method(),
                request.uri().path()
            ));
            error_response::<Body>(&err)
        })
        .method_not_allowed_fallback(|request: Request<Body>| async move {
            let message = format!(
                "method {} is not allowed on {}",
                request.method(),
                request.uri().path()
            );
            method_not_allowed::<Body>(&message)
        })
        .with_state(api)
}

impl<B> Service<Request<B>> for GatewayRouter
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both the proxy and axum's router are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.uri().path().starts_with("/function/") {
            Box::pin(self.proxy.call(request))
        } else {
            Box::pin(self.api.call(request.map(Body::new)))
        }
    }
}
