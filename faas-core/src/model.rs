//! The data model, serde-compatible with OpenFaaS's provider API (`faas-provider/types`).
//!
//! Field names and omission rules follow OpenFaaS's Go structs so that `faas-cli`, the OpenFaaS UI and
//! any other client can talk to a faas-rs gateway unchanged.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The namespace functions live in when a request names none, as in OpenFaaS.
pub const DEFAULT_NAMESPACE: &str = "openfaas-fn";

/// The environment variable naming the function inside its replicas. OpenFaaS sets none; the
/// faas-rs providers set it unless the deployment's `envVars` do (faas-sdk's
/// `Context::function_name` reads it).
pub const ENV_FUNCTION_NAME: &str = "OPENFAAS_NAME";
/// The environment variable naming the function's namespace inside its replicas (set as
/// [`ENV_FUNCTION_NAME`]).
pub const ENV_NAMESPACE: &str = "OPENFAAS_NAMESPACE";

/// The label that marks a resource as an OpenFaaS function (Swarm services, Kubernetes deployments).
pub const LABEL_FUNCTION: &str = "com.openfaas.function";
/// Minimum replicas label (also the initial replica count of a deployment).
pub const LABEL_SCALE_MIN: &str = "com.openfaas.scale.min";
/// Maximum replicas label.
pub const LABEL_SCALE_MAX: &str = "com.openfaas.scale.max";
/// Scaling factor label (percent of max added per step, OpenFaaS's RPS policy).
pub const LABEL_SCALE_FACTOR: &str = "com.openfaas.scale.factor";
/// Whether the function may scale to zero when idle (`"true"`).
pub const LABEL_SCALE_ZERO: &str = "com.openfaas.scale.zero";
/// How long a function must be idle before it is scaled to zero (a duration, `"15m"`).
pub const LABEL_SCALE_ZERO_DURATION: &str = "com.openfaas.scale.zero-duration";
/// Target load per replica for the autoscaler.
pub const LABEL_SCALE_TARGET: &str = "com.openfaas.scale.target";
/// Autoscaling metric: `rps`, `capacity` (in-flight requests) or `cpu`.
pub const LABEL_SCALE_TYPE: &str = "com.openfaas.scale.type";

/// The most replicas a deployment or a scale request may ask for.
///
/// OpenFaaS CE clamps replicas to 1..5; faas-rs only refuses values that are surely a mistake.
pub const MAX_REPLICAS: u32 = 1000;

/// The environment variable that holds a function's timeout (the one timeout model: the gateway,
/// the watchdog and the queue worker all apply it).
pub const ENV_EXEC_TIMEOUT: &str = "exec_timeout";

/// CPU and memory of a function, as strings in the orchestrator's units (`"128Mi"`, `"0.5"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionResources {
    /// Memory, e.g. `"128Mi"` or `"20m"`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub memory: String,
    /// CPU, e.g. `"100m"` or `"0.5"`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cpu: String,
}

/// A request to deploy or update a function (`POST`/`PUT /system/functions`).
///
/// ```
/// use faas_core::model::FunctionDeployment;
/// let json = r#"{"service":"echo","image":"ghcr.io/openfaas/alpine:latest","envProcess":"cat"}"#;
/// let deployment: FunctionDeployment = serde_json::from_str(json).unwrap();
/// assert_eq!(deployment.service, "echo");
/// assert_eq!(deployment.env_process.as_deref(), Some("cat"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FunctionDeployment {
    /// The function's name (a DNS-1123 label).
    pub service: String,
    /// The image (on the local provider: kept, shown, and used as working directory when it names one).
    #[serde(default)]
    pub image: String,
    /// The namespace; empty means the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The process the watchdog runs (`fprocess`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_process: Option<String>,
    /// Environment variables of the function.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_vars: BTreeMap<String, String>,
    /// Placement constraints (`node.platform.arch==armv7l`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    /// Names of secrets mounted under `/var/openfaas/secrets/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Labels (scaling labels among them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations (`topic`, `schedule`, retry settings...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Resource limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<FunctionResources>,
    /// Resource requests (reservations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<FunctionResources>,
    /// Mount the root filesystem read-only (`/tmp` stays writable).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only_root_filesystem: bool,
}

impl FunctionDeployment {
    /// A deployment of `service` from `image` with everything else empty.
    pub fn new(service: impl Into<String>, image: impl Into<String>) -> Self {
        FunctionDeployment {
            service: service.into(),
            image: image.into(),
            ..Default::default()
        }
    }

    /// Sets the process the watchdog runs.
    #[must_use]
    pub fn with_env_process(mut self, process: impl Into<String>) -> Self {
        self.env_process = Some(process.into());
        self
    }

