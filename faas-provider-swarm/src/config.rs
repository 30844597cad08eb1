//! How to reach Docker and how functions are laid out on the swarm.

use std::time::Duration;

use faas_core::model::DEFAULT_NAMESPACE;

use crate::error::ConfigError;

/// The overlay network functions join unless configured otherwise (as OpenFaaS's `func_functions`).
pub const DEFAULT_NETWORK: &str = "func_functions";

/// The port the watchdog (or an SDK function) listens on inside the container.
pub const DEFAULT_FUNCTION_PORT: u16 = 8080;

/// How Swarm exposes a service on the function network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointMode {
    /// DNS round robin: the service name resolves to the task addresses. Works without IPVS, the
    /// default here.
    #[default]
    Dnsrr,
    /// A virtual IP balanced by IPVS (Swarm's default; needs the `ip_vs` kernel module).
    Vip,
}

impl EndpointMode {
    /// Docker's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointMode::Dnsrr => "dnsrr",
            EndpointMode::Vip => "vip",
        }
    }
}

impl std::str::FromStr for EndpointMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dnsrr" => Ok(EndpointMode::Dnsrr),
            "vip" => Ok(EndpointMode::Vip),
            other => Err(ConfigError::new("endpoint mode", other, "dnsrr or vip")),
        }
    }
}

/// How the gateway reaches a function's replicas: what [`Provider::endpoints`] returns.
///
/// [`Provider::endpoints`]: faas_core::Provider::endpoints
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Resolution {
    /// Every running task's address on the function network (`10.0.1.5:8080`). For a gateway that
    /// runs inside that network (deployed as a Swarm service, as in production): it balances over
    /// the replicas itself, so neither IPVS nor Docker's DNS is on the invocation path.
    TaskAddresses,
    /// Every running task publishes the function port in `mode=host` on a port Docker picks, and the
    /// endpoint is `<node address>:<published port>`. For a gateway on a host outside the overlay
    /// network (`faas up --provider swarm` on a manager, or any machine that can reach the nodes).
    ///
    /// `host` replaces the node address when set (`127.0.0.1` on a single-node swarm).
    #[default]
    PublishedPorts,
    /// Like [`Resolution::PublishedPorts`] with a fixed address instead of each node's.
    PublishedPortsAt(String),
    /// One endpoint, `<service name>:<port>`, resolved by Docker's DNS inside the network: the VIP in
    /// [`EndpointMode::Vip`] on a Swarm with IPVS, round robin DNS in [`EndpointMode::Dnsrr`].
    ServiceName,
}

impl Resolution {
    /// Whether tasks publish the function port on their node.
    pub fn publishes_ports(&self) -> bool {
        matches!(
            self,
            Resolution::PublishedPorts | Resolution::PublishedPortsAt(_)
        )
    }
}

impl std::str::FromStr for Resolution {
    type Err = ConfigError;

    /// `tasks`, `published`, `published:HOST` or `service`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tasks" => Ok(Resolution::TaskAddresses),
            "published" => Ok(Resolution::PublishedPorts),
            "service" => Ok(Resolution::ServiceName),
            other => match other.strip_prefix("published:") {
                Some(host) if !host.is_empty() => Ok(Resolution::PublishedPortsAt(host.to_owned())),
                _ => Err(ConfigError::new(
                    "resolution",
                    other,
                    "tasks, published, published:HOST or service",
                )),
            },
        }
    }
}

