//! Every mode against real processes and a real HTTP client.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use faas_watchdog::{Error, LogStream};
use http::Request;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;

#[tokio::test]
async fn classic_maps_request_to_http_env_as_the_classic_watchdog() {
    let wd = start(&[("fprocess", "env"), ("MY_SETTING", "from-function-env")]).await;
    let req = Request::post(wd.url("/some/path?a=1&b=two"))
        .header("Content-Type", "text/plain")
        .header("X-Call-Id", "call-123")
        .header("X-Custom-Header", "custom")
        .body(Full::new(Bytes::from_static(b"body")))
        .unwrap();
    let answer = send(req).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let env = answer.text();
    for expected in [
        "Http_Method=POST",
        "Http_Path=/some/path",
        "Http_Query=a=1&b=two",
        "Http_Content_Type=text/plain",
        "Http_X_Call_Id=call-123",
        "Http_X_Custom_Header=custom",
        "Http_Content_Length=4",
        "Http_ContentLength=4",
        "MY_SETTING=from-function-env",
    ] {
        assert!(
            env.lines().any(|l| l == expected),
            "missing {expected} in:\n{env}"
        );
    }
    assert!(
        env.lines().any(|l| l.starts_with("Http_Host=127.0.0.1:")),
        "{env}"
    );
    // The classic watchdog echoes the request's content type; the call id is passed through.
    assert_eq!(answer.header("content-type"), Some("text/plain"));
    assert_eq!(answer.header("x-call-id"), Some("call-123"));
    let secs: f64 = answer
        .header("x-duration-seconds")
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs >= 0.0);
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn classic_combines_output_and_fails_with_500() {
    let dir = tempfile::tempdir().unwrap();
    let ok = script(dir.path(), "ok.sh", "cat; echo to-stderr >&2");
    let fprocess = format!("sh {}", ok.display());
    let wd = start(&[("fprocess", fprocess.as_str())]).await;
    let answer = post(wd.url("/"), "input\n").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "input\nto-stderr\n");
    wd.stop().await.unwrap();

    // combine_output=false: stderr goes to the logs, not the response.
    let sink = Arc::new(Collect::default());
    let config = vars(&[("fprocess", fprocess.as_str()), ("combine_output", "false")])
        .with_log_sink(sink.clone());
    let wd = start_config(config).await;
    let answer = post(wd.url("/"), "input\n").await;
    assert_eq!(answer.text(), "input\n");
    eventually("stderr line in the log sink", || {
        sink.lines()
            .contains(&(LogStream::Stderr, "to-stderr".to_owned()))
    })
    .await;
    wd.stop().await.unwrap();

    let failing = script(dir.path(), "fail.sh", "echo partial; exit 3");
    let fprocess = format!("sh {}", failing.display());
    let wd = start(&[("fprocess", fprocess.as_str())]).await;
    let answer = post(wd.url("/"), "").await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.text(), "exit status 3\npartial\n");
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn a_quoted_fprocess_runs_a_shell_pipeline() {
    let wd = start(&[("fprocess", r#"sh -c 'tr a-z A-Z | wc -c'"#)]).await;
    let answer = post(wd.url("/"), "hello\n").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text().trim(), "6");
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn classic_marshal_request_and_content_type_override() {
    let wd = start(&[
        ("fprocess", "cat"),
        ("marshal_request", "true"),
        ("content_type", "application/json"),
    ])
    .await;
    let req = Request::post(wd.url("/"))
        .header("Content-Type", "text/plain")
        .body(Full::new(Bytes::from_static(b"hi")))
        .unwrap();
    let answer = send(req).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let doc = answer.text();
    assert!(doc.contains(r#""Content-Type":["text/plain"]"#), "{doc}");
    assert!(doc.ends_with(r#""body":{"raw":"aGk="}}"#), "{doc}");
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn fork_modes_work_with_and_without_the_parent_death_signal() {
    // Without it (the default) std spawns with posix_spawn; with it, with fork and a pre_exec hook.
    for die in ["false", "true"] {
        for mode in ["", "serializing", "streaming"] {
            let wd = start(&[
                ("fprocess", "cat"),
                ("mode", mode),
                ("die_with_watchdog", die),
            ])
            .await;
            assert_eq!(
                post(wd.url("/"), "spawned").await.text(),
                "spawned",
                "mode {mode:?}, die_with_watchdog={die}"
            );
            wd.stop().await.unwrap();
        }
    }
}

#[tokio::test]
async fn fork_modes_find_the_program_in_the_function_path() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let function = script(&bin, "my-function", "echo from-my-function\ncat");
    std::fs::set_permissions(
        &function,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    for mode in ["", "serializing", "streaming"] {
        let wd = start(&[
            ("fprocess", "my-function"),
            ("mode", mode),
            ("PATH", path.as_str()),
        ])
        .await;
        let answer = post(wd.url("/"), "input").await;
        assert_eq!(answer.status, 200, "mode {mode:?}: {}", answer.text());
        assert_eq!(answer.text(), "from-my-function\ninput", "mode {mode:?}");
        wd.stop().await.unwrap();
    }
    // Not in PATH: a clear 500 from the watchdog, as before.
    let wd = start(&[("fprocess", "no-such-function-program")]).await;
    let answer = post(wd.url("/"), "x").await;
    assert_eq!(answer.status, 500);
    assert!(answer.is_internal());
    assert!(
        answer.text().contains("no-such-function-program"),
        "{}",
        answer.text()
    );
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn serializing_mode_buffers_stdout_with_of_watchdog_defaults() {
    let wd = start(&[("fprocess", "wc -c"), ("mode", "serializing")]).await;
    let answer = post(wd.url("/"), "12345").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text().trim(), "5");
    assert_eq!(
        answer.header("content-type"),
        Some("application/octet-stream")
    );
    wd.stop().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let failing = script(dir.path(), "fail.sh", "echo oops >&2; exit 2");
    let fprocess = format!("sh {}", failing.display());
    let wd = start(&[("fprocess", fprocess.as_str()), ("mode", "serializing")]).await;
    let answer = post(wd.url("/"), "").await;
    assert_eq!(answer.status, 500);
    assert!(
        answer.text().starts_with("exit status 2"),
        "{}",
        answer.text()
    );
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn streaming_mode_streams_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    // Answers before its input is complete: only possible if both directions stream.
    let chat = script(
        dir.path(),
        "chat.sh",
        "echo ready; read line; echo \"got $line\"",
    );
    let fprocess = format!("sh {}", chat.display());
    let wd = start(&[("fprocess", fprocess.as_str()), ("mode", "streaming")]).await;

    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    let mut rx = rx;
    let body = StreamBody::new(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let req = Request::post(wd.url("/")).body(body).unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let resp = tokio::time::timeout(LONG, client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    let mut body = resp.into_body();
    let first = tokio::time::timeout(LONG, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(&first[..], b"ready\n");
    tx.send(Ok(Frame::data(Bytes::from_static(b"hello\n"))))
        .await
        .unwrap();
    drop(tx);
    let rest = tokio::time::timeout(LONG, body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(&rest[..], b"got hello\n");
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn streaming_mode_exit_codes() {
    let wd = start(&[("fprocess", "false"), ("mode", "streaming")]).await;
    let answer = post(wd.url("/"), "").await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.text(), "exit status 1\n");
    wd.stop().await.unwrap();
    let wd = start(&[("fprocess", "true"), ("mode", "streaming")]).await;
    let answer = post(wd.url("/"), "").await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_empty());
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn http_mode_proxies_with_keep_alive_and_passes_headers() {
    let up = upstream().await;
    let url = up.url();
    let wd = start(&[
        ("fprocess", "sleep 300"),
        ("mode", "http"),
        ("upstream_url", url.as_str()),
    ])
    .await;
    let client = client();
    for i in 0..5 {
        let req = Request::put(wd.url(&format!("/p/{i}?q={i}")))
            .header("X-Call-Id", format!("id-{i}"))
            .header("Host", "my-function")
            .body(Full::new(Bytes::from(format!("payload {i}"))))
            .unwrap();
        let resp = tokio::time::timeout(LONG, client.request(req))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resp.status(), 200);
        let h = resp.headers().clone();
        assert_eq!(h["x-echo-method"], "PUT");
        assert_eq!(h["x-echo-path"], format!("/p/{i}"));
        assert_eq!(h["x-echo-query"], format!("q={i}"));
        assert_eq!(h["x-echo-call-id"], format!("id-{i}"));
        assert_eq!(h["x-echo-host"], "my-function");
        assert_eq!(h["x-call-id"], format!("id-{i}"));
        assert!(h.contains_key("x-duration-seconds"));
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, Bytes::from(format!("payload {i}")));
    }
    // The function's own errors are not the watchdog's.
    let answer = get(wd.url("/fail")).await;
    assert_eq!(answer.status, 500);
    assert!(!answer.is_internal());
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn http_mode_timeouts_give_504_and_x_timeout_is_honoured() {
    let up = upstream().await;
    let url = up.url();
    let wd = start(&[
        ("fprocess", "sleep 300"),
        ("mode", "http"),
        ("upstream_url", url.as_str()),
        ("exec_timeout", "60s"),
    ])
    .await;
    let req = Request::get(wd.url("/slow"))
        .header("X-Timeout", "200ms")
        .body(Full::default())
        .unwrap();
    let answer = send(req).await;
    assert_eq!(answer.status, 504);
    assert!(answer.is_internal());
    assert_eq!(answer.text().lines().count(), 1);
    wd.stop().await.unwrap();

    let wd = start(&[
        ("fprocess", "sleep 300"),
        ("mode", "http"),
        ("upstream_url", url.as_str()),
        ("exec_timeout", "300ms"),
    ])
    .await;
    let answer = get(wd.url("/slow")).await;
    assert_eq!(answer.status, 504);
    assert!(answer.is_internal());
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn http_mode_holds_requests_until_the_upstream_accepts() {
    // Reserve a port, start the watchdog against it, and only then start the upstream.
    let reserved = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let url = format!("http://{addr}");
    let wd = start(&[
        ("fprocess", "sleep 300"),
        ("mode", "http"),
        ("upstream_url", url.as_str()),
        ("exec_timeout", "20s"),
    ])
    .await;
    assert_eq!(get(wd.url("/_/health")).await.status, 503);
    assert_eq!(get(wd.url("/_/ready")).await.status, 503);
    let pending = tokio::spawn(post(wd.url("/held"), "held body"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !pending.is_finished(),
        "request must be held, not failed, while the function boots"
    );
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let _up = upstream_on(listener, Arc::new(AtomicReady::default())).await;
    let answer = tokio::time::timeout(LONG, pending).await.unwrap().unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), "held body");
    assert_eq!(get(wd.url("/_/health")).await.status, 200);
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn http_mode_unreachable_upstream_gives_502() {
    let up = upstream().await;
    let url = up.url();
    let wd = start(&[
        ("fprocess", "sleep 300"),
        ("mode", "http"),
        ("upstream_url", url.as_str()),
    ])
    .await;
    eventually("ready", || wd.health.is_ready()).await;
    let upstream_addr = up.addr;
    drop(up);
    // Wait until the aborted upstream's listener is closed.
    let mut closed = false;
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(upstream_addr).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed, "upstream still listening");
    let answer = send(
        Request::get(wd.url("/"))
            .header("Connection", "close")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 502, "{}", answer.text());
    assert!(answer.is_internal());
    assert_eq!(answer.text().lines().count(), 1);
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn http_mode_upstream_exit_stops_the_watchdog_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let crash = script(dir.path(), "crash.sh", "sleep 0.3; exit 4");
    let fprocess = format!("sh {}", crash.display());
    let up = upstream().await;
    let url = up.url();
    let wd = start(&[
        ("fprocess", fprocess.as_str()),
        ("mode", "http"),
        ("upstream_url", url.as_str()),
    ])
    .await;
    let result = tokio::time::timeout(LONG, wd.task).await.unwrap().unwrap();
    match result {
        Err(Error::UpstreamExited { status }) => assert_eq!(status.code(), Some(4)),
        other => panic!("expected UpstreamExited, got {other:?}"),
    }
}

#[tokio::test]
async fn http_mode_logs_the_function_stdout_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let talk = script(
        dir.path(),
        "talk.sh",
        "echo out-line; echo err-line >&2; exec sleep 300",
    );
    let fprocess = format!("sh {}", talk.display());
    let up = upstream().await;
    let url = up.url();
    let sink = Arc::new(Collect::default());
    let config = vars(&[
        ("fprocess", fprocess.as_str()),
        ("mode", "http"),
        ("upstream_url", url.as_str()),
    ])
    .with_log_sink(sink.clone());
    let wd = start_config(config).await;
    eventually("both lines logged", || {
        let lines = sink.lines();
        lines.contains(&(LogStream::Stdout, "out-line".to_owned()))
            && lines.contains(&(LogStream::Stderr, "err-line".to_owned()))
    })
    .await;
    wd.stop().await.unwrap();
}

#[tokio::test]
async fn static_mode_serves_files_under_static_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<h1>hi</h1>").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/data.txt"), "data").unwrap();
    let root = dir.path().display().to_string();
    let wd = start(&[("mode", "static"), ("static_path", root.as_str())]).await;
    let index = get(wd.url("/")).await;
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<h1>hi</h1>");
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let data = get(wd.url("/sub/data.txt")).await;
    assert_eq!(data.text(), "data");
    assert_eq!(
        data.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(get(wd.url("/missing")).await.status, 404);
    assert_eq!(get(wd.url("/sub/..%2f..%2fetc/passwd")).await.status, 404);
    assert_eq!(post(wd.url("/"), "x").await.status, 405);
    wd.stop().await.unwrap();
}
