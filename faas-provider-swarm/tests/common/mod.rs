//! Shared setup of the tests that need a real Docker Swarm (`scripts/docker.sh` started it).

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{ListSecretsOptions, ListServicesOptions};

/// The watchdog image (fwatchdog + busybox, `fprocess=cat`).
pub const WATCHDOG_IMAGE: &str = "faas-rs/fwatchdog:dev";
/// The SDK example function image.
pub const HELLO_IMAGE: &str = "faas-rs/hello:dev";
/// The gateway image.
pub const FAAS_IMAGE: &str = "faas-rs/faas:dev";

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A short unique id for the names of one test run.
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// Makes sure the images exist, building the missing ones with `scripts/build-images.sh`.
pub async fn ensure_images(images: &[&str]) {
    let docker = Docker::connect_with_defaults().expect("docker client");
    let mut missing = Vec::new();
    for image in images {
        if docker.inspect_image(image).await.is_err() {
            let short = image
                .trim_start_matches("faas-rs/")
                .trim_end_matches(":dev");
            missing.push(short.to_owned());
        }
    }
    if missing.is_empty() {
        return;
    }
    let status = Command::new(root().join("scripts/build-images.sh"))
        .args(&missing)
        .env(
            "PROFILE",
            std::env::var("PROFILE").unwrap_or_else(|_| "dev".into()),
        )
        .status()
        .expect("run scripts/build-images.sh");
    assert!(
        status.success(),
        "scripts/build-images.sh {missing:?} failed"
    );
}

/// Names of the services and secrets currently on the engine.
pub async fn engine_objects(docker: &Docker) -> (Vec<String>, Vec<String>) {
    let mut services: Vec<String> = docker
        .list_services(None::<ListServicesOptions>)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| s.spec.and_then(|s| s.name))
        .collect();
    let mut secrets: Vec<String> = docker
        .list_secrets(None::<ListSecretsOptions>)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| s.spec.and_then(|s| s.name))
        .collect();
    services.sort();
    secrets.sort();
    (services, secrets)
}

/// Removes every service and secret whose name starts with `prefix`, and network `network`
/// (waiting, bounded, until its tasks are gone so that the network can go).
pub async fn cleanup(docker: &Docker, prefix: &str, network: Option<&str>) {
    let (services, secrets) = engine_objects(docker).await;
    for service in services.iter().filter(|s| s.starts_with(prefix)) {
        let _ = docker.delete_service(service).await;
    }
    for secret in secrets.iter().filter(|s| s.starts_with(prefix)) {
        let _ = docker.delete_secret(secret).await;
    }
    if let Some(network) = network {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match docker.remove_network(network).await {
                Ok(()) => break,
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
}

/// Polls `check` every 200 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
