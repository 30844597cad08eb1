//! Processes under test: spawning, memory and CPU readings from `/proc`, and stopping them (and only them).

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;

/// `/proc` reports CPU times in USER_HZ, which is 100 on every Linux architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// The command that builds every binary the scenarios need, named in errors.
pub const BUILD_COMMAND: &str = "cargo build --release -p faas-watchdog -p faas-cli -p faas-bench";

/// Memory of a process, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Resident set size now (`VmRSS`), in KiB.
    pub rss_kib: u64,
    /// Peak resident set size over the process's life (`VmHWM`), in KiB.
    pub hwm_kib: u64,
}

/// Parses `VmRSS` and `VmHWM` out of the text of `/proc/PID/status`.
#[must_use]
pub fn parse_status(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// The fields of `/proc/PID/stat` the runner uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// State letter (`R`, `S`, `Z` for a zombie...).
    pub state: char,
    /// Parent process id.
    pub ppid: u32,
    /// CPU time in seconds: user + system, of the process and of its waited-for children.
    pub cpu_seconds: f64,
    /// Start time in ticks since boot, which tells a reused PID apart.
    pub start_ticks: u64,
}

/// Parses the text of `/proc/PID/stat`.
#[must_use]
pub fn parse_stat(stat: &str) -> Option<Stat> {
    // the command name is in parentheses and may contain spaces: fields are counted after the last ')'
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // after ')': state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17) ... starttime(22)
    let at = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let ticks = at(14)? + at(15)? + at(16)? + at(17)?;
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: u32::try_from(at(4)?).ok()?,
        cpu_seconds: ticks as f64 / TICKS_PER_SECOND,
        start_ticks: at(22)?,
    })
}

fn stat_of(pid: u32) -> Option<Stat> {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .as_deref()
        .and_then(parse_stat)
}

/// Busy CPU seconds of the whole machine since boot (all CPUs, idle and iowait excluded), from the first
/// line of `/proc/stat`.
#[must_use]
pub fn parse_machine_busy(proc_stat: &str) -> Option<f64> {
    let line = proc_stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest time is already counted in user)
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some(total.saturating_sub(idle) as f64 / TICKS_PER_SECOND)
}

/// Busy CPU seconds of the whole machine since boot.
///
/// # Errors
/// When `/proc/stat` cannot be read.
pub fn machine_busy_seconds() -> anyhow::Result<f64> {
    let text = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_machine_busy(&text).context("malformed /proc/stat")
}

/// The 1-minute load average, from `/proc/loadavg`.
#[must_use]
pub fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads the memory of process `pid`.
///
/// # Errors
/// When the process is gone.
pub fn memory_of(pid: u32) -> anyhow::Result<Memory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_status(&status).with_context(|| format!("no VmRSS/VmHWM in /proc/{pid}/status"))
}

/// Reads the CPU seconds used so far by process `pid` (its reaped children included).
///
/// # Errors
/// When the process is gone.
pub fn cpu_seconds_of(pid: u32) -> anyhow::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok(parse_stat(&stat)
        .with_context(|| format!("malformed /proc/{pid}/stat"))?
        .cpu_seconds)
}

/// Every live descendant of `root` (children first), as (PID, start time): the start time tells a reused PID
/// apart.
#[must_use]
pub fn descendants(root: u32) -> Vec<(u32, u64)> {
    let mut table = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(stat) = stat_of(pid) {
                table.push((pid, stat.start_ticks, stat.ppid));
            }
        }
    }
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, start, ppid) in &table {
            if ppid == parent && !found.iter().any(|&(p, _)| p == pid) {
                found.push((pid, start));
                frontier.push(pid);
            }
        }
    }
    found
}

/// Whether the process `pid` that started at `start_ticks` still runs (a zombie does not).
fn is_running(pid: u32, start_ticks: u64) -> bool {
    stat_of(pid).is_some_and(|stat| stat.start_ticks == start_ticks && stat.state != 'Z')
}

fn signal(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        // the process may have exited meanwhile: nothing to do then
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// A free TCP port on 127.0.0.1 (bound then released: another process could take it first, which the
/// readiness check then reports).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `127.0.0.1:port`.
#[must_use]
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Where the binaries under test are looked for.
#[derive(Debug, Clone)]
pub struct BinDir(pub PathBuf);

impl BinDir {
    /// The given directory, else the directory of the running executable (`target/release` under
    /// `cargo run --release`).
    ///
    /// # Errors
    /// When the running executable's path is unknown.
    pub fn new(dir: Option<PathBuf>) -> anyhow::Result<Self> {
        match dir {
            Some(dir) => Ok(Self(dir)),
            None => {
                let exe = std::env::current_exe().context("locating the faas-bench executable")?;
                let dir = exe
                    .parent()
                    .context("the faas-bench executable has no directory")?;
                Ok(Self(dir.to_path_buf()))
            }
        }
    }

    /// The path of binary `name`.
    ///
    /// # Errors
    /// When it is missing, with the command that builds it.
    pub fn binary(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.0.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            bail!(
                "{name} not found in {}: build it with `{BUILD_COMMAND}` (or pass --bin-dir)",
                self.0.display()
            )
        }
    }
}

