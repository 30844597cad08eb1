//! `faas invoke NAME`: send stdin (or `--data`) to a function and stream its answer to stdout.
//!
//! A function that answers an error status still has its answer printed (as faas-cli quotes it):
//! the body goes to stdout, and the status to stderr as the command's error.

use std::io::{IsTerminal, Write};

use clap::Args;
use futures_util::StreamExt;
use reqwest::{Method, Response};

use crate::cli::{GatewayArgs, StackFileArgs, parse_header, parse_key_value};
use crate::client::{GatewayClient, HEADER_INTERNAL, Invocation};
use crate::{Error, Result};

/// The `Content-Type` faas-cli sends when neither `--content-type` nor a `-H` header sets one.
pub const DEFAULT_CONTENT_TYPE: &str = "text/plain";

/// Arguments of `faas invoke`.
#[derive(Debug, Clone, Args)]
pub struct InvokeArgs {
    /// Gateway options.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// A stack file naming the gateway.
    #[command(flatten)]
    pub stack: StackFileArgs,
    /// The function.
    pub name: String,
    /// The HTTP method.
    #[arg(short, long, default_value = "POST")]
    pub method: Method,
    /// A header, NAME=VALUE or "NAME: VALUE" (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// The request's Content-Type [default: a -H Content-Type, else text/plain].
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
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
    #[arg(short = 'a', long = "async")]
    pub async_call: bool,
    /// With --async: where the gateway POSTs the function's answer (X-Callback-Url).
    #[arg(long, requires = "async_call")]
    pub callback_url: Option<String>,
}

impl InvokeArgs {
    /// The request headers: `-H` headers, with `--content-type` (or else `text/plain` when no `-H`
    /// header sets one) as the `Content-Type`.
    pub fn headers(&self) -> Vec<(String, String)> {
        let is_content_type = |name: &str| name.eq_ignore_ascii_case("content-type");
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(name, _)| self.content_type.is_none() || !is_content_type(name))
            .cloned()
            .collect();
        if !headers.iter().any(|(name, _)| is_content_type(name)) {
            let value = self
                .content_type
                .clone()
                .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
            headers.push(("Content-Type".to_owned(), value));
        }
        headers
    }
}

/// Runs `faas invoke`.
///
/// # Errors
/// When the gateway cannot be reached, the function does not exist (404) or answers an error status
/// (its answer is printed to stdout first; the error names the status).
pub async fn run(args: InvokeArgs) -> Result<()> {
    let stack_gateway = args.stack.gateway()?;
    let client = args.gateway.client(stack_gateway.as_deref())?;
    let headers = args.headers();
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
    invocation.headers = headers;
    if args.async_call {
        return super::invoke_async::run(&client, invocation, args.callback_url).await;
    }
    let response = client.invoke(invocation).await?;
    let status = response.status();
    if status.is_success() {
        return copy_to_stdout(&client, response).await;
    }
    if response.headers().contains_key(HEADER_INTERNAL) {
        // the gateway's own answer (not found, not ready...): its message is the error
        return Err(client.invocation_error(&args.name, response).await);
    }
    // the function's own error answer: show it as it wrote it, then fail with its status
    copy_to_stdout(&client, response).await?;
    Err(Error::Status {
        status: status.as_u16(),
        message: format!(
            "function {:?} answered {}",
            args.name,
            status
                .canonical_reason()
                .unwrap_or("an error")
                .to_lowercase()
        ),
    })
}

/// Streams an answer's body to stdout (a closed stdout ends it quietly).
async fn copy_to_stdout(client: &GatewayClient, response: Response) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        invoke: InvokeArgs,
    }

    fn headers(argv: &[&str]) -> Vec<(String, String)> {
        let mut full = vec!["invoke", "echo"];
        full.extend_from_slice(argv);
        Args::try_parse_from(full).unwrap().invoke.headers()
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn content_type_defaults_to_text_plain_as_in_faas_cli() {
        assert_eq!(headers(&[]), h(&[("Content-Type", "text/plain")]));
        assert_eq!(
            headers(&["--content-type", "application/json"]),
            h(&[("Content-Type", "application/json")])
        );
        assert_eq!(
            headers(&["-H", "content-type: text/csv", "-H", "X-A=1"]),
            h(&[("content-type", "text/csv"), ("X-A", "1")])
        );
        // the flag wins over a header
        assert_eq!(
            headers(&[
                "-H",
                "Content-Type=text/csv",
                "--content-type",
                "application/json"
            ]),
            h(&[("Content-Type", "application/json")])
        );
    }

    #[test]
    fn async_has_faas_clis_short_flag() {
        let args = Args::try_parse_from(["invoke", "echo", "-a"])
            .unwrap()
            .invoke;
        assert!(args.async_call);
    }
}
