//! How the provider treats the engine around it, on the real swarm: services that are not
//! functions are never listed or touched, a replica whose HEALTHCHECK fails is not available, and
//! an engine that goes away after `connect` is `Unavailable` on every call.
//!
//! Run with `scripts/docker.sh && cargo nextest run -p faas-provider-swarm --run-ignored all`.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec,
};
use bollard::query_parameters::ListContainersOptions;
use faas_core::model::{FunctionDeployment, LogRequest, Secret};
use faas_core::{ErrorKind, Provider};
use faas_provider_swarm::{SwarmConfig, SwarmProvider};
use tokio::net::{TcpListener, UnixStream};
use tokio::task::JoinSet;

const READY: Duration = Duration::from_secs(120);
const NS: &str = "openfaas-fn";

/// A plain service, as another stack on the same swarm would run it: no function labels.
fn plain_service(name: &str) -> ServiceSpec {
    ServiceSpec {
        name: Some(name.to_owned()),
        labels: Some(HashMap::from([(
            "com.example.stack".to_owned(),
            "other".to_owned(),
        )])),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(common::WATCHDOG_IMAGE.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(0) }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker swarm"]
async fn services_that_are_not_functions_are_left_alone() {
    common::with_provider("own", SwarmConfig::default(), ownership).await;
}

async fn ownership(provider: SwarmProvider, docker: Docker, prefix: String) {
    let plain = format!("{prefix}-plain");
    docker
        .create_service(plain_service(&plain), None)
        .await
        .expect("create a plain service");
    let before = docker.inspect_service(&plain, None).await.unwrap();

    let listed = provider.list(NS).await.unwrap();
    assert!(!listed.iter().any(|f| f.name == plain), "{listed:?}");
    let kind = |r: faas_core::Result<()>| r.unwrap_err().kind();
    assert_eq!(
        provider.get(&plain, NS).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        provider.endpoints(&plain, NS).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        provider
            .logs(LogRequest::new(plain.as_str(), NS))
            .await
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    assert_eq!(
        kind(provider.scale(&plain, NS, 2).await),
        ErrorKind::NotFound
    );
    let mut update = FunctionDeployment::new(plain.as_str(), common::WATCHDOG_IMAGE);
    update.env_process = Some("cat".into());
    assert_eq!(
        kind(provider.update(update.clone()).await),
        ErrorKind::NotFound
    );
    assert_eq!(kind(provider.delete(&plain, NS).await), ErrorKind::NotFound);
    // its name is taken: a function cannot replace it
    assert_eq!(
        kind(provider.deploy(update).await),
        ErrorKind::AlreadyExists
    );

    let after = docker.inspect_service(&plain, None).await.unwrap();
    assert_eq!(
        before.version, after.version,
        "the plain service was changed"
    );
    assert_eq!(before.spec, after.spec);

    // a Docker secret created by hand is not listed as a function secret, and not deleted
    let hand = format!("{prefix}-hand");
    docker
        .create_secret(bollard::models::SecretSpec {
            name: Some(hand.clone()),
            data: Some("aGFuZA==".to_owned()),
            ..Default::default()
        })
        .await
        .expect("create a secret by hand");
    let secrets = provider.secrets(NS).await.unwrap();
    assert!(!secrets.iter().any(|s| s.name == hand), "{secrets:?}");
    assert_eq!(
        kind(provider.delete_secret(&hand, NS).await),
        ErrorKind::NotFound
    );
    let mut s = Secret::new(hand.as_str(), "x");
    s.namespace = NS.into();
    assert_eq!(kind(provider.update_secret(s).await), ErrorKind::NotFound);
    assert!(docker.inspect_secret(&hand).await.is_ok(), "{hand} is gone");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker swarm"]
async fn unhealthy_replicas_are_not_available() {
    common::with_provider("sick", SwarmConfig::default(), health).await;
}

async fn health(provider: SwarmProvider, docker: Docker, prefix: String) {
    // the watchdog runs but its function never listens: `/_/health` answers 503 for ever, and so
    // the image's HEALTHCHECK (`fwatchdog healthcheck`) fails
    let sick = format!("{prefix}-sick");
    let d = FunctionDeployment::new(sick.as_str(), common::WATCHDOG_IMAGE)
        .with_env_process("sleep 3600")
        .with_env("mode", "http")
        .with_env("upstream_url", "http://127.0.0.1:9");
    provider.deploy(d).await.unwrap();
    // the same image, healthy: the control
    let well = format!("{prefix}-well");
    provider
        .deploy(
            FunctionDeployment::new(well.as_str(), common::WATCHDOG_IMAGE).with_env_process("cat"),
        )
        .await
        .unwrap();

    // the sick replica's container runs and Docker's probe has failed at least once
    let container = common::wait_for(
        "a failed health probe of the sick replica",
        READY,
        || async {
            let filters = HashMap::from([(
                "label".to_owned(),
                vec![format!("com.docker.swarm.service.name={sick}")],
            )]);
            let options = ListContainersOptions {
                all: false,
                filters: Some(filters),
                ..Default::default()
            };
            let containers = docker.list_containers(Some(options)).await.ok()?;
            for c in containers {
                let id = c.id?;
                let state = docker.inspect_container(&id, None).await.ok()?.state?;
                let health = state.health?;
                let failed = health
                    .log
                    .iter()
                    .flatten()
                    .any(|probe| probe.exit_code.is_some_and(|code| code != 0));
                if state.running == Some(true) && failed {
                    return Some(id);
                }
            }
            None
        },
    )
    .await;

    common::wait_for("the healthy control to be available", READY, || async {
        let f = provider.get(&well, NS).await.ok()?;
        (f.available_replicas == 1).then_some(())
    })
    .await;

    let status = provider.get(&sick, NS).await.unwrap();
    assert_eq!(
        (status.replicas, status.available_replicas),
        (1, 0),
        "a replica whose container {container} is not healthy counts as available"
    );
    let listed = provider.list(NS).await.unwrap();
    let listed = listed.iter().find(|f| f.name == sick).expect("listed");
    assert_eq!(listed.available_replicas, 0);
    assert!(
        provider.endpoints(&sick, NS).await.unwrap().is_empty(),
        "an unhealthy replica is an endpoint"
    );
    assert_eq!(provider.endpoints(&well, NS).await.unwrap().len(), 1);
}

/// A TCP front of the engine's socket that can be pulled: the engine "goes down".
struct EngineProxy {
    addr: String,
    tasks: JoinSet<()>,
}

impl EngineProxy {
    async fn start() -> EngineProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    let Ok(mut engine) = UnixStream::connect("/var/run/docker.sock").await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut engine).await;
                });
            }
            // dropping `connections` aborts the proxied connections too
        });
        EngineProxy { addr, tasks }
    }

    /// Stops listening and cuts every proxied connection.
    async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker swarm"]
