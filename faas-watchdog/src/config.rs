//! Configuration from OpenFaaS's environment variables.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use faas_core::model::parse_duration;

use crate::error::{Error, Result};
use crate::logs::{LogSink, StderrSink};
use crate::process::Launcher;
use crate::server::ServeConfig;

/// How the watchdog runs the function process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// The classic watchdog (no `mode` set): one process per request, headers as `Http_*` variables,
    /// stdout (and stderr when `combine_output`) buffered into the response.
    Classic,
    /// of-watchdog's `serializing`: one process per request, stdout buffered, stderr logged.
    Serializing,
    /// of-watchdog's `streaming`: one process per request, stdin and stdout streamed.
    Streaming,
    /// of-watchdog's `http`: one long-running process that serves HTTP on `upstream_url`.
    Http,
    /// of-watchdog's `static`: files under `static_path`.
    Static,
}

impl Mode {
    /// Parses the `mode` variable: empty means [`Mode::Classic`].
    ///
    /// # Errors
    ///
    /// A one-line [`Error::Config`] naming `mode` for an unknown value.
    pub fn parse(value: &str) -> Result<Self> {
        match value.trim() {
            "" | "classic" => Ok(Mode::Classic),
            "serializing" => Ok(Mode::Serializing),
            "streaming" => Ok(Mode::Streaming),
            "http" => Ok(Mode::Http),
            "static" => Ok(Mode::Static),
            other => Err(Error::config(
                "mode",
                format!(
                    "unknown mode={other:?}: expected one of serializing, streaming, http, static (or unset for the classic watchdog)"
                ),
            )),
        }
    }

    /// The name of the mode as OpenFaaS spells it (`classic` for the classic watchdog).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Classic => "classic",
            Mode::Serializing => "serializing",
            Mode::Streaming => "streaming",
            Mode::Http => "http",
            Mode::Static => "static",
        }
    }

    fn forks(self) -> bool {
        matches!(self, Mode::Classic | Mode::Serializing | Mode::Streaming)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The whole configuration of a watchdog.
///
/// Built from environment variables with the names and defaults of OpenFaaS's classic watchdog (no
/// `mode`) and of-watchdog (any `mode`), then adjusted with the `with_*` setters by an embedder.
///
/// ```
/// use faas_watchdog::{Config, Mode};
///
/// let config = Config::from_vars([
///     ("fprocess".to_owned(), "cat".to_owned()),
///     ("mode".to_owned(), "streaming".to_owned()),
///     ("exec_timeout".to_owned(), "500ms".to_owned()),
/// ])
/// .unwrap()
/// .with_port(0)
/// .with_metrics_port(None)
/// .with_lock_file(None);
/// assert_eq!(config.mode, Mode::Streaming);
/// assert_eq!(config.exec_timeout, Some(std::time::Duration::from_millis(500)));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// How the function runs (`mode`).
    pub mode: Mode,
    /// The function's command line (`function_process`, or `fprocess`), split into words as a
    /// shell would (see [`split_command_line`]).
    pub function_process: Option<String>,
    /// Where the function listens in `http` mode (`upstream_url` or `http_upstream_url`).
    pub upstream_url: Option<http::Uri>,
    /// The address to listen on (all interfaces unless changed by [`Config::with_bind_address`]).
    pub bind_address: IpAddr,
    /// The HTTP port (`port`, 8080; 0 picks a free port).
    pub port: u16,
    /// The port of the Prometheus listener (8081; `metrics_port`), `None` to disable it.
    pub metrics_port: Option<u16>,
    /// `read_timeout`: how long a client may take to send its request (30s classic, 10s otherwise).
    pub read_timeout: Duration,
    /// `write_timeout`: how long a response may take (30s classic, 10s otherwise); also the drain
    /// limit on shutdown.
    pub write_timeout: Duration,
    /// `exec_timeout`: the limit on one invocation (none for classic, 10s otherwise; `0` disables).
    pub exec_timeout: Option<Duration>,
    /// `healthcheck_interval`: how long to keep serving (unhealthy) after SIGTERM before draining
    /// (default: none, fwatchdog stops accepting at once; OpenFaaS waits `write_timeout`).
    pub healthcheck_interval: Duration,
    /// `max_inflight`: requests served at once before answering 429 (0 = no limit).
    pub max_inflight: usize,
    /// `prefix_logs`: prefix forwarded function log lines with a timestamp and the stream name.
    pub prefix_logs: bool,
    /// `log_buffer_size`: the longest log line forwarded as one line; longer lines are split.
    pub log_buffer_size: usize,
    /// `content_type`: the response `Content-Type` (classic: the request's; of-watchdog fork modes:
    /// `application/octet-stream`).
    pub content_type: Option<String>,
    /// The lock file written once ready (`/tmp/.lock`), `None` when `suppress_lock=true`.
    pub lock_file: Option<PathBuf>,
    /// `static_path`: the directory served in `static` mode (`/home/app/public`).
    pub static_path: PathBuf,
    /// `ready_path`: when set, `/_/ready` asks the function at this path.
    pub ready_path: Option<String>,
    /// `buffer_http` (or `http_buffer_req_body`): buffer request bodies before proxying in `http`
    /// mode, for upstreams that do not accept chunked bodies.
    pub buffer_http: bool,
    /// `combine_output`: classic mode answers stdout and stderr together (default true).
    pub combine_output: bool,
    /// `write_debug`: log function output and request details.
    pub write_debug: bool,
    /// `marshal_request`: classic mode gives the process a JSON document with headers and body.
    pub marshal_request: bool,
    /// `cgi_headers`: give fork-mode processes the `Http_*` variables (default true).
    pub cgi_headers: bool,
    /// `max_header_bytes` (fwatchdog extension): request header limit, 431 beyond (1 MiB).
    pub max_header_bytes: usize,
    /// `max_body_bytes` (fwatchdog extension): request body limit, 413 beyond (no limit).
    pub max_body_bytes: Option<u64>,
    /// Extra environment variables given to every function process (the function's own env).
    pub function_env: Vec<(String, String)>,
    /// The working directory of function processes (the watchdog's own when `None`).
    pub working_dir: Option<PathBuf>,
    /// `die_with_watchdog` (fwatchdog extension; default true in `http` mode, false in the fork
    /// modes): function processes get `PR_SET_PDEATHSIG` so the kernel kills them if the watchdog
    /// dies, even by SIGKILL. This needs a hook between `fork` and `exec`, which makes every spawn
    /// a full `fork` instead of `posix_spawn` (vfork): free for `http` mode's one long-running
    /// process, about 20% more CPU per request in the fork modes. Without it a fork-mode process
    /// is still killed with its process group on timeouts, disconnects and shutdown, and sees its
    /// stdin and stdout pipes close when the watchdog dies.
    pub die_with_watchdog: bool,
    /// Where function log lines go (the watchdog's stderr by default).
    pub log_sink: Arc<dyn LogSink>,
    /// The function process prepared for spawning, once per running watchdog.
    launcher: LauncherCache,
}

