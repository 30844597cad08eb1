//! [`LocalProvider`]: the [`Provider`] implementation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use faas_core::model::{
    DEFAULT_NAMESPACE, ENV_FUNCTION_NAME, ENV_NAMESPACE, Endpoint, FunctionDeployment,
    FunctionStatus, LogMessage, LogRequest, ProviderInfo, Secret, SecretInfo, VersionInfo,
};
use faas_core::validate::{self, Namespace};
use faas_core::{Error as CoreError, Provider};
use futures::stream::BoxStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::function::{Function, Runtime};
use crate::logs::LogBook;
use crate::replica::{RunSpec, Settings};
use crate::store::{Store, StoredFunction};

/// The environment variable that tells a function where its secrets are, as OpenFaaS's SDKs read it.
pub const SECRET_MOUNT_PATH: &str = "secret_mount_path";

/// The settings of a [`LocalProvider`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LocalConfig {
    /// Where functions and secrets are kept.
    pub data_dir: PathBuf,
    /// Log lines kept per function (1000).
    pub log_lines: usize,
    /// Log bytes kept per function (512 KiB).
    pub log_bytes: usize,
    /// The first pause before restarting a replica that stopped (100 ms); doubles each time.
    pub backoff_initial: Duration,
    /// The longest pause before a restart (30 s).
    pub backoff_max: Duration,
    /// How long a draining replica stays out of the endpoints but serving, for callers that
    /// resolved it just before (2 s: longer than the gateway caches endpoints).
    pub drain_grace: Duration,
    /// How long draining replicas may take to finish their in-flight requests before they are
    /// stopped (60 s; the watchdog itself stops waiting after its `write_timeout`).
    pub drain_timeout: Duration,
    /// How long a rolling update waits for the new replicas before retiring the old ones anyway
    /// (120 s).
    pub rollout_timeout: Duration,
    /// Whether endpoints carry an in-process handle on their watchdog (true), so that a gateway in
    /// this process calls replicas directly instead of over loopback TCP. Their loopback listeners
    /// serve either way.
    pub in_process: bool,
}

impl Default for LocalConfig {
    /// The default data directory ([`LocalConfig::default_data_dir`], or `./faas-data` when there
    /// is no home directory) and default limits.
    fn default() -> Self {
        LocalConfig::new(
            LocalConfig::default_data_dir().unwrap_or_else(|_| PathBuf::from("faas-data")),
        )
    }
}

impl LocalConfig {
    /// Settings with data under `data_dir` and default limits.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        LocalConfig {
            data_dir: data_dir.into(),
            log_lines: 1000,
            log_bytes: 512 * 1024,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            drain_grace: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(60),
            rollout_timeout: Duration::from_secs(120),
            in_process: true,
        }
    }

    /// `$XDG_DATA_HOME/faas`, else `~/.local/share/faas`.
    ///
    /// # Errors
    /// [`Error::NoDataDir`] when neither `XDG_DATA_HOME` nor `HOME` is set.
    pub fn default_data_dir() -> Result<PathBuf> {
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(xdg).join("faas"));
        }
        match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => Ok(PathBuf::from(home).join(".local/share/faas")),
            None => Err(Error::NoDataDir),
        }
    }

    /// Sets the data directory.
    #[must_use]
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = dir.into();
        self
    }

    /// Sets how many log lines and bytes are kept per function.
    #[must_use]
    pub fn log_limits(mut self, lines: usize, bytes: usize) -> Self {
        self.log_lines = lines;
        self.log_bytes = bytes;
        self
    }

    /// Sets the restart backoff: the first pause and the longest one.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max.max(initial);
        self
    }

    /// Sets the drain grace period and timeout.
    #[must_use]
    pub fn drain(mut self, grace: Duration, timeout: Duration) -> Self {
        self.drain_grace = grace;
        self.drain_timeout = timeout;
        self
    }

    /// Sets the rollout timeout of updates.
    #[must_use]
    pub fn rollout_timeout(mut self, timeout: Duration) -> Self {
        self.rollout_timeout = timeout;
        self
    }

    /// Sets whether endpoints carry an in-process handle (see [`LocalConfig::in_process`]).
    #[must_use]
    pub fn in_process(mut self, enabled: bool) -> Self {
        self.in_process = enabled;
        self
    }
}

type Key = (String, String);

