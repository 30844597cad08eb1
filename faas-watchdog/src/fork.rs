//! The fork-per-request modes: classic, `serializing` and `streaming`.

use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::body::{ProcessBody, ReaderBody, WatchdogBody};
use crate::cgi;
use crate::config::{Config, Mode};
use crate::logs::{LogStream, forward_lines};
use crate::process::ProcessGuard;
use crate::server::{RequestBody, RequestBodyError, internal_response};

/// The task copying the request body to the process's stdin; reports a failed body once.
pub(crate) struct Feeder {
    handle: JoinHandle<Result<(), RequestBodyError>>,
    done: bool,
}

impl Feeder {
    fn spawn(task: impl Future<Output = Result<(), RequestBodyError>> + Send + 'static) -> Self {
        Feeder {
            handle: tokio::spawn(task),
            done: false,
        }
    }

    /// Ready with the error when the request body failed; pending forever otherwise.
    pub(crate) fn poll_failed(&mut self, cx: &mut Context<'_>) -> Poll<RequestBodyError> {
        if self.done {
            return Poll::Pending;
        }
        match Pin::new(&mut self.handle).poll(cx) {
            Poll::Ready(result) => {
                self.done = true;
                match result {
                    Ok(Err(e)) => Poll::Ready(e),
                    _ => Poll::Pending,
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }

    async fn failed(&mut self) -> RequestBodyError {
        poll_fn(|cx| self.poll_failed(cx)).await
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Serves one request by running the function process.
pub(crate) async fn handle(
    config: Arc<Config>,
    req: Request<RequestBody>,
) -> Response<WatchdogBody> {
    if config.write_debug {
        tracing::info!(method = %req.method(), uri = %req.uri(), "forking fprocess");
    }
    match config.mode {
        Mode::Streaming => streaming(config, req).await,
        _ => buffered(config, req).await,
    }
}

enum Output {
    Pipe(tokio::process::ChildStdout),
    Combined(tokio::net::unix::pipe::Receiver),
}

impl AsyncRead for Output {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Output::Pipe(p) => Pin::new(p).poll_read(cx, buf),
            Output::Combined(p) => Pin::new(p).poll_read(cx, buf),
        }
    }
}

struct Spawned {
    guard: ProcessGuard,
    stdin: Option<ChildStdin>,
    output: Output,
}

fn spawn(config: &Config, parts: &http::request::Parts, combine: bool) -> io::Result<Spawned> {
    let mut cmd = config.launcher()?.command();
    if config.cgi_headers {
        cmd.envs(cgi::request_env(parts, config.mode == Mode::Classic));
    }
    cmd.stdin(Stdio::piped());
    let combined_reader = if combine {
        let (reader, writer) = io::pipe()?;
        let writer2 = writer.try_clone()?;
        cmd.stdout(Stdio::from(writer));
        cmd.stderr(Stdio::from(writer2));
        Some(reader)
    } else {
        cmd.stdout(Stdio::piped());
        cmd.stderr(Stdio::piped());
        None
    };
    let mut child = cmd.spawn()?;
    // `cmd` still holds our copies of the combined pipe's write end: drop them so that the
    // reader sees end-of-file when the process exits.
    drop(cmd);
    let stdin = child.stdin.take();
    if let Some(stderr) = child.stderr.take() {
        let sink = config.log_sink.clone();
        let max = config.log_buffer_size;
        tokio::spawn(async move { forward_lines(stderr, LogStream::Stderr, max, &*sink).await });
    }
    let output = match combined_reader {
        Some(reader) => Output::Combined(tokio::net::unix::pipe::Receiver::from_owned_fd(
            OwnedFd::from(reader),
        )?),
        None => match child.stdout.take() {
            Some(stdout) => Output::Pipe(stdout),
            None => return Err(io::Error::other("no stdout pipe")),
        },
    };
    Ok(Spawned {
        guard: ProcessGuard::new(child),
        stdin,
        output,
    })
}

async fn feed(mut body: RequestBody, stdin: Option<ChildStdin>) -> Result<(), RequestBodyError> {
    let Some(mut stdin) = stdin else {
        return Ok(());
    };
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data()
            && stdin.write_all(&data).await.is_err()
        {
            // The process stopped reading its input; what it wrote is its answer.
            return Ok(());
        }
    }
    Ok(())
}

async fn feed_bytes(data: Bytes, stdin: Option<ChildStdin>) -> Result<(), RequestBodyError> {
    if let Some(mut stdin) = stdin {
        let _ = stdin.write_all(&data).await;
    }
    Ok(())
}

async fn within<F: Future>(deadline: Option<Instant>, f: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, f).await.ok(),
        None => Some(f.await),
    }
}

