//! The `axum-router` binary: an axum Router served by `faas::run`.

use std::time::Duration;

use faas::testing::FunctionProcess;
use serde_json::{Value, json};

#[tokio::test]
async fn routes_real_requests() {
    let process = FunctionProcess::spawn(env!("CARGO_BIN_EXE_axum-router"), &[]).unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let res = client.get(process.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "axum on faas-rs");

    let res = client.get(process.url("/users/7")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-duration-seconds"));
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"id": 7, "name": "user-7"})
    );

    let res = client
        .post(process.url("/echo"))
        .json(&json!([1, 2]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"echo": [1, 2]}));

    let res = client.get(process.url("/users/0")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = client.get(process.url("/_/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// Whether the process prints a line containing `text` within 10 seconds.
async fn stderr_has(process: &FunctionProcess, text: &str) -> bool {
    for _ in 0..200 {
        if process.stderr().iter().any(|line| line.contains(text)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn exec_timeout_answers_504() {
    let process =
        FunctionProcess::spawn(env!("CARGO_BIN_EXE_axum-router"), &[("exec_timeout", "1s")])
            .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let res = client
        .get(process.url("/sleep/20000"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 504);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("function timed out after"),
        "{body}"
    );
    // X-Timeout shortens the deadline for one call.
    let res = client
        .get(process.url("/sleep/20000"))
        .header("X-Timeout", "100ms")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 504);
}

#[tokio::test]
async fn sigterm_drains_the_in_flight_request() {
    let mut process = FunctionProcess::spawn(
        env!("CARGO_BIN_EXE_axum-router"),
        &[("write_timeout", "30s")],
    )
    .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = process.url("/sleep/1500");
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.get(url).send().await }
    });
    assert!(
        stderr_has(&process, "sleeping 1500 ms").await,
        "stderr: {:?}",
        process.stderr()
    );

    process.terminate().unwrap();
    let res = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "slept 1500 ms");

    let status = process.wait_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(
        status.map(|s| s.success()),
        Some(true),
        "stderr: {:?}",
        process.stderr()
    );
    // Once drained, the function no longer accepts connections.
    assert!(client.get(process.url("/")).send().await.is_err());
}
