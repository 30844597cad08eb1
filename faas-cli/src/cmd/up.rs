//! `faas up`: the gateway and a provider (local processes by default) in one process.
//!
//! [`Up`] is the wiring, usable in-process as well as from the command line:
//!
//! ```no_run
//! # async fn example() -> faas_cli::Result<()> {
//! use clap::Parser;
//! use faas_cli::cmd::up::{Up, UpArgs};
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     up: UpArgs,
//! }
//! let args = Args::parse_from(["up", "--port", "0", "--data-dir", "/tmp/faas-data"]);
//! let running = Up::new(args.up).start().await?;
//! println!("listening on http://{}", running.local_addr());
//! running.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! On SIGINT or SIGTERM the gateway stops accepting connections, in-flight requests finish (bounded
//! by `--shutdown-timeout`), then the provider drains and stops its replicas; a second signal exits
//! at once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use faas_core::gateway::{BasicAuth, Gateway, GatewayBuilder};
use faas_core::model::parse_duration;
use tokio::task::JoinHandle;

use crate::client::{Credentials, DeployOutcome, GatewayClient};
use crate::provider::{BuiltProvider, ProviderKind, build_provider};
use crate::stack::Stack;
use crate::{Error, Result};

/// The line `faas up` prints on stdout once it listens, followed by the URL (`http://127.0.0.1:8080`).
pub const LISTENING_LINE: &str = "faas-rs gateway listening on";

/// Arguments of `faas up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// The port to listen on (0 picks a free one; the address is printed).
    #[arg(short, long, default_value_t = 8080, env = "FAAS_PORT")]
    pub port: u16,
    /// The address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Where functions, secrets and logs are kept [default: ~/.local/share/faas].
    #[arg(long, env = "FAAS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Require these credentials (user:password) on /system/*.
    #[arg(
        long,
        env = "FAAS_GATEWAY_AUTH",
        hide_env_values = true,
        conflicts_with = "secrets_dir"
    )]
    pub auth: Option<Credentials>,
    /// Read the credentials from OpenFaaS's basic-auth-user and basic-auth-password files here.
    #[arg(long)]
    pub secrets_dir: Option<PathBuf>,
    /// Deploy the functions of this stack file at start (update those that exist).
    #[arg(short = 'f', long = "yaml", visible_alias = "file")]
    pub file: Option<PathBuf>,
    /// The timeout of functions that set no exec_timeout (30s, 2m).
    #[arg(long, value_parser = duration_arg)]
    pub timeout: Option<Duration>,
    /// The largest invocation request body (bytes, or with a unit: 512Ki, 10Mi, 1Gi) [default: 64Mi].
    #[arg(long, value_parser = size_arg)]
    pub max_body_size: Option<usize>,
    /// How long in-flight requests may take to finish on shutdown.
    #[arg(long, default_value = "30s", value_parser = duration_arg)]
    pub shutdown_timeout: Duration,
    /// Where functions run.
    #[arg(long, value_enum, default_value_t = ProviderKind::Local)]
    pub provider: ProviderKind,
    /// Asynchronous invocation: the queue and its worker.
    #[command(flatten)]
    pub queue: super::queue::QueueArgs,
    /// The largest asynchronous call body (bytes, or with a unit: 10Mi) [default: 64Mi].
    #[arg(long, value_parser = size_arg)]
    pub async_body_limit: Option<usize>,
    /// Serve /async-function/ but run no queue worker here (workers run apart: faas queue-worker).
    #[arg(long)]
    pub no_queue_worker: bool,
}

fn duration_arg(s: &str) -> std::result::Result<Duration, String> {
    parse_duration(s)
}

/// Parses a size: bytes, or a number with `K`/`Ki`/`M`/`Mi`/`G`/`Gi` (optionally followed by `B`).
fn size_arg(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected a number like 1048576 or 1Mi"))?;
    let factor: usize = match unit {
        "" => 1,
        "k" | "K" => 1000,
        "Ki" | "ki" => 1024,
        "M" => 1000 * 1000,
        "Mi" => 1024 * 1024,
        "G" => 1000 * 1000 * 1000,
        "Gi" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {unit:?} (K, Ki, M, Mi, G, Gi)"
            ));
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("invalid size {s:?}: too large"))
}

