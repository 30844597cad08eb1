//! The command line: [`Cli`] and its [`Command`]s, parsed with clap.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::client::{Credentials, DEFAULT_GATEWAY, GatewayClient};
use crate::cmd;
use crate::stack::{EnvSubst, Stack};
use crate::{Error, Result};

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
    /// [`Error::InvalidArgument`] for an invalid URL.
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

/// A stack file, as faas-cli's global `-f/--yaml` and `--envsubst` name it.
#[derive(Debug, Clone, Default, Args)]
pub struct StackFileArgs {
    /// A stack file (stack.yml); its `provider.gateway` is the gateway unless --gateway is given.
    #[arg(
        short = 'f',
        long = "yaml",
        visible_alias = "file",
        value_name = "FILE"
    )]
    pub file: Option<PathBuf>,
    /// Replace ${VAR} in the stack file from the environment; --envsubst=false keeps the text.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub envsubst: bool,
}

/// The stack file names faas-cli looks for when none is given, in this order.
pub const DEFAULT_STACK_FILES: [&str; 2] = ["stack.yml", "stack.yaml"];

impl StackFileArgs {
    /// How `${VAR}` references are treated.
    pub fn envsubst(&self) -> EnvSubst {
        if self.envsubst {
            EnvSubst::Environment
        } else {
            EnvSubst::Off
        }
    }

    /// The stack file `-f` names, parsed; `None` without `-f`.
    ///
    /// # Errors
    /// [`Error::Stack`] when it cannot be read or is invalid.
    pub fn load(&self) -> Result<Option<Stack>> {
        self.file
            .as_ref()
            .map(|path| Stack::from_file_with(path, self.envsubst()))
            .transpose()
    }

    /// The stack file `-f` names, else `stack.yml` or `stack.yaml` in `dir` when one exists (as
    /// faas-cli finds its default stack file), with its path.
    ///
    /// # Errors
    /// [`Error::Stack`] when it cannot be read or is invalid.
    pub fn load_or_default(&self, dir: &Path) -> Result<Option<(PathBuf, Stack)>> {
        let path = match &self.file {
            Some(path) => path.clone(),
            None => match DEFAULT_STACK_FILES
                .iter()
                .map(|name| dir.join(name))
                .find(|path| path.is_file())
            {
                Some(path) => path,
                None => return Ok(None),
            },
        };
        let stack = Stack::from_file_with(&path, self.envsubst())?;
        Ok(Some((path, stack)))
    }

    /// The gateway the stack file names (`provider.gateway`), if any.
    ///
    /// # Errors
    /// As [`StackFileArgs::load`].
    pub fn gateway(&self) -> Result<Option<String>> {
        Ok(self.load()?.and_then(|stack| stack.provider.gateway))
    }
}

/// Which functions of a stack file: faas-cli's `--filter` (wildcards) and `--regex`.
#[derive(Debug, Clone, Default, Args)]
pub struct FunctionFilter {
    /// Only the functions whose name matches this wildcard pattern (`*gif*`, or a name; repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub filter: Vec<String>,
    /// Only the functions whose name matches this regular expression (anywhere in the name).
    #[arg(long, value_name = "REGEX", conflicts_with = "filter")]
    pub regex: Option<String>,
}

impl FunctionFilter {
    /// Whether any filter is set.
    pub fn is_set(&self) -> bool {
        !self.filter.is_empty() || self.regex.is_some()
    }

    /// The names of `names` the filters select, in their order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid pattern or expression, or one that selects no
    /// function (it names `file`).
    pub fn select<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        file: &Path,
    ) -> Result<Vec<String>> {
        let names: Vec<&str> = names.into_iter().collect();
        let none = |flag: &str, pattern: &str| {
            Error::InvalidArgument(format!(
                "no function in {} matches {flag} {pattern:?}",
                file.display()
            ))
        };
        if let Some(expression) = &self.regex {
            let regex = regex::Regex::new(expression)
                .map_err(|e| Error::InvalidArgument(format!("--regex {expression:?}: {e}")))?;
            let selected: Vec<String> = names
                .iter()
                .filter(|name| regex.is_match(name))
                .map(|name| (*name).to_owned())
                .collect();
            if selected.is_empty() {
                return Err(none("--regex", expression));
            }
            return Ok(selected);
        }
        if self.filter.is_empty() {
            return Ok(names.iter().map(|name| (*name).to_owned()).collect());
        }
        let mut patterns = Vec::with_capacity(self.filter.len());
        for text in &self.filter {
            let pattern = glob::Pattern::new(text)
                .map_err(|e| Error::InvalidArgument(format!("--filter {text:?}: {e}")))?;
            if !names.iter().any(|name| pattern.matches(name)) {
                return Err(none("--filter", text));
            }
            patterns.push(pattern);
        }
        Ok(names
            .iter()
            .filter(|name| patterns.iter().any(|p| p.matches(name)))
            .map(|name| (*name).to_owned())
            .collect())
    }
}

/// Parses an HTTP header as faas-cli's `-H` takes it: `NAME=VALUE` or `NAME: VALUE`.
///
/// # Errors
/// A message when there is neither `=` nor `:`, or the name is empty.
pub fn parse_header(s: &str) -> std::result::Result<(String, String), String> {
    let at = s.find(['=', ':']);
    match at {
        Some(at) if at > 0 => {
            let (name, value) = (&s[..at], &s[at + 1..]);
            Ok((name.trim().to_owned(), value.trim_start().to_owned()))
        }
        _ => Err(format!("expected NAME=VALUE or \"NAME: VALUE\", got {s:?}")),
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
    fn headers_take_either_separator() {
        assert_eq!(
            parse_header("X-Ping-Url=http://a:1/b"),
            Ok(("X-Ping-Url".into(), "http://a:1/b".into()))
        );
        assert_eq!(
            parse_header("Content-Type: application/json"),
            Ok(("Content-Type".into(), "application/json".into()))
        );
        assert_eq!(
            parse_header("X-Empty="),
            Ok(("X-Empty".into(), String::new()))
        );
        assert!(parse_header("nothing").is_err());
        assert!(parse_header(": v").is_err());
    }

    #[test]
    fn filters_select_by_wildcard_or_expression() {
        let names = ["resize-gif", "resize-png", "hello"];
        let file = Path::new("stack.yml");
        let select = |filter: &[&str], regex: Option<&str>| {
            FunctionFilter {
                filter: filter.iter().map(|f| (*f).to_owned()).collect(),
                regex: regex.map(str::to_owned),
            }
            .select(names, file)
        };
        assert_eq!(select(&[], None).unwrap(), names);
        assert_eq!(select(&["*gif*"], None).unwrap(), ["resize-gif"]);
        // in the file's order, each name once
        assert_eq!(
            select(&["hello", "resize-*", "*"], None).unwrap(),
            ["resize-gif", "resize-png", "hello"]
        );
        assert_eq!(select(&[], Some("png$")).unwrap(), ["resize-png"]);
        assert_eq!(
            select(&[], Some("^resize")).unwrap(),
            ["resize-gif", "resize-png"]
        );
        let err = select(&["nope*"], None).unwrap_err();
        assert!(err.to_string().contains("--filter \"nope*\""), "{err}");
        assert!(err.to_string().contains("stack.yml"), "{err}");
        assert!(select(&[], Some("(")).is_err());
        assert!(select(&[], Some("zzz")).is_err());
        assert!(select(&["[z"], None).is_err());
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
