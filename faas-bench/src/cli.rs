//! Command-line arguments of `faas-bench` and their value parsers.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// `faas-bench`: drive keep-alive HTTP load against faas-rs components and print a report.
///
/// Build the binaries under test first, in the same profile as the runner:
/// `cargo build --release -p faas-watchdog -p faas-cli -p faas-bench`.
#[derive(Debug, Clone, Parser)]
#[command(name = "faas-bench", version, about, long_about = None)]
pub struct Args {
    /// Scenario to run (`list` prints them all).
    #[arg(default_value = "list")]
    pub scenario: String,

    /// Measured time of each case, after the warm-up (`5s`, `500ms`, or plain seconds).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Warm-up of each case, not measured.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Connection counts, comma separated (default: each scenario's own list, e.g. 1,16,64).
    #[arg(long, value_parser = parse_connections)]
    pub connections: Option<Connections>,

    /// Run only these series of the scenario, by id, comma separated (e.g. `b,c`; default: all).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,

    /// Upper bound on the requests sent in one case, warm-up included.
    #[arg(long, default_value_t = 10_000_000)]
    pub max_requests: u64,

    /// Timeout of one request; a request slower than this counts as an error.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Before each case, wait up to this long for the machine to be quiet (other processes using under 20%
    /// of one core over half a second); 0 does not wait. For shared machines.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub wait_quiet: Duration,

    /// Size in bytes of each request body (requests are `POST /`).
    #[arg(long, default_value_t = 12)]
    pub body_size: usize,

    /// Worker threads of the load generator (1 runs it on a current-thread runtime).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub client_threads: u16,

    /// Worker threads of `bench-upstream`, the baseline server (1: current-thread runtime).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub upstream_threads: u16,

    /// Directory holding the binaries under test (default: the directory of this executable).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,

    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Start the processes under test with this runner's whole environment. By default they get the
    /// environment of a function container instead: `PATH`, `HOME` and `HOSTNAME`, plus what each
    /// scenario sets (a developer shell's variables, `LANG` above all, make every `cat` a fork-mode
    /// watchdog runs load locale files: about 0.2 ms more per request here).
    #[arg(long)]
    pub inherit_env: bool,

    /// Keep the logs of the processes under test in this directory (default: a temporary one, removed).
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
}

/// A list of connection counts, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connections(pub Vec<usize>);

/// Parses a duration as the watchdog does: `10s`, `500ms`, `2m`, `1h`, `100us` or plain (fractional) seconds.
///
/// # Errors
/// A message naming the bad value when it is empty, negative, not a number or has an unknown unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 5s, 500ms or 2"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("invalid duration unit {other:?} in {s:?}")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("invalid duration {s:?}"))
}

/// Parses `1,16,64` into connection counts, each at least 1 and at most 4096.
///
/// # Errors
/// A message naming the bad element.
pub fn parse_connections(s: &str) -> Result<Connections, String> {
    let counts = s
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| match part.parse::<usize>() {
            Ok(n @ 1..=4096) => Ok(n),
            _ => Err(format!(
                "invalid connection count {part:?}: expected 1 to 4096"
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if counts.is_empty() {
        return Err("no connection count given".to_owned());
    }
    Ok(Connections(counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("3 days").is_err());
    }

    #[test]
    fn connection_lists() {
        assert_eq!(
            parse_connections("1,16,64"),
            Ok(Connections(vec![1, 16, 64]))
        );
        assert_eq!(parse_connections(" 8 "), Ok(Connections(vec![8])));
        assert_eq!(parse_connections("1,,2,"), Ok(Connections(vec![1, 2])));
        assert!(parse_connections("0").is_err());
        assert!(parse_connections("1,x").is_err());
        assert!(parse_connections("").is_err());
        assert!(parse_connections("5000").is_err());
    }

    #[test]
    fn args_parse() {
        let args = Args::try_parse_from([
            "faas-bench",
            "watchdog",
            "--duration",
            "2s",
            "--connections",
            "1,8",
            "--json",
            "--only",
            "b,c",
        ])
        .unwrap();
        assert_eq!(args.scenario, "watchdog");
        assert_eq!(args.duration, Duration::from_secs(2));
        assert_eq!(args.warmup, Duration::from_secs(1));
        assert_eq!(args.connections, Some(Connections(vec![1, 8])));
        assert!(args.json);
        assert_eq!(args.only, ["b", "c"]);
        assert_eq!(args.client_threads, 1);

        let args = Args::try_parse_from(["faas-bench"]).unwrap();
        assert_eq!(args.scenario, "list");
        assert_eq!(args.connections, None);
        assert!(args.only.is_empty());

        assert!(Args::try_parse_from(["faas-bench", "x", "--client-threads", "0"]).is_err());
        assert!(Args::try_parse_from(["faas-bench", "x", "--duration", "soon"]).is_err());
    }
}
