//! Service log lines (with Docker's timestamps and swarm details) as OpenFaaS log messages.

use chrono::{DateTime, Utc};
use faas_core::model::LogMessage;

/// One line of `GET /services/{id}/logs?timestamps=1&details=1`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When the line was written.
    pub timestamp: DateTime<Utc>,
    /// The task (replica) that wrote it, when Docker said.
    pub task_id: Option<String>,
    /// The text, without its newline.
    pub text: String,
}

impl LogLine {
    /// Parses `<RFC 3339 timestamp> [com.docker.swarm.node.id=..,..task.id=..] <text>`.
    ///
    /// Returns `None` for a line without a timestamp (not a line Docker produced with
    /// `timestamps=1`).
    pub fn parse(line: &str) -> Option<LogLine> {
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
    pub fn into_message(self, name: &str, namespace: &str) -> LogMessage {
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
pub fn sort_and_tail(mut lines: Vec<LogLine>, tail: Option<i64>) -> Vec<LogLine> {
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
    fn chunks_split_into_lines() {
        let mut pending = String::new();
        assert_eq!(split_lines(&mut pending, b"a\nb"), ["a\n"]);
        assert_eq!(split_lines(&mut pending, b"c\n"), ["bc\n"]);
        assert!(pending.is_empty());
    }
}
