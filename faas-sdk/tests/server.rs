//! `faas::Server` on real sockets (127.0.0.1:0) with a real HTTP client: the call context, limits,
//! timeouts, streaming, error responses and the graceful drain.

use std::sync::Arc;
use std::time::Duration;

use faas::{Body, Config, Context, Error, Request, RequestExt, ServeConfig, Server, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// A server on 127.0.0.1:0 serving `service` until the returned sender is dropped or used.
async fn start<S>(
    config: Config,
    service: S,
) -> (String, oneshot::Sender<()>, JoinHandle<faas::Result<()>>)
where
    S: tower::Service<Request> + Clone + Send + Sync + 'static,
    S::Response: faas::IntoResponse,
    S::Error: Into<Error>,
    S::Future: Send + 'static,
{
    let config = config.with_addr("127.0.0.1:0".parse().unwrap());
    let server = Server::bind(config).await.unwrap();
    let url = format!("http://{}", server.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(service, async {
        let _ = stopped.await;
    }));
    (url, stop, task)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test]
async fn each_call_gets_its_context() {
    let svc = faas::context_fn(|req: Request, ctx: Context| async move {
        faas::Json(json!({
            "call_id": ctx.call_id(),
            "namespace": ctx.namespace(),
            "has_deadline": ctx.deadline().is_some(),
            "same_in_extensions": req.context().call_id() == ctx.call_id(),
            "path": req.uri().path(),
            "query": req.query_param("q"),
        }))
    });
    let (url, _stop, _task) = start(Config::default(), svc).await;
    let res = client()
        .get(format!("{url}/a/b?q=x%20y"))
        .header("X-Call-Id", "call-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-call-id"], "call-1");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"call_id": "call-1", "namespace": "openfaas-fn", "has_deadline": true,
               "same_in_extensions": true, "path": "/a/b", "query": "x y"})
    );
}

#[tokio::test]
async fn max_inflight_rejects_with_429_and_never_queues() {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let svc = faas::handler_fn({
        let (entered, release) = (entered.clone(), release.clone());
        move |_req: Request| {
            let (entered, release) = (entered.clone(), release.clone());
            async move {
                entered.notify_one();
                release.notified().await;
                "done"
            }
        }
    });
    let config = Config::default().with_serve_config(ServeConfig::default().with_max_inflight(1));
    let (url, _stop, _task) = start(config, svc).await;

    let first = tokio::spawn(client().get(format!("{url}/")).send());
    tokio::time::timeout(Duration::from_secs(10), entered.notified())
        .await
        .expect("first call runs");
    let second = client().get(format!("{url}/")).send().await.unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let ready = client().get(format!("{url}/_/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::TOO_MANY_REQUESTS);

    release.notify_one();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.text().await.unwrap(), "done");
}

#[tokio::test]
async fn exec_timeout_and_x_timeout_answer_504() {
    let svc = faas::handler_fn(|_req: Request| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        "too late"
    });
    let config = Config::default().with_exec_timeout(Some(Duration::from_millis(300)));
    let (url, _stop, _task) = start(config, svc).await;
    let res = client().get(format!("{url}/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("function timed out after 0."),
        "{body}"
    );

    let svc = faas::handler_fn(|_req: Request| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        "too late"
    });
    let (url, _stop, _task) = start(Config::default().with_exec_timeout(None), svc).await;
    let res = client()
        .get(format!("{url}/"))
        .header("X-Timeout", "200ms")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn oversized_streamed_bodies_are_413() {
    let svc = faas::handler_fn(|req: Request| async move {
        req.into_body()
            .bytes()
            .await
            .map(|bytes| bytes.len().to_string())
    });
    let serve = ServeConfig::default().with_max_body_bytes(Some(1024));
    let (url, _stop, _task) = start(Config::default().with_serve_config(serve), svc).await;

    let res = client()
        .post(format!("{url}/"))
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "1000");

    // No Content-Length: the limit is enforced while the body streams.
    let chunks =
        futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 512])));
    let res = client()
        .post(format!("{url}/"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("over the limit of 1024 bytes"),
        "{body}"
    );
}

#[tokio::test]
async fn streams_responses_and_maps_service_errors() {
    let svc = tower::service_fn(|req: Request| async move {
        match req.uri().path() {
            "/stream" => {
                let chunks =
                    futures_util::stream::iter(["a", "b", "c"].map(Ok::<_, std::io::Error>));
                Ok(Body::from_stream(chunks))
            }
            _ => Err(std::io::Error::other("backend down")),
        }
    });
    let (url, _stop, _task) = start(Config::default(), svc).await;
    let res = client().get(format!("{url}/stream")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "abc");

    let res = client().get(format!("{url}/other")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "backend down"})
    );
}

