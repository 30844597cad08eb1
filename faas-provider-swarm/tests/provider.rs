//! What the conformance suite does not cover, on the real swarm: how a deployment lands in Docker
//! (resources, constraints, secrets, update policy), namespaces, logs (tail, since, follow), secret
//! rotation and in-use secrets, unsatisfiable constraints.
//!
//! Run with `scripts/docker.sh && cargo nextest run -p faas-provider-swarm --run-ignored all`.

mod common;

use std::time::Duration;

use bollard::Docker;
use bollard::models::{EndpointSpecModeEnum, ServiceSpecUpdateConfigOrderEnum};
use bollard::query_parameters::ListSecretsOptions;
use chrono::Utc;
use faas_core::model::{FunctionDeployment, FunctionResources, LogRequest, Secret};
use faas_core::{ErrorKind, Provider};
use faas_provider_swarm::{SwarmConfig, SwarmProvider};
use futures::StreamExt;

const READY: Duration = Duration::from_secs(120);
const NS: &str = "openfaas-fn";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker swarm"]
async fn swarm_specifics() {
    common::ensure_images(&[common::WATCHDOG_IMAGE]).await;
    let id = common::run_id();
    let network = format!("faas-prov-{id}");
    let provider = SwarmProvider::connect(SwarmConfig::default().network(network.as_str()))
        .await
        .expect("connect");
    let docker = provider.docker().clone();
    let prefix = format!("prov{id}");
    let result = tokio::spawn(scenario(provider, docker.clone(), prefix.clone())).await;
    common::cleanup(&docker, &prefix, Some(&network)).await;
    if let Err(err) = result {
        std::panic::resume_unwind(err.into_panic());
    }
}

async fn docker_secret_ids(docker: &Docker, name: &str) -> Vec<String> {
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![format!("com.openfaas.secret={name}")],
    )]);
    docker
        .list_secrets(Some(ListSecretsOptions {
            filters: Some(filters),
        }))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| s.id)
        .collect()
}

