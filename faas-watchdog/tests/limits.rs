//! Limits, timeouts, health and bad input, in-process.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{Full, StreamBody};
use hyper::body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Chunks = tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

/// Starts a request whose body stays open until the returned sender is dropped.
fn open_request(
    uri: http::Uri,
) -> (
    Chunks,
    tokio::task::JoinHandle<
        Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
    >,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let body = StreamBody::new(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let req = Request::post(uri).body(body).unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    (tx, tokio::spawn(async move { client.request(req).await }))
}

#[tokio::test]
async fn max_inflight_answers_429_at_once_and_ready_reflects_it() {
    let wd = start(&[
        ("fprocess", "cat"),
        ("mode", "streaming"),
        ("max_inflight", "1"),
    ])
    .await;
    let (tx, first) = open_request(wd.url("/"));
    eventually("first request in flight", || wd.health.in_flight() == 1).await;

    let rejected = post(wd.url("/"), "second").await;
    assert_eq!(rejected.status, 429);
    assert!(rejected.is_internal());
    assert!(rejected.header("x-duration-seconds").is_some());
    assert_eq!(get(wd.url("/_/ready")).await.status, 429);
    assert_eq!(get(wd.url("/_/health")).await.status, 200);

    tx.send(Ok(Frame::data(Bytes::from_static(b"first"))))
        .await
        .unwrap();
    drop(tx);
    let resp = tokio::time::timeout(LONG, first)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"first");
    eventually("nothing in flight", || wd.health.in_flight() == 0).await;
    assert_eq!(post(wd.url("/"), "third").await.text(), "third");
    assert_eq!(get(wd.url("/_/ready")).await.status, 200);
    assert_eq!(wd.health.metrics().requests_total(429), 1);
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn health_ready_lock_file_and_ready_path() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("sub/.lock");
    let not_ready = Arc::new(AtomicReady::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = upstream_on(listener, not_ready.clone()).await;
    let url = up.url();
    let config = vars(&[
        ("fprocess", "sleep 300"),
        ("mode", "http"),
        ("upstream_url", url.as_str()),
        ("ready_path", "/ready"),
    ])
    .with_lock_file(Some(lock.clone()));
    let wd = start_config(config).await;
    eventually("lock file written once ready", || lock.exists()).await;
    let health = get(wd.url("/_/health")).await;
    assert_eq!(
        (health.status.as_u16(), health.text().as_str()),
        (200, "OK")
    );
    assert_eq!(get(wd.url("/_/ready")).await.status, 200);
    not_ready.0.store(true, Ordering::SeqCst);
    assert_eq!(get(wd.url("/_/ready")).await.status, 503);
    not_ready.0.store(false, Ordering::SeqCst);
    assert_eq!(get(wd.url("/_/ready")).await.status, 200);
    assert_eq!(post(wd.url("/_/health"), "").await.status, 405);

    // Removing the lock file marks the replica unhealthy, as with OpenFaaS.
    std::fs::remove_file(&lock).unwrap();
    assert_eq!(get(wd.url("/_/health")).await.status, 503);
    std::fs::write(&lock, "").unwrap();
    assert_eq!(get(wd.url("/_/health")).await.status, 200);

    wd.stop().await.unwrap();
    assert!(!lock.exists(), "lock file must be removed on shutdown");
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let wd = start(&[("fprocess", "cat"), ("max_header_bytes", "16384")]).await;
    let big = "x".repeat(64 * 1024);
    let request = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n");
    let answer = raw(wd.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // The server still works.
    assert_eq!(post(wd.url("/"), "ok").await.text(), "ok");
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let wd = start(&[("fprocess", "wc -c"), ("max_body_bytes", "1000")]).await;
    let big = Bytes::from(vec![b'a'; 5000]);
    // Declared length over the limit: refused before the function runs.
    let answer = send(
        Request::post(wd.url("/"))
            .body(Full::new(big.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 413);
    assert!(answer.is_internal());
    // Chunked body that grows over the limit while it streams.
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n1388\r\n{}\r\n0\r\n\r\n",
        "a".repeat(5000)
    );
    let answer = raw(wd.addr, chunked.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-openfaas-internal: fwatchdog"),
        "{answer}"
    );
    // Under the limit is fine.
    let answer = send(
        Request::post(wd.url("/"))
            .body(Full::new(big.slice(..1000)))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.text().trim(), "1000");
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn slow_clients_are_bounded_by_read_timeout() {
    let wd = start(&[("fprocess", "cat"), ("read_timeout", "500ms")]).await;
    // Headers that never complete: the connection is closed.
    let mut stream = TcpStream::connect(wd.addr).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(LONG, stream.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "a client that never finishes its headers must be disconnected"
    );

    // A body that never completes: 408 from the watchdog.
    let mut stream = TcpStream::connect(wd.addr).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly-ten!!")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(LONG, stream.read_to_end(&mut buf))
        .await
        .expect("no answer to a stalled body");
    let answer = String::from_utf8_lossy(&buf);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_stops_reading_is_bounded_by_write_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let cat = tool_copy(dir.path(), "cat", "zzcat_noread");
    let fprocess = format!("{} /dev/zero", cat.display());
    let wd = start(&[
        ("fprocess", fprocess.as_str()),
        ("mode", "streaming"),
        ("write_timeout", "1s"),
        ("exec_timeout", "120s"),
    ])
    .await;
    let mut stream = TcpStream::connect(wd.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    eventually("process started", || processes_named("zzcat_noread").0 == 1).await;
    // Never read: the watchdog gives up and kills the process, leaving no zombie.
    eventually("process gone", || processes_named("zzcat_noread") == (0, 0)).await;
    eventually("nothing in flight", || wd.health.in_flight() == 0).await;
    drop(stream);
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn exec_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, name) in [
        ("", "zzsleep_classic"),
        ("serializing", "zzsleep_serial"),
        ("streaming", "zzsleep_stream"),
    ] {
        let sleep = tool_copy(dir.path(), "sleep", name);
        // A child and a grandchild: both must die.
        let tree = script(
            dir.path(),
            &format!("{name}.sh"),
            &format!("{} 300 &\n{} 300", sleep.display(), sleep.display()),
        );
        let fprocess = format!("sh {}", tree.display());
        let wd = start(&[
            ("fprocess", fprocess.as_str()),
            ("mode", mode),
            ("exec_timeout", "500ms"),
        ])
        .await;
        let answer = post(wd.url("/"), "").await;
        assert_eq!(answer.status, 504, "mode {mode:?}: {}", answer.text());
        assert!(answer.is_internal());
        eventually("the whole group killed", || processes_named(name).0 == 0).await;
        eventually("no zombie child", || zombie_children() == 0).await;
        wd.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_disconnecting_client_leaves_no_process_or_zombie() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, name) in [
        ("", "zzsleep_dcl"),
        ("streaming", "zzsleep_dst"),
        ("serializing", "zzsleep_dse"),
    ] {
        let sleep = tool_copy(dir.path(), "sleep", name);
        let fprocess = format!("{} 300", sleep.display());
        let wd = start(&[
            ("fprocess", fprocess.as_str()),
            ("mode", mode),
            ("exec_timeout", "120s"),
        ])
        .await;
        let mut stream = TcpStream::connect(wd.addr).await.unwrap();
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        eventually("process started", || processes_named(name).0 == 1).await;
        drop(stream);
        eventually("process killed and reaped", || {
            processes_named(name) == (0, 0)
        })
        .await;
        eventually("no zombie child", || zombie_children() == 0).await;
        eventually("nothing in flight", || wd.health.in_flight() == 0).await;
        wd.stop().await.unwrap();
    }
}

#[tokio::test]
async fn metrics_listener_serves_prometheus_text() {
    let config = vars(&[("fprocess", "cat")]).with_metrics_port(Some(0));
    let wd = faas_watchdog::Watchdog::bind(config).await.unwrap();
    let addr = wd.local_addr();
    let metrics = wd.metrics_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(wd.run(async move {
        let _ = rx.await;
    }));
    for _ in 0..3 {
        post(format!("http://{addr}/").parse().unwrap(), "x").await;
    }
    let text = get(format!("http://{metrics}/metrics").parse().unwrap())
        .await
        .text();
    assert!(
        text.contains("http_requests_total{code=\"200\",method=\"post\"} 3"),
        "{text}"
    );
    assert!(text.contains("http_requests_in_flight 0"), "{text}");
    assert!(
        text.contains("http_request_duration_seconds_count{code=\"200\",method=\"post\"} 3"),
        "{text}"
    );
    let _ = tx.send(());
    tokio::time::timeout(LONG, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn many_watchdogs_run_in_one_process() {
    let mut running = Vec::new();
    for i in 0..4 {
        let value = format!("replica-{i}");
        let config = vars(&[
            ("fprocess", "printenv REPLICA"),
            ("REPLICA", value.as_str()),
        ]);
        running.push(start_config(config).await);
    }
    for (i, wd) in running.iter().enumerate() {
        assert_eq!(get(wd.url("/")).await.text().trim(), format!("replica-{i}"));
    }
    for wd in running {
        wd.stop().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// The pid a function script wrote to `file`, once it is there.
async fn pid_written_to(file: &std::path::Path) -> u32 {
    let mut pid = None;
    eventually("the function wrote its pid", || {
        pid = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        pid.is_some()
    })
    .await;
    pid.unwrap()
}

#[tokio::test]
async fn exec_timeout_reaps_the_process_before_answering() {
    let dir = tempfile::tempdir().unwrap();
    for mode in ["", "serializing", "streaming"] {
        let pid_file = dir.path().join(format!("pid-{mode}"));
        // `exec` keeps the pid of the shell: the process the watchdog started.
        let function = script(
            dir.path(),
            &format!("timeout-{mode}.sh"),
            &format!("echo $$ > {}\nexec sleep 300", pid_file.display()),
        );
        let fprocess = format!("sh {}", function.display());
        let wd = start(&[
            ("fprocess", fprocess.as_str()),
            ("mode", mode),
            ("exec_timeout", "500ms"),
        ])
        .await;
        let answer = post(wd.url("/"), "").await;
        assert_eq!(answer.status, 504, "mode {mode:?}: {}", answer.text());
        let pid = pid_written_to(&pid_file).await;
        // Killed and reaped before the 504 was written: neither running nor a zombie.
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "mode {mode:?}: process {pid} still present after the 504"
        );
        assert_eq!(zombie_children(), 0, "mode {mode:?}");
        wd.stop().await.unwrap();
    }
}

#[tokio::test]
async fn exec_timeout_while_streaming_leaves_no_zombie() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let function = script(
        dir.path(),
        "stream-then-hang.sh",
        &format!(
            "echo $$ > {}\necho first\nexec sleep 300",
            pid_file.display()
        ),
    );
    let fprocess = format!("sh {}", function.display());
    let wd = start(&[
        ("fprocess", fprocess.as_str()),
        ("mode", "streaming"),
        ("exec_timeout", "500ms"),
    ])
    .await;
    let resp = tokio::time::timeout(
        LONG,
        client().request(
            Request::post(wd.url("/"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        ),
    )
    .await
    .expect("response head in time")
    .expect("response head");
    assert_eq!(resp.status(), 200);
    // The body starts with the first line, then fails when exec_timeout kills the process.
    let body = tokio::time::timeout(LONG, http_body_util::BodyExt::collect(resp.into_body()))
        .await
        .expect("body ends in time");
    assert!(body.is_err(), "the body must fail at exec_timeout");
    let pid = pid_written_to(&pid_file).await;
    eventually("the killed process reaped", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    })
    .await;
    assert_eq!(zombie_children(), 0);
    wd.stop().await.unwrap();
}
