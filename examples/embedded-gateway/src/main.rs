//! Run with: `cargo run -p embedded-gateway` then
//! `curl -d hello http://127.0.0.1:3000/faas/function/shout`.
//!
//! An existing axum app mounts the faas-rs gateway under `/faas`; the `shout` function is a tiny
//! HTTP server started in-process on 127.0.0.1 that answers with the request body in upper case.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use embedded_gateway::{StaticProvider, app};
use faas_core::gateway::Gateway;
use faas_core::model::Endpoint;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();

    let shout = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let shout_addr = shout.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = shout.accept().await {
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|request: hyper::Request<Incoming>| async move {
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(
                            body.to_ascii_uppercase(),
                        ))))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let provider = StaticProvider::new().with_function(
        "shout",
        vec![Endpoint::new("shout-0", shout_addr.to_string())],
    );
    let gateway = Gateway::builder(Arc::new(provider)).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!(
        "listening on http://{}/ (gateway under /faas)",
        listener.local_addr()?
    );
    axum::serve(listener, app(gateway))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