/// A lazily prepared [`Launcher`]; a clone of the configuration starts with an empty cache, so
/// that changes made to the clone are seen.
#[derive(Default)]
struct LauncherCache(OnceLock<Option<Arc<Launcher>>>);

impl Clone for LauncherCache {
    fn clone(&self) -> Self {
        LauncherCache::default()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("mode", &self.mode)
            .field("function_process", &self.function_process)
            .field("upstream_url", &self.upstream_url)
            .field("bind_address", &self.bind_address)
            .field("port", &self.port)
            .field("metrics_port", &self.metrics_port)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("exec_timeout", &self.exec_timeout)
            .field("healthcheck_interval", &self.healthcheck_interval)
            .field("max_inflight", &self.max_inflight)
            .field("prefix_logs", &self.prefix_logs)
            .field("log_buffer_size", &self.log_buffer_size)
            .field("content_type", &self.content_type)
            .field("lock_file", &self.lock_file)
            .field("static_path", &self.static_path)
            .field("ready_path", &self.ready_path)
            .field("buffer_http", &self.buffer_http)
            .field("combine_output", &self.combine_output)
            .field("write_debug", &self.write_debug)
            .field("marshal_request", &self.marshal_request)
            .field("cgi_headers", &self.cgi_headers)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("function_env", &self.function_env.len())
            .field("working_dir", &self.working_dir)
            .field("die_with_watchdog", &self.die_with_watchdog)
            .finish_non_exhaustive()
    }
}

/// The default lock file path, as OpenFaaS's watchdogs write it.
pub const DEFAULT_LOCK_FILE: &str = "/tmp/.lock";

struct Vars(HashMap<String, String>);

impl Vars {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The first of `names` that is set (later names in OpenFaaS override earlier ones, so callers
    /// list the winning alias first).
    fn first(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.get(n))
    }

