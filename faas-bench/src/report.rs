//! The report of a scenario: measured cases, derived figures checked against targets, and its rendering as a
//! table or as JSON.

use std::fmt::{self, Write as _};

use serde::Serialize;

use crate::process::Memory;
use crate::stats::{LatencySummary, ratio};

/// Everything one scenario measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Where and how it ran.
    pub settings: Settings,
    /// One row per (subject, connection count).
    pub cases: Vec<Case>,
    /// Derived figures (ratios, added latency, memory, sizes), with their targets.
    pub figures: Vec<Figure>,
    /// Free-form remarks (e.g. a case that could not run and why).
    pub notes: Vec<String>,
}

/// How the run was set up.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settings {
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// CPU model, from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Measured time per case, in seconds.
    pub duration_s: f64,
    /// Warm-up per case, in seconds.
    pub warmup_s: f64,
    /// Worker threads of the load generator.
    pub client_threads: u16,
    /// Worker threads of the baseline upstream.
    pub upstream_threads: u16,
    /// Request body size in bytes.
    pub body_size: usize,
    /// Whether faas-bench itself is an optimized build.
    pub release: bool,
    /// The machine's 1-minute load average when the run started (above ~0.5, something else runs).
    pub load_average: f64,
}

/// CPU used by one process during a case, in percent of one core.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuShare {
    /// Process role: `bench` (the load generator), `fwatchdog`, `upstream`, `faas`...
    pub process: String,
    /// Percent of one core (200 is both cores of a 2-core machine).
    pub percent: f64,
    /// CPU time per answered request, in microseconds: unlike throughput, it hardly depends on what else
    /// runs on the machine.
    pub us_per_request: f64,
}

/// One measured row: a subject driven at one connection count.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// Short id of the subject, e.g. `a`; cases with the same id form one series.
    pub id: String,
    /// What was measured, e.g. `upstream direct`.
    pub label: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Requests counted in the measured window.
    pub requests: u64,
    /// Errors (non-2xx, transport, timeouts).
    pub errors: u64,
    /// Requests per second.
    pub rps: f64,
    /// Latency percentiles.
    pub latency: LatencySummary,
    /// Id of the series this one is compared to, at the same connection count.
    pub baseline: Option<String>,
    /// `rps / baseline rps` (set by [`Report::compute_ratios`]).
    pub ratio: Option<f64>,
    /// Memory of the process under test after the case.
    pub memory: Option<Memory>,
    /// CPU used during the case by each process involved.
    pub cpu: Vec<CpuShare>,
    /// The throughput the machine could sustain if CPU were the only bound: its CPUs divided by the CPU
    /// time all the watched processes spend per request. Meaningful when enough connections keep the
    /// processes busy; robust to other load on the machine.
    pub capacity_rps: Option<f64>,
    /// CPU used during the case by every other process of the machine, in percent of one core: a noisy
    /// neighbour shows here and makes the case unreliable.
    pub others_cpu: Option<f64>,
    /// The first error, if any.
    pub first_error: Option<String>,
}

/// Which way a target bounds a figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The figure must be at least this.
    AtLeast(f64),
    /// The figure must be at most this.
    AtMost(f64),
}

impl Bound {
    /// Whether `value` meets the bound.
    #[must_use]
    pub fn met_by(self, value: f64) -> bool {
        match self {
            Bound::AtLeast(min) => value >= min,
            Bound::AtMost(max) => value <= max,
        }
    }
}

/// Unit of a [`Figure`], which decides how it prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A fraction printed as a percentage (0.35 prints `35.0%`).
    Ratio,
    /// Microseconds.
    Micros,
    /// Requests per second.
    PerSecond,
    /// Bytes, printed in MiB (2^20, as `ps`, `top` and `ls -h` count).
    Bytes,
    /// Milliseconds.
    Millis,
}

/// A derived figure, optionally with a target and a reference (the OpenFaaS figure it is compared to).
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// What it is, e.g. `http mode throughput vs direct, 16 connections`.
    pub name: String,
    /// The value, in `unit`.
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
    /// The target, if any.
    pub target: Option<Bound>,
    /// The comparable figure of OpenFaaS, in `unit`, if known.
    pub reference: Option<f64>,
    /// Whether the target is met (`None` without a target).
    pub pass: Option<bool>,
}