struct Inner {
    config: LocalConfig,
    store: Arc<Store>,
    functions: RwLock<BTreeMap<Key, Arc<Function>>>,
    /// Serializes changes (deploy, update, scale, delete, secrets) and the store writes they make.
    control: tokio::sync::Mutex<()>,
    runtime: Runtime,
    shutting_down: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropped without `shutdown`: stop every replica anyway (their watchdogs still drain).
        self.runtime.root.cancel();
    }
}

/// The local provider: functions as in-process watchdogs wrapping local processes.
///
/// Cheap to clone (clones share the same functions). Replicas stop when the last clone is dropped;
/// [`LocalProvider::shutdown`] stops them gracefully and waits for them.
#[derive(Clone)]
pub struct LocalProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProvider")
            .field("data_dir", &self.inner.config.data_dir)
            .field(
                "functions",
                &self
                    .inner
                    .functions
                    .read()
                    .map(|f| f.len())
                    .unwrap_or_default(),
            )
            .finish_non_exhaustive()
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await?
}

impl LocalProvider {
    /// Opens the data directory (creating it when missing) and starts every stored function with
    /// its replica count. Must be called within a Tokio runtime.
    ///
    /// # Errors
    /// The data directory cannot be created or read, or a stored record is corrupt.
    pub async fn open(config: LocalConfig) -> Result<LocalProvider> {
        let dir = config.data_dir.clone();
        let store = Arc::new(blocking(move || Store::open(&dir)).await?);
        let settings = Arc::new(Settings {
            backoff_initial: config.backoff_initial,
            backoff_max: config.backoff_max,
            probe_timeout: Duration::from_secs(2),
            drain_grace: config.drain_grace,
            drain_timeout: config.drain_timeout,
            in_process: config.in_process,
        });
        let runtime = Runtime {
            settings,
            root: CancellationToken::new(),
            tracker: TaskTracker::new(),
            rollout_timeout: config.rollout_timeout,
        };
        let provider = LocalProvider {
            inner: Arc::new(Inner {
                config,
                store: store.clone(),
                functions: RwLock::new(BTreeMap::new()),
                control: tokio::sync::Mutex::new(()),
                runtime,
                shutting_down: AtomicBool::new(false),
            }),
        };
        let stored = {
            let store = store.clone();
            blocking(move || store.load_functions()).await?
        };
        for record in stored {
            let namespace = record.deployment.namespace.clone().unwrap_or_default();
            let name = record.deployment.service.clone();
            let (spec, view_store) = (record.deployment.clone(), store.clone());
            let ns = namespace.clone();
            blocking(move || {
                view_store
                    .link_secrets(&ns, &spec.service, &spec.secrets)
                    .map(|_| ())
            })
            .await?;
            let spec = provider.run_spec(&namespace, &record.deployment);
            let function = provider.new_function(record.deployment, spec, record.created_at);
            function.scale(&provider.inner.runtime, record.replicas);
            tracing::info!(function = %name, %namespace, replicas = record.replicas, "restored function");
            provider.functions_mut().insert((namespace, name), function);
        }
        Ok(provider)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    /// Stops every replica gracefully (each finishes its in-flight requests, bounded by the drain
    /// timeout) and waits for them and their processes. Deployed functions stay in the store, so the
    /// next [`LocalProvider::open`] brings them back. Changes are refused from now on.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let _control = self.inner.control.lock().await;
        let functions: Vec<Arc<Function>> = self.functions().values().cloned().collect();
        let rt = &self.inner.runtime;
        futures::future::join_all(functions.iter().map(|f| f.stop(rt, false, true))).await;
        rt.root.cancel();
        rt.tracker.close();
        let bound = self.inner.config.drain_timeout + Duration::from_secs(5);
        if tokio::time::timeout(bound, rt.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("local provider: some tasks did not stop in time");
        }
    }

