//! Forwarding of the function's output streams, line by line.

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Which stream of the function process a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// The process's standard output (logged in `http` mode).
    Stdout,
    /// The process's standard error.
    Stderr,
}

impl LogStream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// Receives every line a function process logs.
///
/// The default sink writes to the watchdog's stderr; an embedder (the local provider) installs its
/// own to keep each replica's logs apart.
pub trait LogSink: Send + Sync + fmt::Debug + 'static {
    /// One line, without its trailing newline. A line longer than `log_buffer_size` arrives as
    /// several calls.
    fn line(&self, stream: LogStream, line: &[u8]);
}

/// The default [`LogSink`]: the watchdog's stderr, optionally prefixed with
/// `2006/01/02 15:04:05 stderr: ` as of-watchdog does.
#[derive(Debug, Clone, Copy)]
pub struct StderrSink {
    prefix: bool,
}

impl StderrSink {
    /// A sink that prefixes lines when `prefix` is true.
    pub fn new(prefix: bool) -> Self {
        StderrSink { prefix }
    }
}

impl LogSink for StderrSink {
    fn line(&self, stream: LogStream, line: &[u8]) {
        let mut out = Vec::with_capacity(line.len() + 30);
        if self.prefix {
            out.extend_from_slice(timestamp().as_bytes());
            out.push(b' ');
            out.extend_from_slice(stream.as_str().as_bytes());
            out.extend_from_slice(b": ");
        }
        out.extend_from_slice(line);
        out.push(b'\n');
        // One write per line keeps lines from concurrent processes whole.
        let _ = std::io::stderr().lock().write_all(&out);
    }
}

/// `YYYY/MM/DD HH:MM:SS` in UTC, as Go's `log` package prints it.
pub(crate) fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}/{month:02}/{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Reads `reader` to its end and hands every line to `sink`; a line longer than `max_line` is
/// split into pieces of `max_line` bytes, never dropped.
pub(crate) async fn forward_lines<R>(
    mut reader: R,
    stream: LogStream,
    max_line: usize,
    sink: &dyn LogSink,
) where
    R: AsyncRead + Unpin,
{
    let max_line = max_line.max(1);
    // Most function processes log nothing: the line buffer is only allocated for a line, and the
    // read buffer is not zeroed.
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk: Vec<u8> = Vec::with_capacity(8192);
    loop {
        chunk.clear();
        let n = match reader.read_buf(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut data = &chunk[..n];
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(pos) => {
                    push_bounded(&mut buf, &data[..pos], max_line, stream, sink);
                    emit(&mut buf, stream, sink);
                    data = &data[pos + 1..];
                }
                None => {
                    push_bounded(&mut buf, data, max_line, stream, sink);
                    data = &[];
                }
            }
        }
    }
    if !buf.is_empty() {
        emit(&mut buf, stream, sink);
    }
}

fn push_bounded(
    buf: &mut Vec<u8>,
    mut data: &[u8],
    max_line: usize,
    stream: LogStream,
    sink: &dyn LogSink,
) {
    while !data.is_empty() {
        let room = max_line - buf.len();
        let take = room.min(data.len());
        buf.extend_from_slice(&data[..take]);
        data = &data[take..];
        if buf.len() == max_line && !data.is_empty() {
            emit(buf, stream, sink);
        }
    }
}

fn emit(buf: &mut Vec<u8>, stream: LogStream, sink: &dyn LogSink) {
    let line = buf.strip_suffix(b"\r").unwrap_or(buf);
    sink.line(stream, line);
    buf.clear();
}

/// A minimal `tracing` subscriber for binaries: one line per event on stderr,
/// `2006/01/02 15:04:05 INFO message key=value ...`, events up to `max_level`, spans ignored.
///
/// It keeps `fwatchdog` small (no formatting framework); install it once in `main` with
/// `tracing::subscriber::set_global_default`.
#[derive(Debug, Clone, Copy)]
pub struct StderrLogger {
    max_level: tracing::Level,
}

impl StderrLogger {
    /// A logger that prints events up to `max_level` (`INFO` prints info, warn and error).
    pub fn new(max_level: tracing::Level) -> Self {
        StderrLogger { max_level }
    }
}

struct LineVisitor {
    message: String,
    fields: String,
}

impl tracing::field::Visit for LineVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl tracing::Subscriber for StderrLogger {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= self.max_level
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::from_level(
            self.max_level,
        ))
    }

    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut visitor = LineVisitor {
            message: String::new(),
            fields: String::new(),
        };
        event.record(&mut visitor);
        let line = format!(
            "{} {} {}{}\n",
            timestamp(),
            event.metadata().level(),
            visitor.message,
            visitor.fields
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn enter(&self, _span: &tracing::span::Id) {}

    fn exit(&self, _span: &tracing::span::Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct Collect(Mutex<Vec<String>>);

    impl LogSink for Collect {
        fn line(&self, _stream: LogStream, line: &[u8]) {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(line).into_owned());
        }
    }

    #[tokio::test]
    async fn splits_lines_and_long_lines() {
        let sink = Collect::default();
        let input: &[u8] = b"one\ntwo\r\n0123456789abc\nlast";
        forward_lines(input, LogStream::Stderr, 5, &sink).await;
        let lines = sink.0.lock().unwrap().clone();
        assert_eq!(lines, vec!["one", "two", "01234", "56789", "abc", "last"]);
    }

    #[test]
    fn timestamp_shape() {
        let t = timestamp();
        assert_eq!(t.len(), 19, "{t}");
        assert_eq!(&t[4..5], "/");
        assert_eq!(&t[13..14], ":");
    }
}
