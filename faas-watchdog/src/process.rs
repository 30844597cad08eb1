//! Spawning function processes so that none outlives its request or its watchdog.
//!
//! Fork modes start a process per request, so the spawn path is the hot path of the watchdog:
//!
//! - The program is looked up in `PATH` once, when the watchdog starts ([`Launcher`]), not by
//!   `execvp` in every child (which costs a failing `execve` per `PATH` entry before the right one).
//! - Without a `pre_exec` hook std spawns with `posix_spawn`, which glibc implements with
//!   `clone(CLONE_VM | CLONE_VFORK)`: no copy of the watchdog's page tables, no copy-on-write faults
//!   in its threads afterwards. `PR_SET_PDEATHSIG` needs such a hook, so it is only set when
//!   [`Config::die_with_watchdog`] asks for it (by default in `http` mode, where one long-running
//!   process is spawned once). Fork-mode processes are bounded otherwise: their process group is
//!   killed on timeouts, disconnects and shutdown, and their stdin and stdout pipes close when the
//!   watchdog dies.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::config::Config;

/// The search path `execvp` uses when `PATH` is unset (glibc's `_CS_PATH`).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// How long [`ProcessGuard::kill_and_reap`] waits for a SIGKILLed process to be reaped before
/// leaving it to a background task.
const REAP_LIMIT: Duration = Duration::from_secs(5);

/// The configured function process, prepared once: its program resolved in `PATH`, its arguments,
/// environment and working directory.
#[derive(Debug, Clone)]
pub(crate) struct Launcher {
    /// The program to execute: an absolute path when the `PATH` lookup succeeded.
    program: PathBuf,
    /// `argv[0]` as configured (`cat`, not `/usr/bin/cat`), as `execvp` would pass it.
    arg0: OsString,
    args: Vec<String>,
    env: Vec<(String, String)>,
    working_dir: Option<PathBuf>,
    die_with_watchdog: bool,
}

impl Launcher {
    /// Prepares the function process of `config`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `fprocess` is empty.
    pub(crate) fn new(config: &Config) -> io::Result<Self> {
        let mut argv = config.process_argv().into_iter();
        let Some(program) = argv.next() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty fprocess",
            ));
        };
        // The child's `PATH` decides, as with `execvp`: the function's own when it sets one.
        let path = config
            .function_env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| OsString::from(v))
            .or_else(|| std::env::var_os("PATH"));
        let resolved = resolve_program(
            OsStr::new(&program),
            path.as_deref().unwrap_or(OsStr::new(DEFAULT_PATH)),
        );
        Ok(Launcher {
            program: resolved.unwrap_or_else(|| PathBuf::from(&program)),
            arg0: OsString::from(program),
            args: argv.collect(),
            env: config.function_env.clone(),
            working_dir: config.working_dir.clone(),
            die_with_watchdog: config.die_with_watchdog,
        })
    }

    /// A command for the function process: its own process group, killed on drop, with the
    /// function's extra environment and working directory, and `PR_SET_PDEATHSIG` when
    /// `die_with_watchdog`. Standard streams are null until the caller pipes them.
    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg0(&self.arg0)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &self.working_dir {
            cmd.current_dir(dir);
        }
        if self.die_with_watchdog {
            die_with_parent(&mut cmd);
        }
        cmd
    }

    /// The program that is executed (absolute when it was found in `PATH`).
    #[cfg(test)]
    pub(crate) fn program(&self) -> &Path {
        &self.program
    }
}

/// A command for the configured function process (see [`Launcher::command`]).
///
/// # Errors
///
/// `InvalidInput` when `fprocess` is empty.
pub(crate) fn command(config: &Config) -> io::Result<Command> {
    Launcher::new(config).map(|l| l.command())
}

/// Looks `program` up in `path` as `execvp` does, as the fork modes do once at start; `None` leaves
/// the lookup to `execvp` (a program with a slash, a relative `PATH` entry met before a match, or no
/// match).
///
/// ```
/// use std::ffi::OsStr;
/// let cat = faas_watchdog::resolve_program(OsStr::new("cat"), OsStr::new("/usr/bin:/bin"));
/// assert!(cat.is_some_and(|path| path.is_absolute()));
/// ```
#[must_use]
pub fn resolve_program(program: &OsStr, path: &OsStr) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt as _;
    if program.is_empty() || program.as_bytes().contains(&b'/') {
        return None;
    }
    for dir in std::env::split_paths(path) {
        if dir.as_os_str().is_empty() || dir.is_relative() {
            // Relative to the child's working directory: only execvp knows that one.
            return None;
        }
        let candidate = dir.join(program);
        if is_executable(&candidate) {
            return Some(candidate);
        }
    }
    None
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Asks the kernel to SIGKILL the child when the watchdog dies, even by SIGKILL.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked exits; tokio's worker threads live as
/// long as the runtime, and processes are spawned from them, never from the blocking pool.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec. It only calls prctl(2) and
    // getppid(2), which are async-signal-safe, and it neither allocates nor takes locks (the
    // errors are raw OS errors, which do not allocate).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
            // The watchdog may have died between fork and prctl: then nobody would kill us.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::from_raw_os_error(
                    nix::errno::Errno::ESRCH as i32,
                ));
            }
            Ok(())
        });
    }
}

