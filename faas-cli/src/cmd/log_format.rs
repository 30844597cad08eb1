//! How `faas logs` prints a line: its own default, or faas-cli's `plain`, `keyvalue` and `json`
//! formats with faas-cli's `--name`, `--instance` and `--time-format` (a Go time layout).

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Timelike, Utc};
use clap::ValueEnum;
use faas_core::model::LogMessage;

/// faas-cli's `--output` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum LogFormat {
    /// `[TIME ][NAME ][(INSTANCE) ]TEXT`: the parts after the time only with `--name` and
    /// `--instance`.
    Plain,
    /// `timestamp="TIME" name="NAME" instance="INSTANCE" text="TEXT" `, the same parts.
    Keyvalue,
    /// The gateway's JSON message, one a line.
    Json,
}

/// faas-cli's default `--time-format`: Go's RFC 3339 layout.
pub const DEFAULT_TIME_LAYOUT: &str = "2006-01-02T15:04:05Z07:00";

/// One way of printing log messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineFormat {
    /// This CLI's own: `TIME NAME (INSTANCE) TEXT`, the time in RFC 3339 with milliseconds.
    Default,
    /// One of faas-cli's formats.
    FaasCli {
        format: LogFormat,
        /// A Go layout; empty: no time.
        time_layout: String,
        name: bool,
        instance: bool,
    },
}

impl LineFormat {
    /// The line for `message`.
    pub(crate) fn line(&self, message: &LogMessage) -> String {
        match self {
            LineFormat::Default => format!(
                "{} {} ({}) {}",
                message
                    .timestamp
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                message.name,
                message.instance,
                message.text
            ),
            LineFormat::FaasCli {
                format: LogFormat::Json,
                ..
            } => serde_json::to_string(message).unwrap_or_default(),
            LineFormat::FaasCli {
                format,
                time_layout,
                name,
                instance,
            } => {
                let time =
                    (!time_layout.is_empty()).then(|| format_go(time_layout, message.timestamp));
                let name = name.then_some(message.name.as_str());
                let instance = instance.then_some(message.instance.as_str());
                let text = message.text.trim_end_matches('\n');
                let mut out = String::new();
                if *format == LogFormat::Keyvalue {
                    let parts = [
                        ("timestamp", time.as_deref()),
                        ("name", name),
                        ("instance", instance),
                        ("text", Some(text)),
                    ];
                    for (key, value) in parts {
                        if let Some(value) = value {
                            let _ = write!(out, "{key}=\"{value}\" ");
                        }
                    }
                } else {
                    for part in [time.as_deref(), name].into_iter().flatten() {
                        out.push_str(part);
                        out.push(' ');
                    }
                    if let Some(instance) = instance {
                        let _ = write!(out, "({instance}) ");
                    }
                    out.push_str(text);
                }
                out
            }
        }
    }
}

/// The Go layout of a `--time-format` value: a layout, or one of Go's named layouts
/// (`rfc3339`, `rfc3339nano`, `ansic`, `unixdate`, `rubydate`, `rfc822`, `rfc822z`, `rfc850`,
/// `rfc1123`, `rfc1123z`; any case), as faas-cli accepts them.
pub(crate) fn time_layout(value: &str) -> String {
    let named = match value.to_ascii_lowercase().as_str() {
        "ansic" => "Mon Jan _2 15:04:05 2006",
        "unixdate" => "Mon Jan _2 15:04:05 MST 2006",
        "rubydate" => "Mon Jan 02 15:04:05 -0700 2006",
        "rfc822" => "02 Jan 06 15:04 MST",
        "rfc822z" => "02 Jan 06 15:04 -0700",
        "rfc850" => "Monday, 02-Jan-06 15:04:05 MST",
        "rfc1123" => "Mon, 02 Jan 2006 15:04:05 MST",
        "rfc1123z" => "Mon, 02 Jan 2006 15:04:05 -0700",
        "rfc3339" => DEFAULT_TIME_LAYOUT,
        "rfc3339nano" => "2006-01-02T15:04:05.999999999Z07:00",
        _ => value,
    };
    named.to_owned()
}

/// The elements of a Go layout, longest first where one is the prefix of another.
const GO_ELEMENTS: [&str; 30] = [
    "January", "Monday", "2006", "Z07:00", "-07:00", "Z0700", "-0700", "Jan", "Mon", "MST", "002",
    "-07", "Z07", "01", "02", "_2", "03", "04", "05", "06", "15", "PM", "pm", "1", "2", "3", "4",
    "5", ".0", ".9",
];