/// The wiring of `faas up`: provider, gateway, listener. Extend it here (a queue, an autoscaler)
/// rather than in [`run`].
#[derive(Debug)]
#[must_use]
pub struct Up {
    args: UpArgs,
}

impl Up {
    /// The wiring for `args`.
    pub fn new(args: UpArgs) -> Self {
        Up { args }
    }

    /// The arguments.
    pub fn args(&self) -> &UpArgs {
        &self.args
    }

    /// The credentials the gateway requires, from `--auth` or `--secrets-dir`.
    ///
    /// # Errors
    /// [`Error::Platform`] when the secrets dir lacks the files.
    pub fn basic_auth(&self) -> Result<Option<BasicAuth>> {
        if let Some(creds) = &self.args.auth {
            return Ok(Some(BasicAuth::new(&creds.user, &creds.password)));
        }
        match &self.args.secrets_dir {
            Some(dir) => Ok(Some(BasicAuth::from_secrets_dir(dir)?)),
            None => Ok(None),
        }
    }

    /// The gateway builder over `provider` with the flags applied.
    ///
    /// # Errors
    /// As [`Up::basic_auth`].
    pub fn gateway_builder(&self, provider: &BuiltProvider) -> Result<GatewayBuilder> {
        let mut builder =
            Gateway::builder(provider.provider.clone()).basic_auth_opt(self.basic_auth()?);
        if let Some(timeout) = self.args.timeout {
            builder = builder.default_timeout(timeout);
        }
        if let Some(limit) = self.args.max_body_size {
            builder = builder.body_limit(limit);
        }
        Ok(builder)
    }

    /// Starts the provider and the gateway and listens; returns once requests are served.
    ///
    /// # Errors
    /// The provider cannot start, the credentials cannot be read, or the address is taken.
    pub async fn start(self) -> Result<Running> {
        let auth = self.basic_auth()?;
        let addr = SocketAddr::new(self.args.bind, self.args.port);
        // Listen first: a taken port fails before replicas are started for nothing.
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen {
                addr: addr.to_string(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Listen {
            addr: addr.to_string(),
            source,
        })?;
        let provider = build_provider(&self.args).await?;
        let data_dir = crate::provider::data_dir(&self.args)?;
        let parts = super::queue::open(&self.args.queue, &data_dir).await?;
        let mut builder = self
            .gateway_builder(&provider)?
            .queue(parts.queue.clone())
            .invocations(parts.store.clone());
        if let Some(limit) = self.args.async_body_limit {
            builder = builder.async_body_limit(limit);
        }
        let gateway = builder.build();
        let worker = (!self.args.no_queue_worker).then(|| {
            let target = std::sync::Arc::new(gateway.invoker().clone());
            super::queue::WorkerHandle::spawn(&parts, target, self.args.queue.worker_config())
        });
        let metrics = gateway.metrics().clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serve = tokio::spawn(gateway.serve(listener, async move {
            let _ = stop_rx.await;
        }));
        tracing::info!(address = %local_addr, provider = ?self.args.provider, "gateway listening");
        let credentials = self.args.auth.clone().or_else(|| {
            auth.as_ref()
                .and(self.args.secrets_dir.as_ref())
                .and_then(|dir| read_credentials(dir))
        });
        Ok(Running {
            local_addr,
            credentials,
            provider,
            worker,
            stop: Some(stop_tx),
            serve,
            metrics,
            shutdown_timeout: self.args.shutdown_timeout,
        })
    }
}

fn read_credentials(dir: &std::path::Path) -> Option<Credentials> {
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .ok()
            .map(|s| s.trim().to_owned())
    };
    Some(Credentials {
        user: read(faas_core::gateway::BASIC_AUTH_USER_FILE)?,
        password: read(faas_core::gateway::BASIC_AUTH_PASSWORD_FILE)?,
    })
}

