//! Changing a running function on the real swarm changes only what the change means: a scale
//! keeps the running replicas (their task ids survive a scale up and a scale down) and the spec
//! Docker returns afterwards differs from the one before only in the replica count; a secret
//! rotation differs only in the secret reference.
//!
//! The spec is read with `docker service inspect` (the engine's JSON, not through bollard's models,
//! which drop the healthcheck).
//!
//! Run with `scripts/docker.sh && flock /tmp/faas-external.lock cargo test -p faas-provider-swarm
//! --test update -- --ignored --test-threads=1`.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::ListTasksOptions;
use faas_core::Provider;
use faas_core::model::{FunctionDeployment, Secret};
use faas_provider_swarm::SwarmConfig;
use serde_json::Value;

const READY: Duration = Duration::from_secs(120);
const NS: &str = "openfaas-fn";

/// `docker service inspect NAME`: the service as the engine answers it.
fn inspect(name: &str) -> Value {
    let out = std::process::Command::new("docker")
        .args(["service", "inspect", name])
        .output()
        .expect("run docker service inspect");
    assert!(
        out.status.success(),
        "docker service inspect {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut services: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(services.len(), 1, "{services:?}");
    services.remove(0)
}

/// The ids of the service's tasks that are running and meant to run.
async fn running_tasks(docker: &Docker, service: &str) -> BTreeSet<String> {
    let filters = HashMap::from([
        ("service".to_owned(), vec![service.to_owned()]),
        ("desired-state".to_owned(), vec!["running".to_owned()]),
    ]);
    let tasks = docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
        .unwrap();
    tasks
        .into_iter()
        .filter(|t| {
            t.status
                .as_ref()
                .and_then(|s| s.state.as_ref())
                .is_some_and(|s| s.to_string() == "running")
        })
        .filter_map(|t| t.id)
        .collect()
}

/// Waits until exactly `n` tasks run (and nothing else is meant to run) and returns their ids.
async fn wait_running(docker: &Docker, service: &str, n: usize) -> BTreeSet<String> {
    common::wait_for(
        &format!("{n} running replicas of {service}"),
        READY,
        || async {
            let running = running_tasks(docker, service).await;
            let filters = HashMap::from([
                ("service".to_owned(), vec![service.to_owned()]),
                ("desired-state".to_owned(), vec!["running".to_owned()]),
            ]);
            let meant = docker
                .list_tasks(Some(ListTasksOptions {
                    filters: Some(filters),
                }))
                .await
                .unwrap()
                .len();
            (running.len() == n && meant == n).then_some(running)
        },
    )
    .await
}

/// The spec `before` with the value at `pointer` replaced by `value`.
fn changed(before: &Value, pointer: &str, value: Value) -> Value {
    let mut expected = before.clone();
    *expected
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} in {before}")) = value;
    expected
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker swarm"]
async fn a_scale_keeps_the_running_replicas_and_changes_only_the_replica_count() {
    common::with_provider(
        "scale",
        SwarmConfig::default(),
        |provider, docker, prefix| async move {
            let name = format!("{prefix}-fn");
            let deployment = FunctionDeployment::new(name.as_str(), common::WATCHDOG_IMAGE)
                .with_env_process("cat");
            provider.deploy(deployment.clone()).await.unwrap();
            let first = wait_running(&docker, &name, 1).await;
            let before = inspect(&name);
            assert!(
                before["Spec"]["TaskTemplate"]["ContainerSpec"]
                    .get("Healthcheck")
                    .is_some(),
                "the function has a healthcheck: {before}"
            );

            // up: the running replica keeps running, the spec changes only in its count
            provider.scale(&name, NS, 3).await.unwrap();
            let after = inspect(&name);
            assert_eq!(
                after["Spec"],
                changed(&before["Spec"], "/Mode/Replicated/Replicas", 3.into())
            );
            assert!(
                after.get("UpdateStatus").is_none(),
                "a scale started a rolling update: {}",
                after["UpdateStatus"]
            );
            let three = wait_running(&docker, &name, 3).await;
            assert!(first.is_subset(&three), "{first:?} replaced: {three:?}");

            // down: the replicas left are replicas that ran before, none new
            provider.scale(&name, NS, 2).await.unwrap();
            let down = inspect(&name);
            assert_eq!(
                down["Spec"],
                changed(&before["Spec"], "/Mode/Replicated/Replicas", 2.into())
            );
            assert!(
                down.get("UpdateStatus").is_none(),
                "{}",
                down["UpdateStatus"]
            );
            let two = wait_running(&docker, &name, 2).await;
            assert!(two.is_subset(&three), "{two:?} are not among {three:?}");

            // the count it has: nothing is written (the version stays)
            provider.scale(&name, NS, 2).await.unwrap();
            assert_eq!(inspect(&name)["Version"], down["Version"]);

            // the function still answers on the replicas it kept
            let status = provider.get(&name, NS).await.unwrap();
            assert_eq!(status.replicas, 2);
            assert_eq!(running_tasks(&docker, &name).await, two);
            provider.delete(&name, NS).await.unwrap();
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker swarm"]
async fn a_secret_rotation_changes_only_the_secret_reference() {
    common::with_provider(
        "rot",
        SwarmConfig::default(),
        |provider, docker, prefix| async move {
            let secret = format!("{prefix}-key");
            let other = format!("{prefix}-other");
            for (name, value) in [(&secret, "one"), (&other, "two")] {
                let mut s = Secret::new(name.as_str(), value);
                s.namespace = NS.into();
                provider.create_secret(s).await.unwrap();
            }
            let name = format!("{prefix}-fn");
            let deployment = FunctionDeployment::new(name.as_str(), common::WATCHDOG_IMAGE)
                .with_env_process("cat")
                .with_secret(secret.as_str())
                .with_secret(other.as_str());
            provider.deploy(deployment).await.unwrap();
            wait_running(&docker, &name, 1).await;
            let before = inspect(&name);

            let mut s = Secret::new(secret.as_str(), "three");
            s.namespace = NS.into();
            provider.update_secret(s).await.unwrap();
            let after = inspect(&name);
            let refs = &after["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"];
            let rotated = refs
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["File"]["Name"] == format!("/var/openfaas/secrets/{secret}"))
                .unwrap_or_else(|| panic!("{refs}"));
            assert!(
                rotated["SecretName"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{secret}.")),
                "{rotated}"
            );
            let index = refs.as_array().unwrap().iter().position(|r| r == rotated);
            let pointer = format!("/TaskTemplate/ContainerSpec/Secrets/{}", index.unwrap());
            let expected = changed(&before["Spec"], &pointer, rotated.clone());
            assert_eq!(after["Spec"], expected);
            // the other secret's reference is as it was
            assert!(
                refs.as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["SecretName"] == other.as_str())
            );
            // the replicas restart with the new file: that is the one change Swarm rolls for
            wait_running(&docker, &name, 1).await;
            provider.delete(&name, NS).await.unwrap();
            for s in [&secret, &other] {
                common::wait_for("the secret to be free", READY, || async {
                    provider.delete_secret(s, NS).await.ok()
                })
                .await;
            }
        },
    )
    .await;
}
