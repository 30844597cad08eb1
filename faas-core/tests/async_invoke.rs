//! Asynchronous invocation end to end in-process: the gateway's `/async-function/` and
//! `/system/invocations/` routes, a real queue, the queue worker invoking real upstream servers on
//! 127.0.0.1 through the gateway's invoker, and a real callback receiver.

mod gateway_support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use faas_core::gateway::Gateway;
use faas_core::invoke::Body;
use faas_core::model::{Endpoint, FunctionDeployment};
use faas_core::queue::records::{
    Durability, InvocationRecord, InvocationStore, ListQuery, MemoryInvocationStore,
};
use faas_core::queue::worker::{CallbackPolicy, QueueWorker, RetryPolicy, WorkerConfig};
use faas_core::queue::{EmbeddedQueue, EmbeddedQueueConfig, MemoryQueue, Queue};
use gateway_support::{NS, TestProvider, Upstream, call, json, req};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);

/// One request received by the callback receiver.
#[derive(Debug)]
struct Callback {
    headers: HeaderMap,
    body: Bytes,
}

/// A real HTTP server recording every callback it receives.
async fn callback_receiver() -> (SocketAddr, mpsc::UnboundedReceiver<Callback>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let _ = tx.send(Callback {
                            headers: parts.headers,
                            body,
                        });
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, rx)
}