/// The configuration of a [`SwarmProvider`](crate::SwarmProvider).
///
/// ```
/// use std::time::Duration;
/// use faas_provider_swarm::{EndpointMode, Resolution, SwarmConfig};
///
/// let config = SwarmConfig::default()
///     .network("func_functions")
///     .endpoint_mode(EndpointMode::Dnsrr)
///     .resolution(Resolution::PublishedPortsAt("127.0.0.1".into()))
///     .health_interval(Duration::from_secs(1));
/// assert_eq!(config.network_name(), "func_functions");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SwarmConfig {
    /// The engine: `unix:///var/run/docker.sock`, `tcp://host:2375`; `None`: `DOCKER_HOST` or the
    /// local socket.
    pub docker_host: Option<String>,
    /// The attachable overlay network functions join (created when missing).
    pub network: String,
    /// The one namespace this provider serves (Swarm has no namespaces).
    pub namespace: String,
    /// How services are exposed on the network.
    pub endpoint_mode: EndpointMode,
    /// How the gateway reaches replicas.
    pub resolution: Resolution,
    /// The port functions listen on in their container.
    pub function_port: u16,
    /// How often Docker runs the image's HEALTHCHECK (a task is available once healthy).
    pub health_interval: Duration,
    /// How long a stopping replica may drain before it is killed.
    pub stop_grace_period: Duration,
    /// The delay before Swarm restarts a failed replica.
    pub restart_delay: Duration,
    /// Timeout of one request to the engine.
    pub request_timeout: Duration,
    /// Probe replicas that started but whose HEALTHCHECK has not run yet (`GET /_/health`, this
    /// long at most) and return them as endpoints as soon as they answer; `None`: wait for Docker's
    /// healthcheck. Saves up to one healthcheck interval on every cold start.
    pub probe_starting: Option<Duration>,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            docker_host: None,
            network: DEFAULT_NETWORK.to_owned(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            endpoint_mode: EndpointMode::Dnsrr,
            resolution: Resolution::PublishedPorts,
            function_port: DEFAULT_FUNCTION_PORT,
            health_interval: Duration::from_secs(1),
            stop_grace_period: Duration::from_secs(10),
            restart_delay: Duration::from_secs(1),
            request_timeout: Duration::from_secs(60),
            probe_starting: Some(Duration::from_millis(500)),
        }
    }
}

