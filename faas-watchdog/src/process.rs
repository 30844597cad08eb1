//! Spawning function processes so that none outlives its request or its watchdog.

use std::io;
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::config::Config;

/// A command for the configured function process: its own process group, killed on drop, killed
/// by the kernel if the watchdog dies, with the function's extra environment and working
/// directory. Standard streams are null until the caller pipes them.
///
/// With `die_with_watchdog` the child also gets `PR_SET_PDEATHSIG`; that needs a `pre_exec`
/// hook, which makes std `fork` instead of `posix_spawn` (vfork).
pub(crate) fn command(config: &Config) -> io::Result<Command> {
    let argv = config.process_argv();
    let Some((program, args)) = argv.split_first() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty fprocess",
        ));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(
            config
                .function_env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &config.working_dir {
        cmd.current_dir(dir);
    }
    if config.die_with_watchdog {
        die_with_parent(&mut cmd);
    }
    Ok(cmd)
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
#[derive(Debug)]
pub(crate) struct ProcessGuard {
    child: Child,
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
            child,
            pgid,
            reaped: false,
        }
    }

    /// Waits for the process to exit and reaps it.
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait().await?;
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
        let _ = self.child.start_kill();
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
        // Killed before the child is reaped, so the group id cannot have been reused; tokio then
        // reaps the child in the background (kill_on_drop).
        self.kill_group();
    }
}
