//! Shared helpers of the end-to-end tests: start the real `faas` binary, talk to it over HTTP.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `faas` binary under test.
pub const FAAS: &str = env!("CARGO_BIN_EXE_faas");

/// How long anything may take to become ready on a loaded machine.
pub const READY: Duration = Duration::from_secs(60);

/// The repository root (examples are relative to it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A free loopback port for a server the test starts itself (an HTTP-mode function's upstream).
///
/// It is taken below the kernel's ephemeral range, so that servers binding port 0 meanwhile (every
/// replica's watchdog, in this and in concurrent tests) cannot be handed the same port before the
/// function binds it.
pub fn free_port() -> u16 {
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let ephemeral_low: u32 = range
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u32, ephemeral_low.clamp(10_001, 65_535));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id().wrapping_mul(2_654_435_761);
    for i in 0..1000u32 {
        let port = low + seed.wrapping_add(i.wrapping_mul(7919)) % (high - low);
        if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free port between {low} and {high}");
}

/// A running `faas up`.
pub struct Faas {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its stderr, kept in a file for failure messages.
    pub log: PathBuf,
    /// The credentials it was started with.
    pub auth: Option<(String, String)>,
}

impl Faas {
    /// Starts `faas up --port 0 --data-dir DATA ARGS...` in the repository root and waits for its
    /// listening line.
    pub fn start(data_dir: &Path, args: &[&str]) -> Faas {
        Self::start_with_env(data_dir, args, &[])
    }

