//! The production layout: the gateway (`faas up --provider swarm` in the `faas-rs/faas:dev` image)
//! runs as a Swarm service on the function network and reaches replicas at their task addresses
//! (`FAAS_SWARM_RESOLUTION=tasks`): no VIP, no published function port.
//!
//! Run with `scripts/docker.sh && cargo nextest run -p faas-provider-swarm --run-ignored all`
//! (builds the images with `scripts/build-images.sh` when missing).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum,
    Mount, MountType, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement,
};
use faas_provider_swarm::{Resolution, SwarmConfig, SwarmProvider};
use serde_json::{Value, json};

const READY: Duration = Duration::from_secs(120);

fn gateway_spec(name: &str, network: &str) -> ServiceSpec {
    ServiceSpec {
        name: Some(name.to_owned()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(common::FAAS_IMAGE.to_owned()),
                args: Some(
                    [
                        "up",
                        "--provider",
                        "swarm",
                        "--bind",
                        "0.0.0.0",
                        "--port",
                        "8080",
                    ]
                    .map(String::from)
                    .to_vec(),
                ),
                env: Some(vec![
                    format!("FAAS_SWARM_NETWORK={network}"),
                    "FAAS_SWARM_RESOLUTION=tasks".to_owned(),
                    "FAAS_DATA_DIR=/tmp/faas".to_owned(),
                    "RUST_LOG=info".to_owned(),
                ]),
                mounts: Some(vec![Mount {
                    target: Some("/var/run/docker.sock".to_owned()),
                    source: Some("/var/run/docker.sock".to_owned()),
                    typ: Some(MountType::BIND),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            placement: Some(TaskSpecPlacement {
                constraints: Some(vec!["node.role==manager".to_owned()]),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(network.to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: Some(vec![EndpointPortConfig {
                target_port: Some(8080),
                publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                ..Default::default()
            }]),
        }),
        ..Default::default()
    }
}

/// The host port the gateway task published.
async fn gateway_port(docker: &Docker, service: &str) -> u16 {
    common::wait_for("the gateway task to publish its port", READY, || async {
        let filters = HashMap::from([
            ("service".to_owned(), vec![service.to_owned()]),
            ("desired-state".to_owned(), vec!["running".to_owned()]),
        ]);
        let options = bollard::query_parameters::ListTasksOptions {
            filters: Some(filters),
        };
        let tasks = docker.list_tasks(Some(options)).await.ok()?;
        // bollard's Task carries the port status of a running task
        let task = tasks.into_iter().find(|t| {
            t.status
                .as_ref()
                .and_then(|s| s.state.as_ref())
                .map(|s| s.to_string())
                == Some("running".into())
        })?;
        task.status?
            .port_status?
            .ports?
            .into_iter()
            .find(|p| p.target_port == Some(8080))?
            .published_port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs docker swarm"]
async fn gateway_inside_the_network_reaches_task_addresses() {
    common::ensure_images(&[common::WATCHDOG_IMAGE, common::FAAS_IMAGE]).await;
    let id = common::run_id();
    let network = format!("faas-net-{id}");
    let prefix = format!("net{id}");
    // creates the function network, as the gateway would
    let provider = SwarmProvider::connect(
        SwarmConfig::default()
            .network(network.as_str())
            .resolution(Resolution::TaskAddresses),
    )
    .await
    .expect("connect");
    let docker = provider.docker().clone();
    let result = tokio::spawn(scenario(docker.clone(), network.clone(), prefix.clone())).await;
    common::cleanup(&docker, &prefix, Some(&network)).await;
    if let Err(err) = result {
        std::panic::resume_unwind(err.into_panic());
    }
}

async fn scenario(docker: Docker, network: String, prefix: String) {
    let gateway_service = format!("{prefix}-gateway");
    docker
        .create_service(gateway_spec(&gateway_service, &network), None)
        .await
        .expect("create the gateway service");
    let port = gateway_port(&docker, &gateway_service).await;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    common::wait_for("the gateway to answer /healthz", READY, || async {
        let r = http.get(format!("{url}/healthz")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;

    let name = format!("{prefix}-who");
    let deployment = json!({"service": name, "image": common::WATCHDOG_IMAGE, "envProcess": "env",
                            "labels": {"com.openfaas.scale.min": "2"}});
    let r = http
        .post(format!("{url}/system/functions"))
        .json(&deployment)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "deploy: {}",
        r.text().await.unwrap()
    );

    common::wait_for("2 available replicas", READY, || async {
        let r = http
            .get(format!("{url}/system/function/{name}"))
            .send()
            .await
            .ok()?;
        let f: Value = r.json().await.ok()?;
        (f["availableReplicas"] == json!(2)).then_some(())
    })
    .await;
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        let r = http
            .post(format!("{url}/function/{name}"))
            .body("x")
            .send()
            .await;
        let Ok(r) = r else { continue };
        if !r.status().is_success() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let text = r.text().await.unwrap();
        if let Some(host) = text.lines().find_map(|l| l.strip_prefix("HOSTNAME=")) {
            seen.insert(host.to_owned());
        }
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen.len(),
        2,
        "the in-network gateway did not reach both replicas: {seen:?}"
    );

    // nothing is published: the gateway reached the replicas at their overlay addresses
    let service = docker.inspect_service(&name, None).await.unwrap();
    let ports = service
        .spec
        .and_then(|s| s.endpoint_spec)
        .and_then(|e| e.ports);
    assert!(
        ports.unwrap_or_default().is_empty(),
        "the function publishes a port"
    );

    // the gateway's provider sees the task addresses on the overlay network
    let r = http
        .get(format!("{url}/system/function/{name}"))
        .send()
        .await
        .unwrap();
    let f: Value = r.json().await.unwrap();
    assert_eq!(f["replicas"], 2, "{f}");

    let r = http
        .delete(format!("{url}/system/functions"))
        .json(&json!({"functionName": name}))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "delete: {}",
        r.text().await.unwrap()
    );
    let r = http
        .get(format!("{url}/system/functions"))
        .send()
        .await
        .unwrap();
    let list = r.text().await.unwrap();
    assert!(!list.contains(&name), "{list}");
    docker
        .delete_service(&gateway_service)
        .await
        .expect("delete the gateway");
}
