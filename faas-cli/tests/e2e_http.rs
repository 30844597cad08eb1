//! End-to-end tests of `faas up` over its HTTP API: the real binary, real replicas, a real client.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Faas, READY, free_port, http_client, script};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_list_describe_update_scale_invoke_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let faas = Faas::start(&tmp.path().join("data"), &[]);

    faas.deploy(json!({
        "service": "echo",
        "image": "examples/functions/echo",
        "envProcess": "cat",
        "envVars": {"greeting": "hi"},
        "labels": {"team": "a"},
        "annotations": {"topic": "demo"}
    }))
    .await;
    let list = faas.get_json("/system/functions").await;
    assert_eq!(names(&list), ["echo"]);
    let status = faas.wait_available("echo", 1).await;
    assert_eq!(status["image"], "examples/functions/echo");
    assert_eq!(status["envProcess"], "cat");
    assert_eq!(status["envVars"]["greeting"], "hi");
    assert_eq!(status["labels"]["team"], "a");
    assert_eq!(status["annotations"]["topic"], "demo");
    assert_eq!(status["replicas"], 1);
    assert_eq!(status["namespace"], "openfaas-fn");

    assert_eq!(faas.invoke_ok("echo", "hello").await, "hello");
    // Through the namespace-qualified name too, as OpenFaaS.
    assert_eq!(faas.invoke_ok("echo.openfaas-fn", "again").await, "again");
    let status = faas.get_json("/system/function/echo").await;
    assert!(
        status["invocationCount"].as_f64().unwrap() >= 2.0,
        "{status}"
    );

    // Update: a new process; the function answers with it once the rollout is done.
    let response = faas
        .request(Method::PUT, "/system/functions")
        .json(
            &json!({"service": "echo", "image": "examples/functions/echo", "envProcess": "wc -c"}),
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let deadline = Instant::now() + READY;
    loop {
        let body = faas.invoke_ok("echo", "12345").await;
        if body.trim() == "5" {
            break;
        }
        assert_eq!(
            body, "12345",
            "neither the old nor the new process answered"
        );
        assert!(Instant::now() < deadline, "the update never took effect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        faas.get_json("/system/function/echo").await["envProcess"],
        "wc -c"
    );

    // Scale up, down to zero, and back from zero by invoking.
    let scale = |n: u64| {
        faas.request(Method::POST, "/system/scale-function/echo")
            .json(&json!({"serviceName": "echo", "replicas": n}))
            .send()
    };
    assert!(scale(3).await.unwrap().status().is_success());
    let status = faas.wait_available("echo", 3).await;
    assert_eq!(status["replicas"], 3);
    assert!(scale(0).await.unwrap().status().is_success());
    let deadline = Instant::now() + READY;
    loop {
        let status = faas.get_json("/system/function/echo").await;
        if status["replicas"] == 0 && status["availableReplicas"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never scaled to zero: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(faas.invoke_ok("echo", "abc").await.trim(), "3");

    // Remove.
    let response = faas
        .request(Method::DELETE, "/system/functions")
        .json(&json!({"functionName": "echo"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let response = faas
        .request(Method::GET, "/system/function/echo")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(names(&faas.get_json("/system/functions").await).is_empty());
    // The invoker caches endpoints briefly and removed replicas drain: 404 comes within seconds.
    let deadline = Instant::now() + READY;
    loop {
        let response = http_client()
            .post(format!("{}/function/echo", faas.url))
            .body("x")
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a removed function still answers {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert!(faas.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_requests_are_balanced_over_three_replicas() {
    let tmp = tempfile::tempdir().unwrap();
    // Each replica's watchdog listens on its own port; fork mode hands the process the Host the
    // gateway connected to as Http_Host, so the answer names the replica that served it.
    script(tmp.path(), "replica.sh", r#"printf '%s' "$Http_Host""#);
    let faas = Faas::start(&tmp.path().join("data"), &[]);
    faas.deploy(json!({
        "service": "who",
        "image": tmp.path(),
        "envProcess": "sh replica.sh",
        "labels": {"com.openfaas.scale.min": "3"}
    }))
    .await;
    assert_eq!(faas.wait_available("who", 3).await["replicas"], 3);

    const REQUESTS: usize = 1000;
    const CLIENTS: usize = 4;
    let url = format!("{}/function/who", faas.url);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..REQUESTS / CLIENTS {
                let response = http_client().post(&url).send().await.unwrap();
                let status = response.status();
                let body = response.text().await.unwrap();
                assert_eq!(status, StatusCode::OK, "{body}");
                seen.push(body);
            }
            seen
        }));
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        for replica in task.await.unwrap() {
            *counts.entry(replica).or_default() += 1;
        }
    }
    assert_eq!(counts.values().sum::<usize>(), REQUESTS);
    assert_eq!(counts.len(), 3, "{counts:?}");
    let mean = REQUESTS as f64 / 3.0;
    for (replica, count) in &counts {
        assert!(replica.starts_with("127.0.0.1:"), "{replica}");
        let deviation = (*count as f64 - mean).abs() / mean;
        assert!(
            deviation <= 0.2,
            "replica {replica} served {count} of {REQUESTS}: {counts:?}"
        );
    }
    assert!(faas.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_function_gives_502_and_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let faas = Faas::start(&tmp.path().join("data"), &[]);
    let port = free_port();
    faas.deploy(json!({
        "service": "hello-http",
        "image": "examples/functions/hello-http",
        "envProcess": "python3 server.py",
        "envVars": {"mode": "http", "upstream_url": format!("http://127.0.0.1:{port}"), "ready_path": "/ready"}
    }))
    .await;
    faas.wait_available("hello-http", 1).await;
    let before: Value = serde_json::from_str(&faas.invoke_ok("hello-http", "hi").await).unwrap();
    assert_eq!(before["message"], "hello from python");
    assert_eq!(before["body"], "hi");

    let response = http_client()
        .post(format!("{}/function/hello-http/crash", faas.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);

    let after: Value = serde_json::from_str(&faas.invoke_ok("hello-http", "back").await).unwrap();
    assert_eq!(after["body"], "back");
    assert_ne!(
        after["pid"], before["pid"],
        "the function process was restarted"
    );
    let pid = after["pid"].as_u64().unwrap();
    assert!(common::process_runs(pid));
    // A clean shutdown stops the function processes too.
    assert!(faas.stop().success());
    common::wait_gone(
        pid,
        Duration::from_secs(10),
        "the HTTP-mode function process after shutdown",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_function_gives_504_and_its_process_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("slow.pid");
    script(
        tmp.path(),
        "slow.sh",
        "echo $$ > \"$pidfile\"\nexec sleep 60",
    );
    let faas = Faas::start(&tmp.path().join("data"), &[]);
    faas.deploy(json!({
        "service": "slow",
        "image": tmp.path(),
        "envProcess": "sh slow.sh",
        "envVars": {"exec_timeout": "1s", "pidfile": pidfile}
    }))
    .await;
    faas.wait_available("slow", 1).await;
    let response = http_client()
        .post(format!("{}/function/slow", faas.url))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);

    let pid: u64 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The watchdog kills the process at its exec_timeout (1 s); 10 s leaves room for a loaded
    // machine while staying well under the watchdog's write_timeout, which would also end it. A
    // zombie (dead, its exit status not yet collected by the watchdog's runtime) counts as gone.
    common::wait_gone(
        pid,
        Duration::from_secs(10),
        "the timed-out function process",
    )
    .await;
    assert!(faas.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_the_right_4xx_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let faas = Faas::start(
        &tmp.path().join("data"),
        &["--auth", "admin:s3cret", "--max-body-size", "1Ki"],
    );
    faas.deploy(
        json!({"service": "echo", "image": "examples/functions/echo", "envProcess": "cat"}),
    )
    .await;
    faas.wait_available("echo", 1).await;
    let before = faas.get_json("/system/functions").await;

    let post = |body: String| {
        faas.request(Method::POST, "/system/functions")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    async fn check(response: reqwest::Response, status: StatusCode) -> Value {
        assert_eq!(response.status(), status);
        let text = response.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    // Invalid name.
    let body = check(
        post(json!({"service": "Bad_Name", "image": "x", "envProcess": "cat"}).to_string())
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["field"], "service", "{body}");
    let body = check(
        post(json!({"service": "a".repeat(64), "image": "x", "envProcess": "cat"}).to_string())
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["field"], "service", "{body}");
    // Missing image and process.
    let body = check(
        post(json!({"service": "nothing"}).to_string())
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body["error"].is_string(), "{body}");
    // Malformed JSON.
    check(
        post("{\"service\": ".to_owned()).await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    // Already exists.
    check(
        post(json!({"service": "echo", "image": "x", "envProcess": "cat"}).to_string())
            .await
            .unwrap(),
        StatusCode::CONFLICT,
    )
    .await;
    // Unknown function, everywhere.
    let response = faas
        .request(Method::PUT, "/system/functions")
        .json(&json!({"service": "nope", "image": "x", "envProcess": "cat"}))
        .send()
        .await
        .unwrap();
    check(response, StatusCode::NOT_FOUND).await;
    check(
        faas.request(Method::GET, "/system/function/nope")
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    let response = faas
        .request(Method::DELETE, "/system/functions")
        .json(&json!({"functionName": "nope"}))
        .send()
        .await
        .unwrap();
    check(response, StatusCode::NOT_FOUND).await;
    let response = faas
        .request(Method::POST, "/system/scale-function/nope")
        .json(&json!({"replicas": 2}))
        .send()
        .await
        .unwrap();
    check(response, StatusCode::NOT_FOUND).await;
    let response = http_client()
        .post(format!("{}/function/nope", faas.url))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // Body over the limit.
    let response = http_client()
        .post(format!("{}/function/echo", faas.url))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Wrong or missing credentials on /system/*: 401 with the challenge; /function/* stays open.
    let wrong = http_client()
        .get(format!("{}/system/functions", faas.url))
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.headers()["www-authenticate"],
        "Basic realm=\"Restricted\""
    );
    let none = http_client()
        .get(format!("{}/system/functions", faas.url))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let sneaky = http_client()
        .post(format!("{}/system/functions", faas.url))
        .basic_auth("admin", Some("wrong"))
        .json(&json!({"service": "sneaky", "image": "x", "envProcess": "cat"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sneaky.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(faas.invoke_ok("echo", "open").await, "open");
    assert_eq!(
        http_client()
            .get(format!("{}/healthz", faas.url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // Nothing changed.
    let after = faas.get_json("/system/functions").await;
    assert_eq!(names(&after), names(&before));
    assert_eq!(after[0]["envProcess"], "cat");
    assert_eq!(after[0]["replicas"], 1);
    assert!(faas.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_functions_and_they_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let faas = Faas::start(&data, &[]);
    faas.deploy(
        json!({"service": "echo", "image": "examples/functions/echo", "envProcess": "cat"}),
    )
    .await;
    let response = faas
        .request(Method::POST, "/system/scale-function/echo")
        .json(&json!({"serviceName": "echo", "replicas": 2}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let response = faas
        .request(Method::POST, "/system/secrets")
        .json(&json!({"name": "token", "value": "t0k"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    faas.wait_available("echo", 2).await;
    let status = faas.stop_with(nix::sys::signal::Signal::SIGINT);
    assert!(status.success(), "faas up exited with {status}");

    let faas = Faas::start(&data, &[]);
    let status = faas.wait_available("echo", 2).await;
    assert_eq!(status["replicas"], 2);
    assert_eq!(faas.invoke_ok("echo", "still here").await, "still here");
    let secrets = faas.get_json("/system/secrets").await;
    assert_eq!(secrets[0]["name"], "token", "{secrets}");
    assert!(faas.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_the_example_stack_deploys_every_example_and_each_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let faas = Faas::start(&tmp.path().join("data"), &["-f", "examples/stack.yml"]);
    for name in ["echo", "wordcount", "hello-http", "static-site"] {
        faas.wait_available(name, 1).await;
    }
    assert_eq!(faas.invoke_ok("echo", "hello").await, "hello");
    let counts: Vec<String> = faas
        .invoke_ok("wordcount", "one two three\n")
        .await
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(counts, ["1", "3", "14"]);
    let hello: Value =
        serde_json::from_str(&faas.invoke_ok("hello-http/some/path", "hi").await).unwrap();
    assert_eq!(hello["message"], "hello from python");
    assert_eq!(hello["path"], "/some/path");
    // HTTP mode scales: each replica runs its own server on its own port.
    let response = faas
        .request(Method::POST, "/system/scale-function/hello-http")
        .json(&json!({"serviceName": "hello-http", "replicas": 2}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    faas.wait_available("hello-http", 2).await;
    let mut pids = std::collections::HashSet::new();
    for _ in 0..50 {
        let answer: Value = serde_json::from_str(&faas.invoke_ok("hello-http", "x").await).unwrap();
        pids.insert(answer["pid"].as_u64().unwrap());
        if pids.len() == 2 {
            break;
        }
    }
    assert_eq!(pids.len(), 2, "both replicas answer: {pids:?}");
    let response = http_client()
        .get(format!("{}/function/static-site/", faas.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Hello from a static faas-rs function")
    );
    assert!(faas.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_dir_credentials_default_timeout_and_stack_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let secrets = tmp.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("basic-auth-user"), "admin\n").unwrap();
    std::fs::write(secrets.join("basic-auth-password"), "from-file\n").unwrap();
    script(tmp.path(), "sleepy.sh", "sleep 30");
    let stack = tmp.path().join("stack.yml");
    let image = tmp.path().to_str().unwrap();
    std::fs::write(
        &stack,
        format!(
            "functions:\n  echo:\n    image: examples/functions/echo\n    fprocess: cat\n  sleepy:\n    image: {image}\n    fprocess: sh sleepy.sh\n"
        ),
    )
    .unwrap();
    let mut faas = Faas::start(
        &tmp.path().join("data"),
        &[
            "--secrets-dir",
            secrets.to_str().unwrap(),
            "--timeout",
            "1s",
            "-f",
            stack.to_str().unwrap(),
        ],
    );
    let none = http_client()
        .get(format!("{}/system/functions", faas.url))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    faas.auth = Some(("admin".to_owned(), "from-file".to_owned()));
    // The stack was deployed at start, through the protected API.
    faas.wait_available("echo", 1).await;
    faas.wait_available("sleepy", 1).await;
    assert_eq!(faas.invoke_ok("echo", "hi").await, "hi");
    // sleepy sets no exec_timeout: the --timeout default applies.
    let response = http_client()
        .post(format!("{}/function/sleepy", faas.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(faas.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_invocations_in_flight_but_not_log_followers() {
    use std::process::{Command, Stdio};

    let tmp = tempfile::tempdir().unwrap();
    script(tmp.path(), "slowish.sh", "sleep 2\nprintf done");
    // Followers never end on their own: with them holding the shutdown, it would take 300 s and
    // `stop` (bounded at 60 s) would fail.
    let faas = Faas::start(&tmp.path().join("data"), &["--shutdown-timeout", "300s"]);
    faas.deploy(json!({"service": "slowish", "image": tmp.path(), "envProcess": "sh slowish.sh"}))
        .await;
    faas.wait_available("slowish", 1).await;
    let mut follower = Command::new(common::FAAS)
        .args(["logs", "slowish", "--follow", "--gateway", &faas.url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let url = format!("{}/function/slowish", faas.url);
    let call = tokio::spawn(async move {
        let response = http_client().post(url).send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    });
    // Wait until the gateway counts the call as started.
    let deadline = Instant::now() + READY;
    loop {
        let metrics = http_client()
            .get(format!("{}/metrics", faas.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics
            .lines()
            .any(|l| l.starts_with("gateway_function_invocation_started{") && l.ends_with(" 1"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the call never started:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = tokio::task::spawn_blocking(move || faas.stop())
        .await
        .unwrap();
    assert!(stopped.success(), "faas up exited with {stopped}");
    assert_eq!(call.await.unwrap(), (StatusCode::OK, "done".to_owned()));
    // The follower's stream ended with the platform.
    let deadline = Instant::now() + READY;
    while follower.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the log follower is still connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