    /// As [`Faas::start`], with extra environment variables.
    pub fn start_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Faas {
        let log = data_dir.with_extension(format!("{}.log", free_port()));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(FAAS);
        command
            .arg("up")
            .args(["--port", "0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .current_dir(repo_root())
            .env("RUST_LOG", "info")
            .env_remove("OPENFAAS_URL")
            .env_remove("FAAS_AUTH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start faas up");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + READY;
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("faas-rs gateway listening on ") {
                        break url.trim().to_owned();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "faas up did not print its address; stderr:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        let auth = args
            .iter()
            .position(|a| *a == "--auth")
            .and_then(|i| args.get(i + 1))
            .map(|creds| {
                let (u, p) = creds.split_once(':').unwrap();
                (u.to_owned(), p.to_owned())
            });
        Faas {
            child: Some(child),
            url,
            log,
            auth,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// What `faas up` wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A request to `path` with the credentials, if any.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = http_client().request(method, format!("{}{path}", self.url));
        match &self.auth {
            Some((u, p)) => request.basic_auth(u, Some(p)),
            None => request,
        }
    }

    /// `GET path` as JSON (panics on a non-2xx).
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Deploys through `POST /system/functions`, asserting 2xx.
    pub async fn deploy(&self, deployment: Value) {
        let response = self
            .request(reqwest::Method::POST, "/system/functions")
            .json(&deployment)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            status.is_success(),
            "deploy {deployment}: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Waits until `name` has at least `replicas` available replicas, returning its status.
    pub async fn wait_available(&self, name: &str, replicas: u64) -> Value {
        let deadline = Instant::now() + READY;
        loop {
            let response = self
                .request(reqwest::Method::GET, &format!("/system/function/{name}"))
                .send()
                .await
                .unwrap();
            if response.status().is_success() {
                let status: Value = response.json().await.unwrap();
                if status["availableReplicas"].as_u64().unwrap_or(0) >= replicas {
                    return status;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{name} never had {replicas} replicas available; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Invokes until the function answers `200` (a replica may still be starting), returning the
    /// body.
    pub async fn invoke_ok(&self, path: &str, body: &str) -> String {
        let deadline = Instant::now() + READY;
        loop {
            let response = http_client()
                .post(format!("{}/function/{path}", self.url))
                .body(body.to_owned())
                .send()
                .await;
            if let Ok(response) = response {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                if status == 200 {
                    return text;
                }
                assert!(
                    Instant::now() < deadline,
                    "invoking {path}: {status} {text}; stderr:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "invoking {path} never succeeded; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs a client command against this gateway (with its credentials).
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_stdin(args, b"")
    }

    /// Runs a client command in `dir` without `OPENFAAS_URL` (the gateway comes from a flag or
    /// the stack file there), with its credentials.
    pub fn cli_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut command = Command::new(FAAS);
        command
            .args(args)
            .env_remove("OPENFAAS_URL")
            .env_remove("FAAS_AUTH")
            .current_dir(dir);
        if let Some((u, p)) = &self.auth {
            command.env("FAAS_AUTH", format!("{u}:{p}"));
        }
        run(command, b"")
    }

    /// Runs a client command with `stdin` as its standard input.
    pub fn cli_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut command = Command::new(FAAS);
        command
            .args(args)
            .env("OPENFAAS_URL", &self.url)
            .env_remove("FAAS_AUTH")
            .current_dir(repo_root());
        if let Some((u, p)) = &self.auth {
            command.env("FAAS_AUTH", format!("{u}:{p}"));
        }
        run(command, stdin)
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns its status.
    pub fn stop(self) -> std::process::ExitStatus {
        self.stop_with(nix::sys::signal::Signal::SIGTERM)
    }

    /// Sends `signal` and waits (bounded) for the process to exit; returns its status.
    pub fn stop_with(mut self, signal: nix::sys::signal::Signal) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "faas up did not stop on SIGTERM; stderr:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Faas {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `command` with `stdin`, bounded in time.
pub fn run(mut command: Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run faas");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(READY) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!(
                "faas {:?} did not finish in time",
                command.get_args().collect::<Vec<_>>()
            );
        }
    };
    let _ = writer.join();
    output
}

/// A shared HTTP client.
pub fn http_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap()
        })
        .clone()
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the command succeeded and returns its stdout.
#[track_caller]
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "command failed: {}\nstdout: {}",
        stderr(output),
        stdout(output)
    );
    stdout(output)
}

/// Deploys `logger` from `dir`: a fork-mode function that logs `logged: BODY` on stderr and
/// answers `ok`; waits until it is available.
pub async fn deploy_logger(faas: &Faas, dir: &Path) {
    script(
        dir,
        "log.sh",
        "body=$(cat)\necho \"logged: $body\" >&2\nprintf ok",
    );
    ok(&faas.cli(&[
        "deploy",
        "--name",
        "logger",
        "--image",
        dir.to_str().unwrap(),
        "--fprocess",
        "sh log.sh",
        "--env",
        "combine_output=false",
    ]));
    faas.wait_available("logger", 1).await;
}

/// Runs `faas logs logger FLAGS...` (which must follow) and invokes `logger` until a line the
/// follower printed shows an invocation made after it connected; returns that line.
pub async fn follow_shows_new_lines(faas: &Faas, flags: &[&str]) -> String {
    let mut follow = Command::new(FAAS)
        .args(["logs", "logger", "--gateway", &faas.url])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + READY;
    let mut n = 0;
    let found = 'outer: loop {
        n += 1;
        let marker = format!("marker-{n}");
        assert_eq!(faas.invoke_ok("logger", &marker).await, "ok");
        let wait_until = Instant::now() + Duration::from_secs(2);
        while let Ok(line) = rx.recv_timeout(wait_until.saturating_duration_since(Instant::now())) {
            if line.contains(&format!("logged: {marker}")) {
                break 'outer line;
            }
        }
        assert!(
            Instant::now() < deadline,
            "logs {flags:?} never showed a new line"
        );
    };
    let _ = follow.kill();
    let _ = follow.wait();
    found
}

/// Writes an executable shell script `name` into `dir`.
pub fn script(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), format!("#!/bin/sh\n{body}\n")).unwrap();
}

/// Whether process `pid` still runs (exists and is not a zombie).
pub fn process_runs(pid: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("");
    !matches!(state, "Z" | "X")
}

/// Waits (bounded) until process `pid` no longer runs; panics naming `what` otherwise.
pub async fn wait_gone(pid: u64, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while process_runs(pid) {
        assert!(Instant::now() < deadline, "{what} (pid {pid}) still runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
