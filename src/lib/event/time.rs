//! Timestamps: nanoseconds since the Unix epoch, UTC.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A wall-clock instant in nanoseconds since the Unix epoch (UTC).
///
/// Binary formats carry the integer; JSON carries RFC 3339 with nanoseconds
/// (`2021-05-19T09:42:58.640117041Z`), which people and `jq` both read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub u64);

impl Ts {
    pub const NANOS_PER_SEC: u64 = 1_000_000_000;

    pub fn from_secs(secs: u64) -> Ts {
        Ts(secs.saturating_mul(Self::NANOS_PER_SEC))
    }

    pub fn from_micros(us: u64) -> Ts {
        Ts(us.saturating_mul(1_000))
    }

    /// From a chrono instant; instants before 1970 clamp to 0.
    pub fn from_datetime<Tz: chrono::TimeZone>(dt: &DateTime<Tz>) -> Ts {
        Ts(dt.timestamp_nanos_opt().map_or(0, |n| n.max(0) as u64))
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0 as i64)
    }

    /// RFC 3339, UTC, nanoseconds: the JSON form.
    pub fn rfc3339(self) -> String {
        match self.civil() {
            Some(c) => {
                let mut s = String::with_capacity(30);
                c.write(&mut s, b'T', 9);
                s.push('Z');
                s
            }
            None => self
                .to_datetime()
                .to_rfc3339_opts(SecondsFormat::Nanos, true),
        }
    }

    /// The calendar date and time of day, computed directly (every event's JSON and line has
    /// one: chrono's formatting machinery is most of their cost); `None` past 2262, where the
    /// nanoseconds no longer fit chrono's range and its own formatting applies.
    fn civil(self) -> Option<Civil> {
        if self.0 > i64::MAX as u64 {
            return None;
        }
        let secs = self.0 / Self::NANOS_PER_SEC;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Days since 1970-01-01 to a proleptic Gregorian date (eras of 400 years).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Some(Civil {
            year: year as u32,
            month: month as u32,
            day: day as u32,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
            nanos: (self.0 % Self::NANOS_PER_SEC) as u32,
        })
    }

    /// Parses RFC 3339 (any offset) into UTC.
    pub fn parse_rfc3339(s: &str) -> Option<Ts> {
        DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|d| Ts::from_datetime(&d))
    }

    pub fn saturating_sub(self, other: Ts) -> u64 {
        self.0.saturating_sub(other.0)
    }
}

/// A date and time of day, UTC.
struct Civil {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
}

impl Civil {
    /// `YYYY-MM-DD<sep>HH:MM:SS.<digits of the fraction>`.
    fn write(&self, out: &mut String, sep: u8, digits: u32) {
        let mut b = [0u8; 29];
        let mut put = |at: usize, v: u32, n: usize| {
            let mut v = v;
            for i in (0..n).rev() {
                b[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, self.year, 4);
        put(5, self.month, 2);
        put(8, self.day, 2);
        put(11, self.hour, 2);
        put(14, self.minute, 2);
        put(17, self.second, 2);
        put(20, self.nanos / 10u32.pow(9 - digits), digits as usize);
        (b[4], b[7], b[10], b[13], b[16], b[19]) = (b'-', b'-', sep, b':', b':', b'.');
        let len = 20 + digits as usize;
        out.push_str(std::str::from_utf8(&b[..len]).unwrap_or_default());
    }
}

impl fmt::Display for Ts {
    /// Millisecond precision, as people read timelines: `2021-05-19 09:42:58.640`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.civil() {
            Some(c) => {
                let mut s = String::with_capacity(23);
                c.write(&mut s, b' ', 3);
                f.write_str(&s)
            }
            None => write!(f, "{}", self.to_datetime().format("%Y-%m-%d %H:%M:%S%.3f")),
        }
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.rfc3339())
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ts, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Ts::parse_rfc3339(&s).ok_or_else(|| D::Error::custom(format!("bad timestamp {s:?}")))
        } else {
            u64::deserialize(d).map(Ts)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_chronos() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut values = vec![0, 1, 999_999_999, 951_782_400_000_000_000, i64::MAX as u64];
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x % (i64::MAX as u64));
        }
        for v in values {
            let t = Ts(v);
            let d = t.to_datetime();
            assert_eq!(t.rfc3339(), d.to_rfc3339_opts(SecondsFormat::Nanos, true));
            assert_eq!(t.to_string(), d.format("%Y-%m-%d %H:%M:%S%.3f").to_string());
        }
        // Past chrono's nanosecond range, chrono's own form.
        let late = Ts(u64::MAX);
        assert_eq!(
            late.rfc3339(),
            late.to_datetime()
                .to_rfc3339_opts(SecondsFormat::Nanos, true)
        );
    }

    #[test]
    fn rfc3339_round_trips_with_nanoseconds() {
        let t = Ts::parse_rfc3339("2021-05-19T09:42:58.640117041Z").unwrap();
        assert_eq!(t.0, 1_621_417_378_640_117_041);
        assert_eq!(t.rfc3339(), "2021-05-19T09:42:58.640117041Z");
        assert_eq!(t.to_string(), "2021-05-19 09:42:58.640");
        let z = Ts::parse_rfc3339("2022-08-24T11:40:44+02:00").unwrap();
        assert_eq!(z.rfc3339(), "2022-08-24T09:40:44.000000000Z");
    }
}
