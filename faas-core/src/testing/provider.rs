//! The Provider conformance suite.
//!
//! Every [`Provider`] implementation runs [`conformance`] against a fresh instance of itself, with a
//! [`ConformanceSpec`] saying how to build a deployment whose replicas answer HTTP on that provider
//! (the local provider runs `cat`, the Swarm provider an image). The suite panics with a message
//! naming the step and what was expected on the first difference.
//!
//! ```no_run
//! # async fn run(provider: std::sync::Arc<dyn faas_core::Provider>) {
//! use std::time::Duration;
//! use faas_core::model::FunctionDeployment;
//! use faas_core::testing::provider::{conformance, ConformanceSpec};
//!
//! let spec = ConformanceSpec::new(|name| {
//!     FunctionDeployment::new(name, "local").with_env_process("cat")
//! })
//! .ready_timeout(Duration::from_secs(30))
//! .invalid("envProcess", |name| FunctionDeployment::new(name, "local"));
//! conformance(provider, spec).await;
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::model::{Endpoint, FunctionDeployment, FunctionStatus, LogRequest, Secret};
use crate::{ErrorKind, Provider, Result};

/// Builds a deployment of the given function name.
pub type DeploymentFn = Arc<dyn Fn(&str) -> FunctionDeployment + Send + Sync>;

/// How to run the suite against one provider.
#[non_exhaustive]
pub struct ConformanceSpec {
    deployment: DeploymentFn,
    ready_timeout: Duration,
    request_timeout: Duration,
    namespace: Option<String>,
    name_prefix: String,
    echo: bool,
    invalid: Vec<(String, DeploymentFn)>,
}

impl fmt::Debug for ConformanceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConformanceSpec")
            .field("ready_timeout", &self.ready_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("namespace", &self.namespace)
            .field("name_prefix", &self.name_prefix)
            .field("echo", &self.echo)
            .field(
                "invalid",
                &self.invalid.iter().map(|(f, _)| f).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ConformanceSpec {
    /// A spec whose valid deployments are built by `deployment` (given the function name).
    ///
    /// The replicas of that deployment must answer `POST /` with a 2xx status and, unless
    /// [`echo(false)`](ConformanceSpec::echo) is set, with the request body (as `cat` does).
    /// Defaults: a 60 s readiness timeout, a 10 s request timeout, the provider's default namespace,
    /// function names starting with `conf-`.
    pub fn new(deployment: impl Fn(&str) -> FunctionDeployment + Send + Sync + 'static) -> Self {
        ConformanceSpec {
            deployment: Arc::new(deployment),
            ready_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            namespace: None,
            name_prefix: "conf".to_owned(),
            echo: true,
            invalid: Vec::new(),
        }
    }

    /// How long replicas may take to become ready (or to go away after a scale down or delete).
    #[must_use]
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// How long one HTTP request to a replica may take.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Runs in this namespace instead of the provider's default one.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The prefix of the function and secret names the suite creates (a short DNS label; a random
    /// suffix makes every run unique).
    #[must_use]
    pub fn name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = prefix.into();
        self
    }

    /// Whether replicas answer with the request body (`cat`); when false, only a 2xx status is
    /// required.
    #[must_use]
    pub fn echo(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }

    /// Adds a deployment only this provider rejects: deploying it must fail with
    /// [`ErrorKind::InvalidInput`] blaming `field`, and create nothing.
    #[must_use]
    pub fn invalid(
        mut self,
        field: impl Into<String>,
        deployment: impl Fn(&str) -> FunctionDeployment + Send + Sync + 'static,
    ) -> Self {
        self.invalid.push((field.into(), Arc::new(deployment)));
        self
    }
}

/// Runs the whole suite against `provider`: deploy, get, list, update, scale up, down and to zero,
/// endpoints that become ready and answer HTTP, delete, conflicts, not-found, bad input, secrets
/// and namespaces.
///
/// What it expects, beyond the [`Provider`] docs:
/// - `info()` names the provider and its orchestration; `namespaces()` lists the default namespace.
/// - `get`, `delete`, `scale`, `update`, `endpoints` and `logs` of an unknown function fail with
///   [`ErrorKind::NotFound`].
/// - `deploy` validates by itself ([`validate_deployment`](crate::validate::validate_deployment)
///   plus what the spec adds with [`ConformanceSpec::invalid`]): [`ErrorKind::InvalidInput`]
///   naming the field, and nothing listed afterwards. A bad `update` changes nothing.
/// - After `deploy`, `get` and `list` show the spec with `replicas` 1 at once; within the readiness
///   timeout exactly that many replicas are available and listed by `endpoints`, each answering
///   `POST /` on its authority. The same after `scale` to 2, `update` (which keeps 2 and shows the
///   new env vars and labels at once), `scale` to 1, 0 and back to 1.
/// - `logs` of a deployed function without `follow` is a stream that ends.
/// - After `delete`, the function is not listed, `get` fails with NotFound, `endpoints` is empty
///   or NotFound, and the name can be deployed again.
/// - Secrets: create, conflict on create, list, update (text and binary), NotFound on update and
///   delete of unknown secrets, InvalidInput for a bad name or an empty value, delete.
///
/// Everything it creates has a unique name and is deleted when the suite passes.
///
/// # Panics
/// On the first behaviour that differs from the [`Provider`] contract, with a message naming the
/// step.
pub async fn conformance(provider: Arc<dyn Provider>, spec: ConformanceSpec) {
    let run = Run::new(provider, spec);
    run.info_and_namespaces().await;
    run.unknown_function().await;
    run.bad_input().await;
    run.lifecycle().await;
    run.secrets().await;
}

struct Run {
    provider: Arc<dyn Provider>,
    spec: ConformanceSpec,
    namespace: String,
    id: String,
}

fn expect_kind<T: fmt::Debug>(step: &str, result: Result<T>, kind: ErrorKind) {
    match result {
        Err(err) if err.kind() == kind => {}
        Err(err) => panic!(
            "{step}: expected a {kind:?} error, got {:?} ({err:?})",
            err.kind()
        ),
        Ok(value) => panic!("{step}: expected a {kind:?} error, got Ok({value:?})"),
    }
}

fn expect_ok<T>(step: &str, result: Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!(
            "{step}: expected success, got {:?} error: {err:?}",
            err.kind()
        ),
    }
}