    fn bool(&self, name: &str, default: bool) -> bool {
        match self.get(name).map(str::trim) {
            None | Some("") => default,
            Some(v) => matches!(v, "true" | "TRUE" | "True" | "1" | "t" | "T"),
        }
    }

    fn duration(&self, name: &'static str, default: Duration) -> Result<Duration> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => parse_duration(v).map_err(|e| {
                Error::config(
                    name,
                    format!("invalid {name}={v:?}: {e} (use e.g. 10s, 500ms or plain seconds)"),
                )
            }),
        }
    }

    fn number<T: std::str::FromStr>(&self, name: &'static str) -> Result<Option<T>> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                Error::config(
                    name,
                    format!("invalid {name}={v:?}: expected a non-negative integer"),
                )
            }),
        }
    }
}

impl Config {
    /// Reads the configuration from this process's environment.
    ///
    /// Function processes inherit the environment, so [`Config::function_env`] stays empty.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable when `fprocess` is missing, `mode` is unknown or a
    /// value cannot be parsed.
    pub fn from_env() -> Result<Self> {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self::parse(Vars(vars), Vec::new())
    }

    /// Reads the configuration from the given variables, as an embedder that runs a function's
    /// watchdog in-process does; every variable is also given to the function's processes
    /// ([`Config::function_env`]).
    ///
    /// # Errors
    ///
    /// As [`Config::from_env`].
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let function_env: Vec<(String, String)> = vars.into_iter().collect();
        let map = function_env.iter().cloned().collect();
        Self::parse(Vars(map), function_env)
    }

    fn parse(vars: Vars, function_env: Vec<(String, String)>) -> Result<Self> {
        let mode = Mode::parse(vars.get("mode").unwrap_or(""))?;
        let classic = mode == Mode::Classic;

        let function_process = vars
            .first(&["function_process", "fprocess"])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if function_process.is_none() && mode.forks()
            || function_process.is_none() && mode == Mode::Http
        {
            return Err(Error::config(
                "fprocess",
                "missing fprocess (or function_process): set it to the command that runs the function",
            ));
        }
        if let Some(process) = &function_process
            && let Err(reason) = split_command_line(process)
        {
            return Err(Error::config(
                "fprocess",
                format!("invalid fprocess {process:?}: {reason}"),
            ));
        }

        let upstream_url = match vars
            .first(&["http_upstream_url", "upstream_url"])
            .map(str::trim)
        {
            None | Some("") => None,
            Some(v) => {
                let uri: http::Uri = v.parse().map_err(|_| {
                    Error::config(
                        "upstream_url",
                        format!("invalid upstream_url={v:?}: expected http://host:port"),
                    )
                })?;
                if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                    return Err(Error::config(
                        "upstream_url",
                        format!("invalid upstream_url={v:?}: expected http://host:port"),
                    ));
                }
                Some(uri)
            }
        };
        if mode == Mode::Http && upstream_url.is_none() {
            return Err(Error::config(
                "upstream_url",
                "missing upstream_url: mode=http needs the address the function listens on, e.g. http://127.0.0.1:5000",
            ));
        }

        let default_timeout = if classic {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(10)
        };
        let read_timeout = vars.duration("read_timeout", default_timeout)?;
        let write_timeout = vars.duration("write_timeout", default_timeout)?;
        if write_timeout.is_zero() {
            return Err(Error::config(
                "write_timeout",
                "write_timeout must be over 0s",
            ));
        }
        let exec_default = if classic {
            Duration::ZERO
        } else {
            Duration::from_secs(10)
        };
        let exec_timeout =
            Some(vars.duration("exec_timeout", exec_default)?).filter(|d| !d.is_zero());
        let healthcheck_interval = vars.duration("healthcheck_interval", Duration::ZERO)?;

        let port = vars.number::<u16>("port")?.unwrap_or(8080);
        let metrics_port = Some(vars.number::<u16>("metrics_port")?.unwrap_or(8081));
        let max_inflight = vars.number::<usize>("max_inflight")?.unwrap_or(0);
        let log_buffer_size = vars
            .number::<usize>("log_buffer_size")?
            .unwrap_or(64 * 1024)
            .max(16);
        let max_header_bytes = vars.number::<usize>("max_header_bytes")?.unwrap_or(1 << 20);
        let max_body_bytes = vars.number::<u64>("max_body_bytes")?.filter(|n| *n > 0);

        let content_type = match vars.get("content_type") {
            Some(v) if !v.is_empty() => Some(v.to_owned()),
            _ if mode == Mode::Serializing || mode == Mode::Streaming => {
                Some("application/octet-stream".to_owned())
            }
            _ => None,
        };
        if let Some(ct) = &content_type
            && http::HeaderValue::from_str(ct).is_err()
        {
            return Err(Error::config(
                "content_type",
                format!("invalid content_type={ct:?}"),
            ));
        }

        let lock_file = if vars.bool("suppress_lock", false) {
            None
        } else {
            Some(PathBuf::from(DEFAULT_LOCK_FILE))
        };
        let prefix_logs = vars.bool("prefix_logs", true);

        Ok(Config {
            mode,
            function_process,
            upstream_url,
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
            metrics_port,
            read_timeout,
            write_timeout,
            exec_timeout,
            healthcheck_interval,
            max_inflight,
            prefix_logs,
            log_buffer_size,
            content_type,
            lock_file,
            static_path: PathBuf::from(
                vars.get("static_path")
                    .filter(|s| !s.is_empty())
                    .unwrap_or("/home/app/public"),
            ),
            ready_path: vars
                .get("ready_path")
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            buffer_http: vars.bool("buffer_http", false)
                || vars.bool("http_buffer_req_body", false),
            combine_output: vars.bool("combine_output", true),
            write_debug: vars.bool("write_debug", false),
            marshal_request: vars.bool("marshal_request", false),
            cgi_headers: vars.bool("cgi_headers", true),
            max_header_bytes,
            max_body_bytes,
            function_env,
            working_dir: None,
            die_with_watchdog: vars.bool("die_with_watchdog", mode == Mode::Http),
            log_sink: Arc::new(StderrSink::new(prefix_logs)),
            launcher: LauncherCache::default(),
        })
    }

    /// The serving part of this configuration (timeouts, limits, readiness, lock file).
    pub fn serve_config(&self) -> ServeConfig {
        ServeConfig::default()
            .with_read_timeout(self.read_timeout)
            .with_write_timeout(self.write_timeout)
            .with_max_inflight(self.max_inflight)
            .with_max_header_bytes(self.max_header_bytes)
            .with_max_body_bytes(self.max_body_bytes)
            .with_ready_path(self.ready_path.clone())
            .with_lock_file(self.lock_file.clone())
            .with_shutdown_delay(self.healthcheck_interval)
    }

    /// The function's program and arguments: `fprocess` split into words as a POSIX shell
    /// would, without expansions (see [`split_command_line`]).
    pub fn process_argv(&self) -> Vec<String> {
        split_command_line(self.function_process.as_deref().unwrap_or("")).unwrap_or_default()
    }

    /// The function process prepared for spawning: computed on first use and kept, so call it
    /// only once the configuration is final (it is, inside a running watchdog).
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `fprocess` is empty.
    pub(crate) fn launcher(&self) -> std::io::Result<Arc<Launcher>> {
        self.launcher
            .0
            .get_or_init(|| Launcher::new(self).ok().map(Arc::new))
            .clone()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty fprocess"))
    }

    /// Sets the mode (this does not change [`Config::die_with_watchdog`], whose default depends
    /// on the mode read from the environment).
    #[must_use]
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the function's command line.
    #[must_use]
    pub fn with_function_process(mut self, process: impl Into<String>) -> Self {
        self.function_process = Some(process.into());
        self
    }

    /// Sets the upstream URL of `http` mode.
    #[must_use]
    pub fn with_upstream_url(mut self, url: http::Uri) -> Self {
        self.upstream_url = Some(url);
        self
    }

    /// Sets the address to listen on (e.g. `127.0.0.1` for an embedded watchdog).
    #[must_use]
    pub fn with_bind_address(mut self, addr: IpAddr) -> Self {
        self.bind_address = addr;
        self
    }

    /// Sets the HTTP port (0 picks a free one: see [`crate::BoundWatchdog::local_addr`]).
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the metrics port; `None` disables the metrics listener.
    #[must_use]
    pub fn with_metrics_port(mut self, port: Option<u16>) -> Self {
        self.metrics_port = port;
        self
    }

    /// Sets the read timeout.
    #[must_use]
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Sets the write timeout.
    #[must_use]
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sets the exec timeout (`None`: no limit).
    #[must_use]
    pub fn with_exec_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.exec_timeout = timeout;
        self
    }

    /// Sets the delay between SIGTERM (or the shutdown future) and draining.
    #[must_use]
    pub fn with_healthcheck_interval(mut self, interval: Duration) -> Self {
        self.healthcheck_interval = interval;
        self
    }

    /// Sets `max_inflight` (0: no limit).
    #[must_use]
    pub fn with_max_inflight(mut self, max: usize) -> Self {
        self.max_inflight = max;
        self
    }

    /// Sets the lock file (`None`: write none, as `suppress_lock=true`).
    #[must_use]
    pub fn with_lock_file(mut self, path: Option<PathBuf>) -> Self {
        self.lock_file = path;
        self
    }

    /// Sets the extra environment of function processes.
    #[must_use]
    pub fn with_function_env(mut self, env: Vec<(String, String)>) -> Self {
        self.function_env = env;
        self
    }

    /// Sets the working directory of function processes.
    #[must_use]
    pub fn with_working_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.working_dir = dir;
        self
    }

    /// Sets whether function processes are killed by the kernel when the watchdog dies.
    #[must_use]
    pub fn with_die_with_watchdog(mut self, enabled: bool) -> Self {
        self.die_with_watchdog = enabled;
        self
    }

    /// Sets where function log lines go.
    #[must_use]
    pub fn with_log_sink(mut self, sink: Arc<dyn LogSink>) -> Self {
        self.log_sink = sink;
        self
    }

    /// Sets the request body limit (`None`: no limit).
    #[must_use]
    pub fn with_max_body_bytes(mut self, max: Option<u64>) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Sets the request header limit.
    #[must_use]
    pub fn with_max_header_bytes(mut self, max: usize) -> Self {
        self.max_header_bytes = max;
        self
    }

    /// Sets the static directory of `static` mode.
    #[must_use]
    pub fn with_static_path(mut self, path: PathBuf) -> Self {
        self.static_path = path;
        self
    }

    /// Sets the readiness path proxied by `/_/ready`.
    #[must_use]
    pub fn with_ready_path(mut self, path: Option<String>) -> Self {
        self.ready_path = path;
        self
    }
}

