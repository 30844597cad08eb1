//! The real `fwatchdog` binary: signals, exit codes, the healthcheck subcommand and memory under
//! 100 MB streamed bodies (VmHWM from /proc).

mod common;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use nix::sys::signal::Signal;

const MB: usize = 1024 * 1024;

#[test]
fn configuration_errors_exit_1_with_one_line_naming_the_variable() {
    for (env, variable) in [
        (&[][..], "fprocess"),
        (&[("fprocess", "cat"), ("mode", "fast")][..], "mode"),
        (
            &[("fprocess", "cat"), ("worker_threads", "many")][..],
            "worker_threads",
        ),
        (
            &[("fprocess", "cat"), ("worker_threads", "0")][..],
            "worker_threads",
        ),
    ] {
        let mut cmd = Command::new(BIN);
        cmd.env_remove("fprocess")
            .env_remove("function_process")
            .env_remove("mode")
            .env_remove("worker_threads");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(variable), "{stderr}");
    }
}

/// The `Threads:` line of `/proc/<pid>/status`.
fn threads_of(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn runtime_threads_follow_the_mode_and_worker_threads() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "static").unwrap();
    let static_path = dir.path().display().to_string();
    // (mode, worker_threads, threads of the process: main plus the workers)
    for (mode, threads, expected) in [
        ("streaming", None, 1 + cores),
        ("streaming", Some("1"), 1),
        ("streaming", Some("3"), 4),
        ("static", None, 1),
    ] {
        let mut env = vec![
            ("fprocess", "cat"),
            ("mode", mode),
            ("static_path", static_path.as_str()),
        ];
        if let Some(threads) = threads {
            env.push(("worker_threads", threads));
        }
        let wd = Binary::start(&env);
        if mode == "streaming" {
            let uri: http::Uri = format!("http://127.0.0.1:{}/", wd.port).parse().unwrap();
            assert_eq!(
                post(uri, "threads").await.text(),
                "threads",
                "{mode} {threads:?}"
            );
        }
        assert_eq!(
            threads_of(wd.child.id()),
            expected,
            "mode {mode}, worker_threads={threads:?}"
        );
        drop(wd);
    }
}

#[tokio::test]
async fn healthcheck_subcommand_exits_0_when_healthy_and_1_otherwise() {
    let wd = Binary::start(&[("fprocess", "cat")]);
    let check = |port: u16| {
        Command::new(BIN)
            .arg("healthcheck")
            .env("port", port.to_string())
            .output()
            .unwrap()
    };
    let out = tokio::task::spawn_blocking(move || check(wd.port))
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing listens on the reserved-then-released port.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tokio::task::spawn_blocking(move || check(free))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    drop(wd);
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    // The function finishes only when the test says so: no timing assumptions.
    let slow = script(
        dir.path(),
        "slow.sh",
        &format!(
            "i=0; while [ ! -e {} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; echo done",
            go.display()
        ),
    );
    let fprocess = format!("sh {}", slow.display());
    let mut wd = Binary::start(&[("fprocess", fprocess.as_str()), ("write_timeout", "30s")]);
    let metrics = format!("http://127.0.0.1:{}/metrics", wd.metrics_port.unwrap());

    let in_flight = tokio::spawn(post(wd.url("/"), ""));
    let mut seen = false;
    for _ in 0..400 {
        if get(metrics.parse().unwrap())
            .await
            .text()
            .contains("http_requests_in_flight 1")
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen, "request never in flight");
    wd.signal(Signal::SIGTERM);

    // Draining: new connections are refused while the request is still running.
    let port = wd.port;
    let mut refused = false;
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "still accepting after SIGTERM");
    assert!(
        !in_flight.is_finished(),
        "the in-flight request cannot have finished yet"
    );

    std::fs::write(&go, "").unwrap();
    let answer = tokio::time::timeout(LONG, in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "done\n");
    let (status, wd) = tokio::task::spawn_blocking(move || (wd.wait(), wd))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{}", wd.stderr_text());
}