impl Run {
    fn new(provider: Arc<dyn Provider>, spec: ConformanceSpec) -> Self {
        let namespace = spec
            .namespace
            .clone()
            .unwrap_or_else(|| provider.default_namespace().to_owned());
        let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        Run {
            provider,
            spec,
            namespace,
            id,
        }
    }

    fn name(&self, what: &str) -> String {
        format!("{}-{}-{what}", self.spec.name_prefix, self.id)
    }

    fn deployment(&self, name: &str) -> FunctionDeployment {
        let mut d = (self.spec.deployment)(name);
        d.service = name.to_owned();
        d.namespace = Some(self.namespace.clone());
        d
    }

    async fn names(&self, step: &str) -> Vec<String> {
        let list = expect_ok(step, self.provider.list(&self.namespace).await);
        list.into_iter().map(|f| f.name).collect()
    }

    async fn info_and_namespaces(&self) {
        let info = self.provider.info();
        assert!(!info.name.is_empty(), "info: the provider name is empty");
        assert!(
            !info.orchestration.is_empty(),
            "info: the orchestration is empty"
        );
        let namespaces = expect_ok("namespaces", self.provider.namespaces().await);
        let default = self.provider.default_namespace();
        assert!(
            namespaces.iter().any(|ns| ns == default),
            "namespaces: {namespaces:?} does not list the default namespace {default:?}"
        );
    }

    async fn unknown_function(&self) {
        let p = &self.provider;
        let ns = self.namespace.as_str();
        let name = self.name("missing");
        expect_kind(
            "get an unknown function",
            p.get(&name, ns).await,
            ErrorKind::NotFound,
        );
        expect_kind(
            "delete an unknown function",
            p.delete(&name, ns).await,
            ErrorKind::NotFound,
        );
        expect_kind(
            "scale an unknown function",
            p.scale(&name, ns, 1).await,
            ErrorKind::NotFound,
        );
        expect_kind(
            "update an unknown function",
            p.update(self.deployment(&name)).await,
            ErrorKind::NotFound,
        );
        expect_kind(
            "endpoints of an unknown function",
            p.endpoints(&name, ns).await,
            ErrorKind::NotFound,
        );
        let logs = p
            .logs(LogRequest::new(name.as_str(), ns))
            .await
            .map(|_| "a log stream");
        expect_kind("logs of an unknown function", logs, ErrorKind::NotFound);
        assert!(
            !self
                .names("list after not-found calls")
                .await
                .contains(&name),
            "list: a failed call created {name}"
        );
    }