/// A real HTTP server answering `fail_first` times with 503, then 200 with the request body;
/// tracks the most requests it had in flight at once (each takes `hold`).
struct Flaky {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

async fn flaky(fail_first: usize, hold: Duration) -> Flaky {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let inflight = Arc::new(AtomicUsize::new(0));
    let (c, p) = (calls.clone(), peak.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (calls, peak, inflight) = (c.clone(), p.clone(), inflight.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (calls, peak, inflight) = (calls.clone(), peak.clone(), inflight.clone());
                    async move {
                        let n = calls.fetch_add(1, Ordering::SeqCst);
                        let now = inflight.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        tokio::time::sleep(hold).await;
                        inflight.fetch_sub(1, Ordering::SeqCst);
                        let mut response = Response::new(Full::new(body));
                        if n < fail_first {
                            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Flaky { addr, calls, peak }
}

struct Platform {
    gateway: Gateway,
    queue: Arc<dyn Queue>,
    store: Arc<MemoryInvocationStore>,
    provider: Arc<TestProvider>,
    worker: Option<QueueWorker>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Platform {
    fn new(queue: Arc<dyn Queue>) -> Platform {
        let provider = TestProvider::new();
        let store = Arc::new(MemoryInvocationStore::new());
        let gateway = Gateway::builder(provider.clone())
            .queue(queue.clone())
            .invocations(store.clone())
            .async_body_limit(1024 * 1024)
            .build();
        Platform {
            gateway,
            queue,
            store,
            provider,
            worker: None,
            stop: None,
            task: None,
        }
    }

    fn start_worker(&mut self, config: WorkerConfig) {
        let worker = QueueWorker::new(
            self.queue.clone(),
            Arc::new(self.gateway.invoker().clone()),
            self.store.clone(),
            config,
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = worker.clone();
        self.task = Some(tokio::spawn(async move {
            running
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        }));
        self.worker = Some(worker);
        self.stop = Some(stop);
    }

    async fn stop_worker(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("worker stops")
                .unwrap();
        }
    }

    async fn post(
        &self,
        uri: &str,
        body: &'static str,
        callback: Option<&str>,
    ) -> (StatusCode, String) {
        let mut request = req("POST", uri, body);
        request
            .headers_mut()
            .insert("x-custom", "kept".parse().unwrap());
        if let Some(url) = callback {
            request
                .headers_mut()
                .insert("x-callback-url", url.parse().unwrap());
        }
        let (status, headers, body) = call(&self.gateway, request).await;
        let id = headers
            .get("x-call-id")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        if status != StatusCode::ACCEPTED {
            return (status, String::from_utf8_lossy(&body).into_owned());
        }
        (status, id)
    }

    async fn record(&self, call_id: &str) -> serde_json::Value {
        let (status, _, body) = call(
            &self.gateway,
            req(
                "GET",
                &format!("/system/invocations/{call_id}"),
                Body::empty(),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        json(&body)
    }

    /// Waits until the call's record reaches a final status.
    async fn finished(&self, call_id: &str) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let record = self.record(call_id).await;
            if ["succeeded", "failed", "cancelled"].contains(&record["status"].as_str().unwrap()) {
                return record;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "call {call_id} not finished: {record}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn next_callback(rx: &mut mpsc::UnboundedReceiver<Callback>) -> Callback {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a callback within 30s")
        .expect("receiver running")
}

fn quick_retries() -> WorkerConfig {
    WorkerConfig::default()
        .with_retry(
            RetryPolicy::default()
                .with_initial_wait(Duration::from_millis(20))
                .with_max_wait(Duration::from_millis(100)),
        )
        .with_callback(CallbackPolicy::default().with_initial_wait(Duration::from_millis(20)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_calls_run_call_back_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(EmbeddedQueue::open(EmbeddedQueueConfig::new(dir.path())).unwrap());
    let mut platform = Platform::new(queue);
    let upstream = Upstream::start("r0").await;
    platform.provider.add("echo", vec![upstream.endpoint()]);
    platform.start_worker(quick_retries());
    let (addr, mut callbacks) = callback_receiver().await;

    let url = format!("http://{addr}/done");
    let (status, call_id) = platform
        .post("/async-function/echo/a/b?x=1", "hello", Some(&url))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{call_id}");
    assert!(
        uuid::Uuid::try_parse(&call_id).is_ok(),
        "call id {call_id:?} is a uuid"
    );

    let cb = next_callback(&mut callbacks).await;
    assert_eq!(cb.headers["x-call-id"], call_id.as_str());
    assert_eq!(cb.headers["x-function-status"], "200");
    assert_eq!(cb.headers["x-function-name"], "echo");
    assert!(
        cb.headers["x-duration-seconds"]
            .to_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            >= 0.0
    );
    assert_eq!(&cb.body[..], b"hello");

    let record = platform.finished(&call_id).await;
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["attempts"], 1);
    assert_eq!(record["statusCode"], 200);
    assert_eq!(record["callbackStatus"], 200);
    assert_eq!(record["function"], "echo");
    assert_eq!(record["namespace"], NS);
    assert_eq!(record["result"]["body"], "hello");
    assert_eq!(upstream.count(), 1);

    // Method, path, query and headers reach the function as they were sent.
    let (status, call_id) = platform
        .post("/async-function/echo.openfaas-fn/x/y?q=2", "again", None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let record = platform.finished(&call_id).await;
    assert_eq!(record["result"]["body"], "again");
    platform.stop_worker().await;
    assert_eq!(platform.worker.as_ref().unwrap().stats().succeeded, 2);
}

#[tokio::test]
async fn bad_requests_are_refused_and_nothing_is_queued() {
    let queue = Arc::new(MemoryQueue::new());
    let platform = Platform::new(queue.clone());
    let upstream = Upstream::start("r0").await;
    platform.provider.add("echo", vec![upstream.endpoint()]);

    let (status, body) = platform.post("/async-function/missing", "x", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    for bad in ["/relative", "ftp://x/y", "not a url"] {
        let (status, body) = platform.post("/async-function/echo", "x", Some(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body.contains("X-Callback-Url"), "{body}");
    }
    let (status, body) = platform.post("/async-function/Bad_Name", "x", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let big = vec![b'x'; 1024 * 1024 + 1];
    let (status, _, _) = call(&platform.gateway, req("POST", "/async-function/echo", big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(queue.is_empty(), "a refused call was queued");
    assert!(platform.store.is_empty(), "a refused call was recorded");

    let (status, _, _) = call(
        &platform.gateway,
        req("GET", "/system/invocations/nope", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = call(
        &platform.gateway,
        req("GET", "/system/invocations?limit=0", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = call(
        &platform.gateway,
        req("GET", "/system/invocations?status=lost", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn without_a_queue_async_routes_do_not_exist() {
    let provider = TestProvider::new();
    let gateway = Gateway::builder(provider).build();
    let (status, _, _) = call(&gateway, req("POST", "/async-function/echo", "x")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_are_retried_until_success() {
    let mut platform = Platform::new(Arc::new(MemoryQueue::new()));
    let function = flaky(2, Duration::ZERO).await;
    platform.provider.add(
        "flaky",
        vec![Endpoint::new("f0", function.addr.to_string())],
    );
    platform.start_worker(quick_retries());
    let (status, call_id) = platform
        .post("/async-function/flaky", "payload", None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let record = platform.finished(&call_id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["attempts"], 3);
    assert_eq!(record["result"]["body"], "payload");
    assert_eq!(function.calls.load(Ordering::SeqCst), 3);
    platform.stop_worker().await;
    assert_eq!(platform.worker.as_ref().unwrap().stats().retried, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_failing_function_ends_failed_after_its_attempts() {
    let mut platform = Platform::new(Arc::new(MemoryQueue::new()));
    let upstream = Upstream::start("r0").await;
    let deployment = FunctionDeployment::new("broken", "img")
        .with_annotation("com.openfaas.retry.attempts", "3")
        .with_annotation("com.openfaas.retry.min_wait", "10ms");
    platform
        .provider
        .add_in("broken", NS, vec![upstream.endpoint()], deployment);
    platform.start_worker(quick_retries());
    let (addr, mut callbacks) = callback_receiver().await;
    let url = format!("http://{addr}/");
    let (status, call_id) = platform
        .post("/async-function/broken/status?code=500", "", Some(&url))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let record = platform.finished(&call_id).await;
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(record["attempts"], 3);
    assert_eq!(record["statusCode"], 500);
    assert_eq!(upstream.count(), 3);
    let cb = next_callback(&mut callbacks).await;
    assert_eq!(cb.headers["x-function-status"], "500");
    assert_eq!(cb.headers["x-call-id"], call_id.as_str());
    // A status that is not retried fails at once.
    let (_, call_id) = platform
        .post("/async-function/broken/status?code=400", "", None)
        .await;
    let record = platform.finished(&call_id).await;
    assert_eq!(
        (record["status"].as_str(), record["attempts"].as_u64()),
        (Some("failed"), Some(1))
    );
    platform.stop_worker().await;
    let stats = platform.worker.as_ref().unwrap().stats();
    assert_eq!((stats.failed, stats.retried, stats.callbacks), (2, 2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_start_and_listing() {
    let mut platform = Platform::new(Arc::new(MemoryQueue::new()));
    let upstream = Upstream::start("r0").await;
    platform.provider.add("echo", vec![upstream.endpoint()]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, id) = platform.post("/async-function/echo", "x", None).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        ids.push(id);
    }
    let delete = |id: &str| req("DELETE", &format!("/async-function/{id}"), Body::empty());
    let (status, _, _) = call(&platform.gateway, delete(&ids[1])).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(platform.record(&ids[1]).await["status"], "cancelled");
    let (status, _, _) = call(&platform.gateway, delete(&ids[1])).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "cancelling twice is fine");
    let (status, _, _) = call(&platform.gateway, delete(&faas_core::queue::new_call_id())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _, body) = call(
        &platform.gateway,
        req(
            "GET",
            "/system/invocations?function=echo&limit=2",
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let listed = json(&body);
    let listed: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["callId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        listed,
        [ids[2].clone(), ids[1].clone()],
        "newest first, limited"
    );

    platform.start_worker(quick_retries());
    for id in [&ids[0], &ids[2]] {
        assert_eq!(platform.finished(id).await["status"], "succeeded");
    }
    let (status, _, _) = call(&platform.gateway, delete(&ids[0])).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a finished call cannot be cancelled"
    );
    platform.stop_worker().await;
    assert_eq!(upstream.count(), 2, "the cancelled call never ran");
    let (_, _, body) = call(
        &platform.gateway,
        req("GET", "/system/invocations?status=cancelled", Body::empty()),
    )
    .await;
    assert_eq!(json(&body).as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_max_inflight_bounds_its_concurrency() {
    let mut platform = Platform::new(Arc::new(MemoryQueue::new()));
    let function = flaky(0, Duration::from_millis(50)).await;
    let deployment = FunctionDeployment::new("slow", "img").with_env("max_inflight", "2");
    platform.provider.add_in(
        "slow",
        NS,
        vec![Endpoint::new("s0", function.addr.to_string())],
        deployment,
    );
    platform.start_worker(quick_retries().with_concurrency(16));
    let mut ids = Vec::new();
    for _ in 0..12 {
        let (status, id) = platform.post("/async-function/slow", "x", None).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        ids.push(id);
    }
    for id in &ids {
        assert_eq!(platform.finished(id).await["status"], "succeeded");
    }
    platform.stop_worker().await;
    assert_eq!(function.calls.load(Ordering::SeqCst), 12);
    let peak = function.peak.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&peak),
        "peak concurrency {peak} over max_inflight 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_function_fails_without_retrying() {
    let mut platform = Platform::new(Arc::new(MemoryQueue::new()));
    let upstream = Upstream::start("r0").await;
    platform.provider.add("gone", vec![upstream.endpoint()]);
    let (status, call_id) = platform.post("/async-function/gone", "x", None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    use faas_core::Provider as _;
    platform.provider.delete("gone", NS).await.unwrap();
    platform.start_worker(quick_retries());
    let record = platform.finished(&call_id).await;
    assert_eq!(record["status"], "failed");
    assert_eq!(record["statusCode"], 404);
    assert_eq!(record["attempts"], 1);
    platform.stop_worker().await;
    assert_eq!(upstream.count(), 0);
}

/// What a [`Scripted`] server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
    at: std::time::Instant,
}

/// A real HTTP server whose `n`th answer (0-based) is `answer(n)`; records what it received.
struct Scripted {
    addr: SocketAddr,
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl Scripted {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::new("s0", self.addr.to_string())
    }
}

async fn scripted<F>(answer: F) -> Scripted
where
    F: Fn(usize) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    scripted_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), answer)
}

fn scripted_on<F>(listener: TcpListener, answer: F) -> Scripted
where
    F: Fn(usize) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let answer = Arc::new(answer);
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (log, answer) = (log.clone(), answer.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (log, answer) = (log.clone(), answer.clone());
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let n = {
                            let mut log = log.lock().unwrap();
                            log.push(Seen {
                                method: parts.method.to_string(),
                                uri: parts.uri.to_string(),
                                headers: parts.headers,
                                body,
                                at: std::time::Instant::now(),
                            });
                            log.len() - 1
                        };
                        Ok::<_, Infallible>(answer(n))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Scripted { addr, seen }
}

fn answer(status: u16, headers: &[(&str, &str)], body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

/// Polls `what` until it is true, for at most [`WAIT`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_sees_the_method_path_query_headers_and_body_sent() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(EmbeddedQueue::open(EmbeddedQueueConfig::new(dir.path())).unwrap());
    let mut platform = Platform::new(queue);
    let function = scripted(|_| answer(200, &[], "ok")).await;
    platform.provider.add("echo", vec![function.endpoint()]);
    let (addr, mut callbacks) = callback_receiver().await;

    let mut request = req("PUT", "/async-function/echo/a/b?x=1&y=two", "the body");
    let headers = request.headers_mut();
    headers.insert("x-custom", "kept".parse().unwrap());
    headers.insert("content-type", "text/csv".parse().unwrap());
    headers.insert(
        "x-callback-url",
        format!("http://{addr}/cb").parse().unwrap(),
    );
    let (status, headers, body) = call(&platform.gateway, request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body:?}");
    let call_id = headers["x-call-id"].to_str().unwrap().to_owned();
    // Queued durably, then run by a worker started afterwards.
    platform.start_worker(quick_retries());
    next_callback(&mut callbacks).await;

    let seen = function.seen();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.uri, "/a/b?x=1&y=two");
    assert_eq!(&seen.body[..], b"the body");
    assert_eq!(seen.headers["x-custom"], "kept");
    assert_eq!(seen.headers["content-type"], "text/csv");
    assert_eq!(seen.headers["x-call-id"], call_id.as_str());
    assert!(
        !seen.headers.contains_key("x-callback-url"),
        "the callback url is the platform's, not the function's"
    );
    platform.stop_worker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_a_floor_for_the_next_attempt() {
    let mut platform = Platform::new(Arc::new(MemoryQueue::new()));
    // Asks for 2 s while the backoff is 20-40 ms: the retry waits the 2 s.
    let patient = scripted(|n| match n {
        0 => answer(429, &[("retry-after", "2")], "later"),
        _ => answer(200, &[], "done"),
    })
    .await;
    // Asks for 0 s while the backoff is 0.5-1 s: the backoff still applies.
    let eager = scripted(|n| match n {
        0 => answer(503, &[("retry-after", "0")], "later"),
        _ => answer(200, &[], "done"),
    })
    .await;
    platform.provider.add("patient", vec![patient.endpoint()]);
    let deployment = FunctionDeployment::new("eager", "img")
        .with_annotation("com.openfaas.retry.min_wait", "1s")
        .with_annotation("com.openfaas.retry.max_wait", "1s");
    platform
        .provider
        .add_in("eager", NS, vec![eager.endpoint()], deployment);
    platform.start_worker(quick_retries());
    let (_, patient_id) = platform.post("/async-function/patient", "p", None).await;
    let (_, eager_id) = platform.post("/async-function/eager", "e", None).await;
    for id in [&patient_id, &eager_id] {
        let record = platform.finished(id).await;
        assert_eq!(record["status"], "succeeded", "{record}");
        assert_eq!(record["attempts"], 2, "{record}");
    }
    let gap = |s: &Scripted| {
        let seen = s.seen();
        assert_eq!(seen.len(), 2);
        seen[1].at - seen[0].at
    };
    let patient_gap = gap(&patient);
    assert!(
        patient_gap >= Duration::from_millis(1950),
        "retried {patient_gap:?} after a Retry-After of 2 s"
    );
    let eager_gap = gap(&eager);
    assert!(
        eager_gap >= Duration::from_millis(450),
        "retried {eager_gap:?} after a failure with Retry-After 0 and a backoff of 0.5-1 s"
    );
    platform.stop_worker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_are_retried() {
    let mut platform = Platform::new(Arc::new(MemoryQueue::new()));
    // A port nothing listens on yet: the first attempt is refused.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    platform
        .provider
        .add("late", vec![Endpoint::new("l0", addr.to_string())]);
    platform.start_worker(
        WorkerConfig::default().with_retry(
            RetryPolicy::default()
                .with_max_attempts(50)
                .with_initial_wait(Duration::from_millis(100))
                .with_max_wait(Duration::from_millis(200)),
        ),
    );
    let (status, call_id) = platform.post("/async-function/late", "x", None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Wait for a refused attempt to be recorded, then start the function on that port.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let record = platform.record(&call_id).await;
        if record["attempts"].as_u64() >= Some(1) && record["status"] == "queued" {
            assert_eq!(record["statusCode"], 502, "{record}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no refused attempt recorded: {record}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let function = scripted_on(TcpListener::bind(addr).await.unwrap(), |_| {
        answer(200, &[], "up")
    });
    let record = platform.finished(&call_id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert!(record["attempts"].as_u64().unwrap() >= 2, "{record}");
    assert_eq!(record["result"]["body"], "up");
    assert_eq!(function.seen().len(), 1);
    platform.stop_worker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_the_total_time() {
    let mut platform = Platform::new(Arc::new(MemoryQueue::new()));
    let function = scripted(|_| answer(503, &[], "down")).await;
    platform.provider.add("down", vec![function.endpoint()]);
    platform.start_worker(
        WorkerConfig::default().with_retry(
            RetryPolicy::default()
                .with_max_attempts(1000)
                .with_initial_wait(Duration::from_millis(50))
                .with_max_wait(Duration::from_millis(100))
                .with_max_total(Duration::from_millis(500)),
        ),
    );
    let (_, call_id) = platform.post("/async-function/down", "x", None).await;
    let record = platform.finished(&call_id).await;
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(record["statusCode"], 503, "{record}");
    let attempts = record["attempts"].as_u64().unwrap();
    assert!(
        (2..1000).contains(&attempts),
        "{attempts} attempts within a total of 500 ms"
    );
    assert_eq!(function.seen().len() as u64, attempts);
    platform.stop_worker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_retried_until_the_receiver_takes_them() {
    let mut platform = Platform::new(Arc::new(MemoryQueue::new()));
    let upstream = Upstream::start("r0").await;
    platform.provider.add("echo", vec![upstream.endpoint()]);
    let receiver = scripted(|n| match n {
        0 => answer(503, &[], "busy"),
        1 => answer(429, &[], "busy"),
        _ => answer(204, &[], ""),
    })
    .await;
    platform.start_worker(quick_retries());
    let url = format!("http://{}/hook", receiver.addr);
    let (_, call_id) = platform
        .post("/async-function/echo", "result", Some(&url))
        .await;
    let record = platform.finished(&call_id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["callbackStatus"], 204, "{record}");
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3, "two refusals, then delivered");
    for cb in &seen {
        assert_eq!(cb.method, "POST");
        assert_eq!(cb.uri, "/hook");
        assert_eq!(cb.headers["x-call-id"], call_id.as_str());
        assert_eq!(cb.headers["x-function-status"], "200");
        assert_eq!(cb.headers["x-function-name"], "echo");
        assert!(cb.headers.contains_key("x-duration-seconds"));
        assert_eq!(&cb.body[..], b"result");
    }
    assert_eq!(upstream.count(), 1, "the function ran once");
    platform.stop_worker().await;
    assert_eq!(platform.worker.as_ref().unwrap().stats().callbacks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_bounds_its_concurrency_across_functions() {
    let mut platform = Platform::new(Arc::new(MemoryQueue::new()));
    // One server behind three functions without max_inflight: its peak is the worker's.
    let function = flaky(0, Duration::from_millis(50)).await;
    for name in ["a", "b", "c"] {
        platform
            .provider
            .add(name, vec![Endpoint::new("s0", function.addr.to_string())]);
    }
    platform.start_worker(quick_retries().with_concurrency(3));
    let mut ids = Vec::new();
    for i in 0..15 {
        let name = ["a", "b", "c"][i % 3];
        let (status, id) = platform
            .post(&format!("/async-function/{name}"), "x", None)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        ids.push(id);
    }
    for id in &ids {
        assert_eq!(platform.finished(id).await["status"], "succeeded");
    }
    platform.stop_worker().await;
    assert_eq!(function.calls.load(Ordering::SeqCst), 15);
    let peak = function.peak.load(Ordering::SeqCst);
    assert!((1..=3).contains(&peak), "peak concurrency {peak} over 3");
    eventually("counters settle", || {
        platform.worker.as_ref().unwrap().stats().succeeded == 15
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_slower_than_the_ack_deadline_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(
        EmbeddedQueue::open(
            EmbeddedQueueConfig::new(dir.path()).with_ack_wait(Duration::from_millis(500)),
        )
        .unwrap(),
    );
    let mut platform = Platform::new(queue);
    // Six ack deadlines long: only the worker's progress reports keep it from a second run.
    let function = flaky(0, Duration::from_secs(3)).await;
    platform
        .provider
        .add("slow", vec![Endpoint::new("s0", function.addr.to_string())]);
    platform.start_worker(
        quick_retries()
            .with_concurrency(4)
            .with_progress_interval(Duration::from_millis(100)),
    );
    let (status, call_id) = platform.post("/async-function/slow", "x", None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let record = platform.finished(&call_id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["attempts"], 1, "{record}");
    platform.stop_worker().await;
    assert_eq!(function.calls.load(Ordering::SeqCst), 1, "ran twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorded_result_is_bounded_and_the_callback_gets_all_of_it() {
    let mut platform = Platform::new(Arc::new(MemoryQueue::new()));
    let upstream = Upstream::start("r0").await;
    platform.provider.add("echo", vec![upstream.endpoint()]);
    platform.start_worker(quick_retries().with_max_result_bytes(10));
    let (addr, mut callbacks) = callback_receiver().await;
    let url = format!("http://{addr}/");
    let body = "0123456789abcdefghij";
    let (_, call_id) = platform
        .post("/async-function/echo", body, Some(&url))
        .await;
    let cb = next_callback(&mut callbacks).await;
    assert_eq!(
        &cb.body[..],
        body.as_bytes(),
        "the callback gets the whole body"
    );
    let record = platform.finished(&call_id).await;
    assert_eq!(record["result"]["body"], "0123456789", "{record}");
    assert_eq!(record["result"]["truncated"], true, "{record}");
    assert_eq!(record["result"]["size"], 20, "{record}");
    platform.stop_worker().await;
}

/// The platform's records, except that the first final (durable) record cannot be written.
#[derive(Debug)]
struct FirstOutcomeLost {
    inner: Arc<MemoryInvocationStore>,
    failed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl InvocationStore for FirstOutcomeLost {
    async fn put(&self, record: InvocationRecord, durability: Durability) -> faas_core::Result<()> {
        if durability == Durability::Durable && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(faas_core::Error::unavailable("the disk is full"));
        }
        self.inner.put(record, durability).await
    }

    async fn get(&self, call_id: &str) -> faas_core::Result<Option<InvocationRecord>> {
        self.inner.get(call_id).await
    }

    async fn list(&self, query: ListQuery) -> faas_core::Result<Vec<InvocationRecord>> {
        self.inner.list(query).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_outcome_cannot_be_recorded_is_not_acked_and_runs_again() {
    let platform = Platform::new(Arc::new(MemoryQueue::new()));
    let upstream = Upstream::start("r0").await;
    platform.provider.add("echo", vec![upstream.endpoint()]);
    let store = Arc::new(FirstOutcomeLost {
        inner: platform.store.clone(),
        failed: std::sync::atomic::AtomicBool::new(false),
    });
    let worker = QueueWorker::new(
        platform.queue.clone(),
        Arc::new(platform.gateway.invoker().clone()),
        store.clone(),
        quick_retries(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn({
        let worker = worker.clone();
        async move {
            worker
                .run(async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    let (status, call_id) = platform.post("/async-function/echo", "x", None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let record = platform.finished(&call_id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["attempts"], 2, "{record}");
    assert!(store.failed.load(Ordering::SeqCst));
    assert_eq!(upstream.count(), 2, "the unrecorded run is delivered again");
    let _ = stop.send(());
    tokio::time::timeout(WAIT, task)
        .await
        .expect("worker stops")
        .unwrap()
        .unwrap();
    assert_eq!(worker.stats().succeeded, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_uuid_call_id_is_kept_unless_already_used() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(EmbeddedQueue::open(EmbeddedQueueConfig::new(dir.path())).unwrap());
    let mut platform = Platform::new(queue);
    let upstream = Upstream::start("r0").await;
    platform.provider.add("echo", vec![upstream.endpoint()]);
    platform.start_worker(quick_retries());
    let (addr, mut callbacks) = callback_receiver().await;
    let url = format!("http://{addr}/done");

    let post = |id: &'static str| {
        let mut request = req("POST", "/async-function/echo", "traced");
        request
            .headers_mut()
            .insert("x-call-id", id.parse().unwrap());
        request
            .headers_mut()
            .insert("x-callback-url", url.parse().unwrap());
        let gateway = platform.gateway.clone();
        async move {
            let (status, headers, _) = call(&gateway, request).await;
            assert_eq!(status, StatusCode::ACCEPTED);
            headers["x-call-id"].to_str().unwrap().to_owned()
        }
    };
    let mine = "0b6f2a4e-3f1d-4c1a-9d7e-2a9c5e8b7f10";
    assert_eq!(post(mine).await, mine);
    let cb = next_callback(&mut callbacks).await;
    assert_eq!(cb.headers["x-call-id"], mine);
    assert_eq!(platform.finished(mine).await["status"], "succeeded");

    // The same id again (a chain passing it on): a new id, the first record untouched.
    let again = post(mine).await;
    assert_ne!(again, mine);
    assert!(uuid::Uuid::try_parse(&again).is_ok());
    assert_eq!(platform.finished(&again).await["status"], "succeeded");
    // Not a UUID: a new id, as when none is sent.
    let other = post("my-trace-1").await;
    assert!(uuid::Uuid::try_parse(&other).is_ok(), "{other}");
    platform.stop_worker().await;
}

#[tokio::test]
async fn a_full_embedded_queue_answers_429_and_keeps_what_it_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(
        EmbeddedQueue::open(EmbeddedQueueConfig::new(dir.path()).with_max_pending(1)).unwrap(),
    );
    let platform = Platform::new(queue.clone());
    let upstream = Upstream::start("r0").await;
    platform.provider.add("echo", vec![upstream.endpoint()]);
    let (status, accepted) = platform.post("/async-function/echo", "first", None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = platform.post("/async-function/echo", "second", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("the async queue is full"),
        "{error}"
    );
    assert_eq!(queue.len(), 1);
    assert_eq!(platform.record(&accepted).await["status"], "queued");
}
