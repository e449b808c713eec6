//! Time arguments: `2024-08-08` (midnight UTC) or a full RFC 3339 time.

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};

#[derive(Debug, thiserror::Error)]
#[error("{flag} {value:?}: expected a date such as 2024-08-08 or an RFC 3339 time such as 2024-08-08T23:55:00Z")]
pub struct TimeError {
    pub flag: String,
    pub value: String,
}

/// Where a bare date lands: `--from` takes its first instant, `--to` the end of the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    Start,
    End,
}

pub fn parse(flag: &str, value: &str, edge: Edge) -> Result<i64, TimeError> {
    let err = || TimeError {
        flag: flag.to_string(),
        value: value.to_string(),
    };
    let v = value.trim();
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let day = match edge {
            Edge::Start => d,
            Edge::End => d.succ_opt().ok_or_else(err)?,
        };
        let t = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).ok_or_else(err)?);
        let ns = t.timestamp_nanos_opt().ok_or_else(err)?;
        return Ok(match edge {
            Edge::Start => ns,
            Edge::End => ns - 1,
        });
    }
    DateTime::parse_from_rfc3339(v)
        .ok()
        .and_then(|t| t.with_timezone(&Utc).timestamp_nanos_opt())
        .ok_or_else(err)
}

pub fn format(ts_ns: i64) -> String {
    Utc.timestamp_nanos(ts_ns)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        let from = parse("--from", "2024-08-08", Edge::Start).unwrap();
        assert_eq!(format(from), "2024-08-08T00:00:00.000Z");
        let to = parse("--to", "2024-08-08", Edge::End).unwrap();
        assert_eq!(to - from, 86_400_000_000_000 - 1);
        let t = parse("--from", "2024-08-08T23:55:00+01:00", Edge::Start).unwrap();
        assert_eq!(format(t), "2024-08-08T22:55:00.000Z");
        assert!(parse("--from", "yesterday", Edge::Start)
            .unwrap_err()
            .to_string()
            .contains("--from"));
    }
}
