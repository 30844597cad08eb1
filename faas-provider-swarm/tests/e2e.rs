//! End to end on the real swarm: `faas up --provider swarm` (the real `faas` binary) on the host,
//! functions deployed, invoked, scaled, updated under traffic, given a secret and removed through
//! its REST API with a real HTTP client.
//!
//! Run with `scripts/docker.sh && cargo nextest run -p faas-provider-swarm --run-ignored all`.
//! The test builds `target/debug/faas` with `cargo build -p faas-cli` and the images with
//! `scripts/build-images.sh` when they are missing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bollard::Docker;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const READY: Duration = Duration::from_secs(120);

/// `faas up --provider swarm` as a child process, killed (by its PID) on drop.
struct Gateway {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn faas_binary() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "faas-cli"])
        .current_dir(common::root())
        .status()
        .expect("run cargo build -p faas-cli");
    assert!(status.success(), "cargo build -p faas-cli failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map_or_else(|_| common::root().join("target"), Into::into);
    target.join("debug/faas")
}

impl Gateway {
    async fn start(network: &str) -> Gateway {
        let mut child = Command::new(faas_binary())
            .args(["up", "--provider", "swarm", "--port", "0"])
            .env("FAAS_SWARM_NETWORK", network)
            .env("FAAS_SWARM_RESOLUTION", "published")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start faas up");
        let stdout = child.stdout.take().unwrap();
        let stdout = tokio::process::ChildStdout::from_std(stdout).unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                    return url.trim_end_matches('/').to_owned();
                }
            }
            panic!("faas up exited before listening");
        })
        .await
        .expect("faas up did not listen within 60s");
        // keep draining stdout so the child never blocks on a full pipe
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Gateway { child, url, http }
    }

    async fn system(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    async fn invoke(&self, name: &str, query: &str, body: &str) -> Result<(u16, String), String> {
        let response = self
            .http
            .post(format!("{}/function/{name}{query}", self.url))
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.map_err(|e| e.to_string())?))
    }

    async fn function(&self, name: &str) -> Value {
        let (status, body) = self
            .system(
                reqwest::Method::GET,
                &format!("/system/function/{name}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "get {name}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn wait_available(&self, name: &str, replicas: u64) {
        common::wait_for(
            &format!("{name} to have {replicas} available replicas"),
            READY,
            || async {
                let f = self.function(name).await;
                (f["availableReplicas"] == json!(replicas) && f["replicas"] == json!(replicas))
                    .then_some(())
            },
        )
        .await;
    }

    async fn wait_answer(
        &self,
        name: &str,
        query: &str,
        body: &str,
        expect: impl Fn(&str) -> bool,
    ) -> String {
        common::wait_for(&format!("{name} to answer as expected"), READY, || async {
            match self.invoke(name, query, body).await {
                Ok((200, text)) if expect(&text) => Some(text),
                _ => None,
            }
        })
        .await
    }

    async fn scale(&self, name: &str, replicas: u64) {
        let (status, body) = self
            .system(
                reqwest::Method::POST,
                &format!("/system/scale-function/{name}"),
                Some(json!({"serviceName": name, "replicas": replicas})),
            )
            .await;
        assert!(
            (200..300).contains(&status),
            "scale {name}: {status} {body}"
        );
    }
}

/// The `HOSTNAME=` line of `env`'s output: the container (replica) that answered.
fn hostname(env_output: &str) -> Option<String> {
    env_output
        .lines()
        .find_map(|l| l.strip_prefix("HOSTNAME="))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs docker swarm"]
async fn faas_up_on_the_host_runs_functions_on_swarm() {
    common::ensure_images(&[common::WATCHDOG_IMAGE, common::HELLO_IMAGE]).await;
    let docker = Docker::connect_with_defaults().unwrap();
    let (services_before, secrets_before) = common::engine_objects(&docker).await;
    let id = common::run_id();
    let network = format!("faas-e2e-{id}");
    let prefix = format!("e2e{id}");

    let gateway = Gateway::start(&network).await;
    let result = tokio::spawn(scenario(gateway, prefix.clone())).await;
    common::cleanup(&docker, &prefix, Some(&network)).await;
    if let Err(err) = result {
        std::panic::resume_unwind(err.into_panic());
    }

    // nothing of ours is left, nothing else was touched
    let (services_after, secrets_after) = common::engine_objects(&docker).await;
    for before in &services_before {
        assert!(
            services_after.contains(before),
            "service {before} disappeared"
        );
    }
    for before in &secrets_before {
        assert!(
            secrets_after.contains(before),
            "secret {before} disappeared"
        );
    }
}

async fn scenario(gateway: Gateway, prefix: String) {
    use reqwest::Method;
    let gateway = Arc::new(gateway);
    let who = format!("{prefix}-who");
    let hello = format!("{prefix}-hello");
    let reader = format!("{prefix}-reader");
    let secret = format!("{prefix}-key");

    let (status, info) = gateway.system(Method::GET, "/system/info", None).await;
    assert_eq!(status, 200, "{info}");
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["provider"]["orchestration"], "swarm", "{info}");

    // a secret, and functions: fwatchdog running `env`, the SDK example, a secret reader
    let (status, body) = gateway
        .system(
            Method::POST,
            "/system/secrets",
            Some(json!({"name": secret, "value": "first-value"})),
        )
        .await;
    assert!(
        (200..300).contains(&status),
        "create secret: {status} {body}"
    );
    let deployments = [
        json!({"service": who, "image": common::WATCHDOG_IMAGE, "envProcess": "env",
               "envVars": {"REVISION": "1", "healthcheck_interval": "2s"},
               "labels": {"e2e": "who"}}),
        json!({"service": hello, "image": common::HELLO_IMAGE}),
        json!({"service": reader, "image": common::WATCHDOG_IMAGE,
               "envProcess": format!("cat /var/openfaas/secrets/{secret}"),
               "secrets": [secret], "readOnlyRootFilesystem": true}),
    ];
    for deployment in &deployments {
        let (status, body) = gateway
            .system(Method::POST, "/system/functions", Some(deployment.clone()))
            .await;
        assert!(
            (200..300).contains(&status),
            "deploy {deployment}: {status} {body}"
        );
    }
    let (status, body) = gateway
        .system(
            Method::POST,
            "/system/functions",
            Some(deployments[1].clone()),
        )
        .await;
    assert_eq!(status, 409, "deploying twice: {body}");

    // invoke both kinds of function through the gateway
    gateway
        .wait_answer(&who, "", "", |t| t.contains("REVISION=1"))
        .await;
    let greeting = gateway
        .wait_answer(&hello, "?name=swarm", "", |t| t.contains("swarm"))
        .await;
    assert_eq!(greeting, "Hello, swarm!");

    // the secret is mounted and read by the function
    let value = gateway.wait_answer(&reader, "", "", |_| true).await;
    assert_eq!(value, "first-value");

    // scale 1 -> 3: invocations spread over the three replicas
    gateway.scale(&who, 3).await;
    gateway.wait_available(&who, 3).await;
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        let (status, text) = gateway.invoke(&who, "", "").await.expect("invoke who");
        assert_eq!(status, 200, "{text}");
        seen.insert(hostname(&text).expect("HOSTNAME in env output"));
        if seen.len() == 3 {
            break;
        }
    }
    assert_eq!(
        seen.len(),
        3,
        "invocations did not reach all 3 replicas: {seen:?}"
    );
    // 3 -> 1
    gateway.scale(&who, 1).await;
    gateway.wait_available(&who, 1).await;
    let f = gateway.function(&who).await;
    assert_eq!(f["replicas"], 1);

    // rolling update under continuous traffic: no request fails
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (gateway, stop, ok, who) = (gateway.clone(), stop.clone(), ok.clone(), who.clone());
        clients.push(tokio::spawn(async move {
            let mut failures: BTreeMap<String, u64> = BTreeMap::new();
            let mut revisions = BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                match gateway.invoke(&who, "", "").await {
                    Ok((200, text)) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if let Some(r) = text.lines().find_map(|l| l.strip_prefix("REVISION=")) {
                            revisions.insert(r.to_owned());
                        }
                    }
                    Ok((status, text)) => {
                        *failures.entry(format!("{status} {text}")).or_default() += 1
                    }
                    Err(e) => *failures.entry(e).or_default() += 1,
                }
            }
            (failures, revisions)
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let updated = json!({"service": who, "image": common::WATCHDOG_IMAGE, "envProcess": "env",
                         "envVars": {"REVISION": "2", "healthcheck_interval": "2s"},
                         "labels": {"e2e": "who"}});
    let (status, body) = gateway
        .system(Method::PUT, "/system/functions", Some(updated))
        .await;
    assert!((200..300).contains(&status), "update: {status} {body}");
    // until only the new revision answers, then a little longer
    gateway
        .wait_answer(&who, "", "", |t| t.contains("REVISION=2"))
        .await;
    common::wait_for("the old replica to be gone", READY, || async {
        let mut all_new = true;
        for _ in 0..10 {
            match gateway.invoke(&who, "", "").await {
                Ok((200, t)) if t.contains("REVISION=2") => {}
                _ => all_new = false,
            }
        }
        all_new.then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = BTreeMap::new();
    let mut revisions = BTreeSet::new();
    for client in clients {
        let (f, r) = client.await.unwrap();
        failures.extend(f);
        revisions.extend(r);
    }
    let served = ok.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "requests failed during the rolling update ({served} ok): {failures:?}"
    );
    assert_eq!(
        revisions,
        BTreeSet::from(["1".to_owned(), "2".to_owned()]),
        "traffic did not span the update"
    );
    eprintln!("rolling update: {served} requests, 0 failed");

    // rotating the secret rolls the reader over to the new value
    let (status, body) = gateway
        .system(
            Method::PUT,
            "/system/secrets",
            Some(json!({"name": secret, "value": "second-value"})),
        )
        .await;
    assert!(
        (200..300).contains(&status),
        "update secret: {status} {body}"
    );
    gateway
        .wait_answer(&reader, "", "", |t| t == "second-value")
        .await;

    // logs of the function
    let (status, logs) = gateway
        .system(
            Method::GET,
            &format!("/system/logs?name={who}&tail=50"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{logs}");
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON line"))
        .collect();
    assert!(!lines.is_empty(), "no log line for {who}");
    assert!(
        lines
            .iter()
            .all(|l| l["name"] == json!(who) && !l["instance"].as_str().unwrap_or("").is_empty()),
        "{lines:?}"
    );

    // delete: functions and secret, nothing else
    for name in [&who, &hello, &reader] {
        let (status, body) = gateway
            .system(
                Method::DELETE,
                "/system/functions",
                Some(json!({"functionName": name})),
            )
            .await;
        assert!(
            (200..300).contains(&status),
            "delete {name}: {status} {body}"
        );
    }
    let (status, body) = gateway
        .system(
            Method::DELETE,
            "/system/secrets",
            Some(json!({"name": secret})),
        )
        .await;
    assert!(
        (200..300).contains(&status),
        "delete secret: {status} {body}"
    );
    let (status, list) = gateway.system(Method::GET, "/system/functions", None).await;
    assert_eq!(status, 200);
    assert!(
        !list.contains(&prefix),
        "functions left after delete: {list}"
    );
    let docker = Docker::connect_with_defaults().unwrap();
    let (services, secrets) = common::engine_objects(&docker).await;
    assert!(
        !services.iter().any(|s| s.starts_with(&prefix)),
        "services left: {services:?}"
    );
    assert!(
        !secrets.iter().any(|s| s.starts_with(&prefix)),
        "secrets left: {secrets:?}"
    );
}
