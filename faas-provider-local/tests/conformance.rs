//! The faas-core Provider conformance suite against a LocalProvider in a temporary data directory.

mod common;

use std::sync::Arc;
use std::time::Duration;

use faas_core::model::FunctionDeployment;
use faas_core::testing::provider::{ConformanceSpec, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_provider_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let provider = common::open(dir.path()).await;
    let spec =
        ConformanceSpec::new(|name| FunctionDeployment::new(name, "local").with_env_process("cat"))
            .ready_timeout(Duration::from_secs(30))
            .invalid("envProcess", |name| FunctionDeployment::new(name, "local"))
            .invalid("envProcess", |name| {
                FunctionDeployment::new(name, "local").with_env_process("  ")
            })
            .invalid("envVars.mode", |name| {
                FunctionDeployment::new(name, "local")
                    .with_env_process("cat")
                    .with_env("mode", "bogus")
            })
            .invalid("secrets[0]", |name| {
                FunctionDeployment::new(name, "local")
                    .with_env_process("cat")
                    .with_secret("not-created")
            });
    conformance(Arc::new(provider.clone()), spec).await;
    provider.shutdown().await;
}