#[tokio::test]
async fn http_mode_upstream_crash_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let crash = script(dir.path(), "crash.sh", "echo booting; sleep 0.5; exit 7");
    let fprocess = format!("sh {}", crash.display());
    let up = upstream().await;
    let url = up.url();
    let mut wd = Binary::start(&[
        ("fprocess", fprocess.as_str()),
        ("mode", "http"),
        ("upstream_url", url.as_str()),
    ]);
    let (status, wd) = tokio::task::spawn_blocking(move || (wd.wait(), wd))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let stderr = wd.stderr_text();
    assert!(stderr.contains("function process exited"), "{stderr}");
    assert!(
        stderr.contains("stdout: booting"),
        "function output is logged with a prefix: {stderr}"
    );
}

/// Sends `total` bytes in 64 KiB chunks and counts the bytes of the answer.
async fn stream_through(uri: http::Uri, total: usize) -> usize {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    tokio::spawn(async move {
        let chunk = Bytes::from(vec![b'z'; 64 * 1024]);
        let mut sent = 0;
        while sent < total {
            let n = chunk.len().min(total - sent);
            if tx.send(Ok(Frame::data(chunk.slice(..n)))).await.is_err() {
                return;
            }
            sent += n;
        }
    });
    let body = StreamBody::new(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let resp = client
        .request(Request::post(uri).body(body).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut received = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            received += data.len();
        }
    }
    received
}

async fn assert_streams_100mb_in_bounded_memory(wd: &Binary) {
    // Warm up (runtime, buffers, pools), then measure the peak growth over 100 MB.
    let warm = stream_through(wd.url("/"), MB).await;
    assert_eq!(warm, MB);
    let before = vm_hwm_kb(wd.pid());
    let received = tokio::time::timeout(
        Duration::from_secs(120),
        stream_through(wd.url("/"), 100 * MB),
    )
    .await
    .unwrap();
    assert_eq!(received, 100 * MB);
    let after = vm_hwm_kb(wd.pid());
    eprintln!("VmHWM before {before} kB, after 100 MB {after} kB");
    assert!(
        after - before < 8 * 1024,
        "watchdog peak memory grew by {} kB",
        after - before
    );
}

#[tokio::test]
async fn streaming_mode_streams_100mb_without_growing() {
    let wd = Binary::start(&[
        ("fprocess", "cat"),
        ("mode", "streaming"),
        ("exec_timeout", "120s"),
        ("read_timeout", "120s"),
        ("write_timeout", "120s"),
    ]);
    assert_streams_100mb_in_bounded_memory(&wd).await;
}

#[tokio::test]
async fn http_mode_streams_100mb_without_growing() {
    let up = upstream().await;
    let url = up.url();
    let wd = Binary::start(&[
        ("fprocess", "sleep 600"),
        ("mode", "http"),
        ("upstream_url", url.as_str()),
        ("exec_timeout", "120s"),
        ("read_timeout", "120s"),
        ("write_timeout", "120s"),
    ]);
    for _ in 0..400 {
        if get(wd.url("/_/health")).await.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_streams_100mb_in_bounded_memory(&wd).await;
}

#[tokio::test]
async fn killed_watchdog_takes_its_function_processes_along() {
    let dir = tempfile::tempdir().unwrap();
    let sleep = tool_copy(dir.path(), "sleep", "zzsleep_orphan");
    let fprocess = format!("{} 300", sleep.display());
    let up = upstream().await;
    let url = up.url();
    let mut wd = Binary::start(&[
        ("fprocess", fprocess.as_str()),
        ("mode", "http"),
        ("upstream_url", url.as_str()),
    ]);
    eventually("function process started", || {
        processes_named("zzsleep_orphan").0 == 1
    })
    .await;
    wd.signal(Signal::SIGKILL);
    let _ = tokio::task::spawn_blocking(move || wd.wait())
        .await
        .unwrap();
    eventually("function process killed with its watchdog", || {
        processes_named("zzsleep_orphan").0 == 0
    })
    .await;
}
