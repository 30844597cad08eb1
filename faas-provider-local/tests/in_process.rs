//! The gateway calls the local provider's replicas in-process (their watchdog's handle, no
//! loopback connection) and every watchdog and gateway rule still holds: streaming both ways,
//! timeouts (504, the process is gone), `max_inflight` (429), draining on scale-down, and a crashed
//! replica (502, then it comes back).

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{NS, READY, open, ready, script, wait_for};
use faas_core::Provider;
use faas_core::gateway::Gateway;
use faas_core::invoke::{Body, Invoker};
use faas_core::model::FunctionDeployment;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn call(gateway: &Gateway, uri: &str, body: impl Into<Body>) -> (StatusCode, Bytes) {
    let request = Request::post(uri).body(body.into()).unwrap();
    let response = tokio::time::timeout(READY, gateway.clone().oneshot(request))
        .await
        .expect("a response within the timeout")
        .unwrap();
    let status = response.status();
    let body = tokio::time::timeout(READY, response.into_body().collect())
        .await
        .expect("a body within the timeout")
        .expect("a body")
        .to_bytes();
    (status, body)
}

fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_take_the_in_process_path_with_the_watchdog_rules() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = tempfile::tempdir().unwrap();
    let provider = open(dir.path()).await;
    // Fork mode sees the request as CGI-style variables.
    let cmd = script(
        scripts.path(),
        "env.sh",
        r#"printf '%s %s %s|' "$Http_Method" "$Http_Path" "$Http_Query"; cat"#,
    );
    provider
        .deploy(FunctionDeployment::new("env", "local").with_env_process(cmd))
        .await
        .unwrap();
    let endpoint = ready(&provider, "env", 1).await.remove(0);
    let handle = endpoint
        .in_process()
        .expect("local endpoints carry an in-process handle")
        .clone();
    let gateway = Gateway::builder(Arc::new(provider.clone())).build();

    let request = Request::put("/function/env/a/b?x=1")
        .header("x-call-id", "call-1")
        .body(Body::from("hello"))
        .unwrap();
    let response = gateway.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-call-id"], "call-1");
    let seconds: f64 = response.headers()["x-duration-seconds"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seconds > 0.0);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"PUT /a/b x=1|hello");

    // The handle itself answers the watchdog's own paths and applies its rules.
    let health = Request::get("/_/health").body(Body::empty()).unwrap();
    let response = handle.service().oneshot(health).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-duration-seconds"));
    // An unread response is a call in flight (as an unread response holds its connection).
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"OK");

    // The loopback listener still serves (health probes, direct access).
    let (status, text) = common::post(&endpoint, "direct").await;
    assert_eq!((status, text.as_str()), (200, "POST / |direct"));

    // Without in-process handles the same call goes over loopback TCP.
    let dir2 = tempfile::tempdir().unwrap();
    let tcp =
        faas_provider_local::LocalProvider::open(common::config(dir2.path()).in_process(false))
            .await
            .unwrap();
    tcp.deploy(
        FunctionDeployment::new("env", "local").with_env_process(script(
            scripts.path(),
            "env2.sh",
            r#"printf '%s|' "$Http_Method"; cat"#,
        )),
    )
    .await
    .unwrap();
    let endpoint = ready(&tcp, "env", 1).await.remove(0);
    assert!(endpoint.in_process().is_none());
    let tcp_gateway = Gateway::builder(Arc::new(tcp.clone())).build();
    let (status, body) = call(&tcp_gateway, "/function/env", "over tcp").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"POST|over tcp"[..]));
    tcp.shutdown().await;
    provider.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_stream_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let provider = open(dir.path()).await;
    provider
        .deploy(
            FunctionDeployment::new("stream", "local")
                .with_env_process("cat")
                .with_env("mode", "streaming"),
        )
        .await
        .unwrap();
    ready(&provider, "stream", 1).await;
    let gateway = Gateway::builder(Arc::new(provider.clone())).build();

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(http_body::Frame::data(chunk)), rx))
    });
    let request = Request::post("/function/stream")
        .body(Body::new(http_body_util::StreamBody::new(frames)))
        .unwrap();
    tx.send(Bytes::from_static(b"first\n")).await.unwrap();
    let response = tokio::time::timeout(READY, gateway.clone().oneshot(request))
        .await
        .expect("response headers while the request body is still open")
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // The first chunk comes back before the request body ends.
    let mut seen = Vec::new();
    while !seen.ends_with(b"first\n") {
        let frame = tokio::time::timeout(READY, body.frame())
            .await
            .expect("the echo of the first chunk")
            .expect("a frame")
            .expect("no error");
        if let Ok(data) = frame.into_data() {
            seen.extend_from_slice(&data);
        }
    }
    tx.send(Bytes::from_static(b"second\n")).await.unwrap();
    drop(tx);
    let rest = tokio::time::timeout(READY, body.collect())
        .await
        .expect("the rest")
        .unwrap()
        .to_bytes();
    seen.extend_from_slice(&rest);
    assert_eq!(seen, b"first\nsecond\n");
    provider.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_function_is_504_and_its_process_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = tempfile::tempdir().unwrap();
    let pid_file = scripts.path().join("pid");
    let cmd = script(
        scripts.path(),
        "slow.sh",
        &format!("echo $$ > {}; exec sleep 30", pid_file.display()),
    );
    let provider = open(dir.path()).await;
    provider
        .deploy(
            FunctionDeployment::new("slow", "local")
                .with_env_process(cmd)
                .with_env("exec_timeout", "1s"),
        )
        .await
        .unwrap();
    ready(&provider, "slow", 1).await;
    let gateway = Gateway::builder(Arc::new(provider.clone())).build();
    let (status, body) = call(&gateway, "/function/slow", "").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body:?}");
    let pid: i32 = wait_for("the pid file", READY, || async {
        std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
    .await;
    wait_for("the timed-out process to be gone", READY, || async {
        (!pid_alive(pid)).then_some(())
    })
    .await;
    provider.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_inflight_is_429_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = tempfile::tempdir().unwrap();
    let started = scripts.path().join("started");
    let cmd = script(
        scripts.path(),
        "hold.sh",
        &format!("touch {}; sleep 1; cat", started.display()),
    );
    let provider = open(dir.path()).await;
    provider
        .deploy(
            FunctionDeployment::new("one", "local")
                .with_env_process(cmd)
                .with_env("max_inflight", "1"),
        )
        .await
        .unwrap();
    ready(&provider, "one", 1).await;
    let gateway = Gateway::builder(Arc::new(provider.clone())).build();
    let first = {
        let gateway = gateway.clone();
        tokio::spawn(async move { call(&gateway, "/function/one", "first").await })
    };
    wait_for("the first call to run", READY, || async {
        started.exists().then_some(())
    })
    .await;
    let (status, body) = call(&gateway, "/function/one", "second").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body:?}");
    assert!(
        String::from_utf8_lossy(&body).contains("max_inflight"),
        "{body:?}"
    );
    let (status, body) = first.await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"first"[..]));
    // The slot is free again.
    let (status, _) = call(&gateway, "/function/one", "third").await;
    assert_eq!(status, StatusCode::OK);
    provider.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_down_drains_in_process_calls() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = tempfile::tempdir().unwrap();
    // Longer than the drain grace (1 s in tests): the watchdogs stop while the calls run.
    let cmd = script(scripts.path(), "slow.sh", "sleep 2; cat");
    let provider = open(dir.path()).await;
    provider
        .deploy(FunctionDeployment::new("slow", "local").with_env_process(cmd))
        .await
        .unwrap();
    provider.scale("slow", NS, 2).await.unwrap();
    ready(&provider, "slow", 2).await;
    let gateway = Gateway::builder(Arc::new(provider.clone())).build();

    let calls: Vec<_> = (0..6)
        .map(|i| {
            let gateway = gateway.clone();
            tokio::spawn(async move { call(&gateway, "/function/slow", format!("call {i}")).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    provider.scale("slow", NS, 0).await.unwrap();
    for (i, call) in calls.into_iter().enumerate() {
        let (status, body) = call.await.unwrap();
        assert_eq!(
            (status, String::from_utf8_lossy(&body).into_owned()),
            (StatusCode::OK, format!("call {i}")),
            "call {i} during the drain"
        );
    }
    wait_for("the replicas to be gone", READY, || async {
        provider
            .endpoints("slow", NS)
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    provider.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_replica_is_502_then_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    std::fs::write(work.path().join("index.html"), "up").unwrap();
    let w = work.path().display();
    let cmd = script(
        work.path(),
        "server.sh",
        &format!(
            r#"busybox httpd -f -p 127.0.0.1:{port} -h {w} &
pid=$!
while [ ! -e {w}/crash ]; do sleep 0.05; done
rm -f {w}/crash
kill $pid
wait $pid
exit 3"#
        ),
    );
    // A long first backoff, so that the crash is seen before the restart.
    let config = common::config(dir.path()).backoff(Duration::from_secs(2), Duration::from_secs(4));
    let provider = faas_provider_local::LocalProvider::open(config)
        .await
        .unwrap();
    provider
        .deploy(
            FunctionDeployment::new("crashy", "local")
                .with_env_process(cmd)
                .with_env("mode", "http")
                .with_env("upstream_url", format!("http://127.0.0.1:{port}")),
        )
        .await
        .unwrap();
    let first = ready(&provider, "crashy", 1).await.remove(0);
    let invoker = Invoker::builder(Arc::new(provider.clone()))
        .cold_start_timeout(Duration::from_millis(300))
        .build();
    let gateway = Gateway::builder(Arc::new(provider.clone()))
        .invoker(invoker)
        .build();
    let get = |gateway: Gateway| async move {
        let request = Request::get("/function/crashy/index.html")
            .body(Body::empty())
            .unwrap();
        let response = gateway.oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    };
    let (status, body) = get(gateway.clone()).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"up"[..]));

    std::fs::write(work.path().join("crash"), "").unwrap();
    wait_for(
        "the crashed replica to leave the endpoints",
        READY,
        || async {
            provider
                .endpoints("crashy", NS)
                .await
                .unwrap()
                .is_empty()
                .then_some(())
        },
    )
    .await;
    // The old handle refuses: its watchdog stopped.
    let request = Request::get("/index.html").body(Body::empty()).unwrap();
    assert!(
        first
            .in_process()
            .unwrap()
            .service()
            .oneshot(request)
            .await
            .is_err()
    );
    let (status, body) = get(gateway.clone()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body:?}");

    // Restarted after the backoff: served again, through a new handle.
    let second = ready(&provider, "crashy", 1).await.remove(0);
    assert_ne!(first, second);
    let (status, body) = wait_for("the restarted replica to serve", READY, || {
        let gateway = gateway.clone();
        async move {
            let (status, body) = get(gateway).await;
            (status == StatusCode::OK).then_some((status, body))
        }
    })
    .await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"up"[..]));
    provider.shutdown().await;
}
