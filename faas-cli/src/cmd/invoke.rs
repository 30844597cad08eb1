//! `faas invoke NAME`: send stdin (or `--data`) to a function and stream its answer to stdout.

use std::io::{IsTerminal, Write};

use clap::Args;
use futures_util::StreamExt;
use reqwest::Method;

use crate::cli::{GatewayArgs, parse_key_value};
use crate::client::Invocation;
use crate::{Error, Result};

/// Arguments of `faas invoke`.
#[derive(Debug, Clone, Args)]
pub struct InvokeArgs {
    /// Gateway options.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The function.
    pub name: String,
    /// The HTTP method.
    #[arg(short, long, default_value = "POST")]
    pub method: Method,
    /// A header, NAME=VALUE (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// A query parameter, KEY=VALUE (repeatable).
    #[arg(long = "query", value_parser = parse_key_value)]
    pub query: Vec<(String, String)>,
    /// A path after the function's name, passed to the function (`/function/NAME/PATH`).
    #[arg(long, default_value = "")]
    pub path: String,
    /// The request body (default: stdin).
    #[arg(short, long)]
    pub data: Option<String>,
    /// Queue the call (`/async-function/`) and print its call id instead of waiting for the answer.
    #[arg(long = "async")]
    pub async_call: bool,
    /// With --async: where the gateway POSTs the function's answer (X-Callback-Url).
    #[arg(long, requires = "async_call")]
    pub callback_url: Option<String>,
}

/// Runs `faas invoke`.
///
/// # Errors
/// When the gateway cannot be reached, the function does not exist (404) or answers an error status
/// (its answer is quoted in the error, not printed to stdout).
pub async fn run(args: InvokeArgs) -> Result<()> {
    let client = args.gateway.client(None)?;
    let body = match args.data {
        Some(data) => reqwest::Body::from(data),
        None => {
            let stdin = tokio::io::stdin();
            if std::io::stdin().is_terminal() {
                eprintln!("reading the request body from stdin: end it with Ctrl-D");
            }
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(stdin))
        }
    };
    let mut invocation = Invocation::new(&args.name, body);
    invocation.namespace = args.gateway.namespace().map(str::to_owned);
    invocation.method = args.method;
    invocation.path = args.path;
    invocation.query = args.query;
    invocation.headers = args.headers;
    if args.async_call {
        return super::invoke_async::run(&client, invocation, args.callback_url).await;
    }
    let response = client.invoke(invocation).await?;
    if !response.status().is_success() {
        return Err(client.invocation_error(&args.name, response).await);
    }
    let mut chunks = response.bytes_stream();
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| Error::Unreachable {
            gateway: client.url().to_owned(),
            reason: format!("the answer was cut: {e}"),
        })?;
        match out.write_all(&chunk).and_then(|()| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(Error::io("writing to stdout", e)),
            Ok(()) => {}
        }
    }
    Ok(())
}
