//! Test helpers: call a function in-process, without a socket, and read its response.
//!
//! ```
//! use faas::testing;
//!
//! async fn hello(req: faas::Request) -> String {
//!     format!("hello {}", req.into_body().text().await.unwrap_or_default())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let res = testing::call(faas::handler_fn(hello), testing::post("/", "world")).await.unwrap();
//! assert_eq!(res.status(), 200);
//! assert_eq!(res.text(), "hello world");
//! # }
//! ```

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;
use tower_service::Service;

use crate::body::Body;
use crate::context::Context;
use crate::error::Error;
use crate::request::Request;
use crate::response::IntoResponse;

/// Calls `service` with `req` in-process, as [`run`](crate::run) would, and buffers the response.
///
/// The request gets a default [`Context`] (no call id, no deadline, the process environment)
/// unless it already carries one: use [`call_with`] to pass your own (secrets directory,
/// environment, call id). A service error becomes the error response [`run`](crate::run) answers.
///
/// # Errors
///
/// The response body cannot be read.
pub async fn call<S>(service: S, req: Request) -> Result<TestResponse, Error>
where
    S: Service<Request>,
    S::Response: IntoResponse,
    S::Error: Into<Error>,
{
    let response = match service.oneshot(req).await {
        Ok(response) => response.into_response(),
        Err(err) => err.into().into_response(),
    };
    let (parts, body) = response.into_parts();
    let body = body.bytes().await?;
    Ok(TestResponse {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// Calls `service` with `req` carrying `ctx` (see [`call`]).
///
/// # Errors
///
/// As [`call`].
pub async fn call_with<S>(service: S, mut req: Request, ctx: Context) -> Result<TestResponse, Error>
where
    S: Service<Request>,
    S::Response: IntoResponse,
    S::Error: Into<Error>,
{
    req.extensions_mut().insert(ctx);
    call(service, req).await
}

/// A request with `method`, `uri` and `body`.
///
/// # Panics
///
/// When `method` or `uri` is invalid (a bug in the test).
pub fn request(method: &str, uri: &str, body: impl Into<Body>) -> Request {
    let method = Method::from_str(method).unwrap_or_else(|_| panic!("invalid method {method:?}"));
    let mut req = Request::new(body.into());
    *req.method_mut() = method;
    *req.uri_mut() = uri
        .parse()
        .unwrap_or_else(|_| panic!("invalid uri {uri:?}"));
    req
}

/// A `GET` request of `uri`.
pub fn get(uri: &str) -> Request {
    request("GET", uri, Body::empty())
}

/// A `POST` request of `uri` with `body`.
pub fn post(uri: &str, body: impl Into<Body>) -> Request {
    request("POST", uri, body)
}

/// A `POST` request of `uri` with `value` as a JSON body.
///
/// # Panics
///
/// When `value` cannot be serialised.
pub fn post_json<T: Serialize>(uri: &str, value: &T) -> Request {
    let json = serde_json::to_vec(value).expect("the value serialises as JSON");
    let mut req = post(uri, json);
    req.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    req
}

/// A buffered response of [`call`].
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl TestResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header as text, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    ///
    /// # Errors
    ///
    /// The body is not valid JSON for `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// A function binary started for a test: `PORT=0`, `bind_address=127.0.0.1`, its address read from
/// the `faas: listening on ADDR` line it prints on stderr.
///
/// Killed when dropped. Its stderr is collected ([`FunctionProcess::stderr`]).
///
/// ```no_run
/// use std::time::Duration;
///
/// let mut process = faas::testing::FunctionProcess::spawn(
///     "target/debug/hello", // in an integration test of the binary: env!("CARGO_BIN_EXE_hello")
///     &[("exec_timeout", "5s")],
/// )?;
/// println!("serving on {}", process.url("/"));
/// process.terminate()?;
/// let status = process.wait_timeout(Duration::from_secs(10))?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct FunctionProcess {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl FunctionProcess {
    /// How long [`FunctionProcess::spawn`] waits for the listening line.
    pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

    /// Starts `program` with `env` added to its environment and waits until it listens.
    ///
    /// # Errors
    ///
    /// The program cannot be started, or it exits or stays silent for
    /// [`FunctionProcess::STARTUP_TIMEOUT`] without printing its address (the error includes its
    /// stderr).
    pub fn spawn(program: impl AsRef<OsStr>, env: &[(&str, &str)]) -> io::Result<Self> {
        let mut command = Command::new(program);
        command
            .env("PORT", "0")
            .env("bind_address", "127.0.0.1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("no stderr pipe"))?;
        let (tx, rx) = mpsc::channel();
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix(crate::LISTENING_PREFIX) {
                    let _ = tx.send(addr.trim().parse::<SocketAddr>());
                }
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
        });
        let addr = match rx.recv_timeout(Self::STARTUP_TIMEOUT) {
            Ok(Ok(addr)) => addr,
            outcome => {
                let _ = child.kill();
                let _ = child.wait();
                let lines = stderr.lock().map(|l| l.join("\n")).unwrap_or_default();
                let why = match outcome {
                    Ok(Err(_)) => "printed an unparseable address",
                    _ => "did not print its address",
                };
                return Err(io::Error::other(format!(
                    "the function {why}; stderr:\n{lines}"
                )));
            }
        };
        Ok(FunctionProcess {
            child,
            addr,
            stderr,
        })
    }

    /// The address the function listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM: the function stops accepting, drains in-flight requests and exits.
    ///
    /// # Errors
    ///
    /// The signal cannot be sent.
    pub fn terminate(&self) -> io::Result<()> {
        let pid =
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).map_err(io::Error::other)?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).map_err(io::Error::from)
    }

    /// Waits up to `timeout` for the process to exit.
    ///
    /// # Errors
    ///
    /// The process cannot be waited for.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The lines the function printed on stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default()
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{context_fn, event_fn, handler_fn};

    #[tokio::test]
    async fn calls_each_adapter_in_process() {
        let res = call(handler_fn(|_req| async { "hi" }), get("/"))
            .await
            .unwrap();
        assert_eq!(
            (res.status(), res.text()),
            (StatusCode::OK, "hi".to_owned())
        );
        assert_eq!(
            res.header("content-type"),
            Some("text/plain; charset=utf-8")
        );

        let svc =
            context_fn(
                |_req, ctx: Context| async move { ctx.env("WHO").unwrap_or("?").to_owned() },
            );
        let ctx = Context::builder().env("WHO", "tester").build();
        let res = call_with(svc, get("/"), ctx).await.unwrap();
        assert_eq!(res.text(), "tester");

        let svc = event_fn(|n: u32, _ctx| async move { Ok::<_, Error>(n * 2) });
        let res = call(svc, post_json("/", &21)).await.unwrap();
        assert_eq!(res.json::<u32>().unwrap(), 42);
    }

    #[tokio::test]
    async fn service_errors_become_responses() {
        let svc = tower::service_fn(|_req: Request| async {
            Err::<&str, _>(std::io::Error::other("backend down"))
        });
        let res = call(svc, get("/")).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            res.json::<serde_json::Value>().unwrap()["error"],
            "backend down"
        );
    }
}