/// A running `faas up`: the gateway serving, the provider running.
#[derive(Debug)]
pub struct Running {
    local_addr: SocketAddr,
    credentials: Option<Credentials>,
    provider: BuiltProvider,
    worker: Option<super::queue::WorkerHandle>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serve: JoinHandle<std::io::Result<()>>,
    metrics: faas_core::gateway::Metrics,
    shutdown_timeout: Duration,
}

impl Running {
    /// The address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The gateway's URL (`http://127.0.0.1:8080`).
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// A client of this gateway, with its credentials.
    ///
    /// # Errors
    /// Never in practice (the URL is valid).
    pub fn client(&self) -> Result<GatewayClient> {
        GatewayClient::new(&self.url(), self.credentials.clone())
    }

    /// Deploys every function of a stack file through the gateway, as `faas deploy -f` would (PUT,
    /// POST when absent). Failures are logged and counted; the platform keeps running.
    ///
    /// # Errors
    /// [`Error::Stack`] when the file is invalid; the number of failed functions otherwise.
    pub async fn deploy_stack(&self, path: &std::path::Path) -> Result<()> {
        let stack = Stack::from_file(path)?;
        let deployments = stack.deployments()?;
        let client = self.client()?;
        let mut failed = 0;
        for deployment in &deployments {
            match client.deploy(deployment).await {
                Ok(outcome) => {
                    let verb = if outcome == DeployOutcome::Created {
                        "deployed"
                    } else {
                        "updated"
                    };
                    tracing::info!(function = %deployment.service, "{verb} from {}", path.display());
                }
                Err(e) => {
                    failed += 1;
                    tracing::error!(function = %deployment.service, error = %e.one_line(), "deploy failed");
                }
            }
        }
        if failed > 0 {
            return Err(Error::InvalidArgument(format!(
                "{failed} of {} functions of {} failed to deploy",
                deployments.len(),
                path.display()
            )));
        }
        Ok(())
    }

    /// Stops gracefully: stop accepting, let in-flight requests finish (bounded by the shutdown
    /// timeout), then stop the provider (draining its replicas).
    ///
    /// # Errors
    /// [`Error::Io`] when the server failed.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let mut serve = self.serve;
        let drained = drain(
            &self.provider,
            &self.metrics,
            self.shutdown_timeout,
            &mut serve,
        )
        .await
        .ok_or(());
        if let Some(worker) = self.worker.take()
            && let Err(e) = worker.shutdown().await
        {
            tracing::warn!(error = %e.one_line(), "the queue worker failed");
        }
        self.provider.shutdown().await;
        let result = match drained {
            Ok(joined) => joined,
            // Streams held open by the provider (logs with follow) end with it.
            Err(_) => match tokio::time::timeout(Duration::from_secs(5), &mut serve).await {
                Ok(joined) => joined,
                Err(_) => {
                    serve.abort();
                    Ok(Ok(()))
                }
            },
        };
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::io("serving the gateway", e)),
            Err(e) if e.is_cancelled() => Ok(()),
            Err(e) => Err(Error::io("serving the gateway", std::io::Error::other(e))),
        }
    }
}

