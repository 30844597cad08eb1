//! `connect` against an engine that answers Docker's recorded JSON (`tests/data/engine_*.json`,
//! recorded from this machine's Docker 20.10.24): API version negotiation, the swarm manager
//! check and the function network, fast and without Docker. The real engine is exercised by the
//! ignored suites.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use faas_core::{ErrorKind, Provider};
use faas_provider_swarm::{Error, SwarmConfig, SwarmProvider};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

const VERSION: &str = include_str!("data/engine_version.json");
const INFO: &str = include_str!("data/engine_info.json");
const NETWORK: &str = include_str!("data/engine_network.json");
const SERVICE: &str = include_str!("data/service.json");
const TASKS: &str = include_str!("data/tasks.json");
/// The id of the recorded service, and of the secret it mounts.
const SERVICE_ID: &str = "iuf85ghwi4t4ndv9utey4ipqi";
const SECRET_ID: &str = "4qju17lp3ziy794phydoms8jz";

/// What the fake engine answers.
#[derive(Clone)]
struct Engine {
    version: Value,
    info: Value,
    /// `None`: the function network does not exist (404), and creating it succeeds.
    network: Option<Value>,
    /// How many service updates to refuse as `update out of sequence` before accepting one.
    out_of_sequence: Arc<AtomicUsize>,
}

impl Engine {
    fn recorded() -> Engine {
        Engine {
            version: serde_json::from_str(VERSION).unwrap(),
            info: serde_json::from_str(INFO).unwrap(),
            network: Some(serde_json::from_str(NETWORK).unwrap()),
            out_of_sequence: Arc::default(),
        }
    }

    fn out_of_sequence(self, times: usize) -> Engine {
        self.out_of_sequence.store(times, Ordering::SeqCst);
        self
    }

    fn api_version(mut self, version: &str) -> Engine {
        self.version["ApiVersion"] = version.into();
        self
    }

    fn swarm(mut self, state: &str, manager: bool) -> Engine {
        self.info["Swarm"]["LocalNodeState"] = state.into();
        self.info["Swarm"]["ControlAvailable"] = manager.into();
        self
    }
}

/// A request the fake engine received: method, path, body and query.
type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// Serves `engine` on 127.0.0.1:0 until the test ends; returns its `tcp://` address and the
/// requests it receives.
async fn serve(engine: Engine) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = format!("tcp://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (engine, log) = (engine.clone(), log.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let (engine, log) = (engine.clone(), log.clone());
                    async move {
                        let method = request.method().to_string();
                        let path = request.uri().path().to_owned();
                        let query = request.uri().query().unwrap_or_default().to_owned();
                        let body = request.into_body().collect().await?.to_bytes();
                        log.lock().unwrap().push((
                            method.clone(),
                            path.clone(),
                            String::from_utf8_lossy(&body).into_owned(),
                            query,
                        ));
                        let (status, json) = answer(&engine, &method, &path);
                        let response = hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .header("api-version", "1.41")
                            .body(Full::new(Bytes::from(json.to_string())))
                            .unwrap();
                        Ok::<_, hyper::Error>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (host, seen)
}

fn answer(engine: &Engine, method: &str, path: &str) -> (u16, Value) {
    let not_found = |what: &str| (404, serde_json::json!({ "message": what }));
    match (method, path.rsplit_once("/v1.").map_or(path, |(_, p)| p)) {
        (_, p) if p.ends_with("/version") => (200, engine.version.clone()),
        (_, p) if p.ends_with("/info") => (200, engine.info.clone()),
        ("GET", p) if p.contains("/networks/") => match &engine.network {
            Some(network) => (200, network.clone()),
            None => not_found("network func_functions not found"),
        },
        ("GET", p) if p.ends_with("/services") => (
            200,
            Value::Array(vec![serde_json::from_str(SERVICE).unwrap()]),
        ),
        ("GET", p) if p.ends_with("/tasks") => {
            // the recorded tasks, as replicas of the recorded service
            let service: Value = serde_json::from_str(SERVICE).unwrap();
            let mut tasks: Value = serde_json::from_str(TASKS).unwrap();
            for task in tasks.as_array_mut().unwrap() {
                task["ServiceID"] = service["ID"].clone();
            }
            (200, tasks)
        }
        ("POST", p) if p.ends_with("/networks/create") => (
            201,
            serde_json::json!({ "Id": "k8ucrpg41153f4sr27jp4tguo", "Warning": "" }),
        ),
        ("GET", p) if p.ends_with("/services/rec") => (200, serde_json::from_str(SERVICE).unwrap()),
        ("POST", p) if p.ends_with(&format!("/services/{SERVICE_ID}/update")) => {
            let refuse = engine
                .out_of_sequence
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if refuse {
                (
                    500,
                    serde_json::json!({ "message": "rpc error: code = Unknown desc = update out of sequence" }),
                )
            } else {
                (200, serde_json::json!({ "Warnings": null }))
            }
        }
        // the function's secret, as faas-rs created it
        ("GET", p) if p.ends_with("/secrets") => (
            200,
            serde_json::json!([{
                "ID": SECRET_ID,
                "CreatedAt": "2026-11-23T11:53:30.0Z",
                "Spec": {
                    "Name": "rec-key",
                    "Labels": {
                        "com.openfaas.secret": "rec-key",
                        "com.openfaas.namespace": "openfaas-fn",
                        "com.faas-rs.managed": "true"
                    }
                }
            }]),
        ),
        ("POST", p) if p.ends_with("/secrets/create") => (
            201,
            serde_json::json!({ "ID": "newsecretrevision00000000" }),
        ),
        ("DELETE", p) if p.ends_with(&format!("/secrets/{SECRET_ID}")) => (204, Value::Null),
        _ => not_found("page not found"),
    }
}

/// The API versions the requests named (`None`: unversioned, the engine's own version).
fn versions(seen: &Seen) -> Vec<(String, Option<String>)> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(_, path, _, _)| {
            let first = path.split('/').nth(1).unwrap_or_default();
            let version = first.strip_prefix("v1.").map(|minor| format!("1.{minor}"));
            (path.clone(), version)
        })
        .collect()
}

