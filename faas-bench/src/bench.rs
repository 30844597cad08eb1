//! [`Bench`]: what a scenario gets to start processes, drive load and record the report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;

use crate::cli::Args;
use crate::load::{self, LoadSpec, Target};
use crate::process::{self, BinDir, Proc};
use crate::report::{Case, CpuShare, Figure, Report, Settings};

/// How long a process under test may take to become ready.
pub const READY_PATIENCE: Duration = Duration::from_secs(20);

/// Above this CPU use of the whole machine (% of one core) between cases, it is not quiet.
const QUIET_BELOW_PERCENT: f64 = 20.0;

/// One series of cases: a subject measured at several connection counts.
#[derive(Debug, Clone)]
pub struct Series {
    /// Short id, e.g. `b`.
    pub id: &'static str,
    /// What is measured, e.g. `fwatchdog http`.
    pub label: &'static str,
    /// The series it is compared to at the same connection count.
    pub baseline: Option<&'static str>,
}

impl Series {
    /// A series without a baseline.
    #[must_use]
    pub const fn new(id: &'static str, label: &'static str) -> Self {
        Self {
            id,
            label,
            baseline: None,
        }
    }

    /// Compares this series to series `baseline`.
    #[must_use]
    pub const fn vs(mut self, baseline: &'static str) -> Self {
        self.baseline = Some(baseline);
        self
    }
}

/// A process whose CPU use is recorded during a case.
#[derive(Debug, Clone)]
pub struct Watch {
    /// Its role in the report, e.g. `fwatchdog`.
    pub role: String,
    /// Its process id.
    pub pid: u32,
}

impl Watch {
    /// Watches `proc` under its spawn name.
    #[must_use]
    pub fn of(proc: &Proc) -> Self {
        Self {
            role: proc.name().to_owned(),
            pid: proc.pid(),
        }
    }
}

#[derive(Debug)]
enum LogDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

/// The context of a scenario run: options, binaries, logs and the report being built.
#[derive(Debug)]
pub struct Bench {
    args: Args,
    bins: BinDir,
    logs: LogDir,
    report: Report,
}

