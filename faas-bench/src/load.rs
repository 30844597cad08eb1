//! The closed-loop load generator.
//!
//! Each of N connections is one task holding one keep-alive HTTP/1.1 connection
//! (`hyper::client::conn::http1`): it sends a request, reads the whole response, and sends the next one,
//! for a warm-up period (not measured) and then for the measured duration. A request counts when it was sent
//! inside the measured window and answered before its end; a non-2xx answer, a transport error or a request
//! slower than the timeout is an error (the connection is then reopened). The run is bounded in time (it stops
//! at the end of the window, dropping requests still in flight) and in requests (`max_requests`, warm-up
//! included).
//!
//! The tasks run on whatever runtime calls [`run`]: `faas-bench` uses a current-thread runtime by default,
//! which on a 2-core machine leaves the most CPU to the processes under test (see `docs/performance.md`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::stats::{Latency, rate};

/// What to send, and where.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server's address.
    pub addr: SocketAddr,
    /// Request method.
    pub method: Method,
    /// Path and query, e.g. `/function/bench`.
    pub path: String,
    /// Extra headers (`Host` is set from `addr`).
    pub headers: HeaderMap,
    /// Request body, sent with `Content-Length`.
    pub body: Bytes,
}

impl Target {
    /// `POST path` to `addr` with a `text/plain` body of `body_size` bytes.
    #[must_use]
    pub fn post(addr: SocketAddr, path: impl Into<String>, body_size: usize) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Self {
            addr,
            method: Method::POST,
            path: path.into(),
            headers,
            body: payload(body_size),
        }
    }
}

/// A request body of `size` bytes: `hello, faas\n` repeated and cut to size.
#[must_use]
pub fn payload(size: usize) -> Bytes {
    const TEXT: &[u8] = b"hello, faas\n";
    TEXT.iter().copied().cycle().take(size).collect()
}

/// How hard and how long to drive a [`Target`].
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Concurrent keep-alive connections, each with one request in flight.
    pub connections: usize,
    /// Time before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Upper bound on requests sent over the whole run, warm-up included.
    pub max_requests: u64,
    /// Timeout of one request (connect included).
    pub timeout: Duration,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Requests sent and answered inside the measured window (errors included).
    pub requests: u64,
    /// Responses received over the whole run, warm-up included (what the CPU readings cover).
    pub answered: u64,
    /// Errors over the whole run, warm-up included: non-2xx answers, transport errors and timeouts.
    pub errors: u64,
    /// Length of the measured window (shorter than asked when `max_requests` stopped the run).
    pub elapsed: Duration,
    /// Latencies of the requests counted in `requests`.
    pub latency: Latency,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
}

impl LoadResult {
    /// Requests per second over the measured window.
    #[must_use]
    pub fn rps(&self) -> f64 {
        rate(self.requests, self.elapsed)
    }
}

/// Per-connection tallies, merged at the end of a run.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    answered: u64,
    errors: u64,
    latency: Latency,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, message: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message());
        }
    }
}

/// The window shared by all connections of a run.
#[derive(Debug, Clone, Copy)]
struct Window {
    measure_from: Instant,
    end: Instant,
}

