//! End to end: a function built with faas-sdk (`examples/hello`) deployed by `faas up` on the local
//! provider — the binary as `envProcess` behind the watchdog in `http` mode — and invoked through
//! the gateway.
//!
//! The test needs the `hello` binary: under `cargo nextest` (which releases the build lock while
//! tests run) it builds it with `cargo build -p hello`; under `cargo test`, build it first.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Faas, READY, http_client, repo_root};
use reqwest::Method;
use serde_json::json;

/// The path of the `hello` example binary, built now when the build lock is free.
fn hello_binary() -> PathBuf {
    let faas = PathBuf::from(common::FAAS);
    let binary = faas.with_file_name("hello");
    if std::env::var_os("NEXTEST").is_some() {
        let mut child = Command::new(env!("CARGO"))
            .args(["build", "-p", "hello"])
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .spawn()
            .expect("run cargo build -p hello");
        let deadline = Instant::now() + Duration::from_secs(900);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("cargo build -p hello did not finish in 15 minutes");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(status.success(), "cargo build -p hello failed: {status}");
    }
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build -p hello` first (or run the tests with cargo nextest)",
        binary.display()
    );
    binary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sdk_function_deployed_by_faas_up_answers_through_the_gateway() {
    let hello = hello_binary();
    let tmp = tempfile::tempdir().unwrap();
    let faas = Faas::start(&tmp.path().join("data"), &[]);

    faas.deploy(json!({
        "service": "sdk-hello",
        "image": "faas-rs/sdk-hello",
        "envProcess": hello.to_str().unwrap(),
        // The watchdog's http mode: the local provider gives the function its own loopback port
        // as PORT and proxies to it; the SDK binary serves that port itself.
        "envVars": {"mode": "http", "bind_address": "127.0.0.1", "exec_timeout": "5s"}
    }))
    .await;
    let status = faas.wait_available("sdk-hello", 1).await;
    assert_eq!(status["envProcess"], hello.to_str().unwrap());

    assert_eq!(faas.invoke_ok("sdk-hello", "").await, "Hello, world!");
    assert_eq!(
        faas.invoke_ok("sdk-hello?name=gateway", "").await,
        "Hello, gateway!"
    );

    // A plain GET with a call id, through the gateway, with the function's own headers intact.
    let response = http_client()
        .get(format!("{}/function/sdk-hello/any/path?name=get", faas.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert!(
        response.headers().contains_key("x-call-id"),
        "{:?}",
        response.headers()
    );
    assert_eq!(response.text().await.unwrap(), "Hello, get!");

    // Removing the function stops its replica; the gateway then answers 404.
    let response = faas
        .request(Method::DELETE, "/system/functions")
        .json(&json!({"functionName": "sdk-hello"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let deadline = Instant::now() + READY;
    loop {
        let response = http_client()
            .get(format!("{}/function/sdk-hello", faas.url))
            .send()
            .await
            .unwrap();
        if response.status() == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sdk-hello still answers {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(faas.stop().success());
}
