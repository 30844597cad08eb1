//! One module per `faas` subcommand: its clap arguments and its `run` function.

pub mod deploy;
pub mod describe;
pub mod invoke;
mod invoke_async;
pub mod list;
mod log_format;
pub mod logs;
pub mod queue;
pub mod remove;
pub mod scale;
pub mod secret;
pub mod up;
pub mod version;

use std::io::Write;

use crate::{Error, Result};

/// Writes `text` to stdout and flushes (a closed stdout, as in `faas list | head -1`, is not an error).
pub(crate) fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("writing to stdout", e))
        }
        _ => Ok(()),
    }
}

/// Renders rows as left-aligned columns separated by two spaces, with a header row.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let t = super::table(
            &["Function", "Replicas"],
            &[vec!["echo".into(), "1".into()]],
        );
        assert_eq!(t, "Function  Replicas\necho      1\n");
    }
}
