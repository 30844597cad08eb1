//! The host app keeps its own route and middleware, and invokes a function through the gateway
//! mounted under `/faas`, over real sockets.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use embedded_gateway::{StaticProvider, app};
use faas_core::gateway::Gateway;
use faas_core::model::Endpoint;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A real upstream replica: answers with the body reversed and the path it saw.
async fn start_upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                    let path = request.uri().to_string();
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let reversed: Vec<u8> = body.iter().rev().copied().collect();
                    let response = hyper::Response::builder()
                        .header("x-seen-path", path)
                        .body(Full::new(Bytes::from(reversed)))
                        .unwrap();
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn invokes_a_function_through_the_mounted_gateway() {
    let upstream = start_upstream().await;
    let provider = StaticProvider::new().with_function(
        "reverse",
        vec![Endpoint::new("reverse-0", upstream.to_string())],
    );
    let gateway = Gateway::builder(Arc::new(provider)).build();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app(gateway)).await });

    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let get = |path: &str| client.get(format!("http://{addr}{path}").parse().unwrap());

    // The host app's own route and middleware still work.
    let response = tokio::time::timeout(Duration::from_secs(10), get("/"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-served-by"], "embedded-gateway");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello from the host application\n");

    // A function invoked through /faas.
    let request = Request::post(format!("http://{addr}/faas/function/reverse/sub?x=1"))
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["x-served-by"],
        "embedded-gateway",
        "the app's middleware wraps the gateway"
    );
    assert_eq!(response.headers()["x-seen-path"], "/sub?x=1");
    assert!(response.headers().contains_key("x-call-id"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"olleh");

    // The API is mounted too.
    let response = get("/faas/system/functions").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let list: serde_json::Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(list[0]["name"], "reverse");
    assert_eq!(list[0]["invocationCount"], 1.0);

    let response = get("/faas/function/nope").await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-openfaas-internal"], "gateway");

    // The portal too: /faas/ui redirects to a relative `ui/` (so /faas/ui/), which serves the page.
    let response = get("/faas/ui").await.unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()["location"], "ui/");
    let response = get("/faas/ui/").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&page).contains("src=\"app.js\""));
    let response = get("/faas/ui/app.js").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    server.abort();
}
