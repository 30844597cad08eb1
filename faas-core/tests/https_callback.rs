//! `https` callbacks: the queue worker calls back a real TLS server on 127.0.0.1 whose
//! self-signed certificate is trusted through [`CallbackPolicy::with_ca_file`], and refuses one it
//! cannot verify without losing the call itself.

mod gateway_support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_core::gateway::Gateway;
use faas_core::invoke::Body;
use faas_core::queue::MemoryQueue;
use faas_core::queue::records::MemoryInvocationStore;
use faas_core::queue::worker::{CallbackPolicy, QueueWorker, WorkerConfig};
use gateway_support::{TestProvider, Upstream, call, json, req};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

const WAIT: Duration = Duration::from_secs(30);

/// A TLS callback receiver on 127.0.0.1 with a fresh self-signed certificate (written as PEM to
/// `ca_pem`); sends the headers and body of every callback it receives.
async fn tls_receiver(ca_pem: &Path) -> (SocketAddr, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(ca_pem, cert.cert.pem()).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate fails the handshake here.
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let _ = tx.send((parts.headers, body));
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, rx)
}

/// A gateway with a queue and a running worker using `callback`; the function `echo` answers from
/// a real upstream.
async fn platform(callback: CallbackPolicy) -> (Gateway, QueueWorker, Upstream) {
    let provider = TestProvider::new();
    let upstream = Upstream::start("r0").await;
    provider.add("echo", vec![upstream.endpoint()]);
    let queue = Arc::new(MemoryQueue::new());
    let store = Arc::new(MemoryInvocationStore::new());
    let gateway = Gateway::builder(provider)
        .queue(queue.clone())
        .invocations(store.clone())
        .build();
    let worker = QueueWorker::new(
        queue,
        Arc::new(gateway.invoker().clone()),
        store,
        WorkerConfig::default().with_callback(callback),
    );
    let running = worker.clone();
    tokio::spawn(async move { running.run(std::future::pending()).await });
    (gateway, worker, upstream)
}

async fn post_async(gateway: &Gateway, callback_url: &str) -> String {
    let mut request = req("POST", "/async-function/echo", "over tls");
    request
        .headers_mut()
        .insert("x-callback-url", callback_url.parse().unwrap());
    let (status, headers, body) = call(gateway, request).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    headers["x-call-id"].to_str().unwrap().to_owned()
}

/// Waits until the call's record is final and returns it.
async fn finished(gateway: &Gateway, call_id: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let uri = format!("/system/invocations/{call_id}");
        let (status, _, body) = call(gateway, req("GET", &uri, Body::empty())).await;
        assert_eq!(status, StatusCode::OK);
        let record = json(&body);
        if ["succeeded", "failed"].contains(&record["status"].as_str().unwrap()) {
            return record;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not finished: {record}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_callbacks_reach_a_receiver_trusted_through_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let (addr, mut callbacks) = tls_receiver(&ca).await;
    let policy = CallbackPolicy::default().with_ca_file(&ca);
    policy.check().unwrap();
    let (gateway, worker, upstream) = platform(policy).await;

    let call_id = post_async(&gateway, &format!("https://{addr}/done")).await;
    let (headers, body) = tokio::time::timeout(WAIT, callbacks.recv())
        .await
        .expect("a callback within 30s")
        .unwrap();
    assert_eq!(headers["x-call-id"], call_id.as_str());
    assert_eq!(headers["x-function-status"], "200");
    assert_eq!(&body[..], b"over tls");
    let record = finished(&gateway, &call_id).await;
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["callbackStatus"], 200);
    assert_eq!(upstream.count(), 1);
    assert_eq!(worker.stats().callbacks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverifiable_https_receiver_gets_nothing_and_the_call_still_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, mut callbacks) = tls_receiver(&dir.path().join("ca.pem")).await;
    // No CA file: the self-signed certificate is not trusted.
    let policy = CallbackPolicy::default()
        .with_max_attempts(2)
        .with_initial_wait(Duration::from_millis(20));
    let (gateway, worker, upstream) = platform(policy).await;

    let call_id = post_async(&gateway, &format!("https://{addr}/done")).await;
    let record = finished(&gateway, &call_id).await;
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["statusCode"], 200);
    assert!(record["callbackStatus"].is_null(), "{record}");
    assert_eq!(upstream.count(), 1);
    assert_eq!(worker.stats().callback_failures, 1);
    assert!(callbacks.try_recv().is_err(), "no callback got through");
}

#[test]
fn a_bad_ca_file_is_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let err = CallbackPolicy::default()
        .with_ca_file(dir.path().join("nope.pem"))
        .check()
        .unwrap_err();
    assert_eq!(err.kind(), faas_core::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("nope.pem"), "{err}");
}
