//! [`Config`]: how [`run`](crate::run) serves, read from the watchdog's environment variables.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use faas_core::model::parse_duration;
use faas_watchdog::server::ServeConfig;

use crate::error::Error;

/// How a function binary serves: address, timeouts and limits.
///
/// [`Config::from_env`] reads the variables OpenFaaS's watchdogs read, so a function built with the
/// SDK is configured exactly like one behind a watchdog:
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `PORT` (or `port`) | `8080` | the port to listen on; `0` picks a free one |
/// | `bind_address` | `0.0.0.0` | the address to listen on |
/// | `read_timeout` | `10s` | time for a request's head and body to arrive |
/// | `write_timeout` | `10s` | time to write a response; also the drain limit on shutdown |
/// | `exec_timeout` | `10s` | time a handler may run before the call answers 504 (`0` = none) |
/// | `max_inflight` | `0` | requests served at once, more get 429 (`0` = no limit) |
/// | `healthcheck_interval` | `0s` | on SIGTERM, how long to keep serving while unhealthy before draining |
/// | `max_body_bytes` | none | the largest request body (413 beyond) |
/// | `max_header_bytes` | `1048576` | the largest request head (431 beyond) |
/// | `ready_path` | none | a path of the function that `/_/ready` asks |
/// | `lock_file` | none | a file written once ready, removed on shutdown (OpenFaaS's `/tmp/.lock`) |
/// | `metrics_port` | none | a port serving Prometheus `/metrics` |
///
/// Durations are Go-style (`10s`, `1m30s`, `500ms`) or plain seconds (`10`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// The port of the metrics listener, if any.
    pub metrics_port: Option<u16>,
    /// How long a handler may run (`None` = no limit).
    pub exec_timeout: Option<Duration>,
    /// The serving settings shared with the watchdog.
    pub serve: ServeConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080),
            metrics_port: None,
            exec_timeout: Some(Duration::from_secs(10)),
            serve: ServeConfig::default(),
        }
    }
}

impl Config {
    /// Reads the configuration from the process environment (see the table above).
    ///
    /// # Errors
    ///
    /// An error naming the variable when a value cannot be parsed.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Reads the configuration from the given variables.
    ///
    /// # Errors
    ///
    /// As [`Config::from_env`].
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, Error> {
        let vars: HashMap<String, String> = vars.into_iter().collect();
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let duration = |name: &str, default: Duration| -> Result<Duration, Error> {
            match get(name) {
                None => Ok(default),
                Some(value) => parse_duration(value).map_err(|err| {
                    Error::msg(format!(
                        "invalid {name}={value:?}: {err} (use e.g. 10s, 500ms or plain seconds)"
                    ))
                }),
            }
        };
        fn number<T: std::str::FromStr>(
            name: &str,
            value: Option<&str>,
        ) -> Result<Option<T>, Error> {
            value
                .map(|v| {
                    v.parse().map_err(|_| {
                        Error::msg(format!(
                            "invalid {name}={v:?}: expected a non-negative integer"
                        ))
                    })
                })
                .transpose()
        }

        let defaults = ServeConfig::default();
        let port = number::<u16>("PORT", get("PORT").or_else(|| get("port")))?.unwrap_or(8080);
        let ip = match get("bind_address") {
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(v) => v.parse().map_err(|_| {
                Error::msg(format!(
                    "invalid bind_address={v:?}: expected an IP address"
                ))
            })?,
        };
        let write_timeout = duration("write_timeout", defaults.write_timeout)?;
        if write_timeout.is_zero() {
            return Err(Error::msg("invalid write_timeout: must be over 0s"));
        }
        let serve = ServeConfig::default()
            .with_read_timeout(duration("read_timeout", defaults.read_timeout)?)
            .with_write_timeout(write_timeout)
            .with_max_inflight(number("max_inflight", get("max_inflight"))?.unwrap_or(0))
            .with_max_header_bytes(
                number("max_header_bytes", get("max_header_bytes"))?
                    .unwrap_or(defaults.max_header_bytes),
            )
            .with_max_body_bytes(
                number::<u64>("max_body_bytes", get("max_body_bytes"))?.filter(|n| *n > 0),
            )
            .with_ready_path(get("ready_path").map(str::to_owned))
            .with_lock_file(get("lock_file").map(PathBuf::from))
            .with_shutdown_delay(duration("healthcheck_interval", Duration::ZERO)?);
        Ok(Config {
            addr: SocketAddr::new(ip, port),
            metrics_port: number("metrics_port", get("metrics_port"))?,
            exec_timeout: Some(duration("exec_timeout", Duration::from_secs(10))?)
                .filter(|d| !d.is_zero()),
            serve,
        })
    }

    /// Sets the address to listen on.
    #[must_use]
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Sets the port of the Prometheus metrics listener (`None` = no metrics listener).
    #[must_use]
    pub fn with_metrics_port(mut self, port: Option<u16>) -> Self {
        self.metrics_port = port;
        self
    }

    /// Sets the handler time limit (`None` = no limit).
    #[must_use]
    pub fn with_exec_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.exec_timeout = timeout;
        self
    }

    /// Sets the serving settings (timeouts, limits, shutdown delay).
    #[must_use]
    pub fn with_serve_config(mut self, serve: ServeConfig) -> Self {
        self.serve = serve;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_of_watchdog() {
        let config = Config::from_vars(vars(&[])).unwrap();
        assert_eq!(config.addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.exec_timeout, Some(Duration::from_secs(10)));
        assert_eq!(config.serve.read_timeout, Duration::from_secs(10));
        assert_eq!(config.serve.max_inflight, 0);
        assert_eq!(config.serve.lock_file, None);
        assert_eq!(config.metrics_port, None);
    }

    #[test]
    fn reads_the_watchdog_variables() {
        let config = Config::from_vars(vars(&[
            ("PORT", "0"),
            ("bind_address", "127.0.0.1"),
            ("read_timeout", "3s"),
            ("write_timeout", "4"),
            ("exec_timeout", "0"),
            ("max_inflight", "5"),
            ("healthcheck_interval", "1s"),
            ("max_body_bytes", "1024"),
        ]))
        .unwrap();
        assert_eq!(config.addr, "127.0.0.1:0".parse().unwrap());
        assert_eq!(config.serve.read_timeout, Duration::from_secs(3));
        assert_eq!(config.serve.write_timeout, Duration::from_secs(4));
        assert_eq!(config.exec_timeout, None);
        assert_eq!(config.serve.max_inflight, 5);
        assert_eq!(config.serve.shutdown_delay, Duration::from_secs(1));
        assert_eq!(config.serve.max_body_bytes, Some(1024));
        let lower = Config::from_vars(vars(&[("port", "9000")])).unwrap();
        assert_eq!(lower.addr.port(), 9000);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("PORT", "http"),
            ("read_timeout", "soon"),
            ("max_inflight", "-1"),
            ("bind_address", "localhost"),
            ("write_timeout", "0"),
        ] {
            let err = Config::from_vars(vars(&[(name, value)])).unwrap_err();
            assert!(err.message().contains(name), "{name}: {err}");
        }
    }
}
