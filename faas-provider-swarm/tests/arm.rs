//! The images of a Raspberry Pi cluster: `ARCH=arm64 scripts/build-images.sh hello` cross-compiles
//! the SDK example and the watchdog for `aarch64-unknown-linux-musl` into a `FROM scratch` image for
//! `linux/arm64`, and the Swarm provider runs it as a function like any other. On this x86 host the
//! container runs under qemu-user-static (`scripts/install-deps.sh` installs it, `scripts/docker.sh`
//! registers it); on a Pi it runs natively. The deployment is pinned with the constraints a mixed
//! cluster uses (`node.platform.os`), and the image's architecture is checked.
//!
//! Run with `scripts/docker.sh && cargo test -p faas-provider-swarm --test arm -- --ignored`.

mod common;

use std::process::Command;
use std::time::Duration;

use faas_core::Provider;
use faas_core::model::FunctionDeployment;
use faas_provider_swarm::{SwarmConfig, SwarmProvider};

const READY: Duration = Duration::from_secs(180);
const NS: &str = "openfaas-fn";
const IMAGE: &str = "faas-rs/hello:dev-arm64";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker swarm and qemu-user-static"]
async fn an_arm64_function_image_runs_as_a_swarm_service() {
    let status = Command::new(common::root().join("scripts/build-images.sh"))
        .arg("hello")
        .env("ARCH", "arm64")
        .env(
            "PROFILE",
            std::env::var("PROFILE").unwrap_or_else(|_| "dev".into()),
        )
        .status()
        .expect("run scripts/build-images.sh");
    assert!(
        status.success(),
        "ARCH=arm64 scripts/build-images.sh hello failed"
    );

    let id = common::run_id();
    let network = format!("faas-arm-{id}");
    let provider = SwarmProvider::connect(SwarmConfig::default().network(network.as_str()))
        .await
        .expect("connect");
    let docker = provider.docker().clone();
    let image = docker.inspect_image(IMAGE).await.expect("the arm64 image");
    assert_eq!(image.architecture.as_deref(), Some("arm64"));
    assert_eq!(image.os.as_deref(), Some("linux"));

    let name = format!("arm{id}-hello");
    let result = tokio::spawn({
        let name = name.clone();
        async move {
            let mut deployment = FunctionDeployment::new(name.as_str(), IMAGE);
            deployment.constraints = vec!["node.platform.os==linux".into()];
            provider.deploy(deployment).await.expect("deploy");
            let endpoint = common::wait_for("a ready arm64 replica", READY, || async {
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
            let answer = http
                .get(format!("http://{}/", endpoint.authority))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            assert_eq!(answer.text().await.unwrap(), "Hello, world!");
            // Its HEALTHCHECK (`fwatchdog healthcheck`, arm64 too) passes under emulation.
            common::wait_for("the replica to be healthy", READY, || async {
                let status = provider.get(&name, NS).await.unwrap();
                (status.available_replicas == 1).then_some(())
            })
            .await;
            provider.delete(&name, NS).await.unwrap();
        }
    })
    .await;
    common::cleanup(&docker, &format!("arm{id}"), Some(&network)).await;
    if let Err(err) = result {
        std::panic::resume_unwind(err.into_panic());
    }
}
