//! The [`Invoker`] on its own, as the queue worker uses it.

mod gateway_support;

use std::time::Duration;

use faas_core::ErrorKind;
use faas_core::invoke::{Body, Invoker, X_CALL_ID, X_DURATION_SECONDS};
use faas_core::model::FunctionDeployment;
use gateway_support::{NS, TestProvider, Upstream, dead_endpoint};
use http::{Request, StatusCode};
use http_body_util::BodyExt;

#[tokio::test]
async fn invokes_with_the_request_uri_as_path_suffix() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add("echo", vec![upstream.endpoint()]);
    let invoker = Invoker::new(provider.clone());

    let request = Request::put("/deep/path?k=v")
        .header("x-call-id", "queued-42")
        .body(Body::from("payload"))
        .unwrap();
    let response = invoker.invoke("echo", "", request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-seen-method"], "PUT");
    assert_eq!(response.headers()["x-seen-path"], "/deep/path?k=v");
    assert_eq!(response.headers()[X_CALL_ID], "queued-42");
    assert!(response.headers().contains_key(X_DURATION_SECONDS));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"payload");

    // The same call with the namespace spelled out.
    let request = Request::new(Body::empty());
    let response = invoker.invoke("echo", NS, request).await.unwrap();
    assert_eq!(response.headers()["x-seen-path"], "/");
}

#[tokio::test]
async fn errors_have_kinds() {
    let provider = TestProvider::new();
    provider.add("down", vec![dead_endpoint("r0").await]);
    provider.add("zero", Vec::new());
    provider.set_replicas("zero", 0);
    let invoker = Invoker::builder(provider.clone())
        .scale_from_zero(false)
        .max_attempts(1)
        .build();
    let call = |name: &'static str| {
        let invoker = invoker.clone();
        async move {
            invoker
                .invoke(name, "", Request::new(Body::empty()))
                .await
                .unwrap_err()
        }
    };
    assert_eq!(call("ghost").await.kind(), ErrorKind::NotFound);
    assert_eq!(call("Bad").await.kind(), ErrorKind::InvalidInput);
    let err = call("down").await;
    assert_eq!(err.kind(), ErrorKind::BadGateway);
    assert!(
        std::error::Error::source(&err).is_some(),
        "the connect error is kept as source"
    );
    let err = call("zero").await;
    assert_eq!(err.kind(), ErrorKind::BadGateway);
    assert!(err.to_string().contains("scaled to zero"), "{err}");
    assert_eq!(provider.scale_calls(), 0);
    let err = invoker
        .invoke("echo", "Bad_Ns", Request::new(Body::empty()))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("namespace"));
}

#[tokio::test]
async fn a_replica_that_never_becomes_ready_is_502_after_the_cold_start_timeout() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add_in(
        "never",
        NS,
        vec![upstream.endpoint()],
        FunctionDeployment::new("never", "img"),
    );
    provider.set_replicas("never", 0);
    provider.set_scale_delay(Duration::from_secs(3600));
    let invoker = Invoker::builder(provider.clone())
        .cold_start_timeout(Duration::from_millis(300))
        .build();
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        invoker.invoke("never", "", Request::new(Body::empty())),
    )
    .await
    .expect("bounded by the cold-start timeout")
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadGateway);
    assert!(err.to_string().contains("no replica became ready"), "{err}");
    assert_eq!(provider.scale_calls(), 1);
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn endpoints_are_cached_briefly() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add("echo", vec![upstream.endpoint()]);
    let invoker = Invoker::builder(provider.clone())
        .endpoint_ttl(Duration::from_secs(60))
        .build();
    for _ in 0..50 {
        let response = invoker
            .invoke("echo", "", Request::new(Body::empty()))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        provider.endpoint_calls(),
        1,
        "one lookup serves every call within the ttl"
    );
    assert_eq!(upstream.count(), 50);
}
