//! The local provider's own promises: durability across restarts, crash restarts with backoff,
//! logs with follow, secrets readable by functions, draining without failed requests, rolling
//! updates without failed requests.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{NS, READY, open, post, ready, request, script, wait_for};
use faas_core::Provider;
use faas_core::model::{FunctionDeployment, LogRequest, Secret};
use futures::StreamExt;

fn cat(name: &str) -> FunctionDeployment {
    FunctionDeployment::new(name, "local").with_env_process("cat")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_and_secrets_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = tempfile::tempdir().unwrap();
    let read = script(
        scripts.path(),
        "read.sh",
        r#"cat "$secret_mount_path/token""#,
    );
    {
        let provider = open(dir.path()).await;
        provider
            .create_secret(Secret::new("token", "s3cret"))
            .await
            .unwrap();
        provider
            .deploy(cat("echo").with_env("GREETING", "hi"))
            .await
            .unwrap();
        provider
            .deploy(
                FunctionDeployment::new("reader", "local")
                    .with_env_process(read)
                    .with_secret("token"),
            )
            .await
            .unwrap();
        provider.scale("echo", NS, 2).await.unwrap();
        ready(&provider, "echo", 2).await;
        ready(&provider, "reader", 1).await;
        // dropped without shutdown, as a crash of `faas up` would
    }
    let provider = open(dir.path()).await;
    let echo = provider.get("echo", NS).await.expect("echo is back");
    assert_eq!(echo.replicas, 2);
    assert_eq!(
        echo.env_vars.get("GREETING").map(String::as_str),
        Some("hi")
    );
    for endpoint in ready(&provider, "echo", 2).await {
        assert_eq!(post(&endpoint, "again").await, (200, "again".to_owned()));
    }
    let reader = ready(&provider, "reader", 1).await;
    assert_eq!(post(&reader[0], "").await, (200, "s3cret".to_owned()));
    let secrets = provider.secrets(NS).await.unwrap();
    assert_eq!(
        secrets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["token"]
    );
    // the data directory is locked while a provider uses it
    let err = faas_provider_local::LocalProvider::open(common::config(dir.path()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, faas_provider_local::Error::Locked { .. }),
        "{err:?}"
    );
    let endpoints = provider.endpoints("echo", NS).await.unwrap();
    provider.shutdown().await;
    // after shutdown: no replica listens, changes are refused
    for endpoint in &endpoints {
        assert!(
            tokio::net::TcpStream::connect(&endpoint.authority)
                .await
                .is_err(),
            "{endpoint:?} still listens after shutdown"
        );
    }
    let err = provider.deploy(cat("late")).await.unwrap_err();
    assert_eq!(err.kind(), faas_core::ErrorKind::Unavailable);
    drop(provider);

    // shutdown keeps the functions too
    let provider = open(dir.path()).await;
    assert_eq!(provider.list(NS).await.unwrap().len(), 2);
    ready(&provider, "echo", 2).await;
    provider.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_files_the_function_reads() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = tempfile::tempdir().unwrap();
    std::fs::write(
        scripts.path().join("read.sh"),
        "cat \"$secret_mount_path/api-key\"\n",
    )
    .unwrap();
    let provider = open(dir.path()).await;
    provider
        .create_secret(Secret::new("api-key", "first"))
        .await
        .unwrap();
    // the image names a directory: it is the working directory, so a relative script path works
    let image = scripts.path().to_string_lossy().into_owned();
    let deployment = FunctionDeployment::new("reader", image.as_str())
        .with_env_process("sh read.sh")
        .with_secret("api-key");
    provider.deploy(deployment).await.unwrap();
    let endpoint = ready(&provider, "reader", 1).await.remove(0);
    assert_eq!(post(&endpoint, "").await, (200, "first".to_owned()));
    assert_eq!(provider.get("reader", NS).await.unwrap().image, image);

    // an updated secret is seen by the running function
    provider
        .update_secret(Secret::new("api-key", "second"))
        .await
        .unwrap();
    assert_eq!(post(&endpoint, "").await, (200, "second".to_owned()));

    // a deployment naming a secret that does not exist is refused and creates nothing
    let err = provider
        .deploy(cat("needs-missing").with_secret("missing"))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("secrets[0]"));
    assert!(provider.get("needs-missing", NS).await.is_err());
    provider.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_keep_every_replica_and_follow() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = tempfile::tempdir().unwrap();
    let cmd = script(
        scripts.path(),
        "log.sh",
        r#"echo "handled $(cat)" >&2; echo ok"#,
    );
    let provider = open(dir.path()).await;
    provider
        .deploy(
            FunctionDeployment::new("talker", "local")
                .with_env_process(cmd)
                .with_env("mode", "serializing"),
        )
        .await
        .unwrap();
    let endpoint = ready(&provider, "talker", 1).await.remove(0);
    assert_eq!(post(&endpoint, "one").await.0, 200);
    let history = wait_for("the first log line", READY, || async {
        let lines: Vec<_> = provider
            .logs(LogRequest::new("talker", NS))
            .await
            .unwrap()
            .collect()
            .await;
        let texts: Vec<String> = lines.into_iter().map(|l| l.unwrap().text).collect();
        texts.iter().any(|t| t == "handled one").then_some(texts)
    })
    .await;
    assert!(
        history
            .iter()
            .any(|t| t.starts_with("faas: starting replica")),
        "{history:?}"
    );

    let mut req = LogRequest::new("talker", NS);
    req.follow = true;
    req.tail = Some(1);
    let mut follow = provider.logs(req).await.unwrap();
    let last = follow.next().await.unwrap().unwrap();
    assert_eq!(last.text, "handled one");
    assert_eq!(last.name, "talker");
    assert_eq!(last.namespace, NS);
    assert_eq!(last.instance, endpoint.id);
    assert_eq!(post(&endpoint, "two").await.0, 200);
    let next = tokio::time::timeout(READY, follow.next())
        .await
        .expect("a followed line")
        .unwrap()
        .unwrap();
    assert_eq!(next.text, "handled two");

    // the stream ends when the function is deleted
    provider.delete("talker", NS).await.unwrap();
    let end = tokio::time::timeout(READY, async {
        while let Some(line) = follow.next().await {
            line.unwrap();
        }
    })
    .await;
    assert!(end.is_ok(), "the follow stream did not end after delete");
    assert!(provider.logs(LogRequest::new("talker", NS)).await.is_err());
    provider.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_replica_is_unavailable_then_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    std::fs::write(work.path().join("index.html"), "up").unwrap();
    let w = work.path().display();
    let cmd = script(
        work.path(),
        "server.sh",
        &format!(
            r#"echo start >> {w}/starts
busybox httpd -f -p 127.0.0.1:{port} -h {w} &
pid=$!
while [ ! -e {w}/crash ]; do sleep 0.05; done
rm -f {w}/crash
kill $pid
wait $pid
echo "crashing on purpose" >&2
exit 3"#
        ),
    );
    // a long first backoff, so that the unavailable window is easy to see
    let config = common::config(dir.path()).backoff(Duration::from_secs(1), Duration::from_secs(4));
    let provider = faas_provider_local::LocalProvider::open(config)
        .await
        .unwrap();
    let deployment = FunctionDeployment::new("crashy", "local")
        .with_env_process(cmd)
        .with_env("mode", "http")
        .with_env("upstream_url", format!("http://127.0.0.1:{port}"));
    provider.deploy(deployment).await.unwrap();
    let endpoint = ready(&provider, "crashy", 1).await.remove(0);
    assert_eq!(
        request(&endpoint.authority, "GET", "/index.html", "")
            .await
            .unwrap(),
        (200, "up".to_owned())
    );

    std::fs::write(work.path().join("crash"), "").unwrap();
    wait_for("the crashed replica to be unavailable", READY, || async {
        let status = provider.get("crashy", NS).await.unwrap();
        let endpoints = provider.endpoints("crashy", NS).await.unwrap();
        (status.available_replicas == 0 && endpoints.is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        provider.get("crashy", NS).await.unwrap().replicas,
        1,
        "the desired count is kept"
    );

    let endpoint = ready(&provider, "crashy", 1).await.remove(0);
    assert_eq!(
        request(&endpoint.authority, "GET", "/index.html", "")
            .await
            .unwrap(),
        (200, "up".to_owned())
    );
    let starts = std::fs::read_to_string(work.path().join("starts")).unwrap();
    assert_eq!(
        starts.lines().count(),
        2,
        "the function process was started twice"
    );
    let logs: Vec<String> = provider
        .logs(LogRequest::new("crashy", NS))
        .await
        .unwrap()
        .map(|l| l.unwrap().text)
        .collect()
        .await;
    assert!(
        logs.iter().any(|l| l.contains("crashing on purpose")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.contains("restarting in 1s")),
        "{logs:?}"
    );
    provider.shutdown().await;
}

/// Sends requests that take ~1 s to every replica, then scales to 0 while they are in flight:
/// every request completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_down_drains_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = tempfile::tempdir().unwrap();
    let cmd = script(scripts.path(), "slow.sh", "sleep 1; cat");
    let provider = open(dir.path()).await;
    provider
        .deploy(FunctionDeployment::new("slow", "local").with_env_process(cmd))
        .await
        .unwrap();
    provider.scale("slow", NS, 2).await.unwrap();
    let endpoints = ready(&provider, "slow", 2).await;

    let mut calls = Vec::new();
    for (i, endpoint) in endpoints.iter().cycle().take(6).enumerate() {
        let authority = endpoint.authority.clone();
        calls.push(tokio::spawn(async move {
            request(&authority, "POST", "/", &format!("call {i}")).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    provider.scale("slow", NS, 0).await.unwrap();
    for (i, call) in calls.into_iter().enumerate() {
        let answer = call
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("call {i} failed during the drain: {e}"));
        assert_eq!(answer, (200, format!("call {i}")));
    }
    wait_for("the replicas to be gone", READY, || async {
        provider
            .endpoints("slow", NS)
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    // once drained, the old replicas no longer listen
    let gone = wait_for("the drained watchdogs to stop listening", READY, || async {
        let mut stopped = 0;
        for endpoint in &endpoints {
            if tokio::net::TcpStream::connect(&endpoint.authority)
                .await
                .is_err()
            {
                stopped += 1;
            }
        }
        (stopped == endpoints.len()).then_some(stopped)
    })
    .await;
    assert_eq!(gone, 2);
    provider.shutdown().await;
}

/// Clients resolving endpoints for every call keep succeeding while an update rolls the replicas,
/// and end up on the new spec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_drops_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = tempfile::tempdir().unwrap();
    let cmd = script(scripts.path(), "version.sh", r#"echo "v$VERSION""#);
    let provider = open(dir.path()).await;
    let v1 = FunctionDeployment::new("rolling", "local")
        .with_env_process(cmd.as_str())
        .with_env("VERSION", "1");
    provider.deploy(v1.clone()).await.unwrap();
    provider.scale("rolling", NS, 2).await.unwrap();
    ready(&provider, "rolling", 2).await;

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (provider, stop, done) = (provider.clone(), stop.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..10_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let endpoints = provider.endpoints("rolling", NS).await.unwrap();
                assert!(!endpoints.is_empty(), "no endpoint during the rollout");
                let endpoint = &endpoints[done.fetch_add(1, Ordering::SeqCst) % endpoints.len()];
                let (status, body) = request(&endpoint.authority, "POST", "/", "")
                    .await
                    .unwrap_or_else(|e| {
                        panic!("a request to {endpoint:?} failed during the rollout: {e}")
                    });
                assert_eq!(status, 200, "{body}");
                seen.push(body.trim().to_owned());
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    provider
        .update(v1.clone().with_env("VERSION", "2"))
        .await
        .unwrap();
    let endpoints = wait_for("the rollout to finish", READY, || async {
        let endpoints = provider.endpoints("rolling", NS).await.unwrap();
        let mut v2 = 0;
        for e in &endpoints {
            if post(e, "").await.1.trim() == "v2" {
                v2 += 1;
            }
        }
        (endpoints.len() == 2 && v2 == 2).then_some(endpoints)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    for client in clients {
        seen.extend(client.await.expect("a client failed"));
    }
    assert!(
        seen.iter().any(|v| v == "v1") && seen.iter().any(|v| v == "v2"),
        "{seen:?}"
    );
    assert_eq!(provider.get("rolling", NS).await.unwrap().replicas, 2);
    assert_eq!(endpoints.len(), 2);
    provider.shutdown().await;
}

/// `mode=http` without `upstream_url`: every replica gets its own port (`PORT`), so an HTTP
/// function scales on one machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_replicas_get_their_own_upstream_port() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("index.html"), "served").unwrap();
    let w = work.path().display();
    let cmd = script(
        work.path(),
        "serve.sh",
        &format!(
            r#"echo "port $PORT $http_port" >&2; exec busybox httpd -f -p 127.0.0.1:$PORT -h {w}"#
        ),
    );
    let provider = open(dir.path()).await;
    provider
        .deploy(
            FunctionDeployment::new("web", "local")
                .with_env_process(cmd)
                .with_env("mode", "http"),
        )
        .await
        .unwrap();
    provider.scale("web", NS, 2).await.unwrap();
    for endpoint in ready(&provider, "web", 2).await {
        let answer = request(&endpoint.authority, "GET", "/index.html", "")
            .await
            .unwrap();
        assert_eq!(answer, (200, "served".to_owned()), "{endpoint:?}");
    }
    let logs: Vec<String> = provider
        .logs(LogRequest::new("web", NS))
        .await
        .unwrap()
        .map(|l| l.unwrap().text)
        .collect()
        .await;
    let ports: std::collections::BTreeSet<&str> = logs
        .iter()
        .filter_map(|l| l.strip_prefix("port "))
        .collect();
    assert_eq!(ports.len(), 2, "two replicas, two ports: {logs:?}");
    provider.shutdown().await;
}

/// An update whose replicas never get ready leaves the old replicas serving until the rollout
/// timeout; scaling to zero stops them at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_update_keeps_the_old_replicas_until_the_rollout_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = common::config(dir.path()).rollout_timeout(Duration::from_secs(3));
    let provider = faas_provider_local::LocalProvider::open(config)
        .await
        .unwrap();
    provider.deploy(cat("steady")).await.unwrap();
    let old = ready(&provider, "steady", 1).await.remove(0);

    // an http function that never listens
    let broken = FunctionDeployment::new("steady", "local")
        .with_env_process("sleep 1000")
        .with_env("mode", "http")
        .with_env("upstream_url", format!("http://127.0.0.1:{closed_port}"));
    provider.update(broken).await.unwrap();
    let status = provider.get("steady", NS).await.unwrap();
    assert_eq!(status.env_process.as_deref(), Some("sleep 1000"));
    assert_eq!(status.available_replicas, 1, "the old replica still counts");
    assert_eq!(
        provider.endpoints("steady", NS).await.unwrap(),
        std::slice::from_ref(&old)
    );
    assert_eq!(
        post(&old, "still here").await,
        (200, "still here".to_owned())
    );

    wait_for(
        "the old replica to retire after the rollout timeout",
        READY,
        || async {
            provider
                .endpoints("steady", NS)
                .await
                .unwrap()
                .is_empty()
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        provider.get("steady", NS).await.unwrap().available_replicas,
        0
    );

    // a good update brings it back
    provider.update(cat("steady")).await.unwrap();
    ready(&provider, "steady", 1).await;

    // scaling to zero during a rollout stops old and new replicas
    provider
        .update(cat("steady").with_env("V", "3"))
        .await
        .unwrap();
    provider.scale("steady", NS, 0).await.unwrap();
    wait_for("no replica after scaling to zero", READY, || async {
        provider
            .endpoints("steady", NS)
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    provider.shutdown().await;
}