/// Drives `target` as `spec` says and returns the measurements.
///
/// # Panics
/// If `spec.connections` is zero.
pub async fn run(target: &Target, spec: &LoadSpec) -> LoadResult {
    assert!(spec.connections > 0, "at least one connection is needed");
    let start = Instant::now();
    let window = Window {
        measure_from: start + spec.warmup,
        end: start + spec.warmup + spec.duration,
    };
    let budget = Arc::new(AtomicU64::new(spec.max_requests));
    let target = Arc::new(target.clone());
    let mut tasks = JoinSet::new();
    for _ in 0..spec.connections {
        let target = Arc::clone(&target);
        let budget = Arc::clone(&budget);
        let timeout = spec.timeout;
        tasks.spawn(async move { connection_loop(&target, window, &budget, timeout).await });
    }
    let mut total = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(tally) => {
                total.requests += tally.requests;
                total.answered += tally.answered;
                total.errors += tally.errors;
                total.latency.merge(&tally.latency);
                if total.first_error.is_none() {
                    total.first_error = tally.first_error;
                }
            }
            Err(e) => total.error(|| format!("load task failed: {e}")),
        }
    }
    let stopped = Instant::now().min(window.end);
    LoadResult {
        requests: total.requests,
        answered: total.answered,
        errors: total.errors,
        elapsed: stopped.saturating_duration_since(window.measure_from),
        latency: total.latency,
        first_error: total.first_error,
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Opens a keep-alive connection to `target` and spawns its driver.
async fn connect(target: &Target) -> Result<Sender, String> {
    let stream = TcpStream::connect(target.addr)
        .await
        .map_err(|e| format!("connect to {}: {e}", target.addr))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("set TCP_NODELAY: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("http handshake with {}: {e}", target.addr))?;
    tokio::spawn(async move {
        // the connection ends when the sender is dropped or the peer closes it; its error, if any,
        // surfaces on the next request through the sender
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request on `sender` and reads the whole response; returns whether the status was 2xx.
async fn exchange(sender: &mut Sender, request: Request<Full<Bytes>>) -> Result<u16, String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection closed: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status().as_u16();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the response body: {e}"))?;
    Ok(status)
}

fn build_request(target: &Target, host: &HeaderValue) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(target.body.clone()));
    *request.method_mut() = target.method.clone();
    *request.uri_mut() = target
        .path
        .parse()
        .unwrap_or_else(|_| http::Uri::from_static("/"));
    let headers = request.headers_mut();
    headers.clone_from(&target.headers);
    headers.insert(HOST, host.clone());
    request
}

/// Takes one request from the shared budget; false when it is spent.
fn take(budget: &AtomicU64) -> bool {
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_ok()
}

async fn connection_loop(
    target: &Target,
    window: Window,
    budget: &AtomicU64,
    timeout: Duration,
) -> Tally {
    let mut tally = Tally::default();
    let host = HeaderValue::from_str(&target.addr.to_string())
        .expect("a socket address is a valid header value");
    let mut sender: Option<Sender> = None;
    loop {
        let sent = Instant::now();
        if sent >= window.end || !take(budget) {
            break;
        }
        let deadline = (sent + timeout).min(window.end);
        let attempt = async {
            let conn = match sender.as_mut() {
                Some(conn) => conn,
                None => sender.insert(connect(target).await?),
            };
            exchange(conn, build_request(target, &host)).await
        };
        let outcome = tokio::time::timeout_at(deadline, attempt).await;
        let done = Instant::now();
        match outcome {
            // the window closed with this request in flight: it is neither counted nor an error
            Err(_) if deadline >= window.end => break,
            Err(_) => {
                tally.error(|| format!("no answer within {timeout:?}"));
                sender = None;
            }
            Ok(Err(message)) => {
                tally.error(|| message);
                sender = None;
                // do not spin on a refused connection
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(Ok(status)) => {
                tally.answered += 1;
                if !(200..300).contains(&status) {
                    tally.error(|| format!("status {status}"));
                }
                if sent >= window.measure_from && done <= window.end {
                    tally.requests += 1;
                    tally.latency.record(done - sent);
                }
            }
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_sizes() {
        assert_eq!(payload(0), Bytes::new());
        assert_eq!(payload(5), Bytes::from_static(b"hello"));
        assert_eq!(payload(12), Bytes::from_static(b"hello, faas\n"));
        assert_eq!(payload(14), Bytes::from_static(b"hello, faas\nhe"));
    }

    #[test]
    fn budget_is_bounded() {
        let budget = AtomicU64::new(2);
        assert!(take(&budget));
        assert!(take(&budget));
        assert!(!take(&budget));
        assert!(!take(&budget));
    }

    fn spec(connections: usize, duration_ms: u64, max_requests: u64) -> LoadSpec {
        LoadSpec {
            connections,
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(duration_ms),
            max_requests,
            timeout: Duration::from_secs(2),
        }
    }

    /// A server answering every request with `status` after reading it.
    async fn server(status: u16) -> SocketAddr {
        use hyper::service::service_fn;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service =
                        service_fn(move |req: Request<hyper::body::Incoming>| async move {
                            let _ = req.into_body().collect().await;
                            let mut response =
                                http::Response::new(Full::new(Bytes::from_static(b"ok")));
                            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn counts_answers_in_the_window() {
        let addr = server(200).await;
        let result = run(&Target::post(addr, "/", 12), &spec(4, 200, u64::MAX)).await;
        assert!(result.requests > 0, "{result:?}");
        assert!(result.answered >= result.requests);
        assert_eq!(result.errors, 0, "{result:?}");
        assert_eq!(result.latency.count(), result.requests);
        assert!(result.elapsed <= Duration::from_millis(200));
        assert!(result.rps() > 0.0);
    }

    #[tokio::test]
    async fn non_2xx_answers_are_errors() {
        let addr = server(502).await;
        let result = run(&Target::post(addr, "/", 12), &spec(2, 100, u64::MAX)).await;
        assert!(result.errors > 0);
        assert_eq!(result.errors, result.answered);
        assert_eq!(result.first_error.as_deref(), Some("status 502"));
    }

    #[tokio::test]
    async fn bounded_in_requests() {
        let addr = server(200).await;
        let result = run(&Target::post(addr, "/", 12), &spec(3, 5_000, 25)).await;
        assert_eq!(result.answered, 25);
        assert!(
            result.elapsed < Duration::from_secs(5),
            "stopped early: {result:?}"
        );
    }

    #[tokio::test]
    async fn bounded_in_time_when_nothing_answers() {
        // accepts connections (the kernel backlog does) but never answers
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let started = std::time::Instant::now();
        let result = run(&Target::post(addr, "/", 12), &spec(2, 150, u64::MAX)).await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(result.requests, 0);
        assert_eq!(result.errors, 0, "cut by the end of the window, not failed");
        drop(listener);
    }

    #[tokio::test]
    async fn refused_connections_are_errors_without_spinning() {
        let addr = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let result = run(&Target::post(addr, "/", 12), &spec(1, 100, u64::MAX)).await;
        assert!(result.errors >= 1);
        // one attempt every 10 ms at most
        assert!(result.errors <= 20, "{result:?}");
        assert!(result.first_error.unwrap().contains("connect to"));
    }

    #[test]
    fn requests_carry_host_and_body() {
        let target = Target::post("127.0.0.1:8080".parse().unwrap(), "/function/x?a=1", 3);
        let host = HeaderValue::from_static("127.0.0.1:8080");
        let request = build_request(&target, &host);
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri().path(), "/function/x");
        assert_eq!(request.uri().query(), Some("a=1"));
        assert_eq!(request.headers()[HOST], "127.0.0.1:8080");
        assert_eq!(request.headers()[CONTENT_TYPE], "text/plain");
    }
}
