//! Prometheus metrics of invocations, with the names and labels of OpenFaaS's gateway, and the layer
//! that records them around the `/function/` proxy.
//!
//! `function_name` is `name.namespace`, as in OpenFaaS.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tower::{Layer, Service};

use super::error::X_OPENFAAS_INTERNAL;

/// Upper bounds of the `gateway_functions_seconds` buckets (Prometheus's defaults, as OpenFaaS).
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The gateway's metrics registry. Cheap to clone (an `Arc` inside): hand a clone to an autoscaler
/// to read invocation counts, or to [`GatewayBuilder::metrics`](super::GatewayBuilder::metrics) to
/// share one registry between gateways.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    inner: Arc<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    functions: RwLock<HashMap<String, Arc<FunctionMetrics>>>,
    replicas: Mutex<BTreeMap<String, u64>>,
}

#[derive(Debug, Default)]
struct FunctionMetrics {
    started: AtomicU64,
    completed: AtomicU64,
    codes: Mutex<BTreeMap<u16, CodeStats>>,
}

#[derive(Debug, Default, Clone)]
struct CodeStats {
    count: u64,
    buckets: [u64; BUCKETS.len()],
    sum: f64,
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Metrics::default()
    }

    fn function(&self, function: &str) -> Arc<FunctionMetrics> {
        if let Some(f) = self
            .inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(function)
        {
            return f.clone();
        }
        self.inner
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(function.to_owned())
            .or_default()
            .clone()
    }

    /// Counts an invocation of `function` (`name.namespace`) as started.
    pub fn record_started(&self, function: &str) {
        self.function(function)
            .started
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Records the outcome of a started invocation: its status and the time to its response headers.
    pub fn record_completed(&self, function: &str, status: StatusCode, duration: Duration) {
        let f = self.function(function);
        f.completed.fetch_add(1, Ordering::Relaxed);
        let seconds = duration.as_secs_f64();
        let mut codes = f.codes.lock().unwrap_or_else(|e| e.into_inner());
        let stats = codes.entry(status.as_u16()).or_default();
        stats.count += 1;
        stats.sum += seconds;
        for (bucket, bound) in stats.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// Takes back a started invocation of a function that does not exist, so that requests for
    /// unknown names leave nothing behind.
    pub fn forget_unknown(&self, function: &str) {
        let mut functions = self
            .inner
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(f) = functions.get(function) {
            f.started.fetch_sub(1, Ordering::Relaxed);
            let empty = f.started.load(Ordering::Relaxed) == 0
                && f.codes.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
            if empty {
                functions.remove(function);
            }
        }
    }

    /// Completed invocations of `function` (`name.namespace`), all status codes together: the
    /// `invocationCount` of `/system/functions`.
    pub fn invocations(&self, function: &str) -> u64 {
        let functions = self
            .inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner());
        functions.get(function).map_or(0, |f| {
            f.codes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .map(|s| s.count)
                .sum()
        })
    }

    /// Started invocations of `function`.
    pub fn started(&self, function: &str) -> u64 {
        let functions = self
            .inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner());
        functions
            .get(function)
            .map_or(0, |f| f.started.load(Ordering::Relaxed))
    }

    /// Invocations of `function` started and not yet answered.
    pub fn inflight(&self, function: &str) -> u64 {
        let functions = self
            .inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner());
        functions.get(function).map_or(0, |f| {
            f.started
                .load(Ordering::Relaxed)
                .saturating_sub(f.completed.load(Ordering::Relaxed))
        })
    }

    /// Invocations started and not yet answered, over every function (for a graceful drain).
    pub fn inflight_total(&self) -> u64 {
        let functions = self
            .inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner());
        functions
            .values()
            .map(|f| {
                f.started
                    .load(Ordering::Relaxed)
                    .saturating_sub(f.completed.load(Ordering::Relaxed))
            })
            .sum()
    }

    /// Sets `gateway_service_count` of `function`: its replicas.
    pub fn set_replicas(&self, function: &str, replicas: u64) {
        self.inner
            .replicas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(function.to_owned(), replicas);
    }

    /// Replaces every `gateway_service_count` with `replicas` (functions absent are dropped).
    pub fn replace_replicas(&self, replicas: impl IntoIterator<Item = (String, u64)>) {
        *self
            .inner
            .replicas
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = replicas.into_iter().collect();
    }

    /// Forgets a removed function's metrics.
    pub fn remove_function(&self, function: &str) {
        self.inner
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(function);
        self.inner
            .replicas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(function);
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn render(&self) -> String {
        let functions: BTreeMap<String, Arc<FunctionMetrics>> = self
            .inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let codes: Vec<(&String, BTreeMap<u16, CodeStats>)> = functions
            .iter()
            .map(|(name, f)| {
                (
                    name,
                    f.codes.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                )
            })
            .collect();
        let mut out = String::with_capacity(1024);
        out.push_str("# HELP gateway_function_invocation_total Function metrics\n");
        out.push_str("# TYPE gateway_function_invocation_total counter\n");
        for (name, by_code) in &codes {
            for (code, stats) in by_code {
                let _ = writeln!(
                    out,
                    "gateway_function_invocation_total{{code=\"{code}\",function_name=\"{}\"}} {}",
                    escape(name),
                    stats.count
                );
            }
        }
        out.push_str("# HELP gateway_functions_seconds Function time taken\n");
        out.push_str("# TYPE gateway_functions_seconds histogram\n");
        for (name, by_code) in &codes {
            let name = escape(name);
            for (code, stats) in by_code {
                for (bound, count) in BUCKETS.iter().zip(stats.buckets) {
                    let _ = writeln!(
                        out,
                        "gateway_functions_seconds_bucket{{code=\"{code}\",function_name=\"{name}\",le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "gateway_functions_seconds_bucket{{code=\"{code}\",function_name=\"{name}\",le=\"+Inf\"}} {}",
                    stats.count
                );
                let _ = writeln!(
                    out,
                    "gateway_functions_seconds_sum{{code=\"{code}\",function_name=\"{name}\"}} {}",
                    stats.sum
                );
                let _ = writeln!(
                    out,
                    "gateway_functions_seconds_count{{code=\"{code}\",function_name=\"{name}\"}} {}",
                    stats.count
                );
            }
        }
        out.push_str("# HELP gateway_function_invocation_started The total number of function HTTP requests started\n");
        out.push_str("# TYPE gateway_function_invocation_started counter\n");
        for (name, f) in &functions {
            let _ = writeln!(
                out,
                "gateway_function_invocation_started{{function_name=\"{}\"}} {}",
                escape(name),
                f.started.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP gateway_function_invocation_inflight Function requests started and not yet answered\n");
        out.push_str("# TYPE gateway_function_invocation_inflight gauge\n");
        for (name, f) in &functions {
            let inflight = f
                .started
                .load(Ordering::Relaxed)
                .saturating_sub(f.completed.load(Ordering::Relaxed));
            let _ = writeln!(
                out,
                "gateway_function_invocation_inflight{{function_name=\"{}\"}} {inflight}",
                escape(name)
            );
        }
        out.push_str("# HELP gateway_service_count Current count of replicas for function\n");
        out.push_str("# TYPE gateway_service_count gauge\n");
        for (name, replicas) in self
            .inner
            .replicas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "gateway_service_count{{function_name=\"{}\"}} {replicas}",
                escape(name)
            );
        }
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `name.namespace` a `/function/{name}[.{namespace}][/...]` path invokes, `None` for other
/// paths.
pub fn function_of_path(path: &str, default_namespace: &str) -> Option<String> {
    let rest = path.strip_prefix("/function/")?;
    let target = rest.split('/').next().unwrap_or_default();
    if target.is_empty() {
        return None;
    }
    Some(match target.split_once('.') {
        Some((name, ns)) if !ns.is_empty() => format!("{name}.{ns}"),
        Some((name, _)) => format!("{name}.{default_namespace}"),
        None => format!("{target}.{default_namespace}"),
    })
}

/// A [`Layer`] applying [`InvocationMetrics`].
#[derive(Clone, Debug)]
pub struct InvocationMetricsLayer {
    metrics: Metrics,
    default_namespace: Arc<str>,
}

impl InvocationMetricsLayer {
    /// Records into `metrics`; `/function/{name}` without a namespace counts as `default_namespace`.
    pub fn new(metrics: Metrics, default_namespace: impl Into<Arc<str>>) -> Self {
        InvocationMetricsLayer {
            metrics,
            default_namespace: default_namespace.into(),
        }
    }
}

impl<S> Layer<S> for InvocationMetricsLayer {
    type Service = InvocationMetrics<S>;

    fn layer(&self, inner: S) -> InvocationMetrics<S> {
        InvocationMetrics {
            inner,
            metrics: self.metrics.clone(),
            default_namespace: self.default_namespace.clone(),
        }
    }
}

/// Counts `/function/` requests as started, then their status and time to the response headers.
/// Requests that the gateway answers 404 or 400 itself (unknown function, invalid name) leave no
/// trace.
#[derive(Clone, Debug)]
pub struct InvocationMetrics<S> {
    inner: S,
    metrics: Metrics,
    default_namespace: Arc<str>,
}

impl<S, B, ResBody> Service<Request<B>> for InvocationMetrics<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let function = function_of_path(request.uri().path(), &self.default_namespace);
        let record = function.map(|function| {
            self.metrics.record_started(&function);
            Record {
                metrics: self.metrics.clone(),
                function,
                started: Instant::now(),
            }
        });
        ResponseFuture {
            inner: self.inner.call(request),
            record,
        }
    }
}

#[derive(Debug)]
struct Record {
    metrics: Metrics,
    function: String,
    started: Instant,
}

pin_project_lite::pin_project! {
    /// The response future of [`InvocationMetrics`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Some(record) = this.record.take() {
            match &result {
                // The gateway's own 404 (unknown function) or 400 (invalid name): nothing to count,
                // and nothing to keep for names anyone can make up.
                Ok(response)
                    if matches!(
                        response.status(),
                        StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST
                    ) && response.headers().contains_key(X_OPENFAAS_INTERNAL) =>
                {
                    record.metrics.forget_unknown(&record.function);
                }
                Ok(response) => {
                    let elapsed = record.started.elapsed();
                    tracing::debug!(
                        function = %record.function,
                        status = response.status().as_u16(),
                        seconds = elapsed.as_secs_f64(),
                        "invocation"
                    );
                    record
                        .metrics
                        .record_completed(&record.function, response.status(), elapsed);
                }
                Err(_) => record.metrics.record_completed(
                    &record.function,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    record.started.elapsed(),
                ),
            }
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_paths() {
        assert_eq!(
            function_of_path("/function/echo", "fn").as_deref(),
            Some("echo.fn")
        );
        assert_eq!(
            function_of_path("/function/echo.prod/a/b", "fn").as_deref(),
            Some("echo.prod")
        );
        assert_eq!(
            function_of_path("/function/echo/", "fn").as_deref(),
            Some("echo.fn")
        );
        assert_eq!(function_of_path("/function/", "fn"), None);
        assert_eq!(function_of_path("/system/functions", "fn"), None);
    }

    #[test]
    fn renders_openfaas_metrics() {
        let m = Metrics::new();
        m.record_started("echo.openfaas-fn");
        m.record_completed(
            "echo.openfaas-fn",
            StatusCode::OK,
            Duration::from_millis(20),
        );
        m.record_started("echo.openfaas-fn");
        m.record_completed(
            "echo.openfaas-fn",
            StatusCode::BAD_GATEWAY,
            Duration::from_secs(20),
        );
        m.record_started("echo.openfaas-fn");
        m.set_replicas("echo.openfaas-fn", 2);
        assert_eq!(m.invocations("echo.openfaas-fn"), 2);
        assert_eq!(m.inflight("echo.openfaas-fn"), 1);
        assert_eq!(m.inflight_total(), 1);
        let text = m.render();
        for line in [
            "gateway_function_invocation_total{code=\"200\",function_name=\"echo.openfaas-fn\"} 1",
            "gateway_function_invocation_total{code=\"502\",function_name=\"echo.openfaas-fn\"} 1",
            "gateway_functions_seconds_bucket{code=\"200\",function_name=\"echo.openfaas-fn\",le=\"0.025\"} 1",
            "gateway_functions_seconds_bucket{code=\"200\",function_name=\"echo.openfaas-fn\",le=\"0.01\"} 0",
            "gateway_functions_seconds_bucket{code=\"502\",function_name=\"echo.openfaas-fn\",le=\"10\"} 0",
            "gateway_functions_seconds_bucket{code=\"502\",function_name=\"echo.openfaas-fn\",le=\"+Inf\"} 1",
            "gateway_functions_seconds_count{code=\"200\",function_name=\"echo.openfaas-fn\"} 1",
            "gateway_function_invocation_started{function_name=\"echo.openfaas-fn\"} 3",
            "gateway_service_count{function_name=\"echo.openfaas-fn\"} 2",
            "# TYPE gateway_functions_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn unknown_functions_leave_nothing() {
        let m = Metrics::new();
        m.record_started("nope.fn");
        m.forget_unknown("nope.fn");
        assert!(!m.render().contains("nope"));
    }
}