    /// Adds an environment variable.
    #[must_use]
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env_vars.insert(name.into(), value.into());
        self
    }

    /// Adds a label.
    #[must_use]
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
        self
    }

    /// Adds an annotation.
    #[must_use]
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
        self
    }

    /// Sets the namespace.
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Adds a secret.
    #[must_use]
    pub fn with_secret(mut self, name: impl Into<String>) -> Self {
        self.secrets.push(name.into());
        self
    }

    /// The namespace, or `default` when none is set.
    pub fn namespace_or<'a>(&'a self, default: &'a str) -> &'a str {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => default,
        }
    }

    /// The initial replica count: the `com.openfaas.scale.min` label, else 1.
    pub fn initial_replicas(&self) -> u32 {
        self.label(LABEL_SCALE_MIN)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1)
    }

    /// The value of a label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.as_ref()?.get(key).map(String::as_str)
    }

    /// The value of an annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// The function's own timeout: its `exec_timeout` env var when set and valid.
    pub fn timeout(&self) -> Option<Duration> {
        function_timeout(&self.env_vars)
    }
}

/// The function's timeout from its env vars (`exec_timeout`), `None` when unset, zero or invalid.
pub fn function_timeout(env_vars: &BTreeMap<String, String>) -> Option<Duration> {
    let value = env_vars.get(ENV_EXEC_TIMEOUT)?;
    parse_duration(value).ok().filter(|d| !d.is_zero())
}

/// Resource usage of a function, as OpenFaaS reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionUsage {
    /// CPU in use (cores, averaged).
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub cpu: f64,
    /// Memory in use in bytes, over all replicas.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub total_memory_bytes: f64,
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

/// A deployed function as the gateway lists it (`GET /system/functions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FunctionStatus {
    /// The function's name.
    pub name: String,
    /// Its image.
    #[serde(default)]
    pub image: String,
    /// Its namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The process the watchdog runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_process: Option<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_vars: BTreeMap<String, String>,
    /// Placement constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    /// Secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Resource limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<FunctionResources>,
    /// Resource requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<FunctionResources>,
    /// Read-only root filesystem.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only_root_filesystem: bool,
    /// Invocations counted by the gateway (providers report 0; the gateway fills it in).
    #[serde(default)]
    pub invocation_count: f64,
    /// Desired replicas.
    #[serde(default)]
    pub replicas: u64,
    /// Replicas that are ready to serve.
    #[serde(default)]
    pub available_replicas: u64,
    /// When the function was first deployed.
    #[serde(default = "epoch")]
    pub created_at: DateTime<Utc>,
    /// Resource usage, when the provider knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<FunctionUsage>,
}

fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

impl FunctionStatus {
    /// The status of a deployment with `replicas` desired, none available yet, created `created_at`.
    pub fn from_deployment(
        deployment: &FunctionDeployment,
        namespace: &str,
        replicas: u64,
        created_at: DateTime<Utc>,
    ) -> Self {
        FunctionStatus {
            name: deployment.service.clone(),
            image: deployment.image.clone(),
            namespace: namespace.to_owned(),
            env_process: deployment.env_process.clone(),
            env_vars: deployment.env_vars.clone(),
            constraints: deployment.constraints.clone(),
            secrets: deployment.secrets.clone(),
            labels: deployment.labels.clone(),
            annotations: deployment.annotations.clone(),
            limits: deployment.limits.clone(),
            requests: deployment.requests.clone(),
            read_only_root_filesystem: deployment.read_only_root_filesystem,
            invocation_count: 0.0,
            replicas,
            available_replicas: 0,
            created_at,
            usage: None,
        }
    }

    /// The value of a label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.as_ref()?.get(key).map(String::as_str)
    }

    /// The value of an annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// The function's own timeout: its `exec_timeout` env var when set and valid.
    pub fn timeout(&self) -> Option<Duration> {
        function_timeout(&self.env_vars)
    }
}

/// `POST /system/scale-function/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleServiceRequest {
    /// The function's name (may be empty: the path names it).
    #[serde(default)]
    pub service_name: String,
    /// Desired replicas (0 allowed).
    pub replicas: u64,
    /// Namespace; empty means the default.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// `DELETE /system/functions` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteFunctionRequest {
    /// The function to remove.
    pub function_name: String,
    /// Namespace (also accepted as `?namespace=`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// A secret (`/system/secrets`). On list, only `name` and `namespace` are returned.
///
/// `value` is text; `rawValue` is bytes, base64 in JSON, as in OpenFaaS.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// Name (a DNS-1123 subdomain-like name: lowercase letters, digits, `-`, `.`, `_`).
    pub name: String,
    /// Namespace; empty means the default.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Text value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Binary value (base64 in JSON); takes precedence over `value` when both are set.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "base64_bytes")]
    pub raw_value: Vec<u8>,
}