fn timeout_response(config: &Config) -> Response<WatchdogBody> {
    let secs = config.exec_timeout.map_or(0.0, |d| d.as_secs_f64());
    tracing::warn!(exec_timeout = secs, "function killed by exec_timeout");
    internal_response(
        StatusCode::GATEWAY_TIMEOUT,
        &format!("function exceeded exec_timeout of {secs}s and was killed"),
    )
}

fn spawn_error(config: &Config, e: &io::Error) -> Response<WatchdogBody> {
    let process = config.function_process.as_deref().unwrap_or("");
    tracing::error!(error = %e, process, "cannot start function process");
    internal_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("cannot start function process {process:?}: {e}"),
    )
}

fn body_error(e: &RequestBodyError) -> Response<WatchdogBody> {
    internal_response(e.status(), &e.to_string())
}

fn exit_text(status: &ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => status.to_string(),
    }
}

enum Outcome {
    Done(io::Result<Vec<u8>>, io::Result<ExitStatus>),
    BodyFailed(RequestBodyError),
    TimedOut,
}

async fn buffered(config: Arc<Config>, req: Request<RequestBody>) -> Response<WatchdogBody> {
    let classic = config.mode == Mode::Classic;
    let (parts, body) = req.into_parts();
    let input = if classic && config.marshal_request {
        match body.collect().await {
            Ok(collected) => Err(Bytes::from(cgi::marshal_request(
                &parts,
                &collected.to_bytes(),
            ))),
            Err(e) => return body_error(&e),
        }
    } else {
        Ok(body)
    };
    let deadline = config.exec_timeout.map(|d| Instant::now() + d);
    let combine = classic && config.combine_output;
    let Spawned {
        mut guard,
        stdin,
        mut output,
    } = match spawn(&config, &parts, combine) {
        Ok(s) => s,
        Err(e) => return spawn_error(&config, &e),
    };
    let mut writer = match input {
        Ok(body) => Feeder::spawn(feed(body, stdin)),
        Err(marshalled) => Feeder::spawn(feed_bytes(marshalled, stdin)),
    };

    let outcome = {
        let work = async {
            let mut out = Vec::new();
            let read = output.read_to_end(&mut out).await.map(|_| out);
            let status = guard.wait().await;
            (read, status)
        };
        tokio::select! {
            r = within(deadline, work) => match r {
                Some((read, status)) => Outcome::Done(read, status),
                None => Outcome::TimedOut,
            },
            e = writer.failed() => Outcome::BodyFailed(e),
        }
    };
    drop(writer);

    match outcome {
        Outcome::TimedOut => {
            guard.kill_and_reap().await;
            timeout_response(&config)
        }
        Outcome::BodyFailed(e) => {
            guard.kill_group();
            body_error(&e)
        }
        Outcome::Done(Err(e), _) | Outcome::Done(_, Err(e)) => {
            guard.kill_group();
            internal_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot read function output: {e}"),
            )
        }
        Outcome::Done(Ok(out), Ok(status)) => {
            if config.write_debug {
                tracing::info!(bytes = out.len(), %status, output = %String::from_utf8_lossy(&out), "function finished");
            }
            if !status.success() {
                tracing::info!(%status, "function process exited with an error");
                let mut text = exit_text(&status).into_bytes();
                text.push(b'\n');
                text.extend_from_slice(&out);
                let mut resp = Response::new(WatchdogBody::from(Bytes::from(text)));
                *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                return resp;
            }
            let mut resp = Response::new(WatchdogBody::from(Bytes::from(out)));
            let content_type = match &config.content_type {
                Some(ct) => HeaderValue::from_str(ct).ok(),
                None => parts.headers.get(CONTENT_TYPE).cloned(),
            };
            if let Some(ct) = content_type {
                resp.headers_mut().insert(CONTENT_TYPE, ct);
            }
            resp
        }
    }
}

