//! Shared setup of the tests that need a real Docker Swarm (`scripts/docker.sh` started it).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{ListSecretsOptions, ListServicesOptions};
use faas_provider_swarm::{SwarmConfig, SwarmProvider};

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

/// Makes sure the images exist. A missing one is built from the static binaries and the build
/// context `scripts/build-images.sh` prepares (`CONTEXT_ONLY`), through bollard's build API.
///
/// `FAAS_REBUILD_IMAGES=1` rebuilds them even when they exist, so that a local run tests the
/// current code rather than images left by an earlier build (CI starts without images).
pub async fn ensure_images(images: &[&str]) {
    let docker = Docker::connect_with_defaults().expect("docker client");
    let rebuild = std::env::var("FAAS_REBUILD_IMAGES").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut missing = Vec::new();
    for image in images {
        if rebuild || docker.inspect_image(image).await.is_err() {
            let short = image
                .trim_start_matches("faas-rs/")
                .trim_end_matches(":dev");
            missing.push(short.to_owned());
        }
    }
    if missing.is_empty() {
        return;
    }
    let contexts = std::env::temp_dir().join(format!("faas-swarm-contexts-{}", run_id()));
    let status = Command::new(root().join("scripts/build-images.sh"))
        .args(&missing)
        .env(
            "PROFILE",
            std::env::var("PROFILE").unwrap_or_else(|_| "dev".into()),
        )
        .env("CONTEXT_ONLY", &contexts)
        .status()
        .expect("run scripts/build-images.sh");
    assert!(
        status.success(),
        "scripts/build-images.sh {missing:?} failed"
    );
    for name in &missing {
        build_image(
            &docker,
            &format!("faas-rs/{name}:dev"),
            &contexts.join(name),
        )
        .await;
    }
    let _ = std::fs::remove_dir_all(&contexts);
}

/// Builds `context` (a directory with a Dockerfile) as `tag` through the engine's build API.
pub async fn build_image(docker: &Docker, tag: &str, context: &Path) {
    use futures::StreamExt;
    let tar = tar_directory(context).expect("tar the build context");
    let options = bollard::query_parameters::BuildImageOptions {
        t: Some(tag.to_owned()),
        rm: true,
        ..Default::default()
    };
    let mut build = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
    while let Some(step) = build.next().await {
        let step = step.unwrap_or_else(|e| panic!("building {tag}: {e}"));
        if let Some(detail) = step.error_detail {
            panic!("building {tag}: {detail:?}");
        }
    }
    docker
        .inspect_image(tag)
        .await
        .unwrap_or_else(|e| panic!("{tag} was not built: {e}"));
}

/// A ustar archive of `dir` (regular files, directories and symlinks), as the build API takes it.
pub fn tar_directory(dir: &Path) -> std::io::Result<Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<u8>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path)?;
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path)?.to_string_lossy().into_owned();
                tar_header(out, &name, mode, 0, b'2', &target)?;
            } else if meta.is_dir() {
                tar_header(out, &format!("{name}/"), mode, 0, b'5', "")?;
                walk(root, &path, out)?;
            } else {
                let data = std::fs::read(&path)?;
                tar_header(out, &name, mode, data.len() as u64, b'0', "")?;
                out.extend_from_slice(&data);
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.resize(out.len() + 1024, 0);
    Ok(out)
}

fn tar_header(
    out: &mut Vec<u8>,
    name: &str,
    mode: u32,
    size: u64,
    kind: u8,
    link: &str,
) -> std::io::Result<()> {
    if name.len() > 100 || link.len() > 100 {
        return Err(std::io::Error::other(format!(
            "path too long for ustar: {name}"
        )));
    }
    let mut header = [0u8; 512];
    let mut put = |at: usize, value: &[u8]| header[at..at + value.len()].copy_from_slice(value);
    put(0, name.as_bytes());
    put(100, format!("{mode:07o}\0").as_bytes());
    put(108, b"0000000\0");
    put(116, b"0000000\0");
    put(124, format!("{size:011o}\0").as_bytes());
    put(136, b"00000000000\0");
    put(148, b"        ");
    put(156, &[kind]);
    put(157, link.as_bytes());
    put(257, b"ustar\0");
    put(263, b"00");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&header);
    Ok(())
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

/// Connects a provider (`config`, on a network of its own), runs `scenario` with it, a Docker
/// client and a unique name prefix, and removes what the scenario created, also when it panics.
pub async fn with_provider<F, Fut>(tag: &str, config: SwarmConfig, scenario: F)
where
    F: FnOnce(SwarmProvider, Docker, String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    ensure_images(&[WATCHDOG_IMAGE]).await;
    let id = run_id();
    let network = format!("faas-{tag}-{id}");
    let prefix = format!("{tag}{id}");
    let docker = Docker::connect_with_defaults().expect("docker client");
    let provider = SwarmProvider::connect(config.network(network.as_str()))
        .await
        .expect("connect");
    let result = tokio::spawn(scenario(provider, docker.clone(), prefix.clone())).await;
    cleanup(&docker, &prefix, Some(&network)).await;
    if let Err(err) = result {
        std::panic::resume_unwind(err.into_panic());
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