impl Secret {
    /// A text secret.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Secret {
            name: name.into(),
            value: value.into(),
            ..Default::default()
        }
    }

    /// The bytes of the secret: `rawValue` when set, else `value`.
    pub fn bytes(&self) -> &[u8] {
        if self.raw_value.is_empty() {
            self.value.as_bytes()
        } else {
            &self.raw_value
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// A secret as listed: its name and namespace, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    /// Name.
    pub name: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// Version of a component (`/system/info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Commit message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub commit_message: String,
    /// Commit SHA.
    #[serde(default)]
    pub sha: String,
    /// Release version.
    #[serde(default)]
    pub release: String,
}

/// What a provider says of itself (`provider` in `/system/info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// The provider's name (`"faas-provider-local"`, `"faas-swarm"`...).
    #[serde(rename = "provider")]
    pub name: String,
    /// Its version.
    #[serde(default)]
    pub version: VersionInfo,
    /// The orchestration: `"local"`, `"swarm"`, `"kubernetes"`.
    #[serde(default)]
    pub orchestration: String,
}

/// `GET /system/info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayInfo {
    /// The provider.
    pub provider: ProviderInfo,
    /// The gateway's version.
    pub version: VersionInfo,
    /// The CPU architecture the gateway runs on (`x86_64`, `aarch64`, `armv7l`).
    pub arch: String,
}

/// A request for function logs (`GET /system/logs?name=..&tail=..&since=..&follow=..`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogRequest {
    /// The function.
    pub name: String,
    /// Its namespace (empty: default).
    #[serde(default)]
    pub namespace: String,
    /// Only this replica, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Only lines at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Only the last `tail` lines (of the history before following); `None` or negative: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<i64>,
    /// Keep the stream open and send new lines as they come.
    #[serde(default)]
    pub follow: bool,
}

impl LogRequest {
    /// A request for all the logs of `name` in `namespace`, not following.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        LogRequest {
            name: name.into(),
            namespace: namespace.into(),
            ..Default::default()
        }
    }
}

/// One log line of a function (one NDJSON object of `/system/logs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogMessage {
    /// The function.
    pub name: String,
    /// Its namespace.
    #[serde(default)]
    pub namespace: String,
    /// The replica that wrote it.
    #[serde(default)]
    pub instance: String,
    /// When it was written.
    pub timestamp: DateTime<Utc>,
    /// The line, without its newline.
    pub text: String,
}

/// A ready replica's address, as the invoker balances over them.
///
/// A replica that runs inside this process (the local provider's watchdogs) also carries an
/// [`InProcess`] handle: the invoker then calls it directly instead of over loopback TCP. The
/// handle is not serialized; `authority` stays the replica's address for everything else.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Endpoint {
    /// A stable id of the replica (task id, pod name, local replica id).
    pub id: String,
    /// `host:port` the replica's watchdog listens on (`127.0.0.1:40123`, `10.0.1.5:8080`).
    pub authority: String,
    #[serde(skip)]
    in_process: Option<InProcess>,
}

impl Endpoint {
    /// An endpoint.
    pub fn new(id: impl Into<String>, authority: impl Into<String>) -> Self {
        Endpoint {
            id: id.into(),
            authority: authority.into(),
            in_process: None,
        }
    }

    /// The same endpoint, also reachable in this process through `handle`.
    #[must_use]
    pub fn with_in_process(mut self, handle: InProcess) -> Self {
        self.in_process = Some(handle);
        self
    }

    /// The in-process handle of the replica, when it runs in this process.
    pub fn in_process(&self) -> Option<&InProcess> {
        self.in_process.as_ref()
    }
}

/// The service type of an [`InProcess`] handle: a request with a streaming body in, the replica's
/// response out.
///
/// Its contract: an `Err` means the replica did not take the request (it is not serving, for
/// example while it stops) and did not poll its body, so the caller may send it to another
/// replica; every answer of the replica, errors included (429, 502, 504...), is an `Ok` response.
pub type InProcessService = tower::util::BoxCloneSyncService<
    http::Request<crate::invoke::Body>,
    http::Response<crate::invoke::Body>,
    crate::BoxError,
>;

/// A replica's request handler, callable in this process without a socket.
///
/// Two handles are equal when they are clones of the same one (each [`InProcess::new`] gets a
/// new identity), so an endpoint whose replica restarted is a new endpoint.
#[derive(Clone)]
pub struct InProcess {
    id: u64,
    service: InProcessService,
}

impl InProcess {
    /// A handle on `service` (see [`InProcessService`] for its contract).
    pub fn new(service: InProcessService) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        InProcess {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            service,
        }
    }

    /// A clone of the service, to call.
    pub fn service(&self) -> InProcessService {
        self.service.clone()
    }
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess").field("id", &self.id).finish()
    }
}