impl SwarmConfig {
    /// The configuration from the environment, defaults for what is unset:
    /// `DOCKER_HOST`, `FAAS_SWARM_NETWORK`, `FAAS_SWARM_NAMESPACE`, `FAAS_SWARM_ENDPOINT_MODE`
    /// (`dnsrr`/`vip`), `FAAS_SWARM_RESOLUTION` (`tasks`, `published`, `published:HOST`, `service`),
    /// `FAAS_SWARM_FUNCTION_PORT`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable whose value is not valid.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`SwarmConfig::from_env`] over `var` instead of the process environment.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let mut config = SwarmConfig {
            docker_host: var("DOCKER_HOST"),
            ..SwarmConfig::default()
        };
        if let Some(network) = var("FAAS_SWARM_NETWORK") {
            config.network = network;
        }
        if let Some(namespace) = var("FAAS_SWARM_NAMESPACE") {
            config.namespace = namespace;
        }
        if let Some(mode) = var("FAAS_SWARM_ENDPOINT_MODE") {
            config.endpoint_mode = mode
                .parse()
                .map_err(|e: ConfigError| e.in_variable("FAAS_SWARM_ENDPOINT_MODE"))?;
        }
        if let Some(resolution) = var("FAAS_SWARM_RESOLUTION") {
            config.resolution = resolution
                .parse()
                .map_err(|e: ConfigError| e.in_variable("FAAS_SWARM_RESOLUTION"))?;
        }
        if let Some(port) = var("FAAS_SWARM_FUNCTION_PORT") {
            config.function_port =
                port.trim()
                    .parse()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| {
                        ConfigError::new("port", &port, "a number from 1 to 65535")
                            .in_variable("FAAS_SWARM_FUNCTION_PORT")
                    })?;
        }
        Ok(config)
    }

    /// Sets the Docker host (`unix:///var/run/docker.sock`, `tcp://10.0.0.1:2375`).
    #[must_use]
    pub fn docker_host(mut self, host: impl Into<String>) -> Self {
        self.docker_host = Some(host.into());
        self
    }

    /// Sets the function network.
    #[must_use]
    pub fn network(mut self, network: impl Into<String>) -> Self {
        self.network = network.into();
        self
    }

    /// The function network's name.
    pub fn network_name(&self) -> &str {
        &self.network
    }

    /// Sets the namespace this provider serves.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets the endpoint mode of new services.
    #[must_use]
    pub fn endpoint_mode(mut self, mode: EndpointMode) -> Self {
        self.endpoint_mode = mode;
        self
    }

    /// Sets how replicas are resolved.
    #[must_use]
    pub fn resolution(mut self, resolution: Resolution) -> Self {
        self.resolution = resolution;
        self
    }

    /// Sets the port functions listen on.
    #[must_use]
    pub fn function_port(mut self, port: u16) -> Self {
        self.function_port = port;
        self
    }

    /// Sets the healthcheck interval.
    #[must_use]
    pub fn health_interval(mut self, interval: Duration) -> Self {
        self.health_interval = interval;
        self
    }

    /// Sets the drain time of stopping replicas.
    #[must_use]
    pub fn stop_grace_period(mut self, period: Duration) -> Self {
        self.stop_grace_period = period;
        self
    }

    /// Sets the delay before a failed replica restarts.
    #[must_use]
    pub fn restart_delay(mut self, delay: Duration) -> Self {
        self.restart_delay = delay;
        self
    }

    /// Sets the timeout of the early readiness probe of starting replicas (`None`: off).
    #[must_use]
    pub fn probe_starting(mut self, timeout: Option<Duration>) -> Self {
        self.probe_starting = timeout;
        self
    }

    /// Sets the timeout of one engine request.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes_and_resolutions() {
        assert_eq!("vip".parse::<EndpointMode>(), Ok(EndpointMode::Vip));
        assert_eq!(
            "ipvs".parse::<EndpointMode>().unwrap_err(),
            ConfigError::new("endpoint mode", "ipvs", "dnsrr or vip")
        );
        assert_eq!("tasks".parse::<Resolution>(), Ok(Resolution::TaskAddresses));
        assert_eq!(
            "published:127.0.0.1".parse::<Resolution>(),
            Ok(Resolution::PublishedPortsAt("127.0.0.1".into()))
        );
        assert!("published:".parse::<Resolution>().is_err());
        assert!(Resolution::PublishedPorts.publishes_ports());
        assert!(!Resolution::ServiceName.publishes_ports());
    }

    #[test]
    fn environment_overrides_defaults_and_bad_values_name_their_variable() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let config = SwarmConfig::from_vars(env(&[
            ("DOCKER_HOST", "tcp://10.0.0.1:2375"),
            ("FAAS_SWARM_NETWORK", "fn_net"),
            ("FAAS_SWARM_NAMESPACE", "  "),
            ("FAAS_SWARM_ENDPOINT_MODE", "vip"),
            ("FAAS_SWARM_RESOLUTION", "published:127.0.0.1"),
            ("FAAS_SWARM_FUNCTION_PORT", "9000"),
        ]))
        .unwrap();
        assert_eq!(config.docker_host.as_deref(), Some("tcp://10.0.0.1:2375"));
        assert_eq!(config.network, "fn_net");
        assert_eq!(config.namespace, DEFAULT_NAMESPACE);
        assert_eq!(config.endpoint_mode, EndpointMode::Vip);
        assert_eq!(
            config.resolution,
            Resolution::PublishedPortsAt("127.0.0.1".into())
        );
        assert_eq!(config.function_port, 9000);

        for (vars, variable) in [
            (
                &[("FAAS_SWARM_ENDPOINT_MODE", "ipvs")][..],
                "FAAS_SWARM_ENDPOINT_MODE",
            ),
            (
                &[("FAAS_SWARM_RESOLUTION", "nodes")],
                "FAAS_SWARM_RESOLUTION",
            ),
            (
                &[("FAAS_SWARM_FUNCTION_PORT", "70000")],
                "FAAS_SWARM_FUNCTION_PORT",
            ),
            (
                &[("FAAS_SWARM_FUNCTION_PORT", "0")],
                "FAAS_SWARM_FUNCTION_PORT",
            ),
        ] {
            let vars: &'static [(&'static str, &'static str)] = vars;
            let err = SwarmConfig::from_vars(env(vars)).unwrap_err();
            assert_eq!(err.variable, Some(variable), "{err}");
            assert!(err.to_string().starts_with(variable), "{err}");
        }
    }
}
