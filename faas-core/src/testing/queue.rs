//! The Queue conformance suite: every [`Queue`] backend runs [`conformance`] against itself.
//!
//! ```
//! # async fn demo() {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use faas_core::queue::{MemoryQueue, Queue};
//!
//! let ack_wait = Duration::from_secs(1);
//! faas_core::testing::queue::conformance(ack_wait, || async move {
//!     Arc::new(MemoryQueue::with_ack_wait(ack_wait)) as Arc<dyn Queue>
//! })
//! .await;
//! # }
//! ```

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;

use crate::Result;
use crate::queue::{Delivery, Queue, QueuedRequest};

/// How long the suite waits for something that must happen (generous: machines are loaded).
const WAIT: Duration = Duration::from_secs(30);

type Deliveries = BoxStream<'static, Result<Delivery>>;

async fn next(deliveries: &mut Deliveries, what: &str) -> Delivery {
    match tokio::time::timeout(WAIT, deliveries.next()).await {
        Ok(Some(Ok(delivery))) => delivery,
        Ok(Some(Err(err))) => panic!("{what}: consume failed: {err:?}"),
        Ok(None) => panic!("{what}: the delivery stream ended"),
        Err(_) => panic!("{what}: nothing delivered within {WAIT:?}"),
    }
}

async fn nothing_within(deliveries: &mut Deliveries, within: Duration, what: &str) {
    if let Ok(Some(item)) = tokio::time::timeout(within, deliveries.next()).await {
        let item = item.map(|d| (d.request.call_id.clone(), d.attempt));
        panic!("{what}: unexpected delivery {item:?}");
    }
}

fn sample(function: &str) -> QueuedRequest {
    QueuedRequest::new(function, "openfaas-fn")
}

/// Runs every check, each against a fresh queue from `make`.
///
/// The queues must redeliver an unacknowledged delivery after `ack_wait` (use one of about a
/// second so that the suite stays fast). Panics with a message naming the failed check.
pub async fn conformance<F, Fut>(ack_wait: Duration, make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    round_trip(make().await).await;
    first_deliveries_keep_publish_order(make().await).await;
    ack_is_final(make().await, ack_wait).await;
    nack_redelivers(make().await).await;
    ack_deadline_redelivers(make().await).await;
    in_progress_extends_the_deadline(make().await, ack_wait).await;
    cancel_before_start_only(make().await, ack_wait).await;
    competing_consumers_share_the_work(make().await).await;
    large_bodies(make().await).await;
}

/// Every field of a request comes back as it was published; the first delivery is attempt 1.
pub async fn round_trip(queue: Arc<dyn Queue>) {
    let request = sample("round-trip")
        .with_method("PUT")
        .with_path("/a/b")
        .with_query("x=1&y=%20")
        .with_header("Content-Type", "application/json")
        .with_header("X-Custom", "one")
        .with_callback_url("http://127.0.0.1:1/callback")
        .with_body(&b"{\"hello\":\"world\"}\x00\xff"[..]);
    queue.publish(request.clone()).await.expect("publish");
    let mut deliveries = queue.consume().await.expect("consume");
    let delivery = next(&mut deliveries, "round trip").await;
    assert_eq!(
        delivery.request, request,
        "round trip: the request changed in the queue"
    );
    assert_eq!(
        delivery.attempt, 1,
        "round trip: first delivery is attempt 1"
    );
    delivery.ack().await.expect("ack");
}

/// Calls published one after the other are first delivered in that order.
pub async fn first_deliveries_keep_publish_order(queue: Arc<dyn Queue>) {
    let requests: Vec<_> = (0..5)
        .map(|i| sample("order").with_body(format!("{i}")))
        .collect();
    for r in &requests {
        queue.publish(r.clone()).await.expect("publish");
    }
    let mut deliveries = queue.consume().await.expect("consume");
    for r in &requests {
        let d = next(&mut deliveries, "order").await;
        assert_eq!(
            d.request.call_id, r.call_id,
            "order: deliveries out of publish order"
        );
        d.ack().await.expect("ack");
    }
}

/// An acked call is never delivered again, not even after the ack deadline.
pub async fn ack_is_final(queue: Arc<dyn Queue>, ack_wait: Duration) {
    queue.publish(sample("acked")).await.expect("publish");
    let mut deliveries = queue.consume().await.expect("consume");
    next(&mut deliveries, "ack").await.ack().await.expect("ack");
    nothing_within(
        &mut deliveries,
        ack_wait * 2 + Duration::from_millis(500),
        "ack is final",
    )
    .await;
}

/// A nacked call comes back, at once or after its delay, with a higher attempt number.
pub async fn nack_redelivers(queue: Arc<dyn Queue>) {
    let request = sample("nacked");
    queue.publish(request.clone()).await.expect("publish");
    let mut deliveries = queue.consume().await.expect("consume");
    let first = next(&mut deliveries, "nack").await;
    first.nack(Duration::ZERO).await.expect("nack");
    let second = next(&mut deliveries, "nack, no delay").await;
    assert_eq!(second.request, request, "nack: another call delivered");
    assert!(
        second.attempt >= 2,
        "nack: attempt {} after a nack",
        second.attempt
    );
    second
        .nack(Duration::from_millis(300))
        .await
        .expect("nack with delay");
    let third = next(&mut deliveries, "nack with delay").await;
    assert!(third.attempt > second.attempt, "nack: attempts must grow");
    third.ack().await.expect("ack");
}

