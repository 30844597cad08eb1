//! `fwatchdog`: OpenFaaS-compatible function watchdog. Configured by environment variables
//! (see docs/watchdog.md); `fwatchdog healthcheck` exits 0 when the local watchdog is healthy.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("healthcheck") => return healthcheck(),
        Some("--run-healthcheck") => return lock_file_check(),
        Some("version" | "--version" | "-version") => {
            println!("fwatchdog {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some("help" | "--help" | "-h") => {
            println!(
                "fwatchdog {}: OpenFaaS-compatible function watchdog\n\n\
                 usage: fwatchdog               serve, configured by environment (fprocess, mode, port, ...)\n       \
                 fwatchdog healthcheck   exit 0 if GET http://127.0.0.1:$port/_/health answers 200",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("fwatchdog: unknown argument {other:?} (try --help)");
            return ExitCode::from(2);
        }
        None => {}
    }

    let config = match faas_watchdog::Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("fwatchdog: {e}");
            return ExitCode::FAILURE;
        }
    };
    let level = if config.write_debug {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let _ = tracing::subscriber::set_global_default(faas_watchdog::StderrLogger::new(level));

    let runtime = match runtime(config.mode) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fwatchdog: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(faas_watchdog::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            eprintln!("fwatchdog: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime: `worker_threads` (fwatchdog extension) when set; otherwise one thread in `http`
/// and `static` mode, and one worker per core in the fork modes.
///
/// Measured on 2 cores (docs/performance.md). In `http` mode one thread keeps the proxy's
/// hand-offs between the client and upstream connections on one thread (no cross-thread wake-ups)
/// for the same throughput, and the idle process is smaller. In the fork modes several workers
/// keep the function processes fed while one of them waits in `posix_spawn` for a child to
/// `exec`: streaming `cat` at 8 connections ran 1,378 req/s on one thread (168% of the 2
/// cores busy) against 1,547 req/s on two (183%).
fn runtime(mode: faas_watchdog::Mode) -> Result<tokio::runtime::Runtime, String> {
    let default = match mode {
        faas_watchdog::Mode::Http | faas_watchdog::Mode::Static => Some(1),
        _ => None,
    };
    faas_core::runtime::build("worker_threads", default)
}

/// `GET /_/health` on the local port, without a shell or curl in the image.
fn healthcheck() -> ExitCode {
    let port: u16 = std::env::var("port")
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(8080);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let check = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        stream
            .write_all(b"GET /_/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
    };
    match check() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("fwatchdog: unhealthy: /_/health did not answer 200");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("fwatchdog: unhealthy: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// of-watchdog's `-run-healthcheck`: healthy when the lock file exists.
fn lock_file_check() -> ExitCode {
    if std::path::Path::new(faas_watchdog::DEFAULT_LOCK_FILE).exists() {
        ExitCode::SUCCESS
    } else {
        eprintln!("fwatchdog: unable to find lock file");
        ExitCode::FAILURE
    }
}
