//! A function's logs: its service's log lines (with Docker's timestamps and swarm details) as
//! OpenFaaS log messages, as history, tail or a followed stream.

use bollard::query_parameters::LogsOptions;
use chrono::{DateTime, Utc};
use faas_core::model::{LogMessage, LogRequest};
use futures::stream::{self, BoxStream, StreamExt};

use crate::error::{Error, Result};
use crate::provider::SwarmProvider;

impl SwarmProvider {
    /// The log lines of a function's replicas, oldest first: the history (`tail` newest lines
    /// over all replicas), then with `follow` the new lines as they come.
    pub(crate) async fn function_logs(
        &self,
        request: LogRequest,
        namespace: String,
    ) -> Result<BoxStream<'static, faas_core::Result<LogMessage>>> {
        let service = self.service(&request.name, &namespace).await?;
        let id = service.id.unwrap_or_else(|| request.name.clone());
        let options = |since: Option<DateTime<Utc>>, follow: bool, tail: Option<i64>| LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            since: since.map_or(0, |t| i32::try_from(t.timestamp()).unwrap_or(0).max(0)),
            until: 0,
            timestamps: true,
            tail: match tail {
                Some(n) if n >= 0 => n.to_string(),
                _ => "all".to_owned(),
            },
        };
        let name = request.name.clone();
        let instance = request.instance.clone();
        let since: Option<DateTime<Utc>> = request.since;
        let keep = move |line: &LogLine| {
            since.is_none_or(|s| line.timestamp >= s)
                && instance
                    .as_deref()
                    .is_none_or(|i| line.task_id.as_deref() == Some(i))
        };
        let docker = &self.inner.engine.docker;
        let tail = request.tail.filter(|n| *n >= 0);
        if !request.follow || tail.is_some() {
            // Docker applies `tail` to every task: read the history whole, then keep the newest
            // `tail` lines over all replicas
            let cut = Utc::now();
            let mut lines = Vec::new();
            let mut pending = String::new();
            let mut raw = Box::pin(docker.service_logs(&id, Some(options(since, false, tail))));
            while let Some(chunk) = raw.next().await {
                let chunk = chunk?;
                for text in split_lines(&mut pending, chunk.as_ref()) {
                    lines.extend(LogLine::parse(&text).filter(&keep));
                }
            }
            lines.extend(LogLine::parse(&pending).filter(&keep));
            if request.follow {
                // the followed part starts where the history ends
                lines.retain(|l| l.timestamp < cut);
            }
            let history: Vec<faas_core::Result<LogMessage>> = sort_and_tail(lines, tail)
                .into_iter()
                .map(|l| Ok(l.into_message(&name, &namespace)))
                .collect();
            if !request.follow {
                return Ok(stream::iter(history).boxed());
            }
            let from = since.map_or(cut, |s| s.max(cut));
            let live = follow_stream(
                docker.service_logs(&id, Some(options(Some(from), true, None))),
                move |l: &LogLine| l.timestamp >= from && keep(l),
                name,
                namespace,
            );
            return Ok(stream::iter(history).chain(live).boxed());
        }
        let raw = docker.service_logs(&id, Some(options(since, true, None)));
        Ok(follow_stream(raw, keep, name, namespace))
    }
}

/// Asks Docker for the swarm details of service log lines (the task id of every line), which
/// bollard's `LogsOptions` has no field for: installed as bollard's request modifier.
pub(crate) fn with_log_details(request: bollard::BollardRequest) -> bollard::BollardRequest {
    let uri = request.uri();
    if !(uri.path().contains("/services/") && uri.path().ends_with("/logs")) {
        return request;
    }
    let separator = if uri.query().is_some() { '&' } else { '?' };
    let Ok(new_uri) = format!("{uri}{separator}details=1").parse::<http::Uri>() else {
        return request;
    };
    let (mut parts, body) = request.into_parts();
    parts.uri = new_uri;
    bollard::BollardRequest::from_parts(parts, body)
}

/// The log messages of a followed service log stream that `keep` accepts.
fn follow_stream<S, B>(
    raw: S,
    keep: impl Fn(&LogLine) -> bool + Send + 'static,
    name: String,
    namespace: String,
) -> BoxStream<'static, faas_core::Result<LogMessage>>
where
    S: futures::Stream<Item = std::result::Result<B, bollard::errors::Error>> + Send + 'static,
    B: AsRef<[u8]>,
{
    raw.scan(String::new(), move |pending, chunk| {
        let out: Vec<faas_core::Result<LogMessage>> = match chunk {
            Ok(chunk) => split_lines(pending, chunk.as_ref())
                .iter()
                .filter_map(|t| LogLine::parse(t))
                .filter(&keep)
                .map(|l| Ok(l.into_message(&name, &namespace)))
                .collect(),
            Err(e) => vec![Err(Error::from(e).into())],
        };
        futures::future::ready(Some(stream::iter(out)))
    })
    .flatten()
    .boxed()
}

/// One line of `GET /services/{id}/logs?timestamps=1&details=1`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogLine {
    /// When the line was written.
    pub(crate) timestamp: DateTime<Utc>,
    /// The task (replica) that wrote it, when Docker said.
    pub(crate) task_id: Option<String>,
    /// The text, without its newline.
    pub(crate) text: String,
}