#[tokio::test]
async fn serves_an_axum_router() {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/items/{id}",
        get(
            |axum::extract::Path(id): axum::extract::Path<u32>| async move { format!("item {id}") },
        ),
    );
    let (url, _stop, _task) = start(Config::default(), app).await;
    let res = client().get(format!("{url}/items/5")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "item 5");
    let res = client().get(format!("{url}/missing")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn shutdown_drains_in_flight_calls() {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let svc = faas::handler_fn({
        let (entered, release) = (entered.clone(), release.clone());
        move |_req: Request| {
            let (entered, release) = (entered.clone(), release.clone());
            async move {
                entered.notify_one();
                release.notified().await;
                "finished"
            }
        }
    });
    let (url, stop, task) = start(Config::default(), svc).await;
    let in_flight = tokio::spawn(client().get(format!("{url}/")).send());
    tokio::time::timeout(Duration::from_secs(10), entered.notified())
        .await
        .expect("the call runs");

    stop.send(()).unwrap();
    // The server waits for the call before it returns.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !task.is_finished(),
        "the server returned with a call in flight"
    );

    release.notify_one();
    let res = in_flight.await.unwrap().unwrap();
    assert_eq!(res.text().await.unwrap(), "finished");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("drained")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn serves_metrics_on_the_metrics_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let svc = faas::handler_fn(|_req: Request| async { "counted" });
    let config = Config::default()
        .with_addr("127.0.0.1:0".parse().unwrap())
        .with_metrics_port(Some(port));
    let server = Server::bind(config).await.unwrap();
    assert_eq!(server.metrics_addr().map(|a| a.port()), Some(port));
    let url = format!("http://{}", server.local_addr());
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(svc, async {
        let _ = stopped.await;
    }));
    for _ in 0..3 {
        let res = client().post(format!("{url}/")).send().await.unwrap();
        assert_eq!(res.text().await.unwrap(), "counted");
    }
    let metrics = client()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
}

/// A client body fed chunk by chunk from a channel.
fn channel_body(rx: tokio::sync::mpsc::Receiver<String>) -> reqwest::Body {
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, std::io::Error>(chunk), rx))
    });
    reqwest::Body::wrap_stream(chunks)
}

#[tokio::test]
async fn request_bodies_stream_to_the_handler() {
    use futures_util::StreamExt;
    // The handler reports each chunk as it arrives, then answers with what it read.
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<String>();
    let svc = faas::handler_fn(move |req: Request| {
        let seen_tx = seen_tx.clone();
        async move {
            let mut chunks = Vec::new();
            let mut stream = std::pin::pin!(req.into_body().into_data_stream());
            while let Some(chunk) = stream.next().await {
                let chunk = String::from_utf8(chunk?.to_vec())?;
                let _ = seen_tx.send(chunk.clone());
                chunks.push(chunk);
            }
            Ok::<_, Error>(chunks.join("|"))
        }
    });
    let serve = ServeConfig::default().with_max_body_bytes(Some(1024));
    let (url, _stop, _task) = start(Config::default().with_serve_config(serve), svc).await;

    let (send, rx) = tokio::sync::mpsc::channel(4);
    let call = tokio::spawn(
        client()
            .post(format!("{url}/"))
            .body(channel_body(rx))
            .send(),
    );
    send.send("one".to_owned()).await.unwrap();
    // The first chunk reaches the handler while the client has not sent the rest.
    let first = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the handler reads the first chunk before the body ends");
    assert_eq!(first.as_deref(), Some("one"));
    send.send("two".to_owned()).await.unwrap();
    drop(send);

    let res = call.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "one|two");

    // A chunk over the body limit fails the read with 413, which `?` answers.
    let (send, rx) = tokio::sync::mpsc::channel(4);
    let call = tokio::spawn(
        client()
            .post(format!("{url}/"))
            .body(channel_body(rx))
            .send(),
    );
    for _ in 0..3 {
        send.send("x".repeat(512)).await.unwrap();
    }
    drop(send);
    let res = call.await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot read the request body: request body over the limit of 1024 bytes"),
        "{body}"
    );
}

#[tokio::test]
async fn response_bodies_stream_to_the_client() {
    // The response body is the receiving end of a channel the test feeds.
    let (send, rx) = tokio::sync::mpsc::channel::<&'static str>(4);
    let rx = Arc::new(std::sync::Mutex::new(Some(rx)));
    let svc = faas::handler_fn(move |_req: Request| {
        let rx = rx.lock().unwrap().take();
        async move {
            let Some(rx) = rx else {
                return Err(Error::msg("called twice"));
            };
            let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
                let chunk = rx.recv().await?;
                Some((Ok::<_, std::io::Error>(chunk), rx))
            });
            Ok(Body::from_stream(chunks))
        }
    });
    let (url, _stop, _task) = start(Config::default(), svc).await;

    send.send("first").await.unwrap();
    let mut res = client().get(format!("{url}/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // The first chunk arrives while the handler has not produced the second.
    let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk())
        .await
        .expect("the first chunk arrives before the body ends")
        .unwrap();
    assert_eq!(chunk.as_deref(), Some(&b"first"[..]));
    send.send("second").await.unwrap();
    drop(send);
    let mut rest = Vec::new();
    while let Some(chunk) = res.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"second");
}
