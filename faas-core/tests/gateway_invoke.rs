//! `/function/*` through the gateway, proxied to real upstream HTTP servers on 127.0.0.1.

mod gateway_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_core::gateway::Gateway;
use faas_core::invoke::Body;
use faas_core::model::FunctionDeployment;
use gateway_support::{NS, TestProvider, Upstream, call, dead_endpoint, json, req};
use http::StatusCode;
use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::test]
async fn passes_method_path_query_headers_and_body() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add("echo", vec![upstream.endpoint()]);
    let gw = Gateway::builder(provider.clone()).build();

    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let mut request = req(method, "/function/echo/a/b?x=1&y=two", "hello");
        request
            .headers_mut()
            .insert("x-custom", "value".parse().unwrap());
        let (status, headers, body) = call(&gw, request).await;
        assert_eq!(status, StatusCode::OK, "{method}");
        assert_eq!(&body[..], b"hello");
        assert_eq!(headers["x-seen-method"], method);
        assert_eq!(headers["x-seen-path"], "/a/b?x=1&y=two");
        assert_eq!(headers["x-seen-custom"], "value");
        assert_eq!(headers["x-seen-call-id"], headers["x-call-id"]);
        assert_eq!(headers["x-seen-start-time"], headers["x-start-time"]);
        assert!(
            headers["x-start-time"]
                .to_str()
                .unwrap()
                .parse::<u128>()
                .unwrap()
                > 1_600_000_000_000_000_000
        );
        assert!(
            headers["x-duration-seconds"]
                .to_str()
                .unwrap()
                .parse::<f64>()
                .unwrap()
                >= 0.0
        );
        assert!(!headers.contains_key("x-openfaas-internal"));
    }
    // The path suffix defaults to "/", and a caller's call id is kept.
    let mut request = req("POST", "/function/echo", Body::empty());
    request
        .headers_mut()
        .insert("x-call-id", "my-call-1".parse().unwrap());
    let (status, headers, _) = call(&gw, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-seen-path"], "/");
    assert_eq!(headers["x-call-id"], "my-call-1");
    assert_eq!(headers["x-seen-call-id"], "my-call-1");
    let (_, headers, _) = call(&gw, req("GET", "/function/echo/?q=1", Body::empty())).await;
    assert_eq!(headers["x-seen-path"], "/?q=1");
}