    async fn bad_input(&self) {
        let mut cases: Vec<(String, String, FunctionDeployment)> = Vec::new();
        let bad_name = format!("Bad_{}", self.id);
        cases.push((
            "service".into(),
            bad_name.clone(),
            self.deployment(&bad_name),
        ));
        let name = self.name("badenv");
        cases.push((
            "envVars.1BAD".into(),
            name.clone(),
            self.deployment(&name).with_env("1BAD", "x"),
        ));
        let name = self.name("badlabel");
        cases.push((
            "labels.com.openfaas.scale.min".into(),
            name.clone(),
            self.deployment(&name)
                .with_label(crate::model::LABEL_SCALE_MIN, "many"),
        ));
        for (i, (field, build)) in self.spec.invalid.iter().enumerate() {
            let name = self.name(&format!("invalid{i}"));
            let mut d = build(&name);
            d.service = name.clone();
            d.namespace = Some(self.namespace.clone());
            cases.push((field.clone(), name, d));
        }
        for (field, name, deployment) in cases {
            let step = format!("deploy with a bad {field}");
            match self.provider.deploy(deployment).await {
                Err(err) if err.kind() == ErrorKind::InvalidInput => assert_eq!(
                    err.field(),
                    Some(field.as_str()),
                    "{step}: the error blames the wrong field ({err:?})"
                ),
                Err(err) => panic!(
                    "{step}: expected InvalidInput, got {:?} ({err:?})",
                    err.kind()
                ),
                Ok(()) => panic!("{step}: the deployment was accepted"),
            }
            assert!(
                !self.names(&step).await.contains(&name),
                "{step}: the rejected function {name} was created"
            );
        }
    }

    async fn lifecycle(&self) {
        let p = &self.provider;
        let ns = self.namespace.as_str();
        let name = self.name("fn");
        let deployment = self.deployment(&name);

        // deploy, conflict, get, list
        expect_ok("deploy", p.deploy(deployment.clone()).await);
        expect_kind(
            "deploy again",
            p.deploy(deployment.clone()).await,
            ErrorKind::AlreadyExists,
        );
        let status = expect_ok("get after deploy", p.get(&name, ns).await);
        self.check_status("get after deploy", &status, &deployment, 1);
        let listed = expect_ok("list after deploy", p.list(ns).await);
        let entry = listed.iter().find(|f| f.name == name);
        let entry = entry.unwrap_or_else(|| panic!("list after deploy: {name} is not listed"));
        self.check_status("list after deploy", entry, &deployment, 1);

        // ready and answering
        self.wait_ready("deploy", &name, 1).await;

        // logs of a function: a stream that ends when not following
        let mut request = LogRequest::new(name.as_str(), ns);
        request.tail = Some(10);
        let logs = expect_ok("logs", p.logs(request).await);
        let drained = tokio::time::timeout(self.spec.request_timeout, async {
            let mut logs = logs;
            let mut lines = 0usize;
            while let Some(line) = futures::StreamExt::next(&mut logs).await {
                let line = expect_ok("logs: a line", line);
                assert_eq!(
                    line.name, name,
                    "logs: a line of another function: {line:?}"
                );
                lines += 1;
            }
            lines
        })
        .await;
        let lines = drained.unwrap_or_else(|_| {
            panic!(
                "logs: the stream did not end within {:?} without follow",
                self.spec.request_timeout
            )
        });
        assert!(lines <= 10, "logs: tail 10 gave {lines} lines");

        // scale up
        expect_ok("scale to 2", p.scale(&name, ns, 2).await);
        let status = expect_ok("get after scale to 2", p.get(&name, ns).await);
        assert_eq!(status.replicas, 2, "get after scale to 2: replicas");
        self.wait_ready("scale to 2", &name, 2).await;

        // update: the new spec is visible, the replica count kept, the replicas answer
        let updated = deployment
            .clone()
            .with_env("CONFORMANCE_REVISION", "2")
            .with_label("conformance/revision", "2");
        expect_ok("update", p.update(updated.clone()).await);
        let status = expect_ok("get after update", p.get(&name, ns).await);
        self.check_status("get after update", &status, &updated, 2);
        self.wait_ready("update", &name, 2).await;

        // a bad update changes nothing
        let bad = updated.clone().with_env("1BAD", "x");
        expect_kind(
            "update with a bad env var",
            p.update(bad).await,
            ErrorKind::InvalidInput,
        );
        let status = expect_ok("get after a bad update", p.get(&name, ns).await);
        self.check_status("get after a bad update", &status, &updated, 2);
        for (i, (field, build)) in self.spec.invalid.iter().enumerate() {
            let mut d = build(&name);
            d.service = name.clone();
            d.namespace = Some(self.namespace.clone());
            let step = format!("update with a bad {field} (case {i})");
            expect_kind(&step, p.update(d).await, ErrorKind::InvalidInput);
            let status = expect_ok(&step, p.get(&name, ns).await);
            self.check_status(&step, &status, &updated, 2);
        }

        // scale down, to zero, and back
        expect_ok("scale to 1", p.scale(&name, ns, 1).await);
        self.wait_ready("scale to 1", &name, 1).await;
        expect_ok("scale to 0", p.scale(&name, ns, 0).await);
        let status = expect_ok("get after scale to 0", p.get(&name, ns).await);
        assert_eq!(status.replicas, 0, "get after scale to 0: replicas");
        self.wait_ready("scale to 0", &name, 0).await;
        expect_ok("scale from 0 to 1", p.scale(&name, ns, 1).await);
        self.wait_ready("scale from 0 to 1", &name, 1).await;

        // delete
        expect_ok("delete", p.delete(&name, ns).await);
        assert!(
            !self.names("list after delete").await.contains(&name),
            "list after delete: {name} is still listed"
        );
        expect_kind(
            "get after delete",
            p.get(&name, ns).await,
            ErrorKind::NotFound,
        );
        match p.endpoints(&name, ns).await {
            Ok(endpoints) => assert!(
                endpoints.is_empty(),
                "endpoints after delete: expected none or NotFound, got {endpoints:?}"
            ),
            Err(err) => assert_eq!(
                err.kind(),
                ErrorKind::NotFound,
                "endpoints after delete: expected none or NotFound, got {err:?}"
            ),
        }
        expect_kind(
            "delete again",
            p.delete(&name, ns).await,
            ErrorKind::NotFound,
        );
        expect_kind(
            "scale after delete",
            p.scale(&name, ns, 1).await,
            ErrorKind::NotFound,
        );

        // the name can be used again
        expect_ok(
            "deploy again after delete",
            p.deploy(deployment.clone()).await,
        );
        self.wait_ready("deploy again after delete", &name, 1).await;
        expect_ok("delete the redeployed function", p.delete(&name, ns).await);
    }

