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
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Nanos, true)
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

impl fmt::Display for Ts {
    /// Millisecond precision, as people read timelines: `2021-05-19 09:42:58.640`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_datetime().format("%Y-%m-%d %H:%M:%S%.3f"))
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
    fn rfc3339_round_trips_with_nanoseconds() {
        let t = Ts::parse_rfc3339("2021-05-19T09:42:58.640117041Z").unwrap();
        assert_eq!(t.0, 1_621_417_378_640_117_041);
        assert_eq!(t.rfc3339(), "2021-05-19T09:42:58.640117041Z");
        assert_eq!(t.to_string(), "2021-05-19 09:42:58.640");
        let z = Ts::parse_rfc3339("2022-08-24T11:40:44+02:00").unwrap();
        assert_eq!(z.rfc3339(), "2022-08-24T09:40:44.000000000Z");
    }
}