impl Figure {
    /// A figure without a target.
    #[must_use]
    pub fn new(name: impl Into<String>, value: f64, unit: Unit) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
            target: None,
            reference: None,
            pass: None,
        }
    }

    /// Sets the target and whether it is met.
    #[must_use]
    pub fn target(mut self, bound: Bound) -> Self {
        self.target = Some(bound);
        self.pass = Some(bound.met_by(self.value));
        self
    }

    /// Sets the OpenFaaS figure this one is compared to.
    #[must_use]
    pub fn reference(mut self, value: f64) -> Self {
        self.reference = Some(value);
        self
    }
}

/// Formats `value` in `unit` for humans.
#[must_use]
pub fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Ratio => format!("{:.1}%", value * 100.0),
        Unit::Micros => format!("{value:.1} µs"),
        Unit::PerSecond => format!("{} req/s", thousands(value)),
        Unit::Bytes => format!("{:.2} MiB", value / MIB),
        Unit::Millis => format!("{value:.1} ms"),
    }
}

/// Rounds to an integer and groups digits by three with commas (`12345.6` gives `12,346`).
#[must_use]
pub fn thousands(value: f64) -> String {
    let rounded = value.round();
    let digits = format!("{:.0}", rounded.abs());
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if rounded < 0.0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

impl Report {
    /// The case of series `id` at `connections`, if it ran.
    #[must_use]
    pub fn case(&self, id: &str, connections: usize) -> Option<&Case> {
        self.cases
            .iter()
            .find(|c| c.id == id && c.connections == connections)
    }

    /// Fills each case's `ratio` from its baseline series at the same connection count.
    pub fn compute_ratios(&mut self) {
        let rates: Vec<(String, usize, f64)> = self
            .cases
            .iter()
            .map(|c| (c.id.clone(), c.connections, c.rps))
            .collect();
        for case in &mut self.cases {
            case.ratio = case.baseline.as_ref().and_then(|base| {
                rates
                    .iter()
                    .find(|(id, conns, _)| id == base && *conns == case.connections)
                    .and_then(|&(_, _, rps)| ratio(case.rps, rps))
            });
        }
    }

    /// Throughput of series `id` relative to series `base` at `connections`, when both ran.
    #[must_use]
    pub fn throughput_ratio(&self, id: &str, base: &str, connections: usize) -> Option<f64> {
        let case = self.case(id, connections)?;
        ratio(case.rps, self.case(base, connections)?.rps)
    }

    /// CPU-bound capacity of series `id` relative to series `base` at `connections`, when both ran.
    #[must_use]
    pub fn capacity_ratio(&self, id: &str, base: &str, connections: usize) -> Option<f64> {
        let case = self.case(id, connections)?.capacity_rps?;
        ratio(case, self.case(base, connections)?.capacity_rps?)
    }

    /// Median latency series `id` adds over series `base` at `connections`, when both ran.
    #[must_use]
    pub fn added_p50_us(&self, id: &str, base: &str, connections: usize) -> Option<f64> {
        Some(
            self.case(id, connections)?.latency.p50_us
                - self.case(base, connections)?.latency.p50_us,
        )
    }

    /// Whether every figure with a target meets it.
    #[must_use]
    pub fn all_targets_met(&self) -> bool {
        self.figures.iter().all(|f| f.pass != Some(false))
    }

    /// The report as pretty JSON.
    ///
    /// # Errors
    /// Never in practice (every field serializes).
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }
}

fn cpu_cell(case: &Case) -> String {
    let mut cells: Vec<String> = case
        .cpu
        .iter()
        .map(|share| {
            format!(
                "{} {:.0}% {:.0}µs",
                share.process, share.percent, share.us_per_request
            )
        })
        .collect();
    if let Some(others) = case.others_cpu {
        cells.push(format!("others {others:.0}%"));
    }
    cells.join(", ")
}

