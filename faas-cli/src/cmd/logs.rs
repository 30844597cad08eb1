//! `faas logs NAME`: a function's logs (`/system/logs`, NDJSON), optionally following.

use std::io::Write;

use clap::Args;
use faas_core::model::{LogRequest, parse_duration};
use futures_util::StreamExt;

use crate::cli::GatewayArgs;
use crate::{Error, Result};

/// Arguments of `faas logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Gateway options.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The function.
    pub name: String,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<i64>,
    /// Only lines newer than this: a duration (`5m`, `1h30m`) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Keep printing new lines as they come (Ctrl-C to stop).
    #[arg(short, long)]
    pub follow: bool,
    /// Only this replica's lines.
    #[arg(long)]
    pub instance: Option<String>,
    /// Print the NDJSON lines as the gateway sends them.
    #[arg(long)]
    pub json: bool,
}

impl LogsArgs {
    /// The log request these arguments describe.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `--since` is neither a duration nor a time.
    pub fn request(&self) -> Result<LogRequest> {
        let mut request = LogRequest::new(&self.name, self.gateway.namespace().unwrap_or_default());
        request.tail = self.tail;
        request.follow = self.follow;
        request.instance = self.instance.clone();
        if let Some(since) = &self.since {
            request.since = Some(parse_since(since, chrono::Utc::now())?);
        }
        Ok(request)
    }
}

fn parse_since(
    since: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(since) {
        return Ok(time.with_timezone(&chrono::Utc));
    }
    let duration = parse_duration(since).map_err(|e| {
        Error::InvalidArgument(format!(
            "--since: {e}; give a duration (5m) or a time (2024-05-01T10:00:00Z)"
        ))
    })?;
    let duration = chrono::Duration::from_std(duration)
        .map_err(|_| Error::InvalidArgument("--since: duration too large".to_owned()))?;
    Ok(now - duration)
}

/// Runs `faas logs`.
///
/// # Errors
/// When the gateway cannot be reached, the function does not exist (404) or the stream breaks.
pub async fn run(args: LogsArgs) -> Result<()> {
    let client = args.gateway.client(None)?;
    let request = args.request()?;
    let mut lines = client.logs(&request).await?;
    while let Some(message) = lines.next().await {
        let message = message?;
        let text = if args.json {
            serde_json::to_string(&message).unwrap_or_default()
        } else {
            format!(
                "{} {} ({}) {}",
                message
                    .timestamp
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                message.name,
                message.instance,
                message.text
            )
        };
        let mut out = std::io::stdout().lock();
        match writeln!(out, "{text}").and_then(|()| out.flush()) {
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

    #[test]
    fn since_accepts_durations_and_times() {
        let now = chrono::DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            parse_since("5m", now).unwrap().to_rfc3339(),
            "2024-05-01T09:55:00+00:00"
        );
        assert_eq!(
            parse_since("2024-05-01T08:00:00Z", now)
                .unwrap()
                .to_rfc3339(),
            "2024-05-01T08:00:00+00:00"
        );
        assert!(parse_since("yesterday", now).is_err());
    }
}