/// Splits a command line into words as a POSIX shell does, without running one: words are
/// separated by whitespace; `'...'` keeps everything literally; `"..."` keeps everything but
/// `\\`, `\\"`, `\\$` and `` \\` `` escapes; a backslash outside quotes keeps the next character.
/// There are no expansions (`$VAR`, `*`, `~`), pipes or redirections: for those, run `sh -c '...'`.
///
/// OpenFaaS's watchdogs split `fprocess` on single spaces, so a quoted argument reaches the
/// program with its quotes; a command line without quotes or backslashes is split the same here.
///
/// ```
/// use faas_watchdog::split_command_line;
/// assert_eq!(
///     split_command_line(r#"sh -c 'cat | wc -c'"#).unwrap(),
///     ["sh", "-c", "cat | wc -c"]
/// );
/// assert!(split_command_line("echo 'oops").is_err());
/// ```
///
/// # Errors
///
/// A message naming the problem: an unterminated quote, or a backslash at the end.
pub fn split_command_line(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('\\' | '"' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".to_owned()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".to_owned()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => return Err("a backslash ends the line".to_owned()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Result<Config> {
        Config::from_vars(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn classic_defaults() {
        let c = vars(&[("fprocess", "cat")]).unwrap();
        assert_eq!(c.mode, Mode::Classic);
        assert_eq!(c.port, 8080);
        assert_eq!(c.metrics_port, Some(8081));
        assert_eq!(c.read_timeout, Duration::from_secs(30));
        assert_eq!(c.write_timeout, Duration::from_secs(30));
        assert_eq!(c.exec_timeout, None);
        assert!(c.combine_output);
        assert!(c.cgi_headers);
        assert_eq!(c.content_type, None);
        assert_eq!(c.lock_file, Some(PathBuf::from("/tmp/.lock")));
        assert_eq!(c.function_env.len(), 1);
        // Fork modes spawn with posix_spawn unless asked for the parent death signal.
        assert!(!c.die_with_watchdog);
        assert!(
            vars(&[("fprocess", "cat"), ("die_with_watchdog", "true")])
                .unwrap()
                .die_with_watchdog
        );
        let http = vars(&[
            ("fprocess", "cat"),
            ("mode", "http"),
            ("upstream_url", "http://127.0.0.1:5000"),
        ])
        .unwrap();
        assert!(http.die_with_watchdog);
    }

    #[test]
    fn of_watchdog_defaults() {
        let c = vars(&[("fprocess", "cat"), ("mode", "streaming")]).unwrap();
        assert_eq!(c.read_timeout, Duration::from_secs(10));
        assert_eq!(c.exec_timeout, Some(Duration::from_secs(10)));
        assert_eq!(c.content_type.as_deref(), Some("application/octet-stream"));
        assert_eq!(c.static_path, PathBuf::from("/home/app/public"));
        assert_eq!(c.log_buffer_size, 64 * 1024);
        assert!(c.prefix_logs);
    }

    #[test]
    fn durations_accept_units_and_plain_seconds() {
        let c = vars(&[
            ("fprocess", "cat"),
            ("read_timeout", "500ms"),
            ("write_timeout", "3"),
            ("exec_timeout", "1m"),
        ])
        .unwrap();
        assert_eq!(c.read_timeout, Duration::from_millis(500));
        assert_eq!(c.write_timeout, Duration::from_secs(3));
        assert_eq!(c.exec_timeout, Some(Duration::from_secs(60)));
        let c = vars(&[
            ("fprocess", "cat"),
            ("mode", "http"),
            ("upstream_url", "http://127.0.0.1:1"),
            ("exec_timeout", "0"),
        ])
        .unwrap();
        assert_eq!(c.exec_timeout, None);
    }

    #[test]
    fn command_lines_split_as_a_shell_would() {
        let cases: &[(&str, &[&str])] = &[
            ("wc -c", &["wc", "-c"]),
            ("  cat   ", &["cat"]),
            ("", &[]),
            (r#"sh -c 'cat | wc -c'"#, &["sh", "-c", "cat | wc -c"]),
            (
                r#"python3 -c "print('hi')""#,
                &["python3", "-c", "print('hi')"],
            ),
            (
                r#"echo "a \"b\" \$HOME \n""#,
                &["echo", r#"a "b" $HOME \n"#],
            ),
            (r"echo a\ b c\\d", &["echo", "a b", r"c\d"]),
            ("echo ''", &["echo", ""]),
            (r#"echo x'y'"z""#, &["echo", "xyz"]),
            ("a\tb\nc", &["a", "b", "c"]),
        ];
        for (line, words) in cases {
            assert_eq!(split_command_line(line).unwrap(), *words, "{line}");
        }
        for bad in ["echo 'x", r#"echo "x"#, "echo x\\", r#"echo "x\"#] {
            assert!(split_command_line(bad).is_err(), "{bad}");
        }
        let err = vars(&[("fprocess", "sh -c 'cat")]).unwrap_err().to_string();
        assert!(
            err.contains("fprocess") && err.contains("unterminated single quote"),
            "{err}"
        );
        let c = vars(&[("fprocess", r#"sh -c 'cat | wc -c'"#)]).unwrap();
        assert_eq!(c.process_argv(), ["sh", "-c", "cat | wc -c"]);
    }

    #[test]
    fn function_process_wins_over_fprocess() {
        let c = vars(&[("fprocess", "cat"), ("function_process", "wc -c")]).unwrap();
        assert_eq!(c.process_argv(), vec!["wc", "-c"]);
    }

    #[test]
    fn errors_name_the_variable_on_one_line() {
        for (pairs, var) in [
            (&[("mode", "streaming")][..], "fprocess"),
            (&[][..], "fprocess"),
            (&[("fprocess", "cat"), ("mode", "bogus")][..], "mode"),
            (&[("fprocess", "cat"), ("mode", "http")][..], "upstream_url"),
            (
                &[("fprocess", "cat"), ("read_timeout", "soon")][..],
                "read_timeout",
            ),
            (&[("fprocess", "cat"), ("port", "eighty")][..], "port"),
            (
                &[("fprocess", "cat"), ("write_timeout", "0")][..],
                "write_timeout",
            ),
        ] {
            let err = vars(pairs).unwrap_err();
            let Error::Config { variable, .. } = &err else {
                panic!("{err:?}")
            };
            assert_eq!(*variable, var);
            let msg = err.to_string();
            assert!(msg.contains(var), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
    }

    #[test]
    fn static_needs_no_process_and_suppress_lock_drops_lock() {
        let c = vars(&[
            ("mode", "static"),
            ("static_path", "/srv"),
            ("suppress_lock", "true"),
        ])
        .unwrap();
        assert_eq!(c.mode, Mode::Static);
        assert_eq!(c.static_path, PathBuf::from("/srv"));
        assert_eq!(c.lock_file, None);
    }

    #[test]
    fn buffer_http_aliases() {
        let c = vars(&[
            ("fprocess", "x"),
            ("mode", "http"),
            ("upstream_url", "http://127.0.0.1:5000"),
            ("http_buffer_req_body", "true"),
        ])
        .unwrap();
        assert!(c.buffer_http);
    }
}