    fn functions(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Key, Arc<Function>>> {
        self.inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn functions_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Key, Arc<Function>>> {
        self.inner
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn namespace<'a>(&'a self, namespace: &'a str) -> &'a str {
        if namespace.is_empty() {
            self.default_namespace()
        } else {
            namespace
        }
    }

    fn find(&self, name: &str, namespace: &str) -> faas_core::Result<Arc<Function>> {
        let namespace = self.namespace(namespace);
        self.functions()
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| {
                CoreError::not_found(format!(
                    "function {name} not found in namespace {namespace}"
                ))
            })
    }

    fn check_running(&self) -> faas_core::Result<()> {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(Error::ShuttingDown.into());
        }
        Ok(())
    }

    fn new_function(
        &self,
        deployment: FunctionDeployment,
        spec: Arc<RunSpec>,
        created_at: chrono::DateTime<Utc>,
    ) -> Arc<Function> {
        let namespace = deployment.namespace.clone().unwrap_or_default();
        let logs = Arc::new(LogBook::new(
            &deployment.service,
            &namespace,
            self.inner.config.log_lines,
            self.inner.config.log_bytes,
        ));
        Function::new(deployment, spec, created_at, logs)
    }

    /// What the replicas of `deployment` run: its env vars, `fprocess` from `envProcess` (which
    /// wins over any `fprocess`/`function_process` variable), `secret_mount_path`, the image as
    /// working directory when it names a directory, and in `http` mode without `upstream_url` a
    /// port of its own per replica (`PORT`, `http_port`).
    fn run_spec(&self, namespace: &str, deployment: &FunctionDeployment) -> Arc<RunSpec> {
        let view = self
            .inner
            .store
            .secrets_view(namespace, &deployment.service);
        Arc::new(run_spec(namespace, deployment, &view))
    }

    /// Validates a deployment for this provider and returns its namespace; nothing is created.
    fn check_deployment(&self, deployment: &mut FunctionDeployment) -> faas_core::Result<String> {
        validate::validate_deployment(deployment)?;
        if !is_static(deployment)
            && deployment
                .env_process
                .as_deref()
                .is_none_or(|p| p.trim().is_empty())
        {
            return Err(CoreError::invalid(
                "envProcess",
                "envProcess is required on the local provider (except in envVars.mode=static): it is \
                 the command the function runs",
            ));
        }
        let namespace = self
            .namespace(deployment.namespace.as_deref().unwrap_or_default())
            .to_owned();
        deployment.namespace = Some(namespace.clone());
        for (i, secret) in deployment.secrets.iter().enumerate() {
            if !self.inner.store.secret_exists(&namespace, secret) {
                return Err(CoreError::invalid(
                    format!("secrets[{i}]"),
                    format!("secret {secret} not found in namespace {namespace}: create it first"),
                ));
            }
        }
        // The watchdog must accept the configuration (mode, upstream_url, timeouts...).
        if let Err(err) = self.run_spec(&namespace, deployment).validate() {
            let field = match &err {
                faas_watchdog::Error::Config {
                    variable: "fprocess",
                    ..
                } => "envProcess".to_owned(),
                faas_watchdog::Error::Config { variable, .. } => format!("envVars.{variable}"),
                _ => "envVars".to_owned(),
            };
            return Err(CoreError::invalid(field, err.to_string()));
        }
        Ok(namespace)
    }

    async fn save(&self, record: StoredFunction) -> faas_core::Result<()> {
        let store = self.inner.store.clone();
        blocking(move || {
            let ns = record.deployment.namespace.clone().unwrap_or_default();
            store.link_secrets(&ns, &record.deployment.service, &record.deployment.secrets)?;
            store.save_function(&record)
        })
        .await
        .map_err(Into::into)
    }

    fn secret_namespace(&self, secret: &Secret) -> String {
        self.namespace(&secret.namespace).to_owned()
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "faas-provider-local".to_owned(),
            version: VersionInfo {
                commit_message: String::new(),
                sha: String::new(),
                release: env!("CARGO_PKG_VERSION").to_owned(),
            },
            orchestration: "local".to_owned(),
        }
    }

    async fn deploy(&self, mut deployment: FunctionDeployment) -> faas_core::Result<()> {
        let namespace = self.check_deployment(&mut deployment)?;
        let _control = self.inner.control.lock().await;
        self.check_running()?;
        let name = deployment.service.clone();
        let key = (namespace.clone(), name.clone());
        if self.functions().contains_key(&key) {
            return Err(CoreError::already_exists(format!(
                "function {name} already exists in namespace {namespace}"
            )));
        }
        let replicas = deployment.initial_replicas();
        let created_at = Utc::now();
        self.save(StoredFunction {
            deployment: deployment.clone(),
            replicas,
            created_at,
        })
        .await?;
        let spec = self.run_spec(&namespace, &deployment);
        let function = self.new_function(deployment, spec, created_at);
        function.scale(&self.inner.runtime, replicas);
        self.functions_mut().insert(key, function);
        tracing::info!(function = %name, %namespace, replicas, "deployed");
        Ok(())
    }