/// A child process under test, with its output in a log file. Dropping it kills it and its descendants.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    stopped: bool,
}

impl Proc {
    /// Spawns `command` with stdin closed and stdout and stderr appended to `LOG_DIR/NAME.log`.
    ///
    /// # Errors
    /// When the log file cannot be created or the program cannot start.
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> anyhow::Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("creating {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
            stopped: false,
        })
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log file of its stdout and stderr.
    #[must_use]
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Errors when the process has exited, with the end of its log.
    ///
    /// # Errors
    /// When it has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited ({status}); the end of its log ({}):\n{}",
                self.name,
                self.log.display(),
                self.log_tail(20)
            ),
        }
    }

    /// The last `lines` lines of its log.
    #[must_use]
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Its memory now.
    ///
    /// # Errors
    /// When it is gone.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        memory_of(self.pid())
    }

    /// CPU seconds it used so far (its reaped children included).
    ///
    /// # Errors
    /// When it is gone.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds_of(self.pid())
    }

    /// Asks it to stop with SIGTERM, waits up to `grace`, then SIGKILLs it; its descendants still alive
    /// after that (function processes it failed to stop) are SIGKILLed too.
    pub async fn stop(mut self, grace: Duration) {
        self.stopped = true;
        let pid = self.pid();
        let family = descendants(pid);
        signal(pid, Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        while matches!(self.child.try_wait(), Ok(None)) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // give orphans a moment to follow their parent, then make sure they did
        if !family.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        kill_survivors(&family);
    }
}

fn kill_survivors(family: &[(u32, u64)]) {
    for &(pid, start) in family {
        if is_running(pid, start) {
            signal(pid, Signal::SIGKILL);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.stopped {
            let family = descendants(self.pid());
            let _ = self.child.kill();
            let _ = self.child.wait();
            kill_survivors(&family);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parsing() {
        let status =
            "Name:\tfwatchdog\nVmPeak:\t  10000 kB\nVmHWM:\t    3456 kB\nVmRSS:\t    2345 kB\n";
        assert_eq!(
            parse_status(status),
            Some(Memory {
                rss_kib: 2345,
                hwm_kib: 3456
            })
        );
        assert_eq!(parse_status("Name:\tx\nVmRSS:\t1 kB\n"), None);
    }

    #[test]
    fn stat_parsing() {
        let stat = "1234 (a (weird) name) S 42 1234 1234 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 1 0 98765 \
                    1000 200 18446744073709551615";
        let parsed = parse_stat(stat).unwrap();
        assert!((parsed.cpu_seconds - 2.10).abs() < 1e-9);
        assert_eq!(parsed.start_ticks, 98765);
        assert_eq!(parsed.ppid, 42);
        assert_eq!(parsed.state, 'S');
        assert_eq!(parse_stat("1 (x) S"), None);
    }

    #[test]
    fn machine_stat_parsing() {
        let stat = "cpu  1000 50 250 9000 100 10 20 5 0 0\ncpu0 500 25 125 4500 50 5 10 2 0 0\n";
        let busy = parse_machine_busy(stat).unwrap();
        assert!((busy - 13.35).abs() < 1e-9, "{busy}");
        assert_eq!(parse_machine_busy("intr 1 2 3\n"), None);
        assert!(machine_busy_seconds().unwrap() > 0.0);
        assert!(load_average().unwrap() >= 0.0);
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(memory_of(me).unwrap().rss_kib > 0);
        assert!(cpu_seconds_of(me).unwrap() >= 0.0);
    }

    #[test]
    fn missing_binary_names_the_build_command() {
        let dir = BinDir(PathBuf::from("/nonexistent"));
        let err = dir.binary("fwatchdog").unwrap_err().to_string();
        assert!(err.contains("fwatchdog not found"), "{err}");
        assert!(err.contains(BUILD_COMMAND), "{err}");
    }

    #[tokio::test]
    async fn spawn_and_stop() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "echo started; sleep 30 & wait"]);
        let mut proc = Proc::spawn("sleeper", command, dir.path()).unwrap();
        proc.check_alive().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let child = descendants(proc.pid());
        assert_eq!(child.len(), 1, "{child:?}");
        proc.stop(Duration::from_millis(500)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !is_running(child[0].0, child[0].1),
            "the sleep was not stopped"
        );
    }
}
