//! `Gateway::serve` over a real socket with a real HTTP client, and graceful shutdown.

mod gateway_support;

use std::time::Duration;

use bytes::Bytes;
use faas_core::gateway::Gateway;
use gateway_support::{TestProvider, Upstream};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[tokio::test]
async fn serves_over_tcp_and_shuts_down_gracefully() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add("echo", vec![upstream.endpoint()]);
    let gateway = Gateway::builder(provider.clone()).build();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway.serve(listener, async move {
        let _ = stop_rx.await;
    }));

    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client
        .get(format!("http://{addr}/healthz").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    for i in 0..20 {
        let request = Request::post(format!("http://{addr}/function/echo/path?i={i}"))
            .body(Full::new(Bytes::from(format!("hello {i}"))))
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-seen-forwarded-for"], "127.0.0.1");
        assert_eq!(
            response.headers()["x-seen-path"],
            format!("/path?i={i}").as_str()
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!("hello {i}"));
    }

    // A slow call in flight when shutdown starts still completes.
    let slow = {
        let client = client.clone();
        tokio::spawn(async move {
            let response = client
                .get(
                    format!("http://{addr}/function/echo/sleep?ms=500")
                        .parse()
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            let _ = response.into_body().collect().await;
            status
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop_tx.send(()).unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), slow)
            .await
            .unwrap()
            .unwrap(),
        StatusCode::OK
    );
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();

    // No longer accepting.
    let fresh: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    assert!(
        fresh
            .get(format!("http://{addr}/healthz").parse().unwrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn shutdown_grace_bounds_the_drain() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add("echo", vec![upstream.endpoint()]);
    let gateway = Gateway::builder(provider.clone())
        .shutdown_grace(Duration::from_millis(200))
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway.serve(listener, async move {
        let _ = stop_rx.await;
    }));
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let stuck = tokio::spawn(async move {
        client
            .get(
                format!("http://{addr}/function/echo/sleep?ms=20000")
                    .parse()
                    .unwrap(),
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_tx.send(()).unwrap();
    // serve returns after the grace period although the call is still running...
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns once the grace period is over")
        .unwrap()
        .unwrap();
    // ...and the caller sees its connection closed rather than waiting 20 s.
    let result = tokio::time::timeout(Duration::from_secs(10), stuck)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_err());
}
