//! Rows as they travel: encoded as JSONEachRow lines for inserts, and decoded from the
//! JSONCompactEachRow lines (arrays in column order) of the `*_COLUMNS` selections. One file
//! per resource: `calls`, `objects` (versions, tags, aliases, tables, files), `feedback`
//! (feedback and prices), `keys` (API keys and sessions); here the times all of them hold.

mod calls;
mod feedback;
mod keys;
mod objects;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use self::calls::*;
pub use self::feedback::*;
pub use self::keys::*;
pub use self::objects::*;
use crate::domain::call::{Call, Micros, STORED_TIMES};
use crate::domain::error::{Error, Result};

/// Refuses (400) a time a `DateTime64(6, 'UTC')` column cannot hold (before 1900 or after
/// 2299); the domain refuses those before they reach a store, so this is a last guard.
pub fn check_time(micros: Micros) -> Result<()> {
    if STORED_TIMES.contains(&micros) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "time out of the stored range (1900-01-01 to 2299-12-31): {} µs since the epoch",
            micros
        )))
    }
}

/// Refuses (400) a call whose times the calls table cannot hold.
pub fn check_call_times(c: &Call) -> Result<()> {
    check_time(c.started_at)?;
    c.ended_at.map_or(Ok(()), check_time)
}

/// A time as ClickHouse reads a `DateTime64(6, 'UTC')` in text formats.
pub fn time(micros: Micros) -> Result<String> {
    check_time(micros)?;
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .ok_or_else(|| Error::BadRequest(format!("time out of range: {micros} µs")))
}

/// A time or NULL, as [`time`] writes it.
pub fn opt_time(micros: Option<Micros>) -> Result<Value> {
    Ok(match micros {
        Some(m) => Value::String(time(m)?),
        None => Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_clickhouse_datetime64_text() {
        assert_eq!(time(1_700_000_000_123_456).expect("time"), "2023-11-14 22:13:20.123456");
        assert_eq!(time(0).expect("time"), "1970-01-01 00:00:00.000000");
        assert!(time(i64::MAX).is_err());
        assert_eq!(time(*STORED_TIMES.start()).expect("time"), "1900-01-01 00:00:00.000000");
        assert_eq!(time(*STORED_TIMES.end()).expect("time"), "2299-12-31 23:59:59.999999");
        assert!(time(*STORED_TIMES.start() - 1).is_err() && time(*STORED_TIMES.end() + 1).is_err());
    }
}
