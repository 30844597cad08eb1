//! The `with-secret` binary reading its secret from `$secret_mount_path`.

use std::time::Duration;

use faas::testing::FunctionProcess;
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test]
async fn authorizes_with_the_mounted_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api-key"), "s3cret\n").unwrap();
    let secrets = dir.path().to_str().unwrap();
    let env = [
        ("secret_mount_path", secrets),
        ("OPENFAAS_NAME", "with-secret"),
    ];
    let process = FunctionProcess::spawn(env!("CARGO_BIN_EXE_with-secret"), &env).unwrap();

    let res = client()
        .get(process.url("/"))
        .header("X-Api-Key", "s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"authorized": true, "function": "with-secret", "namespace": "openfaas-fn"})
    );

    let res = client()
        .get(process.url("/"))
        .header("X-Api-Key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn a_missing_secret_is_a_clear_500() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().to_str().unwrap();
    let process = FunctionProcess::spawn(
        env!("CARGO_BIN_EXE_with-secret"),
        &[("secret_mount_path", secrets)],
    )
    .unwrap();

    let res = client()
        .get(process.url("/"))
        .header("X-Call-Id", "c-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let body: Value = res.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(
        message.starts_with("secret \"api-key\" not found at "),
        "{message}"
    );
    assert!(message.contains(secrets), "{message}");

    // The error is logged on stderr with the call id; give the reader thread a moment.
    let mut logged = false;
    for _ in 0..200 {
        logged = process
            .stderr()
            .iter()
            .any(|line| line.contains("call c-1: 500 secret \"api-key\" not found"));
        if logged {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(logged, "stderr: {:?}", process.stderr());
}
