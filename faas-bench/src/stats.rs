//! Latency histograms and the summary figures drawn from them.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram can hold: one minute, in nanoseconds (larger values saturate).
const MAX_NANOS: u64 = 60_000_000_000;

/// A latency histogram in nanoseconds, precise to 3 significant digits (0.1%).
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(1, MAX_NANOS, 3)
            .expect("constant histogram bounds are valid");
        Self { hist }
    }

    /// Records one latency; values beyond one minute count as one minute.
    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.hist.saturating_record(nanos.clamp(1, MAX_NANOS));
    }

    /// Adds every value of `other` to this histogram.
    pub fn merge(&mut self, other: &Latency) {
        self.hist
            .add(&other.hist)
            .expect("histograms with the same bounds merge");
    }

    /// Number of values recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The latency at `quantile` (0.0 to 1.0), in microseconds; 0 when empty.
    #[must_use]
    pub fn quantile_us(&self, quantile: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        self.hist.value_at_quantile(quantile) as f64 / 1e3
    }

    /// The summary of this histogram.
    #[must_use]
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            p50_us: self.quantile_us(0.50),
            p90_us: self.quantile_us(0.90),
            p99_us: self.quantile_us(0.99),
            max_us: if self.hist.is_empty() {
                0.0
            } else {
                self.hist.max() as f64 / 1e3
            },
            mean_us: if self.hist.is_empty() {
                0.0
            } else {
                self.hist.mean() / 1e3
            },
        }
    }
}

/// Percentiles of a latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Slowest request.
    pub max_us: f64,
    /// Arithmetic mean.
    pub mean_us: f64,
}

/// Requests per second of `requests` completed in `elapsed`; 0 for an empty interval.
#[must_use]
pub fn rate(requests: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0.0
    } else {
        requests as f64 / secs
    }
}

/// `value / base`, or `None` when the base is zero (nothing to compare with).
#[must_use]
pub fn ratio(value: f64, base: f64) -> Option<f64> {
    (base > 0.0).then(|| value / base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_histogram_is_zero() {
        let latency = Latency::new();
        assert_eq!(latency.count(), 0);
        assert_eq!(latency.summary(), LatencySummary::default());
    }

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        let mut latency = Latency::new();
        for us in 1..=1000u64 {
            latency.record(Duration::from_micros(us));
        }
        let summary = latency.summary();
        assert_eq!(latency.count(), 1000);
        // 3 significant digits: within 0.1% of the exact value
        assert!((summary.p50_us - 500.0).abs() <= 0.5, "{summary:?}");
        assert!((summary.p90_us - 900.0).abs() <= 0.9, "{summary:?}");
        assert!((summary.p99_us - 990.0).abs() <= 1.0, "{summary:?}");
        assert!((summary.max_us - 1000.0).abs() <= 1.0, "{summary:?}");
        assert!((summary.mean_us - 500.5).abs() <= 0.6, "{summary:?}");
    }

    #[test]
    fn microsecond_resolution_at_small_latencies() {
        let mut latency = Latency::new();
        latency.record(Duration::from_nanos(37_400));
        assert!((latency.quantile_us(0.5) - 37.4).abs() < 0.05);
    }

    #[test]
    fn merge_and_saturation() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        a.record(Duration::from_micros(10));
        b.record(Duration::from_secs(3600));
        b.record(Duration::ZERO);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!((a.summary().max_us - 60e6).abs() / 60e6 < 0.001);
    }

    #[test]
    fn rates_and_ratios() {
        assert_eq!(rate(500, Duration::from_millis(250)), 2000.0);
        assert_eq!(rate(5, Duration::ZERO), 0.0);
        assert_eq!(ratio(1.0, 4.0), Some(0.25));
        assert_eq!(ratio(1.0, 0.0), None);
    }
}