impl Bench {
    /// A context for `scenario` with the command-line options.
    ///
    /// # Errors
    /// When the log directory cannot be created or the executable's directory is unknown.
    pub fn new(args: Args, scenario: &str) -> anyhow::Result<Self> {
        let logs = match &args.log_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                LogDir::Kept(dir.clone())
            }
            None => LogDir::Temp(
                tempfile::Builder::new()
                    .prefix("faas-bench-")
                    .tempdir()
                    .context("creating a temporary directory")?,
            ),
        };
        let bins = BinDir::new(args.bin_dir.clone())?;
        let report = Report {
            scenario: scenario.to_owned(),
            settings: Settings {
                cpus: std::thread::available_parallelism().map_or(1, usize::from),
                cpu_model: cpu_model(),
                duration_s: args.duration.as_secs_f64(),
                warmup_s: args.warmup.as_secs_f64(),
                client_threads: args.client_threads,
                upstream_threads: args.upstream_threads,
                body_size: args.body_size,
                release: !cfg!(debug_assertions),
                load_average: process::load_average().unwrap_or_default(),
            },
            ..Report::default()
        };
        Ok(Self {
            args,
            bins,
            logs,
            report,
        })
    }

    /// The command-line options.
    #[must_use]
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// The connection counts to run: `--connections` when given, else `default`.
    #[must_use]
    pub fn connections(&self, default: &[usize]) -> Vec<usize> {
        self.args
            .connections
            .as_ref()
            .map_or_else(|| default.to_vec(), |c| c.0.clone())
    }

    /// Whether series `id` is to run (`--only` names it, or is not given).
    #[must_use]
    pub fn wants(&self, id: &str) -> bool {
        self.args.only.is_empty() || self.args.only.iter().any(|o| o == id)
    }

    /// The path of binary `name` beside faas-bench (or in `--bin-dir`).
    ///
    /// # Errors
    /// When it is missing, naming the command that builds it.
    pub fn binary(&self, name: &str) -> anyhow::Result<PathBuf> {
        self.bins.binary(name)
    }

    /// Where process logs and scratch data go.
    #[must_use]
    pub fn scratch_dir(&self) -> &Path {
        match &self.logs {
            LogDir::Temp(dir) => dir.path(),
            LogDir::Kept(dir) => dir,
        }
    }

    /// Spawns a process under test, its output logged in the scratch directory, with a container's
    /// environment (see [`container_env`]) unless `--inherit-env` was given.
    ///
    /// # Errors
    /// When it cannot start.
    pub fn spawn(&self, name: &str, mut command: Command) -> anyhow::Result<Proc> {
        if !self.args.inherit_env {
            container_env(&mut command);
        }
        Proc::spawn(name, command, self.scratch_dir())
    }

    /// The command line of `bench-upstream` listening on `port`, as one string (for `fprocess`).
    ///
    /// # Errors
    /// When `bench-upstream` is missing.
    pub fn upstream_command_line(&self, port: u16) -> anyhow::Result<String> {
        let path = self.binary("bench-upstream")?;
        Ok(format!(
            "{} --port {port} --threads {}",
            path.display(),
            self.args.upstream_threads
        ))
    }

    /// Starts `bench-upstream` on a free port and waits until it answers.
    ///
    /// # Errors
    /// When it is missing or does not become ready.
    pub async fn start_upstream(&self) -> anyhow::Result<(Proc, SocketAddr)> {
        let port = process::free_port()?;
        let mut command = Command::new(self.binary("bench-upstream")?);
        command.args([
            "--port",
            &port.to_string(),
            "--threads",
            &self.args.upstream_threads.to_string(),
        ]);
        let mut proc = self.spawn("upstream", command)?;
        let addr = process::loopback(port);
        self.wait_ready(&mut proc, addr, "/").await?;
        Ok((proc, addr))
    }

    /// Waits until `GET path` on `addr` answers 2xx while `proc` is alive.
    ///
    /// # Errors
    /// When `proc` exits or is not ready within [`READY_PATIENCE`].
    pub async fn wait_ready(
        &self,
        proc: &mut Proc,
        addr: SocketAddr,
        path: &str,
    ) -> anyhow::Result<()> {
        let name = proc.name().to_owned();
        crate::http::wait_ready(addr, path, READY_PATIENCE, || proc.check_alive())
            .await
            .with_context(|| format!("{name} did not become ready"))
    }

    /// The default target: `POST path` on `addr` with the configured body size.
    #[must_use]
    pub fn target(&self, addr: SocketAddr, path: &str) -> Target {
        Target::post(addr, path, self.args.body_size)
    }

    /// Drives `target` with `connections` connections as configured, records the case in the report and
    /// prints a progress line on stderr. `watch` lists the processes whose CPU use is recorded (the load
    /// generator always is, as `bench`); the memory of `subject` is read after the case.
    ///
    /// Returns `None` without measuring when `--only` excludes the series.
    ///
    /// # Errors
    /// When `subject` is gone after the case (it crashed under load).
    pub async fn measure(
        &mut self,
        series: &Series,
        target: &Target,
        connections: usize,
        watch: &[Watch],
        subject: Option<u32>,
    ) -> anyhow::Result<Option<&Case>> {
        if !self.wants(series.id) {
            return Ok(None);
        }
        let spec = LoadSpec {
            connections,
            warmup: self.args.warmup,
            duration: self.args.duration,
            max_requests: self.args.max_requests,
            timeout: self.args.timeout,
        };
        self.wait_quiet().await;
        let mut watched: Vec<Watch> = vec![Watch {
            role: "bench".to_owned(),
            pid: std::process::id(),
        }];
        watched.extend_from_slice(watch);
        let cpu_before: Vec<Option<f64>> = watched
            .iter()
            .map(|w| process::cpu_seconds_of(w.pid).ok())
            .collect();
        let machine_before = process::machine_busy_seconds().ok();
        let started = Instant::now();
        let result = load::run(target, &spec).await;
        let wall = started.elapsed().as_secs_f64();
        let machine_used = process::machine_busy_seconds()
            .ok()
            .zip(machine_before)
            .map(|(after, before)| after - before);
        let cpu: Vec<CpuShare> = watched
            .iter()
            .zip(cpu_before)
            .filter_map(|(w, before)| {
                let used = process::cpu_seconds_of(w.pid).ok()? - before?;
                Some(CpuShare {
                    process: w.role.clone(),
                    percent: 100.0 * used / wall,
                    us_per_request: 1e6 * used / result.answered.max(1) as f64,
                })
            })
            .collect();
        let ours: f64 = cpu.iter().map(|share| share.percent).sum();
        let per_request: f64 = cpu.iter().map(|share| share.us_per_request).sum();
        let capacity_rps = (result.answered > 0 && per_request > 0.0)
            .then(|| self.report.settings.cpus as f64 * 1e6 / per_request);
        // the /proc/stat and /proc/PID/stat tick counts are sampled at slightly different instants
        let others_cpu = machine_used.map(|used| (100.0 * used / wall - ours).max(0.0));
        let memory = match subject {
            Some(pid) => Some(process::memory_of(pid).with_context(|| {
                format!(
                    "{} {}: the process under test is gone",
                    series.id, series.label
                )
            })?),
            None => None,
        };
        let case = Case {
            id: series.id.to_owned(),
            label: series.label.to_owned(),
            connections,
            requests: result.requests,
            errors: result.errors,
            rps: result.rps(),
            latency: result.latency.summary(),
            baseline: series.baseline.map(str::to_owned),
            ratio: None,
            memory,
            cpu,
            capacity_rps,
            others_cpu,
            first_error: result.first_error,
        };
        eprintln!(
            "{}: {} {} at {} connections: {} req/s, p50 {:.1} µs, p99 {:.1} µs, {} errors",
            self.report.scenario,
            case.id,
            case.label,
            connections,
            crate::report::thousands(case.rps),
            case.latency.p50_us,
            case.latency.p99_us,
            case.errors
        );
        self.report.cases.push(case);
        self.report.compute_ratios();
        Ok(self.report.cases.last())
    }

    /// Waits (up to `--wait-quiet`) until the machine is quiet between cases; notes it when it never is.
    pub async fn wait_quiet(&mut self) {
        let patience = self.args.wait_quiet;
        if patience.is_zero() {
            return;
        }
        let deadline = Instant::now() + patience;
        let mut busiest = 0.0_f64;
        while Instant::now() < deadline {
            let window = Duration::from_millis(500);
            let Ok(before) = process::machine_busy_seconds() else {
                return;
            };
            tokio::time::sleep(window).await;
            let Ok(after) = process::machine_busy_seconds() else {
                return;
            };
            let percent = 100.0 * (after - before) / window.as_secs_f64();
            if percent < QUIET_BELOW_PERCENT {
                return;
            }
            busiest = busiest.max(percent);
        }
        self.note(format!(
            "the machine was still busy after waiting {patience:?} (up to {busiest:.0}% of one core used by \
             other processes): the next case may be disturbed"
        ));
    }

    /// Adds a derived figure to the report.
    pub fn figure(&mut self, figure: Figure) {
        self.report.figures.push(figure);
    }

    /// Adds a remark to the report (and prints it on stderr).
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        eprintln!("{}: note: {note}", self.report.scenario);
        self.report.notes.push(note);
    }

    /// The report so far.
    #[must_use]
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Ends the run and returns the report.
    #[must_use]
    pub fn into_report(mut self) -> Report {
        // cases may be measured interleaved (a1, b1, a16, b16...) to pair them in time; show them by series
        self.report.cases.sort_by(|x, y| x.id.cmp(&y.id));
        self.report.compute_ratios();
        self.report
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// The variables a process started in a container has whatever its image: Docker sets `PATH`,
/// `HOME` and `HOSTNAME`.
const CONTAINER_VARIABLES: [&str; 3] = ["PATH", "HOME", "HOSTNAME"];

/// Replaces the environment `command` would inherit with [`CONTAINER_VARIABLES`] (taken from this
/// process when set), keeping the variables set on `command` itself.
pub fn container_env(command: &mut Command) {
    let explicit: Vec<(std::ffi::OsString, Option<std::ffi::OsString>)> = command
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
        .collect();
    command.env_clear();
    for name in CONTAINER_VARIABLES {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    for (name, value) in explicit {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_env_keeps_path_and_what_the_command_sets() {
        let mut command = Command::new("env");
        command
            .env("FPROCESS_UNDER_TEST", "cat")
            .env_remove("HOSTNAME");
        container_env(&mut command);
        let out = command.output().expect("env runs");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut names: Vec<&str> = text.lines().filter_map(|l| l.split('=').next()).collect();
        names.sort_unstable();
        let mut expected = vec!["FPROCESS_UNDER_TEST"];
        expected.extend(
            ["PATH", "HOME"]
                .into_iter()
                .filter(|v| std::env::var_os(v).is_some()),
        );
        expected.sort_unstable();
        assert_eq!(names, expected, "{text}");
    }
}
