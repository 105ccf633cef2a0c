//! The time a log line states in its own text, for `kubectl logs` saved without `--timestamps`:
//! most runtimes and logging libraries write one at the start of every line.
//!
//! Read (after ANSI colour codes are stripped, and an opening `[`):
//! - ISO 8601 with `T` or a space, `.` or `,` before the fraction (Python's `logging`:
//!   `2025-08-08 07:07:01,121`), with a zone (`Z`, `+02:00`, `+0200`, ` UTC`) → an instant;
//!   without one → a local time, resolved like `dmesg -T`'s;
//! - klog (`E0808 07:07:01.121456       1 server.go:42] …`) and classic syslog
//!   (`Aug  8 07:07:01 …`) → a date without a year, resolved like syslog's;
//! - epoch seconds with a fraction (`1754636821.121 …`, between 2001 and 2100: a bare number
//!   that begins a line is more often a count);
//! - a JSON line's `time`, `ts`, `timestamp` or `@timestamp` field (RFC 3339, or epoch seconds or
//!   milliseconds as zap writes them), and logfmt's `time=` / `ts=`.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use super::LineTime;
use crate::event::Ts;

static ANSI: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]").expect("static regex"));

static ISO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]{1,9}))?(Z| ?[+-][0-9]{2}:?[0-9]{2}| UTC)?",
    )
    .expect("static regex")
});

static KLOG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[IWEF]([0-9]{2})([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{1,9})\s+[0-9]+ [^\s\]]+\]")
        .expect("static regex")
});

static SYSLOG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ [0-9]][0-9]) ([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))? ")
        .expect("static regex")
});

static EPOCH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]{10})\.([0-9]{3,9})\s").expect("static regex"));

static LOGFMT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:^|\s)(?:time|ts|t)=(?:"([^"]+)"|(\S+))"#).expect("static regex")
});

/// The line without ANSI colour and cursor codes.
pub fn strip_ansi(line: &str) -> Cow<'_, str> {
    if line.contains('\x1b') {
        ANSI.replace_all(line, "")
    } else {
        Cow::Borrowed(line)
    }
}

/// The time the line states, if it states one.
pub fn line_time(line: &str) -> Option<LineTime> {
    let s = line.trim_start().trim_start_matches('[');
    if let Some(t) = iso(s) {
        return Some(t);
    }
    if let Some(c) = KLOG.captures(s) {
        let n = |i: usize| c[i].parse::<u32>().ok();
        return Some(LineTime::NoYear {
            month: n(1).filter(|m| (1..=12).contains(m))?,
            day: n(2).filter(|d| (1..=31).contains(d))?,
            nanos_of_day: nanos_of_day(n(3)?, n(4)?, n(5)?, &c[6])?,
        });
    }
    if let Some(c) = SYSLOG.captures(s) {
        let month = super::kernel_log::any_month(&c[1])?;
        let n = |i: usize| c[i].trim().parse::<u32>().ok();
        return Some(LineTime::NoYear {
            month,
            day: n(2).filter(|d| (1..=31).contains(d))?,
            nanos_of_day: nanos_of_day(n(3)?, n(4)?, n(5)?, c.get(6).map_or("", |m| m.as_str()))?,
        });
    }
    if let Some(c) = EPOCH.captures(s) {
        return epoch(&c[1], c.get(2).map_or("", |m| m.as_str()));
    }
    if s.starts_with('{') {
        return json_time(s);
    }
    LOGFMT.captures(s).and_then(|c| {
        let v = c.get(1).or(c.get(2))?.as_str();
        iso(v).or_else(|| {
            let (sec, frac) = v.split_once('.').unwrap_or((v, ""));
            (sec.len() == 10 && sec.bytes().all(|b| b.is_ascii_digit()))
                .then(|| epoch(sec, frac))
                .flatten()
        })
    })
}

