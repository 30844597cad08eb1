//! The command line: [`Cli`] and its [`Command`]s, parsed with clap.

use clap::{Args, Parser, Subcommand};

use crate::Result;
use crate::client::{Credentials, DEFAULT_GATEWAY, GatewayClient};
use crate::cmd;

/// `faas`: run a FaaS platform on this machine, and drive any OpenFaaS-compatible gateway.
#[derive(Debug, Parser)]
#[command(name = "faas", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `faas`.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Run the gateway and the local provider in this process (Ctrl-C to stop).
    Up(cmd::up::UpArgs),
    /// Deploy functions from a stack file or from flags (update when they exist).
    Deploy(cmd::deploy::DeployArgs),
    /// List the deployed functions.
    #[command(visible_alias = "ls")]
    List(cmd::list::ListArgs),
    /// Show one function's details.
    Describe(cmd::describe::DescribeArgs),
    /// Invoke a function with stdin as the request body; its answer goes to stdout.
    Invoke(cmd::invoke::InvokeArgs),
    /// Remove functions.
    #[command(visible_aliases = ["rm", "delete"])]
    Remove(cmd::remove::RemoveArgs),
    /// Set a function's replica count.
    Scale(cmd::scale::ScaleArgs),
    /// Print a function's logs.
    Logs(cmd::logs::LogsArgs),
    /// Manage secrets.
    Secret(cmd::secret::SecretArgs),
    /// Print the version of this client and of the gateway.
    Version(cmd::version::VersionArgs),
    /// Run a queue worker alone: take asynchronous calls from NATS, call functions through a
    /// gateway (scale workers separately from `faas up`).
    QueueWorker(cmd::queue::QueueWorkerArgs),
}

impl Cli {
    /// The log level when `RUST_LOG` is not set: `info` for `faas up`, `warn` for client commands.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Up(_) | Command::QueueWorker(_) => "info",
            _ => "warn",
        }
    }

    /// Runs the command.
    ///
    /// # Errors
    /// Whatever the command fails with, as one line ([`Error::one_line`](crate::Error::one_line)).
    pub async fn run(self) -> Result<()> {
        match self.command {
            Command::Up(args) => cmd::up::run(args).await,
            Command::Deploy(args) => cmd::deploy::run(args).await,
            Command::List(args) => cmd::list::run(args).await,
            Command::Describe(args) => cmd::describe::run(args).await,
            Command::Invoke(args) => cmd::invoke::run(args).await,
            Command::Remove(args) => cmd::remove::run(args).await,
            Command::Scale(args) => cmd::scale::run(args).await,
            Command::Logs(args) => cmd::logs::run(args).await,
            Command::Secret(args) => cmd::secret::run(args).await,
            Command::Version(args) => cmd::version::run(args).await,
            Command::QueueWorker(args) => cmd::queue::run(args).await,
        }
    }
}

/// Where the gateway is and how to log in: the options every client command shares.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// The gateway's URL [default: the stack file's provider.gateway, else http://127.0.0.1:8080].
    #[arg(short = 'g', long, env = "OPENFAAS_URL")]
    pub gateway: Option<String>,
    /// Basic-auth credentials for /system/* as user:password.
    #[arg(long, env = "FAAS_AUTH", hide_env_values = true)]
    pub auth: Option<Credentials>,
    /// The namespace [default: the gateway's].
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

impl GatewayArgs {
    /// A client of the gateway named by `--gateway`/`OPENFAAS_URL`, else `fallback` (a stack file's),
    /// else [`DEFAULT_GATEWAY`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for an invalid URL.
    pub fn client(&self, fallback: Option<&str>) -> Result<GatewayClient> {
        let url = self
            .gateway
            .as_deref()
            .or(fallback)
            .unwrap_or(DEFAULT_GATEWAY);
        GatewayClient::new(url, self.auth.clone())
    }

    /// The namespace, `None` when not given.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref().filter(|ns| !ns.is_empty())
    }
}

/// Parses `key=value` (the value may contain `=`).
///
/// # Errors
/// A message when there is no `=` or the key is empty.
pub fn parse_key_value(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_values() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_key_value("a="), Ok(("a".into(), String::new())));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }

    #[test]
    fn client_commands_parse() {
        let cli = Cli::try_parse_from([
            "faas",
            "scale",
            "echo",
            "--replicas",
            "3",
            "-g",
            "http://x:1",
        ])
        .unwrap();
        match cli.command {
            Command::Scale(args) => {
                assert_eq!(args.name, "echo");
                assert_eq!(args.replicas, 3);
                assert_eq!(args.gateway.client(None).unwrap().url(), "http://x:1");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from(["faas", "scale", "echo"]).is_err());
        assert!(Cli::try_parse_from(["faas", "list", "--auth", "nocolon"]).is_err());
    }
}
