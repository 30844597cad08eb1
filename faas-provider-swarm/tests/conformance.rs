//! The faas-core Provider conformance suite against the real Docker Swarm of this machine.
//!
//! Run with `scripts/docker.sh && cargo nextest run -p faas-provider-swarm --run-ignored all`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use faas_core::model::{FunctionDeployment, FunctionResources};
use faas_core::testing::provider::{ConformanceSpec, conformance};
use faas_core::{ErrorKind, Provider};
use faas_provider_swarm::{Resolution, SwarmConfig, SwarmProvider};

fn spec() -> ConformanceSpec {
    ConformanceSpec::new(|name| {
        FunctionDeployment::new(name, common::WATCHDOG_IMAGE).with_env_process("cat")
    })
    .ready_timeout(Duration::from_secs(120))
    .request_timeout(Duration::from_secs(20))
    .invalid("limits.memory", |name| {
        let mut d = FunctionDeployment::new(name, common::WATCHDOG_IMAGE);
        d.limits = Some(FunctionResources {
            memory: "lots".into(),
            cpu: String::new(),
        });
        d
    })
    .invalid("constraints[0]", |name| {
        let mut d = FunctionDeployment::new(name, common::WATCHDOG_IMAGE);
        d.constraints = vec!["armv7l".into()];
        d
    })
    .invalid("secrets[0]", |name| {
        FunctionDeployment::new(name, common::WATCHDOG_IMAGE).with_secret("no-such-secret-anywhere")
    })
}

async fn run(resolution: Resolution) {
    common::ensure_images(&[common::WATCHDOG_IMAGE]).await;
    let id = common::run_id();
    let network = format!("faas-test-{id}");
    let config = SwarmConfig::default()
        .network(network.as_str())
        .resolution(resolution);
    let provider = SwarmProvider::connect(config)
        .await
        .expect("connect to the swarm");
    let docker = provider.docker().clone();
    let prefix = format!("conf{id}");
    let suite = tokio::spawn(conformance(
        Arc::new(provider) as Arc<dyn Provider>,
        spec().name_prefix(prefix.as_str()),
    ));
    let result = suite.await;
    common::cleanup(&docker, &prefix, Some(&network)).await;
    if let Err(err) = result {
        std::panic::resume_unwind(err.into_panic());
    }
}

/// The gateway on the host: replicas reached through their `mode=host` published ports.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker swarm"]
async fn conformance_with_published_ports() {
    run(Resolution::PublishedPorts).await;
}

/// A daemon that is not there is `Unavailable`, not a hang or a panic (needs no Docker: runs in
/// the fast suite).
#[tokio::test]
async fn unreachable_engine_is_unavailable() {
    let config = SwarmConfig::default().docker_host("unix:///tmp/faas-no-such-docker.sock");
    let err = SwarmProvider::connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    let config = SwarmConfig::default().docker_host("tcp://127.0.0.1:1");
    let err = SwarmProvider::connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    let config = SwarmConfig::default().docker_host("ssh://nobody@example.invalid");
    let err = SwarmProvider::connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
}

/// The images can be built through bollard's build API from the contexts the script writes.
#[tokio::test]
#[ignore = "needs docker swarm"]
async fn images_build_through_the_engine_api() {
    let contexts = std::env::temp_dir().join(format!("faas-swarm-build-{}", common::run_id()));
    let status = std::process::Command::new(common::root().join("scripts/build-images.sh"))
        .arg("fwatchdog")
        .env(
            "PROFILE",
            std::env::var("PROFILE").unwrap_or_else(|_| "dev".into()),
        )
        .env("CONTEXT_ONLY", &contexts)
        .status()
        .expect("run scripts/build-images.sh");
    assert!(status.success());
    let docker = bollard::Docker::connect_with_defaults().unwrap();
    let tag = format!("faas-rs/build-test:{}", common::run_id());
    common::build_image(&docker, &tag, &contexts.join("fwatchdog")).await;
    let image = docker.inspect_image(&tag).await.unwrap();
    let config = image.config.unwrap();
    assert_eq!(
        config.healthcheck.unwrap().test.unwrap(),
        ["CMD", "/usr/bin/fwatchdog", "healthcheck"]
    );
    let size = image.size.unwrap_or(0);
    assert!(size > 0 && size < 64 << 20, "image of {size} bytes");
    docker
        .remove_image(
            &tag,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&contexts);
}
