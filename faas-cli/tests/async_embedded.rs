//! Asynchronous invocation through the real `faas up` with its default, embedded queue: nothing
//! accepted is lost when the process is killed with SIGKILL while its worker is busy, a function
//! that always fails ends `failed` after its attempts, and `faas invoke --async` queues a call.

mod async_support;
mod common;

use std::time::Duration;

use async_support::{Receiver, enqueue, report_duplicates};
use common::{Faas, READY, script};
use serde_json::{Value, json};

const CALLS: usize = 2000;

/// Polls `/system/invocations/{id}` until the call's status is final.
async fn finished(faas: &Faas, call_id: &str) -> Value {
    let deadline = std::time::Instant::now() + READY;
    loop {
        let response = faas
            .request(
                reqwest::Method::GET,
                &format!("/system/invocations/{call_id}"),
            )
            .send()
            .await
            .unwrap();
        if response.status().is_success() {
            let record: Value = response.json().await.unwrap();
            if ["succeeded", "failed", "cancelled"]
                .contains(&record["status"].as_str().unwrap_or_default())
            {
                return record;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "call {call_id} not finished: {record}"
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no record of call {call_id}; stderr:\n{}",
            faas.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_accepted_is_lost_when_faas_up_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let function_dir = tmp.path().join("slow");
    std::fs::create_dir_all(&function_dir).unwrap();
    // 20 ms per call: the worker is surely busy when the process is killed.
    script(&function_dir, "slow.sh", "sleep 0.02\ncat");
    let faas = Faas::start(&data, &["--queue-concurrency", "8"]);
    faas.deploy(json!({"service": "slow", "image": function_dir.to_str().unwrap(), "envProcess": "sh slow.sh"})).await;
    faas.wait_available("slow", 1).await;
    assert_eq!(faas.invoke_ok("slow", "warm").await, "warm");

    let receiver = Receiver::start().await;
    let (ids, refused) = enqueue(&faas.url, "slow", &receiver.url(), CALLS, 16).await;
    assert_eq!(refused, 0, "calls refused; stderr:\n{}", faas.stderr());
    assert_eq!(ids.len(), CALLS);

    let done = receiver.wait_at_least(100, READY).await;
    assert!(
        done >= 100,
        "no progress before the kill; stderr:\n{}",
        faas.stderr()
    );
    let pid = faas.pid();
    drop(faas); // SIGKILL, then wait
    let at_kill = receiver.distinct();
    eprintln!("killed faas up (pid {pid}) with SIGKILL after {at_kill} of {CALLS} callbacks");
    assert!(
        at_kill < CALLS,
        "the worker was not busy at the kill: the test proves nothing"
    );

    let faas = Faas::start(&data, &["--queue-concurrency", "32"]);
    let missing = receiver.wait_all(&ids, Duration::from_secs(300)).await;
    report_duplicates("embedded queue, faas up killed", &receiver, ids.len());
    assert!(
        missing.is_empty(),
        "{} accepted calls never called back, e.g. {:?}; stderr:\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        faas.stderr()
    );
    let seen = receiver.snapshot();
    for id in ids.iter().take(20) {
        assert_eq!(seen[id].status, "200");
        assert_eq!(seen[id].function, "slow");
    }
    let record = finished(&faas, &ids[CALLS - 1]).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert!(faas.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_failing_function_ends_failed_with_its_last_status() {
    let tmp = tempfile::tempdir().unwrap();
    let function_dir = tmp.path().join("broken");
    std::fs::create_dir_all(&function_dir).unwrap();
    script(&function_dir, "fail.sh", "echo failing >&2\nexit 3");
    let faas = Faas::start(
        &tmp.path().join("data"),
        &["--initial-retry-wait", "20ms", "--max-retry-wait", "100ms"],
    );
    faas.deploy(json!({
        "service": "broken",
        "image": function_dir.to_str().unwrap(),
        "envProcess": "sh fail.sh",
        "annotations": {"com.openfaas.retry.attempts": "3"}
    }))
    .await;
    faas.wait_available("broken", 1).await;
    let sync_status = common::http_client()
        .post(format!("{}/function/broken", faas.url))
        .send()
        .await
        .unwrap()
        .status();
    assert!(
        sync_status.is_server_error(),
        "a failing function answers 5xx, got {sync_status}"
    );

    let receiver = Receiver::start().await;
    let (ids, _) = enqueue(&faas.url, "broken", &receiver.url(), 1, 1).await;
    let record = finished(&faas, &ids[0]).await;
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(record["attempts"], 3, "{record}");
    assert_eq!(record["statusCode"], sync_status.as_u16(), "{record}");
    assert!(
        receiver.wait_all(&ids, READY).await.is_empty(),
        "no callback for the failed call"
    );
    assert_eq!(
        receiver.snapshot()[&ids[0]].status,
        sync_status.as_u16().to_string()
    );
    assert!(faas.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_async_prints_the_call_id_and_the_record_has_the_result() {
    let tmp = tempfile::tempdir().unwrap();
    let faas = Faas::start(&tmp.path().join("data"), &[]);
    faas.deploy(json!({"service": "echo", "image": "x", "envProcess": "cat"}))
        .await;
    faas.wait_available("echo", 1).await;
    let output = faas.cli(&["invoke", "echo", "--async", "--data", "queued hello"]);
    let call_id = common::ok(&output).trim().to_owned();
    assert_eq!(call_id.len(), 36, "a uuid on stdout, got {call_id:?}");
    let record = finished(&faas, &call_id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["result"]["body"], "queued hello");
    let listed = faas.get_json("/system/invocations?function=echo").await;
    assert_eq!(listed[0]["callId"], call_id.as_str());

    let output = faas.cli(&["invoke", "missing", "--async", "--data", "x"]);
    assert!(!output.status.success());
    assert!(
        common::stderr(&output).contains("not found"),
        "{}",
        common::stderr(&output)
    );
    assert!(faas.stop().success());
}