async fn an_engine_that_goes_away_is_unavailable() {
    common::ensure_images(&[common::WATCHDOG_IMAGE]).await;
    let id = common::run_id();
    let network = format!("faas-gone-{id}");
    let prefix = format!("gone{id}");
    let docker = Docker::connect_with_defaults().expect("docker client");
    let proxy = EngineProxy::start().await;
    let provider = SwarmProvider::connect(
        SwarmConfig::default()
            .docker_host(format!("tcp://{}", proxy.addr))
            .network(network.as_str())
            .request_timeout(Duration::from_secs(20)),
    )
    .await
    .expect("connect through the proxy");
    let name = format!("{prefix}-fn");
    let result = tokio::spawn(async move {
        // it works through the proxy...
        let d =
            FunctionDeployment::new(name.as_str(), common::WATCHDOG_IMAGE).with_env_process("cat");
        provider.deploy(d.clone()).await.unwrap();
        provider.get(&name, NS).await.unwrap();
        provider.endpoints(&name, NS).await.unwrap();
        // ...until the engine is gone: every call says so, none hangs or panics
        proxy.stop().await;
        let unavailable = |what: &str, err: faas_core::Error| {
            assert_eq!(err.kind(), ErrorKind::Unavailable, "{what}: {err:?}");
            assert!(!err.message().is_empty());
        };
        unavailable("list", provider.list(NS).await.unwrap_err());
        unavailable("get", provider.get(&name, NS).await.unwrap_err());
        unavailable(
            "endpoints",
            provider.endpoints(&name, NS).await.unwrap_err(),
        );
        unavailable("scale", provider.scale(&name, NS, 2).await.unwrap_err());
        unavailable("delete", provider.delete(&name, NS).await.unwrap_err());
        unavailable("deploy", provider.deploy(d).await.unwrap_err());
        unavailable("secrets", provider.secrets(NS).await.unwrap_err());
        let logs = provider.logs(LogRequest::new(name.as_str(), NS)).await;
        unavailable("logs", logs.err().expect("logs of a gone engine"));
    })
    .await;
    common::cleanup(&docker, &prefix, Some(&network)).await;
    if let Err(err) = result {
        std::panic::resume_unwind(err.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker swarm"]
async fn followed_logs_tail_over_all_replicas() {
    common::with_provider("tail", SwarmConfig::default(), follow_tail).await;
}

async fn follow_tail(provider: SwarmProvider, _docker: Docker, prefix: String) {
    use futures::StreamExt;
    let name = format!("{prefix}-fn");
    let d = FunctionDeployment::new(name.as_str(), common::WATCHDOG_IMAGE)
        .with_env_process("cat")
        .with_label("com.openfaas.scale.min", "2");
    provider.deploy(d).await.unwrap();
    common::wait_for("2 available replicas", READY, || async {
        let f = provider.get(&name, NS).await.ok()?;
        (f.available_replicas == 2).then_some(())
    })
    .await;
    // every replica has written its start-up line (Docker's history lags a fresh task a little)
    let history = common::wait_for("log lines of both replicas", READY, || async {
        let lines: Vec<_> = provider
            .logs(LogRequest::new(name.as_str(), NS))
            .await
            .ok()?
            .collect()
            .await;
        let lines: Vec<_> = lines.into_iter().collect::<Result<_, _>>().ok()?;
        let instances: std::collections::BTreeSet<String> = lines
            .iter()
            .map(|l: &faas_core::model::LogMessage| l.instance.clone())
            .collect();
        (instances.len() == 2).then_some(lines)
    })
    .await;
    let newest = history.iter().map(|l| l.timestamp).max().unwrap();

    // Docker applies `tail` per task; the provider keeps the newest line over both
    let mut request = LogRequest::new(name.as_str(), NS);
    request.follow = true;
    request.tail = Some(1);
    let mut follow = provider.logs(request).await.unwrap();
    let mut received = Vec::new();
    // nothing invokes the function: after the history the stream stays quiet, so collect what
    // arrives in a window (a bound on the wait, not a timing assertion)
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(line) = follow.next().await {
            received.push(line.expect("a log line"));
        }
    })
    .await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].timestamp, newest, "{received:?} vs {history:?}");
    assert_eq!(received[0].name, name);
}