async fn streaming(config: Arc<Config>, req: Request<RequestBody>) -> Response<WatchdogBody> {
    let (parts, body) = req.into_parts();
    let deadline = config.exec_timeout.map(|d| Instant::now() + d);
    let Spawned {
        mut guard,
        stdin,
        output,
    } = match spawn(&config, &parts, false) {
        Ok(s) => s,
        Err(e) => return spawn_error(&config, &e),
    };
    let Output::Pipe(stdout) = output else {
        return internal_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected combined output",
        );
    };
    let mut writer = Feeder::spawn(feed(body, stdin));
    let mut stdout = ReaderBody::new(stdout, None);

    enum First {
        Chunk(Bytes),
        Eof,
        ReadFailed(String),
        BodyFailed(RequestBodyError),
        TimedOut,
    }
    let first = tokio::select! {
        r = within(deadline, poll_fn(|cx| stdout_chunk(&mut stdout, cx))) => match r {
            None => First::TimedOut,
            Some(Ok(Some(chunk))) => First::Chunk(chunk),
            Some(Ok(None)) => First::Eof,
            Some(Err(e)) => First::ReadFailed(e),
        },
        e = writer.failed() => First::BodyFailed(e),
    };

    let first = match first {
        First::Chunk(chunk) => chunk,
        First::TimedOut => {
            drop(writer);
            guard.kill_and_reap().await;
            return timeout_response(&config);
        }
        First::BodyFailed(e) => {
            guard.kill_group();
            return body_error(&e);
        }
        First::ReadFailed(e) => {
            drop(writer);
            guard.kill_group();
            return internal_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot read function output: {e}"),
            );
        }
        First::Eof => {
            // No output at all: the exit status decides the answer.
            let status = within(deadline, guard.wait()).await;
            drop(writer);
            return match status {
                None => {
                    guard.kill_and_reap().await;
                    timeout_response(&config)
                }
                Some(Ok(status)) if status.success() => {
                    with_content_type(&config, Response::new(WatchdogBody::Full(None)))
                }
                Some(Ok(status)) => {
                    tracing::info!(%status, "function process exited with an error");
                    let mut resp =
                        Response::new(WatchdogBody::from(Bytes::from(exit_text(&status) + "\n")));
                    *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    resp
                }
                Some(Err(e)) => internal_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot wait for function: {e}"),
                ),
            };
        }
    };

    let body = ProcessBody {
        first: Some(first),
        stdout,
        guard: Some(guard),
        deadline,
        sleep: None,
        writer: Some(writer),
    };
    with_content_type(
        &config,
        Response::new(WatchdogBody::Process(Box::new(body))),
    )
}

fn stdout_chunk(
    stdout: &mut ReaderBody<tokio::process::ChildStdout>,
    cx: &mut Context<'_>,
) -> Poll<Result<Option<Bytes>, String>> {
    match stdout.poll_chunk(cx) {
        Poll::Ready(Some(Ok(frame))) => {
            Poll::Ready(Ok(Some(frame.into_data().unwrap_or_default())))
        }
        Poll::Ready(Some(Err(e))) => Poll::Ready(Err(e.to_string())),
        Poll::Ready(None) => Poll::Ready(Ok(None)),
        Poll::Pending => Poll::Pending,
    }
}

fn with_content_type(config: &Config, mut resp: Response<WatchdogBody>) -> Response<WatchdogBody> {
    if let Some(ct) = config
        .content_type
        .as_deref()
        .and_then(|ct| HeaderValue::from_str(ct).ok())
    {
        resp.headers_mut().insert(CONTENT_TYPE, ct);
    }
    resp
}