/// Bytes in a MiB.
pub const MIB: f64 = 1024.0 * 1024.0;

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        writeln!(
            f,
            "scenario {}: {} s per case after {} s warm-up, {} CPUs ({}), load average {:.2}, load generator \
             {} thread(s), upstream {} thread(s), {}-byte POST bodies{}",
            self.scenario,
            s.duration_s,
            s.warmup_s,
            s.cpus,
            s.cpu_model,
            s.load_average,
            s.client_threads,
            s.upstream_threads,
            s.body_size,
            if s.release {
                ""
            } else {
                " (DEBUG BUILD: figures are meaningless)"
            }
        )?;
        let mut table = String::new();
        let _ = writeln!(
            table,
            "{:<32} {:>5} {:>10} {:>10} {:>9} {:>9} {:>6} {:>8} {:>7} {:>7}  cpu (% of one core, µs per request)",
            "case",
            "conns",
            "req/s",
            "cap req/s",
            "p50 µs",
            "p99 µs",
            "errors",
            "vs base",
            "rss MiB",
            "hwm MiB"
        );
        for case in &self.cases {
            let label = format!("{} {}", case.id, case.label);
            let _ = writeln!(
                table,
                "{:<32} {:>5} {:>10} {:>10} {:>9.1} {:>9.1} {:>6} {:>8} {:>7} {:>7}  {}",
                label,
                case.connections,
                thousands(case.rps),
                case.capacity_rps.map_or_else(|| "-".to_owned(), thousands),
                case.latency.p50_us,
                case.latency.p99_us,
                case.errors,
                case.ratio
                    .map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0)),
                case.memory
                    .map_or_else(|| "-".to_owned(), |m| mib(m.rss_kib)),
                case.memory
                    .map_or_else(|| "-".to_owned(), |m| mib(m.hwm_kib)),
                cpu_cell(case),
            );
        }
        f.write_str(&table)?;
        for case in self.cases.iter().filter(|c| c.first_error.is_some()) {
            writeln!(
                f,
                "  {} at {} connections, first error: {}",
                case.id,
                case.connections,
                case.first_error.as_deref().unwrap_or_default()
            )?;
        }
        if !self.figures.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "{:<58} {:>16} {:>18} {:>14}  result",
                "figure", "value", "target", "openfaas"
            )?;
            for fig in &self.figures {
                let target = match fig.target {
                    Some(Bound::AtLeast(v)) => format!(">= {}", format_value(v, fig.unit)),
                    Some(Bound::AtMost(v)) => format!("<= {}", format_value(v, fig.unit)),
                    None => "-".to_owned(),
                };
                let reference = fig
                    .reference
                    .map_or_else(|| "-".to_owned(), |v| format_value(v, fig.unit));
                let result = match fig.pass {
                    Some(true) => "ok",
                    Some(false) => "MISSED",
                    None => "",
                };
                writeln!(
                    f,
                    "{:<58} {:>16} {:>18} {:>14}  {}",
                    fig.name,
                    format_value(fig.value, fig.unit),
                    target,
                    reference,
                    result
                )?;
            }
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str, connections: usize, rps: f64, p50_us: f64, baseline: Option<&str>) -> Case {
        Case {
            id: id.to_owned(),
            label: format!("series {id}"),
            connections,
            requests: (rps * 5.0) as u64,
            errors: 0,
            rps,
            latency: LatencySummary {
                p50_us,
                p99_us: p50_us * 2.0,
                ..LatencySummary::default()
            },
            baseline: baseline.map(str::to_owned),
            ratio: None,
            memory: None,
            cpu: Vec::new(),
            capacity_rps: None,
            others_cpu: None,
            first_error: None,
        }
    }

    fn sample() -> Report {
        let mut report = Report {
            scenario: "watchdog".to_owned(),
            cases: vec![
                case("a", 1, 20_000.0, 40.0, None),
                case("a", 16, 50_000.0, 300.0, None),
                case("b", 1, 10_000.0, 90.0, Some("a")),
                case("b", 16, 20_000.0, 700.0, Some("a")),
                case("c", 8, 2_500.0, 3000.0, Some("missing")),
            ],
            ..Report::default()
        };
        report.compute_ratios();
        report
    }

    #[test]
    fn ratios_pair_cases_by_connections() {
        let report = sample();
        assert_eq!(report.cases[0].ratio, None);
        assert_eq!(report.case("b", 1).unwrap().ratio, Some(0.5));
        assert_eq!(report.case("b", 16).unwrap().ratio, Some(0.4));
        assert_eq!(report.case("c", 8).unwrap().ratio, None);
        assert_eq!(report.throughput_ratio("b", "a", 16), Some(0.4));
        assert_eq!(report.throughput_ratio("b", "a", 64), None);
        assert_eq!(report.added_p50_us("b", "a", 1), Some(50.0));
    }

    #[test]
    fn targets() {
        assert!(Bound::AtLeast(0.35).met_by(0.35));
        assert!(!Bound::AtLeast(0.35).met_by(0.34));
        assert!(Bound::AtMost(60.0).met_by(59.9));
        assert!(!Bound::AtMost(60.0).met_by(60.1));
        let fig = Figure::new("x", 0.4, Unit::Ratio)
            .target(Bound::AtLeast(0.35))
            .reference(0.18);
        assert_eq!(fig.pass, Some(true));
        let mut report = sample();
        report.figures.push(fig);
        assert!(report.all_targets_met());
        report
            .figures
            .push(Figure::new("y", 70.0, Unit::Micros).target(Bound::AtMost(60.0)));
        assert!(!report.all_targets_met());
    }

    #[test]
    fn value_formatting() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.5), "1,000");
        assert_eq!(thousands(12_345.6), "12,346");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-4_321.0), "-4,321");
        assert_eq!(format_value(0.354, Unit::Ratio), "35.4%");
        assert_eq!(format_value(42.04, Unit::Micros), "42.0 µs");
        assert_eq!(format_value(2_500.0, Unit::PerSecond), "2,500 req/s");
        assert_eq!(format_value(3.5 * MIB, Unit::Bytes), "3.50 MiB");
    }

    #[test]
    fn table_rendering() {
        let mut report = sample();
        report.settings.release = true;
        report.figures.push(
            Figure::new(
                "http mode throughput vs direct, 16 connections",
                0.4,
                Unit::Ratio,
            )
            .target(Bound::AtLeast(0.35))
            .reference(0.18),
        );
        report.cases[2].first_error = Some("status 502".to_owned());
        report.cases[2].memory = Some(Memory {
            rss_kib: 2048,
            hwm_kib: 4096,
        });
        report.cases[2].cpu = vec![CpuShare {
            process: "bench".to_owned(),
            percent: 95.2,
            us_per_request: 17.4,
        }];
        report.cases[2].capacity_rps = Some(41_234.0);
        report.cases[2].others_cpu = Some(3.4);
        let text = report.to_string();
        assert!(text.starts_with("scenario watchdog: "), "{text}");
        assert!(!text.contains("DEBUG"), "{text}");
        let row = text
            .lines()
            .find(|l| l.starts_with("b series b") && l.contains(" 1 "))
            .unwrap();
        assert!(row.contains("10,000"), "{row}");
        assert!(row.contains("50.0%"), "{row}");
        assert!(row.contains(" 2.0 "), "{row}");
        assert!(row.contains(" 4.0 "), "{row}");
        assert!(row.contains("bench 95% 17µs, others 3%"), "{row}");
        assert!(row.contains("41,234"), "{row}");
        assert!(
            text.contains("b at 1 connections, first error: status 502"),
            "{text}"
        );
        let fig = text.lines().find(|l| l.starts_with("http mode")).unwrap();
        assert!(
            fig.contains("40.0%") && fig.contains(">= 35.0%") && fig.contains("18.0%"),
            "{fig}"
        );
        assert!(fig.trim_end().ends_with("ok"), "{fig}");
    }

    #[test]
    fn json_rendering() {
        let mut report = sample();
        report
            .figures
            .push(Figure::new("y", 70.0, Unit::Micros).target(Bound::AtMost(60.0)));
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        assert_eq!(json["scenario"], "watchdog");
        assert_eq!(json["cases"][2]["ratio"], 0.5);
        assert_eq!(json["cases"][2]["latency"]["p50_us"], 90.0);
        assert_eq!(json["figures"][0]["target"]["at_most"], 60.0);
        assert_eq!(json["figures"][0]["pass"], false);
        assert_eq!(json["figures"][0]["unit"], "micros");
    }
}
