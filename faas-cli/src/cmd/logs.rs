//! `faas logs NAME`: a function's logs (`/system/logs`, NDJSON), optionally following.
//!
//! The flags are faas-cli's: `--tail` follows (`--follow`/`-f` is this CLI's spelling),
//! `--lines N` keeps the last N lines, `--since`/`--since-time` start later, and `--output`,
//! `--json`, `--name`, `--instance` and `--time-format` choose faas-cli's output formats.

use std::io::Write;

use clap::Args;
use faas_core::model::{LogRequest, parse_duration};
use futures_util::StreamExt;

pub use super::log_format::{DEFAULT_TIME_LAYOUT, LogFormat};
use super::log_format::{LineFormat, time_layout};
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
    /// Keep printing new lines as they come, until Ctrl-C (faas-cli's --tail; --tail=false prints
    /// what is there and exits, this CLI's default).
    #[arg(
        short = 't',
        long = "tail",
        visible_alias = "follow",
        short_alias = 'f',
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub follow: Option<bool>,
    /// Only the last N lines (0 or less: all).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub lines: Option<i64>,
    /// Only lines newer than this: a duration (`5m`, `1h30m`) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines since this RFC 3339 time (`2024-05-01T10:00:00Z`).
    #[arg(long, value_name = "TIME", conflicts_with = "since")]
    pub since_time: Option<String>,
    /// Only this replica's lines (the instance id a line shows).
    #[arg(long, value_name = "ID")]
    pub replica: Option<String>,
    /// Print faas-cli's format: plain (`TIME TEXT`, with --name and --instance), keyvalue or
    /// json [default: `TIME NAME (INSTANCE) TEXT`, or plain with --name, --instance or
    /// --time-format].
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT")]
    pub output: Option<LogFormat>,
    /// Print the NDJSON lines as the gateway sends them (--output json).
    #[arg(short = 'j', long, conflicts_with = "output")]
    pub json: bool,
    /// With plain or keyvalue: print the function's name.
    #[arg(long = "name")]
    pub show_name: bool,
    /// With plain or keyvalue: print the instance (replica) id.
    #[arg(long = "instance")]
    pub show_instance: bool,
    /// With plain or keyvalue: the time as a Go layout (`15:04:05`) or rfc3339, rfc3339nano,
    /// ansic, unixdate, rfc1123...; empty: no time [default: rfc3339].
    #[arg(long, value_name = "LAYOUT")]
    pub time_format: Option<String>,
}

impl LogsArgs {
    /// The log request these arguments describe.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `--since` is neither a duration nor a time, or `--since-time`
    /// is not a time.
    pub fn request(&self) -> Result<LogRequest> {
        let mut request = LogRequest::new(&self.name, self.gateway.namespace().unwrap_or_default());
        request.tail = self.lines.filter(|n| *n > 0);
        request.follow = self.follow.unwrap_or(false);
        request.instance = self.replica.clone();
        let now = chrono::Utc::now();
        if let Some(since) = &self.since {
            request.since = Some(parse_since(since, now)?);
        }
        if let Some(time) = &self.since_time {
            let time = chrono::DateTime::parse_from_rfc3339(time).map_err(|e| {
                Error::InvalidArgument(format!(
                    "--since-time {time:?}: {e}; give an RFC 3339 time (2024-05-01T10:00:00Z)"
                ))
            })?;
            request.since = Some(time.with_timezone(&chrono::Utc));
        }
        Ok(request)
    }

    /// How lines are printed.
    pub(crate) fn line_format(&self) -> LineFormat {
        let format = if self.json {
            Some(LogFormat::Json)
        } else {
            self.output
        };
        let faas_cli_options = self.show_name || self.show_instance || self.time_format.is_some();
        match format {
            None if !faas_cli_options => LineFormat::Default,
            format => LineFormat::FaasCli {
                format: format.unwrap_or(LogFormat::Plain),
                time_layout: time_layout(
                    self.time_format.as_deref().unwrap_or(DEFAULT_TIME_LAYOUT),
                ),
                name: self.show_name,
                instance: self.show_instance,
            },
        }
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
    let format = args.line_format();
    let mut lines = client.logs(&request).await?;
    while let Some(message) = lines.next().await {
        let text = format.line(&message?);
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

    #[derive(clap::Parser)]
    struct Args {
        #[command(flatten)]
        logs: LogsArgs,
    }

    fn args(argv: &[&str]) -> LogsArgs {
        let mut full = vec!["logs", "echo"];
        full.extend_from_slice(argv);
        <Args as clap::Parser>::try_parse_from(full).unwrap().logs
    }

    #[test]
    fn faas_cli_flags_mean_what_they_mean_in_faas_cli() {
        // --tail follows; --lines counts
        for argv in [
            &["--tail"][..],
            &["-t"],
            &["--tail=true"],
            &["--follow"],
            &["-f"],
        ] {
            assert!(args(argv).request().unwrap().follow, "{argv:?}");
        }
        for argv in [&[][..], &["--tail=false"], &["-t=false"]] {
            assert!(!args(argv).request().unwrap().follow, "{argv:?}");
        }
        assert_eq!(args(&["--lines", "5"]).request().unwrap().tail, Some(5));
        assert_eq!(args(&["--lines", "-1"]).request().unwrap().tail, None);
        assert_eq!(args(&["--lines", "0"]).request().unwrap().tail, None);
        // the count is --lines now: `--tail 5` is a mistake clap reports
        let mut full = vec!["logs", "echo", "--tail", "5"];
        assert!(<Args as clap::Parser>::try_parse_from(&full).is_err());
        full[3] = "--tail=5";
        assert!(<Args as clap::Parser>::try_parse_from(&full).is_err());

        let request = args(&["--since-time", "2024-05-01T08:00:00Z", "--replica", "r1"])
            .request()
            .unwrap();
        assert_eq!(
            request.since.unwrap().to_rfc3339(),
            "2024-05-01T08:00:00+00:00"
        );
        assert_eq!(request.instance.as_deref(), Some("r1"));
        assert!(args(&["--since-time", "5m"]).request().is_err());
    }

    #[test]
    fn output_flags_choose_the_format() {
        assert_eq!(args(&[]).line_format(), LineFormat::Default);
        let faas_cli = |format, layout: &str, name, instance| LineFormat::FaasCli {
            format,
            time_layout: layout.to_owned(),
            name,
            instance,
        };
        assert_eq!(
            args(&["--json"]).line_format(),
            faas_cli(LogFormat::Json, DEFAULT_TIME_LAYOUT, false, false)
        );
        assert_eq!(
            args(&["-j"]).line_format(),
            args(&["-o", "json"]).line_format()
        );
        assert_eq!(
            args(&["--name"]).line_format(),
            faas_cli(LogFormat::Plain, DEFAULT_TIME_LAYOUT, true, false)
        );
        assert_eq!(
            args(&[
                "-o",
                "keyvalue",
                "--instance",
                "--time-format",
                "rfc3339nano"
            ])
            .line_format(),
            faas_cli(
                LogFormat::Keyvalue,
                "2006-01-02T15:04:05.999999999Z07:00",
                false,
                true
            )
        );
        assert_eq!(
            args(&["--time-format", ""]).line_format(),
            faas_cli(LogFormat::Plain, "", false, false)
        );
    }
}