/// Waits until the gateway stopped serving, or until no invocation is in flight any more (what is
/// left then are idle connections and long-lived streams such as `logs --follow`, which end with the
/// provider), bounded by `timeout`. `None` when the gateway still serves.
async fn drain(
    provider: &BuiltProvider,
    metrics: &faas_core::gateway::Metrics,
    timeout: Duration,
    serve: &mut JoinHandle<std::io::Result<()>>,
) -> Option<std::result::Result<std::io::Result<()>, tokio::task::JoinError>> {
    let deadline = tokio::time::Instant::now() + timeout;
    // Requests that were just accepted get a moment to be counted as in flight.
    if let Ok(joined) = tokio::time::timeout(Duration::from_millis(200), &mut *serve).await {
        return Some(joined);
    }
    loop {
        let in_flight = invocations_in_flight(provider, metrics).await;
        if in_flight == 0 {
            return None;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                in_flight,
                ?timeout,
                "invocations still in flight, stopping anyway"
            );
            return None;
        }
        tokio::select! {
            joined = &mut *serve => return Some(joined),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

/// Invocations the gateway started and has not answered yet, over every function.
async fn invocations_in_flight(
    provider: &BuiltProvider,
    metrics: &faas_core::gateway::Metrics,
) -> u64 {
    let provider = &provider.provider;
    let Ok(namespaces) = provider.namespaces().await else {
        return 0;
    };
    let mut total = 0;
    for namespace in namespaces {
        if let Ok(functions) = provider.list(&namespace).await {
            total += functions
                .iter()
                .map(|f| metrics.inflight(&format!("{}.{namespace}", f.name)))
                .sum::<u64>();
        }
    }
    total
}

/// Completes on the first SIGINT or SIGTERM; a second one exits the process at once.
async fn shutdown_signal() {
    wait_signal().await;
    tracing::info!("shutting down (send the signal again to exit at once)");
    tokio::spawn(async {
        wait_signal().await;
        tracing::warn!("exiting at once");
        std::process::exit(130);
    });
}

async fn wait_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Runs `faas up` until SIGINT or SIGTERM. Once requests are served, prints [`LISTENING_LINE`] and
/// the URL on stdout, then `portal: URL/ui/`.
///
/// # Errors
/// The provider cannot start, the address is taken, or the stack file is invalid.
pub async fn run(args: UpArgs) -> Result<()> {
    let file = args.file.clone();
    let running = Up::new(args).start().await?;
    super::print(&format!(
        "{LISTENING_LINE} {url}\nportal: {url}/ui/\n",
        url = running.url()
    ))?;
    let signal = shutdown_signal();
    tokio::pin!(signal);
    if let Some(path) = file {
        let deploy = running.deploy_stack(&path);
        tokio::select! {
            result = deploy => if let Err(e) = result {
                eprintln!("error: {}", e.one_line());
                if matches!(e, Error::Stack { .. }) {
                    running.shutdown().await?;
                    return Err(e);
                }
            },
            () = &mut signal => return running.shutdown().await,
        }
    }
    signal.await;
    running.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size_arg("1024"), Ok(1024));
        assert_eq!(size_arg("1Ki"), Ok(1024));
        assert_eq!(size_arg("2Mi"), Ok(2 * 1024 * 1024));
        assert_eq!(size_arg("1MB"), Ok(1_000_000));
        assert_eq!(size_arg("1Gi"), Ok(1 << 30));
        assert!(size_arg("1Ti").is_err());
        assert!(size_arg("big").is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_in_process_deploys_a_stack_and_shuts_down() {
        use clap::Parser;

        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            up: UpArgs,
        }
        let tmp = tempfile::tempdir().unwrap();
        let stack = tmp.path().join("stack.yml");
        std::fs::write(
            &stack,
            "functions:\n  echo:\n    image: .\n    fprocess: cat\n",
        )
        .unwrap();
        let data = tmp.path().join("data");
        let args = Args::parse_from([
            "up",
            "--port",
            "0",
            "--auth",
            "u:p",
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        let running = Up::new(args.up).start().await.unwrap();
        assert_ne!(running.local_addr().port(), 0);
        running.deploy_stack(&stack).await.unwrap();
        // The client carries the credentials the gateway requires.
        let client = running.client().unwrap();
        assert_eq!(
            client
                .get("echo", None)
                .await
                .unwrap()
                .env_process
                .as_deref(),
            Some("cat")
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let response = client
                .invoke(crate::client::Invocation::new("echo", "hi"))
                .await
                .unwrap();
            if response.status() == 200 {
                assert_eq!(response.text().await.unwrap(), "hi");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "echo never answered: {}",
                response.status()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        running.shutdown().await.unwrap();
        // Stopped: the address no longer answers.
        assert!(matches!(
            client.list(None).await,
            Err(Error::Unreachable { .. })
        ));
    }
}