/// Formats `time` (UTC) with a Go layout: the reference time `Mon Jan 2 15:04:05 MST 2006`
/// written the way the result should look; anything else is kept as written.
pub(crate) fn format_go(layout: &str, time: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(layout.len() + 8);
    let mut rest = layout;
    while !rest.is_empty() {
        let Some(element) = GO_ELEMENTS.iter().find(|e| rest.starts_with(**e)) else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        let mut len = element.len();
        match *element {
            "January" => out.push_str(&time.format("%B").to_string()),
            "Monday" => out.push_str(&time.format("%A").to_string()),
            "2006" => {
                let _ = write!(out, "{:04}", time.year());
            }
            // UTC: the zone is `Z` where Go writes Z for UTC, else +00:00 / +0000 / +00
            "Z07:00" | "Z0700" | "Z07" => out.push('Z'),
            "-07:00" => out.push_str("+00:00"),
            "-0700" => out.push_str("+0000"),
            "-07" => out.push_str("+00"),
            "Jan" => out.push_str(&time.format("%b").to_string()),
            "Mon" => out.push_str(&time.format("%a").to_string()),
            "MST" => out.push_str("UTC"),
            "002" => {
                let _ = write!(out, "{:03}", time.ordinal());
            }
            "01" => {
                let _ = write!(out, "{:02}", time.month());
            }
            "02" => {
                let _ = write!(out, "{:02}", time.day());
            }
            "_2" => {
                let _ = write!(out, "{:>2}", time.day());
            }
            "03" => {
                let _ = write!(out, "{:02}", time.hour12().1);
            }
            "04" => {
                let _ = write!(out, "{:02}", time.minute());
            }
            "05" => {
                let _ = write!(out, "{:02}", time.second());
            }
            "06" => {
                let _ = write!(out, "{:02}", time.year().rem_euclid(100));
            }
            "15" => {
                let _ = write!(out, "{:02}", time.hour());
            }
            "PM" => out.push_str(if time.hour12().0 { "PM" } else { "AM" }),
            "pm" => out.push_str(if time.hour12().0 { "pm" } else { "am" }),
            "1" => {
                let _ = write!(out, "{}", time.month());
            }
            "2" => {
                let _ = write!(out, "{}", time.day());
            }
            "3" => {
                let _ = write!(out, "{}", time.hour12().1);
            }
            "4" => {
                let _ = write!(out, "{}", time.minute());
            }
            "5" => {
                let _ = write!(out, "{}", time.second());
            }
            fraction => {
                // `.000` (that many digits) or `.999` (trailing zeros dropped, and the dot with
                // them when nothing is left)
                let digit = fraction.as_bytes()[1];
                let count = rest[1..].bytes().take_while(|b| *b == digit).count();
                len = 1 + count;
                let nanos = format!("{:09}", time.nanosecond() % 1_000_000_000);
                let mut digits = nanos[..count.min(9)].to_owned();
                if digit == b'9' {
                    digits.truncate(digits.trim_end_matches('0').len());
                }
                if !digits.is_empty() {
                    out.push('.');
                    out.push_str(&digits);
                }
            }
        }
        rest = &rest[len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    #[test]
    fn go_layouts_format_as_go_does() {
        let t = at("2024-05-01T09:04:05.120500Z");
        assert_eq!(format_go(DEFAULT_TIME_LAYOUT, t), "2024-05-01T09:04:05Z");
        assert_eq!(
            format_go(&time_layout("RFC3339Nano"), t),
            "2024-05-01T09:04:05.1205Z"
        );
        assert_eq!(
            format_go(&time_layout("rfc3339nano"), at("2024-05-01T09:04:05Z")),
            "2024-05-01T09:04:05Z"
        );
        assert_eq!(format_go("15:04:05.000", t), "09:04:05.120");
        assert_eq!(format_go("3:04PM", t), "9:04AM");
        assert_eq!(format_go("Jan _2 2006", t), "May  1 2024");
        assert_eq!(format_go("Monday, 02-Jan-06", t), "Wednesday, 01-May-24");
        assert_eq!(
            format_go(&time_layout("unixdate"), t),
            "Wed May  1 09:04:05 UTC 2024"
        );
        assert_eq!(
            format_go(&time_layout("rfc1123z"), t),
            "Wed, 01 May 2024 09:04:05 +0000"
        );
        assert_eq!(format_go("day 002 of 2006", t), "day 122 of 2024");
        assert_eq!(format_go("[x] 1/2", t), "[x] 5/1");
    }

    #[test]
    fn faas_cli_formats() {
        let message = LogMessage {
            name: "echo".into(),
            namespace: "openfaas-fn".into(),
            instance: "r1".into(),
            timestamp: at("2024-05-01T09:04:05.5Z"),
            text: "hello\n".into(),
        };
        let faas_cli = |format, time: &str, name, instance| LineFormat::FaasCli {
            format,
            time_layout: time.to_owned(),
            name,
            instance,
        };
        assert_eq!(
            LineFormat::Default.line(&message),
            "2024-05-01T09:04:05.500Z echo (r1) hello\n"
        );
        assert_eq!(
            faas_cli(LogFormat::Plain, DEFAULT_TIME_LAYOUT, false, false).line(&message),
            "2024-05-01T09:04:05Z hello"
        );
        assert_eq!(
            faas_cli(LogFormat::Plain, "", true, true).line(&message),
            "echo (r1) hello"
        );
        assert_eq!(
            faas_cli(LogFormat::Keyvalue, "15:04", true, false).line(&message),
            "timestamp=\"09:04\" name=\"echo\" text=\"hello\" "
        );
        let json: serde_json::Value =
            serde_json::from_str(&faas_cli(LogFormat::Json, "", false, false).line(&message))
                .unwrap();
        assert_eq!(json["instance"], "r1");
        assert_eq!(json["text"], "hello\n");
    }
}