fn iso(s: &str) -> Option<LineTime> {
    let c = ISO.captures(s)?;
    let n = |i: usize| c[i].parse::<u32>().ok();
    let (year, month, day) = (c[1].parse::<i32>().ok()?, n(2)?, n(3)?);
    if !(2000..=2100).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let nanos = nanos_of_day(n(4)?, n(5)?, n(6)?, c.get(7).map_or("", |m| m.as_str()))?;
    let Some(zone) = c.get(8).map(|m| m.as_str().trim()) else {
        return Some(LineTime::Local {
            year,
            month,
            day,
            nanos_of_day: nanos,
        });
    };
    let offset_s: i64 = match zone {
        "Z" | "UTC" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z.chars().skip(1).filter(char::is_ascii_digit).collect();
            if digits.len() != 4 {
                return None;
            }
            let (h, m) = digits.split_at(2);
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    let date = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
    let midnight = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    let secs = midnight.checked_sub(offset_s)?;
    let base = u64::try_from(secs).ok()?.checked_mul(Ts::NANOS_PER_SEC)?;
    Some(LineTime::Absolute(Ts(base.checked_add(nanos)?)))
}

fn nanos_of_day(h: u32, m: u32, s: u32, frac: &str) -> Option<u64> {
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut f: String = frac.chars().take(9).collect();
    while f.len() < 9 {
        f.push('0');
    }
    let nanos: u64 = f.parse().ok()?;
    Some((u64::from(h) * 3600 + u64::from(m) * 60 + u64::from(s)) * Ts::NANOS_PER_SEC + nanos)
}

/// Epoch seconds with an optional fraction, within 2001–2100 (so a number that begins a line is
/// not mistaken for a time).
fn epoch(sec: &str, frac: &str) -> Option<LineTime> {
    let s: u64 = sec.parse().ok()?;
    if !(1_000_000_000..4_102_444_800).contains(&s) {
        return None;
    }
    let nanos = nanos_of_day(0, 0, 0, frac)?;
    Some(LineTime::Absolute(Ts(s * Ts::NANOS_PER_SEC + nanos)))
}

fn json_time(s: &str) -> Option<LineTime> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    let o = v.as_object()?;
    let t = ["time", "ts", "timestamp", "@timestamp"]
        .iter()
        .find_map(|k| o.get(*k))?;
    match t {
        serde_json::Value::String(s) => iso(s),
        // zap writes seconds with a fraction; others integer milliseconds. Read from the digits,
        // not through a float.
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(ms) if ms > 100_000_000_000 => {
                epoch(&(ms / 1000).to_string(), &format!("{:03}", ms % 1000))
            }
            _ => {
                let text = n.to_string();
                let (sec, frac) = text.split_once('.').unwrap_or((&text, ""));
                epoch(sec, frac)
            }
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abs(s: &str) -> LineTime {
        LineTime::Absolute(Ts::parse_rfc3339(s).unwrap())
    }

    #[test]
    fn the_times_runtimes_and_libraries_write_are_read() {
        let cases: [(&str, LineTime); 10] = [
            (
                "2025-08-08 07:07:01,121 ERROR [main] app: KeyError: 'DATABASE_URL'",
                LineTime::Local {
                    year: 2025,
                    month: 8,
                    day: 8,
                    nanos_of_day: (7 * 3600 + 7 * 60 + 1) * Ts::NANOS_PER_SEC + 121_000_000,
                },
            ),
            (
                "2025-08-08 07:07:01.121Z INFO started",
                abs("2025-08-08T07:07:01.121Z"),
            ),
            (
                "2025-08-08T09:07:01.5+02:00 WARN x",
                abs("2025-08-08T07:07:01.5Z"),
            ),
            (
                "[2025-08-08 07:07:01 +0000] [1] [INFO] Starting gunicorn 21.2.0",
                abs("2025-08-08T07:07:01Z"),
            ),
            (
                "E0808 07:07:01.121456       1 reflector.go:147] failed to list *v1.Pod",
                LineTime::NoYear {
                    month: 8,
                    day: 8,
                    nanos_of_day: (7 * 3600 + 7 * 60 + 1) * Ts::NANOS_PER_SEC + 121_456_000,
                },
            ),
            (
                "Aug  8 07:07:01 cart-7d8f9 app[1]: listening",
                LineTime::NoYear {
                    month: 8,
                    day: 8,
                    nanos_of_day: (7 * 3600 + 7 * 60 + 1) * Ts::NANOS_PER_SEC,
                },
            ),
            (
                "1754636821.121 connection refused",
                abs("2025-08-08T07:07:01.121Z"),
            ),
            (
                r#"{"level":"error","ts":1754636821.121,"msg":"dial failed"}"#,
                abs("2025-08-08T07:07:01.121Z"),
            ),
            (
                r#"{"time":"2025-08-08T07:07:01.121Z","level":"ERROR","msg":"x"}"#,
                abs("2025-08-08T07:07:01.121Z"),
            ),
            (
                r#"time="2025-08-08T07:07:01Z" level=error msg="dial failed""#,
                abs("2025-08-08T07:07:01Z"),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(line_time(line), Some(want), "{line}");
        }
    }

    #[test]
    fn lines_that_only_begin_with_numbers_state_no_time() {
        for line in [
            "exit status 1",
            "200 OK",
            "1234567 rows processed",
            "1234567890 rows processed",
            "12:30 is lunch",
            "FATAL: environment variable DEPLOY_ENV is not set",
            "2025 was a good year",
            "9999-99-99 00:00:00 bad",
            "E0808 is an error code",
            "{\"msg\": \"no time here\"}",
            "",
        ] {
            assert_eq!(line_time(line), None, "{line}");
        }
    }

    #[test]
    fn digits_of_other_scripts_are_no_time_and_no_panic() {
        for line in [
            "2025-08-08 07:07:01.٠١٢٣٤ boom",
            "2025-08-08 07:07:01+٠٢:٠٠ x",
            "ts=1754636821.1234567€ x",
            "٢٠٢٥-٠٨-٠٨ ٠٧:٠٧:٠١ x",
            "2025-08-08 07:07:01.1234567890123 long fraction",
        ] {
            let _ = line_time(line);
        }
        assert_eq!(line_time("٢٠٢٥-٠٨-٠٨ ٠٧:٠٧:٠١ x"), None);
    }

    #[test]
    fn colour_codes_are_stripped() {
        let line = "\x1b[31m2025-08-08 07:07:01,121\x1b[0m \x1b[1mERROR\x1b[0m boom";
        let plain = strip_ansi(line);
        assert_eq!(plain, "2025-08-08 07:07:01,121 ERROR boom");
        assert!(matches!(line_time(&plain), Some(LineTime::Local { .. })));
    }
}
