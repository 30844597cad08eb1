//! Asynchronous invocation with the NATS JetStream queue and the real `faas` binary: the gateway
//! (`faas up --queue nats://... --no-queue-worker`) accepts 2,000 calls, a separate
//! `faas queue-worker` is killed with SIGKILL mid-flight, a new one takes over, and every accepted
//! call reaches its callback; the same with `faas up --queue nats://...` itself (gateway and worker)
//! killed and restarted. Needs `scripts/nats.sh start` (or `FAAS_TEST_NATS_URL`).

mod async_support;
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_support::{Receiver, enqueue, report_duplicates};
use common::{FAAS, Faas, READY, repo_root, script};
use faas_queue_nats::{NatsInvocationStore, NatsQueue, NatsQueueConfig};
use serde_json::json;

const CALLS: usize = 2000;

fn nats_url() -> String {
    std::env::var("FAAS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A `faas queue-worker` process, killed with SIGKILL when dropped.
struct Worker {
    child: Child,
}

impl Worker {
    fn start(gateway: &str, stream: &str, log: &std::path::Path) -> Worker {
        let mut child = Command::new(FAAS)
            .args([
                "queue-worker",
                "--gateway",
                gateway,
                "--queue",
                &nats_url(),
                "--nats-stream",
                stream,
            ])
            .args(["--queue-ack-wait", "3s", "--queue-concurrency", "8"])
            .current_dir(repo_root())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start faas queue-worker");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        match rx.recv_timeout(READY) {
            Ok(line) if line.contains("queue worker running") => {}
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "faas queue-worker did not start ({other:?}); stderr:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Worker { child }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn nothing_accepted_is_lost_when_a_nats_worker_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let stream = format!("FAAS_E2E_{}", std::process::id());
    let function_dir = tmp.path().join("slow");
    std::fs::create_dir_all(&function_dir).unwrap();
    script(&function_dir, "slow.sh", "sleep 0.02\ncat");
    let faas = Faas::start(
        &tmp.path().join("data"),
        &[
            "--queue",
            &nats_url(),
            "--nats-stream",
            &stream,
            "--queue-ack-wait",
            "3s",
            "--no-queue-worker",
        ],
    );
    faas.deploy(json!({"service": "slow", "image": function_dir.to_str().unwrap(), "envProcess": "sh slow.sh"})).await;
    faas.wait_available("slow", 1).await;

    let receiver = Receiver::start().await;
    let (ids, refused) = enqueue(&faas.url, "slow", &receiver.url(), CALLS, 16).await;
    assert_eq!(refused, 0, "calls refused; stderr:\n{}", faas.stderr());
    assert_eq!(ids.len(), CALLS);

    let worker_log = tmp.path().join("worker1.log");
    let worker = Worker::start(&faas.url, &stream, &worker_log);
    let done = receiver.wait_at_least(100, READY).await;
    assert!(
        done >= 100,
        "no progress; worker stderr:\n{}",
        std::fs::read_to_string(&worker_log).unwrap_or_default()
    );
    drop(worker); // SIGKILL mid-flight
    let at_kill = receiver.distinct();
    eprintln!("killed the nats queue worker with SIGKILL after {at_kill} of {CALLS} callbacks");
    assert!(
        at_kill < CALLS,
        "the worker was not busy at the kill: the test proves nothing"
    );

    let started = Instant::now();
    let worker_log = tmp.path().join("worker2.log");
    let worker = Worker::start(&faas.url, &stream, &worker_log);
    let missing = receiver.wait_all(&ids, Duration::from_secs(300)).await;
    report_duplicates("nats queue, worker killed", &receiver, ids.len());
    eprintln!(
        "the second worker finished in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        missing.is_empty(),
        "{} accepted calls never called back, e.g. {:?}; worker stderr:\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        std::fs::read_to_string(&worker_log).unwrap_or_default()
    );
    // The gateway answers for calls the separate worker ran: the records live in JetStream.
    let record = faas
        .get_json(&format!("/system/invocations/{}", ids[CALLS - 1]))
        .await;
    assert_eq!(record["status"], "succeeded", "{record}");
    drop(worker);
    assert!(faas.stop().success());
    destroy(&stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn nothing_accepted_is_lost_when_faas_up_with_nats_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let stream = format!("FAAS_E2E_KILL_{}", std::process::id());
    let function_dir = tmp.path().join("slow");
    std::fs::create_dir_all(&function_dir).unwrap();
    // 20 ms per call: the worker inside `faas up` is surely busy when the process is killed.
    script(&function_dir, "slow.sh", "sleep 0.02\ncat");
    let args = [
        "--queue",
        &nats_url(),
        "--nats-stream",
        &stream,
        "--queue-ack-wait",
        "3s",
        "--queue-concurrency",
        "8",
    ];
    let faas = Faas::start(&data, &args);
    faas.deploy(json!({"service": "slow", "image": function_dir.to_str().unwrap(), "envProcess": "sh slow.sh"})).await;
    faas.wait_available("slow", 1).await;

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
    drop(faas); // SIGKILL: gateway and its queue worker at once
    let at_kill = receiver.distinct();
    eprintln!(
        "killed faas up --queue nats (pid {pid}) with SIGKILL after {at_kill} of {CALLS} callbacks"
    );
    assert!(
        at_kill < CALLS,
        "the worker was not busy at the kill: the test proves nothing"
    );

    // The same data dir brings the function back; the stream still holds the calls.
    let faas = Faas::start(&data, &args);
    let missing = receiver.wait_all(&ids, Duration::from_secs(300)).await;
    report_duplicates("nats queue, faas up killed", &receiver, ids.len());
    assert!(
        missing.is_empty(),
        "{} accepted calls never called back, e.g. {:?}; stderr:\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        faas.stderr()
    );
    let seen = receiver.snapshot();
    assert!(ids.iter().all(|id| seen[id].status == "200"));
    let last = format!("/system/invocations/{}", ids[CALLS - 1]);
    let deadline = Instant::now() + READY;
    let record = loop {
        let record = faas.get_json(&last).await;
        if record["status"] == "succeeded" || Instant::now() > deadline {
            break record;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(record["status"], "succeeded", "{record}");
    assert!(faas.stop().success());
    destroy(&stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn faas_up_with_nats_runs_calls_and_records_them() {
    let tmp = tempfile::tempdir().unwrap();
    let stream = format!("FAAS_E2E_UP_{}", std::process::id());
    let faas = Faas::start(
        &tmp.path().join("data"),
        &["--queue", &nats_url(), "--nats-stream", &stream],
    );
    faas.deploy(json!({"service": "echo", "image": "x", "envProcess": "cat"}))
        .await;
    faas.wait_available("echo", 1).await;
    let receiver = Receiver::start().await;
    let (ids, refused) = enqueue(&faas.url, "echo", &receiver.url(), 50, 8).await;
    assert_eq!((ids.len(), refused), (50, 0));
    assert!(
        receiver.wait_all(&ids, READY).await.is_empty(),
        "stderr:\n{}",
        faas.stderr()
    );
    let seen = receiver.snapshot();
    assert!(ids.iter().all(|id| seen[id].status == "200"));
    assert!(seen.values().any(|s| s.body.starts_with(b"call ")));
    let record = faas
        .get_json(&format!("/system/invocations/{}", ids[0]))
        .await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert!(faas.stop().success());
    destroy(&stream).await;
}

/// Deletes the test's streams.
async fn destroy(stream: &str) {
    let queue = NatsQueue::connect(NatsQueueConfig::new(nats_url()).with_stream(stream))
        .await
        .unwrap();
    let records = NatsInvocationStore::open(&queue, Duration::from_secs(60))
        .await
        .unwrap();
    records.destroy().await.unwrap();
    queue.destroy().await.unwrap();
}