    async fn update(&self, mut deployment: FunctionDeployment) -> faas_core::Result<()> {
        let namespace = self.check_deployment(&mut deployment)?;
        let _control = self.inner.control.lock().await;
        self.check_running()?;
        let function = self.find(&deployment.service, &namespace)?;
        let record = StoredFunction {
            deployment: deployment.clone(),
            replicas: function.desired(),
            created_at: function.created_at(),
        };
        self.save(record).await?;
        let spec = self.run_spec(&namespace, &deployment);
        tracing::info!(function = %deployment.service, %namespace, "rolling update");
        function.update(&self.inner.runtime, deployment, spec);
        Ok(())
    }

    async fn delete(&self, name: &str, namespace: &str) -> faas_core::Result<()> {
        let namespace = self.namespace(namespace).to_owned();
        let _control = self.inner.control.lock().await;
        self.check_running()?;
        let function = self.find(name, &namespace)?;
        let store = self.inner.store.clone();
        let (ns, n) = (namespace.clone(), name.to_owned());
        blocking(move || store.delete_function(&ns, &n)).await?;
        self.functions_mut()
            .remove(&(namespace.clone(), name.to_owned()));
        let rt = self.inner.runtime.clone();
        self.inner
            .runtime
            .tracker
            .spawn(async move { function.stop(&rt, true, true).await });
        tracing::info!(function = %name, %namespace, "deleted");
        Ok(())
    }

    async fn list(&self, namespace: &str) -> faas_core::Result<Vec<FunctionStatus>> {
        let namespace = self.namespace(namespace);
        Ok(self
            .functions()
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, f)| f.status())
            .collect())
    }

    async fn get(&self, name: &str, namespace: &str) -> faas_core::Result<FunctionStatus> {
        Ok(self.find(name, namespace)?.status())
    }

    async fn scale(&self, name: &str, namespace: &str, replicas: u32) -> faas_core::Result<()> {
        validate::check_replicas("replicas", u64::from(replicas))?;
        let _control = self.inner.control.lock().await;
        self.check_running()?;
        let function = self.find(name, namespace)?;
        if function.desired() != replicas {
            let record = StoredFunction {
                deployment: function.deployment(),
                replicas,
                created_at: function.created_at(),
            };
            let store = self.inner.store.clone();
            blocking(move || store.save_function(&record)).await?;
            function.scale(&self.inner.runtime, replicas);
        }
        Ok(())
    }

    async fn endpoints(&self, name: &str, namespace: &str) -> faas_core::Result<Vec<Endpoint>> {
        Ok(self.find(name, namespace)?.endpoints())
    }

    async fn logs(
        &self,
        request: LogRequest,
    ) -> faas_core::Result<BoxStream<'static, faas_core::Result<LogMessage>>> {
        let function = self.find(&request.name, &request.namespace)?;
        Ok(function.logs.read(&request))
    }

    async fn secrets(&self, namespace: &str) -> faas_core::Result<Vec<SecretInfo>> {
        let namespace = Namespace::new(self.namespace(namespace))?
            .as_str()
            .to_owned();
        let store = self.inner.store.clone();
        let ns = namespace.clone();
        let names = blocking(move || store.list_secrets(&ns)).await?;
        Ok(names
            .into_iter()
            .map(|name| SecretInfo {
                name,
                namespace: namespace.clone(),
            })
            .collect())
    }

    async fn create_secret(&self, secret: Secret) -> faas_core::Result<()> {
        let namespace = self.secret_namespace(&secret);
        validate::validate_secret(&secret)?;
        Namespace::new(namespace.as_str())?;
        let _control = self.inner.control.lock().await;
        self.check_running()?;
        if self.inner.store.secret_exists(&namespace, &secret.name) {
            return Err(CoreError::already_exists(format!(
                "secret {} already exists in namespace {namespace}",
                secret.name
            )));
        }
        let store = self.inner.store.clone();
        blocking(move || store.write_secret(&namespace, &secret.name, secret.bytes())).await?;
        Ok(())
    }

    async fn update_secret(&self, secret: Secret) -> faas_core::Result<()> {
        let namespace = self.secret_namespace(&secret);
        validate::validate_secret(&secret)?;
        Namespace::new(namespace.as_str())?;
        let _control = self.inner.control.lock().await;
        self.check_running()?;
        if !self.inner.store.secret_exists(&namespace, &secret.name) {
            return Err(CoreError::not_found(format!(
                "secret {} not found in namespace {namespace}",
                secret.name
            )));
        }
        let store = self.inner.store.clone();
        blocking(move || store.write_secret(&namespace, &secret.name, secret.bytes())).await?;
        Ok(())
    }

    async fn delete_secret(&self, name: &str, namespace: &str) -> faas_core::Result<()> {
        let namespace = Namespace::new(self.namespace(namespace))?
            .as_str()
            .to_owned();
        validate::check_secret_name("name", name)?;
        let _control = self.inner.control.lock().await;
        self.check_running()?;
        let store = self.inner.store.clone();
        let (ns, n) = (namespace.clone(), name.to_owned());
        if blocking(move || store.delete_secret(&ns, &n)).await? {
            Ok(())
        } else {
            Err(CoreError::not_found(format!(
                "secret {name} not found in namespace {namespace}"
            )))
        }
    }

    async fn namespaces(&self) -> faas_core::Result<Vec<String>> {
        let mut namespaces: BTreeSet<String> =
            BTreeSet::from([self.default_namespace().to_owned()]);
        namespaces.extend(self.functions().keys().map(|(ns, _)| ns.clone()));
        let store = self.inner.store.clone();
        namespaces.extend(blocking(move || store.secret_namespaces()).await?);
        Ok(namespaces.into_iter().collect())
    }

    fn default_namespace(&self) -> &str {
        DEFAULT_NAMESPACE
    }
}

