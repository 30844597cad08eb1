//! The `hello` binary answering real requests, and draining in-flight requests on SIGTERM.

use std::time::Duration;

use faas::testing::FunctionProcess;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test]
async fn answers_requests_and_the_health_contract() {
    let process = FunctionProcess::spawn(env!("CARGO_BIN_EXE_hello"), &[]).unwrap();
    let client = client();

    let res = client.get(process.url("/?name=faas")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert!(res.headers().contains_key("x-duration-seconds"));
    assert_eq!(res.text().await.unwrap(), "Hello, faas!");

    let res = client
        .post(process.url("/"))
        .header("X-Call-Id", "call-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-call-id"], "call-42");
    assert_eq!(res.text().await.unwrap(), "Hello, world!");

    for path in ["/_/health", "/_/ready"] {
        let res = client.get(process.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn sigterm_stops_the_process_cleanly() {
    let mut process = FunctionProcess::spawn(env!("CARGO_BIN_EXE_hello"), &[]).unwrap();
    let res = client().get(process.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    process.terminate().unwrap();
    let status = process.wait_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(
        status.map(|s| s.success()),
        Some(true),
        "stderr: {:?}",
        process.stderr()
    );
}