impl PartialEq for InProcess {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for InProcess {}

impl std::hash::Hash for InProcess {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl PartialOrd for InProcess {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InProcess {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}

/// Parses a duration as OpenFaaS's watchdogs accept it: Go-style `10s`, `500ms`, `1m30s`, `2h`, `1.5s`,
/// `250us`, or plain seconds (`"10"`, `"0.5"`).
///
/// # Errors
/// A message naming what is wrong when the value is not a duration.
///
/// ```
/// use std::time::Duration;
/// use faas_core::model::parse_duration;
/// assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return secs_to_duration(secs, input);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!(
                "invalid duration {input:?}: expected a number like 10s or 500ms"
            ));
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration {input:?}: bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "invalid duration {input:?}: missing unit (ns, us, ms, s, m, h)"
                ));
            }
            unit => return Err(format!("invalid duration {input:?}: unknown unit {unit:?}")),
        };
        total += number * factor;
        rest = &rest[unit_len..];
    }
    secs_to_duration(total, input)
}

fn secs_to_duration(secs: f64, input: &str) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!(
            "invalid duration {input:?}: must be a non-negative number"
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {input:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_round_trips_openfaas_json() {
        // As faas-cli sends it (faas-cli/proxy/deploy.go).
        let json = serde_json::json!({
            "service": "nodeinfo",
            "image": "functions/nodeinfo:latest",
            "namespace": "openfaas-fn",
            "envProcess": "node index.js",
            "envVars": {"write_debug": "true"},
            "constraints": ["node.platform.os == linux"],
            "secrets": ["api-key"],
            "labels": {"com.openfaas.scale.min": "2"},
            "annotations": {"topic": "cron-function"},
            "limits": {"memory": "128Mi", "cpu": "0.5"},
            "requests": {"memory": "64Mi"},
            "readOnlyRootFilesystem": true
        });
        let d: FunctionDeployment = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(d.initial_replicas(), 2);
        assert_eq!(d.limits.as_ref().unwrap().cpu, "0.5");
        assert_eq!(serde_json::to_value(&d).unwrap(), json);
    }

    #[test]
    fn minimal_deployment_omits_empty_fields() {
        let d = FunctionDeployment::new("echo", "alpine");
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"service": "echo", "image": "alpine"})
        );
        assert_eq!(d.initial_replicas(), 1);
    }

    #[test]
    fn status_round_trips_openfaas_json() {
        let json = serde_json::json!({
            "name": "nodeinfo",
            "image": "functions/nodeinfo:latest",
            "namespace": "openfaas-fn",
            "envProcess": "node index.js",
            "labels": {"faas_function": "nodeinfo"},
            "invocationCount": 1337.0,
            "replicas": 2,
            "availableReplicas": 1,
            "createdAt": "2023-01-02T15:04:05.123456789Z",
            "usage": {"cpu": 0.25, "totalMemoryBytes": 1048576.0}
        });
        let s: FunctionStatus = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(s.available_replicas, 1);
        assert_eq!(serde_json::to_value(&s).unwrap(), json);
    }

    #[test]
    fn secret_raw_value_is_base64() {
        let json = serde_json::json!({"name": "key", "rawValue": "AAEC"});
        let s: Secret = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(s.bytes(), &[0, 1, 2]);
        assert_eq!(serde_json::to_value(&s).unwrap(), json);
        assert!(!format!("{s:?}").contains("AAEC"));
        let text = Secret::new("token", "s3cret");
        assert_eq!(text.bytes(), b"s3cret");
    }

    #[test]
    fn provider_info_uses_openfaas_names() {
        let json = serde_json::json!({
            "provider": "faas-netes",
            "version": {"sha": "abc", "release": "0.1.0"},
            "orchestration": "kubernetes"
        });
        let info: ProviderInfo = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(info.name, "faas-netes");
        assert_eq!(serde_json::to_value(&info).unwrap(), json);
    }

    #[test]
    fn scale_and_delete_requests() {
        let s: ScaleServiceRequest =
            serde_json::from_str(r#"{"serviceName":"echo","replicas":0}"#).unwrap();
        assert_eq!(s.replicas, 0);
        let d: DeleteFunctionRequest = serde_json::from_str(r#"{"functionName":"echo"}"#).unwrap();
        assert_eq!(d.function_name, "echo");
    }

    #[test]
    fn log_message_round_trips() {
        let json = serde_json::json!({
            "name": "echo", "namespace": "openfaas-fn", "instance": "echo-1",
            "timestamp": "2024-05-01T10:00:00Z", "text": "hello"
        });
        let m: LogMessage = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&m).unwrap(), json);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
        let env = BTreeMap::from([(ENV_EXEC_TIMEOUT.to_owned(), "30s".to_owned())]);
        assert_eq!(function_timeout(&env), Some(Duration::from_secs(30)));
    }
}