/// Lists the functions of the recorded engine: the task list (the provider's own client) names
/// the negotiated version, and no request names a newer one than the engine's.
async fn check_versions(provider: &SwarmProvider, seen: &Seen, engine_api: &str) {
    let list = provider.list("openfaas-fn").await.expect("list");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].name, "rec");
    assert_eq!((list[0].replicas, list[0].available_replicas), (2, 2));
    let seen = versions(seen);
    let tasks = seen
        .iter()
        .find(|(path, _)| path.ends_with("/tasks"))
        .expect("the tasks were listed");
    assert_eq!(tasks.1.as_deref(), Some(engine_api), "{seen:?}");
    for (path, version) in &seen {
        assert!(
            version.as_deref().is_none_or(|v| v == engine_api),
            "{path} names another API version than the engine's {engine_api}"
        );
    }
}

#[tokio::test]
async fn negotiates_the_engines_api_version() {
    let (host, seen) = serve(Engine::recorded()).await;
    let provider = SwarmProvider::connect(SwarmConfig::default().docker_host(host))
        .await
        .expect("connect to the recorded engine");
    let engine = provider.engine();
    assert_eq!(engine.api_version, "1.41");
    assert_eq!(engine.version, "20.10.24+dfsg1");
    assert_eq!((engine.nodes, engine.managers), (1, 1));
    let info = provider.info();
    assert_eq!(info.orchestration, "swarm");
    assert_eq!(info.name, "faas-provider-swarm");
    assert!(
        info.version.commit_message.contains("20.10.24")
            && info.version.commit_message.contains("1.41"),
        "{info:?}"
    );
    check_versions(&provider, &seen, "1.41").await;

    // an older engine: every later request speaks its version
    let (host, seen) = serve(Engine::recorded().api_version("1.40")).await;
    let provider = SwarmProvider::connect(SwarmConfig::default().docker_host(host))
        .await
        .expect("connect to an API 1.40 engine");
    assert_eq!(provider.engine().api_version, "1.40");
    check_versions(&provider, &seen, "1.40").await;
}

#[tokio::test]
async fn an_engine_that_is_not_a_swarm_manager_is_unavailable() {
    for (state, manager) in [("inactive", false), ("active", false), ("pending", false)] {
        let (host, seen) = serve(Engine::recorded().swarm(state, manager)).await;
        let err = SwarmProvider::connect(SwarmConfig::default().docker_host(host))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::NotManager { state: s } if s == state),
            "{state}: {err:?}"
        );
        assert!(err.to_string().contains("docker swarm init"), "{err}");
        let core: faas_core::Error = err.into();
        assert_eq!(core.kind(), ErrorKind::Unavailable);
        // nothing was created on an engine that is not a manager
        assert!(
            !seen.lock().unwrap().iter().any(|(m, _, _, _)| m == "POST"),
            "{state}: {:?}",
            seen.lock().unwrap()
        );
    }
}