impl LogLine {
    /// Parses `<RFC 3339 timestamp> [com.docker.swarm.node.id=..,..task.id=..] <text>`.
    ///
    /// Returns `None` for a line without a timestamp (not a line Docker produced with
    /// `timestamps=1`).
    pub(crate) fn parse(line: &str) -> Option<LogLine> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let (stamp, rest) = line.split_once(' ').unwrap_or((line, ""));
        let timestamp = DateTime::parse_from_rfc3339(stamp)
            .ok()?
            .with_timezone(&Utc);
        let mut task_id = None;
        let mut text = rest;
        if let Some(first) = rest.split(' ').next()
            && first.starts_with("com.docker.swarm.")
        {
            task_id = first.split(',').find_map(|kv| {
                kv.strip_prefix("com.docker.swarm.task.id=")
                    .map(str::to_owned)
            });
            text = rest.get(first.len() + 1..).unwrap_or("");
        }
        Some(LogLine {
            timestamp,
            task_id,
            text: text.to_owned(),
        })
    }

    /// The OpenFaaS log message of this line for a function.
    pub(crate) fn into_message(self, name: &str, namespace: &str) -> LogMessage {
        LogMessage {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            instance: self.task_id.unwrap_or_default(),
            timestamp: self.timestamp,
            text: self.text,
        }
    }
}

/// Splits a chunk of log output into lines, keeping an unfinished last line in `pending`.
pub(crate) fn split_lines(pending: &mut String, chunk: &[u8]) -> Vec<String> {
    pending.push_str(&String::from_utf8_lossy(chunk));
    let mut lines = Vec::new();
    while let Some(pos) = pending.find('\n') {
        let line: String = pending.drain(..=pos).collect();
        lines.push(line);
    }
    lines
}

/// Keeps the last `tail` lines of `lines` sorted by time (`None` or negative: all).
pub(crate) fn sort_and_tail(mut lines: Vec<LogLine>, tail: Option<i64>) -> Vec<LogLine> {
    lines.sort_by_key(|l| l.timestamp);
    match tail {
        Some(n) if n >= 0 => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            let skip = lines.len().saturating_sub(n);
            lines.split_off(skip)
        }
        _ => lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_lines_parse() {
        let recorded = include_str!("../tests/data/service_logs.txt");
        let lines: Vec<LogLine> = recorded
            .lines()
            .map(|l| LogLine::parse(l).unwrap())
            .collect();
        assert!(lines.len() >= 2);
        for line in &lines {
            assert!(line.text.starts_with("line "), "{line:?}");
            assert_eq!(line.task_id.as_deref().map(str::len), Some(25), "{line:?}");
        }
        let message = lines[0].clone().into_message("ticker", "openfaas-fn");
        assert_eq!(message.instance, lines[0].task_id.clone().unwrap());
        assert_eq!(message.name, "ticker");
    }

    #[test]
    fn lines_without_details_and_garbage() {
        let line = LogLine::parse("2024-05-01T10:00:00.5Z hello world\n").unwrap();
        assert_eq!(line.text, "hello world");
        assert_eq!(line.task_id, None);
        let line = LogLine::parse("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(line.text, "");
        assert!(LogLine::parse("not a timestamp").is_none());
    }

    #[test]
    fn tail_keeps_the_newest() {
        let at = |s: u32, text: &str| LogLine {
            timestamp: DateTime::from_timestamp(i64::from(s), 0).unwrap(),
            task_id: None,
            text: text.into(),
        };
        let lines = vec![at(3, "c"), at(1, "a"), at(2, "b")];
        let texts = |l: Vec<LogLine>| l.into_iter().map(|l| l.text).collect::<Vec<_>>();
        assert_eq!(texts(sort_and_tail(lines.clone(), Some(2))), ["b", "c"]);
        assert_eq!(texts(sort_and_tail(lines.clone(), None)), ["a", "b", "c"]);
        assert_eq!(texts(sort_and_tail(lines, Some(0))), Vec::<String>::new());
    }

    #[test]
    fn log_requests_ask_for_details() {
        let request = http::Request::get(
            "unix://2f7661722f72756e2f646f636b65722e736f636b/v1.41/services/x/logs?stdout=true",
        )
        .body(bollard::body_full(bytes::Bytes::new()))
        .unwrap();
        let request = with_log_details(request);
        assert!(
            request.uri().query().unwrap().ends_with("&details=1"),
            "{}",
            request.uri()
        );
        let other = http::Request::get("unix://2f/v1.41/services/x")
            .body(bollard::body_full(bytes::Bytes::new()))
            .unwrap();
        assert_eq!(with_log_details(other).uri().query(), None);
    }

    #[test]
    fn chunks_split_into_lines() {
        let mut pending = String::new();
        assert_eq!(split_lines(&mut pending, b"a\nb"), ["a\n"]);
        assert_eq!(split_lines(&mut pending, b"c\n"), ["bc\n"]);
        assert!(pending.is_empty());
    }
}