    fn check_status(
        &self,
        step: &str,
        status: &FunctionStatus,
        deployment: &FunctionDeployment,
        replicas: u64,
    ) {
        assert_eq!(status.name, deployment.service, "{step}: name");
        assert_eq!(status.image, deployment.image, "{step}: image");
        assert_eq!(status.namespace, self.namespace, "{step}: namespace");
        assert_eq!(status.replicas, replicas, "{step}: replicas");
        assert!(
            status.available_replicas <= status.replicas.max(replicas),
            "{step}: {} available replicas for {} desired",
            status.available_replicas,
            status.replicas
        );
        if let Some(process) = &deployment.env_process {
            assert_eq!(
                status.env_process.as_ref(),
                Some(process),
                "{step}: envProcess"
            );
        }
        for (key, value) in &deployment.env_vars {
            assert_eq!(
                status.env_vars.get(key),
                Some(value),
                "{step}: envVars.{key}"
            );
        }
        for (key, value) in deployment.labels.iter().flatten() {
            assert_eq!(
                status.label(key),
                Some(value.as_str()),
                "{step}: labels.{key}"
            );
        }
    }

    /// Waits until exactly `replicas` replicas are available and listed as endpoints, then checks
    /// that every endpoint answers HTTP.
    async fn wait_ready(&self, step: &str, name: &str, replicas: u64) {
        let p = &self.provider;
        let ns = self.namespace.as_str();
        let endpoints = poll(self.spec.ready_timeout, || async {
            let status = expect_ok(step, p.get(name, ns).await);
            let endpoints = expect_ok(step, p.endpoints(name, ns).await);
            let done = status.available_replicas == replicas && endpoints.len() as u64 == replicas;
            (done, (status.available_replicas, endpoints))
        })
        .await;
        let endpoints = match endpoints {
            Ok((_, endpoints)) => endpoints,
            Err((available, endpoints)) => panic!(
                "{step}: {name} did not get exactly {replicas} ready replicas within {:?}: \
                 {available} available, endpoints {endpoints:?}",
                self.spec.ready_timeout
            ),
        };
        let mut ids: Vec<&str> = endpoints.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            endpoints.len(),
            "{step}: endpoint ids are not unique: {endpoints:?}"
        );
        for endpoint in &endpoints {
            self.invoke(step, name, endpoint).await;
        }
    }

    async fn invoke(&self, step: &str, name: &str, endpoint: &Endpoint) {
        let body = format!("conformance {name} {}", endpoint.id);
        let answer = tokio::time::timeout(
            self.spec.request_timeout,
            post(&endpoint.authority, Bytes::from(body.clone())),
        )
        .await;
        let (status, answer) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(err)) => panic!("{step}: invoking {name} at {endpoint:?} failed: {err}"),
            Err(_) => panic!(
                "{step}: invoking {name} at {endpoint:?} took longer than {:?}",
                self.spec.request_timeout
            ),
        };
        assert!(
            status.is_success(),
            "{step}: {name} at {endpoint:?} answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
        if self.spec.echo {
            assert_eq!(
                String::from_utf8_lossy(&answer),
                body,
                "{step}: {name} at {endpoint:?} did not echo the request body"
            );
        }
    }

    async fn secrets(&self) {
        let p = &self.provider;
        let ns = self.namespace.as_str();
        let name = self.name("secret");
        let secret = |value: &str| {
            let mut s = Secret::new(name.as_str(), value);
            s.namespace = self.namespace.clone();
            s
        };
        let listed = |list: &[crate::model::SecretInfo]| list.iter().any(|s| s.name == name);

        expect_ok("create a secret", p.create_secret(secret("one")).await);
        expect_kind(
            "create the secret again",
            p.create_secret(secret("two")).await,
            ErrorKind::AlreadyExists,
        );
        let list = expect_ok("list secrets", p.secrets(ns).await);
        assert!(
            listed(&list),
            "list secrets: {name} is not listed in {list:?}"
        );
        expect_ok("update the secret", p.update_secret(secret("three")).await);
        let mut binary = secret("");
        binary.raw_value = vec![0, 1, 2, 255];
        expect_ok(
            "update the secret with a binary value",
            p.update_secret(binary).await,
        );

        let mut unknown = Secret::new(self.name("nosecret"), "x");
        unknown.namespace = self.namespace.clone();
        expect_kind(
            "update an unknown secret",
            p.update_secret(unknown.clone()).await,
            ErrorKind::NotFound,
        );
        expect_kind(
            "delete an unknown secret",
            p.delete_secret(&unknown.name, ns).await,
            ErrorKind::NotFound,
        );

        let mut bad = Secret::new(format!("Bad Secret {}", self.id), "x");
        bad.namespace = self.namespace.clone();
        expect_kind(
            "create a secret with a bad name",
            p.create_secret(bad.clone()).await,
            ErrorKind::InvalidInput,
        );
        let mut empty = Secret::new(self.name("empty"), "");
        empty.namespace = self.namespace.clone();
        expect_kind(
            "create an empty secret",
            p.create_secret(empty.clone()).await,
            ErrorKind::InvalidInput,
        );
        let list = expect_ok("list secrets after bad input", p.secrets(ns).await);
        assert!(
            !list
                .iter()
                .any(|s| s.name == bad.name || s.name == empty.name),
            "list secrets after bad input: a rejected secret was created: {list:?}"
        );

        expect_ok("delete the secret", p.delete_secret(&name, ns).await);
        let list = expect_ok("list secrets after delete", p.secrets(ns).await);
        assert!(
            !listed(&list),
            "list secrets after delete: {name} is still listed"
        );
        expect_kind(
            "delete the secret again",
            p.delete_secret(&name, ns).await,
            ErrorKind::NotFound,
        );
        expect_kind(
            "update the deleted secret",
            p.update_secret(secret("four")).await,
            ErrorKind::NotFound,
        );
    }
}

/// Calls `check` every 50 ms until it says done or `timeout` passes; returns its last value, as
/// `Ok` when done.
async fn poll<T, F, Fut>(timeout: Duration, mut check: F) -> std::result::Result<T, T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = (bool, T)>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let (done, value) = check().await;
        if done {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(value);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One `POST /` over a fresh HTTP/1.1 connection: the status and the whole body.
async fn post(
    authority: &str,
    body: Bytes,
) -> std::result::Result<(http::StatusCode, Bytes), Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let request = http::Request::post("/")
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(Full::new(body))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    drop(sender);
    conn.abort();
    Ok((status, body))
}