#[tokio::test]
async fn a_missing_function_network_is_created_attachable() {
    let engine = Engine {
        network: None,
        ..Engine::recorded()
    };
    let (host, seen) = serve(engine).await;
    SwarmProvider::connect(SwarmConfig::default().docker_host(host))
        .await
        .expect("connect");
    let seen = seen.lock().unwrap();
    let (_, _, body, _) = seen
        .iter()
        .find(|(m, p, _, _)| m == "POST" && p.ends_with("/networks/create"))
        .expect("the network was created");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["Name"], "func_functions");
    assert_eq!(body["Driver"], "overlay");
    assert_eq!(body["Attachable"], true);
    assert_eq!(body["Labels"]["com.faas-rs.managed"], "true");
}

/// The service updates the fake engine received: their query and their body.
fn updates(seen: &Seen) -> Vec<(String, Value)> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(m, p, _, _)| m == "POST" && p.ends_with("/update"))
        .map(|(_, _, body, query)| (query.clone(), serde_json::from_str(body).unwrap()))
        .collect()
}

/// The recorded service's spec, as the engine wrote it (healthcheck included).
fn recorded_spec() -> Value {
    let service: Value = serde_json::from_str(SERVICE).unwrap();
    service["Spec"].clone()
}

#[tokio::test]
async fn a_scale_writes_back_the_engines_spec_with_only_the_replica_count_changed() {
    let (host, seen) = serve(Engine::recorded()).await;
    let provider = SwarmProvider::connect(SwarmConfig::default().docker_host(host))
        .await
        .expect("connect");
    provider.scale("rec", "openfaas-fn", 3).await.unwrap();
    let written = updates(&seen);
    assert_eq!(written.len(), 1, "{written:?}");
    let (query, body) = &written[0];
    // the version the spec was read at, so that a concurrent change is refused, not overwritten
    assert!(query.contains("version=610"), "{query}");
    let mut expected = recorded_spec();
    expected["Mode"]["Replicated"]["Replicas"] = 3.into();
    assert_eq!(body, &expected);
    assert_eq!(
        body["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Interval"],
        1_000_000_000
    );

    // the count it has already: nothing to write
    provider.scale("rec", "openfaas-fn", 2).await.unwrap();
    assert_eq!(updates(&seen).len(), 1);
}

#[tokio::test]
async fn a_scale_retries_when_the_service_changed_in_between() {
    let (host, seen) = serve(Engine::recorded().out_of_sequence(2)).await;
    let provider = SwarmProvider::connect(SwarmConfig::default().docker_host(host))
        .await
        .expect("connect");
    provider.scale("rec", "openfaas-fn", 4).await.unwrap();
    let updates = updates(&seen);
    assert_eq!(updates.len(), 3, "two refused, the third accepted");
    for (_, body) in &updates {
        assert_eq!(body["Mode"]["Replicated"]["Replicas"], 4);
    }

    // an engine that keeps refusing: a conflict, not an endless loop
    let (host, _) = serve(Engine::recorded().out_of_sequence(usize::MAX)).await;
    let provider = SwarmProvider::connect(SwarmConfig::default().docker_host(host))
        .await
        .expect("connect");
    let err = provider.scale("rec", "openfaas-fn", 4).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err:?}");
    assert!(err.message().contains("kept changing"), "{err:?}");
}

#[tokio::test]
async fn a_secret_rotation_changes_only_the_secret_reference() {
    let (host, seen) = serve(Engine::recorded()).await;
    let provider = SwarmProvider::connect(SwarmConfig::default().docker_host(host))
        .await
        .expect("connect");
    let mut secret = faas_core::model::Secret::new("rec-key", "new value");
    secret.namespace = "openfaas-fn".into();
    provider.update_secret(secret).await.unwrap();
    let updates = updates(&seen);
    assert_eq!(updates.len(), 1, "{updates:?}");
    let (_, body) = &updates[0];
    let name = body["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretName"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(name.starts_with("rec-key."), "{name}");
    let mut expected = recorded_spec();
    let mounted = &mut expected["TaskTemplate"]["ContainerSpec"]["Secrets"][0];
    mounted["SecretID"] = "newsecretrevision00000000".into();
    mounted["SecretName"] = name.into();
    assert_eq!(body, &expected);
    // the old revision is removed once no function mounts it
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|(m, p, _, _)| m == "DELETE" && p.ends_with(SECRET_ID))
    );
}
