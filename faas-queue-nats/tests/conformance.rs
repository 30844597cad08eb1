//! The Queue conformance suite against a real NATS JetStream server: start one with
//! `scripts/nats.sh start` (127.0.0.1:4222, or set `FAAS_TEST_NATS_URL`), then
//! `cargo test -p faas-queue-nats -- --ignored`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use faas_core::queue::records::{
    Durability, InvocationRecord, InvocationStatus, InvocationStore, ListQuery,
};
use faas_core::queue::{Queue, QueuedRequest};
use faas_queue_nats::{NatsInvocationStore, NatsQueue, NatsQueueConfig};
use futures::StreamExt;

fn url() -> String {
    std::env::var("FAAS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

fn unique_stream() -> String {
    format!("FAAS_TEST_{}", uuid::Uuid::new_v4().simple())
}

async fn queue(ack_wait: Duration) -> NatsQueue {
    let config = NatsQueueConfig::new(url())
        .with_stream(unique_stream())
        .with_ack_wait(ack_wait);
    NatsQueue::connect(config)
        .await
        .expect("nats-server with JetStream (scripts/nats.sh start)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn nats_queue_conforms() {
    let ack_wait = Duration::from_secs(1);
    let created: Arc<Mutex<Vec<NatsQueue>>> = Arc::default();
    let made = created.clone();
    faas_core::testing::queue::conformance(ack_wait, move || {
        let made = made.clone();
        async move {
            let q = queue(ack_wait).await;
            made.lock().unwrap().push(q.clone());
            Arc::new(q) as Arc<dyn Queue>
        }
    })
    .await;
    let queues = std::mem::take(&mut *created.lock().unwrap());
    for q in queues {
        q.destroy().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn a_50_mib_body_goes_through_the_object_store() {
    let q = queue(Duration::from_secs(30)).await;
    let body: Vec<u8> = (0..50 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    let request = QueuedRequest::new("big", "openfaas-fn").with_body(body);
    q.publish(request.clone()).await.unwrap();
    let mut deliveries = q.consume().await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(60), deliveries.next())
        .await
        .expect("delivered within 60s")
        .unwrap()
        .unwrap();
    assert!(
        delivery.request == request,
        "the 50 MiB body changed in the queue"
    );
    delivery.ack().await.unwrap();
    drop(deliveries);
    q.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn calls_survive_a_new_connection_and_consumer() {
    let stream = unique_stream();
    let config = NatsQueueConfig::new(url())
        .with_stream(stream)
        .with_ack_wait(Duration::from_secs(1));
    let first = NatsQueue::connect(config.clone()).await.unwrap();
    let request = QueuedRequest::new("f", "openfaas-fn").with_body("kept");
    first.publish(request.clone()).await.unwrap();
    // A worker takes it and dies without acking.
    let mut deliveries = first.consume().await.unwrap();
    let taken = deliveries.next().await.unwrap().unwrap();
    std::mem::forget(taken);
    drop(deliveries);
    drop(first);
    let second = NatsQueue::connect(config).await.unwrap();
    let mut deliveries = second.consume().await.unwrap();
    let again = tokio::time::timeout(Duration::from_secs(30), deliveries.next())
        .await
        .expect("redelivered within 30s")
        .unwrap()
        .unwrap();
    assert_eq!(again.request, request);
    assert!(again.attempt >= 2);
    again.ack().await.unwrap();
    drop(deliveries);
    second.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn records_are_shared_through_jetstream() {
    let q = queue(Duration::from_secs(30)).await;
    let store = NatsInvocationStore::open(&q, Duration::from_secs(3600))
        .await
        .unwrap();
    let first = QueuedRequest::new("f", "openfaas-fn");
    let mut second = QueuedRequest::new("f", "openfaas-fn");
    second.queued_at = first.queued_at + chrono::Duration::seconds(1);
    let other = QueuedRequest::new("g", "openfaas-fn");
    for r in [&first, &second, &other] {
        store
            .put(InvocationRecord::queued(r), Durability::Durable)
            .await
            .unwrap();
    }
    let mut running = InvocationRecord::queued(&first);
    running.status = InvocationStatus::Running;
    running.attempts = 1;
    store
        .put(running.clone(), Durability::Durable)
        .await
        .unwrap();
    // A late `queued` record of a call already running changes nothing.
    store
        .put(InvocationRecord::queued(&first), Durability::Durable)
        .await
        .unwrap();
    assert_eq!(
        store.get(&first.call_id).await.unwrap().unwrap().status,
        InvocationStatus::Running
    );
    assert!(
        store
            .get("00000000-0000-4000-8000-000000000000")
            .await
            .unwrap()
            .is_none()
    );

    // Another process (a second store over the same stream) sees the same records.
    let elsewhere = NatsInvocationStore::open(&queue_named(&q).await, Duration::from_secs(3600))
        .await
        .unwrap();
    let listed = elsewhere
        .list(ListQuery::function("f", "openfaas-fn"))
        .await
        .unwrap();
    let ids: Vec<_> = listed.iter().map(|r| r.call_id.as_str()).collect();
    assert_eq!(ids, [second.call_id.as_str(), first.call_id.as_str()]);
    let running_only = elsewhere
        .list(ListQuery::default().with_status(InvocationStatus::Running))
        .await
        .unwrap();
    assert_eq!(running_only.len(), 1);
    assert_eq!(
        elsewhere
            .list(ListQuery::default().with_limit(2))
            .await
            .unwrap()
            .len(),
        2
    );
    store.destroy().await.unwrap();
    q.destroy().await.unwrap();
}

/// A second connection to `q`'s stream.
async fn queue_named(q: &NatsQueue) -> NatsQueue {
    NatsQueue::connect(q.config().clone()).await.unwrap()
}
