//! `bench-upstream`: the baseline, a minimal hyper HTTP/1.1 hello-world server.
//!
//! It reads (and discards) the request body, then answers `200 Hello, world!`. It is what the watchdog's http
//! mode proxies to in the benchmarks, and what every ratio is measured against. It runs as its own process
//! so that the load generator, the watchdog and the upstream are three processes, as in production.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The body of every answer.
pub const GREETING: &[u8] = b"Hello, world!\n";

async fn hello(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // drain the body so that the connection stays reusable; a broken body only ends this exchange
    let _ = request.into_body().collect().await;
    let mut response = Response::new(Full::new(Bytes::from_static(GREETING)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// Serves the hello-world on `listener` until the process ends.
///
/// # Errors
/// When accepting connections fails for good.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // out of descriptors or a connection reset before accept: keep serving the others
            Err(e) if is_transient(&e) => continue,
            Err(e) => return Err(e),
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
        || e.raw_os_error() == Some(24)
}

/// Binds `addr`, prints `listening on ADDR` on stdout, and serves on a runtime of `threads` workers
/// (1: a current-thread runtime).
///
/// # Errors
/// When the runtime cannot start or the address cannot be bound.
pub fn main_with(addr: SocketAddr, threads: usize) -> std::io::Result<()> {
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async {
        let listener = TcpListener::bind(addr).await?;
        println!("listening on {}", listener.local_addr()?);
        serve(listener).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_hello() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener));
        let answer = crate::http::request(addr, http::Method::POST, "/", Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(&answer.body[..], GREETING);
    }
}
