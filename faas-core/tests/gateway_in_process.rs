//! Endpoints with an in-process handle: the invoker calls the handle instead of the network, and
//! keeps its semantics (call headers, retry only before the body was read, timeouts, body limits).
//! The handles here are plain tower services; faas-provider-local's tests run the real watchdogs.

mod gateway_support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use faas_core::BoxError;
use faas_core::gateway::Gateway;
use faas_core::invoke::{Body, Invoker, X_CALL_ID, X_DURATION_SECONDS, X_START_TIME};
use faas_core::model::{Endpoint, FunctionDeployment, InProcess};
use gateway_support::{NS, TestProvider, call, dead_endpoint, req};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::util::BoxCloneSyncService;

/// A handle answering with what it saw: method, path, `Host`, the call id, and the body echoed.
fn echo_handle(name: &'static str, calls: Arc<AtomicUsize>) -> InProcess {
    let service = tower::service_fn(move |request: Request<Body>| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let header = |n: &str| {
                parts
                    .headers
                    .get(n)
                    .map(|v| v.to_str().unwrap_or_default().to_owned())
                    .unwrap_or_default()
            };
            let response = Response::builder()
                .header("x-replica", name)
                .header("x-seen-method", parts.method.as_str())
                .header("x-seen-path", parts.uri.to_string())
                .header("x-seen-host", header("host"))
                .header("x-seen-call-id", header("x-call-id"))
                .header("connection", "keep-alive")
                .body(Body::from(body))?;
            Ok::<_, BoxError>(response)
        }
    });
    InProcess::new(BoxCloneSyncService::new(service))
}

/// A handle that refuses every call without reading the body, as a stopping watchdog does.
fn refusing_handle(calls: Arc<AtomicUsize>) -> InProcess {
    let service = tower::service_fn(move |_request: Request<Body>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Err::<Response<Body>, BoxError>("replica is not serving".into()) }
    });
    InProcess::new(BoxCloneSyncService::new(service))
}

#[tokio::test]
async fn the_handle_is_called_instead_of_the_network() {
    let provider = TestProvider::new();
    let calls = Arc::new(AtomicUsize::new(0));
    // Nothing listens at the address: only the handle can answer.
    let endpoint = dead_endpoint("r0")
        .await
        .with_in_process(echo_handle("r0", calls.clone()));
    let authority = endpoint.authority.clone();
    provider.add("echo", vec![endpoint]);
    let gateway = Gateway::builder(provider.clone()).build();

    let request = Request::put("/function/echo/deep/path?k=v")
        .header("host", "gateway.example")
        .header("x-call-id", "call-7")
        .body(Body::from("payload"))
        .unwrap();
    let (status, headers, body) = call(&gateway, request).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(&body[..], b"payload");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(headers["x-seen-method"], "PUT");
    assert_eq!(headers["x-seen-path"], "/deep/path?k=v");
    // As over HTTP: `Host` is the replica's address, the caller's moves to X-Forwarded-Host.
    assert_eq!(headers["x-seen-host"], authority.as_str());
    assert_eq!(headers["x-seen-call-id"], "call-7");
    assert_eq!(headers[X_CALL_ID], "call-7");
    assert!(headers.contains_key(X_START_TIME));
    assert!(headers.contains_key(X_DURATION_SECONDS));
    // Hop-by-hop headers of the replica's answer are not passed on.
    assert!(!headers.contains_key("connection"));
}

#[tokio::test]
async fn a_refusing_replica_is_skipped_before_its_body_is_read() {
    let provider = TestProvider::new();
    let refused = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let stopping = dead_endpoint("r0")
        .await
        .with_in_process(refusing_handle(refused.clone()));
    let serving = dead_endpoint("r1")
        .await
        .with_in_process(echo_handle("r1", served.clone()));
    provider.add("echo", vec![stopping, serving]);
    let invoker = Invoker::new(provider.clone());

    for i in 0..4 {
        let response = invoker
            .invoke("echo", "", Request::new(Body::from(format!("call {i}"))))
            .await
            .unwrap();
        assert_eq!(response.headers()["x-replica"], "r1");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, Bytes::from(format!("call {i}")));
    }
    assert_eq!(served.load(Ordering::SeqCst), 4);
    // Refused once, then avoided while marked down.
    assert_eq!(refused.load(Ordering::SeqCst), 1);

    // With only refusing replicas the call is a 502 naming the function.
    provider.set_pool(
        "echo",
        vec![
            dead_endpoint("r0")
                .await
                .with_in_process(refusing_handle(refused.clone())),
        ],
    );
    let invoker = Invoker::builder(provider.clone())
        .cold_start_timeout(Duration::from_millis(200))
        .build();
    let err = invoker
        .invoke("echo", NS, Request::new(Body::from("x")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), faas_core::ErrorKind::BadGateway);
    assert!(err.to_string().contains("echo"), "{err}");
}

#[tokio::test]
async fn timeouts_and_body_limits_apply() {
    let provider = TestProvider::new();
    // Never answers.
    let stuck = InProcess::new(BoxCloneSyncService::new(tower::service_fn(
        |_request: Request<Body>| async {
            std::future::pending::<()>().await;
            Ok::<Response<Body>, BoxError>(Response::new(Body::empty()))
        },
    )));
    provider.add_in(
        "stuck",
        NS,
        vec![dead_endpoint("r0").await.with_in_process(stuck)],
        FunctionDeployment::new("stuck", "img").with_env("exec_timeout", "300ms"),
    );
    // Reads the whole body before answering; a failed read is a 400 of its own.
    let reader = InProcess::new(BoxCloneSyncService::new(tower::service_fn(
        |request: Request<Body>| async move {
            let response = match request.into_body().collect().await {
                Ok(body) => Response::new(Body::from(body.to_bytes())),
                Err(_) => Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .body(Body::empty())
                    .unwrap(),
            };
            Ok::<_, BoxError>(response)
        },
    )));
    provider.add(
        "reader",
        vec![dead_endpoint("r0").await.with_in_process(reader)],
    );
    let gateway = Gateway::builder(provider.clone()).body_limit(16).build();

    let (status, _, body) = call(&gateway, req("POST", "/function/stuck", "x")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body:?}");

    let (status, _, body) = call(&gateway, req("POST", "/function/reader", "small")).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"small"[..]));

    // A streamed body (no Content-Length) that goes over the limit while the replica reads it:
    // the gateway's 413, not the replica's answer.
    let chunks =
        futures::stream::iter((0..8).map(|_| {
            Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(b"0123456789")))
        }));
    let streamed = Body::new(http_body_util::StreamBody::new(chunks));
    let (status, headers, body) = call(&gateway, req("POST", "/function/reader", streamed)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body:?}");
    assert!(headers.contains_key("x-openfaas-internal"));
}

#[test]
fn handles_compare_by_identity_and_are_not_serialized() {
    let calls = Arc::new(AtomicUsize::new(0));
    let handle = echo_handle("r0", calls.clone());
    let a = Endpoint::new("r0", "127.0.0.1:1").with_in_process(handle.clone());
    let b = Endpoint::new("r0", "127.0.0.1:1").with_in_process(handle);
    let c = Endpoint::new("r0", "127.0.0.1:1").with_in_process(echo_handle("r0", calls));
    assert_eq!(a, b);
    assert_ne!(a, c, "a restarted replica is a new endpoint");
    assert_ne!(a, Endpoint::new("r0", "127.0.0.1:1"));
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"id": "r0", "authority": "127.0.0.1:1"})
    );
    let back: Endpoint = serde_json::from_value(json).unwrap();
    assert!(back.in_process().is_none());
}
