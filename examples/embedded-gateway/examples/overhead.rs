//! Run with: `cargo run --release -p embedded-gateway --example overhead [seconds]`
//!
//! Measures what the gateway adds over calling a replica directly, in one process: a minimal hyper
//! upstream, the gateway served by `Gateway::serve`, and a closed-loop keep-alive HTTP/1.1 load
//! generator at 1, 16 and 64 connections. Indicative only: `faas-bench gateway` is the reference.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use embedded_gateway::StaticProvider;
use faas_core::gateway::Gateway;
use faas_core::model::Endpoint;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

async fn upstream() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|request: hyper::Request<Incoming>| async move {
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(body)))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

struct Outcome {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: usize,
}

async fn load(
    addr: SocketAddr,
    path: &'static str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(100_000);
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let request = hyper::Request::post(path)
                    .header("host", "bench")
                    .body(Full::new(Bytes::from_static(b"hello, world")))
                    .expect("request");
                let started = Instant::now();
                let ok = match sender.send_request(request).await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        ok && response.into_body().collect().await.is_ok()
                    }
                    Err(_) => false,
                };
                if ok {
                    latencies.push(started.elapsed().as_nanos() as u64);
                } else {
                    errors += 1;
                    if sender.ready().await.is_err() {
                        break;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await?;
        all.extend(latencies);
        errors += e;
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    Ok(Outcome {
        rps: all.len() as f64 / duration.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        errors,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let duration = Duration::from_secs(seconds);
    let upstream = upstream().await?;
    let provider = StaticProvider::new()
        .with_function("echo", vec![Endpoint::new("echo-0", upstream.to_string())]);
    let gateway = Gateway::builder(Arc::new(provider)).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway_addr = listener.local_addr()?;
    tokio::spawn(gateway.serve(listener, std::future::pending()));

    // Warm up both paths (connection pools, endpoint cache).
    load(upstream, "/", 4, Duration::from_millis(500)).await?;
    load(
        gateway_addr,
        "/function/echo",
        4,
        Duration::from_millis(500),
    )
    .await?;

    println!(
        "{:<12} {:>5} {:>10} {:>9} {:>9} {:>7}",
        "target", "conns", "req/s", "p50 µs", "p99 µs", "errors"
    );
    for connections in [1, 16, 64] {
        let direct = load(upstream, "/", connections, duration).await?;
        let through = load(gateway_addr, "/function/echo", connections, duration).await?;
        for (name, o) in [("direct", &direct), ("gateway", &through)] {
            println!(
                "{name:<12} {connections:>5} {:>10.0} {:>9.1} {:>9.1} {:>7}",
                o.rps, o.p50_us, o.p99_us, o.errors
            );
        }
        println!(
            "  gateway keeps {:.0}% of direct throughput, adds {:.1} µs at p50",
            100.0 * through.rps / direct.rps,
            through.p50_us - direct.p50_us
        );
    }
    Ok(())
}