/// The watchdog mode `deployment` asks for, read as the watchdog reads it (`None` when unknown: the
/// watchdog's configuration refuses it, naming `envVars.mode`).
fn mode(deployment: &FunctionDeployment) -> Option<faas_watchdog::Mode> {
    faas_watchdog::Mode::parse(deployment.env_vars.get("mode").map_or("", String::as_str)).ok()
}

/// Whether `deployment` runs the watchdog's `static` mode (files only, no process).
fn is_static(deployment: &FunctionDeployment) -> bool {
    mode(deployment) == Some(faas_watchdog::Mode::Static)
}

/// What the replicas of `deployment` in `namespace` run, its secrets being under `secrets_view`
/// (see [`LocalProvider::run_spec`]). The function learns its own name and namespace from
/// `OPENFAAS_NAME` and `OPENFAAS_NAMESPACE` (as on the Swarm provider) unless its `envVars` set them.
fn run_spec(namespace: &str, deployment: &FunctionDeployment, secrets_view: &Path) -> RunSpec {
    let mut vars: Vec<(String, String)> = deployment
        .env_vars
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "fprocess" | "function_process" | SECRET_MOUNT_PATH
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(process) = deployment
        .env_process
        .as_deref()
        .filter(|p| !p.trim().is_empty())
    {
        vars.push(("fprocess".to_owned(), process.to_owned()));
    }
    vars.push((
        SECRET_MOUNT_PATH.to_owned(),
        secrets_view.to_string_lossy().into_owned(),
    ));
    for (key, value) in [
        (ENV_FUNCTION_NAME, deployment.service.as_str()),
        (ENV_NAMESPACE, namespace),
    ] {
        if !deployment.env_vars.contains_key(key) {
            vars.push((key.to_owned(), value.to_owned()));
        }
    }
    let image = Path::new(&deployment.image);
    let working_dir = image
        .is_dir()
        .then(|| std::path::absolute(image).unwrap_or_else(|_| image.to_owned()));
    let set = |name: &str| {
        deployment
            .env_vars
            .get(name)
            .is_some_and(|v| !v.trim().is_empty())
    };
    let auto_upstream = mode(deployment) == Some(faas_watchdog::Mode::Http)
        && !set("upstream_url")
        && !set("http_upstream_url");
    RunSpec {
        vars,
        working_dir,
        auto_upstream,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var<'a>(spec: &'a RunSpec, name: &str) -> Vec<&'a str> {
        spec.vars
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn env_process_wins_and_secrets_have_a_path() {
        let d = FunctionDeployment::new("f", "no-such-dir")
            .with_env_process("wc -l")
            .with_env("fprocess", "cat")
            .with_env("function_process", "cat")
            .with_env(SECRET_MOUNT_PATH, "/elsewhere")
            .with_env("GREETING", "hi");
        let spec = run_spec("ns", &d, Path::new("/data/functions/ns/f/secrets"));
        assert_eq!(var(&spec, "fprocess"), ["wc -l"]);
        assert!(var(&spec, "function_process").is_empty());
        assert_eq!(
            var(&spec, SECRET_MOUNT_PATH),
            ["/data/functions/ns/f/secrets"]
        );
        assert_eq!(var(&spec, "GREETING"), ["hi"]);
        assert_eq!(var(&spec, ENV_FUNCTION_NAME), ["f"]);
        assert_eq!(var(&spec, ENV_NAMESPACE), ["ns"]);
        assert_eq!(spec.working_dir, None);
        assert!(!spec.auto_upstream);
        spec.validate().unwrap();
        let config = spec
            .config(Arc::new(faas_watchdog::StderrSink::new(false)))
            .unwrap();
        assert_eq!(config.function_process.as_deref(), Some("wc -l"));
        assert_eq!(config.port, 0);
        assert_eq!(config.metrics_port, None);
        assert_eq!(config.lock_file, None);
        assert!(config.bind_address.is_loopback());
    }

    #[test]
    fn the_deployment_may_name_itself_differently() {
        let d = FunctionDeployment::new("f", "x")
            .with_env_process("cat")
            .with_env(ENV_FUNCTION_NAME, "alias");
        let spec = run_spec("ns", &d, Path::new("/s"));
        assert_eq!(var(&spec, ENV_FUNCTION_NAME), ["alias"]);
        assert_eq!(var(&spec, ENV_NAMESPACE), ["ns"]);
    }

    #[test]
    fn static_mode_needs_no_process_and_serves_from_the_function_folder() {
        let dir = tempfile::tempdir().unwrap();
        let d = FunctionDeployment::new("site", dir.path().to_string_lossy())
            .with_env("mode", "static")
            .with_env("static_path", "public");
        assert!(is_static(&d));
        let spec = run_spec("ns", &d, Path::new("/s"));
        assert!(var(&spec, "fprocess").is_empty());
        spec.validate().unwrap();
        let sink: Arc<dyn faas_watchdog::LogSink> = Arc::new(faas_watchdog::StderrSink::new(false));
        let config = spec.config(sink).unwrap();
        assert_eq!(config.static_path, dir.path().join("public"));

        let absolute = d.with_env("static_path", "/srv/www");
        let spec = run_spec("ns", &absolute, Path::new("/s"));
        let sink: Arc<dyn faas_watchdog::LogSink> = Arc::new(faas_watchdog::StderrSink::new(false));
        assert_eq!(
            spec.config(sink).unwrap().static_path,
            Path::new("/srv/www")
        );
    }

    #[test]
    fn an_image_naming_a_directory_is_the_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = FunctionDeployment::new("f", dir.path().to_string_lossy()).with_env_process("cat");
        let spec = run_spec("ns", &d, Path::new("/s"));
        assert_eq!(spec.working_dir.as_deref(), Some(dir.path()));
    }

    #[test]
    fn http_mode_without_upstream_gets_a_port_per_start() {
        let d = FunctionDeployment::new("f", "x")
            .with_env_process("server")
            .with_env("mode", "http");
        let spec = run_spec("ns", &d, Path::new("/s"));
        assert!(spec.auto_upstream);
        let sink: Arc<dyn faas_watchdog::LogSink> = Arc::new(faas_watchdog::StderrSink::new(false));
        let config = spec.config(sink).unwrap();
        let url = config.upstream_url.clone().expect("an upstream url");
        let port = url.port_u16().expect("a port");
        assert!(
            config
                .function_env
                .contains(&("PORT".to_owned(), port.to_string()))
        );
        assert!(
            config
                .function_env
                .contains(&("http_port".to_owned(), port.to_string()))
        );

        let fixed = d.with_env("upstream_url", "http://127.0.0.1:5000");
        let spec = run_spec("ns", &fixed, Path::new("/s"));
        assert!(!spec.auto_upstream);
        let sink: Arc<dyn faas_watchdog::LogSink> = Arc::new(faas_watchdog::StderrSink::new(false));
        assert_eq!(
            spec.config(sink).unwrap().upstream_url.unwrap().port_u16(),
            Some(5000)
        );
    }
}
