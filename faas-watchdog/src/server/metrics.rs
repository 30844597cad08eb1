//! Prometheus metrics of the served requests, in the text exposition format.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::Method;

/// The buckets of `http_request_duration_seconds` (Prometheus' defaults, as of-watchdog uses).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug)]
struct Series {
    method: Method,
    code: u16,
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Counters for `http_requests_total`, `http_requests_in_flight` and
/// `http_request_duration_seconds`, labelled by `code` and `method` as of-watchdog's.
#[derive(Debug, Default)]
pub struct Metrics {
    in_flight: AtomicUsize,
    series: Mutex<Vec<Series>>,
}

impl Metrics {
    /// Requests being served now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request in; returns the number in flight before it.
    pub(crate) fn enter(&self) -> usize {
        self.in_flight.fetch_add(1, Ordering::AcqRel)
    }

    /// Counts a request out.
    pub(crate) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Records a finished request.
    pub(crate) fn observe(&self, method: &Method, code: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let idx = match series
            .iter()
            .position(|s| s.code == code && s.method == *method)
        {
            Some(i) => i,
            None => {
                series.push(Series {
                    method: method.clone(),
                    code,
                    count: 0,
                    sum: 0.0,
                    buckets: [0; BUCKETS.len()],
                });
                series.len() - 1
            }
        };
        let s = &mut series[idx];
        s.count += 1;
        s.sum += secs;
        for (bucket, bound) in s.buckets.iter_mut().zip(BUCKETS) {
            if secs <= bound {
                *bucket += 1;
            }
        }
    }

    /// The total number of requests recorded with this status code (all methods).
    pub fn requests_total(&self, code: u16) -> u64 {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        series
            .iter()
            .filter(|s| s.code == code)
            .map(|s| s.count)
            .sum()
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(512 + series.len() * 1024);
        out.push_str("# HELP http_request_duration_seconds Seconds spent serving HTTP requests.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for s in series.iter() {
            let labels = format!(
                "code=\"{}\",method=\"{}\"",
                s.code,
                s.method.as_str().to_ascii_lowercase()
            );
            for (count, bound) in s.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out.push_str("# HELP http_requests_in_flight The number of HTTP requests in flight.\n");
        out.push_str("# TYPE http_requests_in_flight gauge\n");
        let _ = writeln!(out, "http_requests_in_flight {}", self.in_flight());
        out.push_str("# HELP http_requests_total The total number of HTTP requests.\n");
        out.push_str("# TYPE http_requests_total counter\n");
        for s in series.iter() {
            let _ = writeln!(
                out,
                "http_requests_total{{code=\"{}\",method=\"{}\"}} {}",
                s.code,
                s.method.as_str().to_ascii_lowercase(),
                s.count
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.observe(&Method::GET, 200, Duration::from_millis(3));
        m.observe(&Method::GET, 200, Duration::from_millis(300));
        m.observe(&Method::POST, 429, Duration::from_millis(1));
        assert_eq!(m.enter(), 0);
        let text = m.render();
        assert!(
            text.contains("http_requests_total{code=\"200\",method=\"get\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("http_requests_total{code=\"429\",method=\"post\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("http_requests_in_flight 1\n"), "{text}");
        assert!(text.contains(
            "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"0.005\"} 1\n"
        ));
        assert!(text.contains(
            "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"0.5\"} 2\n"
        ));
        assert!(
            text.contains("http_request_duration_seconds_count{code=\"200\",method=\"get\"} 2\n")
        );
        assert_eq!(m.requests_total(200), 2);
    }
}