/// A delivery neither acked nor in progress (a crashed worker) is delivered again.
pub async fn ack_deadline_redelivers(queue: Arc<dyn Queue>) {
    let request = sample("abandoned");
    queue.publish(request.clone()).await.expect("publish");
    let mut deliveries = queue.consume().await.expect("consume");
    let held = next(&mut deliveries, "deadline").await;
    let again = next(&mut deliveries, "deadline: redelivery").await;
    assert_eq!(again.request.call_id, request.call_id);
    assert!(
        again.attempt >= 2,
        "deadline: attempt {} on redelivery",
        again.attempt
    );
    again.ack().await.expect("ack");
    drop(held);
}

/// A worker that says it is still busy keeps its call: no duplicate run of a slow function.
pub async fn in_progress_extends_the_deadline(queue: Arc<dyn Queue>, ack_wait: Duration) {
    queue.publish(sample("slow")).await.expect("publish");
    let mut deliveries = queue.consume().await.expect("consume");
    let delivery = next(&mut deliveries, "in progress").await;
    let hold = ack_wait * 3;
    let tick = ack_wait / 5;
    let started = tokio::time::Instant::now();
    while started.elapsed() < hold {
        delivery.in_progress().await.expect("in progress");
        nothing_within(&mut deliveries, tick, "in progress extends the deadline").await;
    }
    delivery.ack().await.expect("ack");
    nothing_within(&mut deliveries, ack_wait * 2, "in progress, after ack").await;
}

/// Cancel removes a call that has not started, and nothing else.
pub async fn cancel_before_start_only(queue: Arc<dyn Queue>, ack_wait: Duration) {
    let kept = sample("cancel");
    let cancelled = sample("cancel");
    queue.publish(kept.clone()).await.expect("publish");
    queue.publish(cancelled.clone()).await.expect("publish");
    assert!(
        queue.cancel(&cancelled.call_id).await.expect("cancel"),
        "cancel: a queued call"
    );
    assert!(
        !queue
            .cancel("00000000-0000-4000-8000-000000000000")
            .await
            .expect("cancel unknown"),
        "cancel: an unknown call"
    );
    let mut deliveries = queue.consume().await.expect("consume");
    let delivery = next(&mut deliveries, "cancel").await;
    assert_eq!(
        delivery.request.call_id, kept.call_id,
        "cancel: the cancelled call was delivered"
    );
    assert!(
        !queue.cancel(&kept.call_id).await.expect("cancel started"),
        "cancel: a started call"
    );
    delivery.ack().await.expect("ack");
    nothing_within(
        &mut deliveries,
        ack_wait * 2,
        "cancel: cancelled call delivered later",
    )
    .await;
}

/// Two consumers share the calls; every call is delivered, a first delivery goes to one only.
pub async fn competing_consumers_share_the_work(queue: Arc<dyn Queue>) {
    const CALLS: usize = 200;
    let requests: Vec<_> = (0..CALLS)
        .map(|i| sample("many").with_body(format!("{i}")))
        .collect();
    let publishes = requests.iter().map(|r| queue.publish(r.clone()));
    for result in futures::future::join_all(publishes).await {
        result.expect("concurrent publish");
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let mut deliveries = queue.consume().await.expect("consume");
        let tx = tx.clone();
        workers.push(tokio::spawn(async move {
            while let Some(Ok(d)) = deliveries.next().await {
                let seen = (d.request.call_id.clone(), d.attempt);
                d.ack().await.expect("ack");
                if tx.send(seen).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let expected: HashSet<_> = requests.iter().map(|r| r.call_id.clone()).collect();
    let mut firsts: HashMap<String, usize> = HashMap::new();
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    while seen.len() < CALLS {
        let item = tokio::time::timeout_at(deadline, rx.recv()).await;
        let Ok(Some((call_id, attempt))) = item else {
            panic!(
                "competing consumers: {} of {CALLS} calls delivered",
                seen.len()
            )
        };
        assert!(
            expected.contains(&call_id),
            "competing consumers: unknown call {call_id}"
        );
        if attempt == 1 {
            *firsts.entry(call_id.clone()).or_default() += 1;
        }
        seen.insert(call_id);
    }
    for worker in workers {
        worker.abort();
    }
    let doubled: Vec<_> = firsts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "competing consumers: first delivery to two consumers: {doubled:?}"
    );
}

/// Bodies of several MiB (over NATS's default message limit) go through unchanged.
pub async fn large_bodies(queue: Arc<dyn Queue>) {
    let body: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let request = sample("large").with_body(body);
    queue
        .publish(request.clone())
        .await
        .expect("publish a large body");
    let mut deliveries = queue.consume().await.expect("consume");
    let delivery = next(&mut deliveries, "large body").await;
    assert!(
        delivery.request == request,
        "large body: the request changed in the queue"
    );
    delivery.ack().await.expect("ack");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{EmbeddedQueue, EmbeddedQueueConfig, MemoryQueue};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_queue_conforms() {
        let ack_wait = Duration::from_secs(1);
        conformance(ack_wait, || async move {
            Arc::new(MemoryQueue::with_ack_wait(ack_wait)) as Arc<dyn Queue>
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded_queue_conforms() {
        let root = tempfile::tempdir().unwrap();
        let ack_wait = Duration::from_secs(1);
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let root_path = root.path().to_owned();
        conformance(ack_wait, || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = root_path.join(format!("q{n}"));
            async move {
                let config = EmbeddedQueueConfig::new(dir).with_ack_wait(ack_wait);
                Arc::new(EmbeddedQueue::open(config).unwrap()) as Arc<dyn Queue>
            }
        })
        .await;
    }
}