async fn scenario(provider: SwarmProvider, docker: Docker, prefix: String) {
    let info = provider.info();
    assert_eq!(info.orchestration, "swarm");
    assert!(
        info.version.commit_message.contains("docker engine 20."),
        "{info:?}"
    );
    assert_eq!(provider.engine().api_version, "1.41");

    // one namespace
    assert_eq!(provider.namespaces().await.unwrap(), [NS]);
    let other = FunctionDeployment::new(format!("{prefix}-x"), common::WATCHDOG_IMAGE)
        .with_namespace("elsewhere");
    assert_eq!(
        provider.deploy(other).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        provider.secrets("elsewhere").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // a deployment with everything
    let secret = format!("{prefix}-key");
    let mut s = Secret::new(secret.as_str(), "one");
    s.namespace = NS.into();
    provider.create_secret(s.clone()).await.unwrap();
    let name = format!("{prefix}-fn");
    let mut d = FunctionDeployment::new(name.as_str(), common::WATCHDOG_IMAGE)
        .with_env_process("cat")
        .with_env("write_debug", "true")
        .with_secret(secret.as_str())
        .with_label("team", "swarm")
        .with_annotation("topic", "orders");
    d.limits = Some(FunctionResources {
        memory: "64Mi".into(),
        cpu: "0.5".into(),
    });
    d.requests = Some(FunctionResources {
        memory: "32m".into(),
        cpu: "100m".into(),
    });
    d.constraints = vec!["node.platform.os==linux".into()];
    d.read_only_root_filesystem = true;
    provider.deploy(d.clone()).await.unwrap();

    let service = docker.inspect_service(&name, None).await.unwrap();
    let spec = service.spec.unwrap();
    let labels = spec.labels.unwrap();
    assert_eq!(labels["com.openfaas.function"], name);
    assert_eq!(labels["com.openfaas.annotations.topic"], "orders");
    let task = spec.task_template.unwrap();
    let resources = task.resources.unwrap();
    assert_eq!(
        resources.limits.as_ref().unwrap().memory_bytes,
        Some(64 << 20)
    );
    assert_eq!(
        resources.limits.as_ref().unwrap().nano_cpus,
        Some(500_000_000)
    );
    assert_eq!(
        resources.reservations.as_ref().unwrap().memory_bytes,
        Some(32 << 20)
    );
    assert_eq!(
        task.placement.unwrap().constraints.unwrap(),
        ["node.platform.os==linux"]
    );
    let container = task.container_spec.unwrap();
    assert_eq!(container.read_only, Some(true));
    assert!(container.env.unwrap().contains(&"fprocess=cat".to_owned()));
    let mounted = &container.secrets.unwrap()[0];
    assert_eq!(
        mounted.file.as_ref().unwrap().name.as_deref(),
        Some(format!("/var/openfaas/secrets/{secret}").as_str())
    );
    assert_eq!(
        spec.update_config.unwrap().order,
        Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST)
    );
    assert_eq!(
        spec.endpoint_spec.unwrap().mode,
        Some(EndpointSpecModeEnum::DNSRR)
    );

    let status = provider.get(&name, NS).await.unwrap();
    assert_eq!(status.limits, d.limits);
    assert_eq!(status.secrets, std::slice::from_ref(&secret));
    assert!(status.read_only_root_filesystem);

    let endpoint = common::wait_for("a ready replica", READY, || async {
        provider
            .endpoints(&name, NS)
            .await
            .unwrap()
            .into_iter()
            .next()
    })
    .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let echo = http
        .post(format!("http://{}/", endpoint.authority))
        .body("ping")
        .send()
        .await
        .unwrap();
    assert_eq!(echo.text().await.unwrap(), "ping");

    // a secret in use cannot be deleted, and stays
    let err = provider.delete_secret(&secret, NS).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    assert!(
        provider
            .secrets(NS)
            .await
            .unwrap()
            .iter()
            .any(|s| s.name == secret)
    );

    // logs: follow sees a new line, tail and since bound the history
    let start = Utc::now();
    let mut request = LogRequest::new(name.as_str(), NS);
    request.follow = true;
    request.tail = Some(0);
    let mut follow = provider.logs(request).await.unwrap();
    let marker = format!("marker{}", common::run_id());
    let found = tokio::time::timeout(READY, async {
        let invoke = async {
            for _ in 0..100 {
                let _ = http
                    .post(format!("http://{}/?{marker}", endpoint.authority))
                    .body("x")
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        tokio::pin!(invoke);
        loop {
            tokio::select! {
                line = follow.next() => {
                    let line = line.expect("the follow stream ended").expect("a log line");
                    if line.text.contains(&marker) {
                        return line;
                    }
                }
                () = &mut invoke => panic!("no log line with {marker}"),
            }
        }
    })
    .await
    .expect("the followed logs did not show the invocation");
    assert_eq!(found.name, name);
    assert_eq!(found.namespace, NS);
    assert!(!found.instance.is_empty());
    assert!(found.timestamp >= start - chrono::Duration::seconds(5));
    drop(follow);

    // Docker's service log history lags behind a fresh task (moby/moby#34195, #33183): wait for it
    common::wait_for("the log history to show the invocation", READY, || async {
        let all: Vec<_> = provider
            .logs(LogRequest::new(name.as_str(), NS))
            .await
            .unwrap()
            .collect()
            .await;
        all.iter()
            .any(|l| l.as_ref().is_ok_and(|l| l.text.contains(&marker)))
            .then_some(())
    })
    .await;
    let mut request = LogRequest::new(name.as_str(), NS);
    request.tail = Some(1);
    let tail: Vec<_> = provider.logs(request).await.unwrap().collect().await;
    assert_eq!(tail.len(), 1, "{tail:?}");
    let mut request = LogRequest::new(name.as_str(), NS);
    request.since = Some(Utc::now() + chrono::Duration::hours(1));
    let future: Vec<_> = provider.logs(request).await.unwrap().collect().await;
    assert!(future.is_empty(), "{future:?}");
    let mut request = LogRequest::new(name.as_str(), NS);
    request.instance = Some(found.instance.clone());
    let mine: Vec<_> = provider.logs(request).await.unwrap().collect().await;
    assert!(!mine.is_empty());
    assert!(
        mine.iter()
            .all(|l| l.as_ref().unwrap().instance == found.instance)
    );

    // rotation: a new Docker secret, the function moved to it, the old one gone
    let before = docker_secret_ids(&docker, &secret).await;
    assert_eq!(before.len(), 1);
    s.value = "two".into();
    provider.update_secret(s.clone()).await.unwrap();
    let after = docker_secret_ids(&docker, &secret).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before);
    let service = docker.inspect_service(&name, None).await.unwrap();
    let refs = service
        .spec
        .unwrap()
        .task_template
        .unwrap()
        .container_spec
        .unwrap()
        .secrets
        .unwrap();
    assert_eq!(refs[0].secret_id.as_ref(), Some(&after[0]));
    assert_eq!(
        provider.get(&name, NS).await.unwrap().secrets,
        std::slice::from_ref(&secret)
    );

    // an unsatisfiable constraint: deployed, never available
    let arm = format!("{prefix}-arm");
    let mut d = FunctionDeployment::new(arm.as_str(), common::WATCHDOG_IMAGE);
    d.constraints = vec!["node.platform.arch==armv7l".into()];
    provider.deploy(d).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = provider.get(&arm, NS).await.unwrap();
    assert_eq!((status.replicas, status.available_replicas), (1, 0));
    assert!(provider.endpoints(&arm, NS).await.unwrap().is_empty());

    // cleanup through the provider
    provider.delete(&arm, NS).await.unwrap();
    provider.delete(&name, NS).await.unwrap();
    common::wait_for("the secret to be free", READY, || async {
        provider.delete_secret(&secret, NS).await.ok()
    })
    .await;
    assert!(docker_secret_ids(&docker, &secret).await.is_empty());
    let listed = provider.list(NS).await.unwrap();
    assert!(
        !listed.iter().any(|f| f.name.starts_with(&prefix)),
        "{listed:?}"
    );
}
