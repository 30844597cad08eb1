//! What this machine charges for work no watchdog can avoid, measured in the same run as the cases.
//!
//! Two floors explain the watchdog's figures on a virtual machine:
//! - [`spawn_rate`]: how many times a second the machine can start a program (`cat`), feed it a body
//!   and read its answer, with no watchdog and no HTTP in the way: the ceiling of any fork-mode
//!   watchdog here. Where a program's start-up traps to the hypervisor (glibc runs `cpuid` dozens of
//!   times before `main`), this ceiling is low and no watchdog can beat it.
//! - [`wake_round_trip`]: the round trip of one byte between two threads over pipes, on one CPU and
//!   across two. A sleeping process woken from another CPU costs an inter-processor interrupt; on a
//!   guest whose idle vCPUs halt instead of polling, that is tens of microseconds, and a proxied
//!   request wakes processes twice more than a direct one.
//!
//! ```no_run
//! use faas_bench::machine;
//! use std::time::Duration;
//!
//! let rate = machine::spawn_rate(
//!     std::path::Path::new("/usr/bin/cat"),
//!     8,
//!     Duration::from_secs(2),
//!     100_000,
//!     |_command| {},
//! )
//! .unwrap();
//! println!("{:.0} starts/s", rate.per_second);
//! if let Some(trip) = machine::wake_round_trip(true, 2_000) {
//!     println!("p50 {:.1} µs across CPUs", trip.p50_us);
//! }
//! ```

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sched::CpuSet;

/// The body each started program gets on stdin (the size of the benchmark's request bodies).
const BODY: &[u8] = b"hello world!";

/// The outcome of [`spawn_rate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpawnRate {
    /// Programs started, fed and reaped per second, over all workers.
    pub per_second: f64,
    /// How many runs completed in the measured time.
    pub runs: u64,
    /// CPU time (user + system) of the started programs per run, in µs.
    pub child_cpu_us: f64,
}

/// Starts `program` over and over from `workers` threads for `duration` (or `max_runs` runs), each
/// time writing a 12-byte body to its stdin, reading its stdout to the end and reaping it: what a
/// fork-mode watchdog does per request, minus HTTP. `configure` adjusts each command (its
/// environment, above all).
///
/// # Errors
/// When `program` cannot be started or answers with a failure.
pub fn spawn_rate(
    program: &Path,
    workers: usize,
    duration: Duration,
    max_runs: u64,
    configure: impl Fn(&mut Command) + Sync,
) -> anyhow::Result<SpawnRate> {
    let run_once = || -> anyhow::Result<()> {
        let mut command = Command::new(program);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        configure(&mut command);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let mut stdin = child.stdin.take().context("stdin is piped")?;
        stdin.write_all(BODY)?;
        drop(stdin);
        let mut out = Vec::with_capacity(64);
        child
            .stdout
            .take()
            .context("stdout is piped")?
            .read_to_end(&mut out)?;
        let status = child.wait()?;
        anyhow::ensure!(
            status.success(),
            "{} exited with {status}",
            program.display()
        );
        Ok(())
    };
    // one run first, so that a missing program is an error rather than a rate of zero
    run_once()?;
    let cpu_before = children_cpu_us();
    let runs = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let started = Instant::now();
    let first_error = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    while started.elapsed() < duration
                        && runs.load(Ordering::Relaxed) < max_runs
                        && !failed.load(Ordering::Relaxed)
                    {
                        if let Err(e) = run_once() {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                        runs.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().expect("a spawn worker panicked").err())
            .next()
    });
    if let Some(e) = first_error {
        return Err(e);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let runs = runs.into_inner();
    Ok(SpawnRate {
        per_second: runs as f64 / elapsed,
        runs,
        child_cpu_us: (children_cpu_us() - cpu_before) / runs.max(1) as f64,
    })
}

/// The executable file called `name` that `fwatchdog` would run, looked up in this process's `PATH`
/// as it does ([`faas_watchdog::resolve_program`]).
#[must_use]
pub fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    faas_watchdog::resolve_program(name.as_ref(), &std::env::var_os("PATH")?)
}

/// CPU time (user + system) of this process's reaped children so far, in µs.
fn children_cpu_us() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    use nix::sys::time::TimeValLike as _;
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0.0, |u| {
        (u.user_time().num_microseconds() + u.system_time().num_microseconds()) as f64
    })
}

/// The outcome of [`wake_round_trip`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundTrip {
    /// Median round trip, in µs.
    pub p50_us: f64,
    /// 90th percentile, in µs.
    pub p90_us: f64,
}