#[tokio::test]
async fn function_status_codes_pass_through() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add("echo", vec![upstream.endpoint()]);
    let gw = Gateway::builder(provider.clone()).build();
    let (status, headers, body) = call(
        &gw,
        req("GET", "/function/echo/status?code=500", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(&body[..], b"status");
    assert!(
        !headers.contains_key("x-openfaas-internal"),
        "a function's error is not the gateway's"
    );
}

#[tokio::test]
async fn namespaced_unknown_and_invalid_functions() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("prod-0").await;
    provider.add_in(
        "echo",
        "prod",
        vec![upstream.endpoint()],
        FunctionDeployment::new("echo", "img"),
    );
    let gw = Gateway::builder(provider.clone()).build();

    let (status, headers, _) = call(&gw, req("POST", "/function/echo.prod/x", "hi")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-upstream-id"], "prod-0");
    assert_eq!(headers["x-seen-path"], "/x");

    let (status, headers, body) = call(&gw, req("POST", "/function/echo", "hi")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "echo is not in the default namespace"
    );
    assert_eq!(headers["x-openfaas-internal"], "gateway");
    assert!(json(&body)["error"].as_str().unwrap().contains("not found"));

    let (status, _, body) = call(&gw, req("POST", "/function/Bad_Name", "hi")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["field"], "service");
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add("echo", vec![upstream.endpoint()]);
    let gw = Gateway::builder(provider.clone()).build();

    // 32 MiB request body, streamed in 64 KiB chunks, echoed back.
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..512).map(|_| Ok(chunk.clone())).collect();
    let (status, _, body) = call(
        &gw,
        req(
            "POST",
            "/function/echo",
            Body::from_stream(futures::stream::iter(chunks)),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), 32 * 1024 * 1024);
    assert!(body.iter().all(|&b| b == 7));

    // A response far larger than memory arrives chunk by chunk: the gateway never buffers it.
    let response = gw
        .clone()
        .oneshot(req(
            "GET",
            "/function/echo/generate?chunks=10000000&size=65536",
            Body::empty(),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut received = 0usize;
    while received < 4 * 1024 * 1024 {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        received += frame.into_data().map(|d| d.len()).unwrap_or(0);
    }
    drop(body);

    // The request streams too: the echo of the first chunk comes back before the second is sent.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let request = req(
        "POST",
        "/function/echo",
        Body::from_stream(tokio_stream_from(rx)),
    );
    let response = gw.clone().oneshot(request).await.unwrap();
    let mut body = response.into_body();
    tx.send(Ok(Bytes::from_static(b"first"))).await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(frame.into_data().unwrap(), Bytes::from_static(b"first"));
    tx.send(Ok(Bytes::from_static(b"second"))).await.unwrap();
    drop(tx);
    let rest = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(&rest[..], b"second");
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn balances_across_three_replicas_within_20_percent() {
    let provider = TestProvider::new();
    let upstreams = [
        Upstream::start("r0").await,
        Upstream::start("r1").await,
        Upstream::start("r2").await,
    ];
    provider.add("echo", upstreams.iter().map(Upstream::endpoint).collect());
    let gw = Gateway::builder(provider.clone()).build();

    let semaphore = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let gw = gw.clone();
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let (status, _, body) =
                call(&gw, req("POST", "/function/echo", format!("req {i}"))).await;
            drop(permit);
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, format!("req {i}"));
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let counts: Vec<usize> = upstreams.iter().map(Upstream::count).collect();
    assert_eq!(counts.iter().sum::<usize>(), 1000);
    for count in &counts {
        assert!((267..=400).contains(count), "unbalanced: {counts:?}");
    }
}

#[tokio::test]
async fn unreachable_function_is_502() {
    let provider = TestProvider::new();
    provider.add("down", vec![dead_endpoint("r0").await]);
    let gw = Gateway::builder(provider.clone()).build();
    let (status, headers, body) = call(&gw, req("POST", "/function/down", "hi")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(headers["x-openfaas-internal"], "gateway");
    let message = json(&body)["error"].as_str().unwrap().to_owned();
    assert!(
        message.contains("down.openfaas-fn cannot be reached"),
        "{message}"
    );
}

#[tokio::test]
async fn connect_failures_are_retried_on_another_replica() {
    let provider = TestProvider::new();
    let live = Upstream::start("live").await;
    provider.add("echo", vec![dead_endpoint("dead").await, live.endpoint()]);
    let gw = Gateway::builder(provider.clone()).build();
    for i in 0..20 {
        let (status, headers, body) =
            call(&gw, req("POST", "/function/echo", format!("body {i}"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["x-upstream-id"], "live");
        assert_eq!(
            body,
            format!("body {i}"),
            "the retried request carries its body"
        );
    }
    assert_eq!(live.count(), 20);
    // The dead replica is avoided after its first failure instead of being retried on every call.
    assert!(
        provider.endpoint_calls() <= 6,
        "endpoints asked {} times",
        provider.endpoint_calls()
    );
}

#[tokio::test]
async fn a_replica_that_goes_away_is_dropped() {
    let provider = TestProvider::new();
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    provider.add("echo", vec![a.endpoint(), b.endpoint()]);
    let gw = Gateway::builder(provider.clone()).build();
    for _ in 0..4 {
        assert_eq!(
            call(&gw, req("GET", "/function/echo", Body::empty()))
                .await
                .0,
            StatusCode::OK
        );
    }
    // `a` goes away; the provider no longer lists it.
    provider.set_pool("echo", vec![b.endpoint()]);
    provider.set_replicas("echo", 1);
    a.stop();
    drop(a);
    for _ in 0..10 {
        let (status, headers, _) = call(&gw, req("GET", "/function/echo", Body::empty())).await;
        if status == StatusCode::OK {
            assert!(headers["x-upstream-id"] == "a" || headers["x-upstream-id"] == "b");
        } else {
            // A pooled connection to `a` that dies mid-request is a 502, never a hang.
            assert_eq!(status, StatusCode::BAD_GATEWAY);
        }
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..10 {
        let (status, headers, _) = call(&gw, req("GET", "/function/echo", Body::empty())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["x-upstream-id"], "b");
    }
}

#[tokio::test]
async fn timeouts_are_504() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add_in(
        "slow",
        NS,
        vec![upstream.endpoint()],
        FunctionDeployment::new("slow", "img").with_env("exec_timeout", "300ms"),
    );
    provider.add("plain", vec![upstream.endpoint()]);
    let gw = Gateway::builder(provider.clone())
        .default_timeout(Duration::from_secs(2))
        .build();

    // The function's own exec_timeout.
    let (status, headers, body) = call(
        &gw,
        req("GET", "/function/slow/sleep?ms=5000", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(headers["x-openfaas-internal"], "gateway");
    assert!(json(&body)["error"].as_str().unwrap().contains("0.300s"));
    // The gateway default.
    let (status, _, body) = call(
        &gw,
        req("GET", "/function/plain/sleep?ms=5000", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(json(&body)["error"].as_str().unwrap().contains("2s"));
    // Within the timeout, fine.
    let (status, _, _) = call(
        &gw,
        req("GET", "/function/plain/sleep?ms=10", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_response_still_streaming_at_the_deadline_is_cut() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add_in(
        "drip",
        NS,
        vec![upstream.endpoint()],
        FunctionDeployment::new("drip", "img").with_env("exec_timeout", "1s"),
    );
    let gw = Gateway::builder(provider.clone()).build();
    // Headers come at once, the body trickles for 4 s: the stream fails at the 1 s deadline.
    let response = gw
        .clone()
        .oneshot(req(
            "GET",
            "/function/drip/drip?chunks=40&ms=100",
            Body::empty(),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let collected = tokio::time::timeout(Duration::from_secs(3), response.into_body().collect())
        .await
        .expect("cut well before the function finishes");
    let err = collected.expect_err("the body is cut");
    assert!(err.to_string().contains("timed out"), "{err}");
    // A short drip within the deadline is whole.
    let (status, _, body) = call(
        &gw,
        req("GET", "/function/drip/drip?chunks=3&ms=10", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"drop drop drop ");
}

#[tokio::test]
async fn scale_from_zero_shares_one_scale_up() {
    let provider = TestProvider::new();
    let upstreams = [Upstream::start("r0").await, Upstream::start("r1").await];
    provider.add_in(
        "cold",
        NS,
        upstreams.iter().map(Upstream::endpoint).collect(),
        FunctionDeployment::new("cold", "img").with_label("com.openfaas.scale.min", "2"),
    );
    provider.set_replicas("cold", 0);
    provider.set_scale_delay(Duration::from_millis(300));
    let gw = Gateway::builder(provider.clone()).build();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let gw = gw.clone();
        tasks.spawn(async move { call(&gw, req("POST", "/function/cold", format!("c{i}"))).await });
    }
    while let Some(result) = tasks.join_next().await {
        let (status, _, _) = result.unwrap();
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        provider.scale_calls(),
        1,
        "concurrent calls share one scale-up"
    );
    assert_eq!(
        provider.replicas("cold", NS),
        Some(2),
        "scaled to com.openfaas.scale.min"
    );
    assert_eq!(upstreams.iter().map(Upstream::count).sum::<usize>(), 10);
}

#[tokio::test]
async fn function_body_limit_is_413() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add("echo", vec![upstream.endpoint()]);
    let gw = Gateway::builder(provider.clone()).body_limit(1024).build();
    let (status, headers, _) = call(&gw, req("POST", "/function/echo", vec![1u8; 2048])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(headers["x-openfaas-internal"], "gateway");
    assert_eq!(upstream.count(), 0, "refused before reaching the function");

    let chunks: Vec<Result<Bytes, std::io::Error>> =
        (0..8).map(|_| Ok(Bytes::from(vec![1u8; 512]))).collect();
    let (status, _, _) = call(
        &gw,
        req(
            "POST",
            "/function/echo",
            Body::from_stream(futures::stream::iter(chunks)),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let (status, _, _) = call(&gw, req("POST", "/function/echo", vec![1u8; 1024])).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_and_invocation_counts() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add("echo", vec![upstream.endpoint()]);
    let gw = Gateway::builder(provider.clone()).build();
    for _ in 0..3 {
        assert_eq!(
            call(&gw, req("POST", "/function/echo", "x")).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        call(
            &gw,
            req("GET", "/function/echo/status?code=500", Body::empty())
        )
        .await
        .0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        call(&gw, req("GET", "/function/ghost", Body::empty()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, _, _) = call(&gw, req("GET", "/function/Bad_Name", Body::empty())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, headers, body) = call(&gw, req("GET", "/metrics", Body::empty())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    for line in [
        "gateway_function_invocation_total{code=\"200\",function_name=\"echo.openfaas-fn\"} 3",
        "gateway_function_invocation_total{code=\"500\",function_name=\"echo.openfaas-fn\"} 1",
        "gateway_function_invocation_started{function_name=\"echo.openfaas-fn\"} 4",
        "gateway_functions_seconds_count{code=\"200\",function_name=\"echo.openfaas-fn\"} 3",
        "gateway_service_count{function_name=\"echo.openfaas-fn\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(
        !text.contains("ghost"),
        "unknown functions leave no metrics"
    );
    assert!(!text.contains("Bad_Name"), "invalid names leave no metrics");
    assert_eq!(gw.metrics().invocations("echo.openfaas-fn"), 4);

    let (_, _, body) = call(&gw, req("GET", "/system/functions", Body::empty())).await;
    assert_eq!(json(&body)[0]["invocationCount"], 4.0);
    let (_, _, body) = call(&gw, req("GET", "/system/function/echo", Body::empty())).await;
    assert_eq!(json(&body)["invocationCount"], 4.0);
}

#[tokio::test]
async fn a_deleted_function_is_404_at_once() {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add("echo", vec![upstream.endpoint()]);
    let gw = Gateway::builder(provider.clone()).build();
    let (status, _, _) = call(&gw, req("GET", "/function/echo", Body::empty())).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _, body) = call(
        &gw,
        req("DELETE", "/system/functions", r#"{"functionName":"echo"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body:?}");
    // Within the endpoint cache's TTL (1 s), yet the gateway no longer routes to the old replica.
    let (status, headers, body) = call(&gw, req("GET", "/function/echo", Body::empty())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body:?}");
    assert_eq!(headers["x-openfaas-internal"], "gateway");
    assert_eq!(upstream.count(), 1);
}
