//! The local provider behind the faas-core gateway (`oneshot`, no socket): deploy through the
//! OpenFaaS API, invoke, and scale down or roll an update under load without a failed request.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{NS, READY, open, ready, script, wait_for};
use faas_core::Provider;
use faas_core::gateway::Gateway;
use faas_core::invoke::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn call(
    gateway: &Gateway,
    method: &str,
    uri: &str,
    body: impl Into<Body>,
) -> (StatusCode, Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(body.into())
        .unwrap();
    let response = tokio::time::timeout(READY, gateway.clone().oneshot(request))
        .await
        .expect("a response within the timeout")
        .unwrap();
    let status = response.status();
    let body = tokio::time::timeout(READY, response.into_body().collect())
        .await
        .expect("a body within the timeout")
        .expect("a body")
        .to_bytes();
    (status, body)
}

/// Runs `clients` loops of `POST /function/{name}` until `stop`; returns every answer.
fn load(
    gateway: &Gateway,
    name: &str,
    clients: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<(StatusCode, String)>>> {
    (0..clients)
        .map(|c| {
            let (gateway, stop, uri) = (gateway.clone(), stop.clone(), format!("/function/{name}"));
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in 0..100_000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let (status, body) = call(&gateway, "POST", &uri, format!("{c}-{i}")).await;
                    answers.push((status, String::from_utf8_lossy(&body).into_owned()));
                }
                answers
            })
        })
        .collect()
}

async fn collect(
    clients: Vec<tokio::task::JoinHandle<Vec<(StatusCode, String)>>>,
) -> Vec<(StatusCode, String)> {
    let mut all = Vec::new();
    for client in clients {
        all.extend(client.await.expect("a load client panicked"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_invoke_scale_and_update_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = tempfile::tempdir().unwrap();
    let provider = open(dir.path()).await;
    let gateway = Gateway::builder(Arc::new(provider.clone())).build();

    // deploy as faas-cli does; a deployment without envProcess is refused and creates nothing
    let (status, body) = call(
        &gateway,
        "POST",
        "/system/functions",
        r#"{"service":"noproc","image":"local"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
    assert!(
        String::from_utf8_lossy(&body).contains("envProcess"),
        "{body:?}"
    );
    let cmd = script(scripts.path(), "version.sh", r#"echo "v$VERSION $(cat)""#);
    let deployment = serde_json::json!({
        "service": "echo", "image": "local", "envProcess": cmd, "envVars": {"VERSION": "1"}
    });
    let (status, body) = call(
        &gateway,
        "POST",
        "/system/functions",
        deployment.to_string(),
    )
    .await;
    assert!(status.is_success(), "{status} {body:?}");
    let (_, list) = call(&gateway, "GET", "/system/functions", Body::empty()).await;
    let names: Vec<String> = serde_json::from_slice::<Vec<serde_json::Value>>(&list)
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["echo"]);
    ready(&provider, "echo", 1).await;
    let (status, body) = call(&gateway, "POST", "/function/echo", "hello").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"v1 hello\n"[..]));

    // scale to 3 through the API, then down to 1 under load: every call succeeds
    let (status, _) = call(
        &gateway,
        "POST",
        "/system/scale-function/echo",
        r#"{"serviceName":"echo","replicas":3}"#,
    )
    .await;
    assert!(status.is_success(), "{status}");
    ready(&provider, "echo", 3).await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&gateway, "echo", 4, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    provider.scale("echo", NS, 1).await.unwrap();
    wait_for("the scale down to finish", READY, || async {
        let endpoints = provider.endpoints("echo", NS).await.unwrap();
        (endpoints.len() == 1).then_some(())
    })
    .await;
    // past the drain grace and the gateway's endpoint cache
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let answers = collect(clients).await;
    eprintln!("{} calls through the gateway", answers.len());
    let failed: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s != StatusCode::OK)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} calls failed during the scale down: {:?}",
        failed.len(),
        answers.len(),
        &failed[..failed.len().min(5)]
    );

    // a rolling update under load: every call succeeds, and the new version answers in the end
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&gateway, "echo", 4, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let update = serde_json::json!({
        "service": "echo", "image": "local", "envProcess": cmd, "envVars": {"VERSION": "2"}
    });
    let (status, body) = call(&gateway, "PUT", "/system/functions", update.to_string()).await;
    assert!(status.is_success(), "{status} {body:?}");
    wait_for("the new version to answer alone", READY, || async {
        let endpoints = provider.endpoints("echo", NS).await.unwrap();
        let status = provider.get("echo", NS).await.unwrap();
        (endpoints.len() == 1 && status.env_vars["VERSION"] == "2").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let answers = collect(clients).await;
    eprintln!("{} calls through the gateway", answers.len());
    let failed: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s != StatusCode::OK)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} calls failed during the update: {:?}",
        failed.len(),
        answers.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(answers.iter().any(|(_, b)| b.starts_with("v1 ")));
    assert!(
        answers.last().is_some_and(|(_, b)| b.starts_with("v2 ")),
        "{:?}",
        answers.last()
    );
    let (status, body) = call(&gateway, "POST", "/function/echo", "done").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"v2 done\n"[..]));

    // remove it
    let (status, _) = call(
        &gateway,
        "DELETE",
        "/system/functions",
        r#"{"functionName":"echo"}"#,
    )
    .await;
    assert!(status.is_success(), "{status}");
    // the gateway may route to the draining replicas while it caches their endpoints
    wait_for("404 for the removed function", READY, || async {
        let (status, _) = call(&gateway, "POST", "/function/echo", "gone").await;
        (status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    assert!(provider.list(NS).await.unwrap().is_empty());
    provider.shutdown().await;
}