/// Owns a running function process and kills its whole process group unless it was reaped.
///
/// Dropped before the process was reaped, it SIGKILLs the group and reaps the process in a
/// background task, so that no zombie is left waiting for tokio's next `SIGCHLD`.
#[derive(Debug)]
pub(crate) struct ProcessGuard {
    /// `None` only once dropped.
    child: Option<Child>,
    pgid: Option<Pid>,
    reaped: bool,
}

impl ProcessGuard {
    pub(crate) fn new(child: Child) -> Self {
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        ProcessGuard {
            child: Some(child),
            pgid,
            reaped: false,
        }
    }

    /// Waits for the process to exit and reaps it.
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        let Some(child) = self.child.as_mut() else {
            return Err(io::Error::other("process already released"));
        };
        let status = child.wait().await?;
        self.reaped = true;
        Ok(status)
    }

    /// SIGKILLs the process group (the process and everything it started that stayed in it).
    pub(crate) fn kill_group(&mut self) {
        if self.reaped {
            return;
        }
        if let Some(pgid) = self.pgid {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }

    /// SIGKILLs the process group and reaps the process, waiting up to a few seconds (a process
    /// stuck in an uninterruptible sleep is then reaped in the background, when it exits).
    pub(crate) async fn kill_and_reap(&mut self) {
        if self.reaped {
            return;
        }
        self.kill_group();
        if tokio::time::timeout(REAP_LIMIT, self.wait()).await.is_err() {
            tracing::warn!(
                pid = ?self.pgid,
                "killed function process not reaped yet: reaping it in the background"
            );
        }
    }

    /// Sends `signal` to the process group.
    pub(crate) fn signal_group(&self, signal: Signal) {
        if !self.reaped
            && let Some(pgid) = self.pgid
        {
            let _ = killpg(pgid, signal);
        }
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // Killed before the child is reaped, so the group id cannot have been reused.
        self.kill_group();
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Reap it as soon as it is gone. Without a runtime tokio's orphan queue reaps it later
        // (the child is dropped with kill_on_drop).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = child.wait().await {
                    tracing::debug!(error = %e, "cannot reap killed function process");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_vars(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .unwrap()
    }

    #[test]
    fn programs_are_resolved_in_path_once() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("fn-tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let not_exe = dir.path().join("fn-data");
        std::fs::write(&not_exe, "").unwrap();
        let path = format!("/nonexistent:{}", dir.path().display());

        let found = resolve_program(OsStr::new("fn-tool"), OsStr::new(&path));
        assert_eq!(found.as_deref(), Some(exe.as_path()));
        assert_eq!(
            resolve_program(OsStr::new("fn-data"), OsStr::new(&path)),
            None
        );
        assert_eq!(
            resolve_program(OsStr::new("./fn-tool"), OsStr::new(&path)),
            None
        );
        // A relative entry before the match: left to execvp, which resolves it in the child.
        let relative = format!("bin:{}", dir.path().display());
        assert_eq!(
            resolve_program(OsStr::new("fn-tool"), OsStr::new(&relative)),
            None
        );
    }

    #[test]
    fn launcher_uses_the_function_path_and_keeps_argv0() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("fn-only-here");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().display().to_string();
        let launcher = Launcher::new(&config(&[
            ("fprocess", "fn-only-here -x"),
            ("PATH", path.as_str()),
        ]))
        .unwrap();
        assert_eq!(launcher.program(), exe.as_path());
        assert_eq!(launcher.arg0, "fn-only-here");
        assert_eq!(launcher.args, vec!["-x"]);

        let missing = Launcher::new(&config(&[("fprocess", "no-such-program-here")])).unwrap();
        assert_eq!(missing.program(), Path::new("no-such-program-here"));
    }

    #[tokio::test]
    async fn a_dropped_guard_kills_and_reaps_its_process() {
        let launcher = Launcher::new(&config(&[("fprocess", "sleep 300")])).unwrap();
        let child = launcher.command().spawn().unwrap();
        let pid = child.id().unwrap();
        drop(ProcessGuard::new(child));
        let stat = format!("/proc/{pid}/stat");
        let mut gone = false;
        for _ in 0..200 {
            if !Path::new(&stat).exists() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gone, "process {pid} still present (alive or zombie)");
    }
}
