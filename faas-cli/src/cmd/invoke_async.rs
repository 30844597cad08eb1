//! `faas invoke --async`: queue the call at `/async-function/...` and print its call id.

use crate::client::{GatewayClient, Invocation};
use crate::{Error, Result};

/// Sends `invocation` to the gateway's `/async-function/` route (with `X-Callback-Url` when
/// given) and prints the call id on stdout; where to follow it goes to stderr.
pub(crate) async fn run(
    client: &GatewayClient,
    invocation: Invocation,
    callback_url: Option<String>,
) -> Result<()> {
    let mut url = match invocation.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => {
            format!("{}/async-function/{}.{ns}", client.url(), invocation.name)
        }
        _ => format!("{}/async-function/{}", client.url(), invocation.name),
    };
    let path = invocation.path.trim_start_matches('/');
    if !path.is_empty() {
        url.push('/');
        url.push_str(path);
    }
    let http = reqwest::Client::new();
    let mut request = http.request(invocation.method, url).body(invocation.body);
    if !invocation.query.is_empty() {
        request = request.query(&invocation.query);
    }
    for (name, value) in &invocation.headers {
        request = request.header(name, value);
    }
    if let Some(callback) = &callback_url {
        request = request.header("X-Callback-Url", callback);
    }
    let response = request.send().await.map_err(|e| Error::Unreachable {
        gateway: client.url().to_owned(),
        reason: e.to_string(),
    })?;
    if response.status() != reqwest::StatusCode::ACCEPTED {
        return Err(client.invocation_error(&invocation.name, response).await);
    }
    let call_id = response
        .headers()
        .get("x-call-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| Error::BadAnswer {
            gateway: client.url().to_owned(),
            reason: "202 without an X-Call-Id header".to_owned(),
        })?;
    eprintln!(
        "function {} accepted the call; its status: {}/system/invocations/{call_id}",
        invocation.name,
        client.url()
    );
    super::print(&format!("{call_id}\n"))
}
