//! The `typed-json` binary: JSON in, JSON out, serde's message on bad input.

use std::time::Duration;

use faas::testing::FunctionProcess;
use serde_json::{Value, json};

#[tokio::test]
async fn parses_events_and_answers_json() {
    let process = FunctionProcess::spawn(env!("CARGO_BIN_EXE_typed-json"), &[]).unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let order =
        json!({"items": [{"sku": "a", "price_cents": 250, "quantity": 2}], "coupon": "TENOFF"});

    let res = client
        .post(process.url("/"))
        .header("X-Call-Id", "c-9")
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"lines": 1, "total_cents": 450, "discounted": true, "call_id": "c-9"})
    );

    // Bad JSON: 400 with serde's message, as JSON.
    let res = client
        .post(process.url("/"))
        .body(r#"{"items": [{"sku": "a"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("missing field `price_cents`"), "{message}");

    let res = client
        .post(process.url("/"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // A handler error with its own status.
    let res = client
        .post(process.url("/"))
        .json(&json!({"items": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"error": "the order has no items"}));
}
