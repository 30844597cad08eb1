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

    // Static mode only reads files: one thread is enough. Elsewhere the multi-thread runtime:
    // measured here, http mode's hand-offs between the client and upstream connections have half
    // the latency of a single thread, and fork modes keep serving while a thread spawns.
    let mut builder = match config.mode {
        faas_watchdog::Mode::Static => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fwatchdog: cannot start the runtime: {e}");
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