/// The round trip of one byte between two threads over a pair of pipes, `rounds` times, with a
/// 200 µs pause between rounds so that the other side is asleep each time. With `cross_cpu` the two
/// threads are pinned to the first two CPUs this process may use, else both to the first. `None`
/// when the threads cannot be pinned as asked (a single CPU, or an affinity call refused).
#[must_use]
pub fn wake_round_trip(cross_cpu: bool, rounds: usize) -> Option<RoundTrip> {
    let cpus = allowed_cpus();
    let (first, second) = match (cpus.first(), cpus.get(1)) {
        (Some(&a), Some(&b)) => (a, if cross_cpu { b } else { a }),
        (Some(&a), None) if !cross_cpu => (a, a),
        _ => return None,
    };
    let (mut to_echo_read, mut to_echo_write) = std::io::pipe().ok()?;
    let (mut back_read, mut back_write) = std::io::pipe().ok()?;
    let pinned = AtomicBool::new(true);
    let mut samples = Vec::with_capacity(rounds);
    std::thread::scope(|scope| {
        let echo = scope.spawn(|| {
            if !pin_current_thread(second) {
                pinned.store(false, Ordering::Relaxed);
            }
            let mut byte = [0u8; 1];
            while to_echo_read.read_exact(&mut byte).is_ok() {
                if back_write.write_all(&byte).is_err() {
                    break;
                }
            }
        });
        std::thread::scope(|inner| {
            inner
                .spawn(|| {
                    if !pin_current_thread(first) {
                        pinned.store(false, Ordering::Relaxed);
                        return;
                    }
                    let mut byte = [0u8; 1];
                    for _ in 0..rounds {
                        let start = Instant::now();
                        if to_echo_write.write_all(b"x").is_err()
                            || back_read.read_exact(&mut byte).is_err()
                        {
                            return;
                        }
                        samples.push(start.elapsed().as_secs_f64() * 1e6);
                        std::thread::sleep(Duration::from_micros(200));
                    }
                })
                .join()
                .ok();
        });
        // closing the write end ends the echo thread
        drop(to_echo_write);
        echo.join().ok();
    });
    if !pinned.into_inner() || samples.len() < rounds.max(1) {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Some(RoundTrip {
        p50_us: at(0.5),
        p90_us: at(0.9),
    })
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> Vec<usize> {
    let this_process = nix::unistd::Pid::from_raw(0);
    nix::sched::sched_getaffinity(this_process).map_or_else(
        |_| Vec::new(),
        |set| {
            (0..CpuSet::count())
                .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
                .collect()
        },
    )
}

/// Pins the calling thread to `cpu`; false when the kernel refuses.
fn pin_current_thread(cpu: usize) -> bool {
    let mut set = CpuSet::new();
    // pid 0: the calling thread
    set.set(cpu).is_ok()
        && nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_rate_runs_cat_and_counts_its_cpu() {
        let rate = spawn_rate(
            Path::new("/bin/cat"),
            2,
            Duration::from_millis(300),
            40,
            |_| {},
        )
        .expect("cat runs");
        assert!(rate.runs >= 1 && rate.runs <= 40 + 2, "runs {}", rate.runs);
        assert!(rate.per_second > 0.0);
        assert!(rate.child_cpu_us > 0.0, "cat used no CPU: {rate:?}");
    }

    #[test]
    fn spawn_rate_reports_a_failing_program() {
        for (program, expected) in [
            ("/bin/false", "exited with"),
            ("/nonexistent/cat", "/nonexistent/cat"),
        ] {
            let err = spawn_rate(
                Path::new(program),
                1,
                Duration::from_millis(100),
                10,
                |_| {},
            )
            .expect_err(program);
            assert!(format!("{err:#}").contains(expected), "{err:#}");
        }
    }

    #[test]
    fn cat_is_found_in_path_and_a_made_up_name_is_not() {
        let cat = find_in_path("cat").expect("cat is in PATH");
        assert!(
            cat.is_absolute() && cat.ends_with("cat"),
            "{}",
            cat.display()
        );
        assert_eq!(find_in_path("no-such-program-faas-bench"), None);
    }

    #[test]
    fn a_round_trip_on_one_cpu_is_measured() {
        let trip = wake_round_trip(false, 50).expect("one CPU is always allowed");
        assert!(trip.p50_us > 0.0 && trip.p50_us <= trip.p90_us, "{trip:?}");
    }

    #[test]
    fn a_round_trip_across_cpus_needs_two() {
        let trip = wake_round_trip(true, 50);
        assert_eq!(trip.is_some(), allowed_cpus().len() >= 2, "{trip:?}");
    }
}
