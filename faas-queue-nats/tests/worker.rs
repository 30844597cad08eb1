//! faas-core's queue worker over a real NATS JetStream queue and its records: a call slower than
//! the ack deadline runs once (the worker reports progress), and a 50 MiB body (over NATS's 1 MB
//! message limit) reaches the function whole through the object store. Needs
//! `scripts/nats.sh start` (or `FAAS_TEST_NATS_URL`); run with
//! `cargo test -p faas-queue-nats -- --ignored`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use faas_core::invoke::Body;
use faas_core::model::{FunctionDeployment, FunctionStatus};
use faas_core::queue::records::{InvocationRecord, InvocationStatus, InvocationStore};
use faas_core::queue::worker::{CallTarget, QueueWorker, WorkerConfig};
use faas_core::queue::{Queue, QueuedRequest};
use faas_queue_nats::{NatsInvocationStore, NatsQueue, NatsQueueConfig};
use http::{Request, Response};
use http_body_util::BodyExt;

fn url() -> String {
    std::env::var("FAAS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// The function the worker calls: counts its calls, holds each for `hold`, answers the size and
/// a checksum of the body it received.
#[derive(Debug)]
struct Function {
    calls: AtomicUsize,
    hold: Duration,
}

fn checksum(body: &[u8]) -> u64 {
    body.iter().fold(0u64, |sum, b| {
        sum.wrapping_mul(31).wrapping_add(u64::from(*b))
    })
}

#[async_trait]
impl CallTarget for Function {
    async fn call(
        &self,
        _function: &str,
        _namespace: &str,
        request: Request<Body>,
    ) -> faas_core::Result<Response<Body>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let body = request
            .into_body()
            .collect()
            .await
            .expect("the queued body")
            .to_bytes();
        tokio::time::sleep(self.hold).await;
        Ok(Response::new(Body::from(format!(
            "{} {}",
            body.len(),
            checksum(&body)
        ))))
    }

    async fn function(&self, function: &str, namespace: &str) -> faas_core::Result<FunctionStatus> {
        Ok(FunctionStatus::from_deployment(
            &FunctionDeployment::new(function, "img"),
            namespace,
            1,
            chrono::Utc::now(),
        ))
    }
}

struct Platform {
    queue: NatsQueue,
    store: NatsInvocationStore,
    function: Arc<Function>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<faas_core::Result<()>>,
}

impl Platform {
    async fn start(ack_wait: Duration, hold: Duration) -> Platform {
        let stream = format!("FAAS_TEST_{}", uuid::Uuid::new_v4().simple());
        let queue = NatsQueue::connect(
            NatsQueueConfig::new(url())
                .with_stream(stream)
                .with_ack_wait(ack_wait),
        )
        .await
        .expect("nats-server with JetStream (scripts/nats.sh start)");
        let store = NatsInvocationStore::open(&queue, Duration::from_secs(600))
            .await
            .unwrap();
        let function = Arc::new(Function {
            calls: AtomicUsize::new(0),
            hold,
        });
        let worker = QueueWorker::new(
            Arc::new(queue.clone()),
            function.clone(),
            Arc::new(store.clone()),
            WorkerConfig::default()
                .with_concurrency(4)
                .with_progress_interval(ack_wait / 4),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            worker
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        Platform {
            queue,
            store,
            function,
            stop,
            task,
        }
    }

    /// Publishes `request` with its `queued` record, as the gateway does.
    async fn publish(&self, request: QueuedRequest) {
        self.store
            .put(
                InvocationRecord::queued(&request),
                faas_core::queue::records::Durability::Lazy,
            )
            .await
            .unwrap();
        self.queue.publish(request).await.unwrap();
    }

    async fn finished(&self, call_id: &str) -> InvocationRecord {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(record) = self.store.get(call_id).await.unwrap()
                && record.status.is_terminal()
            {
                return record;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "call {call_id} not finished"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the worker stops")
            .unwrap()
            .unwrap();
        self.store.destroy().await.unwrap();
        self.queue.destroy().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn a_call_slower_than_the_ack_deadline_runs_once() {
    // Four ack deadlines long: only the worker's progress reports keep JetStream from
    // delivering it again.
    let platform = Platform::start(Duration::from_secs(1), Duration::from_secs(4)).await;
    let request = QueuedRequest::new("slow", "openfaas-fn").with_body("x");
    let call_id = request.call_id.clone();
    platform.publish(request).await;
    let record = platform.finished(&call_id).await;
    assert_eq!(record.status, InvocationStatus::Succeeded, "{record:?}");
    assert_eq!(record.attempts, 1, "{record:?}");
    assert_eq!(
        platform.function.calls.load(Ordering::SeqCst),
        1,
        "ran twice"
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server"]
async fn a_50_mib_body_reaches_the_function_whole() {
    let platform = Platform::start(Duration::from_secs(30), Duration::ZERO).await;
    let body: Vec<u8> = (0..50 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let expected = format!("{} {}", body.len(), checksum(&body));
    let request = QueuedRequest::new("big", "openfaas-fn").with_body(body);
    let call_id = request.call_id.clone();
    platform.publish(request).await;
    let record = platform.finished(&call_id).await;
    assert_eq!(record.status, InvocationStatus::Succeeded, "{record:?}");
    let result = record.result.expect("a result");
    assert_eq!(&result.body[..], expected.as_bytes());
    assert_eq!(platform.function.calls.load(Ordering::SeqCst), 1);
    platform.stop().await;
}
